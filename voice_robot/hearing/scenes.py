"""Small rendered acoustic scenes for the hearing tests and bench (pyroomacoustics image sources).

The scenario simulator (voice_robot.sim) renders whole conversations; these helpers render just what
a hearing test or the DOA bench needs: a shoebox room with a given RT60, one robot's array, a few
talkers (TTS or recorded speech) placed around it, optional diffuse noise at a given SNR, and the
ground-truth azimuths in the robot's base frame.
"""
from __future__ import annotations

import glob
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from voice_robot.config.robots import RobotSpec

RECORDINGS_LIBRIVOX = '/usr/share/pocketsphinx/test/data/librivox'
RECORDINGS_ASTERISK = '/usr/share/asterisk/sounds/en'


@dataclass
class Talker:
    position: tuple[float, float, float]      # map, metres (mouth)
    signal: np.ndarray                         # mono float32 at the scene's rate
    start_s: float = 0.0
    name: str = ''


@dataclass
class RenderedScene:
    sample_rate: int
    mics: np.ndarray                            # (samples, channels) float32
    images: np.ndarray                          # (talkers, samples, channels): each talker alone
    noise: np.ndarray                           # (samples, channels)
    azimuths: list[float]                       # per talker, base frame, rad
    spans: list[tuple[float, float]]            # per talker, (start, end) s
    robot: RobotSpec
    talkers: list[Talker] = field(default_factory=list)


def make_robot(channels: int = 4, radius: float = 0.032, position=(2.5, 2.0), yaw_deg: float = 0.0,
               name: str = 'ada', voice: str | None = 'espeak:en+m3', height: float = 0.9) -> RobotSpec:
    return RobotSpec.model_validate({
        'name': name, 'position_m': list(position), 'yaw_deg': yaw_deg, 'voice': voice,
        'mic_array': {'layout': 'circular', 'channels': channels, 'radius_m': radius, 'height_m': height}})


def make_linear_robot(channels: int = 4, spacing: float = 0.04, position=(2.5, 2.0), yaw_deg: float = 0.0,
                      name: str = 'ada', voice: str | None = 'espeak:en+m3', height: float = 1.0) -> RobotSpec:
    return RobotSpec.model_validate({
        'name': name, 'position_m': list(position), 'yaw_deg': yaw_deg, 'voice': voice,
        'mic_array': {'layout': 'linear', 'channels': channels, 'spacing_m': spacing, 'height_m': height}})


def place(robot: RobotSpec, azimuth_deg: float, distance: float, height: float = 1.2) -> tuple[float, float, float]:
    """A map point at a base-frame azimuth and horizontal distance from the robot's array centre."""
    centre = robot.array_center_map()
    a = robot.yaw + math.radians(azimuth_deg)
    return (float(centre[0] + distance * math.cos(a)), float(centre[1] + distance * math.sin(a)), float(height))


def _noise(kind: str, shape: tuple[int, int], rng: np.random.Generator, babble: list[np.ndarray] | None):
    n, c = shape
    if kind == 'white':
        return rng.standard_normal(shape).astype(np.float32)
    if kind == 'pink':
        white = rng.standard_normal((c, n))
        spec = np.fft.rfft(white, axis=1)
        f = np.arange(spec.shape[1])
        spec /= np.sqrt(np.maximum(f, 1))
        return np.fft.irfft(spec, n=n, axis=1).T.astype(np.float32)
    if kind == 'babble':
        # Independent mixtures of speech per channel: diffuse, speech-shaped, not localisable.
        out = np.zeros(shape, np.float32)
        clips = babble or [rng.standard_normal(n).astype(np.float32)]
        for ch in range(c):
            for _ in range(6):
                clip = clips[rng.integers(len(clips))]
                start = rng.integers(0, max(1, n))
                seg = np.resize(clip, n)
                out[:, ch] += np.roll(seg, start)
        return out
    raise ValueError(f'unknown noise kind {kind!r}: white, pink or babble')


