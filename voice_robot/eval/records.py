"""What the evaluator scores: the scenario's truth and what the system did, as plain records.

The runner fills them from the simulator's ground truth and from the system's published messages
(hearing/utterances, fused /conversation/addressee, faces/attention, the robot speech the simulator
rendered).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

ROBOTS = 'robots'
OTHERS = 'others'


@dataclass
class TruthUtterance:
    id: str
    speaker: str
    start: float
    end: float
    text: str = ''
    to: object = None              # robot name | 'robots' | 'none' | [humans] | {'responder_of': id}
    backchannel: bool = False
    interrupts: bool = False
    azimuth_by_robot: dict[str, float] = field(default_factory=dict)   # true mouth azimuth, base frame, rad

    def to_dict(self):
        return asdict(self)


@dataclass
class RobotSpeech:
    """One speech act a robot actually played in the room."""
    robot: str
    speech_id: str
    start: float
    end: float
    kind: str = 'reply'            # reply | filler | hold
    text: str = ''
    in_reply_to: str = ''          # the system's own utterance id
    reply_to_start: float = 0.0    # that utterance's time span
    reply_to_end: float = 0.0
    cancelled: bool = False


@dataclass
class SystemUtterance:
    """A final utterance one robot's hearing published."""
    robot: str
    utterance_id: str
    start: float
    end: float
    voice_id: str = ''
    azimuth: float = 0.0
    transcript: str = ''


@dataclass
class SystemDecision:
    """A fused addressee estimate (one per human turn; robots that agree publish the same)."""
    robot: str                     # publishing robot
    utterance_id: str
    start: float
    end: float
    decision: str
    candidates: list[str] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)
    transcript: str = ''
    voice_id: str = ''


@dataclass
class GazeSample:
    """What the system said one face looks at (faces/attention): a robot name, 'person:<id>' or 'none'."""
    robot: str
    t: float
    face_id: str
    looked_at: str


@dataclass
class HeadTarget:
    """Truth: ``human`` turns their head at ``t`` to ``target`` (robot or human name, 'none', or a yaw
    in degrees), arriving at ``arrive``."""
    human: str
    t: float
    arrive: float
    target: str


@dataclass
class ScenarioRecord:
    """Everything needed to score one scenario run."""
    name: str
    robots: list[str]
    humans: list[str]
    duration_s: float
    utterances: list[TruthUtterance]
    speech: list[RobotSpeech]
    system_utterances: list[SystemUtterance]
    decisions: list[SystemDecision]
    wall_time_s: float = 0.0
    render_wall_time_s: float = 0.0
    extra: dict = field(default_factory=dict)      # counters from the stages (diagnostics)
    clip_azimuths: dict[str, dict[str, float]] = field(default_factory=dict)   # robot -> played clip -> rad
    gaze: list[GazeSample] = field(default_factory=list)
    face_humans: dict[str, str] = field(default_factory=dict)     # truth: '<robot>/<face id>' -> human
    head_targets: list[HeadTarget] = field(default_factory=list)
