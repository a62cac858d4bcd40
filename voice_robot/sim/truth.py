"""Ground truth of a simulated scenario run: what the humans did, what the robots said, where everyone was.

The simulator fills a ``GroundTruth`` as the timeline plays (``Simulator.truth``); the evaluator scores
the system against it. Nothing here is ever sent to the system under test. ``to_dict``/``from_dict``
give the JSON form written by the ROS simulator node (format ``voice_robot/truth@1``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

from voice_robot.eval.matching import HeardFrom, attribute_speech, find_responses

TRUTH_FORMAT = 'voice_robot/truth@1'

Target = Union[str, float]


@dataclass
class UtteranceTruth:
    """A human utterance as it was rendered."""
    id: str
    speaker: str
    text: str
    start: float
    end: float
    to: Union[str, list[str]]          # resolved: robot name, 'robots', list of human names, or 'none'
    to_spec: Union[str, list[str], dict]   # as written in the scenario
    responder_of: str = ''             # the utterance id named by {responder_of: ID}
    gaze: Optional[Target] = None      # head target while speaking; None = head left where it was
    interrupts: bool = False
    backchannel: bool = False
    clip: str = ''
    addressee_class: str = ''          # scoring class: a robot name, 'robots', or 'others' (humans, nobody)


@dataclass
class RobotSpeechTruth:
    """One robot speech act as heard in the room (first chunk to end of the last chunk rendered)."""
    robot: str
    speech_id: str
    start: float
    end: float
    kind: str = 'reply'                # reply, filler, hold
    text: str = ''
    in_reply_to: str = ''
    reply_to_start: float = 0.0
    reply_to_end: float = 0.0
    cancelled: bool = False
    attributed_to: Optional[str] = None   # scenario utterance id (voice_robot.eval.matching)


@dataclass
class HeadTargetTruth:
    """A human's head starts turning to ``target`` at ``t`` and arrives at ``arrive``."""
    t: float
    human: str
    target: Target                     # robot or human name, 'none', or yaw in degrees
    yaw: float                         # map, rad
    pitch: float                       # rad, positive up
    arrive: float
    source: str                        # 'facing', 'utterance:<id>', 'look:<id>'


@dataclass
class EventTruth:
    id: str
    kind: str                          # utterance, look
    start: float
    end: float


@dataclass
class FaceTrack:
    robot: str
    face_id: str
    human: str
    first_seen: float
    last_seen: float


@dataclass
class GroundTruth:
    scenario: str
    seed: int
    sample_rate: int
    duration: Optional[float] = None
    human_positions: dict[str, list[float]] = field(default_factory=dict)          # mouth, map
    robot_poses: dict[str, dict] = field(default_factory=dict)                     # position_m, yaw_deg
    azimuths: dict[str, dict[str, float]] = field(default_factory=dict)            # robot -> human -> rad
    elevations: dict[str, dict[str, float]] = field(default_factory=dict)          # robot -> human -> rad
    distances: dict[str, dict[str, float]] = field(default_factory=dict)           # robot -> human -> m
    # Recorded sound played into the room (a radio, a TV: noise sources of kind 'clip'): robot -> name -> rad
    clip_azimuths: dict[str, dict[str, float]] = field(default_factory=dict)
    utterances: list[UtteranceTruth] = field(default_factory=list)
    robot_speech: list[RobotSpeechTruth] = field(default_factory=list)
    head_targets: list[HeadTargetTruth] = field(default_factory=list)
    events: list[EventTruth] = field(default_factory=list)
    face_tracks: list[FaceTrack] = field(default_factory=list)
    speech_level_dbfs: float = 0.0     # mean human speech level at the arrays (the SNR reference)
    stats: dict[str, float] = field(default_factory=dict)
    # What the system said, not truth: where each robot's hearing heard its finals (utterance id ->
    # [robot, azimuth rad]), so a reply is matched to its speaker (voice_robot.eval.matching)
    heard_from: dict[str, list] = field(default_factory=dict)

    def utterance(self, utterance_id: str) -> UtteranceTruth:
        for u in self.utterances:
            if u.id == utterance_id:
                return u
        raise KeyError(f'no utterance {utterance_id!r}')

    def azimuth(self, robot: str, human: str) -> float:
        return self.azimuths[robot][human]

    def speech_of(self, robot: str) -> list[RobotSpeechTruth]:
        return [s for s in self.robot_speech if s.robot == robot]

    def heard(self) -> dict[str, HeardFrom]:
        return {uid: HeardFrom(str(robot), float(azimuth)) for uid, (robot, azimuth) in self.heard_from.items()}

    def responses(self):
        """Per utterance id, the robots that responded (voice_robot.eval.matching.find_responses)."""
        return find_responses(self.utterances, self.robot_speech, heard=self.heard(), bearings=self.azimuths)

    def head_target_at(self, human: str, t: float) -> Optional[HeadTargetTruth]:
        current = None
        for h in self.head_targets:
            if h.human == human and h.t <= t:
                current = h
        return current

    def reattribute(self) -> None:
        heard = self.heard()
        for s in self.robot_speech:
            s.attributed_to = attribute_speech(s, self.utterances, heard, self.azimuths)

    # --- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data['format'] = TRUTH_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: dict) -> 'GroundTruth':
        if data.get('format') != TRUTH_FORMAT:
            raise ValueError(f'not a {TRUTH_FORMAT} document (format: {data.get("format")!r})')
        data = dict(data)
        data.pop('format')
        lists = {'utterances': UtteranceTruth, 'robot_speech': RobotSpeechTruth, 'head_targets': HeadTargetTruth,
                 'events': EventTruth, 'face_tracks': FaceTrack}
        for key, typ in lists.items():
            data[key] = [typ(**item) for item in data.get(key, [])]
        return cls(**data)

    def write_json(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + '.tmp')
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)

    @classmethod
    def read_json(cls, path: str | Path) -> 'GroundTruth':
        return cls.from_dict(json.loads(Path(path).read_text()))
