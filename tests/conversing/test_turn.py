"""End of turn: a finished question ends the turn sooner than a trailing 'and'."""
from voice_robot import messages as m
from voice_robot.conversing.config import TurnConfig
from voice_robot.conversing.turn import TurnTracker


def final(uid, start, end, p_end, voice='v1', text='x'):
    return m.Utterance(uid, 'ada', start, end, voice_id=voice, transcript=text, is_final=True,
                       end_of_turn_probability=p_end)


def test_finished_question_ends_sooner_than_unfinished_clause():
    cfg = TurnConfig(min_silence_s=0.25, max_silence_s=1.2)
    done = TurnTracker(cfg)
    done.on_utterance(final('ada/1', 0.0, 2.0, 0.95, text='What time is it?'))
    unfinished = TurnTracker(cfg)
    unfinished.on_utterance(final('ada/1', 0.0, 2.0, 0.1, text='I was wondering and'))
    assert done.due(2.35) and not unfinished.due(2.35)
    assert unfinished.due(3.3)


def test_talker_continuing_extends_the_turn():
    tracker = TurnTracker(TurnConfig(min_silence_s=0.25, max_silence_s=1.2))
    tracker.on_utterance(final('ada/1', 0.0, 1.0, 0.3, text='So I was thinking'))
    tracker.on_utterance(m.Utterance('ada/2', 'ada', 1.5, 1.6, voice_id='v1'))   # partial: speaking again
    assert not tracker.due(3.0)
    tracker.on_utterance(final('ada/2', 1.5, 2.5, 0.9, text='we could go out.'))
    turns = tracker.due(3.0)
    assert len(turns) == 1
    assert turns[0].text == 'So I was thinking we could go out.' and turns[0].start == 0.0
    assert turns[0].utterance_id == 'ada/2'


def test_two_talkers_make_two_turns():
    tracker = TurnTracker(TurnConfig())
    tracker.on_utterance(final('ada/1', 0.0, 1.0, 0.9, voice='v1'))
    tracker.on_utterance(final('ada/2', 0.2, 1.1, 0.9, voice='v2'))
    assert len(tracker.due(5.0)) == 2


def test_a_lone_name_waits_for_the_request():
    names = {'luna': ['luna'], 'dex': ['dex']}
    tracker = TurnTracker(TurnConfig(min_silence_s=0.25, max_silence_s=1.2), names)
    tracker.on_utterance(final('ada/1', 0.0, 0.5, 0.95, text='Luna.'))
    assert not tracker.due(0.9)
    tracker.on_utterance(final('ada/2', 0.8, 2.5, 0.95, text='please call the help desk.'))
    turns = tracker.due(2.8)
    assert len(turns) == 1 and turns[0].text == 'Luna. please call the help desk.'


def test_unfinished_texts():
    from voice_robot.conversing.turn import unfinished
    names = {'dex': ['dex'], 'luna': ['luna']}
    assert unfinished('Hey Dex.', names) and unfinished('So I think,', names) and unfinished('Luna', names)
    assert not unfinished('Dex, what time is it?', names) and not unfinished('Thank you.', names)
