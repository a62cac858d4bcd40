"""The offline brain (rules, no network) and the sentence splitter shared by all backends."""
from __future__ import annotations

import pytest

from voice_robot.conversing.brain import OfflineBrain
from voice_robot.conversing.config import LlmConfig
from voice_robot.conversing.llm import (GESTURE_TOOL, OpenAiChat, SentenceSplitter, ToolCall, format_line,
                                        gesture_tools, make_backend, parse_line, split_sentences)


def ask(text, robot='ada', history=(), tools=gesture_tools(['nod', 'wave', 'point'])):
    brain = OfflineBrain(LlmConfig(), robot)
    messages = [{'role': 'system', 'content': 'You are Ada.'}]
    messages += [{'role': 'user', 'content': format_line('v1', robot, h)} for h in history]
    messages.append({'role': 'user', 'content': format_line('v1', robot, text)})
    handle = brain.start(messages, tools=tools)
    sentences, calls = handle.poll(), handle.poll_tool_calls()
    assert handle.done and handle.error is None
    return sentences, calls


@pytest.mark.parametrize('text, expected', [
    ('Ada, what is the capital of France?', 'paris'),
    ('what is the capital of japan', 'tokyo'),
    ('Bruno, will it rain this afternoon?', 'rain'),
    ('Will it be sunny tomorrow?', 'tomorrow'),
    ('Excuse me, where is the restroom?', 'restroom'),
    ('Could you tell me where the meeting room is?', 'meeting room'),
    ('Can you call a taxi for me?', 'taxi'),
    ('Could I get the menu please?', 'menu'),
    ('Can you remind me to buy milk tomorrow?', 'remind you to buy milk tomorrow'),
    ('Can one of you help me find my keys?', 'keys'),
    ('What time does the cafeteria close?', 'cafeteria closes'),
    ('Sorry, stop. What time is it?', 'time'),
    ('Thank you, that helps a lot.', 'welcome'),
    ('Did you see the game last night?', 'the game last night'),
])
def test_replies_are_short_and_on_topic(text, expected):
    sentences, _ = ask(text)
    reply = ' '.join(sentences).lower()
    assert expected in reply
    assert 1 <= len(sentences) <= 3 and all(len(s) < 120 for s in sentences)


def test_stories_and_explanations_are_longer():
    story, _ = ask('Ada, tell me a long story about the sea.')
    explanation, _ = ask('Can you explain how a rainbow works?')
    assert len(story) >= 4 and 'sea' in ' '.join(story)
    assert len(explanation) >= 3 and 'rainbow' in explanation[0]


def test_it_introduces_itself_by_name():
    sentences, calls = ask('Good morning!', robot='bruno')
    assert 'Bruno' in ' '.join(sentences)
    assert calls == [ToolCall(GESTURE_TOOL, {'name': 'wave'})]
    sentences, _ = ask('Who are you?', robot='coco')
    assert 'Coco' in sentences[0]


def test_follow_ups_use_the_conversation_so_far():
    sentences, _ = ask('I last had them in the kitchen.', history=['Can one of you help me find my keys?'])
    assert 'kitchen' in ' '.join(sentences)
    alone, _ = ask('I last had them in the kitchen.')
    assert alone != sentences


def test_gestures_only_come_from_the_offered_tool():
    _, calls = ask('Thank you so much!')
    assert calls == [ToolCall(GESTURE_TOOL, {'name': 'nod'})]
    _, calls = ask('Thank you so much!', tools=None)
    assert calls == []
    _, calls = ask('Thank you so much!', tools=gesture_tools(['wave']))
    assert calls == []


def test_replies_are_deterministic_and_survive_garbage():
    assert ask('what is the weather like') == ask('what is the weather like')
    for garbage in ['', '   ', '%%%$$$', '\x00\x01', 'a' * 5000]:
        sentences, _ = ask(garbage)
        assert sentences and all(isinstance(s, str) and s for s in sentences)


def test_think_time_runs_on_the_stage_clock():
    now = [10.0]
    brain = OfflineBrain(LlmConfig(think_time_s=1.5), 'ada')
    handle = brain.start([{'role': 'user', 'content': '[v1 to ada] hello'}], clock=lambda: now[0])
    assert handle.poll() == [] and not handle.done
    now[0] = 11.4
    assert handle.poll() == [] and not handle.done
    now[0] = 11.5
    assert handle.poll() and handle.done
    handle = brain.start([{'role': 'user', 'content': 'hello'}], clock=lambda: now[0])
    handle.cancel()
    now[0] = 99.0
    assert handle.done and handle.poll() == []


def test_backends_are_chosen_by_name():
    assert isinstance(make_backend(LlmConfig(backend='offline'), 'ada'), OfflineBrain)
    assert isinstance(make_backend(LlmConfig(backend='openai'), 'ada'), OpenAiChat)


def test_lines_round_trip():
    assert parse_line(format_line('v3', 'robots', 'Hello [there]')) == ('v3', 'robots', 'Hello [there]')
    assert parse_line('plain words') == ('', '', 'plain words')


def test_splitter_cuts_streamed_text_into_sentences():
    splitter = SentenceSplitter()
    out = []
    for delta in ['Dr', '. Smith', ' paid $3', '.50 today', '! Really', '? **Yes**', ' - e.g. this', '.\n1. One', '\n2. Two']:
        out += splitter.feed(delta)
    out += splitter.flush()
    assert out == ['Dr. Smith paid $3.50 today!', 'Really?', 'Yes - e.g. this.', 'One', 'Two']
    long = 'word, ' * 100
    pieces = split_sentences(long)
    assert len(pieces) > 1 and all(len(p) <= 240 for p in pieces)
