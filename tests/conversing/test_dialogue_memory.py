"""The shared conversation memory: dedupe across robots, bounds, order, rendering."""
from __future__ import annotations

import pytest

from voice_robot import messages as m
from voice_robot.conversing.memory import ConversationMemory


def estimate(uid, robot, start, end, text, decision='ada', voice='v1'):
    return m.AddresseeEstimate(uid, robot, ['ada', 'bruno', 'robots', 'others'], [0.7, 0.1, 0.1, 0.1], decision,
                               start, end, voice, text, fused=True)


def test_the_same_utterance_reported_by_several_robots_is_remembered_once():
    memory = ConversationMemory(10)
    memory.add_estimate(estimate('ada-u1', 'ada', 1.00, 2.00, 'where is the restroom'))
    memory.add_estimate(estimate('bruno-u3', 'bruno', 1.05, 2.10, 'where is the rest room please', voice='bruno-v2'))
    memory.add_estimate(estimate('coco-u9', 'coco', 0.98, 1.95, 'where is the restroom', voice=''))
    assert len(memory) == 1
    [turn] = memory.turns
    assert turn.text == 'where is the rest room please'      # the longest report
    assert turn.speaker == 'v1' and turn.ids == {'ada-u1', 'bruno-u3', 'coco-u9'}
    assert (turn.start, turn.end) == (0.98, 2.10)


def test_overlapping_speech_of_two_people_stays_two_turns():
    memory = ConversationMemory(10)
    memory.add_estimate(estimate('u1', 'ada', 1.0, 2.0, 'did you see the game last night', decision='others'))
    memory.add_estimate(estimate('u2', 'ada', 1.2, 2.2, 'could I get the menu please', voice='v2'))
    assert len(memory) == 2


def test_a_later_estimate_of_the_same_utterance_updates_it():
    memory = ConversationMemory(10)
    memory.add_estimate(estimate('u1', 'ada', 1.0, 1.5, 'what is the', decision='others'))
    memory.add_estimate(estimate('u1', 'ada', 1.0, 2.4, 'what is the capital of Peru', decision='ada'))
    assert memory.lines() == ['[v1 to ada] what is the capital of Peru']


def test_robot_turns_are_deduplicated_ordered_and_bounded():
    memory = ConversationMemory(3)
    memory.add_turn(m.DialogueTurn('bruno', 'v1', 'It will be sunny.', 5.0, 6.0, 'bruno-reply-1'))
    memory.add_turn(m.DialogueTurn('bruno', 'v1', 'It will be sunny.', 5.0, 6.0, 'bruno-reply-1'))   # echo
    memory.add_estimate(estimate('u1', 'ada', 3.0, 4.0, 'Bruno, will it be sunny?', decision='bruno'))
    memory.add_estimate(estimate('u2', 'ada', 7.0, 8.0, 'thanks', decision='bruno'))
    memory.add_estimate(estimate('u0', 'ada', 1.0, 2.0, 'hello everyone', decision='robots'))   # arrives late
    assert memory.lines() == ['[v1 to bruno] Bruno, will it be sunny?', '[bruno to v1] It will be sunny.',
                              '[v1 to bruno] thanks']
    memory.add_estimate(estimate('u3', 'ada', 9.0, 9.5, 'bye', decision='robots'))
    assert len(memory) == 3 and memory.lines()[-1] == '[v1 to robots] bye'


def test_render_gives_own_words_as_assistant_and_others_with_names():
    memory = ConversationMemory(10)
    memory.add_estimate(estimate('u1', 'ada', 1.0, 2.0, 'Ada, what is the capital of France?'))
    memory.add_turn(m.DialogueTurn('ada', 'v1', 'The capital of France is Paris.', 2.5, 4.0, 'ada-r1'))
    memory.add_turn(m.DialogueTurn('bruno', 'robots', 'I agree.', 4.5, 5.0, 'bruno-r1'))
    memory.add_estimate(estimate('u2', 'ada', 6.0, 7.0, 'and of Spain?'))
    assert memory.render('ada', exclude=(6.0, 7.0)) == [
        {'role': 'user', 'content': '[v1 to ada] Ada, what is the capital of France?'},
        {'role': 'assistant', 'content': 'The capital of France is Paris.'},
        {'role': 'user', 'content': '[bruno to robots] I agree.'},
    ]


def test_empty_and_broken_reports_are_ignored():
    memory = ConversationMemory(5)
    assert not memory.add_estimate(estimate('u1', 'ada', 1.0, 2.0, '   '))
    assert not memory.add_estimate(estimate('u2', 'ada', 2.0, 1.0, 'backwards in time'))
    assert not memory.add_turn(m.DialogueTurn('ada', 'v1', 'x', float('nan'), 1.0))
    assert not memory.add_turn(m.DialogueTurn('ada', 'v1', '', 1.0, 2.0))
    assert len(memory) == 0
    with pytest.raises(ValueError):
        ConversationMemory(0)
