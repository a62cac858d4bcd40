"""Turn cues of an utterance: has the talker finished (end of turn), and is it a backchannel?

Both are small logistic models on named, interpretable features; the weights are constants in this
file (``END_OF_TURN`` and ``BACKCHANNEL_*``), documented next to each feature, so they can be read,
argued about and refit (``fit_logistic``; the bench's ``--fit-backchannel`` re-derives the
backchannel weights from TTS renders).

End of turn (on the final, and on partials as a running estimate):
  text: a sentence-final mark from the recogniser, a question, a trailing conjunction / filler /
  article / preposition ("and", "but", "so", "um", "the", "to") or a dangling comma, and a segment
  that is only a vocative ("Luna.", "Hey Dex.", "Remi,": the request follows the pause);
  prosody: pitch movement over the last 0.4 s relative to the talker's median (a fall or a rise both
  end turns, a level tone holds them), final lengthening (length of the last voiced stretch), energy
  decay over the last 0.3 s.

Backchannel ("mm-hmm", "uh-huh", "yeah", "right", "okay": a listener response that must not take the
floor) versus a real interruption ("sorry, stop", "wait", "excuse me", "no, ..."):
  early, from the first ~180 ms of audio only (for the 0.18 s partial): nasal hum acoustics: low
  spectral centroid, little energy above 2 kHz, a steady low first formant region, strong voicing
  from the start, no fricative or plosive onset (no burst of high-frequency energy or zero crossings);
  said over the robot's own voice, the same window through the echo residue and ducking is another
  sound: there gradient-boosted trees fitted on such renders decide (``over_own_voice_models``);
  later, from the transcript lexicon and the utterance duration (backchannels are short).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


# --- signal features ------------------------------------------------------------------------------

def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    if x.size < size:
        x = np.concatenate([x, np.zeros(size - x.size, np.float32)])
    n = 1 + (x.size - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def pitch_track(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop_s: float = 0.01,
                fmin: float = 70.0, fmax: float = 400.0) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz or 0 when unvoiced, voicing strength 0..1) per 10 ms, by normalised autocorrelation."""
    audio = np.asarray(audio, np.float32)
    size = int(0.04 * sample_rate)
    hop = int(hop_s * sample_rate)
    fr = _frames(audio, size, hop)
    fr = fr - fr.mean(axis=1, keepdims=True)
    fr = fr * np.hanning(size)[None, :]
    nfft = 1 << (2 * size - 1).bit_length()
    spec = np.fft.rfft(fr, n=nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, n=nfft, axis=1)[:, :size]
    energy = ac[:, 0] + 1e-12
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    hi = min(hi, size - 1)
    seg = ac[:, lo:hi] / energy[:, None]
    lag = np.argmax(seg, axis=1) + lo
    strength = np.max(seg, axis=1)
    loud = 10 * np.log10(energy) > 10 * np.log10(np.max(energy)) - 35
    voiced = (strength > 0.45) & loud
    f0 = np.where(voiced, sample_rate / lag, 0.0)
    return f0.astype(np.float32), np.where(loud, strength, 0.0).astype(np.float32)


