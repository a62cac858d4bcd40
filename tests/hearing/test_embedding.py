"""Speaker embeddings on real recordings and TTS voices; the SpeechBrain backend fails clearly offline."""
import numpy as np
import pytest

from hearing_helpers import SR, tts
from voice_robot.hearing import scenes
from voice_robot.hearing.config import EmbedderConfig
from voice_robot.hearing.embedding import EmbedderError, SpeechBrainEmbedder, make_embedder, reduce_background


def test_same_speaker_is_closer_than_different_speakers_on_recordings(embedder):
    reader = [embedder.embed(clip) for clip, _ in scenes.librivox_clips()[:3]]          # one man (LibriVox)
    woman = [embedder.embed(scenes.asterisk_clip(name)) for name in
             ('all-circuits-busy-now', 'agent-loginok', 'activated')]                 # one woman (asterisk)
    same = [float(a @ b) for group in (reader, woman) for i, a in enumerate(group) for b in group[i + 1:]]
    different = [float(a @ b) for a in reader for b in woman]
    assert min(same) > max(different)
    assert all(abs(np.linalg.norm(e) - 1) < 1e-5 for e in reader + woman)


def test_tts_voices_are_told_apart(embedder):
    voices = ('flite:slt', 'flite:rms', 'piper:joe')
    a = [embedder.embed(tts(v, 'Could you tell me where the nearest train station is, please?')) for v in voices]
    b = [embedder.embed(tts(v, 'I think we should meet again next week to talk about the plan.')) for v in voices]
    sim = np.array([[float(x @ y) for y in b] for x in a])
    assert np.all(np.argmax(sim, axis=1) == np.arange(3))


def test_background_reduction_pulls_different_voices_apart_in_noise(embedder):
    """Four TTS voices, two sentences each, in babble at 3 dB SNR; the background is learnt from the
    two seconds before each sentence, as the hearing stage does from the beam."""
    rng = np.random.default_rng(1)
    voices = ('flite:slt', 'flite:rms', 'piper:joe', 'flite:awb')
    texts = ('Could you tell me where the nearest train station is, please?',
             'I think we should meet again next week to talk about the plan.')
    heard, reduced, who = [], [], []
    for voice in voices:
        for text in texts:
            speech = tts(voice, text)
            noise = scenes._noise('babble', (speech.size + 2 * SR, 1), rng, scenes._babble_clips())[:, 0]
            noise *= np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2)) / 10 ** (3 / 20)
            mix = speech + noise[2 * SR:]
            heard.append(embedder.embed(mix))
            reduced.append(embedder.embed(reduce_background(mix, noise[:2 * SR])))
            who.append(voice)

    def margin(embs):
        """Lowest same-voice similarity minus highest different-voice one: > 0 when one threshold
        separates every pair."""
        pairs = [(float(embs[i] @ embs[j]), who[i] == who[j]) for i in range(len(who)) for j in range(i + 1, len(who))]
        return min(s for s, same in pairs if same) - max(s for s, same in pairs if not same)

    assert margin(heard) < 0.0 < margin(reduced)
    assert reduce_background(np.zeros(0, np.float32), noise).size == 0
    assert np.array_equal(reduce_background(mix, np.full(10, np.nan, np.float32)), mix.astype(np.float32))


def test_bad_audio_is_refused(embedder):
    with pytest.raises(ValueError, match='too short'):
        embedder.embed(np.zeros(1000, np.float32))
    with pytest.raises(ValueError, match='silent'):
        embedder.embed(np.zeros(SR, np.float32))
    with pytest.raises(ValueError, match='NaN'):
        embedder.embed(np.full(SR, np.nan, np.float32))


def test_speechbrain_backend_says_what_is_missing_offline(tmp_path):
    with pytest.raises(EmbedderError, match='needs embedder.model'):
        make_embedder(EmbedderConfig(backend='speechbrain'))
    with pytest.raises(EmbedderError, match='no hyperparams.yaml'):
        SpeechBrainEmbedder(str(tmp_path))
    # A hub id without network (and without the package here): a clear error, never a hang or a crash.
    with pytest.raises(EmbedderError, match='speechbrain'):
        SpeechBrainEmbedder('speechbrain/spkrec-ecapa-voxceleb')
