"""Shared helpers of the hearing tests: rendered rooms, real recordings, running a stage on audio."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from voice_robot.acting.tts import synthesize
from voice_robot.hearing import scenes

SR = 16000


def angle_error_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.atan2(math.sin(a - b), math.cos(a - b))))


@lru_cache(maxsize=None)
def tts(voice: str, text: str) -> np.ndarray:
    return synthesize(voice, text, SR)


def talked_over(robot, story: np.ndarray, robot_at: float, person: np.ndarray, person_at: float,
                azimuth_deg: float, distance_m: float, rt60: float, snr: float, noise: str, seed: int,
                max_order: int = 10, room=(6.0, 5.0, 3.0), names=('robot', 'person')):
    """``robot`` plays ``story`` from ``robot_at`` s and a person talks over it from ``person_at`` s:
    (rendered scene, the echo reference: what the robot played, sample-aligned with the microphones)."""
    scene = scenes.render(robot, [scenes.Talker(tuple(robot.loudspeaker_map()), story, robot_at, names[0]),
                                  scenes.Talker(scenes.place(robot, azimuth_deg, distance_m), person, person_at,
                                                names[1])],
                          room, rt60, snr, noise, seed=seed, max_order=max_order)
    reference = np.zeros(scene.mics.shape[0], np.float32)
    begin = int(robot_at * SR)
    reference[begin:begin + story.size] = story[:reference.size - begin]
    return scene, reference


@lru_cache(maxsize=None)
def two_talker_scene(channels: int = 4, rt60: float = 0.4, snr: float = 25.0, overlap: bool = False):
    """A robot in the middle of a room, a woman at +60 deg then a man at -80 deg (TTS voices)."""
    robot = scenes.make_robot(channels, {4: 0.032, 6: 0.046, 8: 0.05}[channels], (3.0, 2.5))
    a = tts('flite:slt', 'Ada, could I get the menu please?')
    b = tts('flite:rms', 'Did you see the game last night?')
    start_b = 1.6 if overlap else 1.0 + a.size / SR + 1.0
    talkers = [scenes.Talker(scenes.place(robot, 60, 1.5), a, 1.0, 'iris'),
               scenes.Talker(scenes.place(robot, -80, 1.7), b, start_b, 'jon')]
    return scenes.render(robot, talkers, (6.0, 5.0, 3.0), rt60, snr, 'pink', seed=3, max_order=10)


@lru_cache(maxsize=None)
def librivox_scene(azimuth_deg: float = 30.0, rt60: float = 0.5, snr: float = 20.0):
    """A real LibriVox recording (pocketsphinx-testdata) played in a reverberant room."""
    robot = scenes.make_robot(4, 0.032, (3.0, 2.5))
    clip, text = scenes.librivox_clips()[1]
    talkers = [scenes.Talker(scenes.place(robot, azimuth_deg, 1.6), scenes.level(clip), 0.7, 'reader')]
    return scenes.render(robot, talkers, (6.0, 5.0, 3.0), rt60, snr, 'white', seed=1, max_order=10), text
