"""Room acoustics of the simulator: levels, noise, coherence, determinism, responses."""
import math

import numpy as np
import pytest
from scipy.signal import coherence

from voice_robot.messages import AudioChunk
from voice_robot.sim.acoustics import diffuse_coherence, room_impulse_responses
from voice_robot.sim.world import Simulator

from sim_helpers import base_scenario, scenario_from


def collect(sim, seconds=None, after_step=None):
    """Run the simulator (to the end, or for ``seconds``) and return {robot: (samples, channels)}."""
    frames = {name: [] for name in sim.layout.robots}
    while not sim.done and (seconds is None or sim.t < seconds - 1e-9):
        out = sim.step()
        for name, chunk in out.audio.items():
            assert chunk.samples.dtype == np.float32
            frames[name].append(chunk.samples)
        if after_step is not None:
            after_step()
    return {name: np.concatenate(f) for name, f in frames.items()}


def power_db(x):
    return 10 * math.log10(float(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def two_talker_room(noise=None, first_t=12.0, room=None):
    data = base_scenario(
        room=room or {'size_m': [7.0, 6.0, 3.0], 'rt60_s': 0.4, **({'noise': noise} if noise else {})},
        humans=[{'name': 'hugo', 'position_m': [3.5, 3.0, 1.2], 'voice': 'espeak:en-us+m4', 'facing': 'ada'},
                {'name': 'lea', 'position_m': [4.5, 4.0, 1.6], 'voice': 'flite:slt', 'facing': 'ada'}],
        robots=[{'name': 'ada', 'position_m': [2.0, 3.0], 'yaw_deg': 0,
                 'mic_array': {'layout': 'circular', 'channels': 6, 'radius_m': 0.046, 'height_m': 1.0}}],
        events=[{'id': 'u1', 't': first_t, 'speaker': 'hugo', 'say': 'Ada, could you turn on the lights?', 'to': 'ada'},
                {'id': 'u2', 'after': {'event': 'u1', 'offset_s': 0.5}, 'speaker': 'lea',
                 'say': 'And please open the window a little.', 'to': 'ada'}])
    return scenario_from(data)


def test_same_seed_same_audio_and_another_seed_other_noise():
    data = base_scenario(room={'size_m': [6.0, 5.0, 2.8], 'rt60_s': 0.3, 'noise': {'kind': 'pink', 'snr_db': 10},
                               'noise_sources': [{'name': 'fan', 'position_m': [5.0, 1.0, 2.0], 'kind': 'white',
                                                  'level_db': -10}]})
    a = collect(Simulator(scenario_from(data)), seconds=2.0)['ada']
    b = collect(Simulator(scenario_from(data)), seconds=2.0)['ada']
    assert np.array_equal(a, b)
    c = collect(Simulator(scenario_from({**data, 'seed': 8})), seconds=2.0)['ada']
    assert a.shape == c.shape and not np.allclose(a, c)
    # the talker is the same in both: the speech part correlates strongly, the noise part not at all
    speech = slice(int(1.1 * 16000), int(1.9 * 16000))
    assert np.corrcoef(a[speech, 0], c[speech, 0])[0, 1] > 0.8
    assert abs(np.corrcoef(a[:12000, 0], c[:12000, 0])[0, 1]) < 0.1


def speech_reference_power(scenario) -> float:
    """Mean speech power at the arrays, measured on a render without noise (spec: SNR reference)."""
    sim = Simulator(scenario)
    audio = collect(sim)['ada'].astype(np.float64)
    floor = np.mean(audio[:int(0.9 * 16000)] ** 2)           # microphone self-noise only
    spoken = sum(u.end - u.start for u in sim.truth.utterances) * 16000
    return (np.sum(audio ** 2) - floor * audio.size) / (spoken * audio.shape[1])


@pytest.mark.parametrize('kind', ['white', 'pink', 'babble'])
def test_diffuse_noise_snr_matches_the_scenario(kind):
    clean = speech_reference_power(two_talker_room(first_t=1.0))
    sim = Simulator(two_talker_room(noise={'kind': kind, 'snr_db': 12.0}))
    noise = collect(sim, seconds=11.5)['ada'][8000:]
    snr = 10 * math.log10(clean / np.mean(noise.astype(np.float64) ** 2))
    assert abs(snr - 12.0) < 1.0, snr
    assert abs(sim.truth.speech_level_dbfs - 10 * math.log10(clean)) < 0.2


def test_diffuse_field_is_coherent_at_low_and_incoherent_at_high_frequencies():
    data = base_scenario(
        room={'size_m': [7.0, 6.0, 3.0], 'rt60_s': 0.4, 'noise': {'kind': 'white', 'snr_db': 5}},
        robots=[{'name': 'ada', 'position_m': [2.0, 3.0],
                 'mic_array': {'layout': 'circular', 'channels': 6, 'radius_m': 0.046, 'height_m': 1.0}}],
        duration_s=8.0)
    data['events'][0]['t'] = 20.0          # never plays: noise only
    sim = Simulator(scenario_from(data))
    x = collect(sim)['ada'].astype(np.float64)
    mics = sim.scenario.robots[0].mic_positions_map()
    for j in (1, 3):                        # adjacent mics 4.6 cm apart, opposite mics 9.2 cm apart
        f, msc = coherence(x[:, 0], x[:, j], fs=16000, nperseg=512)
        theory = diffuse_coherence(mics[[0, j]], f)[:, 0, 1] ** 2
        assert np.mean(np.abs(msc - theory)[(f > 50) & (f < 7500)]) < 0.08
        if j == 1:
            assert msc[(f >= 100) & (f <= 400)].mean() > 0.85
            assert msc[(f >= 5000) & (f <= 7000)].mean() < 0.15


def test_levels_person_robot_and_silence(robot_voice):
    sim = Simulator(scenario_from(base_scenario()))
    chunks = iter(range(0, len(robot_voice), sim.frame_samples))
    start_robot = 4.0

    def play_robot():
        if sim.t >= start_robot - 1e-9:
            pos = next(chunks, None)
            if pos is not None:
                sim.add_robot_audio('ada', AudioChunk(sim.t, 16000, robot_voice[pos:pos + sim.frame_samples, None]))

    audio = collect(sim, seconds=7.5, after_step=play_robot)['ada']
    u = sim.truth.utterances[0]
    human = power_db(audio[int(u.start * 16000):int(u.end * 16000)])
    robot = power_db(audio[int(start_robot * 16000):int((start_robot + len(robot_voice) / 16000) * 16000)])
    silence = power_db(audio[1000:15000])
    assert -50 < human < -40                 # a person 1.5 m away speaking at -23 dBFS
    assert 8 < robot - human < 22            # the robot's own loudspeaker is close to its array
    assert -72 < silence < -68               # microphone self-noise
    assert np.max(np.abs(audio)) <= 1.0


def test_point_noise_source_level_is_relative_to_speech():
    clean = speech_reference_power(two_talker_room(first_t=1.0))
    room = {'size_m': [7.0, 6.0, 3.0], 'rt60_s': 0.4,
            'noise_sources': [{'name': 'radio', 'position_m': [6.0, 1.0, 1.5], 'kind': 'pink', 'level_db': -6.0}]}
    sim = Simulator(two_talker_room(room=room))
    noise = collect(sim, seconds=11.0)['ada'][16000:]
    assert abs(10 * math.log10(np.mean(noise.astype(np.float64) ** 2) / clean) - (-6.0)) < 1.0


def test_loud_robot_audio_is_clipped_at_full_scale():
    sim = Simulator(scenario_from(base_scenario()))
    sim.step()
    loud = np.sign(np.sin(np.arange(1600) * 0.3)).astype(np.float32) * 1.0   # full-scale square wave
    sim.add_robot_audio('ada', AudioChunk(sim.t, 16000, loud[:, None] * 30))
    peak = max(np.abs(sim.step().audio['ada'].samples).max() for _ in range(5))
    assert peak <= 1.0
    assert sim.stats['clipped samples'] > 0


def test_direct_sound_arrives_after_distance_over_c_and_anechoic_rooms_have_no_tail():
    scenario = scenario_from(base_scenario(room={'size_m': [6.0, 5.0, 2.8], 'rt60_s': 0.0}))
    rirs = room_impulse_responses(scenario, 16000)
    h = rirs.rir('human:hugo')
    mics = scenario.robots[0].mic_positions_map()
    distances = np.linalg.norm(mics - np.array([3.5, 2.5, 1.2]), axis=1)
    assert np.allclose(np.argmax(np.abs(h), axis=1), distances / 343.0 * 16000, atol=1.0)
    assert h.shape[1] < 400                                   # direct path (and filter) only
    # with reverberation the response lasts about RT60
    reverberant = room_impulse_responses(scenario_from(base_scenario()), 16000).rir('human:hugo')
    assert 0.15 * 16000 < reverberant.shape[1] < 0.6 * 16000
    # free-field level: 1 / (4 pi r) for the direct path
    assert np.allclose(np.abs(h).max(axis=1) * 4 * np.pi * distances, 1.0, atol=0.25)


def test_recorded_clips_for_utterances_and_noise_sources(tmp_path, robot_voice):
    import soundfile
    from scipy.signal import resample_poly
    # a quiet stereo 22.05 kHz recording: loaded as mono, resampled to 16 kHz, normalised like TTS
    stereo = np.stack([robot_voice, robot_voice], axis=1) * 0.1
    soundfile.write(str(tmp_path / 'talk.wav'), resample_poly(stereo, 441, 320, axis=0), 22050)
    soundfile.write(str(tmp_path / 'hum.wav'), 0.3 * np.sin(np.arange(16000) * 2 * np.pi * 120 / 16000), 16000)
    events = [{'id': 'tts', 't': 0.5, 'speaker': 'hugo', 'to': 'ada',
               'say': 'Of course. It is a quarter past three in the afternoon.'},
              {'id': 'rec', 'after': {'event': 'tts', 'offset_s': 0.5}, 'speaker': 'hugo', 'to': 'ada',
               'clip': 'talk.wav', 'say': 'Of course. It is a quarter past three in the afternoon.'}]
    data = base_scenario(events=events)
    path = tmp_path / 'clips.yaml'
    import yaml
    path.write_text(yaml.safe_dump(data))
    from voice_robot.sim.scenario import load_scenario
    sim = Simulator(load_scenario(path))
    audio = collect(sim)['ada']
    tts, rec = sim.truth.utterances
    assert rec.clip == 'talk.wav'
    assert rec.end - rec.start == pytest.approx(len(robot_voice) / 16000, abs=0.07)   # only silence trimmed
    level = [power_db(audio[int(u.start * 16000):int(u.end * 16000)]) for u in (tts, rec)]
    assert abs(level[0] - level[1]) < 2.0          # both at the speech level, same place (other voices)

    room = {'size_m': [6.0, 5.0, 2.8], 'rt60_s': 0.3,
            'noise_sources': [{'name': 'fridge', 'position_m': [5.5, 4.5, 0.5], 'kind': 'clip', 'clip': 'hum.wav',
                               'level_db': -10.0}]}
    path.write_text(yaml.safe_dump(base_scenario(room=room, duration_s=6.0)))
    sim = Simulator(load_scenario(path))
    noise = collect(sim)['ada'][int(3.0 * 16000):]     # after the utterance: the looped clip only
    expected = 10 * math.log10(sim.speech_power) - 10.0
    assert abs(power_db(noise) - expected) < 1.5
    halves = np.array_split(noise, 3)
    assert max(power_db(h) for h in halves) - min(power_db(h) for h in halves) < 1.0   # loops without gaps


def test_babble_talkers_avoid_the_participants_voices_and_have_unit_power():
    from voice_robot.sim.acoustics import BABBLE_VOICES, BabbleStream, babble_pool
    pool = babble_pool(16000)
    kept = [v for v in BABBLE_VOICES[-2:] if v in pool]
    stream = BabbleStream(np.random.default_rng(3), 16000, avoid=tuple(v for v in pool if v not in kept))
    assert len(stream.pool) == len(kept) == 2
    assert all(any(sentences is pool[v] for v in kept) for sentences in stream.pool)
    x = stream.read(16000 * 30)
    assert abs(power_db(x)) < 1.5
    # several talkers at once: the envelope rarely drops to silence, unlike a single voice
    frames = x[:len(x) // 320 * 320].reshape(-1, 320)
    assert np.mean(np.mean(frames ** 2, axis=1) < 0.01) < 0.05


def schroeder_t30(h, fs=16000):
    """Reverberation time from the backward-integrated energy decay (-5 to -35 dB, doubled)."""
    energy = np.cumsum(h[::-1].astype(np.float64) ** 2)[::-1]
    decay = 10 * np.log10(energy / energy[0] + 1e-30)
    return 2 * (np.argmax(decay < -35) - np.argmax(decay < -5)) / fs


@pytest.mark.parametrize('size,rt60', [([6.0, 5.0, 2.8], 0.3), ([8.0, 6.0, 3.2], 0.6), ([4.0, 4.0, 2.5], 1.5)])
def test_reverberation_time_matches_the_scenario(size, rt60):
    # long RT60s use image sources for the first 0.25 s and a diffuse tail after: still the right decay
    data = base_scenario(room={'size_m': size, 'rt60_s': rt60},
                         robots=[{'name': 'ada', 'position_m': [1.5, 2.0],
                                  'mic_array': {'layout': 'circular', 'channels': 6, 'radius_m': 0.046,
                                                'height_m': 1.0}}],
                         humans=[{'name': 'hugo', 'position_m': [3.0, 2.2, 1.2], 'voice': 'flite:awb'}])
    h = room_impulse_responses(scenario_from(data), 16000).rir('human:hugo')
    t30 = [schroeder_t30(channel) for channel in h]
    assert np.mean(t30) == pytest.approx(rt60, rel=0.12)
    # the late part is diffuse: two mics 4.6 cm apart agree at low and disagree at high frequencies
    late = h[:, int(0.3 * 16000):]
    if late.shape[1] > 4096:
        f, msc = coherence(late[0], late[1], fs=16000, nperseg=256)
        assert msc[(f > 100) & (f < 500)].mean() > 0.7 and msc[f > 5000].mean() < 0.3
