"""Capture sources: WAV replay, a real PortAudio device (an ALSA `file` PCM), device loss, the stage."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

from hearing_helpers import SR, two_talker_scene
from voice_robot.hearing.capture import CaptureError, CaptureStage, PyAudioSource, WavFileSource, make_source
from voice_robot.config.robots import AudioInput
from voice_robot.pipeline import InProcessBus


@pytest.fixture(scope='module')
def array_wav(tmp_path_factory):
    """Four channels of a rendered room (two talkers) as a WAV file."""
    scene = two_talker_scene()
    path = tmp_path_factory.mktemp('capture') / 'array.wav'
    soundfile.write(str(path), scene.mics[:SR * 3], SR, subtype='FLOAT')
    return path, scene.mics[:SR * 3]


def test_wav_source_is_paced_by_the_clock_and_replays_the_file_exactly(array_wav):
    path, audio = array_wav
    src = WavFileSource(path, channels=4, frame_size=320)
    src.open(100.0)
    assert src.read(100.0) == []
    first = src.read(100.05)                 # 50 ms: two complete 20 ms frames are due
    assert [c.stamp for c in first] == pytest.approx([100.0, 100.02])
    rest = []
    t = 100.05
    while not src.exhausted:
        t += 0.2
        rest += src.read(t)
    frames = first + rest
    joined = np.concatenate([c.samples for c in frames])
    assert np.array_equal(joined[:audio.shape[0]], audio)
    assert np.all(np.diff([c.sequence for c in frames]) == 1)
    assert np.allclose(np.diff([c.stamp for c in frames]), 0.02)


def test_wav_source_refuses_a_file_that_does_not_match_the_array(array_wav, tmp_path):
    mono = tmp_path / 'mono.wav'
    soundfile.write(str(mono), array_wav[1][:, 0], SR)
    with pytest.raises(CaptureError, match='1 channels, the array has 4'):
        WavFileSource(mono, channels=4, frame_size=320)
    with pytest.raises(CaptureError, match='cannot read'):
        WavFileSource(tmp_path / 'missing.wav', channels=4, frame_size=320)


def test_make_source_explains_what_each_backend_needs():
    with pytest.raises(CaptureError, match='needs audio_in.path'):
        make_source(AudioInput(backend='file'), 4)
    with pytest.raises(CaptureError, match='simulator publishes audio/raw itself'):
        make_source(AudioInput(backend='sim'), 4)


ALSA_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from voice_robot.hearing.capture import PyAudioSource
    src = PyAudioSource(sys.argv[1], channels=4, sample_rate=16000, frame_size=320)
    src.open(0.0)
    frames, t = [], 0.0
    while len(frames) < 50:
        t += 0.1                      # the clock, not the device, decides what is due
        got = src.read(t)
        assert len(got) <= 5, len(got)
        frames += got
    src.close()
    pcm = np.round(np.concatenate([f.samples for f in frames]) * 32768).astype('<i2')
    print(json.dumps({'device': src.device_name, 'stamps': [f.stamp for f in frames],
                      'pcm': pcm.tobytes().hex(), 'stats': dict(src.stats)}))
''')


def test_pyaudio_source_reads_an_alsa_file_device_paced_in_code(tmp_path, array_wav):
    raw = tmp_path / 'in.raw'
    pcm = np.round(np.clip(array_wav[1], -1, 32767 / 32768) * 32768).astype('<i2')
    pcm.tofile(raw)
    (tmp_path / '.asoundrc').write_text(textwrap.dedent(f'''
        pcm.vr_array {{
            type file
            slave.pcm "null"
            file "/dev/null"
            infile "{raw}"
            format "raw"
            hint {{ show on description "voice_robot test array" }}
        }}
    '''))
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, '-c', ALSA_SCRIPT, 'vr_array'], capture_output=True, text=True,
                          env=env, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['device'] == 'vr_array'
    got = np.frombuffer(bytes.fromhex(out['pcm']), '<i2').reshape(-1, 4)
    assert np.array_equal(got, pcm[:got.shape[0]])
    assert np.allclose(np.diff(out['stamps']), 0.02)


class _LostDevice:
    """A stand-in for the pyaudio module (an external library) whose device disappears."""
    paInt16 = 8
    paInputOverflowed = -9981

    def __init__(self, fail_reads_after=10, failed_opens=2):
        self.fail_reads_after = fail_reads_after
        self.failed_opens = failed_opens
        self.reads = 0
        self.opens = 0
        module = self

        class Stream:
            def get_read_available(self):
                return 10 * 320

            def read(self, n, exception_on_overflow=True):
                module.reads += 1
                if module.reads == 3 and exception_on_overflow:
                    raise OSError(module.paInputOverflowed, 'Input overflowed')
                if module.reads == module.fail_reads_after:
                    raise OSError(-9999, 'Unanticipated host error')
                return (np.full(n * 4, module.reads, '<i2')).tobytes()

            def stop_stream(self):
                pass

            def close(self):
                pass

        class PyAudio:
            def get_device_count(self):
                return 1

            def get_device_info_by_index(self, i):
                return {'name': 'USB mic array', 'maxInputChannels': 4}

            def open(self, **kwargs):
                module.opens += 1
                if 1 < module.opens <= 1 + module.failed_opens:
                    raise OSError(-9996, 'Invalid input device (no default output device)')
                return Stream()

            def terminate(self):
                pass

        self.PyAudio = PyAudio


def test_pyaudio_source_survives_overruns_and_device_loss():
    fake = _LostDevice()
    src = PyAudioSource('usb mic', channels=4, sample_rate=SR, frame_size=320, reconnect_s=0.5,
                        pyaudio_module=fake)
    src.open(0.0)
    frames, t = [], 0.0
    while t < 3.0:
        t += 0.1
        frames += src.read(t)
    assert src.stats['overruns'] == 1
    assert src.stats['device lost'] == 1
    assert src.stats['open failures'] == 2
    assert src.stats['reconnects'] == 1
    assert src.stats['frames lost to outages'] > 0
    stamps = np.array([f.stamp for f in frames])
    assert np.all(np.diff(stamps) > 0)
    assert np.max(np.diff(stamps)) > 0.5           # the outage is a gap in time, not made-up audio
    assert stamps[-1] <= t


def test_pyaudio_source_names_the_devices_when_the_wanted_one_is_missing():
    with pytest.raises(CaptureError, match='USB mic array'):
        PyAudioSource('respeaker', channels=4, sample_rate=SR, frame_size=320,
                      pyaudio_module=_LostDevice()).open(0.0)


def test_capture_stage_publishes_the_file_on_audio_raw(array_wav):
    path, audio = array_wav
    stage = CaptureStage(WavFileSource(path, channels=4, frame_size=320), 'ada')
    bus = InProcessBus(charge_compute=False)
    got = []
    bus.tap('/ada/audio/raw', lambda topic, msg, t: got.append((msg, t)))
    bus.add(stage, '/ada')
    bus.run_until(1.0)
    assert len(got) >= 45
    joined = np.concatenate([c.samples for c, _ in got])
    assert np.array_equal(joined, audio[:joined.shape[0]])
    assert all(c.end <= t + 1e-9 for c, t in got)     # never published before it was recorded
    assert stage.diagnostics()['source frames'] == str(len(got))
