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

"""A node's `main`: create it, spin it until shutdown, and turn the outcome into an exit code."""

from __future__ import annotations

from typing import Callable, TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node

N = TypeVar('N', bound=Node)


def run_node(name: str, make: Callable[[], N], args: list[str] | None = None,
             startup_errors: tuple[type[Exception], ...] = (ValueError,),
             on_shutdown: Callable[[N, RcutilsLogger], bool] | None = None) -> int:
    """Run the node `make()` returns until shutdown or Ctrl-C; return the process exit code.

    An exception of `startup_errors` from `make` (a bad parameter, a missing mesh) is logged as
    fatal, "cannot start: ...", and gives 1. After spinning, the node is destroyed and then
    `on_shutdown(node, logger)` runs (e.g. writing files); False from it gives 1.
    """
    with rclpy.init(args=args):
        logger = rclpy.logging.get_logger(name)
        try:
            node = make()
        except startup_errors as exc:
            logger.fatal(f'cannot start: {exc}')
            return 1
        except (KeyboardInterrupt, ExternalShutdownException):
            return 0
        try:
            rclpy.spin(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            node.destroy_node()
            ok = on_shutdown is None or on_shutdown(node, logger)
    return 0 if ok else 1
