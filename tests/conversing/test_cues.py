"""Vocatives vs third-person mentions, group words and thinking aloud, on sentences people say."""
import pytest

from voice_robot.conversing.cues import name_similarity, text_cues

NAMES = {'ada': ['ada'], 'bruno': ['bruno'], 'coco': ['coco']}


@pytest.mark.parametrize('text, robot', [
    ('Ada, what is the capital of France?', 'ada'),
    ('Hey Bruno can you help me', 'bruno'),
    ('Could I get the menu please, Ada?', 'ada'),
    ('Excuse me Coco, where is the exit?', 'coco'),
    ('Bruno what time is it', 'bruno'),            # ASR dropped the comma
    ('Aida, could you call a taxi?', 'ada'),       # ASR misheard the name
])
def test_vocatives(text, robot):
    cues = text_cues(text, NAMES)
    assert cues.names[robot].vocative >= 0.75
    assert cues.names[robot].mention < 0.5


@pytest.mark.parametrize('text, robot', [
    ('I think Ada got the weather wrong this morning.', 'ada'),
    ('Yes, Bruno is usually better with the weather.', 'bruno'),
    ('You should ask Coco about it.', 'coco'),
    ("Ada's answer was strange.", 'ada'),
])
def test_third_person_mentions(text, robot):
    cues = text_cues(text, NAMES)
    assert cues.names[robot].mention >= 0.8
    assert cues.names[robot].vocative < 0.3


def test_group_words_and_pronouns():
    assert text_cues('Can one of you help me find my keys?', NAMES).group == 1.0
    assert text_cues('Does anyone know the wifi password?', NAMES).group == 1.0
    assert text_cues("Let's ask him.", NAMES).third_person_pronoun == 1.0
    assert text_cues('Do you want to go for a walk?', NAMES).group == 0.0


def test_thinking_aloud_and_backchannels():
    assert text_cues('Hmm, where did I put my badge.', NAMES).musing == 1.0
    assert text_cues('Mm-hmm.', NAMES).backchannel_like == 1.0
    assert text_cues('Sorry, stop. What time is it?', NAMES).backchannel_like == 0.0


@pytest.mark.parametrize('text, interrupting', [
    ('Wait, wait.', 1.0), ('Sorry to cut in', 1.0), ('Excuse me', 1.0), ('Hold on', 1.0),
    ('What time is it', 1.0), ('Bruno, one thing', 1.0), ('One moment, please.', 1.0),
    # What a garbled "mm-hmm" over the robot's own voice comes out as: not an interruption by itself.
    ('Can you repeat that?', 1.0),
    ('Seven and then.', 0.0), ("That's lovely.", 0.0), ('Another.', 0.0), ('Mm-hmm.', 0.0), ('You know?', 0.0),
    # Whole words only: "waiter" or "stopping by" do not open a cut-in.
    ('One second.', 1.0), ('Stop!', 1.0), ('Waiter, the menu.', 0.0), ('Stopping by later.', 0.0),
    ('Nobody knows.', 0.0), ('Heyday of jazz.', 0.0),
])
def test_interruption_openers(text, interrupting):
    assert text_cues(text, NAMES).interrupting == interrupting


def test_names_sound_alike_but_unrelated_words_do_not():
    assert name_similarity('bruneau', 'bruno') >= 0.8
    assert name_similarity('data', 'ada') == 0.0
    assert name_similarity('cocoa', 'coco') >= 0.8
    assert name_similarity('and', 'ada') == 0.0


def test_name_before_a_modal_without_the_comma_is_ambiguous():
    # ASR drops the comma of "Bruno, will it be sunny tomorrow?": neither cue may win alone.
    lost_comma = text_cues('Bruno will be sunny tomorrow.', NAMES).names['bruno']
    assert 0.3 <= lost_comma.vocative <= 0.6 and 0.3 <= lost_comma.mention <= 0.6
    question = text_cues('Bruno can you help me?', NAMES).names['bruno']
    assert question.vocative > question.mention
