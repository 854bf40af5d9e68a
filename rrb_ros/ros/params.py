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

"""Declaring a node's parameters: described, read-only, integers taken where doubles are due."""

from __future__ import annotations

from typing import Any, Mapping

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy

_TYPE_NAMES = {bool: 'a boolean', int: 'an integer', float: 'a number', str: 'a string',
               list: 'a list'}


def declare(node: Node, table: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare each `name: (default, description)` on `node`; return the values by name.

    The nodes read their parameters once, at start-up, so each is declared read-only: setting
    one on a running node is refused with a reason instead of being accepted and ignored. A
    parameter whose default is a double takes an integer too (`warn_period: 5` in YAML); its
    value is then a float. A default may be a `Parameter.Type` (a parameter with no default,
    e.g. a string array). Raises ValueError naming a parameter of the wrong type.
    """
    out = {}
    for name, (default, description) in table.items():
        numeric = isinstance(default, float)
        desc = ParameterDescriptor(description=description, read_only=True,
                                   dynamic_typing=numeric)
        try:
            value = node.declare_parameter(name, default, desc).value
        except InvalidParameterTypeException:
            given = getattr(node, '_parameter_overrides', {}).get(name)
            raise ValueError(f'parameter {name} must be {_expected(default)}'
                             + (f', got {given.value!r}' if given is not None else '')) from None
        if numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'parameter {name} must be a number, got {value!r}')
            value = float(value)
        out[name] = value
    return out


def warn_unknown(node: Node) -> list[str]:
    """Warn about (and return) parameters given to `node` that it did not declare: typos.

    Call it after every parameter is declared; `use_sim_time` is rclpy's own.
    """
    unknown = sorted(n for n in getattr(node, '_parameter_overrides', {})
                     if not node.has_parameter(n) and n != 'use_sim_time')
    if unknown:
        node.get_logger().warn(f'ignoring unknown parameters: {", ".join(unknown)}')
    return unknown


def _expected(default: Any) -> str:
    if isinstance(default, Parameter.Type):
        return f'of type {default.name.lower()}'
    return _TYPE_NAMES.get(type(default), f'of type {type(default).__name__}')


def reliability(value: str) -> ReliabilityPolicy:
    """Return the QoS reliability a `reliability` parameter names; ValueError for others."""
    if value not in ('best_effort', 'reliable'):
        raise ValueError(f"reliability must be 'best_effort' or 'reliable', got {value!r}")
    return ReliabilityPolicy.RELIABLE if value == 'reliable' else ReliabilityPolicy.BEST_EFFORT
