"""The closed loop: timeline, events waiting for robot speech, robot speech truth, bad inputs."""
import math

import numpy as np
import pytest

from voice_robot.messages import AudioChunk, SpeechKind, SpeechState, Utterance
from voice_robot.sim.world import Simulator

from sim_helpers import base_scenario, robot_speech, scenario_from

SR = 16000


def run(sim, on_step=None, until=None):
    """Step to the end; ``on_step(out)`` runs after every step (the system's answers)."""
    while not sim.done and (until is None or sim.t < until - 1e-9):
        out = sim.step()
        if on_step is not None:
            on_step(out)
    return sim.truth


def answer(sim, utterance_id, delay_s, samples, **kwargs):
    """Answer utterance ``utterance_id`` ``delay_s`` after it ends, naming it (the usual system behaviour)."""
    player = {}

    def on_step(out):
        if utterance_id in out.started:
            u = sim.truth.utterance(utterance_id)
            player['play'] = robot_speech(sim, kwargs.pop('robot', 'ada'), f'reply-{utterance_id}', samples,
                                          u.end + delay_s, in_reply_to=f'sys-{utterance_id}',
                                          reply_to=(u.start + 0.05, u.end - 0.1), **kwargs)
        if 'play' in player:
            player['play']()
    return on_step


def chain(*callbacks):
    def on_step(out):
        for cb in callbacks:
            cb(out)
    return on_step


EVENTS = [
    {'id': 'u1', 't': 1.0, 'speaker': 'hugo', 'say': 'Ada, what time is it?', 'to': 'ada'},
    {'id': 'g1', 'after': {'robot_speech_of': 'u1', 'offset_s': 0.5}, 'look': {'who': 'hugo', 'at': 30}},
    {'id': 'u2', 'after': {'robot_speech_end_of': 'u1', 'offset_s': 0.7}, 'speaker': 'hugo',
     'say': 'Thanks. And the date?', 'to': 'ada'},
    {'id': 'u3', 'after': {'robot_speech_of': 'u2', 'offset_s': 0.2}, 'speaker': 'hugo',
     'say': 'Never mind.', 'to': 'none'},
]


def test_events_wait_for_robot_speech_onset_end_and_fall_back_after_six_seconds(robot_voice):
    sim = Simulator(scenario_from(base_scenario(events=EVENTS)))
    truth = run(sim, answer(sim, 'u1', 0.8, robot_voice))
    events = {e.id: e for e in truth.events}
    [speech] = truth.robot_speech
    u1, u2, u3 = (truth.utterance(i) for i in ('u1', 'u2', 'u3'))
    # the speech is where its audio was played
    assert abs(speech.start - (u1.end + 0.8)) <= sim.frame_samples / SR
    assert speech.end - speech.start == pytest.approx(len(robot_voice) / SR, abs=1.5 / SR)
    assert speech.attributed_to == 'u1' and speech.speech_id == 'reply-u1'
    assert events['g1'].start == pytest.approx(speech.start + 0.5, abs=1 / SR)
    assert u2.start == pytest.approx(speech.end + 0.7, abs=1 / SR)
    # nobody answers u2: u3 starts 6 s after u2 ends (+ its offset)
    assert u3.start == pytest.approx(u2.end + 6.0 + 0.2, abs=1 / SR)
    assert truth.stats['events started without the robot speech they wait for'] == 1
    # default duration: end of the last event + 6 s
    assert sim.done and truth.duration == pytest.approx(u3.end + 6.0, abs=1e-6)
    assert sim.t == pytest.approx(truth.duration, abs=sim.frame_samples / SR)
    # the head turn of g1 is in the head-target timeline
    turn = [h for h in truth.head_targets if h.source == 'look:g1'][0]
    assert turn.target == 30 and turn.yaw == pytest.approx(math.radians(30))


