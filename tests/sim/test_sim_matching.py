"""The response-attribution rule shared by the simulator and the evaluator, on hand-built cases."""
import math
from dataclasses import dataclass, field

from voice_robot.eval.matching import HeardFrom, attribute_speech, find_responses, first_response, is_response


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


@dataclass
class Said:
    id: str
    speaker: str
    start: float
    end: float
    azimuth_by_robot: dict = field(default_factory=dict)


# Two people talk at once: leo asks bruno something while jon goes on talking to kim. Bruno heard leo
# from 124 degrees; jon is at -38 degrees.
AT_ONCE = [Said('u4', 'leo', 5.46, 7.78, {'bruno': math.radians(124)}),
           Said('u5', 'jon', 5.49, 7.97, {'bruno': math.radians(-38)})]


def test_of_two_people_talking_at_once_a_reply_answers_the_one_heard_from_its_direction():
    speech = S('bruno', 8.5, 10.0, in_reply_to='bruno/7', reply_to_start=5.68, reply_to_end=7.62)
    assert attribute_speech(speech, AT_ONCE) == 'u5'      # by time alone: a tie, the later one wins
    heard = {'bruno/7': HeardFrom('bruno', math.radians(120))}
    assert attribute_speech(speech, AT_ONCE, heard) == 'u4'
    # the same from the simulator's side: bearings per robot and person instead of per utterance
    bare = [Said(u.id, u.speaker, u.start, u.end) for u in AT_ONCE]
    bearings = {'bruno': {'leo': math.radians(124), 'jon': math.radians(-38)}}
    assert attribute_speech(speech, bare, heard, bearings) == 'u4'
    assert find_responses(bare, [speech], heard=heard, bearings=bearings)['u4'][0].robot == 'bruno'


def test_the_speaker_rule_only_chooses_among_utterances_the_span_overlaps():
    heard = {'bruno/7': HeardFrom('bruno', math.radians(120))}
    # a span inside jon's speech only: heard from leo's side, still no reply to leo
    speech = S('bruno', 9.0, 10.0, in_reply_to='bruno/7', reply_to_start=7.8, reply_to_end=7.95)
    assert attribute_speech(speech, AT_ONCE, heard) == 'u5'
    # heard from nobody's direction: overlap decides as before
    heard = {'bruno/7': HeardFrom('bruno', math.radians(40))}
    speech = S('bruno', 9.0, 10.0, in_reply_to='bruno/7', reply_to_start=5.5, reply_to_end=7.9)
    assert attribute_speech(speech, AT_ONCE, heard) == 'u5'
    # a direction that is not a number tells nothing
    heard = {'bruno/7': HeardFrom('bruno', math.nan)}
    assert attribute_speech(speech, AT_ONCE, heard) == 'u5'


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
