"""Launch files checked without the `launch` package (absent from the PyPI wheels).

A recording test double of the launch / launch_ros API stands in for the real one; the launch files
run against it, and every executable, parameter file, included file and argument they name must exist.
"""
import importlib.util
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / 'launch').glob('*.launch.py'))


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration:
    def __init__(self, name, default=None):
        self.name = name

    def perform(self, context):
        return context.configs[self.name]


class DeclareLaunchArgument(Recorded):
    @property
    def name(self):
        return self.args[0]


class LaunchDescription(Recorded):
    @property
    def entities(self):
        return self.args[0]


class Context:
    def __init__(self, configs):
        self.configs = configs


def fake_modules(share: Path) -> dict:
    mods = {}

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        mods[name] = mod
        return mod

    module('launch', LaunchDescription=LaunchDescription)
    module('launch.actions', DeclareLaunchArgument=DeclareLaunchArgument,
           IncludeLaunchDescription=type('IncludeLaunchDescription', (Recorded,), {}),
           OpaqueFunction=type('OpaqueFunction', (Recorded,), {}))
    module('launch.conditions', IfCondition=type('IfCondition', (Recorded,), {}))
    module('launch.substitutions', LaunchConfiguration=LaunchConfiguration)
    module('launch.launch_description_sources',
           PythonLaunchDescriptionSource=type('PythonLaunchDescriptionSource', (Recorded,), {}))
    module('launch_ros')
    module('launch_ros.actions', Node=type('Node', (Recorded,), {}))
    module('ament_index_python')
    # The source tree has the installed share/ layout: config/, launch/, sim/scenarios/.
    module('ament_index_python.packages', get_package_share_directory=lambda pkg: str(share))
    return mods


def load(path: Path, monkeypatch):
    for name, mod in fake_modules(REPO).items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def configs_used(obj, found=None):
    """Names of every LaunchConfiguration inside an action's arguments."""
    found = set() if found is None else found
    if isinstance(obj, LaunchConfiguration):
        found.add(obj.name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            configs_used(k, found)
            configs_used(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            configs_used(v, found)
    elif isinstance(obj, Recorded):
        configs_used(list(obj.args), found)
        configs_used(obj.kwargs, found)
    return found


def console_scripts() -> set[str]:
    return {ep.name for ep in entry_points(group='console_scripts')
            if ep.value.startswith('voice_robot.')}


def expand(description, monkeypatch):
    """All actions, with OpaqueFunctions and includes resolved using the declared defaults."""
    declared = {a.name: a for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    defaults = {}
    for name, arg in declared.items():
        default = arg.kwargs.get('default_value', '')
        defaults[name] = default if isinstance(default, str) else defaults.get(default.name, 'x')
    actions = []
    for action in description.entities:
        if type(action).__name__ == 'OpaqueFunction':
            actions += action.kwargs['function'](Context(defaults))
        else:
            actions.append(action)
    return declared, actions


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path, monkeypatch):
    description = load(path, monkeypatch)
    declared, actions = expand(description, monkeypatch)
    for required in ('namespace', 'robot', 'use_sim_time'):
        assert required in declared, f'{path.name} does not declare {required}'
    scripts = console_scripts()
    for action in actions:
        kind = type(action).__name__
        used = configs_used(action)
        assert used <= set(declared), f'{path.name}: undeclared launch arguments {used - set(declared)}'
        if kind == 'Node':
            assert action.kwargs['package'] == 'voice_robot'
            assert action.kwargs['executable'] in scripts, action.kwargs['executable']
        if kind == 'IncludeLaunchDescription':
            source = action.args[0].args[0]
            assert Path(source).is_file(), source
            included = load(Path(source), monkeypatch)
            inc_declared = {a.name for a in included.entities if isinstance(a, DeclareLaunchArgument)}
            passed = {k for k, _ in action.kwargs.get('launch_arguments', [])}
            assert passed <= inc_declared, f'{path.name} passes unknown arguments {passed - inc_declared}'
    for arg in declared.values():
        default = arg.kwargs.get('default_value')
        if isinstance(default, str) and default.endswith(('.yaml', '.py')):
            assert Path(default).is_file(), f'{path.name}: default {default} does not exist'


def test_robot_launch_starts_every_core_node(monkeypatch):
    from voice_robot.nodes.robot import CAMERA, CORE_NODES, FACE_TRACKER, AUDIO_CAPTURE
    description = load(REPO / 'launch' / 'robot.launch.py', monkeypatch)
    started = {a.kwargs['name'] for a in description.entities if type(a).__name__ == 'Node'}
    assert {n.name for n in CORE_NODES + (CAMERA, FACE_TRACKER, AUDIO_CAPTURE)} == started


def test_every_node_module_has_build_and_main():
    from voice_robot.nodes.robot import CAMERA, CORE_NODES, FACE_TRACKER, AUDIO_CAPTURE
    for spec in CORE_NODES + (CAMERA, FACE_TRACKER, AUDIO_CAPTURE):
        module = importlib.import_module(spec.module)
        assert callable(module.build) and callable(module.main), spec.module