def test_filler_then_answer_the_event_waits_for_the_answer_to_end(robot_voice):
    sim = Simulator(scenario_from(base_scenario(events=EVENTS[:1] + EVENTS[2:3])))
    filler = robot_voice[:int(0.4 * SR)]
    players = {}

    def on_step(out):
        if 'u1' in out.started:
            u = sim.truth.utterance('u1')
            span = dict(in_reply_to='sys-1', reply_to=(u.start, u.end))
            players['filler'] = robot_speech(sim, 'ada', 'filler', filler, u.end + 0.3, kind=SpeechKind.FILLER, **span)
            players['answer'] = robot_speech(sim, 'ada', 'answer', robot_voice, u.end + 1.8, **span)
        for play in players.values():
            play()

    truth = run(sim, on_step)
    filler_truth, answer_truth = truth.robot_speech
    assert filler_truth.kind == 'filler' and answer_truth.kind == 'reply'
    assert truth.utterance('u2').start == pytest.approx(answer_truth.end + 0.7, abs=1 / SR)
    response = truth.responses()['u1'][0]
    assert response.onset == filler_truth.start and response.end == answer_truth.end


def test_follow_up_to_the_responder_of_a_group_request(robot_voice):
    robots = [{'name': 'ada', 'position_m': [2.0, 2.0], 'voice': 'espeak:en+m3',
               'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}},
              {'name': 'bruno', 'position_m': [4.0, 2.0], 'yaw_deg': 180, 'voice': 'espeak:en-us+m5',
               'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}}]
    events = [{'id': 'u1', 't': 0.5, 'speaker': 'hugo', 'say': 'Can one of you help me?', 'to': 'robots'},
              {'id': 'u2', 'after': {'robot_speech_end_of': 'u1', 'offset_s': 0.3}, 'speaker': 'hugo',
               'say': 'I lost my keys.', 'to': {'responder_of': 'u1'}},
              {'id': 'u3', 'after': {'event': 'u2', 'offset_s': 0.3}, 'speaker': 'hugo',
               'say': 'Hello?', 'to': {'responder_of': 'u2'}}]
    humans = [{'name': 'hugo', 'position_m': [3.0, 3.5, 1.6], 'voice': 'flite:awb'}]
    sim = Simulator(scenario_from(base_scenario(robots=robots, humans=humans, events=events)))
    truth = run(sim, answer(sim, 'u1', 0.5, robot_voice[:8000], robot='bruno'))
    u2, u3 = truth.utterance('u2'), truth.utterance('u3')
    assert u2.to == 'bruno' and u2.responder_of == 'u1' and u2.to_spec == {'responder_of': 'u1'}
    assert u2.gaze == 'bruno'                 # looks at the robot that answered
    assert u3.to == 'robots'                  # nobody answered u2
    assert u2.addressee_class == 'bruno' and truth.utterance('u1').addressee_class == 'robots'


def test_a_reply_heard_from_one_of_two_people_talking_at_once_answers_that_person(robot_voice):
    humans = [{'name': 'hugo', 'position_m': [3.5, 2.5, 1.2], 'voice': 'espeak:en-us+m4', 'facing': 'ada'},
              {'name': 'mia', 'position_m': [2.0, 4.0, 1.2], 'voice': 'flite:slt', 'facing': 'hugo'}]
    events = [{'id': 'u1', 't': 1.0, 'speaker': 'hugo', 'say': 'Ada, what time is it?', 'to': 'ada'},
              {'id': 'u2', 't': 1.1, 'speaker': 'mia', 'say': 'I think we should leave soon, it is getting late.',
               'to': 'hugo'},
              {'id': 'u3', 'after': {'robot_speech_of': 'u1', 'offset_s': 0.3}, 'speaker': 'hugo',
               'say': 'Thanks.', 'to': 'none'}]
    sim = Simulator(scenario_from(base_scenario(humans=humans, events=events)))
    player = {}

    def on_step(out):
        if 'u2' in out.started:
            u1, u2 = sim.truth.utterance('u1'), sim.truth.utterance('u2')
            assert u2.end - u2.start > u1.end - u1.start       # by time alone the reply would go to mia
            # ada's hearing heard one utterance over both, from hugo's direction (straight ahead)
            sim.on_heard(Utterance('ada/1', 'ada', u1.start, u2.end, azimuth=math.radians(3), is_final=True,
                                   transcript='Ada, what time is it?', confidence=0.8))
            sim.on_heard(Utterance('ada/2', 'ada', u1.start, u2.end, azimuth=math.radians(90), is_final=False,
                                   transcript='I think'))                   # partials say nothing
            player['play'] = robot_speech(sim, 'ada', 'reply-1', robot_voice[:8000], u2.end + 0.5,
                                          in_reply_to='ada/1', reply_to=(u1.start, u2.end))
        if 'play' in player:
            player['play']()

    truth = run(sim, on_step)
    [reply] = truth.robot_speech
    assert reply.attributed_to == 'u1'
    assert truth.responses()['u1'][0].robot == 'ada' and not truth.responses()['u2']
    assert truth.utterance('u3').start == pytest.approx(reply.start + 0.3, abs=1 / SR)
    assert truth.heard_from == {'ada/1': ['ada', pytest.approx(math.radians(3))]}
    with pytest.raises(ValueError, match='unknown robot'):
        sim.on_heard(Utterance('zed/1', 'zed', 1.0, 2.0, is_final=True, transcript='hi', confidence=0.5))
    sim.on_heard(Utterance('ada/3', 'ada', 1.0, 2.0, azimuth=math.nan, is_final=True, transcript='hi', confidence=0.5))
    assert sim.stats['dropped: non-finite utterance azimuth'] == 1


def test_robot_speech_is_heard_by_every_array(robot_voice):
    robots = [{'name': name, 'position_m': xy, 'yaw_deg': yaw,
               'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}}
              for name, xy, yaw in (('ada', [1.5, 2.5], 0), ('bruno', [4.5, 2.5], 180), ('coco', [3.0, 4.2], -90))]
    events = [{'id': 'u1', 't': 5.0, 'speaker': 'hugo', 'say': 'Hello.', 'to': 'none'}]
    sim = Simulator(scenario_from(base_scenario(robots=robots, events=events, duration_s=3.0)))
    play = robot_speech(sim, 'bruno', 's1', robot_voice[:SR], 1.0)
    energy = {name: [] for name in ('ada', 'bruno', 'coco')}

    def on_step(out):
        for name, chunk in out.audio.items():
            energy[name].append(np.mean(chunk.samples.astype(np.float64) ** 2))
        play()

    run(sim, on_step)
    for name, values in energy.items():
        values = np.array(values)
        quiet, speaking = values[5:45].mean(), values[52:100].mean()      # before 0.9 s, 1.04-2.0 s
        assert 10 * math.log10(speaking / quiet) > 15, name
    assert np.mean(energy['bruno'][52:100]) > 4 * np.mean(energy['ada'][52:100])   # its own array is closest


def test_late_chunks_are_played_now_and_counted():
    sim = Simulator(scenario_from(base_scenario(duration_s=2.0)))
    run(sim, until=0.5)
    tone = (0.1 * np.sin(np.arange(320) * 0.2)).astype(np.float32)
    sim.on_speech_state(SpeechState(robot='ada', speaking=True, speech_id='s1', started=0.4, stamp=0.4))
    sim.add_robot_audio('ada', AudioChunk(0.4, SR, tone[:, None]))            # 0.1 s late
    sim.add_robot_audio('ada', AudioChunk(0.42, SR, tone))                     # continues it seamlessly
    out = sim.step()
    assert sim.stats['late robot audio chunks'] == 1
    [speech] = sim.truth.robot_speech
    assert speech.start == pytest.approx(0.5) and speech.end == pytest.approx(0.54)
    assert np.mean(out.audio['ada'].samples ** 2) > 100 * 10 ** (-70 / 10)


def test_audio_before_its_state_and_audio_without_any_state(robot_voice):
    sim = Simulator(scenario_from(base_scenario()))
    truth = run(sim, until=4.0)
    u1 = truth.utterance('u1')
    chunk = robot_voice[:320, None]
    # the first chunk arrives a frame before the state that names it
    sim.add_robot_audio('ada', AudioChunk(sim.t, SR, chunk))
    sim.step()
    sim.on_speech_state(SpeechState(robot='ada', speaking=True, speech_id='named', in_reply_to='x',
                                    reply_to_start=u1.start, reply_to_end=u1.end, stamp=sim.t))
    sim.add_robot_audio('ada', AudioChunk(sim.t, SR, chunk))
    sim.step()
    sim.on_speech_state(SpeechState(robot='ada', speaking=False, speech_id='named', stamp=sim.t))
    run(sim, until=5.0)
    # later, audio with no state at all: one speech act per stretch of audio
    for _ in range(10):
        sim.add_robot_audio('ada', AudioChunk(sim.t, SR, chunk))
        sim.step()
    truth = run(sim, until=6.0)
    named, anonymous = truth.robot_speech
    assert named.speech_id == 'named' and named.start == pytest.approx(4.0) and named.end == pytest.approx(4.04)
    assert named.attributed_to == 'u1'
    assert anonymous.speech_id == '' and anonymous.end - anonymous.start == pytest.approx(0.2)
    assert anonymous.attributed_to == 'u1'      # names nothing: the latest utterance that ended before it
    assert truth.stats['robot audio without a speech state'] == 1


def test_bad_inputs_are_refused_or_counted():
    sim = Simulator(scenario_from(base_scenario(duration_s=1.0)))
    sim.step()
    ok = np.zeros((320, 1), np.float32)
    with pytest.raises(ValueError, match='unknown robot'):
        sim.add_robot_audio('zed', AudioChunk(sim.t, SR, ok))
    with pytest.raises(ValueError, match='16000 Hz'):
        sim.add_robot_audio('ada', AudioChunk(sim.t, 22050, ok))
    with pytest.raises(ValueError, match='mono'):
        sim.add_robot_audio('ada', AudioChunk(sim.t, SR, np.zeros((320, 2), np.float32)))
    bad = ok.copy()
    bad[3] = np.nan
    sim.add_robot_audio('ada', AudioChunk(sim.t, SR, bad))
    sim.add_robot_audio('ada', AudioChunk(float('nan'), SR, ok))
    sim.add_robot_audio('ada', AudioChunk(sim.t, SR, np.zeros((0, 1), np.float32)))     # nothing to play
    assert sim.stats['dropped: non-finite robot audio'] == 2
    sim.add_robot_audio('ada', AudioChunk(1e6, SR, ok))                      # garbage stamp: not a plan
    assert sim.stats['dropped: robot audio stamped too far ahead'] == 1
    sim.on_speech_state(SpeechState(robot='ada', speaking=True, speech_id='x', started=float('inf')))
    assert sim.stats['dropped: non-finite speech state'] == 1
    with pytest.raises(ValueError, match='unknown robot'):
        sim.on_speech_state(SpeechState(robot='zed', speaking=True, speech_id='x'))
    out = sim.step()
    assert np.all(np.isfinite(out.audio['ada'].samples))
    assert sim.truth.robot_speech == []
    with pytest.raises(ValueError, match='frame_s'):
        Simulator(sim.scenario, frame_s=0)


def test_frames_are_contiguous_and_duration_s_cuts_the_timeline():
    events = EVENTS[:1] + [{'id': 'late', 't': 3.0, 'speaker': 'hugo', 'say': 'Too late.', 'to': 'none'}]
    sim = Simulator(scenario_from(base_scenario(events=events, duration_s=2.5)), frame_s=0.032)
    assert sim.duration == 2.5
    stamps, started = [], []
    while not sim.done:
        out = sim.step()
        assert out.audio['ada'].samples.shape == (512, 4)
        assert out.audio['ada'].sequence == len(stamps)
        stamps.append(out.audio['ada'].stamp)
        started += out.started
    assert np.allclose(np.diff(stamps), 0.032)
    assert started == ['u1'] and [u.id for u in sim.truth.utterances] == ['u1']
