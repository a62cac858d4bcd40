"""Every public example scenario renders end to end, with a scripted responder closing the loop."""
import math
from pathlib import Path

import numpy as np
import pytest

from voice_robot.sim.render import ScriptedResponder
from voice_robot.sim.scenario import load_scenario
from voice_robot.sim.world import Simulator

PUBLIC = Path('/work/shared/scenarios')
FILES = sorted(PUBLIC.glob('*.yaml')) if PUBLIC.is_dir() else []


@pytest.mark.skipif(not FILES, reason=f'no public scenarios in {PUBLIC}')
@pytest.mark.parametrize('path', FILES, ids=[p.stem for p in FILES])
def test_public_scenario_renders(path):
    scenario = load_scenario(path)
    sim = Simulator(scenario)
    responder = ScriptedResponder(sim)
    peaks = {r.name: 0.0 for r in scenario.robots}
    energy = {r.name: 0.0 for r in scenario.robots}
    faces = 0
    while not sim.done:
        out = sim.step()
        for name, chunk in out.audio.items():
            assert chunk.samples.shape == (sim.frame_samples, scenario.robot(name).mic_array.channels)
            assert np.all(np.isfinite(chunk.samples))
            peaks[name] = max(peaks[name], float(np.abs(chunk.samples).max()))
            energy[name] += float(np.sum(chunk.samples.astype(np.float64) ** 2))
        faces += sum(len(f.faces) for f in out.faces)
        responder.after_step(out)
        assert sim.t < 300, 'the scenario never ends'
    truth = sim.truth
    assert sorted(u.id for u in truth.utterances) == sorted(e.id for e in scenario.utterances)
    assert len(truth.events) == len(scenario.events)
    for name in peaks:
        assert 1e-3 < peaks[name] <= 1.0
        assert 10 * np.log10(energy[name] / (sim.t * 16000 * scenario.robot(name).mic_array.channels)) > -65
    # cameras see someone exactly when someone is inside a field of view (table_two_robots_named has
    # people at +-45 deg of 70-deg cameras: nobody is visible there)
    visible = any(abs(truth.azimuth(r.name, h.name)) < math.radians(r.camera.hfov_deg / 2) - 0.05
                  and truth.distances[r.name][h.name] < r.camera.max_range_m - 0.1
                  for r in scenario.robots if r.camera for h in scenario.humans)
    assert (faces > 0) == visible
    # the scripted responder answers every utterance addressed to a robot, and the truth says so
    responses = truth.responses()
    for u in truth.utterances:
        if not u.backchannel and u.addressee_class not in ('others',):
            assert responses[u.id], u.id
        else:
            assert not responses[u.id], u.id
    assert truth.to_dict()['format'] == 'voice_robot/truth@1'