def _band_energy(spec: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sel = (freqs >= lo) & (freqs < hi)
    return spec[..., sel].sum(axis=-1)


@dataclass
class OnsetFeatures:
    """Acoustics of the first ~180 ms of an utterance (the backchannel cue available early)."""
    centroid_khz: float          # spectral centroid of the voiced part
    high_ratio_db: float         # energy above 2 kHz relative to 100-1000 Hz
    onset_burst_db: float        # first 40 ms: energy above 2.5 kHz relative to the rest of the window
    zcr_onset: float             # zero-crossing rate of the first 50 ms (fricatives are high)
    voicing: float               # mean voicing strength
    f1_steadiness: float         # correlation of consecutive 200-1000 Hz band spectra (steady = near 1)
    low_band_share: float        # share of 100-1000 Hz energy in 100-4000 Hz

    def vector(self) -> np.ndarray:
        return np.array([self.centroid_khz, self.high_ratio_db, self.onset_burst_db, self.zcr_onset,
                         self.voicing, self.f1_steadiness, self.low_band_share], dtype=np.float64)


ONSET_FEATURE_NAMES = ('centroid_khz', 'high_ratio_db', 'onset_burst_db', 'zcr_onset', 'voicing',
                       'f1_steadiness', 'low_band_share')


def onset_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, window_s: float = 0.18) -> OnsetFeatures:
    """Features of the first ``window_s`` of speech (the audio should start at the detected onset)."""
    x = np.asarray(audio, np.float32)[:int(window_s * sample_rate)]
    if x.size < int(0.06 * sample_rate):
        raise ValueError(f'{x.size / sample_rate:.3f} s is too little audio for onset features (>= 0.06 s)')
    x = x - x.mean()
    size, hop = 512, 160
    fr = _frames(x, size, hop) * np.hanning(size)[None, :]
    spec = np.abs(np.fft.rfft(fr, axis=1)) ** 2 + 1e-14
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    loud = spec.sum(axis=1)
    active = loud > loud.max() * 10 ** (-25 / 10)
    s = spec[active] if active.any() else spec
    total = s.sum(axis=0)
    band = (freqs >= 100) & (freqs < 4000)
    centroid = float((total[band] * freqs[band]).sum() / total[band].sum())
    low = float(_band_energy(total, freqs, 100, 1000))
    high = float(_band_energy(total, freqs, 2000, 8000))
    mid = float(_band_energy(total, freqs, 100, 4000))
    first = x[:int(0.04 * sample_rate)]
    rest = x[int(0.04 * sample_rate):]
    fs_first = np.abs(np.fft.rfft(first * np.hanning(first.size))) ** 2
    fs_rest = np.abs(np.fft.rfft(rest * np.hanning(rest.size))) ** 2 if rest.size > 32 else fs_first
    f_first = np.fft.rfftfreq(first.size, 1.0 / sample_rate)
    f_rest = np.fft.rfftfreq(rest.size, 1.0 / sample_rate) if rest.size > 32 else f_first
    hf_first = _band_energy(fs_first, f_first, 2500, 8000) / (fs_first.sum() + 1e-14)
    hf_rest = _band_energy(fs_rest, f_rest, 2500, 8000) / (fs_rest.sum() + 1e-14)
    burst = 10 * math.log10((hf_first + 1e-9) / (hf_rest + 1e-9))
    z = x[:int(0.05 * sample_rate)]
    zcr = float(np.mean(np.abs(np.diff(np.sign(z))) > 0))
    _, voicing = pitch_track(x, sample_rate)
    lowband = s[:, (freqs >= 200) & (freqs < 1000)]
    lowband = np.log(lowband)
    if lowband.shape[0] >= 2:
        a = lowband[:-1] - lowband[:-1].mean(axis=1, keepdims=True)
        b = lowband[1:] - lowband[1:].mean(axis=1, keepdims=True)
        corr = np.sum(a * b, axis=1) / (np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1)) + 1e-12)
        steady = float(np.mean(corr))
    else:
        steady = 0.0
    return OnsetFeatures(centroid_khz=centroid / 1000.0, high_ratio_db=10 * math.log10((high + 1e-14) / (low + 1e-14)),
                         onset_burst_db=float(burst), zcr_onset=zcr, voicing=float(np.mean(voicing)),
                         f1_steadiness=steady, low_band_share=low / (mid + 1e-14))


@dataclass
class ProsodyFeatures:
    """Prosody at the end of an utterance (end-of-turn cues)."""
    final_pitch_fall: float      # semitones the pitch falls over the last 0.4 s (negative = rise)
    final_pitch_rise: float      # semitones it rises (0 when it falls)
    final_lengthening: float     # last voiced stretch relative to the median voiced stretch
    energy_decay_db: float       # level drop from the last 0.3 s's first half to its second half
    voiced_at_end: float         # voicing in the last 0.1 s (0..1)


