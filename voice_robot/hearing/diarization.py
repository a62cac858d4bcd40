"""Online voice identities: one stable voice id per person for the session, agreed across robots.

``VoiceRegistry`` clusters utterance embeddings online: an embedding joins the most similar voice
when the cosine similarity reaches ``same_threshold`` (its centroid is the normalised sum of member
embeddings, so it settles as evidence accumulates), otherwise it starts a new voice
``voice_<robot>_<n>``. Voices published by other robots (``/voices/identities``) are candidates too, so
a person a peer already knows keeps the peer's id here.

Agreement rule (deterministic on every robot): two ids whose centroids reach ``merge_threshold`` are
the same person and merge into the lexicographically smaller id; the larger one gets ``alias_of``
set and is published again so every robot (and the person manager) can resolve it. A robot only
publishes voices it originated (and alias declarations of its own ids).

``RobotVoices`` holds the enrolled voices of the robots (their configured TTS voices), used to
recognise robot speech that leaks past echo cancellation and direction gating.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from voice_robot.messages import VoiceIdentity

HINT_MARGIN = 0.1        # a hinted voice (same track, same direction) may match this much below threshold
ELSEWHERE_MARGIN = 0.1   # a voice heard elsewhere just now needs this much more than threshold to match
VOICE_ID = re.compile(r'^voice_[A-Za-z][A-Za-z0-9_]*_\d+$')


@dataclass
class Voice:
    voice_id: str
    origin_robot: str
    total: np.ndarray              # sum of member embeddings (unnormalised)
    count: int
    alias_of: str = ''
    updated: float = 0.0
    dirty: bool = True             # changed since last published

    @property
    def centroid(self) -> np.ndarray:
        n = float(np.linalg.norm(self.total))
        return self.total / n if n > 0 else self.total


def _unit(e: np.ndarray) -> np.ndarray:
    e = np.asarray(e, np.float32).reshape(-1)
    n = float(np.linalg.norm(e))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError('embedding must be a finite non-zero vector')
    return e / n


class VoiceRegistry:
    def __init__(self, robot: str, same_threshold: float = 0.78, merge_threshold: float = 0.86,
                 max_voices: int = 200):
        self.robot = robot
        self.same_threshold = same_threshold
        self.merge_threshold = merge_threshold
        self.max_voices = max_voices
        self.voices: dict[str, Voice] = {}
        self._next = 1
        self.merges = 0

    # --- lookups --------------------------------------------------------------------------------
    def canonical(self, voice_id: str) -> str:
        seen = set()
        while voice_id in self.voices and self.voices[voice_id].alias_of and voice_id not in seen:
            seen.add(voice_id)
            voice_id = self.voices[voice_id].alias_of
        return voice_id

    def active(self) -> list[Voice]:
        return [v for v in self.voices.values() if not v.alias_of]

    def best_match(self, embedding: np.ndarray, exclude=()) -> tuple[str, float]:
        """The canonical id whose centroids (its own and its aliases': other robots' views of the same
        person) are most similar to the embedding; canonical ids in ``exclude`` are not candidates."""
        e = _unit(embedding)
        best, score = '', -1.0
        for v in self.voices.values():
            s = float(v.centroid @ e)
            vid = self.canonical(v.voice_id)
            if vid in exclude:
                continue
            if s > score or (s == score and vid < best):
                best, score = vid, s
        return best, score

    def similarity(self, voice_id: str, embedding: np.ndarray) -> float:
        """Best similarity of an embedding to a voice or any of its aliases."""
        e = _unit(embedding)
        target = self.canonical(voice_id)
        return max((float(v.centroid @ e) for v in self.voices.values() if self.canonical(v.voice_id) == target),
                   default=-1.0)

    # --- local evidence -------------------------------------------------------------------------
    def assign(self, embedding: np.ndarray, now: float = 0.0, hint: str = '', weight: float = 1.0,
               learn: bool = True, elsewhere=()) -> tuple[str, float]:
        """The voice id of an embedding (creating one if nobody matches) and its similarity.

        ``hint`` is the id the same track had before: it wins a near tie, which keeps one id per talker
        through short, noisy segments. ``learn=False`` (overlapped speech) matches without updating.
        ``elsewhere``: ids just heard from another direction; two people with alike voices sit apart,
        so such an id needs ELSEWHERE_MARGIN more similarity.
        """
        e = _unit(embedding)
        best, score = self.best_match(e)
        elsewhere = {self.canonical(v) for v in elsewhere}
        if best in elsewhere and score < self.same_threshold + ELSEWHERE_MARGIN:
            best, score = self.best_match(e, exclude=elsewhere)
        hint = self.canonical(hint) if hint else ''
        threshold = self.same_threshold
        if hint in self.voices and not self.voices[hint].alias_of:
            hint_score = self.similarity(hint, e)
            if hint_score >= self.same_threshold - HINT_MARGIN and hint_score >= score - 0.05:
                best, score, threshold = hint, hint_score, self.same_threshold - HINT_MARGIN
        if best and score >= threshold:
            if learn:
                v = self.voices[best]
                v.total = v.total + weight * e
                v.count += 1
                v.updated = now
                v.dirty = v.dirty or v.origin_robot == self.robot
                self._merge_similar(best, now)
            return self.canonical(best), score
        if not learn:
            return '', score            # overlapped speech is not evidence enough for a new voice
        if len(self.voices) >= self.max_voices:
            # Bounded memory: the least used local voice makes room.
            victim = min((v for v in self.voices.values() if v.origin_robot == self.robot),
                         key=lambda v: (v.count, v.updated), default=None)
            if victim is not None:
                del self.voices[victim.voice_id]
        voice_id = f'voice_{self.robot}_{self._next}'
        self._next += 1
        self.voices[voice_id] = Voice(voice_id, self.robot, weight * e, 1, updated=now)
        return voice_id, 1.0

    def _merge_similar(self, voice_id: str, now: float) -> None:
        v = self.voices.get(voice_id)
        if v is None or v.alias_of:
            return
        for other in list(self.active()):
            if other.voice_id == voice_id:
                continue
            if float(other.centroid @ v.centroid) >= self.merge_threshold:
                self._merge(v.voice_id, other.voice_id, now)
                return

    def _merge(self, a: str, b: str, now: float) -> str:
        keep, drop = sorted([a, b])
        k, d = self.voices[keep], self.voices[drop]
        if d.origin_robot == self.robot or k.origin_robot == self.robot:
            # Only evidence this robot owns is folded in; a peer's centroid stays the peer's.
            if k.origin_robot == self.robot and d.origin_robot == self.robot:
                k.total = k.total + d.total
                k.count += d.count
                k.dirty = True
        d.alias_of = keep
        d.updated = now
        if d.origin_robot == self.robot:
            d.dirty = True
        for v in self.voices.values():
            if v.alias_of == drop:
                v.alias_of = keep
                v.dirty = v.dirty or v.origin_robot == self.robot
        self.merges += 1
        return keep

    # --- other robots ---------------------------------------------------------------------------
    def merge_remote(self, identity: VoiceIdentity, now: float = 0.0) -> bool:
        """Take in a peer's voice; returns True when this changed a local id (merge or alias)."""
        if identity.origin_robot == self.robot:
            return False                     # our own publication coming back
        if not VOICE_ID.match(identity.voice_id or ''):
            raise ValueError(f'voice id {identity.voice_id!r} does not look like voice_<robot>_<n>')
        emb = _unit(identity.embedding)
        existing = self.voices.get(identity.voice_id)
        if existing is not None and existing.origin_robot == self.robot:
            raise ValueError(f'{identity.origin_robot} published {identity.voice_id}, which this robot originated')
        self.voices[identity.voice_id] = Voice(identity.voice_id, identity.origin_robot,
                                               emb * max(1, identity.observations), max(1, identity.observations),
                                               alias_of=identity.alias_of, updated=now, dirty=False)
        if identity.alias_of:
            return False
        changed = False
        for v in list(self.active()):
            if v.voice_id == identity.voice_id or v.alias_of:
                continue
            if float(v.centroid @ emb) >= self.merge_threshold:
                keep = self._merge(v.voice_id, identity.voice_id, now)
                changed = changed or v.origin_robot == self.robot
                if keep != identity.voice_id:
                    break
        return changed

    def to_publish(self, now: float) -> list[VoiceIdentity]:
        """This robot's voices changed since they were last published."""
        out = []
        for v in self.voices.values():
            if v.origin_robot != self.robot or not v.dirty:
                continue
            v.dirty = False
            out.append(VoiceIdentity(voice_id=v.voice_id, origin_robot=self.robot,
                                     embedding=v.centroid.astype(np.float32), observations=v.count,
                                     alias_of=v.alias_of, stamp=now))
        return out


