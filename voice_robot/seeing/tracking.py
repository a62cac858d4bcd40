"""Stable face ids across frames: boxes are matched to tracks by overlap (IoU) or, for fast moves, by
centre distance relative to face size; a track unseen for ``lost_after_s`` ends and its face gets a
new id when it comes back (REP-155 style ids: the id names a continuous observation, not a person).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from voice_robot.seeing.detection import FaceBox, iou


@dataclass
class FaceTrack:
    face_id: str
    box: FaceBox
    first_seen: float
    last_seen: float
    hits: int = 1


class FaceIdTracker:
    def __init__(self, match_iou: float = 0.3, lost_after_s: float = 1.0, max_tracks: int = 64,
                 prefix: str = 'face_'):
        self.match_iou = match_iou
        self.lost_after_s = lost_after_s
        self.max_tracks = max_tracks
        self.prefix = prefix
        self.tracks: list[FaceTrack] = []
        self._next_id = 1

    def expire(self, t: float) -> None:
        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= self.lost_after_s]

    def _affinity(self, track: FaceTrack, box: FaceBox) -> float:
        """0 (unrelated) .. 1 (same box). Overlap, or for non-overlapping moves a centre-distance score."""
        overlap = iou(track.box, box)
        if overlap >= self.match_iou:
            return overlap
        size = max(1.0, (track.box.size + box.size) / 2)
        ratio = box.size / max(1.0, track.box.size)
        if not 0.6 <= ratio <= 1.67:
            return 0.0
        (ax, ay), (bx, by) = track.box.centre, box.centre
        dist = math.hypot(ax - bx, ay - by) / size
        if dist > 0.6:
            return 0.0
        return self.match_iou * (1.0 - dist / 0.6) * 0.99   # always below a true overlap match

    def update(self, boxes: list[FaceBox], t: float, hints: list[str | None] | None = None) -> list[str]:
        """Face ids for ``boxes`` seen at time ``t`` (one per box, distinct).

        ``hints`` name the track a box was followed from (its crop came from that track); a hinted box
        keeps that id unless the track is gone.
        """
        self.expire(t)
        hints = hints or [None] * len(boxes)
        ids: list[str | None] = [None] * len(boxes)
        by_id = {tr.face_id: tr for tr in self.tracks}
        taken: set[str] = set()
        for i, hint in enumerate(hints):
            if hint is not None and hint in by_id and hint not in taken:
                ids[i] = hint
                taken.add(hint)
        free_boxes = [i for i in range(len(boxes)) if ids[i] is None]
        free_tracks = [tr for tr in self.tracks if tr.face_id not in taken]
        if free_boxes and free_tracks:
            score = np.array([[self._affinity(tr, boxes[i]) for tr in free_tracks] for i in free_boxes])
            rows, cols = linear_sum_assignment(-score)
            for r, c in zip(rows, cols):
                if score[r, c] > 0:
                    ids[free_boxes[r]] = free_tracks[c].face_id
        for i, box in enumerate(boxes):
            face_id = ids[i]
            if face_id is None:
                face_id = f'{self.prefix}{self._next_id}'
                self._next_id += 1
                ids[i] = face_id
                self.tracks.append(FaceTrack(face_id, box, t, t))
            else:
                tr = next(x for x in self.tracks if x.face_id == face_id)
                tr.box, tr.last_seen, tr.hits = box, t, tr.hits + 1
        if len(self.tracks) > self.max_tracks:
            self.tracks.sort(key=lambda tr: tr.last_seen)
            self.tracks = self.tracks[-self.max_tracks:]
        return [str(x) for x in ids]
