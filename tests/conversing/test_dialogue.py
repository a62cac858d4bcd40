"""The dialogue agent with the offline brain and the real speech output (espeak), on the in-process bus."""
from __future__ import annotations

import pytest

from voice_robot import messages as m
from voice_robot.acting.config import SpeechConfig
from voice_robot.acting.speech import SpeechOutputStage
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.config import DialogueConfig
from voice_robot.conversing.dialogue import NOT_HEARD, DialogueStage

from bus_rig import BusRig

ARRAY = {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}
CANDIDATES = ['ada', 'bruno', 'robots', 'others']


def robots():
    return [RobotSpec(name='ada', position_m=[1.0, 1.0], mic_array=ARRAY, voice='espeak:en-us'),
            RobotSpec(name='bruno', position_m=[3.0, 1.0], yaw_deg=180, mic_array=ARRAY, voice='espeak:en-us+m3',
                      persona='You are Bruno, who knows the weather.')]


class Rig(BusRig):
    """Ada's dialogue and speech output on one bus; everything published is recorded."""

    def __init__(self, config: DialogueConfig | None = None, llm=None, with_speech: bool = True,
                 charge_compute: bool = False, speech_config: SpeechConfig | None = None):
        self.ada, self.bruno = robots()
        self.config = config or DialogueConfig()
        super().__init__(charge_compute)
        self.dialogue = DialogueStage(self.ada, [self.ada, self.bruno], self.config, llm=llm)
        self.bus.add(self.dialogue, '/ada')
        self.speech = None
        if with_speech:
            # Without compute charging, 'full' synthesis waits keep the timeline independent of this machine.
            self.speech = SpeechOutputStage(self.ada, speech_config or SpeechConfig(),
                                            synthesis_wait='tick' if charge_compute else 'full')
            self.bus.add(self.speech, '/ada')
        self.log: list[tuple[float, str, object]] = []
        self.bus.tap_all(lambda topic, msg, t: self.log.append((t, topic, msg)) if topic != '/ada/speech/audio'
                         else None)

    # --- inputs as the other stages would publish them ---
    def utterance(self, at, uid, start, end, text, voice='v1', final=True):
        self.bus.publish('/ada/hearing/utterances', m.Utterance(uid, 'ada', start, end, voice_id=voice, transcript=text,
                                                                is_final=final, stamp=at), at=at)

    def estimate(self, at, uid, start, end, text, decision='ada', voice='v1', robot='ada', fused=True):
        probabilities = [0.9 if c == decision else 0.1 / 3 for c in CANDIDATES]
        self.bus.publish('/conversation/addressee', m.AddresseeEstimate(
            uid, robot, list(CANDIDATES), probabilities, decision, start, end, voice, text, fused=fused, stamp=at),
            at=at)

    def grant(self, at, uid, start, end, robot='ada'):
        self.bus.publish('/conversation/floor', m.FloorEvent(m.FloorKind.GRANT, robot, uid, start, end, stamp=at),
                         at=at)

    def heard(self, at, uid, start, end, text, voice='v1'):
        """A person's turn as hearing + addressee fusion report it, addressed to ada."""
        self.utterance(at, uid, start, end, text, voice)
        self.estimate(at + 0.05, uid, start, end, text, voice=voice)

    # --- what came out ---
    def of(self, topic):
        return [(t, msg) for t, tp, msg in self.log if tp == topic]

    def commands(self):
        return self.of('/ada/speech/command')

    def states(self):
        return [s for _, s in self.of('/ada/speech/state')]

    def turns(self, speaker='ada'):
        return [turn for _, turn in self.of('/conversation/turns') if turn.speaker == speaker]


@pytest.fixture
def rig():
    with Rig() as r:
        yield r


