"""Is what a beam hears really its own talker? Envelope tests against other sounds the stage knows.

Beams of a small array leak: a talker's voice reaches every beam, a wall reflection makes a second
direction, and robots' voices (their played audio is known) come in from wherever the room brings
them. A sound and its leaked copy share their short-time level envelope (the same syllables, a few
milliseconds apart), while two different talkers do not. ``envelope_correlation`` measures that on
log-power envelopes of 16 ms hops, at the best of a few lags (propagation and reverberation delay).

``LevelTrail`` keeps a bounded per-hop level history of one signal (a beam, a robot's reference).
"""
from __future__ import annotations

from collections import deque

import numpy as np

FLOOR_DB = -100.0


class LevelTrail:
    """Per-hop levels (dB) of one signal, by hop stamp; bounded to ``capacity`` hops."""

    def __init__(self, hop_s: float, capacity: int = 128):
        self.hop_s = hop_s
        self.stamps: deque = deque(maxlen=capacity)
        self.levels: deque = deque(maxlen=capacity)

    def push(self, stamp: float, power: float) -> None:
        if self.stamps and stamp <= self.stamps[-1] - 0.5 * self.hop_s:
            self.stamps.clear()           # time went back (a restart): the old trail is meaningless
            self.levels.clear()
        self.stamps.append(stamp)
        self.levels.append(10.0 * np.log10(power + 1e-10) if power > 0 else FLOOR_DB)

    def window(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """(stamps, levels) of the hops starting in [t0, t1)."""
        if not self.stamps:
            return np.zeros(0), np.zeros(0)
        s = np.fromiter(self.stamps, float, len(self.stamps))
        lv = np.fromiter(self.levels, float, len(self.levels))
        sel = (s >= t0 - 1e-6) & (s < t1 - 1e-6)
        return s[sel], lv[sel]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return float(np.sum(x * y)) / den if den > 1e-9 else 0.0


def envelope_correlation(a: np.ndarray, b: np.ndarray, lags=(0,), dynamic_db: float = 40.0,
                         min_hops: int = 8) -> float:
    """Best Pearson correlation of envelope ``a`` with envelope ``b`` shifted by each of ``lags`` hops.

    ``b`` holds ``max(lags)`` more leading values than ``a`` (and ``-min(lags)`` trailing ones when
    lags are negative): with lag d, a[i] is compared with what b held d hops earlier. Both are log
    levels; each is clipped to ``dynamic_db`` below its maximum so that the silences between words (and
    the noise floor) do not dominate. Returns 0 for envelopes that are too short or flat.
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    lags = list(lags)
    lead = max(max(lags), 0)
    n = a.size
    if n < min_hops or b.size < n + lead + max(0, -min(lags)):
        return 0.0
    a = np.maximum(a, a.max() - dynamic_db)
    b = np.maximum(b, b.max() - dynamic_db)
    return max(_pearson(a, b[lead - d:lead - d + n]) for d in lags)