@dataclass
class RobotVoice:
    robot: str
    voice: str
    centroid: np.ndarray


class RobotVoices:
    """The robots' own TTS voices, enrolled by synthesising and embedding a few sentences."""

    SENTENCES = (
        'Hello, I am the robot. How can I help you today?',
        'Let me think about that for a moment, then I will tell you more.',
        'The weather is lovely this afternoon, would you like to go outside?',
    )

    def __init__(self, embedder, sample_rate: int = 16000):
        self.embedder = embedder
        self.sample_rate = sample_rate
        self.voices: dict[str, RobotVoice] = {}
        self.errors: dict[str, str] = {}

    def enrol(self, robot: str, voice: str | None) -> None:
        if not voice:
            return
        from voice_robot.acting.tts import TtsError, synthesize
        try:
            embs = [self.embedder.embed(synthesize(voice, s, self.sample_rate)) for s in self.SENTENCES]
        except (TtsError, ValueError, OSError) as exc:
            self.errors[robot] = f'{voice}: {exc}'
            return
        c = np.sum(embs, axis=0)
        self.voices[robot] = RobotVoice(robot, voice, c / np.linalg.norm(c))

    def similarity(self, embedding: np.ndarray) -> dict[str, float]:
        e = _unit(embedding)
        return {name: float(v.centroid @ e) for name, v in self.voices.items()}