def render(robot: RobotSpec, talkers: list[Talker], room_size=(6.0, 5.0, 3.0), rt60: float = 0.4,
           snr_db: float | None = None, noise_kind: str = 'white', sample_rate: int = 16000,
           duration_s: float | None = None, seed: int = 0, max_order: int | None = None) -> RenderedScene:
    """Render the talkers in a shoebox room at the robot's array; each talker's image is kept apart."""
    import pyroomacoustics as pra
    rng = np.random.default_rng(seed)
    if rt60 > 0:
        absorption, order = pra.inverse_sabine(rt60, list(room_size))
        order = min(order, max_order if max_order is not None else 17)
        materials = pra.Material(absorption)
    else:
        materials, order = pra.Material(1.0), 0
    ends = [t.start_s + len(t.signal) / sample_rate for t in talkers]
    n = int(round((duration_s if duration_s is not None else max(ends) + 0.5) * sample_rate))
    mics = robot.mic_positions_map().T
    images = []
    for t in talkers:
        room = pra.ShoeBox(list(room_size), fs=sample_rate, materials=materials, max_order=order)
        room.add_source(list(t.position), signal=t.signal.astype(np.float64), delay=t.start_s)
        room.add_microphone_array(mics)
        room.simulate()
        sig = room.mic_array.signals.T[:n]
        if sig.shape[0] < n:
            sig = np.concatenate([sig, np.zeros((n - sig.shape[0], sig.shape[1]))])
        images.append(sig.astype(np.float32))
    images = np.stack(images) if images else np.zeros((0, n, mics.shape[1]), np.float32)
    mix = images.sum(axis=0) if len(images) else np.zeros((n, mics.shape[1]), np.float32)
    noise = np.zeros_like(mix)
    if snr_db is not None and len(images):
        speech_power = np.mean([np.mean(img[np.abs(img).max(axis=1) > 1e-4] ** 2) for img in images])
        noise = _noise(noise_kind, mix.shape, rng, _babble_clips() if noise_kind == 'babble' else None)
        noise *= math.sqrt(speech_power / (np.mean(noise ** 2) + 1e-20) / 10 ** (snr_db / 10))
        mix = mix + noise
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > 0.95:
        scale = 0.95 / peak
        mix, images, noise = mix * scale, images * scale, noise * scale
    az = [robot.bearing_to(np.array(t.position)) for t in talkers]
    spans = [(t.start_s, e) for t, e in zip(talkers, ends)]
    return RenderedScene(sample_rate, mix.astype(np.float32), images.astype(np.float32), noise.astype(np.float32),
                         az, spans, robot, list(talkers))


@lru_cache(maxsize=1)
def _babble_clips() -> list[np.ndarray]:
    return [c for c, _ in librivox_clips()]


@lru_cache(maxsize=4)
def librivox_clips(sample_rate: int = 16000) -> tuple[tuple[np.ndarray, str], ...]:
    """The LibriVox clips of pocketsphinx-testdata (one male reader) with their transcripts."""
    import soundfile
    from voice_robot.hearing.audio import resample
    base = Path(RECORDINGS_LIBRIVOX)
    texts = {}
    tfile = base / 'transcription'
    if tfile.exists():
        for line in tfile.read_text().splitlines():
            if '(' in line:
                words = line.replace('<s>', '').replace('</s>', '')
                text, _, ident = words.rpartition('(')
                texts[ident.strip(' )')] = text.strip()
    out = []
    for path in sorted(glob.glob(str(base / '*.wav'))):
        audio, sr = soundfile.read(path, dtype='float32')
        out.append((resample(audio, sr, sample_rate), texts.get(Path(path).stem, '')))
    return tuple(out)


def asterisk_clip(name: str, sample_rate: int = 16000) -> np.ndarray:
    """A recorded prompt of asterisk-core-sounds-en-wav (one female speaker, 8 kHz) at sample_rate."""
    import soundfile
    from voice_robot.hearing.audio import resample
    audio, sr = soundfile.read(str(Path(RECORDINGS_ASTERISK) / f'{name}.wav'), dtype='float32')
    return resample(audio, sr, sample_rate)


def level(signal: np.ndarray, dbfs: float = -23.0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(signal ** 2))) if signal.size else 0.0
    return signal if rms < 1e-9 else (signal * (10 ** (dbfs / 20) / rms)).astype(np.float32)
