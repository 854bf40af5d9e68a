# Copyright 2026 rrb_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Launch rrb_ros's pose_node with a parameter file, in a namespace, remappable topics.

ros2 launch rrb_ros rrb.launch.py namespace:=camera params_file:=/path/rrb.yaml \
    use_sim_time:=true

Topics are relative: in namespace `camera` the node reads /camera/image, /camera/mask and
/camera/camera_info and publishes /camera/object_pose, /camera/markers, ... (remap `image`,
`mask` and `camera_info` with the launch arguments of the same names).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory('rrb_ros')
    args = [
        DeclareLaunchArgument('namespace', default_value='camera',
                              description='Namespace of the node and its topics'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'rrb.yaml'),
                              description='pose_node parameter file'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (true when replaying bags)'),
        DeclareLaunchArgument('image', default_value='image_raw',
                              description='Camera image topic (relative to the namespace)'),
        DeclareLaunchArgument('mask', default_value='mask',
                              description='Instance mask topic (relative to the namespace)'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='CameraInfo topic (relative to the namespace)'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Logging level of the node'),
    ]
    # camera-sized best-effort messages need larger Fast DDS buffers (see the XML file)
    fastdds = SetEnvironmentVariable(
        'FASTDDS_DEFAULT_PROFILES_FILE',
        EnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                            default_value=os.path.join(share, 'config',
                                                       'fastdds_large_data.xml')))
    pose_node = Node(
        package='rrb_ros', executable='pose_node', name='pose_node',
        namespace=LaunchConfiguration('namespace'), output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'use_sim_time': LaunchConfiguration('use_sim_time')}],
        remappings=[('image', LaunchConfiguration('image')),
                    ('mask', LaunchConfiguration('mask')),
                    ('camera_info', LaunchConfiguration('camera_info'))],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')])
    return LaunchDescription(args + [fastdds, pose_node])
