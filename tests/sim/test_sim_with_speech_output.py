"""The simulator with the real speech output stage on the in-process bus: acts, timing and attribution."""
import numpy as np
import pytest

from voice_robot import messages as m
from voice_robot.acting.config import SpeechConfig
from voice_robot.acting.speech import SpeechOutputStage
from voice_robot.pipeline import InProcessBus
from voice_robot.sim.world import Simulator

from sim_helpers import base_scenario, scenario_from


def test_filler_and_reply_from_the_speech_stage_become_two_exact_speech_acts():
    events = [{'id': 'u1', 't': 0.5, 'speaker': 'hugo', 'say': 'Ada, what time is it?', 'to': 'ada'},
              {'id': 'u2', 'after': {'robot_speech_end_of': 'u1', 'offset_s': 0.5}, 'speaker': 'hugo',
               'say': 'Thanks.', 'to': 'ada'}]
    sim = Simulator(scenario_from(base_scenario(events=events)))
    robot = sim.scenario.robot('ada')
    bus = InProcessBus(charge_compute=False)
    speech = SpeechOutputStage(robot, SpeechConfig(default_voice='espeak:en+m3', warm_up=False),
                               synthesis_wait='full')
    bus.add(speech, namespace='/ada')
    states = []
    bus.tap('/ada/speech/audio', lambda topic, chunk, t: sim.add_robot_audio('ada', chunk))
    bus.tap('/ada/speech/state', lambda topic, state, t: (states.append(state), sim.on_speech_state(state)))
    u1, commands = None, []

    def say(sid, kind, text):
        span = dict(in_reply_to='ada/utt/1', reply_to_start=u1.start + 0.1, reply_to_end=u1.end - 0.05)
        commands.append(sid)
        bus.publish('/ada/speech/command', m.SpeechCommand(action=m.SpeechAction.SAY, speech_id=sid, text=text,
                                                          kind=kind, **span), at=sim.t)

    try:
        while not sim.done:
            out = sim.step()
            if 'u1' in out.started:
                u1 = sim.truth.utterance('u1')
            if not commands and u1 is not None and sim.t >= u1.end + 0.3:
                say('f1', m.SpeechKind.FILLER, 'Hmm.')
            elif commands == ['f1'] and any(s.speech_id == 'f1' and s.speaking for s in states):
                say('r1', m.SpeechKind.REPLY, 'It is three o clock.')   # queued behind the playing filler
            # the bus's timers drift by float rounding: a tick due "at" the frame end must run now,
            # or its chunk arrives a frame late
            bus.run_until(sim.t + 1e-6)
    finally:
        bus.close()
    truth = sim.truth
    filler, reply = truth.robot_speech
    assert (filler.speech_id, filler.kind, reply.speech_id, reply.kind) == ('f1', 'filler', 'r1', 'reply')
    assert filler.attributed_to == reply.attributed_to == 'u1'
    # each act's segment is exactly its audio: the filler ends where the reply starts (back to back)
    started = {s.speech_id: s.started for s in states if s.speaking}
    assert filler.start == pytest.approx(started['f1'], abs=1e-6)
    assert reply.start == pytest.approx(started['r1'], abs=1e-6)
    assert filler.end <= reply.start + 1e-6
    assert truth.stats.get('robot audio without a speech state', 0) == 0
    assert truth.stats.get('late robot audio chunks', 0) == 0
    # the follow-up waited for the reply, not the filler
    assert truth.utterance('u2').start == pytest.approx(reply.end + 0.5, abs=1 / 16000)
    response = truth.responses()['u1'][0]
    assert response.robot == 'ada' and response.onset == filler.start
    assert np.isfinite(response.end)