def test_grant_is_answered_sentence_by_sentence_and_the_spoken_turn_is_published(rig):
    rig.heard(2.0, 'ada-u1', 1.0, 1.9, 'Ada, tell me a story about the sea.')
    rig.grant(2.2, 'ada-u1', 1.0, 1.9)
    rig.run(40.0)
    commands = [c for _, c in rig.commands()]
    assert commands[0].action == m.SpeechAction.SAY and commands[0].kind == m.SpeechKind.REPLY
    assert all(c.action == m.SpeechAction.APPEND for c in commands[1:])
    assert len(commands) >= 4, 'a story is several sentences'
    assert [c.final for c in commands] == [False] * (len(commands) - 1) + [True]
    assert {c.speech_id for c in commands} == {commands[0].speech_id}
    assert all(c.in_reply_to == 'ada-u1' and (c.reply_to_start, c.reply_to_end) == (1.0, 1.9) for c in commands)
    assert rig.commands()[0][0] == pytest.approx(2.2)       # no model latency with the offline brain
    assert 'sea' in ' '.join(c.text for c in commands).lower()
    [turn] = rig.turns()
    spoken = ' '.join(c.text for c in commands if c.text)
    assert turn.text == spoken and turn.addressee == 'v1' and turn.utterance_id == commands[0].speech_id
    end = [s for s in rig.states() if not s.speaking][-1]
    assert turn.end == pytest.approx(end.stamp) and turn.start == pytest.approx(rig.states()[0].started)
    lines = rig.dialogue.memory.lines()
    assert lines[0].startswith('[v1 to ada] Ada, tell me a story') and lines[1].startswith('[ada to v1] ')


def test_reply_prepared_on_the_addressee_decision_is_spoken_at_once_on_grant():
    rig = Rig(DialogueConfig(llm={'think_time_s': 0.5}, filler_after_s=2.0))
    try:
        rig.heard(2.0, 'ada-u1', 1.0, 1.9, 'What is the capital of France?')
        rig.grant(2.6, 'ada-u1', 1.0, 1.9)      # the model finished thinking at 2.55
        rig.run(6.0)
        t, say = rig.commands()[0]
        assert t == pytest.approx(2.6) and say.text == 'The capital of France is Paris.' and say.final
        assert rig.dialogue.stats['prepared replies used'] == 1
    finally:
        rig.close()
    # Without the early decision the same reply comes think_time_s after the grant.
    rig = Rig(DialogueConfig(llm={'think_time_s': 0.5}, filler_after_s=2.0))
    try:
        rig.utterance(2.0, 'ada-u1', 1.0, 1.9, 'What is the capital of France?')
        rig.grant(2.6, 'ada-u1', 1.0, 1.9)
        rig.run(6.0)
        t, say = rig.commands()[0]
        assert t == pytest.approx(3.1, abs=rig.config.poll_period_s + 1e-6)
        assert rig.dialogue.stats['prepared replies used'] == 0
    finally:
        rig.close()


def test_a_changed_transcript_discards_the_prepared_reply():
    rig = Rig(DialogueConfig(llm={'think_time_s': 0.3}))
    try:
        rig.utterance(1.5, 'ada-u1', 1.0, 1.4, 'where is the', final=False)
        rig.estimate(1.55, 'ada-u1', 1.0, 1.4, 'where is the')
        rig.utterance(2.0, 'ada-u1', 1.0, 1.9, 'where is the restroom', final=True)
        rig.grant(2.1, 'ada-u1', 1.0, 1.9)
        rig.run(4.0)
        say = rig.commands()[0][1]
        assert 'restroom' in say.text
        assert rig.dialogue.stats['prepared replies discarded'] == 1
    finally:
        rig.close()


def test_another_robots_grant_drops_the_prepared_reply(rig):
    rig.utterance(2.0, 'ada-u1', 1.0, 1.9, 'Can one of you call a taxi?')
    rig.estimate(2.05, 'ada-u1', 1.0, 1.9, 'Can one of you call a taxi?', decision='robots')
    rig.grant(2.2, 'bruno-u4', 1.02, 1.93, robot='bruno')
    rig.run(6.0)
    assert rig.dialogue.stats['replies prepared'] == 1
    assert rig.dialogue.stats['prepared replies discarded: floor granted to bruno'] == 1
    assert not rig.commands() and not rig.turns()


