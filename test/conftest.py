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

"""Shared fixtures: hermetic ROS settings, generated meshes and cameras."""

import os

import numpy as np
import pytest
import torch

# Each test process gets its own DDS domain, and discovery stays on loopback.
os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 90 + 10))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
# Camera-sized best-effort messages are lost with Fast DDS's default buffers (see the XML file).
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', os.path.abspath(os.path.join(
    os.path.dirname(__file__), os.pardir, 'config', 'fastdds_large_data.xml')))
torch.set_num_threads(2)


@pytest.fixture
def rng():
    """Return a seeded generator: tests are repeatable."""
    return np.random.default_rng(1234)


@pytest.fixture
def camera():
    """Return a 640x480 pinhole camera."""
    from rrb_ros.core.objects import default_camera
    return default_camera()


@pytest.fixture
def chair(rng):
    """Build a procedural chair (closed parts, metres) of about 2,000 faces."""
    from rrb_ros.core.objects import procedural_chair, subdivide
    return subdivide(procedural_chair(rng), 1500)


def spinning_test_node(name: str):
    """Yield an rclpy node in a context of its own, spun by an executor thread; clean up after.

    The geometry2 test pattern: the test keeps its own Context, so it never shares global
    rclpy state with the code under test.
    """
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(timeout=10.0)


def set_parameter(node, target: str, name: str, value, timeout: float = 60.0):
    """Ask node `target` (e.g. '/pose_node') to set a parameter; return its SetParametersResult."""
    import time

    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    client = node.create_client(SetParameters, f'{target}/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=timeout), f'no {target}/set_parameters'
        future = client.call_async(SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()]))
        deadline = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < deadline, f'no answer from {target}/set_parameters'
            time.sleep(0.05)
        (result,) = future.result().results
        return result
    finally:
        node.destroy_client(client)


def octahedron_onet(radius: float = 0.4):
    """Return an ONet img2mesh network (eval mode) whose shape is |x| + |y| + |z| <= radius.

    A real network with hand-set weights: whatever the image, the decoder's occupancy
    probability crosses 0.2 exactly on that octahedron, so reconstructions are known in advance.
    """
    from rrb_ros.core.reconstruct import OccupancyNetwork
    torch.manual_seed(1)
    net = OccupancyNetwork().eval()
    d = net.decoder
    with torch.no_grad():
        d.fc_p.weight.zero_()
        d.fc_p.bias.zero_()
        for i in range(3):  # channels i and i + 3 carry +p_i and -p_i: relu gives |p_i|
            d.fc_p.weight[i, i, 0] = 1.0
            d.fc_p.weight[i + 3, i, 0] = -1.0
        for block in (d.block0, d.block1, d.block2, d.block3, d.block4):
            block.fc_1.bias.zero_()
        d.fc_out.weight.zero_()
        d.fc_out.weight[0, :6, 0] = -10.0 * np.sqrt(1 + 1e-5)  # undo BN's eps
        d.fc_out.bias.fill_(float(np.log(0.2 / 0.8)) + 10.0 * radius)
    return net
