"""Plain-Python message types that flow between the pipeline stages.

These mirror the ROS messages in ``voice_robot_interfaces`` one to one (``voice_robot.nodes.convert``
maps between them) so that every algorithm works on numpy arrays and dataclasses and can be tested
and evaluated without rclpy. Times are seconds on the system clock (ROS time, or simulated time when
``use_sim_time`` is set). Angles are radians in the robot base frame (REP-103: x forward, y left,
z up, azimuth counter-clockwise from +x) unless a name says otherwise; positions are metres in
``map`` (REP-105).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

# Addressee classes beside the robot names.
GROUP = 'robots'
OTHERS = 'others'


# --- what the ROS fields carry ------------------------------------------------------------------
# A stage that compares its own value with a peer's must compare what the peer received: the ROS
# messages carry times in whole nanoseconds and scores and probabilities as float32.

def stamp_parts(t: float) -> tuple[int, int]:
    """(sec, nanosec) of a builtin_interfaces/Time for ``t`` (NaN, inf and negative times: 0)."""
    if not math.isfinite(t) or t < 0:
        return 0, 0
    # Round the whole time to nanoseconds first: rounding only the fraction turns 4.9999999999 into
    # (4 s, 1e9 ns), and dropping the overflow would send it a whole second early.
    sec, nanosec = divmod(int(round(t * 1e9)), 1_000_000_000)
    return sec, nanosec


def as_stamped(t: float) -> float:
    """``t`` as a peer reads it back from a ROS time."""
    sec, nanosec = stamp_parts(t)
    return sec + nanosec * 1e-9


def as_float32(x: float) -> float:
    """``x`` as a peer reads it back from a float32 field."""
    return float(np.float32(x))


@dataclass
class AudioChunk:
    """A block of multichannel audio, float32 in [-1, 1], shape (samples, channels)."""
    stamp: float                 # time of the first sample
    sample_rate: int
    samples: np.ndarray
    source: str = ''             # robot (for arrays) or stream name
    sequence: int = 0

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / float(self.sample_rate)

    @property
    def end(self) -> float:
        return self.stamp + self.duration


@dataclass
class ImageFrame:
    """A camera image, uint8 (height, width, 3) BGR or (height, width) mono."""
    stamp: float
    robot: str
    image: np.ndarray
    encoding: str = 'bgr8'


@dataclass
class SoundSource:
    track_id: int
    azimuth: float               # array frame, rad
    azimuth_std: float = 0.0
    elevation: float = 0.0
    energy_db: float = -120.0
    speech_probability: float = 0.0
    robot_name: str = ''         # set when attributed to a robot's speech: never a person


@dataclass
class SoundSources:
    stamp: float
    robot: str
    sources: list[SoundSource] = field(default_factory=list)


@dataclass
class Utterance:
    utterance_id: str
    robot: str
    start: float
    end: float
    voice_id: str = ''
    person_id: str = ''
    azimuth: float = 0.0
    azimuth_std: float = 0.0
    transcript: str = ''
    is_final: bool = False
    confidence: float = 0.0
    end_of_turn_probability: float = 0.0
    backchannel_probability: float = 0.0
    stamp: float = 0.0           # publication time

    @property
    def withdrawn(self) -> bool:
        """Hearing takes back a final it cannot stand by (too short, or a robot's voice after all): a final
        with no words, no voice and no confidence."""
        return self.is_final and not self.transcript.strip() and not self.voice_id and self.confidence == 0.0


@dataclass
class VoiceIdentity:
    voice_id: str
    origin_robot: str
    embedding: np.ndarray
    observations: int = 1
    alias_of: str = ''
    stamp: float = 0.0


@dataclass
class FaceObservation:
    face_id: str
    bearing: float               # base frame azimuth of the face, rad
    distance: float              # m
    elevation: float = 0.0
    head_yaw: float = 0.0        # direction the head faces, base-frame azimuth, rad
    head_pitch: float = 0.0
    gaze_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)   # unit vector, base frame
    mouth_open: float = 0.0
    confidence: float = 1.0
    looked_at: str = ''          # robot name, "person:<id>", "none", or "" (unknown)
    looked_at_probability: float = 0.0


@dataclass
class FaceFrame:
    stamp: float
    robot: str
    faces: list[FaceObservation] = field(default_factory=list)


@dataclass
class Person:
    person_id: str
    position: tuple[float, float, float]   # map
    position_std: float = 1.0
    location_confidence: float = 0.0
    voice_id: str = ''
    voice_confidence: float = 0.0
    face_ids: list[str] = field(default_factory=list)   # "<robot>/<face_id>"
    face_confidence: float = 0.0
    looked_at: str = ''
    looked_at_probability: float = 0.0
    is_speaking: bool = False


@dataclass
class Persons:
    stamp: float
    robot: str
    persons: list[Person] = field(default_factory=list)


@dataclass
class CueEvidence:
    cue: str
    candidate: str
    value: float
    contribution: float


@dataclass
class AddresseeEstimate:
    utterance_id: str
    robot: str                   # estimating robot, '' when fused
    candidates: list[str]
    probabilities: list[float]
    decision: str
    utterance_start: float = 0.0
    utterance_end: float = 0.0
    voice_id: str = ''
    transcript: str = ''
    evidence: list[CueEvidence] = field(default_factory=list)
    fused: bool = False
    stamp: float = 0.0

    def probability(self, candidate: str) -> float:
        try:
            return self.probabilities[self.candidates.index(candidate)]
        except ValueError:
            return 0.0


class FloorKind(IntEnum):
    CLAIM = 1
    GRANT = 2
    RENEW = 3
    RELEASE = 4


@dataclass
class FloorEvent:
    kind: FloorKind
    robot: str
    utterance_id: str = ''
    utterance_start: float = 0.0
    utterance_end: float = 0.0
    score: float = 0.0
    lease_until: float = 0.0
    sequence: int = 0
    stamp: float = 0.0


class SpeechAction(IntEnum):
    SAY = 1
    APPEND = 2
    CANCEL = 3
    DUCK = 4
    UNDUCK = 5


class SpeechKind(IntEnum):
    REPLY = 0
    FILLER = 1
    HOLD = 2


@dataclass
class SpeechCommand:
    action: SpeechAction
    speech_id: str = ''
    text: str = ''
    kind: SpeechKind = SpeechKind.REPLY
    final: bool = True
    in_reply_to: str = ''
    reply_to_start: float = 0.0
    reply_to_end: float = 0.0
    voice: str = ''
    stamp: float = 0.0


@dataclass
class SpeechState:
    robot: str
    speaking: bool
    speech_id: str = ''
    kind: SpeechKind = SpeechKind.REPLY
    text: str = ''
    progress: float = 0.0
    started: float = 0.0
    in_reply_to: str = ''
    reply_to_start: float = 0.0
    reply_to_end: float = 0.0
    ducked: bool = False
    cancelled: bool = False
    stamp: float = 0.0


class MotionAction(IntEnum):
    LOOK_AT = 1
    GESTURE = 2


@dataclass
class MotionCommand:
    robot: str
    action: MotionAction
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)   # map
    gesture: str = ''
    duration_s: float = 0.0
    amplitude: float = 0.0
    stamp: float = 0.0


@dataclass
class DialogueTurn:
    speaker: str                 # robot name or voice/person id
    addressee: str               # robot name, "robots", person id, or "others"
    text: str
    start: float
    end: float
    utterance_id: str = ''
    stamp: float = 0.0
