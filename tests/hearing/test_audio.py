"""Input checks, re-blocking and the streaming STFT of voice_robot.hearing.audio, on real speech."""
import numpy as np
import pytest

from hearing_helpers import SR, tts
from voice_robot.hearing.audio import BadAudio, FrameAssembler, OverlapAdd, StreamingStft, check_chunk
from voice_robot.messages import AudioChunk


def chunk(samples, stamp=0.0, rate=SR, seq=0):
    return AudioChunk(stamp, rate, samples, 'ada', seq)


@pytest.mark.parametrize('samples, rate, reason', [
    (np.zeros((320, 3), np.float32), SR, 'wrong channel count'),
    (np.zeros((320, 4), np.float32), 48000, 'wrong sample rate'),
    (np.zeros((0, 4), np.float32), SR, 'empty frame'),
    (np.zeros(320, np.float32), SR, 'bad shape'),
    (np.full((320, 4), np.nan, np.float32), SR, 'non-finite samples'),
    (np.ones((320, 4), np.float32), SR, 'clipped frame'),
    (np.zeros((320, 4), np.int16), SR, 'bad dtype'),
])
def test_bad_chunks_are_refused_with_a_reason(samples, rate, reason):
    with pytest.raises(BadAudio) as err:
        check_chunk(chunk(samples, rate=rate), channels=4, sample_rate=SR)
    assert err.value.reason == reason
    assert err.value.detail


def test_speech_passes_the_checks_and_keeps_its_samples():
    speech = tts('flite:slt', 'Hello there.')[:320]
    x = np.stack([speech] * 4, axis=1)
    assert np.array_equal(check_chunk(chunk(x), 4, SR), x)


def test_assembler_reblocks_20ms_frames_into_hops_on_one_timeline():
    speech = tts('flite:rms', 'Did you see the game last night?')
    x = np.stack([speech, -speech], axis=1)
    asm = FrameAssembler(256, SR, 2)
    hops = []
    for i in range(0, x.shape[0] - 320 + 1, 320):
        hops += asm.push(10.0 + i / SR, x[i:i + 320], i // 320)
    joined = np.concatenate([h.samples for h in hops])
    assert np.array_equal(joined, x[:joined.shape[0]])
    assert np.allclose([h.stamp for h in hops], 10.0 + np.arange(len(hops)) * 256 / SR)


def test_assembler_refuses_duplicates_and_out_of_order_and_fills_small_gaps():
    asm = FrameAssembler(256, SR, 1)
    f = np.full((320, 1), 0.1, np.float32)
    asm.push(0.0, f, 1)
    asm.push(0.02, f, 2)
    with pytest.raises(BadAudio) as dup:
        asm.push(0.02, f, 2)
    assert dup.value.reason == 'duplicate frame'
    with pytest.raises(BadAudio) as old:
        asm.push(0.005, f, 5)
    assert old.value.reason == 'out-of-order frame'
    hops = asm.push(0.1, f, 6)       # 60 ms lost: filled with silence, timeline kept
    assert asm.gap_filled_s == pytest.approx(0.06, abs=1e-3)
    assert not asm.restarted
    assert any(np.all(h.samples == 0) for h in hops)
    asm.push(5.0, f, 7)              # seconds later: the stream restarts
    assert asm.restarted
    assert asm.expected_stamp == pytest.approx(5.02)


def test_stft_and_overlap_add_reconstruct_speech_one_hop_late():
    speech = tts('piper:joe', 'The coffee here is much better than at the other place.')
    stft, ola = StreamingStft(512, 1), OverlapAdd(512)
    out = [ola.frame(stft.frame(speech[i:i + 256, None])[0]) for i in range(0, speech.size - 256 + 1, 256)]
    y = np.concatenate(out)
    lag = ola.latency
    assert np.allclose(y[lag + 256:], speech[256:y.size - lag], atol=1e-5)
