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
