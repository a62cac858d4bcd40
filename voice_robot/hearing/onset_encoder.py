"""Whisper's encoder as a description of the first fraction of a second of an utterance.

Over the robot's own voice, the barge-in decision at 0.18 s hangs on whether a person began "mm-hmm"
or "sorry". Hand-made acoustic features of that window (``turn_cues.barge_in_vector``) separate the
two imperfectly once the echo residue and the ducking are mixed in. The encoder of the Whisper model
the stage already uses for words was trained on 680k hours of noisy speech to tell phones apart; a
linear model on its states of the same window separates them better (the bundle's ``report``).

Only the encoder runs: one window of ``WINDOW_S`` (the clip and the silence Whisper expects after it),
10-20 ms on one CPU thread for tiny.en, against 0.3-0.4 s for a decode. It is a model instance of its
own, so a decode running on the hearing worker never holds it up.
"""
from __future__ import annotations

import threading

import numpy as np

SAMPLE_RATE = 16000
WINDOW_S = 1.0           # encoder input: the clip, then silence (Whisper's input is never shorter)
FRAME_S = 0.02           # one encoder state per 20 ms


class OnsetEncoder:
    """Pooled Whisper encoder states of an utterance's opening: ``vector(audio)``."""

    def __init__(self, model: str = 'tiny.en', cpu_threads: int = 1):
        from faster_whisper import WhisperModel

        from voice_robot.hearing.asr import resolve_whisper_model
        source, local = resolve_whisper_model(model)
        self.model_name = model
        self._whisper = WhisperModel(source, device='cpu', compute_type='int8', cpu_threads=cpu_threads,
                                     local_files_only=True)
        self._lock = threading.Lock()       # one stage per thread, but eval shares models across robots

    def states(self, audio: np.ndarray) -> np.ndarray:
        """Encoder states (frames x width) covering ``audio`` (at most ``WINDOW_S``)."""
        import ctranslate2
        clip = np.asarray(audio, np.float32)[:int(WINDOW_S * SAMPLE_RATE)]
        if clip.size < int(0.06 * SAMPLE_RATE):
            raise ValueError(f'{clip.size / SAMPLE_RATE:.3f} s is too little audio for the onset encoder (>= 0.06 s)')
        if not np.all(np.isfinite(clip)):
            raise ValueError('the onset encoder got non-finite audio')
        frames = int(WINDOW_S * 100)
        with self._lock:
            mel = self._whisper.feature_extractor(clip, padding=int(WINDOW_S * SAMPLE_RATE))[:, :frames]
            mel = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None].astype(np.float32)))
            out = np.array(self._whisper.model.encode(mel, to_cpu=True))[0]
        return out[:max(2, int(np.ceil(clip.size / SAMPLE_RATE / FRAME_S)))]

    def vector(self, audio: np.ndarray) -> np.ndarray:
        """The mean state of the clip and of its second half (where a consonant has become a vowel)."""
        s = self.states(audio)
        return np.concatenate([s.mean(axis=0), s[len(s) // 2:].mean(axis=0)]).astype(np.float64)
