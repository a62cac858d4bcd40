"""The robot's own voice through a real room (pyroomacoustics) is cancelled; a person talking over it is not."""
from functools import lru_cache

import numpy as np
import pytest

from hearing_helpers import SR, talked_over, tts
from voice_robot.hearing import scenes
from voice_robot.hearing.echo import EchoCanceller, ReferenceBuffer

STORY = ('Once upon a time there was a little boat that sailed across the sea every morning. '
         'The fishermen loved it, and the gulls followed it all day long, singing over the waves.')


@lru_cache(maxsize=1)
def echo_scene():
    robot = scenes.make_robot(position=(3.0, 2.5))
    voice = tts('espeak:en+m3', STORY)
    person = tts('flite:awb', 'Sorry, stop. What time is it?')
    return talked_over(robot, voice, 0.5, person, 4.6, 40, 1.8, 0.4, 45, 'white', seed=2, max_order=12,
                       names=('robot', 'hugo'))


def cancel(scene, reference, canceller):
    out = [canceller.process(scene.mics[i:i + 256], reference[i:i + 256])
           for i in range(0, scene.mics.shape[0] - 255, 256)]
    return np.concatenate(out)


def power(x, a, b):
    return float(np.mean(x[int(a * SR):int(b * SR)] ** 2))


def test_own_voice_is_cancelled_and_a_person_talking_over_it_is_kept():
    scene, reference = echo_scene()
    robot_img, person_img = scene.images
    aec = EchoCanceller(4, 256, taps=10, mu_max=1.0)
    out = cancel(scene, reference, aec)
    mic = scene.mics[:out.shape[0]]
    # Before the person speaks, after three seconds of the robot talking: the echo drops by 15 dB+.
    erle = 10 * np.log10(power(mic, 3.0, 4.5) / power(out, 3.0, 4.5))
    assert erle > 15, erle
    assert aec.adapted
    # Double talk: the person comes through undistorted and dominates what is left.
    span = slice(int(4.6 * SR), int(6.4 * SR))
    person = person_img[span, 0]
    left = out[span, 0]
    gain = float(np.dot(left, person) / np.dot(person, person))
    assert 0.85 < gain < 1.15
    residual = left - gain * person
    assert 10 * np.log10(np.mean((gain * person) ** 2) / np.mean(residual ** 2)) > 5
    # The person did not unteach the echo path: after they stop, the echo is cancelled better still.
    erle_after = 10 * np.log10(power(mic, 7.0, 8.5) / power(out, 7.0, 8.5))
    assert erle_after > 20, erle_after


@lru_cache(maxsize=1)
def first_act_scene():
    """A person already talking when the robot speaks for the first time (double talk from the start)."""
    robot = scenes.make_robot(position=(2.0, 2.0))
    voice = tts('espeak:en+m3', STORY)[:3 * SR]
    person = tts('flite:awb', 'Could you tell me where the nearest train station is, please?')
    scene = scenes.render(robot, [scenes.Talker(tuple(robot.loudspeaker_map()), voice, 0.5, 'robot'),
                                  scenes.Talker(scenes.place(robot, -30, 1.6, 1.5), person, 0.4, 'hugo')],
                          (5.0, 4.5, 2.7), 0.45, 20, 'babble', seed=3, max_order=8, duration_s=3.6)
    reference = np.zeros(scene.mics.shape[0], np.float32)
    reference[int(0.5 * SR):int(0.5 * SR) + voice.size] = voice[:scene.mics.shape[0] - int(0.5 * SR)]
    return scene, reference


def test_a_first_act_under_double_talk_is_cancelled_within_a_second():
    """The warm start (least squares on the opening audio) learns the path while the person talks."""
    scene, reference = first_act_scene()
    robot_img = scene.images[0]

    def echo_left_db(aec):
        out = cancel(scene, reference, aec)
        span = slice(int(1.0 * SR), int(1.5 * SR))      # the act's second half-second
        echo_estimate = scene.mics[:out.shape[0]][span] - out[span]
        residue = robot_img[span] - echo_estimate
        return 10 * np.log10(np.mean(robot_img[span] ** 2) / np.mean(residue ** 2))

    warm = EchoCanceller(4, 256, taps=10, mu_max=1.0)
    cold = EchoCanceller(4, 256, taps=10, mu_max=1.0, warm_start_blocks=0)
    warm_erle, cold_erle = echo_left_db(warm), echo_left_db(cold)
    assert warm.warm_starts >= 2
    assert warm_erle > 10, warm_erle
    assert warm_erle > cold_erle + 5, (warm_erle, cold_erle)


def test_without_reference_audio_the_microphones_pass_unchanged():
    scene, _ = echo_scene()
    aec = EchoCanceller(4, 256)
    block = scene.mics[8000:8256]
    assert np.array_equal(aec.process(block, np.zeros(256)), block)
    with pytest.raises(ValueError, match='256'):
        aec.process(scene.mics[:100], np.zeros(100))


def test_reference_buffer_returns_what_played_when():
    buf = ReferenceBuffer(SR, capacity_s=2.0)
    voice = tts('espeak:en+m3', 'Hello.')
    for i in range(0, 3200, 320):
        buf.push(5.0 + i / SR, voice[i:i + 320])
    assert buf.covers(5.2) and not buf.covers(5.3)
    assert np.array_equal(buf.get(5.01, 160), voice[160:320])
    assert np.array_equal(buf.get(4.99, 320)[:160], np.zeros(160))
    buf.push(20.0, voice[:320])              # long after: the old audio is gone, nothing grows
    assert buf._data.size <= buf.capacity
    assert np.all(buf.get(5.0, 320) == 0)


def test_reference_buffer_stores_seamless_chunks_seamlessly_whatever_their_stamps_round_to():
    # A loudspeaker plays consecutive chunks back to back (so does the simulator); a stamp that rounds
    # one sample off where the previous chunk ended must not shift the reference against the echo.
    buf = ReferenceBuffer(SR)
    x = np.arange(1, 961, dtype=np.float32)
    t0 = 5.0 + 0.49 / SR
    buf.push(t0, x[:320])
    buf.push(t0 + (320 + 0.02) / SR, x[320:640])        # rounds to the sample after the previous end
    buf.push(t0 + (640 - 0.9) / SR, x[640:])             # ... and to the one before it
    assert np.array_equal(buf.get(5.0, 960), x)
    buf.push(5.0 + 0.1, x[:320])                         # 40 ms later: a new start, stored at its stamp
    assert np.array_equal(buf.get(5.0 + 0.1, 320), x[:320]) and not np.any(buf.get(5.0 + 0.07, 320))
