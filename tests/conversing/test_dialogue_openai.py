"""The dialogue agent with the OpenAI backend against a fake OpenAI-compatible server on 127.0.0.1."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAi, Status, Stream  # noqa: E402
from test_dialogue import Rig  # noqa: E402

from voice_robot import messages as m  # noqa: E402
from voice_robot.acting.config import SpeechConfig  # noqa: E402
from voice_robot.conversing.config import DialogueConfig  # noqa: E402
from voice_robot.conversing.llm import FALLBACK_SENTENCE  # noqa: E402


@pytest.fixture
def server():
    with FakeOpenAi() as s:
        yield s


def config(server, **overrides) -> DialogueConfig:
    values = dict(llm={'backend': 'openai', 'base_url': server.base_url, 'model': 'fake-model',
                       'first_token_timeout_s': 3.0, 'timeout_s': 6.0})
    values.update(overrides)
    return DialogueConfig(**values)


def wait_for(rig, predicate, until):
    """Run the bus in small steps until ``predicate()`` holds (the model answers in wall time)."""
    t = rig.bus.now
    while t < until and not predicate():
        t += 0.1
        rig.run(t)
    return predicate()


def test_the_prompt_has_persona_names_and_the_conversation_so_far(server):
    server.script(Stream(['Madrid is the capital of Spain.']))
    rig = Rig(config(server, persona='You are {name}, a helpful robot.'))
    try:
        rig.estimate(1.0, 'bruno-u1', 0.0, 0.9, 'Bruno, what is the capital of France?', decision='bruno',
                     robot='bruno')
        rig.bus.publish('/conversation/turns', m.DialogueTurn('bruno', 'v1', 'It is Paris.', 1.2, 2.0, 'bruno-r1'),
                        at=2.0)
        rig.utterance(3.0, 'ada-u2', 2.5, 2.9, 'Ada, and of Spain?', voice='v2')
        rig.grant(3.1, 'ada-u2', 2.5, 2.9)
        assert wait_for(rig, lambda: rig.turns(), 15.0)
        messages = server.requests[0]['body']['messages']
        system = messages[0]
        assert system['role'] == 'system' and system['content'].startswith('You are Ada, a helpful robot.')
        assert 'You are the robot ada' in system['content'] and 'bruno' in system['content']
        assert messages[1:] == [
            {'role': 'user', 'content': '[v1 to bruno] Bruno, what is the capital of France?'},
            {'role': 'user', 'content': '[bruno to v1] It is Paris.'},
            {'role': 'user', 'content': '[v2 to ada] Ada, and of Spain?'},
        ]
        say = rig.commands()[0][1]
        assert say.text == 'Madrid is the capital of Spain.' and say.in_reply_to == 'ada-u2'
    finally:
        rig.close()


def test_a_slow_first_token_gets_a_filler_from_the_stage(server):
    server.script(Stream(['Here', ' is', ' the answer.', ' And more.'], first_token_delay_s=2.0, token_delay_s=0.05))
    # Charge compute: the stage's waits for the model then cost simulated time, as in the eval.
    rig = Rig(config(server, filler_after_s=0.5, fillers=['Let me see.']), charge_compute=True)
    try:
        rig.utterance(1.0, 'ada-u1', 0.2, 0.9, 'Ada, what is the answer?')
        rig.grant(1.1, 'ada-u1', 0.2, 0.9)
        assert wait_for(rig, lambda: rig.turns(), 30.0)
        (t_filler, filler), (t_reply, reply) = rig.commands()[:2]
        assert filler.kind == m.SpeechKind.FILLER and filler.text == 'Let me see.' and filler.in_reply_to == 'ada-u1'
        assert reply.kind == m.SpeechKind.REPLY and reply.text == 'Here is the answer.'
        assert t_filler < t_reply
        assert rig.turns()[0].text == 'Here is the answer. And more.'
    finally:
        rig.close()


def test_only_allowed_gestures_reach_motion(server):
    server.script(Stream(['Sure.'], tool_calls=[('gesture', '{"name": "nod"}'),
                                                ('gesture', '{"name": "self_destruct"}'),
                                                ('move_base', '{"x": 10, "y": 3}'),
                                                ('gesture', '{"name": ["wave"]}')]))
    rig = Rig(config(server, allowed_gestures=['nod', 'wave']))
    try:
        rig.utterance(1.0, 'ada-u1', 0.2, 0.9, 'Ada, can you nod?')
        rig.grant(1.1, 'ada-u1', 0.2, 0.9)
        assert wait_for(rig, lambda: rig.turns(), 15.0)
        requests = [msg for _, msg in rig.of('/ada/motion/request')]
        assert [(r.action, r.gesture) for r in requests] == [(m.MotionAction.GESTURE, 'nod')]
        assert rig.dialogue.stats['gestures refused'] == 3
        tools = server.requests[0]['body']['tools']
        assert [t['function']['name'] for t in tools] == ['gesture']
    finally:
        rig.close()


def test_a_server_error_is_answered_with_the_fallback_sentence(server):
    server.script(Status(500))
    rig = Rig(config(server))
    try:
        rig.utterance(1.0, 'ada-u1', 0.2, 0.9, 'Ada, hello?')
        rig.grant(1.1, 'ada-u1', 0.2, 0.9)
        assert wait_for(rig, lambda: rig.turns(), 15.0)
        assert rig.commands()[0][1].text == FALLBACK_SENTENCE
        assert rig.turns()[0].text == FALLBACK_SENTENCE
        assert rig.dialogue.diagnostics()['llm failed: server error (500)'] == '1'
    finally:
        rig.close()


def test_a_long_pause_in_the_stream_splits_the_reply_into_two_acts_and_one_turn(server):
    server.script(Stream(['First part.', ' Second part.'], token_delay_s=2.0))
    rig = Rig(config(server), charge_compute=True, speech_config=SpeechConfig(max_gap_s=0.5))
    try:
        rig.utterance(1.0, 'ada-u1', 0.2, 0.9, 'Ada, say two things.')
        rig.grant(1.1, 'ada-u1', 0.2, 0.9)
        assert wait_for(rig, lambda: rig.turns(), 30.0)
        says = [c for _, c in rig.commands() if c.action == m.SpeechAction.SAY]
        assert [c.text for c in says] == ['First part.', 'Second part.']
        assert says[0].speech_id != says[1].speech_id and says[1].in_reply_to == 'ada-u1'
        [turn] = rig.turns()
        assert turn.text == 'First part. Second part.' and turn.utterance_id == says[0].speech_id
        assert rig.dialogue.stats['reply acts ended waiting for the model'] == 1
    finally:
        rig.close()
