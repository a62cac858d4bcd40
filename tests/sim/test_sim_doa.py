"""A talker's true azimuth (ground truth) is where SRP-PHAT finds it in the rendered array audio."""
import math

import numpy as np
import pyroomacoustics as pra
import pytest

from voice_robot.sim.world import Simulator

from sim_helpers import base_scenario, scenario_from

ROBOT_XY = (3.0, 2.5)
ROBOT_YAW_DEG = 30.0


def talkers(azimuths_deg, distance=1.8):
    """Humans around the robot at the given base-frame azimuths, speaking one after another."""
    humans, events = [], []
    voices = ['espeak:en-us+m4', 'flite:slt', 'espeak:en+f2']
    for i, az in enumerate(azimuths_deg):
        a = math.radians(az + ROBOT_YAW_DEG)
        humans.append({'name': f'p{i}', 'voice': voices[i % 3], 'facing': 'ada',
                       'position_m': [ROBOT_XY[0] + distance * math.cos(a), ROBOT_XY[1] + distance * math.sin(a), 1.2]})
        start = {'t': 0.5} if i == 0 else {'after': {'event': f'u{i - 1}', 'offset_s': 0.4}}
        events.append({'id': f'u{i}', **start, 'speaker': f'p{i}', 'to': 'ada',
                       'say': 'Excuse me, could you show me the way to the library?'})
    return humans, events


def srp_azimuths(mic_array, azimuths_deg, grid_deg, rt60_s):
    humans, events = talkers(azimuths_deg)
    data = base_scenario(room={'size_m': [6.5, 5.5, 2.8], 'rt60_s': rt60_s}, humans=humans, events=events,
                         robots=[{'name': 'ada', 'position_m': list(ROBOT_XY), 'yaw_deg': ROBOT_YAW_DEG,
                                  'mic_array': mic_array}])
    sim = Simulator(scenario_from(data))
    frames = []
    while not sim.done:
        frames.append(sim.step().audio['ada'].samples)
    audio = np.concatenate(frames).astype(np.float64)
    mics = sim.scenario.robots[0].mic_positions_base()
    grid = np.radians(grid_deg)
    found = []
    for u in sim.truth.utterances:
        segment = audio[int(u.start * 16000):int(u.end * 16000)]
        X = pra.transform.stft.analysis(segment, 512, 256, win=pra.hann(512)).transpose(2, 1, 0)
        doa = pra.doa.algorithms['SRP'](mics[:, :2].T, 16000, 512, c=343.0, num_src=1, azimuth=grid)
        doa.locate_sources(X, freq_range=[300.0, 3500.0])
        found.append((float(doa.azimuth_recon[0]), sim.truth.azimuth('ada', u.speaker)))
    return found


def angle_error_deg(a, b):
    return abs(math.degrees((a - b + math.pi) % (2 * math.pi) - math.pi))


# anechoic: only the geometry matters; RT60 0.3 s: reflections (floor, walls) pull SRP by a few degrees
ROOMS = [(0.0, 2.0), (0.3, 5.0)]


@pytest.mark.parametrize('rt60_s,tolerance_deg', ROOMS, ids=['anechoic', 'rt60_0.3'])
@pytest.mark.parametrize('mic_array', [
    {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9},
    {'layout': 'circular', 'channels': 6, 'radius_m': 0.046, 'height_m': 1.0},
], ids=['circular4', 'circular6'])
def test_circular_array_azimuth(mic_array, rt60_s, tolerance_deg):
    azimuths = [0.0, 75.0, -130.0]
    found = srp_azimuths(mic_array, azimuths, np.arange(-180, 180, 1.0), rt60_s)
    for (estimate, truth), wanted in zip(found, azimuths):
        assert angle_error_deg(truth, math.radians(wanted)) < 0.5       # truth is the base-frame azimuth
        assert angle_error_deg(estimate, truth) <= tolerance_deg


@pytest.mark.parametrize('rt60_s,tolerance_deg', ROOMS, ids=['anechoic', 'rt60_0.3'])
def test_linear_array_azimuth_in_front(rt60_s, tolerance_deg):
    mic_array = {'layout': 'linear', 'channels': 4, 'spacing_m': 0.05, 'height_m': 0.9}
    azimuths = [-40.0, 0.0, 35.0]
    # a line cannot tell front from back, and it confuses elevation with azimuth far from broadside
    found = srp_azimuths(mic_array, azimuths, np.arange(-90, 90.5, 1.0), rt60_s)
    for (estimate, truth), wanted in zip(found, azimuths):
        assert angle_error_deg(truth, math.radians(wanted)) < 0.5
        assert angle_error_deg(estimate, truth) <= tolerance_deg
