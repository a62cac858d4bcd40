"""Voice activity backends on a real recording (LibriVox) with silence around it, and on noise."""
import numpy as np
import pytest

from hearing_helpers import SR
from voice_robot.hearing import scenes
from voice_robot.hearing.vad import CHUNK, make_vad


@pytest.fixture(scope='module')
def clip_with_silence():
    clip, _ = scenes.librivox_clips()[1]
    rng = np.random.default_rng(0)
    clip = scenes.level(clip, -26)
    pad = np.zeros(SR, np.float32)
    audio = np.concatenate([pad, clip, pad])
    audio += rng.standard_normal(audio.size).astype(np.float32) * 10 ** (-60 / 20)
    speech = np.zeros(audio.size // CHUNK, bool)
    env = np.convolve(np.abs(np.concatenate([pad, clip, pad])), np.ones(400) / 400, 'same')
    for k in range(speech.size):
        speech[k] = env[k * CHUNK:(k + 1) * CHUNK].max() > 0.01
    return audio, speech


@pytest.mark.parametrize('backend, lo, hi', [('silero', 0.9, 0.1), ('webrtcvad', 0.8, 0.2), ('energy', 0.8, 0.1)])
def test_backend_separates_speech_from_silence(clip_with_silence, backend, lo, hi):
    audio, speech = clip_with_silence
    p = make_vad(backend).probabilities(audio)[:speech.size]
    head = slice(2, SR // CHUNK - 2)                   # the leading second of silence
    tail = slice(-SR // CHUNK + 4, None)               # the trailing second (after the last words)
    assert np.mean(p[head]) < hi and np.mean(p[tail]) < hi, backend
    assert np.mean(p[speech] > 0.5) > lo, backend


def test_streams_are_independent_and_chunks_are_checked(clip_with_silence):
    audio, speech = clip_with_silence
    vad = make_vad('silero')
    a, b = vad.stream(), vad.stream()
    first = int(np.flatnonzero(speech)[0]) + 4
    pa, pb = [], []
    for k in range(first, first + 10):          # one stream hears speech, the other silence
        pa.append(a.process(audio[k * CHUNK:(k + 1) * CHUNK]))
        pb.append(b.process(audio[(k - first) * CHUNK:(k - first + 1) * CHUNK]))
    assert np.mean(pa) > 0.5 > max(pb)
    with pytest.raises(ValueError, match='512'):
        a.process(audio[:320])
    with pytest.raises(ValueError, match='NaN'):
        a.process(np.full(CHUNK, np.nan, np.float32))
    with pytest.raises(Exception, match='known: silero, webrtcvad, energy'):
        make_vad('pyannote')
