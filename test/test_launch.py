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

"""The launch file and the node's README section.

Without `launch` installed (the pip environment) the launch file is checked by compiling and
parsing it; where `launch_ros` is installed, its LaunchDescription is also built.
"""

import ast
import importlib.util
from pathlib import Path
import py_compile
import re

import pytest
from rclpy.parameter import Parameter

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'rrb.launch.py'
README = ROOT / 'README.md'
LAUNCH_ARGUMENTS = {'namespace', 'params_file', 'use_sim_time'}
REMAPPED = {'image', 'mask', 'camera_info'}


def _calls(tree, name):
    """Return the calls of a function or class called `name` (plain or attribute access)."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def _keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


@pytest.fixture(scope='module')
def launch_ast():
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def test_launch_file_compiles(tmp_path):
    py_compile.compile(str(LAUNCH_FILE), cfile=str(tmp_path / 'rrb.launch.pyc'), doraise=True)


def test_launch_file_declares_its_arguments(launch_ast):
    functions = {n.name for n in ast.walk(launch_ast) if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    declared = {c.args[0].value for c in _calls(launch_ast, 'DeclareLaunchArgument')
                if c.args and isinstance(c.args[0], ast.Constant)}
    assert LAUNCH_ARGUMENTS <= declared, f'missing {LAUNCH_ARGUMENTS - declared}'


def test_launch_file_starts_pose_node_with_remapped_inputs(launch_ast):
    nodes = [c for c in _calls(launch_ast, 'Node')
             if isinstance(_keyword(c, 'executable'), ast.Constant)
             and _keyword(c, 'executable').value == 'pose_node']
    assert len(nodes) == 1, 'the launch file must start executable pose_node once'
    (node,) = nodes
    assert isinstance(_keyword(node, 'package'), ast.Constant)
    assert _keyword(node, 'package').value == 'rrb_ros'
    remappings = _keyword(node, 'remappings')
    assert isinstance(remappings, ast.List), 'remappings must be a literal list of pairs'
    remapped = {pair.elts[0].value for pair in remappings.elts
                if isinstance(pair, ast.Tuple) and isinstance(pair.elts[0], ast.Constant)}
    assert REMAPPED <= remapped, f'not remapped: {REMAPPED - remapped}'
    # the namespace, parameter file and sim time reach the node
    source = ast.unparse(node)
    for argument in LAUNCH_ARGUMENTS:
        assert f"LaunchConfiguration('{argument}')" in source, argument


def test_launch_arguments_are_all_used(launch_ast):
    declared = {c.args[0].value for c in _calls(launch_ast, 'DeclareLaunchArgument')}
    used = {c.args[0].value for c in _calls(launch_ast, 'LaunchConfiguration')}
    assert declared == used, f'declared, unused: {declared - used}; used, undeclared: ' \
        f'{used - declared}'


def test_egomotion_node_shares_pose_nodes_namespace(launch_ast):
    nodes = {_keyword(c, 'executable').value: c for c in _calls(launch_ast, 'Node')}
    assert set(nodes) == {'pose_node', 'egomotion_node', 'rviz2'}
    for name in ('pose_node', 'egomotion_node'):  # egomotion_node reads pose_node's detections
        assert ast.unparse(_keyword(nodes[name], 'namespace')) == \
            "LaunchConfiguration('namespace')", name
    assert 'egomotion' in ast.unparse(_keyword(nodes['egomotion_node'], 'condition'))
    assert 'rviz' in ast.unparse(_keyword(nodes['rviz2'], 'condition'))


@pytest.mark.parametrize('node', ['pose_node', 'egomotion_node'])
def test_shipped_parameter_files_match_the_nodes(node):
    """Every parameter of config/*.yaml is one the node declares, with the default's type."""
    from rrb_ros.core.config import object_parameters, read_params_file
    if node == 'pose_node':
        from rrb_ros.ros.pose_node import PARAMETERS
        params = read_params_file(ROOT / 'config' / 'rrb.yaml')
        table = {**PARAMETERS, **object_parameters(params['objects.names'])}
    else:
        from rrb_ros.ros import egomotion_node
        table = egomotion_node.PARAMETERS
        params = read_params_file(ROOT / 'config' / 'egomotion.yaml', node)
        assert set(params) == set(table), set(params) ^ set(table)
    for name, value in params.items():
        assert name in table, f'{node} does not declare {name}'
        default = table[name][0]
        if isinstance(default, float):
            assert isinstance(value, (int, float)) and not isinstance(value, bool), name
        elif not isinstance(default, Parameter.Type):
            assert type(value) is type(default), (name, value, default)
    if node == 'egomotion_node':  # the shipped file holds the defaults
        assert params == {name: default for name, (default, _) in table.items()}


def test_launch_description_builds():
    pytest.importorskip('launch_ros')
    from ament_index_python.packages import PackageNotFoundError
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node
    spec = importlib.util.spec_from_file_location('rrb_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except PackageNotFoundError:
        pytest.skip('rrb_ros is not installed in an ament index (colcon build it)')
    names = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert LAUNCH_ARGUMENTS <= names
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert [(n.node_package, n.node_executable) for n in nodes] == [
        ('rrb_ros', 'pose_node'), ('rrb_ros', 'egomotion_node'), ('rviz2', 'rviz2')]


# -- README ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('heading', ['Subscribed topics', 'Published topics', 'Parameters',
                                     'Frames'])
def test_readme_documents_the_node(heading):
    headings = re.findall(r'^#+\s*(.+?)\s*$', README.read_text(), flags=re.MULTILINE)
    assert heading in headings, f'README.md has no section {heading!r}'


def test_readme_lists_every_parameter():
    from rrb_ros.ros.pose_node import PARAMETERS
    text = README.read_text()
    missing = [name for name in PARAMETERS if f'`{name}`' not in text]
    assert not missing, f'parameters not documented in README.md: {missing}'