def test_only_this_robots_fused_estimates_start_a_reply_but_all_fill_the_memory(rig):
    rig.utterance(2.0, 'ada-u1', 1.0, 1.9, 'Ada, where is the lift?')
    rig.estimate(2.05, 'ada-u1', 1.0, 1.9, 'Ada, where is the lift?', fused=False)
    rig.estimate(2.06, 'bruno-u7', 1.0, 1.9, 'Ada where is the lift', robot='bruno')
    rig.run(3.0)
    assert rig.dialogue.stats['replies prepared'] == 0
    assert rig.dialogue.memory.lines() == ['[v1 to ada] Ada where is the lift']


def test_a_slow_model_gets_a_filler_then_the_reply():
    rig = Rig(DialogueConfig(llm={'think_time_s': 2.0}, filler_after_s=0.9, fillers=['One moment.']))
    try:
        rig.utterance(2.0, 'ada-u1', 1.0, 1.9, 'Bruno, will it rain this afternoon?')
        rig.grant(2.1, 'ada-u1', 1.0, 1.9)
        rig.run(12.0)
        (t_filler, filler), (t_reply, reply) = rig.commands()[:2]
        assert filler.kind == m.SpeechKind.FILLER and filler.text == 'One moment.' and filler.final
        assert t_filler == pytest.approx(3.0, abs=rig.config.poll_period_s + 1e-6)
        assert filler.in_reply_to == reply.in_reply_to == 'ada-u1'
        assert reply.kind == m.SpeechKind.REPLY and 'rain' in reply.text
        assert t_reply == pytest.approx(4.1, abs=rig.config.poll_period_s + 1e-6)
        states = rig.states()
        filler_end = next(s for s in states if s.speech_id == filler.speech_id and not s.speaking)
        reply_start = next(s for s in states if s.speech_id == reply.speech_id and s.speaking)
        assert filler_end.text == 'One moment.' and reply_start.started >= filler_end.stamp - 1e-9
        [turn] = rig.turns()
        assert 'One moment' not in turn.text and 'rain' in turn.text
        assert rig.dialogue.stats['fillers'] == 1
    finally:
        rig.close()


def test_barge_in_cancel_stops_the_reply_and_the_turn_keeps_only_what_was_said(rig):
    rig.heard(2.0, 'ada-u1', 1.0, 1.9, 'Tell me a long story about the sea.')
    rig.grant(2.1, 'ada-u1', 1.0, 1.9)
    rig.bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, '', stamp=5.0), at=5.0)
    rig.run(12.0)
    cancelled = [s for s in rig.states() if s.cancelled]
    assert cancelled and cancelled[0].stamp == pytest.approx(5.0)
    [turn] = rig.turns()
    full = ' '.join(c.text for _, c in rig.commands() if c.action in (m.SpeechAction.SAY, m.SpeechAction.APPEND))
    assert turn.text and full.startswith(turn.text) and len(turn.text) < len(full)
    assert turn.text == cancelled[0].text
    assert not [c for t, c in rig.commands() if t > 5.0]
    assert rig.dialogue.stats['replies stopped: speech cancelled'] == 1
    assert rig.dialogue.memory.lines()[-1] == f'[ada to v1] {turn.text}'


def test_a_new_grant_supersedes_the_reply_in_progress(rig):
    rig.heard(2.0, 'ada-u1', 1.0, 1.9, 'Tell me a story about a dragon.')
    rig.grant(2.1, 'ada-u1', 1.0, 1.9)
    rig.heard(4.0, 'ada-u2', 3.0, 3.9, 'Actually, where is the restroom?')
    rig.grant(4.1, 'ada-u2', 3.0, 3.9)
    rig.run(12.0)
    at_second_grant = [c for t, c in rig.commands() if t == pytest.approx(4.1)]
    assert at_second_grant[0].action == m.SpeechAction.CANCEL
    assert at_second_grant[1].action == m.SpeechAction.SAY and 'restroom' in at_second_grant[1].text
    assert rig.dialogue.stats['replies stopped: superseded by a new turn'] == 1


