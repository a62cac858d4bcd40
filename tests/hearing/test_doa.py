"""Direction of arrival with each pyroomacoustics algorithm on rendered reverberant rooms and a recording."""
import math

import numpy as np
import pytest

from hearing_helpers import angle_error_deg, librivox_scene, tts, two_talker_scene
from voice_robot.hearing import scenes
from voice_robot.hearing.audio import StreamingStft
from voice_robot.hearing.doa import DoaEstimator, NoiseFloor, fold_azimuth, linear_array_normal


def block_estimates(scene, algorithm, span, context=4):
    robot = scene.robot
    doa = DoaEstimator(robot.mic_positions_base(), scene.sample_rate, 512, algorithm)
    stft = StreamingStft(512, scene.mics.shape[1])
    frames, out = [], []
    for i in range(0, scene.mics.shape[0] - 256 + 1, 256):
        frames.append(stft.frame(scene.mics[i:i + 256]))
        t = i / scene.sample_rate
        if len(frames) % 4 == 0 and len(frames) >= 4 * context and span[0] + 0.3 < t < span[1]:
            peaks = doa.estimate(np.stack(frames[-4 * context:], axis=2))
            out.append(peaks[0].azimuth)
    return out


@pytest.mark.parametrize('algorithm', ['srp_phat', 'music', 'normmusic'])
def test_each_algorithm_finds_a_talker_in_a_reverberant_room(algorithm):
    scene = two_talker_scene()
    for talker in range(2):
        est = block_estimates(scene, algorithm, scene.spans[talker])
        errors = [angle_error_deg(e, scene.azimuths[talker]) for e in est]
        assert len(errors) > 10
        assert np.median(errors) < (10 if algorithm != 'music' else 15), (algorithm, talker, np.median(errors))


def test_a_recorded_reader_is_located_in_the_base_frame():
    scene, _ = librivox_scene(azimuth_deg=-120.0)
    est = block_estimates(scene, 'srp_phat', scene.spans[0])
    assert math.degrees(scene.azimuths[0]) == pytest.approx(-120.0, abs=1.0)
    assert np.median([angle_error_deg(e, scene.azimuths[0]) for e in est]) < 8


def test_a_linear_array_reports_one_front_image_per_talker():
    """A line of microphones hears a talker and its mirror image alike: one peak, on the side it faces."""
    robot = scenes.make_linear_robot(4, 0.04, (3.0, 2.5))
    front = tts('flite:slt', 'Could you tell me where the nearest train station is, please?')
    behind = tts('flite:rms', 'I think we should meet again next week to talk about the plan.')
    talkers = [scenes.Talker(scenes.place(robot, 35, 1.5), front, 0.3),
               scenes.Talker(scenes.place(robot, -140, 1.6), behind, 0.6 + front.size / 16000)]
    scene = scenes.render(robot, talkers, (6.0, 5.0, 3.0), 0.3, 25, 'pink', seed=2, max_order=8)
    normal = linear_array_normal(robot.mic_positions_base())
    assert normal is not None and normal[0] > 0.99
    assert linear_array_normal(scenes.make_robot(4).mic_positions_base()) is None
    for talker, expected_deg in ((0, 35.0), (1, -40.0)):
        est = block_estimates(scene, 'srp_phat', scene.spans[talker])
        assert len(est) > 10
        assert all(abs(e) <= math.pi / 2 + 1e-6 for e in est)
        assert np.median([angle_error_deg(e, math.radians(expected_deg)) for e in est]) < 10
        assert math.degrees(fold_azimuth(scene.azimuths[talker], normal)) == pytest.approx(expected_deg, abs=1.0)


def test_bad_blocks_are_refused():
    scene = two_talker_scene()
    doa = DoaEstimator(scene.robot.mic_positions_base(), 16000, 512)
    with pytest.raises(ValueError, match='DOA block'):
        doa.estimate(np.zeros((3, 257, 4), complex))
    with pytest.raises(ValueError, match='unknown DOA algorithm'):
        DoaEstimator(scene.robot.mic_positions_base(), 16000, 512, 'tops')


def test_noise_floor_ignores_speech_and_follows_the_background():
    floor = NoiseFloor(rise_db_per_s=3.0)
    for k in range(50):
        floor.update(k * 0.064, -60.0)
    for k in range(50, 80):                   # two seconds of speech 30 dB up
        floor.update(k * 0.064, -30.0)
    assert floor.level_db < -53
    for k in range(80, 90):                   # a quieter room
        floor.update(k * 0.064, -70.0)
    assert floor.level_db < -68


def test_noise_aware_doa_finds_a_person_talking_over_a_television():
    """A loudspeaker plays speech from one side the whole time; a person talks from elsewhere, no
    louder. Whitened by the background learned before, the person is located; plain SRP-PHAT mostly
    points at the television."""
    from voice_robot.hearing.doa import NoiseAwareDoa
    robot = scenes.make_robot(6, 0.04, (3.0, 2.5))
    clips = [c for c, _ in scenes.librivox_clips()]
    tv = scenes.level(np.concatenate(clips)[:16000 * 6], -23.0)
    person = scenes.level(tts('flite:slt', 'Could you tell me where the nearest train station is, please?'), -23.0)
    scene = scenes.render(robot, [scenes.Talker(scenes.place(robot, 120, 2.0), tv, 0.0, 'tv'),
                                  scenes.Talker(scenes.place(robot, -30, 1.2), person, 2.0, 'iris')],
                          (6.0, 5.0, 3.0), 0.3, 30, 'pink', seed=3, max_order=8, duration_s=5.5)
    gevd = NoiseAwareDoa(robot.mic_positions_base(), 16000, 512)
    srp = DoaEstimator(robot.mic_positions_base(), 16000, 512)
    stft = StreamingStft(512, scene.mics.shape[1])
    frames, found, plain = [], [], []
    for i in range(0, scene.mics.shape[0] - 256 + 1, 256):
        frames.append(stft.frame(scene.mics[i:i + 256]))
        t = i / 16000
        if t < 1.8:
            gevd.observe_noise(frames[-1])
        elif 2.2 < t < scene.spans[1][1] and len(frames) % 4 == 0:
            block = np.stack(frames[-16:], axis=2)
            peaks = gevd.estimate(block)
            if peaks:
                found.append(angle_error_deg(peaks[0].azimuth, scene.azimuths[1]))
            plain.append(angle_error_deg(srp.estimate(block)[0].azimuth, scene.azimuths[1]))
    assert len(found) > 0.2 * len(plain)
    assert np.median(found) < 10
    assert np.median(found) < np.median(plain)
