"""The one config schema: bundled files are valid, bad files give one clear error (file, key, line)."""
import textwrap

import pytest
import yaml

from voice_robot.config.base import validate
from voice_robot.config.deployment import Deployment, SystemConfig, deployment_for_scenario, load_deployment
from voice_robot.config.errors import ConfigError, load_yaml
from voice_robot.config.params import flatten, unflatten
from voice_robot.sim.scenario import load_scenario


def write(tmp_path, text):
    path = tmp_path / 'deploy.yaml'
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """\
format: voice_robot/deployment@1
robots:
  - name: ada
    position_m: [1.0, 2.0]
    mic_array: {layout: circular, channels: 4, radius_m: 0.032, height_m: 0.9}
"""


def test_bundled_deployments_are_valid(repo):
    for name in ('deployment.yaml', 'robot_hardware.yaml'):
        dep = load_deployment(repo / 'config' / name)
        assert dep.robots, name


def test_minimal_file_gets_defaults(tmp_path):
    dep = load_deployment(write(tmp_path, GOOD))
    assert dep.robots[0].ns == '/ada'
    assert dep.hearing.vad.backend == 'silero'
    assert dep.robots[0].mic_positions_map().shape == (4, 3)


@pytest.mark.parametrize('edit, key, expect, line', [
    (('radius_m: 0.032', 'radius_m: -1'), 'robots[0].mic_array.radius_m', 'greater than 0', 5),
    (('layout: circular', 'layout: spiral'), 'robots[0].mic_array', 'circular', 5),
    (('name: ada', 'name: 9ada'), 'robots[0].name', 'pattern', 3),
    (('position_m: [1.0, 2.0]', 'position_m: [1.0]'), 'robots[0].position_m', 'at least 2', 4),
    (('name: ada', 'name: ada\n    colour: red'), 'robots[0].colour', "unknown key 'colour'", 4),
])
def test_errors_name_file_key_line_and_expectation(tmp_path, edit, key, expect, line):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_deployment(path)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert expect in err.expectation
    assert err.line == line
    assert str(path) in str(err) and key in str(err)


def test_unknown_voice_engine_lists_known_engines(tmp_path):
    path = write(tmp_path, GOOD + '    voice: "festival:kal"\n')
    with pytest.raises(ConfigError, match='known engines: espeak, flite, piper'):
        load_deployment(path)


def test_duplicate_robot_names_rejected(tmp_path):
    text = GOOD + GOOD.split('robots:\n')[1]
    with pytest.raises(ConfigError, match='unique'):
        load_deployment(write(tmp_path, text))


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, GOOD + 'hearing: {vad: [unclosed\n')
    with pytest.raises(ConfigError) as info:
        load_deployment(path)
    assert info.value.line is not None and 'valid YAML' in info.value.expectation


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='not found'):
        load_deployment(tmp_path / 'nope.yaml')


def test_params_file_sections_validate_against_the_schema(repo):
    """config/voice_robot.params.yaml uses the same keys as the schema sections."""
    params = yaml.safe_load((repo / 'config' / 'voice_robot.params.yaml').read_text())
    node_section = {'hearing': 'hearing', 'face_tracker': 'seeing', 'attention': 'seeing',
                    'addressee': 'conversing', 'floor': 'conversing', 'dialogue': 'conversing',
                    'speech': 'speech', 'motion': 'motion'}
    checked = 0
    for key, body in params.items():
        node = key.split('/')[-1]
        if node not in node_section:
            continue
        section = node_section[node]
        model = SystemConfig.model_fields[section].annotation
        validate(model, body['ros__parameters'], f'voice_robot.params.yaml:{key}')
        checked += 1
    assert checked == len(node_section)


def test_flatten_roundtrip_matches_ros_parameter_names():
    flat = flatten(SystemConfig().hearing)
    assert flat['vad.threshold'] == 0.5
    assert unflatten(flat)['vad']['threshold'] == 0.5


def test_scenario_robots_use_the_same_schema(shared_scenarios):
    sc = load_scenario(shared_scenarios / 'table_two_robots_named.yaml')
    dep = deployment_for_scenario(sc)
    assert [r.name for r in dep.robots] == ['ada', 'bruno']
    assert dep.robots[1].yaw_deg == 180
    # the system's configuration carries robots and settings only: no humans, no events
    dumped = dep.model_dump()
    assert 'humans' not in dumped and 'events' not in dumped


def test_line_index_points_into_nested_lists(tmp_path):
    loaded = load_yaml(write(tmp_path, GOOD))
    assert loaded.line_of(('robots', 0, 'mic_array')) == 5


def hearing_error(tmp_path, hearing_yaml: str) -> ConfigError:
    """The error a deployment with this ``hearing:`` section raises."""
    with pytest.raises(ConfigError) as info:
        load_deployment(write(tmp_path, GOOD + 'hearing:\n  ' + hearing_yaml + '\n'))
    return info.value


def test_a_backchannel_model_that_is_no_file_is_named(tmp_path):
    err = hearing_error(tmp_path, 'backchannel_model: /nowhere/model.joblib')
    assert err.key == 'hearing.backchannel_model'
    assert "'bundled', 'trees', 'logistic' or the path" in err.expectation
    for choice in ('bundled', 'trees', 'logistic'):
        assert load_deployment(write(tmp_path, GOOD + f'hearing:\n  backchannel_model: {choice}\n'))


def test_a_near_end_low_band_upside_down_is_named(tmp_path):
    err = hearing_error(tmp_path, 'echo: {near_end_low_band_hz: [1000, 100], near_end_low_share: 0.3}')
    assert err.key == 'hearing.echo.near_end_low_band_hz'
    assert '0 <= low < high <= 8000' in err.expectation
    dep = load_deployment(write(tmp_path, GOOD + 'hearing:\n  echo: {near_end_low_share: 0.3}\n'))
    assert dep.hearing.echo.near_end_low_band_hz == [100.0, 1000.0] and dep.hearing.echo.near_end_low_share == 0.3