def test_an_utterance_without_words_gets_a_request_to_repeat(rig):
    rig.grant(2.1, 'ada-u9', 1.0, 1.9)
    rig.run(5.0)
    assert rig.commands()[0][1].text == NOT_HEARD


def test_gesture_tool_calls_reach_motion(rig):
    rig.heard(2.0, 'ada-u1', 1.0, 1.9, 'Thank you, that helps a lot.')
    rig.grant(2.1, 'ada-u1', 1.0, 1.9)
    rig.run(4.0)
    [(_, gesture)] = rig.of('/ada/motion/request')
    assert gesture.action == m.MotionAction.GESTURE and gesture.gesture == 'nod' and gesture.robot == 'ada'


def test_a_resumed_reply_is_published_as_a_turn_when_it_ends(rig):
    rig.heard(2.0, 'ada-u1', 1.0, 1.9, 'What is the capital of Spain?')
    rig.grant(2.1, 'ada-u1', 1.0, 1.9)
    rig.run(2.3)
    rig.bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, ''), at=2.3)
    # Floor control decides it was a cough and says the rest again under its own id.
    rig.bus.publish('/ada/speech/command', m.SpeechCommand(
        m.SpeechAction.SAY, 'x-resumed', 'The capital of Spain is Madrid.', m.SpeechKind.REPLY, True, 'ada-u1',
        1.0, 1.9), at=2.8)
    rig.run(8.0)
    turns = rig.turns()
    assert len(turns) == 2 and turns[1].text == 'The capital of Spain is Madrid.'
    assert turns[1].utterance_id == 'x-resumed' and turns[1].addressee == 'v1'


def test_garbage_inputs_are_dropped_and_counted(rig):
    rig.bus.publish('/conversation/floor', 'grant!', at=0.1)
    rig.bus.publish('/conversation/floor', m.FloorEvent(7, 'ada'), at=0.1)
    rig.bus.publish('/conversation/floor', m.FloorEvent(m.FloorKind.GRANT, 'ada', 'u', float('nan'), 1.0), at=0.1)
    rig.bus.publish('/conversation/addressee', m.AddresseeEstimate('u', 'ada', [], [], 'ada', 2.0, 1.0, fused=True),
                    at=0.2)
    rig.bus.publish('/ada/hearing/utterances', m.Utterance('', 'ada', 0.0, 1.0), at=0.3)
    rig.bus.publish('/ada/speech/state', m.SpeechState(robot='bruno', speaking=True), at=0.4)
    rig.bus.publish('/conversation/turns', m.DialogueTurn('bruno', 'v1', 'hi', float('inf'), 1.0), at=0.5)
    rig.run(1.0)
    stats = rig.dialogue.stats
    assert stats['dropped: bad floor event'] == 1 and stats['dropped: bad floor kind'] == 1
    assert stats['dropped: bad floor times'] == 1 and stats['dropped: bad addressee times'] == 1
    assert stats['dropped: bad utterance'] == 1 and stats['dropped: speech state of another robot'] == 1
    assert stats['dropped: bad dialogue turn'] == 1 and stats['handler errors'] == 0
    assert not rig.commands()


def test_persona_comes_from_the_robot_else_the_config():
    ada, bruno = robots()
    config = DialogueConfig(persona='You are {name} {and braces stay}.')
    assert DialogueStage(ada, [ada, bruno], config).persona == 'You are Ada {and braces stay}.'
    assert DialogueStage(bruno, [ada, bruno], config).persona == 'You are Bruno, who knows the weather.'


def test_the_whole_turn_of_the_person_is_answered_but_not_someone_talking_over_it(rig):
    rig.utterance(1.6, 'ada-u1', 0.5, 1.5, 'Ada, could you please', voice='v1')
    rig.utterance(2.6, 'ada-u2', 1.8, 2.5, 'call a taxi for me?', voice='v1')
    rig.utterance(2.4, 'ada-u3', 1.6, 2.3, 'the capital of France', voice='v2')
    rig.grant(2.7, 'ada-u2', 0.5, 2.5)
    rig.run(4.0)
    say = rig.commands()[0][1]
    assert 'taxi' in say.text.lower() and 'france' not in say.text.lower()
