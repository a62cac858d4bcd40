"""The pyaudio sink on a real PortAudio/ALSA device: an ALSA ``file`` PCM that records what is played.

There is no sound card here, so each test runs a child process whose HOME holds an ``.asoundrc``
defining the device; ALSA reads it at start-up, so it cannot be set inside this process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('pyaudio')

ASOUNDRC = '''
pcm.robotspeaker {{
    type file
    slave.pcm "null"
    file "{path}"
    format "raw"
}}
'''


def run_child(tmp_path: Path, code: str) -> dict:
    home = tmp_path / 'home'
    home.mkdir(exist_ok=True)
    (home / '.asoundrc').write_text(ASOUNDRC.format(path=tmp_path / 'played.raw'))
    env = dict(os.environ, HOME=str(home))
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_chunks_reach_the_device_in_order(tmp_path):
    result = run_child(tmp_path, '''
        import json, time
        import numpy as np
        from voice_robot.acting.playback import PyAudioSink
        sink = PyAudioSink('robotspeaker', 16000, 20.0)
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(3200) / 16000)).astype(np.float32)
        for i in range(10):
            sink.write(tone[i * 320:(i + 1) * 320], 16000)
            time.sleep(0.02)
        time.sleep(0.2)
        sink.close()
        print(json.dumps({'stats': dict(sink.stats), 'device': sink.device_name}))
    ''')
    assert result['device'] == 'robotspeaker' and result['stats']['opened'] == 1
    assert result['stats']['chunks'] == 10
    played = np.fromfile(tmp_path / 'played.raw', dtype='<i2')
    tone = (np.clip(0.5 * np.sin(2 * np.pi * 440 * np.arange(3200) / 16000), -1, 1) * 32767).astype(np.int16)
    # The file device is not paced, so silence fills the gaps between chunks; the sound itself is all there.
    np.testing.assert_array_equal(played[played != 0], tone[tone != 0])


def test_missing_device_is_counted_and_retried_without_raising(tmp_path):
    result = run_child(tmp_path, '''
        import json
        import numpy as np
        from voice_robot.acting.playback import PyAudioSink
        sink = PyAudioSink('no such loudspeaker', 16000, 20.0, retry_every=5)
        for _ in range(12):
            sink.write(np.zeros(320, dtype=np.float32), 16000)
        sink.flush()
        sink.close()
        print(json.dumps({'stats': dict(sink.stats), 'error': sink.last_error}))
    ''')
    stats = result['stats']
    assert stats['chunks not played (no device)'] == 12
    assert stats['open failures'] == 3           # the first write, then every 5th
    assert 'no output device named like' in result['error'] and 'robotspeaker' in result['error']
