"""Scenario builders and a robot speech player shared by the simulator tests."""
from __future__ import annotations

import numpy as np
import yaml

from voice_robot.messages import AudioChunk, SpeechKind, SpeechState
from voice_robot.sim.scenario import parse_scenario


def scenario_from(data: dict):
    """A validated scenario from a dict written like the YAML files."""
    return parse_scenario(yaml.safe_dump(data, sort_keys=False))


def base_scenario(**overrides) -> dict:
    """A small room: one robot (4-mic circle, camera), one seated person 1.5 m in front of it."""
    data = {
        'format': 'voice_robot/scenario@1',
        'name': 'test_room',
        'seed': 7,
        'room': {'size_m': [6.0, 5.0, 2.8], 'rt60_s': 0.3},
        'robots': [{'name': 'ada', 'position_m': [2.0, 2.5], 'yaw_deg': 0,
                    'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9},
                    'camera': {'hfov_deg': 70, 'height_m': 1.1, 'max_range_m': 4.0},
                    'voice': 'espeak:en+m3'}],
        'humans': [{'name': 'hugo', 'position_m': [3.5, 2.5, 1.2], 'voice': 'espeak:en-us+m4', 'facing': 'ada'}],
        'events': [{'id': 'u1', 't': 1.0, 'speaker': 'hugo', 'say': 'Ada, what time is it?', 'to': 'ada'}],
    }
    data.update(overrides)
    return data


def robot_speech(sim, robot: str, speech_id: str, samples: np.ndarray, start_t: float, *, in_reply_to='',
                 reply_to=(0.0, 0.0), kind=SpeechKind.REPLY):
    """Prepare a speech act: returns a callback to run after each step that plays it from ``start_t``.

    Chunks are stamped with the play time (the next frame's start), as the speech output does.
    """
    state = {'pos': None}
    n = sim.frame_samples

    def after_step():
        now = sim.t
        if state['pos'] is None:
            if now + 1e-9 < start_t:
                return
            state['pos'] = 0
            sim.on_speech_state(SpeechState(robot=robot, speaking=True, speech_id=speech_id, kind=kind, started=now,
                                            in_reply_to=in_reply_to, reply_to_start=reply_to[0],
                                            reply_to_end=reply_to[1], stamp=now))
        pos = state['pos']
        if pos is False:
            return
        if pos >= len(samples):
            sim.on_speech_state(SpeechState(robot=robot, speaking=False, speech_id=speech_id, kind=kind,
                                            in_reply_to=in_reply_to, reply_to_start=reply_to[0],
                                            reply_to_end=reply_to[1], stamp=now))
            state['pos'] = False
            return
        sim.add_robot_audio(robot, AudioChunk(stamp=now, sample_rate=sim.sample_rate,
                                              samples=samples[pos:pos + n, None].astype(np.float32)))
        state['pos'] = pos + n

    return after_step


def robot_voice_samples():
    from voice_robot.acting.tts import synthesize
    return synthesize('espeak:en+m3', 'Of course. It is a quarter past three in the afternoon.', 16000)
