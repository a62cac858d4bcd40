"""Speaker embeddings behind one interface: resemblyzer (default, ships its weights) or SpeechBrain ECAPA.

``SpeakerEmbedder.embed(audio)`` takes mono float32 at 16 kHz and returns a unit-norm vector; cosine
similarity between two embeddings is their dot product. The SpeechBrain backend is real loading
code for a local model directory (with ``hyperparams.yaml``) or a hub id; no package ships its
weights, so offline it fails at construction with an error that says what to provide.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


class EmbedderError(RuntimeError):
    """The configured speaker-embedding backend cannot be loaded or used."""


class SpeakerEmbedder(ABC):
    name = 'embedder'
    dim = 0
    min_samples = int(0.3 * SAMPLE_RATE)

    @abstractmethod
    def _embed(self, audio: np.ndarray) -> np.ndarray:
        ...

    def embed(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, np.float32).reshape(-1)
        if audio.size < self.min_samples:
            raise ValueError(f'{audio.size / SAMPLE_RATE:.2f} s of audio is too short for a voice embedding '
                             f'(at least {self.min_samples / SAMPLE_RATE:.2f} s)')
        if not np.all(np.isfinite(audio)):
            raise ValueError('audio for a voice embedding contains NaN or inf')
        rms = float(np.sqrt(np.mean(audio ** 2)))
        if rms < 1e-6:
            raise ValueError('audio for a voice embedding is silent')
        e = np.asarray(self._embed(audio * (0.05 / rms)), np.float32).reshape(-1)
        n = float(np.linalg.norm(e))
        if not np.isfinite(n) or n < 1e-9:
            raise EmbedderError(f'{self.name} returned an unusable embedding')
        return e / n


class ResemblyzerEmbedder(SpeakerEmbedder):
    """resemblyzer's GE2E voice encoder (256-d), weights bundled with the package."""
    name = 'resemblyzer'
    dim = 256

    def __init__(self, device: str = 'cpu'):
        try:
            import torch
            from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise EmbedderError(f'resemblyzer backend needs resemblyzer and torch ({exc})') from None
        # The encoder is small; more threads only fight the other stages for the same cores.
        torch.set_num_threads(1)
        self.encoder = VoiceEncoder(device, verbose=False)

    def _embed(self, audio):
        import torch
        with torch.no_grad():
            return self.encoder.embed_utterance(audio)


class SpeechBrainEmbedder(SpeakerEmbedder):
    """SpeechBrain speaker model (e.g. ECAPA-TDNN) from a local directory or a hub id.

    ``model`` is a directory holding ``hyperparams.yaml`` and the checkpoint files, or a hub id such
    as ``speechbrain/spkrec-ecapa-voxceleb`` (fetched only when ``allow_download`` is set; otherwise
    only a local cache is used).
    """
    name = 'speechbrain'

    def __init__(self, model: str | None, device: str = 'cpu', allow_download: bool = False,
                 savedir: str | None = None):
        if not model:
            raise EmbedderError('embedder.backend speechbrain needs embedder.model: a local model directory '
                                '(with hyperparams.yaml) or a hub id such as speechbrain/spkrec-ecapa-voxceleb')
        local = Path(model).expanduser()
        is_local = local.exists() or model.startswith(('/', '.', '~'))
        if is_local and not (local / 'hyperparams.yaml').is_file():
            raise EmbedderError(f'speechbrain model directory {local} has no hyperparams.yaml '
                                '(expected a SpeechBrain pretrained-model directory)')
        try:
            try:
                from speechbrain.inference.speaker import EncoderClassifier
            except ImportError:
                from speechbrain.pretrained import EncoderClassifier   # speechbrain < 1.0
        except ImportError as exc:
            raise EmbedderError('embedder.backend speechbrain needs the speechbrain package '
                                f'(pip install speechbrain==1.1.2 with the CPU torch) ({exc})') from None
        except Exception as exc:    # e.g. a CUDA torchaudio beside the CPU torch fails at import
            raise EmbedderError(f'speechbrain cannot be imported here: {type(exc).__name__}: {exc}') from None
        if not is_local and not allow_download:
            os.environ.setdefault('HF_HUB_OFFLINE', '1')
        save = savedir or str(Path(os.environ.get('VOICE_ROBOT_CACHE', Path.home() / '.cache' / 'voice_robot'))
                              / 'speechbrain' / model.replace('/', '_'))
        try:
            self.model = EncoderClassifier.from_hparams(source=str(local) if is_local else model, savedir=save,
                                                        run_opts={'device': device})
        except Exception as exc:
            where = 'the local directory' if is_local else \
                ('the hub (download allowed)' if allow_download else 'the local cache (downloads are off)')
            raise EmbedderError(f'cannot load speechbrain model {model!r} from {where}: {type(exc).__name__}: '
                                f'{str(exc)[:200]}. Provide a local model directory in embedder.model') from None
        self.dim = 0

    def _embed(self, audio):
        import torch
        with torch.no_grad():
            e = self.model.encode_batch(torch.from_numpy(audio)[None, :])
        return e.reshape(-1).cpu().numpy()


def reduce_background(speech: np.ndarray, background: np.ndarray, sample_rate: int = SAMPLE_RATE,
                      strength: float = 0.9) -> np.ndarray:
    """Speech with the stationary background of ``background`` (the same beam just before the person
    spoke) gated out, for embedding: in babble or fan noise the encoder otherwise describes the room as
    much as the voice, and different people's embeddings drift together (noisereduce spectral gating)."""
    import noisereduce
    speech = np.asarray(speech, np.float32).reshape(-1)
    background = np.asarray(background, np.float32).reshape(-1)
    if speech.size == 0 or background.size == 0 or not np.all(np.isfinite(background)):
        return speech
    out = noisereduce.reduce_noise(y=speech, sr=sample_rate, y_noise=background, stationary=True,
                                   prop_decrease=strength, n_jobs=1)
    return np.asarray(out, np.float32)


def make_embedder(config) -> SpeakerEmbedder:
    """From voice_robot.hearing.config.EmbedderConfig."""
    if config.backend == 'resemblyzer':
        return ResemblyzerEmbedder(config.device)
    if config.backend == 'speechbrain':
        return SpeechBrainEmbedder(config.model, config.device, allow_download=config.allow_download)
    raise EmbedderError(f'unknown embedder backend {config.backend!r}; known: resemblyzer, speechbrain')
