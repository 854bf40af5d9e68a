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

"""Launch rrb_ros's pose_node and egomotion_node in a namespace, with remappable inputs.

ros2 launch rrb_ros rrb.launch.py namespace:=camera params_file:=/path/rrb.yaml \
    use_sim_time:=true rviz:=true

Topics are relative: in namespace `camera` pose_node reads /camera/image_raw, /camera/mask and
/camera/camera_info and publishes /camera/object_pose, /camera/detections, /camera/markers, ...
(remap its inputs with the launch arguments `image`, `mask` and `camera_info`); egomotion_node
(`egomotion:=false` leaves it out) reads /camera/detections and publishes /camera/camera_path.
`rviz:=true` also starts RViz with the package's display configuration.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
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
                              description='pose_node parameter file (objects, labels, meshes)'),
        DeclareLaunchArgument('egomotion_params_file',
                              default_value=os.path.join(share, 'config', 'egomotion.yaml'),
                              description='egomotion_node parameter file'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (true when replaying bags)'),
        DeclareLaunchArgument('image', default_value='image_raw',
                              description='Camera image topic (relative to the namespace)'),
        DeclareLaunchArgument('mask', default_value='mask',
                              description='Instance mask topic (relative to the namespace)'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='CameraInfo topic (relative to the namespace)'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Logging level of the nodes'),
        DeclareLaunchArgument('egomotion', default_value='true',
                              description='Also start egomotion_node (camera path from the '
                              'object poses)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Also start RViz with config/rrb.rviz'),
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
        ros_arguments=['--log-level', LaunchConfiguration('log_level')])
    egomotion_node = Node(
        package='rrb_ros', executable='egomotion_node', name='egomotion_node',
        namespace=LaunchConfiguration('namespace'), output='screen',
        parameters=[LaunchConfiguration('egomotion_params_file'),
                    {'use_sim_time': LaunchConfiguration('use_sim_time')}],
        ros_arguments=['--log-level', LaunchConfiguration('log_level')],
        condition=IfCondition(LaunchConfiguration('egomotion')))
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        arguments=['-d', os.path.join(share, 'config', 'rrb.rviz')],
        parameters=[{'use_sim_time': LaunchConfiguration('use_sim_time')}],
        condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription(args + [fastdds, pose_node, egomotion_node, rviz])
