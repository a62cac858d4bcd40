"""The response-attribution rule shared by the simulator and the evaluator, on hand-built cases."""
from dataclasses import dataclass

from voice_robot.eval.matching import attribute_speech, find_responses, first_response, is_response


@dataclass
class U:
    id: str
    start: float
    end: float


@dataclass
class S:
    robot: str
    start: float
    end: float
    in_reply_to: str = ''
    reply_to_start: float = 0.0
    reply_to_end: float = 0.0
    speech_id: str = ''
    kind: str = 'reply'


UTTERANCES = [U('u1', 1.0, 3.0), U('u2', 2.5, 4.0), U('u3', 6.0, 7.0)]


def test_named_span_goes_to_the_largest_overlap():
    # the system's utterance 1.2..2.9 overlaps u1 by 1.7 s and u2 by 0.4 s
    speech = S('ada', 4.5, 6.0, in_reply_to='sys-7', reply_to_start=1.2, reply_to_end=2.9)
    assert attribute_speech(speech, UTTERANCES) == 'u1'
    speech = S('ada', 4.5, 6.0, in_reply_to='sys-8', reply_to_start=2.6, reply_to_end=4.2)
    assert attribute_speech(speech, UTTERANCES) == 'u2'


def test_named_span_ties_go_to_the_latest_utterance():
    # 2.5..3.0 overlaps u1 and u2 by 0.5 s each
    speech = S('ada', 4.5, 6.0, in_reply_to='x', reply_to_start=2.5, reply_to_end=3.0)
    assert attribute_speech(speech, UTTERANCES) == 'u2'


def test_named_span_overlapping_nothing_is_attributed_to_nothing():
    speech = S('ada', 9.0, 10.0, in_reply_to='echo', reply_to_start=4.5, reply_to_end=5.5)
    assert attribute_speech(speech, UTTERANCES) is None


def test_zero_length_span_counts_for_the_utterance_containing_it():
    speech = S('ada', 9.0, 10.0, in_reply_to='x', reply_to_start=6.5, reply_to_end=6.5)
    assert attribute_speech(speech, UTTERANCES) == 'u3'


def test_speech_naming_nothing_goes_to_the_latest_utterance_ended_before_it():
    assert attribute_speech(S('ada', 4.2, 5.0), UTTERANCES) == 'u2'
    assert attribute_speech(S('ada', 3.5, 5.0), UTTERANCES) == 'u1'     # u2 has not ended yet
    assert attribute_speech(S('ada', 0.5, 0.9), UTTERANCES) is None
    # a name without a span is treated like no name
    assert attribute_speech(S('ada', 8.0, 9.0, in_reply_to='sys-3'), UTTERANCES) == 'u3'


def test_response_window():
    assert is_response(3.1, 3.0)
    assert is_response(9.0, 3.0)
    assert not is_response(3.0, 3.0)          # must start after the end
    assert not is_response(9.01, 3.0)         # later than 6 s
    assert not is_response(2.0, 3.0)


def test_find_responses_filler_counts_as_onset_and_the_answer_as_end():
    speeches = [
        S('ada', 7.4, 7.9, in_reply_to='a', reply_to_start=6.0, reply_to_end=7.0, speech_id='filler', kind='filler'),
        S('ada', 9.5, 12.0, in_reply_to='a', reply_to_start=6.0, reply_to_end=7.0, speech_id='answer'),
        S('bruno', 4.4, 5.5, speech_id='b1'),                       # names nothing: u2 ended at 4.0
    ]
    responses = find_responses(UTTERANCES, speeches)
    assert [(r.robot, r.onset, r.end, r.speech_ids) for r in responses['u3']] == \
        [('ada', 7.4, 12.0, ['filler', 'answer'])]
    assert [r.robot for r in responses['u2']] == ['bruno']
    assert responses['u1'] == []
    assert first_response('u3', UTTERANCES, speeches).onset == 7.4


def test_late_response_does_not_count_and_double_responses_are_both_listed():
    speeches = [S('ada', 10.5, 11.0, in_reply_to='a', reply_to_start=1.0, reply_to_end=3.0),   # 7.5 s late
                S('ada', 7.5, 8.0), S('bruno', 7.6, 8.5)]                                      # both name nothing
    responses = find_responses(UTTERANCES, speeches)
    assert responses['u1'] == []
    assert [r.robot for r in responses['u3']] == ['ada', 'bruno']
