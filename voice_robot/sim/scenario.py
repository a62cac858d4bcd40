"""The multi-party scenario format ``voice_robot/scenario@1`` (docs/scenario-format.md).

Parsing validates everything a renderer needs before anything is rendered: unknown keys, voices,
positions outside the room, references between events, clips that are not audio. Every error names
the file, the key and what was expected.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from voice_robot.config.base import Section, validate
from voice_robot.config.errors import ConfigError, load_yaml, parse_yaml
from voice_robot.config.robots import ROBOT_NAME, RobotSpec, Vec2, Vec3, check_voice

SCENARIO_FORMAT = 'voice_robot/scenario@1'
MIN_HUMAN_ROBOT_M = 0.3      # closer, the mouth is inside the robot and the render clips
NOISE_KINDS = ('white', 'pink', 'babble')


class DiffuseNoise(Section):
    kind: Literal['white', 'pink', 'babble']
    snr_db: float


class NoiseSource(Section):
    name: str
    position_m: Vec3
    kind: Literal['white', 'pink', 'babble', 'clip']
    clip: Optional[str] = None
    level_db: float = 0.0

    @model_validator(mode='after')
    def _clip(self):
        if self.kind == 'clip' and not self.clip:
            raise ValueError("kind 'clip' needs a 'clip' path to a WAV file")
        return self


class ScenarioRoom(Section):
    size_m: Vec3
    rt60_s: float = Field(0.3, ge=0, le=3.0)
    noise: Optional[DiffuseNoise] = None
    noise_sources: list[NoiseSource] = Field(default_factory=list)

    @field_validator('size_m')
    @classmethod
    def _positive(cls, v):
        if min(v) <= 0:
            raise ValueError('three positive room dimensions [x, y, z] in metres')
        return v


class HumanSpec(Section):
    name: str = Field(pattern=ROBOT_NAME)
    position_m: Vec3
    voice: str
    facing: Union[float, str, None] = None

    _voice = field_validator('voice')(lambda cls, v: check_voice(v))


class ResponderOf(Section):
    responder_of: str


class AfterEvent(Section):
    event: str
    offset_s: float = 0.0


class AfterRobotSpeech(Section):
    robot_speech_of: str
    offset_s: float = 0.0


class AfterRobotSpeechEnd(Section):
    robot_speech_end_of: str
    offset_s: float = 0.0


def _after_kind(v):
    if isinstance(v, dict):
        for key in ('event', 'robot_speech_of', 'robot_speech_end_of'):
            if key in v:
                return key
    return None


After = Annotated[
    Union[Annotated[AfterEvent, Tag('event')], Annotated[AfterRobotSpeech, Tag('robot_speech_of')],
          Annotated[AfterRobotSpeechEnd, Tag('robot_speech_end_of')]],
    Discriminator(_after_kind, custom_error_type='after',
                  custom_error_message='expected one of {event: ID}, {robot_speech_of: ID} or '
                                       '{robot_speech_end_of: ID}, with an optional offset_s'),
]

Addressee = Union[str, list[str], ResponderOf]
GazeTarget = Union[float, str]


class _Timed(Section):
    id: Optional[str] = None
    t: Optional[float] = Field(None, ge=0)
    after: Optional[After] = None

    @model_validator(mode='after')
    def _one_start(self):
        if (self.t is None) == (self.after is None):
            raise ValueError("each event needs exactly one start: 't: seconds' or 'after: {...}'")
        return self


class UtteranceEvent(_Timed):
    speaker: str
    say: Optional[str] = None
    clip: Optional[str] = None
    to: Addressee
    gaze: Optional[GazeTarget] = None
    interrupts: bool = False
    backchannel: bool = False

    @model_validator(mode='after')
    def _text(self):
        if not self.say and not self.clip:
            raise ValueError("an utterance needs 'say' (text) or 'clip' (a WAV recording)")
        return self


class Look(Section):
    who: str
    at: GazeTarget


class GazeEvent(_Timed):
    look: Look


def _event_kind(v):
    if isinstance(v, dict):
        return 'look' if 'look' in v else 'utterance'
    return 'look' if isinstance(v, GazeEvent) else 'utterance'


Event = Annotated[
    Union[Annotated[UtteranceEvent, Tag('utterance')], Annotated[GazeEvent, Tag('look')]],
    Discriminator(_event_kind),
]


class Scenario(Section):
    format: Literal['voice_robot/scenario@1']
    name: str = Field(pattern=r'^[a-z0-9_]+$')
    description: Optional[str] = None
    seed: int = 0
    duration_s: Optional[float] = Field(None, gt=0)
    room: ScenarioRoom
    robots: list[RobotSpec] = Field(min_length=1)
    humans: list[HumanSpec] = Field(min_length=1)
    events: list[Event]
    # Project extension (optional): stage settings for this scenario, same schema as deployments.
    system: Optional[dict] = None

    # Filled by load_scenario: the file, and where relative clip paths resolve.
    _base_dir: Path = Path('.')
    _path: Optional[Path] = None

    @property
    def utterances(self) -> list[UtteranceEvent]:
        return [e for e in self.events if isinstance(e, UtteranceEvent)]

    def robot(self, name: str) -> RobotSpec:
        return next(r for r in self.robots if r.name == name)

    def human(self, name: str) -> HumanSpec:
        return next(h for h in self.humans if h.name == name)

    def event_ids(self) -> list[str]:
        return [e.id for e in self.events if e.id]

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._base_dir / p


def _check_references(sc: Scenario) -> list[tuple[tuple, str]]:
    """Cross-field checks; returns (loc, expectation) pairs."""
    problems: list[tuple[tuple, str]] = []
    robots = [r.name for r in sc.robots]
    humans = [h.name for h in sc.humans]
    names = robots + humans
    seen = set()
    for i, name in enumerate(names):
        if name.lower() in seen:
            where = ('robots', i) if i < len(robots) else ('humans', i - len(robots))
            problems.append((where + ('name',), f'names must be unique across robots and humans: {name!r} repeats'))
        seen.add(name.lower())
    if any(n in ('robots', 'none', 'others') for n in names):
        problems.append((('robots',), "'robots', 'none' and 'others' are reserved and cannot be names"))

    sx, sy, sz = sc.room.size_m

    def inside(loc, p, z_needed=True):
        x, y = p[0], p[1]
        if not (0 < x < sx and 0 < y < sy) or (z_needed and not 0 < p[2] < sz):
            problems.append((loc, f'a position inside the room {sc.room.size_m} (got {list(p)})'))

    for i, r in enumerate(sc.robots):
        inside(('robots', i, 'position_m'), r.position_m, z_needed=False)
        for j, m in enumerate(r.mic_positions_map()):
            if not (0 < m[0] < sx and 0 < m[1] < sy and 0 < m[2] < sz):
                problems.append((('robots', i, 'mic_array'), f'microphone {j} at {m.round(2).tolist()} is outside the room'))
                break
    for i, h in enumerate(sc.humans):
        inside(('humans', i, 'position_m'), h.position_m)
        if isinstance(h.facing, str) and h.facing not in names and h.facing != 'none':
            problems.append((('humans', i, 'facing'), f'a robot or human name, "none" or a yaw in degrees (got {h.facing!r})'))
    for i, n in enumerate(sc.room.noise_sources):
        inside(('room', 'noise_sources', i, 'position_m'), n.position_m)
        if n.name in [o.name for o in sc.room.noise_sources[:i]]:
            problems.append((('room', 'noise_sources', i, 'name'), f'unique noise source names ({n.name!r} repeats)'))
    for i, h in enumerate(sc.humans):
        for r in sc.robots:
            gap = math.dist(h.position_m[:2], r.position_m)
            if gap < MIN_HUMAN_ROBOT_M:
                problems.append((('humans', i, 'position_m'), f'a person at least {MIN_HUMAN_ROBOT_M} m from every '
                                                              f'robot ({gap:.2f} m from {r.name})'))
    if sc.room.rt60_s > 0:
        from voice_robot.sim.acoustics import AcousticsError, room_parameters
        try:
            room_parameters(sc.room.size_m, sc.room.rt60_s)
        except AcousticsError as exc:
            problems.append((('room', 'rt60_s'), f'a reverberation time this room can have ({exc})'))

    ids: dict[str, int] = {}
    for i, e in enumerate(sc.events):
        if e.id is not None:
            if e.id in ids:
                problems.append((('events', i, 'id'), f'unique event ids ({e.id!r} is used twice)'))
            ids[e.id] = i
    utterance_ids = {e.id for e in sc.events if e.id and isinstance(e, UtteranceEvent)}

    def target_ok(t) -> bool:
        return isinstance(t, (int, float)) or t in names or t == 'none'

    for i, e in enumerate(sc.events):
        if e.after is not None:
            ref = getattr(e.after, 'event', None) or getattr(e.after, 'robot_speech_of', None) \
                or getattr(e.after, 'robot_speech_end_of', None)
            key = 'event' if isinstance(e.after, AfterEvent) else (
                'robot_speech_of' if isinstance(e.after, AfterRobotSpeech) else 'robot_speech_end_of')
            if ref not in ids:
                problems.append((('events', i, 'after', key), f'the id of an event in this scenario (no event {ref!r})'))
            elif key != 'event' and ref not in utterance_ids:
                problems.append((('events', i, 'after', key), f'the id of an utterance ({ref!r} is a gaze shift)'))
            elif ref == e.id:
                problems.append((('events', i, 'after', key), 'an event other than itself'))
        if isinstance(e, UtteranceEvent):
            if e.speaker not in humans:
                problems.append((('events', i, 'speaker'), f'a human name ({", ".join(humans)}); got {e.speaker!r}'))
            to = e.to
            if isinstance(to, ResponderOf):
                if to.responder_of not in utterance_ids:
                    problems.append((('events', i, 'to', 'responder_of'), f'the id of an utterance (no utterance {to.responder_of!r})'))
            elif isinstance(to, list):
                bad = [n for n in to if n not in humans]
                if bad or not to:
                    problems.append((('events', i, 'to'), f'a list of human names (unknown: {bad})'))
            elif to not in names and to not in ('robots', 'none'):
                problems.append((('events', i, 'to'), f"a robot name, 'robots', a human name, a list of humans, "
                                                      f"{{responder_of: ID}} or 'none' (got {to!r})"))
            if e.gaze is not None and not target_ok(e.gaze):
                problems.append((('events', i, 'gaze'), f"a robot or human name, 'none' or a yaw in degrees (got {e.gaze!r})"))
            if e.interrupts and e.backchannel:
                problems.append((('events', i), 'an utterance cannot be both interrupts and backchannel'))
        else:
            if e.look.who not in humans:
                problems.append((('events', i, 'look', 'who'), f'a human name (got {e.look.who!r})'))
            if not target_ok(e.look.at):
                problems.append((('events', i, 'look', 'at'), f"a robot or human name, 'none' or a yaw in degrees (got {e.look.at!r})"))
    # Cycles in 'after' references would never start.
    if not problems:
        for i, e in enumerate(sc.events):
            chain, cur = set(), e
            while cur is not None and cur.after is not None:
                ref = getattr(cur.after, 'event', None) or getattr(cur.after, 'robot_speech_of', None) \
                    or getattr(cur.after, 'robot_speech_end_of', None)
                if ref in chain:
                    problems.append((('events', i, 'after'), f'references without a cycle (cycle through {ref!r})'))
                    break
                chain.add(ref)
                cur = sc.events[ids[ref]]
    return problems


def _check_clips(sc: Scenario) -> list[tuple[tuple, str]]:
    import soundfile
    problems = []
    clips = [(('events', i, 'clip'), e.clip) for i, e in enumerate(sc.events)
             if isinstance(e, UtteranceEvent) and e.clip]
    clips += [(('room', 'noise_sources', i, 'clip'), n.clip) for i, n in enumerate(sc.room.noise_sources) if n.clip]
    for loc, clip in clips:
        path = sc.resolve(clip)
        if not path.is_file():
            problems.append((loc, f'an existing audio file (not found: {path})'))
            continue
        try:
            info = soundfile.info(str(path))
            if info.frames <= 0:
                raise ValueError('no samples')
        except Exception as exc:  # soundfile raises its own error types for non-audio data
            problems.append((loc, f'a readable audio file such as WAV ({path.name}: {exc})'))
    return problems


def scenario_from_loaded(loaded, path: Path | None) -> Scenario:
    data = loaded.data
    if not isinstance(data, dict):
        raise ConfigError(path, '<top level>', 'a YAML mapping with format, name, room, robots, humans, events')
    sc = validate(Scenario, data, path, loaded)
    sc._base_dir = path.parent if path is not None else Path('.')
    sc._path = path
    problems = _check_references(sc)
    if not problems:
        problems = _check_clips(sc)
    if problems:
        from voice_robot.config.errors import format_loc
        items = sorted(((loc, msg, loaded.line_of(loc)) for loc, msg in problems),
                       key=lambda it: (it[2] is None, it[2] or 0))
        loc, msg, line = items[0]
        more = [f'{format_loc(lc)}: {m}' + (f' (line {ln})' if ln else '') for lc, m, ln in items[1:]]
        raise ConfigError(path, format_loc(loc), msg, line, more)
    return sc


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return scenario_from_loaded(load_yaml(path), path)


def parse_scenario(text: str, path: str | Path | None = None) -> Scenario:
    return scenario_from_loaded(parse_yaml(text, path), Path(path) if path else None)


def scenario_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories (their *.yaml / *.yml files, sorted) into scenario paths."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix in ('.yaml', '.yml'))
        elif p.exists():
            out.append(p)
        else:
            raise ConfigError(p, '<file>', 'a scenario file or a directory of scenarios (not found)')
    return out
