"""Multi-source tracking on DOA peaks of rendered rooms, and triangulation from several robots."""
import math

import numpy as np
import pytest

from hearing_helpers import angle_error_deg, two_talker_scene
from voice_robot.hearing import scenes
from voice_robot.hearing.audio import StreamingStft
from voice_robot.hearing.doa import DoaEstimator, DoaPeak, NoiseFloor
from voice_robot.hearing.tracking import SourceTracker, triangulate, triangulate_robots


def run_tracker(scene, tracker):
    doa = DoaEstimator(scene.robot.mic_positions_base(), scene.sample_rate, 512)
    stft = StreamingStft(512, scene.mics.shape[1])
    frames, history = [], []
    power = [np.mean(img ** 2, axis=1) for img in scene.images]
    floor = NoiseFloor()
    for i in range(0, scene.mics.shape[0] - 256 + 1, 256):
        frames.append(stft.frame(scene.mics[i:i + 256]))
        if len(frames) % 4 or len(frames) < 16:
            continue
        t = (i + 256) / scene.sample_rate
        level = 10 * np.log10(np.mean(np.abs(np.stack(frames[-4:])) ** 2))
        loud = level > floor.update(t, level) + 6.0          # as the hearing stage gates DOA
        peaks = doa.estimate(np.stack(frames[-16:], axis=2)) if loud else []
        tracks = tracker.update(t, peaks)
        talking = [k for k, p in enumerate(power) if np.mean(p[max(0, i - 1024):i + 256]) > 1e-7]
        history.append((t, talking, [(tr.track_id, tr.azimuth, tr.confirmed) for tr in tracks],
                        {k: tracker.assigned[k].track_id for k in tracker.assigned}))
    return history


def test_each_talker_keeps_one_track_through_their_utterance():
    scene = two_talker_scene()
    tracker = SourceTracker(birth_blocks=3, death_s=1.5)
    history = run_tracker(scene, tracker)
    for talker in range(2):
        ids = []
        for t, talking, tracks, assigned in history:
            if talking == [talker] and scene.spans[talker][0] + 0.3 < t < scene.spans[talker][1] - 0.2:
                near = [tid for tid, az, conf in tracks if conf and angle_error_deg(az, scene.azimuths[talker]) < 12]
                ids += near
        assert ids, talker
        most = max(set(ids), key=ids.count)
        assert ids.count(most) / len(ids) > 0.9       # one track id for the talker
    assert tracker.births >= 2


def test_tracks_are_born_after_support_and_die_without_it():
    tracker = SourceTracker(birth_blocks=3, death_s=1.0, tentative_death_s=0.3)
    peak = [DoaPeak(math.radians(45), 1.0, 1.0)]
    tracker.update(0.064, peak)
    assert len(tracker.tracks) == 1 and not tracker.tracks[0].confirmed
    tracker.update(0.128, peak)
    tracker.update(0.192, peak)
    assert tracker.tracks[0].confirmed
    track_id = tracker.tracks[0].track_id
    tracker.update(0.256, [DoaPeak(math.radians(49), 1.0, 1.0), DoaPeak(math.radians(-90), 0.8, 1.0)])
    assert tracker.get(track_id) is not None and len(tracker.tracks) == 2
    assert tracker.assigned[0].track_id == track_id
    tracker.update(0.7, [])                      # the tentative one at -90 dies first
    assert [tr.track_id for tr in tracker.tracks] == [track_id]
    tracker.update(1.3, [])
    assert tracker.tracks == []
    with pytest.raises(ValueError, match='backwards'):
        tracker.update(1.0, [])


def test_triangulation_from_three_robots_recovers_a_person():
    person = np.array([3.2, 2.1])
    robots = [scenes.make_robot(name='ada', position=(1.0, 1.0), yaw_deg=30),
              scenes.make_robot(name='bruno', position=(5.0, 1.5), yaw_deg=170),
              scenes.make_robot(name='cleo', position=(3.0, 4.5), yaw_deg=-90)]
    rng = np.random.default_rng(0)
    noise = np.radians(3.0)
    azimuths = [r.bearing_to([*person, 1.2]) + rng.normal(0, noise) for r in robots]
    point, cov = triangulate_robots(robots, azimuths, [noise] * 3)
    assert np.linalg.norm(point - person) < 0.3
    assert cov.shape == (2, 2) and np.all(np.linalg.eigvalsh(cov) > 0)
    # The covariance is honest: the error is within three standard deviations.
    err = point - person
    assert float(err @ np.linalg.inv(cov) @ err) < 9 * 2


def test_triangulation_refuses_what_cannot_be_located():
    with pytest.raises(ValueError, match='at least two'):
        triangulate([(0, 0, 0)], [0.3])
    with pytest.raises(ValueError, match='parallel'):
        triangulate([(0, 0, 0), (0, 1, 0)], [0.0, 0.0])
    with pytest.raises(ValueError, match='behind'):
        triangulate([(0, 0, 0), (2, 0, 0)], [math.radians(135), math.radians(45)])
    with pytest.raises(ValueError, match='finite'):
        triangulate([(0, 0, 0), (2, 0, 0)], [float('nan'), 1.0])


def test_a_track_born_next_to_another_merges_into_it_and_says_so():
    tracker = SourceTracker(birth_blocks=3, merge_deg=12.0)
    for k in range(3):
        tracker.update(0.064 * (k + 1), [DoaPeak(math.radians(40), 1.0, 1.0)])
    talker = tracker.tracks[0].track_id
    # A reflection 10 degrees off starts a second track, which the talker's track absorbs at once.
    tracker.update(0.256, [DoaPeak(math.radians(41), 1.0, 1.0), DoaPeak(math.radians(51), 0.6, 1.0)])
    assert [tr.track_id for tr in tracker.tracks] == [talker]
    assert list(tracker.merged_into.values()) == [talker]
    tracker.update(0.32, [DoaPeak(math.radians(40), 1.0, 1.0)])
    assert tracker.merged_into == {}          # only this update's merges