def prosody_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> ProsodyFeatures:
    x = np.asarray(audio, np.float32)
    if x.size < int(0.2 * sample_rate):
        return ProsodyFeatures(0.0, 0.0, 1.0, 0.0, 0.0)
    f0, voicing = pitch_track(x, sample_rate)
    # The segment ends with the endpointing silence; measure up to the last loud frame.
    fr = _frames(x, 400, 160)
    level = 10 * np.log10(np.mean(fr ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 30)
    last = int(loud[-1]) + 1 if loud.size else len(level)
    last = min(last, len(f0))
    f0, voicing, level = f0[:last], voicing[:last], level[:last]
    voiced = f0 > 0
    fall = rise = 0.0
    if voiced.sum() >= 5:
        semis = 12 * np.log2(np.where(voiced, f0, 1.0) / np.median(f0[voiced]))
        lo = max(0, len(voiced) - 40)
        tv = voiced[lo:]
        if tv.sum() >= 4:
            t = np.arange(lo, len(voiced))[tv]
            slope = np.polyfit(t, semis[lo:][tv], 1)[0] * 40      # semitones over 0.4 s
            fall, rise = max(0.0, -slope), max(0.0, slope)
    runs, run = [], 0
    for v in voiced:
        if v:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    lengthening = (runs[-1] / float(np.median(runs))) if len(runs) >= 2 else 1.0
    n30 = min(30, len(level))
    half = max(1, n30 // 2)
    tail_level = level[-n30:]
    decay = float(np.mean(tail_level[:half]) - np.mean(tail_level[half:])) if n30 >= 4 else 0.0
    return ProsodyFeatures(float(min(fall, 12.0)), float(min(rise, 12.0)), float(min(lengthening, 5.0)),
                           float(np.clip(decay, -30, 30)), float(np.mean(voicing[-10:])) if len(voicing) else 0.0)


# --- text features --------------------------------------------------------------------------------

_TRAILING = frozenset('''and but so or because um uh er erm like the a an to of with for in on at my your our
their if then that which who when while although though since unless until as'''.split())
_FILLERS = frozenset('um uh er erm hmm mm'.split())
BACKCHANNEL_WORDS = ('mm-hmm', 'mhm', 'mm hmm', 'uh-huh', 'uh huh', 'yeah', 'yes', 'yep', 'right', 'okay', 'ok',
                     'sure', 'i see', 'got it', 'alright', 'all right', 'cool', 'true', 'exactly', 'hmm', 'mm',
                     'wow', 'nice', 'oh', 'ah', 'indeed', 'of course', 'uh hmm', 'yup', 'great')
INTERRUPTION_WORDS = ('sorry', 'stop', 'wait', 'excuse me', 'no', 'hold on', 'hang on', 'actually', 'but',
                      'hey', 'listen', 'quiet', 'enough', 'pause', 'what', 'why', 'can you', 'could you',
                      'please', 'shut up', 'one moment', 'not')


def _norm_text(text: str) -> str:
    t = text.lower().replace('-', ' ')
    return ' '.join(re.sub(r"[^a-z' ]+", ' ', t).split())


_CALL_WORDS = frozenset("hey hi hello excuse me sorry okay ok so um uh oh well and yo please thanks thank you "
                        "listen".split())


def vocative_only(words: list[str], names) -> bool:
    """Only a name (or names), with at most greetings around it: "Hey Dex", "Luna", "sorry, Remi"."""
    called = [w for w in words if w not in _CALL_WORDS]
    return bool(called) and all(w in names for w in called)


def text_end_features(text: str, names=()) -> dict[str, float]:
    raw = text.strip()
    words = _norm_text(raw).split()
    last = words[-1] if words else ''
    names = {n.lower() for n in names}
    return {
        'vocative_only': 1.0 if names and vocative_only(words, names) else 0.0,
        'sentence_final': 1.0 if re.search(r'[.!?]["\')\]]*$', raw) and not raw.endswith('...') else 0.0,
        'question': 1.0 if raw.endswith('?') else 0.0,
        'trailing_word': 1.0 if last in _TRAILING else 0.0,
        'filler_end': 1.0 if last in _FILLERS else 0.0,
        'dangling': 1.0 if raw.endswith((',', '...', '-', ';', ':')) else 0.0,
        'few_words': 1.0 if len(words) <= 2 else 0.0,
        'empty': 0.0 if words else 1.0,
    }


# Whisper spells a hum as many ways as it is drawn out: "Mmm", "Hmmm", "Mmhmm", "Hm".
_HUM = re.compile(r'(?<![a-z])(?=[mh]*m)[mh]{2,}(?![a-z])')


def lexicon_score(text: str) -> tuple[float, float]:
    """(backchannel cue, interruption cue) in [0, 1] from the words of a (partial) transcript."""
    t = ' ' + _HUM.sub('mm', _norm_text(text)) + ' '
    words = t.split()
    if not words:
        return 0.0, 0.0
    back = sum(1 for w in BACKCHANNEL_WORDS if f' {w} ' in t)
    inter = sum(1 for w in INTERRUPTION_WORDS if f' {w} ' in t)
    covered = sum(1 for w in words if any(w in b.split() for b in BACKCHANNEL_WORDS))
    return min(1.0, covered / len(words)) if back else 0.0, min(1.0, inter / 2.0)


# Words decoded over the robot's own voice are doubted (its residue garbles a "mm-hmm" into random
# words), but an opening that only a cut-in has still says "stop". "Hey", "no" and questions are left
# out: a hum over the robot's voice comes out as "hey, hey" or "you got it?" often enough.
_CUT_IN_OPENING = re.compile(r"^\W*(sorry|wait|stop|excuse me|hold on|hang on|pardon|one moment|one sec(ond)?|"
                             r"just a (moment|second|minute))\b", re.IGNORECASE)


def opens_as_cut_in(text: str) -> bool:
    """The transcript opens with a phrase that asks a speaker to stop ("sorry", "wait", "hold on")."""
    return bool(_CUT_IN_OPENING.match(text))


# --- the models ------------------------------------------------------------------------------------

def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


# End of turn: hand-set weights (log-odds). Text dominates when there is text; prosody decides
# when the recogniser gave nothing usable.
END_OF_TURN = {
    'bias': 0.2,
    'sentence_final': 1.8,      # Whisper ends complete sentences with . ! ?
    'question': 0.8,            # ... and a question asks for the floor to change
    'trailing_word': -2.6,      # "... and", "... the", "... because": more to come
    'filler_end': -2.0,         # "... um": holding the floor
    'dangling': -1.6,           # ",", "...": unfinished clause
    'few_words': -0.3,
    'empty': -0.6,
    'vocative_only': -4.5,      # "Luna." / "Hey Dex," alone: the request comes after the pause
    'final_pitch_fall': 0.18,   # per semitone of final fall (declarative ending)
    'final_pitch_rise': 0.12,   # per semitone of final rise (question ending)
    'level_pitch': -0.5,        # voiced to the end with neither fall nor rise: continuation tone
    'final_lengthening': 0.25,  # per unit of last voiced stretch / median stretch above 1
    'energy_decay_db': 0.05,    # per dB of decay over the last 0.3 s
}


def end_of_turn_probability(text: str, audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE,
                            names=()) -> float:
    """Probability that the talker has finished their turn (``names``: the robots' names and aliases)."""
    w = END_OF_TURN
    z = w['bias']
    for name, value in text_end_features(text, names).items():
        z += w[name] * value
    if audio is not None and len(audio) >= int(0.2 * sample_rate):
        p = prosody_features(audio, sample_rate)
        z += w['final_pitch_fall'] * p.final_pitch_fall + w['final_pitch_rise'] * p.final_pitch_rise
        if p.voiced_at_end > 0.5 and p.final_pitch_fall < 1.0 and p.final_pitch_rise < 1.0:
            z += w['level_pitch']
        z += w['final_lengthening'] * max(0.0, p.final_lengthening - 1.0)
        z += w['energy_decay_db'] * max(-10.0, min(20.0, p.energy_decay_db))
    return _sigmoid(z)


# Early backchannel model: logistic regression on standardised onset features (the 7 named ones of
# OnsetFeatures, then 16 log-mel band shapes, 16 band changes from the first to the last 30 ms and a
# spectral flux), fitted on TTS renders (clean and reverberant; 10 voices, 18 backchannel and 22
# interruption phrases) with ``fit_backchannel_early`` (bench: ``--fit-backchannel``). The named
# weights read as the docstring says: a higher centroid and onset zero-crossing rate argue for an
# interruption, strong voicing and a steady low band for a hum.
BACKCHANNEL_FEATURE_MEAN = np.array([
    0.8374, -10.54, 5.714, 0.2652, 0.5013, 0.737, 0.772, 2.069, 1.95, 2.07, 1.432, 0.2495, -0.3706,
    -0.4087, -0.5335, -0.5237, 0.148, 0.3683, 0.2565, -0.3892, -1.485, -2.421, -2.41, -1.182, -1.119,
    -1.651, -1.765, -1.053, -0.7917, -0.737, -0.1161, 0.4714, 0.3389, 0.3783, 0.5371, 1.118, 1.858,
    1.947, 1.766, 0.4709])
BACKCHANNEL_FEATURE_STD = np.array([
    0.5636, 9.905, 9.523, 0.166, 0.1581, 0.1763, 0.2101, 2.285, 1.892, 1.633, 1.61, 1.775, 1.857,
    1.756, 1.564, 1.516, 1.453, 1.092, 1.222, 1.469, 2.239, 3.054, 2.985, 3.302, 2.889, 2.66, 2.767,
    2.86, 2.691, 2.415, 2.419, 2.34, 1.99, 1.497, 1.578, 2, 2.977, 3.218, 3.078, 0.1308])
BACKCHANNEL_EARLY_WEIGHTS = np.array([
    0.06886, 0.09712, 0.1027, -0.0632, 0.3979, 0.4003, -0.107, -0.05676, -0.05921, 0.1255, 0.05179,
    -0.06482, 0.1975, 0.1155, -0.1748, -0.07954, 0.08086, 0.1744, 0.02482, -0.1326, -0.2268, 0.06947,
    0.01509, -0.03971, 0.007508, 0.2708, 0.04801, -0.09027, 0.1223, -0.01499, -0.165, 0.01401,
    -0.08611, 0.08578, 0.2738, 0.1607, 0.03813, -0.1197, -0.2765, -0.4014])
BACKCHANNEL_EARLY_BIAS = -0.3015
# Evidence from acoustics alone is weak (about 2/3 right on new voices): tempered and bounded, so the
# early estimate never decides alone what the transcript later can.
BACKCHANNEL_EARLY_TEMPER = 0.5
EARLY_MIN = 0.1


def _mel_filterbank(n_mels: int = 16, nfft: int = 512, sample_rate: int = SAMPLE_RATE,
                    fmin: float = 80.0, fmax: float = 7600.0) -> np.ndarray:
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    fb = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    return fb


_MEL = _mel_filterbank()


def _log_mel(x: np.ndarray) -> np.ndarray:
    """Log mel band energies per 10 ms frame (32 ms Hann windows)."""
    fr = _frames(x, 512, 160) * np.hanning(512)[None, :]
    return np.log(np.abs(np.fft.rfft(fr, axis=1)) ** 2 @ _MEL.T + 1e-10)


def onset_vector(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, window_s: float = 0.18) -> np.ndarray:
    """The 40 early-backchannel features of the first ``window_s`` of an utterance."""
    named = onset_features(audio, sample_rate, window_s).vector()
    m = _log_mel(np.asarray(audio, np.float32)[:int(window_s * sample_rate)])
    m = m - m.mean(axis=1, keepdims=True)         # band shape, independent of level
    change = m[:3].mean(axis=0) - m[-3:].mean(axis=0)
    flux = float(np.abs(np.diff(m, axis=0)).mean()) if len(m) > 1 else 0.0
    return np.concatenate([named, m.mean(axis=0), change, [flux]])


# Ages (s) of an utterance at which acoustic estimates are published while the robot talks: the barge-in
# decision reads each (from 0.12 s: the rendered onset often leads the detected one by 0.05-0.1 s, and a
# stop within 0.3 s of it must be decided by then), and later ones are surer (the bundle's report).
EARLY_WINDOWS_S = (0.12, 0.15, 0.18, 0.3)
CLEAN_EARLY_WINDOW_S = 0.18        # the clean-render logistic model's window (used while the robot is silent)


def contour_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, window_s: float = 0.3) -> np.ndarray:
    """Shape over time of the first ``window_s``: what a hum ("mm-hmm") does and a word onset does not.

    Pitch slope (semitones/s) and voiced share, level slope (dB/s), number of level peaks (syllable
    pulses) per 100 ms, the length of the unvoiced start (a consonant onset: "s", "st", "w"), and the
    spectral flatness and 2-4 kHz share of the loud frames.
    """
    x = np.asarray(audio, np.float32)[:int(window_s * sample_rate)]
    if x.size < int(0.06 * sample_rate):
        raise ValueError(f'{x.size / sample_rate:.3f} s is too little audio for contour features (>= 0.06 s)')
    f0, voicing = pitch_track(x, sample_rate)
    voiced = f0 > 0
    t = np.arange(f0.size) * 0.01
    if voiced.sum() >= 3:
        semis = 12 * np.log2(f0[voiced] / np.median(f0[voiced]))
        pitch_slope = float(np.polyfit(t[voiced], semis, 1)[0])
    else:
        pitch_slope = 0.0
    fr = _frames(x, 320, 160)
    level = 10 * np.log10(np.mean(fr ** 2, axis=1) + 1e-12)
    loud = level > level.max() - 25
    tl = np.arange(level.size) * 0.01
    level_slope = float(np.polyfit(tl[loud], level[loud], 1)[0]) if loud.sum() >= 3 else 0.0
    smooth = np.convolve(level, np.ones(3) / 3, 'same')
    peaks = int(np.sum((smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & (smooth[1:-1] > level.max() - 10)))
    first_voiced = int(np.argmax(voiced)) if voiced.any() else voiced.size
    first_loud = int(np.argmax(loud)) if loud.any() else 0
    unvoiced_start = max(0, first_voiced - first_loud) * 0.01
    spec = np.abs(np.fft.rfft(fr * np.hanning(320)[None, :], axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(320, 1.0 / sample_rate)
    s_loud = spec[loud] if loud.any() else spec
    band = (freqs >= 100) & (freqs < 4000)
    flatness = float(np.mean(np.exp(np.mean(np.log(s_loud[:, band]), axis=1)) / np.mean(s_loud[:, band], axis=1)))
    upper = float(_band_energy(s_loud.sum(axis=0), freqs, 2000, 4000) / (_band_energy(s_loud.sum(axis=0), freqs, 100, 4000) + 1e-12))
    return np.array([np.clip(pitch_slope, -60, 60), float(voiced.mean()), np.clip(level_slope, -300, 300),
                     peaks / (x.size / sample_rate / 0.1), min(unvoiced_start, 0.2), flatness, upper], dtype=np.float64)


CONTOUR_FEATURE_NAMES = ('pitch_slope', 'voiced_share', 'level_slope', 'level_peaks_per_100ms', 'unvoiced_start_s',
                         'flatness', 'upper_share')


def early_vector(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, window_s: float = 0.18) -> np.ndarray:
    """Features of an utterance's first ``window_s``: onset acoustics (``onset_vector``) and contours."""
    return np.concatenate([onset_vector(audio, sample_rate, window_s), contour_features(audio, sample_rate, window_s)])


PROFILE_STEPS = 6      # time steps of the log-mel profile in ``barge_in_vector``


def barge_in_vector(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, window_s: float = 0.18) -> np.ndarray:
    """Features for the over-own-voice model: ``early_vector`` and the log-mel profile of the window in
    ``PROFILE_STEPS`` time steps relative to its loudest band (how the onset unfolds: a hum stays put,
    "sorry" or "wait" moves from a consonant into a vowel)."""
    m = _log_mel(np.asarray(audio, np.float32)[:int(window_s * sample_rate)])
    m = m - m.max()
    steps = int(round(window_s / 0.01)) - 2
    m = m[:steps] if len(m) >= steps else np.vstack([m, np.repeat(m[-1:], steps - len(m), axis=0)])
    profile = np.concatenate([m[idx].mean(axis=0) for idx in np.array_split(np.arange(len(m)), PROFILE_STEPS)])
    return np.concatenate([early_vector(audio, sample_rate, window_s), profile])


# The over-own-voice models, fitted on backchannels and interruptions said over the robot's voice and
# heard through the hearing stage in closed loop, ducking included (``voice_robot.bench.hearing
# --fit-early``), one per early window. Two kinds, by the features they read: a linear model on Whisper's
# encoder states of the window (``onset_encoder``) and gradient-boosted trees on ``barge_in_vector``; by
# default both, read together (``default_over_own_voice_model``). Over the robot's voice the clean-render logistic model
# above is right about 0.6 of the time; see each file's ``report``.
OVER_OWN_VOICE_MODEL = Path(__file__).parent / 'data' / 'backchannel_over_own_voice.joblib'
OVER_OWN_VOICE_ENCODER_MODEL = Path(__file__).parent / 'data' / 'backchannel_over_own_voice_encoder.joblib'
OVER_OWN_VOICE_FEATURES = 'barge_in_vector/1'
ENCODER_FEATURES = 'whisper_encoder/1'


@dataclass
class OverOwnVoiceModel:
    """Per-window classifiers (``predict_proba``, class 1 = backchannel) and the features they read."""
    features: str                        # OVER_OWN_VOICE_FEATURES or ENCODER_FEATURES
    models: dict                         # window s -> classifier
    encoder: object | None = None        # an ``onset_encoder.OnsetEncoder`` for ENCODER_FEATURES

    @property
    def windows(self) -> list[float]:
        return sorted(self.models)

    def vector(self, audio: np.ndarray, sample_rate: int, window_s: float) -> np.ndarray:
        if self.features == ENCODER_FEATURES:
            return self.encoder.vector(audio)
        return barge_in_vector(audio, sample_rate, window_s)

    def probability(self, audio: np.ndarray, sample_rate: int, window_s: float) -> float | None:
        """Backchannel probability of the window, or None without a classifier for it."""
        model = self.models.get(round(window_s, 2))
        if model is None:
            return None
        return float(model.predict_proba(self.vector(audio, sample_rate, window_s)[None, :])[0, 1])


@lru_cache(maxsize=4)
def over_own_voice_models(path: str = str(OVER_OWN_VOICE_MODEL)) -> OverOwnVoiceModel | None:
    """The model in a bundle file; None (the logistic model then) if it is missing, was made for other
    features or needs a Whisper encoder that cannot be loaded here."""
    import joblib
    try:
        bundle = joblib.load(path)
    except Exception as exc:     # unpickling a damaged file can raise almost anything
        log.warning('over-own-voice backchannel model %s not loaded (%s: %s)', path, type(exc).__name__, exc)
        return None
    features = bundle.get('features') if isinstance(bundle, dict) else None
    if features not in (OVER_OWN_VOICE_FEATURES, ENCODER_FEATURES):
        log.warning('over-own-voice backchannel model %s has features %r, not %r or %r', path, features,
                    OVER_OWN_VOICE_FEATURES, ENCODER_FEATURES)
        return None
    encoder = None
    if features == ENCODER_FEATURES:
        try:
            encoder = load_onset_encoder(bundle.get('encoder', 'tiny.en'))
        except Exception as exc:    # faster-whisper missing, model not installed: the caller falls back
            log.warning('over-own-voice backchannel model %s needs the Whisper encoder %r, which did not load '
                        '(%s: %s)', path, bundle.get('encoder'), type(exc).__name__, exc)
            return None
    return OverOwnVoiceModel(features, dict(bundle['models']), encoder)


@lru_cache(maxsize=2)
def load_onset_encoder(model: str):
    from voice_robot.hearing.onset_encoder import OnsetEncoder
    return OnsetEncoder(model)


@dataclass
class OverOwnVoiceEnsemble:
    """Over-own-voice models read together: the mean of their log-odds. The linear model on encoder
    states and the trees on hand-made features err on different clips; together they stop more
    interruptions at the same share of backchannels (docs/floor-control.md)."""
    members: tuple

    @property
    def features(self) -> str:
        return '+'.join(m.features for m in self.members)

    @property
    def windows(self) -> list[float]:
        return sorted(set.intersection(*(set(m.models) for m in self.members)))

    def probability(self, audio: np.ndarray, sample_rate: int, window_s: float) -> float | None:
        ps = [m.probability(audio, sample_rate, window_s) for m in self.members]
        if any(p is None for p in ps):
            return None
        z = [math.log(p / (1.0 - p)) for p in np.clip(ps, 1e-6, 1.0 - 1e-6)]
        return _sigmoid(float(np.mean(z)))


def default_over_own_voice_model() -> OverOwnVoiceModel | OverOwnVoiceEnsemble | None:
    """Both bundled models together where the Whisper model is installed, else the bundled trees."""
    trees = over_own_voice_models(str(OVER_OWN_VOICE_MODEL))
    encoder = over_own_voice_models(str(OVER_OWN_VOICE_ENCODER_MODEL))
    if trees is not None and encoder is not None:
        return OverOwnVoiceEnsemble((encoder, trees))
    log.warning('backchannels over the robot\'s voice: only the bundled %s', 'trees' if trees else 'encoder model')
    return trees or encoder


def backchannel_probability_early(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
                                  window_s: float = CLEAN_EARLY_WINDOW_S,
                                  models: OverOwnVoiceModel | OverOwnVoiceEnsemble | None = None) -> float:
    """From the first ``window_s`` of the utterance's audio only (no words yet). ``models``: an
    over-own-voice model (``over_own_voice_models``), for speech said while the robot talks and so
    heard through its echo residue and ducking; without one for this window, the logistic model."""
    try:
        p = models.probability(audio, sample_rate, window_s) if models is not None else None
        if p is None:
            return backchannel_probability_early_from_vector(onset_vector(audio, sample_rate))
    except ValueError:
        return 0.5
    return float(np.clip(p, EARLY_MIN, 1.0 - EARLY_MIN))


def backchannel_probability_early_from_vector(vector: np.ndarray) -> float:
    x = (np.asarray(vector, float) - BACKCHANNEL_FEATURE_MEAN) / BACKCHANNEL_FEATURE_STD
    p = _sigmoid(BACKCHANNEL_EARLY_TEMPER * float(BACKCHANNEL_EARLY_WEIGHTS @ x + BACKCHANNEL_EARLY_BIAS))
    return float(np.clip(p, EARLY_MIN, 1.0 - EARLY_MIN))


BACKCHANNEL_PHRASES = ('Mm-hmm.', 'Mhm.', 'Uh-huh.', 'Yeah.', 'Right.', 'Okay.', 'Mm.', 'Hmm.', 'Yes.', 'I see.',
                       'Sure.', 'Yeah, yeah.', 'Uh huh.', 'Oh, okay.', 'Mm, right.', 'Alright.', 'Yep.', 'Got it.')
INTERRUPTION_PHRASES = ('Sorry, stop.', 'Wait.', 'Excuse me.', 'No, that is wrong.', 'Stop, please.', 'Hold on.',
                        'Sorry, what time is it?', 'Wait a second.', 'Excuse me, where is the door?', 'No, no, no.',
                        'Hang on.', 'Actually, I have a question.', 'Sorry to interrupt.', 'Stop talking.',
                        'Can you repeat that?', 'Please stop.', 'Hey, listen.', 'Tell me something else.',
                        'Quiet please.', 'Sorry, sorry.', 'Just a moment.', 'Could you wait?')
TRAINING_VOICES = ('espeak:en+m3', 'espeak:en+f3', 'espeak:en-us+m5', 'espeak:en-us+f4', 'espeak:en+m1',
                   'flite:awb', 'flite:rms', 'flite:slt', 'flite:kal', 'piper:joe')
# The over-own-voice models are fitted on more voices: left out one at a time, a voice was the weakest
# part of their accuracy (the bundle's ``voice_left_out_accuracy``).
OVER_OWN_VOICE_TRAINING_VOICES = TRAINING_VOICES + (
    'espeak:en+Alicia', 'espeak:en+Andy', 'espeak:en+david', 'espeak:en+linda', 'espeak:en-us+m2', 'espeak:en-gb+f2',
    'espeak:en+m7', 'espeak:en-us+f5', 'espeak:en+klatt', 'espeak:en+john', 'espeak:en+Annie', 'espeak:en+max',
    'espeak:en-us+m4', 'espeak:en+f1')


def reverberate(audio: np.ndarray, rt60: float, seed: int, snr_db: float = 20.0,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The clip as one microphone hears it in a small room (pyroomacoustics), cut at the direct sound."""
    import pyroomacoustics as pra
    rng = np.random.default_rng(seed)
    room_dim = [5.0, 4.0, 3.0]
    absorption, order = pra.inverse_sabine(rt60, room_dim)
    room = pra.ShoeBox(room_dim, fs=sample_rate, materials=pra.Material(absorption), max_order=min(order, 12))
    room.add_source([1 + rng.random() * 3, 1 + rng.random() * 2, 1.4], signal=audio)
    room.add_microphone([2.5, 2.0, 0.9])
    room.simulate()
    y = room.mic_array.signals[0]
    onset = int(np.argmax(np.abs(y) > np.abs(y).max() * 0.02))
    y = y[max(0, onset - int(0.03 * sample_rate)):]
    y = y + rng.standard_normal(len(y)) * np.sqrt(np.mean(y ** 2)) * 10 ** (-snr_db / 20)
    return y.astype(np.float32)


def backchannel_dataset(voices=TRAINING_VOICES, back=BACKCHANNEL_PHRASES, inter=INTERRUPTION_PHRASES,
                        reverberant: bool = True):
    """(features (n, 40), labels (1 = backchannel), voice per row) from TTS renders."""
    from voice_robot.acting.tts import synthesize
    xs, ys, vs = [], [], []
    k = 0
    for voice in voices:
        for label, phrases in ((1, back), (0, inter)):
            for phrase in phrases:
                clean = synthesize(voice, phrase)
                versions = [clean] + ([reverberate(clean, (0.3, 0.5, 0.8)[k % 3], k)] if reverberant else [])
                k += 1
                for audio in versions:
                    xs.append(onset_vector(audio))
                    ys.append(label)
                    vs.append(voice)
    return np.array(xs), np.array(ys), np.array(vs)


def fit_backchannel_early(x: np.ndarray, y: np.ndarray, voices: np.ndarray, l2: float = 0.05) -> dict:
    """Fit the early model; report leave-one-voice-out accuracy (what to expect on a new voice)."""
    accs = []
    for v in sorted(set(voices.tolist())):
        train = voices != v
        w, b, mean, std = fit_logistic(x[train], y[train], l2=l2, iterations=3000)
        p = 1.0 / (1.0 + np.exp(-(((x[~train] - mean) / std) @ w + b)))
        accs.append(float(np.mean((p > 0.5) == y[~train])))
    w, b, mean, std = fit_logistic(x, y, l2=l2, iterations=3000)
    return {'weights': w, 'bias': b, 'mean': mean, 'std': std, 'leave_one_voice_out_accuracy': float(np.mean(accs)),
            'per_voice_accuracy': dict(zip(sorted(set(voices.tolist())), accs))}


def backchannel_probability(text: str, duration_s: float, early: float | None = None,
                            audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE,
                            ongoing: bool = False) -> float:
    """Refined with the transcript lexicon and duration (partials with text, and the final).
    ``ongoing``: a partial, whose duration so far is only a lower bound: being short says nothing yet."""
    if early is None:
        early = backchannel_probability_early(audio, sample_rate) if audio is not None else 0.5
    z = math.log(max(early, 1e-4) / max(1 - early, 1e-4))
    back, inter = lexicon_score(text)
    words = _norm_text(text).split()
    z += 3.0 * back - 3.5 * inter
    if words:
        # A backchannel is one or two words; a sentence is not a backchannel however it starts.
        z -= 0.6 * max(0, len(words) - 2)
    if duration_s > 1.2:
        z -= 1.5 * (duration_s - 1.2)
    elif duration_s < 0.8 and not ongoing:
        z += 0.5
    return _sigmoid(z)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, iterations: int = 2000,
                 lr: float = 0.2) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Standardise x, fit logistic regression by gradient descent. Returns (weights, bias, mean, std)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = p - y
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * float(np.mean(g))
    return w, b, mean, std
