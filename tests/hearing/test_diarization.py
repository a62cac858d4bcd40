"""Online voice identities: stable ids per person, and agreement between robots by the merge rule."""
import numpy as np
import pytest

from hearing_helpers import tts
from voice_robot.hearing.diarization import RobotVoices, VoiceRegistry
from voice_robot.messages import VoiceIdentity

SENTENCES = ('Could you tell me where the nearest train station is, please?',
             'I think we should meet again next week to talk about the plan.',
             'My favourite season is autumn, when the leaves turn red.',
             'Please remind me to call my sister this evening.')
PEOPLE = ('flite:slt', 'flite:rms', 'piper:joe', 'flite:awb')


@pytest.fixture(scope='module')
def embeddings(embedder):
    return {(p, k): embedder.embed(tts(p, s)) for p in PEOPLE for k, s in enumerate(SENTENCES)}


def test_one_stable_voice_id_per_person(embeddings):
    reg = VoiceRegistry('ada', same_threshold=0.72, merge_threshold=0.80)
    ids = {}
    order = [(p, k) for k in range(len(SENTENCES)) for p in PEOPLE]      # people take turns
    for t, key in enumerate(order):
        vid, _ = reg.assign(embeddings[key], now=float(t))
        ids.setdefault(key[0], set()).add(reg.canonical(vid))
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len({next(iter(v)) for v in ids.values()}) == len(PEOPLE)
    assert all(vid.startswith('voice_ada_') for v in ids.values() for vid in v)


def test_two_robots_agree_on_one_id_by_the_merge_rule(embeddings):
    ada, bruno = VoiceRegistry('ada'), VoiceRegistry('bruno')
    # Both hear slt first and each makes its own id; then they exchange what they publish.
    a_id, _ = ada.assign(embeddings[('flite:slt', 0)])
    b_id, _ = bruno.assign(embeddings[('flite:slt', 1)])
    rms_b, _ = bruno.assign(embeddings[('flite:rms', 0)])
    for _ in range(2):
        for v in ada.to_publish(1.0):
            bruno.merge_remote(v)
        for v in bruno.to_publish(1.0):
            ada.merge_remote(v)
    assert a_id == 'voice_ada_1' and b_id == 'voice_bruno_1'
    # The lexicographically smaller id wins on both robots; the other becomes an alias.
    assert ada.canonical(b_id) == bruno.canonical(b_id) == 'voice_ada_1'
    assert bruno.voices['voice_bruno_1'].alias_of == 'voice_ada_1'
    # Different people are not merged, and later speech of the person gets the agreed id everywhere.
    assert ada.canonical(rms_b) == rms_b
    assert bruno.assign(embeddings[('flite:slt', 3)])[0] == 'voice_ada_1'
    assert ada.assign(embeddings[('flite:rms', 2)])[0] == rms_b


def test_peer_voices_are_validated_and_our_own_ignored(embeddings):
    reg = VoiceRegistry('ada')
    e = embeddings[('piper:joe', 0)]
    assert not reg.merge_remote(VoiceIdentity('voice_ada_7', 'ada', e))
    with pytest.raises(ValueError, match='voice_<robot>_<n>'):
        reg.merge_remote(VoiceIdentity('joe', 'bruno', e))
    with pytest.raises(ValueError, match='finite non-zero'):
        reg.merge_remote(VoiceIdentity('voice_bruno_1', 'bruno', np.zeros(256, np.float32)))


def test_registry_is_bounded(embeddings):
    reg = VoiceRegistry('ada', same_threshold=0.999, max_voices=5)
    rng = np.random.default_rng(0)
    for t in range(20):
        reg.assign(rng.standard_normal(256), now=float(t))
    assert len(reg.voices) <= 5


def test_robot_voices_recognise_a_robot_talking(embedder):
    voices = RobotVoices(embedder)
    voices.enrol('ada', 'espeak:en+m3')
    voices.enrol('bruno', 'espeak:en-us+m5')
    voices.enrol('cleo', 'nosuch:voice')
    assert 'cleo' in voices.errors and set(voices.voices) == {'ada', 'bruno'}
    said = embedder.embed(tts('espeak:en+m3', 'The restroom is down the hall, second door on the left.'))
    sim = voices.similarity(said)
    assert sim['ada'] > 0.8 and sim['ada'] > sim['bruno']
    person = embedder.embed(tts('flite:slt', 'The restroom is down the hall, second door on the left.'))
    assert max(voices.similarity(person).values()) < 0.75


def test_a_voice_just_heard_elsewhere_needs_a_clearer_match(embeddings):
    """Two people with alike voices sit apart: an embedding that only loosely matches a voice heard
    from another direction starts its own voice; a clear match still joins."""
    reg = VoiceRegistry('ada', same_threshold=0.72, merge_threshold=0.80)
    joe, _ = reg.assign(embeddings[('piper:joe', 0)], now=0.0)
    awb = embeddings[('flite:awb', 0)]
    score = reg.similarity(joe, awb)
    for elsewhere in (False, True):
        loose = VoiceRegistry('ada', same_threshold=score - 0.02, merge_threshold=0.95)
        joe_loose, _ = loose.assign(embeddings[('piper:joe', 0)], now=0.0)
        got, _ = loose.assign(awb, now=1.0, elsewhere={joe_loose} if elsewhere else ())
        # Without a direction the loose threshold merges them; heard elsewhere, awb gets a voice of his own.
        assert (got != joe_loose) == elsewhere and got.startswith('voice_ada_')
    clear, _ = reg.assign(embeddings[('piper:joe', 1)], now=3.0, elsewhere={joe})
    assert reg.canonical(clear) == joe or reg.similarity(joe, embeddings[('piper:joe', 1)]) < 0.82
