"""An invalid scenario gives one clear error naming file, field and expectation, before any rendering."""
import textwrap

import pytest

from voice_robot.config.errors import ConfigError
from voice_robot.sim.scenario import GazeEvent, UtteranceEvent, load_scenario, scenario_files

BASE = """\
format: voice_robot/scenario@1
name: tiny
room: {size_m: [5.0, 4.0, 2.8], rt60_s: 0.3}
robots:
  - {name: ada, position_m: [1.0, 2.0], mic_array: {layout: circular, channels: 4, radius_m: 0.03, height_m: 0.9}}
humans:
  - {name: hugo, position_m: [3.0, 2.0, 1.2], voice: "espeak:en+m3", facing: ada}
events:
  - {id: u1, t: 1.0, speaker: hugo, say: "Ada, hello.", to: ada}
  - {id: g1, after: {robot_speech_end_of: u1, offset_s: 0.2}, look: {who: hugo, at: none}}
"""


def load(tmp_path, text, name='s.yaml'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_scenario(path)


def test_base_is_valid(tmp_path):
    sc = load(tmp_path, BASE)
    assert isinstance(sc.events[0], UtteranceEvent) and isinstance(sc.events[1], GazeEvent)


@pytest.mark.parametrize('old, new, key, expect', [
    ('name: tiny', 'name: tiny\nlighting: dim', 'lighting', "unknown key 'lighting'"),
    ('voice: "espeak:en+m3"', 'voice: "festival:kal"', 'humans[0].voice', 'known engines'),
    ('[3.0, 2.0, 1.2]', '[6.0, 2.0, 1.2]', 'humans[0].position_m', 'inside the room'),
    ('robot_speech_end_of: u1', 'robot_speech_end_of: u7', 'events[1].after.robot_speech_end_of', "no event 'u7'"),
    ('to: ada}', 'to: zed}', 'events[0].to', "a robot name, 'robots'"),
    ('speaker: hugo', 'speaker: ada', 'events[0].speaker', 'a human name'),
    ('t: 1.0, speaker', 'speaker', 'events[0]', 'exactly one start'),
    ('format: voice_robot/scenario@1', 'format: voice_robot/scenario@2', 'format', 'voice_robot/scenario@1'),
])
def test_errors_name_the_field(tmp_path, old, new, key, expect):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, BASE.replace(old, new))
    assert info.value.key == key, str(info.value)
    assert expect in info.value.expectation
    assert info.value.file.endswith('s.yaml')


def test_clip_that_is_not_audio(tmp_path):
    (tmp_path / 'notes.wav').write_text('this is not a wav file')
    text = BASE.replace('say: "Ada, hello."', 'clip: notes.wav')
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.key == 'events[0].clip' and 'readable audio' in info.value.expectation


def test_missing_clip(tmp_path):
    with pytest.raises(ConfigError, match='not found'):
        load(tmp_path, BASE.replace('say: "Ada, hello."', 'clip: missing.wav'))


def test_reference_cycle(tmp_path):
    text = BASE.replace('{id: u1, t: 1.0,', '{id: u1, after: {event: g1},')
    text = text.replace('robot_speech_end_of: u1', 'event: u1')
    with pytest.raises(ConfigError, match='cycle'):
        load(tmp_path, text)


def test_public_scenarios_all_load(shared_scenarios):
    files = scenario_files([shared_scenarios])
    assert len(files) >= 6
    for f in files:
        sc = load_scenario(f)
        assert sc.utterances
