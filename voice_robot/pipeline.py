"""Stages and how they are wired.

A Stage is one processing step with typed input and output topics (like a Pipecat frame processor,
with ROS topics as the wiring). The same Stage object runs

* inside a ROS 2 node (voice_robot.nodes.shell.StageNode): topics are real ROS topics, ``now`` is the
  node clock (simulated time under ``use_sim_time``);
* inside the in-process bus below, used by ``voice-robot eval`` for speed: each stage is a worker lane,
  messages are delivered in time order, and every handler's measured compute time is charged to the
  simulated clock, so latencies in an eval include the time this machine needs to compute them.

Topic names without a leading slash live in the robot's namespace (``/<robot>/audio/raw``); names
with a slash are shared by all robots (``/conversation/floor``).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from voice_robot import messages as m

log = logging.getLogger(__name__)

# Every topic the system uses and the message type carried on it.
TOPIC_TYPES: dict[str, type] = {
    'audio/raw': m.AudioChunk,                 # microphone array frames
    'speech/audio': m.AudioChunk,              # the robot's own speech as it is played
    'audio/sources': m.SoundSources,
    'hearing/utterances': m.Utterance,
    '/voices/identities': m.VoiceIdentity,
    'camera/image': m.ImageFrame,
    'faces/observations': m.FaceFrame,         # from the face tracker or the simulator
    'faces/attention': m.FaceFrame,            # the same faces with visual focus of attention
    '/persons': m.Persons,
    '/conversation/addressee': m.AddresseeEstimate,
    '/conversation/floor': m.FloorEvent,
    '/conversation/turns': m.DialogueTurn,
    'speech/command': m.SpeechCommand,
    'speech/state': m.SpeechState,
    'motion/request': m.MotionCommand,         # gestures the dialogue asks for (validated by motion)
    'motion/command': m.MotionCommand,         # clamped commands for the robot's controllers
}


def resolve(topic: str, namespace: str) -> str:
    """Absolute topic name: '/ada' + 'audio/raw' -> '/ada/audio/raw'."""
    if topic.startswith('/'):
        return topic
    return namespace.rstrip('/') + '/' + topic


def topic_type(topic: str) -> type:
    """Message type of a relative or resolved topic name."""
    if topic in TOPIC_TYPES:
        return TOPIC_TYPES[topic]
    for name, typ in TOPIC_TYPES.items():
        if not name.startswith('/') and topic.endswith('/' + name):
            return typ
    raise KeyError(f'unknown topic {topic!r}; known: {", ".join(TOPIC_TYPES)}')


Handler = Callable[[Any], None]


class Stage:
    """Base of every pipeline stage.

    Subclasses set ``name``, list ``outputs`` (topics they publish), and return their input handlers
    from ``inputs()`` and periodic callbacks from ``timers()``. Handlers take the message only; the
    current time comes from ``self.now()``. Bad input is counted with ``self.drop(reason)``.
    """

    name = 'stage'
    outputs: tuple[str, ...] = ()

    def __init__(self, robot: str = ''):
        self.robot = robot
        self.stats: Counter[str] = Counter()
        self._publish: Callable[[str, Any], None] | None = None
        self._clock: Callable[[], float] = time.monotonic
        self._offload: Callable[[Callable[[], Any], Callable[[Any], None]], None] | None = None
        self._logger = logging.getLogger(f'voice_robot.{self.name}.{robot}' if robot else f'voice_robot.{self.name}')
        self._last_warn: dict[str, float] = {}

    # --- wiring -----------------------------------------------------------------------------
    def bind(self, publish: Callable[[str, Any], None], clock: Callable[[], float],
             logger: Any | None = None, offload: Callable[[Callable[[], Any], Callable[[Any], None]], None] | None = None
             ) -> None:
        """``offload(job, then)``: run ``job`` on the stage's worker and ``then(result)`` back among its
        handlers; without one, jobs run at once in the handler that submits them."""
        self._publish = publish
        self._clock = clock
        self._offload = offload
        if logger is not None:
            self._logger = logger

    def inputs(self) -> dict[str, Handler]:
        return {}

    def timers(self) -> list[tuple[float, Callable[[], None]]]:
        return []

    def close(self) -> None:
        """Release models, threads and devices."""

    # --- helpers for subclasses -------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    def publish(self, topic: str, msg: Any) -> None:
        if topic not in self.outputs:
            raise KeyError(f'{self.name} publishes on {topic!r} but does not list it in outputs')
        if self._publish is None:
            raise RuntimeError(f'stage {self.name} is not bound to a bus or a node')
        self.stats[f'published {topic}'] += 1
        self._publish(topic, msg)

    @property
    def offloads(self) -> bool:
        """Whether ``offload`` jobs run beside the handlers (so a long job does not hold them)."""
        return self._offload is not None

    def offload(self, job: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run ``job`` off the handler thread (a model's forward pass: it must not touch the stage's state
        or publish), then ``then(result)`` as a handler of this stage. Jobs of one stage run one at a
        time, in the order submitted, and so do their ``then`` calls."""
        if self._offload is None:
            then(job())
        else:
            self._offload(job, then)

    def drop(self, reason: str, detail: str = '') -> None:
        """Count and (rate-limited) log a dropped input: nothing is silently lost."""
        self.stats[f'dropped: {reason}'] += 1
        now = time.monotonic()
        if now - self._last_warn.get(reason, -1e9) > 5.0:
            self._last_warn[reason] = now
            text = f'{self.name}[{self.robot}] dropped input ({reason}){": " + detail if detail else ""}' \
                   f' [{self.stats[f"dropped: {reason}"]} so far]'
            warn = getattr(self._logger, 'warning', None) or getattr(self._logger, 'warn')
            warn(text)

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics; subclasses may add their own."""
        return {k: str(v) for k, v in sorted(self.stats.items())}


# --- the in-process bus ---------------------------------------------------------------------------

@dataclass
class Lane:
    """One worker: a stage runs its handlers one at a time (and its offloaded jobs on a second lane)."""
    stage: Stage
    namespace: str
    busy_until: float = 0.0
    busy_total: float = 0.0      # wall seconds spent in handlers
    calls: int = 0
    worker: 'Lane | None' = None


class InProcessBus:
    """Discrete-event wiring of stages for eval and tests.

    ``charge_compute`` makes each handler occupy its lane for the wall time it took, and stamps what it
    publishes at the moment it was published; with it off every handler is instantaneous.
    """

    def __init__(self, charge_compute: bool = True, compute_scale: float = 1.0):
        self.charge_compute = charge_compute
        self.compute_scale = compute_scale
        self.now = 0.0
        self._queue: list = []
        self._seq = itertools.count()
        self._subs: dict[str, list[tuple[Lane, Handler]]] = {}
        self._taps: dict[str, list[Callable[[str, Any, float], None]]] = {}
        self.lanes: list[Lane] = []
        self._current: tuple[Lane, float, float] | None = None   # lane, sim start, wall start

    # wiring
    def add(self, stage: Stage, namespace: str = '') -> Stage:
        lane = Lane(stage, namespace)
        self.lanes.append(lane)
        stage.bind(lambda topic, msg, lane=lane: self._publish_from(lane, topic, msg), self._clock_for(lane),
                   offload=lambda job, then, lane=lane: self._submit(lane, job, then))
        for topic, handler in stage.inputs().items():
            self._subs.setdefault(resolve(topic, namespace), []).append((lane, handler))
        for period, callback in stage.timers():
            self._push(self.now + period, ('timer', lane, callback, period))
        return stage

    def tap(self, topic: str, callback: Callable[[str, Any, float], None]) -> None:
        """Observe a resolved topic (eval recording, simulator inputs): callback(topic, msg, time)."""
        self._taps.setdefault(topic, []).append(callback)

    def tap_all(self, callback: Callable[[str, Any, float], None]) -> None:
        self._taps.setdefault('*', []).append(callback)

    # publishing
    def publish(self, topic: str, msg: Any, at: float | None = None) -> None:
        """Publish from outside any stage (the simulator, a test)."""
        self._deliver(topic, msg, self.now if at is None else at)

    def _clock_for(self, lane: Lane) -> Callable[[], float]:
        def clock() -> float:
            cur = self._current
            if cur is not None and cur[0] is lane:
                return cur[1] + self._elapsed(cur[2])
            return max(self.now, lane.busy_until)
        return clock

    def _elapsed(self, wall_start: float) -> float:
        if not self.charge_compute:
            return 0.0
        return (time.perf_counter() - wall_start) * self.compute_scale

    def _stamp(self, lane: Lane) -> float:
        """The moment a lane's handler, running now, does something (publishes, submits a job)."""
        cur = self._current
        return cur[1] + self._elapsed(cur[2]) if cur is not None and cur[0] is lane else self.now

    def _publish_from(self, lane: Lane, topic: str, msg: Any) -> None:
        self._deliver(resolve(topic, lane.namespace), msg, self._stamp(lane))

    def _submit(self, lane: Lane, job: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """A stage's offloaded job: it occupies the stage's worker lane (a thread in a ROS node) for its
        compute time, and its result comes back to the stage's own lane when done."""
        if lane.worker is None:
            lane.worker = Lane(lane.stage, lane.namespace)
        self._push(self._stamp(lane), ('job', lane.worker, job, then, lane))

    def _deliver(self, topic: str, msg: Any, t: float) -> None:
        for cb in self._taps.get(topic, ()):
            cb(topic, msg, t)
        for cb in self._taps.get('*', ()):
            cb(topic, msg, t)
        for lane, handler in self._subs.get(topic, ()):
            self._push(t, ('msg', lane, handler, msg))

    def _push(self, t: float, item: tuple) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), item))

    # running
    def run_until(self, t_end: float) -> None:
        """Process every event due up to t_end (inclusive), in time order."""
        while self._queue and self._queue[0][0] <= t_end:
            t, _, item = heapq.heappop(self._queue)
            kind, lane = item[0], item[1]
            if lane.busy_until > t:
                self._push(lane.busy_until, item)   # the worker is still busy: the input waits
                continue
            self.now = max(self.now, t)
            wall = time.perf_counter()
            self._current = (lane, t, wall)
            result = done = None
            try:
                if kind == 'msg':
                    item[2](item[3])
                elif kind == 'job':
                    result, done = item[2](), item[3]
                else:
                    item[2]()
            except Exception:
                lane.stage.stats['handler errors' if kind != 'job' else 'offloaded job errors'] += 1
                log.exception('stage %s[%s] failed handling an input', lane.stage.name, lane.stage.robot)
            finally:
                self._current = None
            spent = time.perf_counter() - wall
            lane.busy_total += spent
            lane.calls += 1
            lane.busy_until = t + (spent * self.compute_scale if self.charge_compute else 0.0)
            if done is not None:
                self._push(lane.busy_until, ('msg', item[4], done, result))
            if kind == 'timer':
                period = item[3]
                self._push(t + period, item)
        self.now = max(self.now, t_end)

    def close(self) -> None:
        for lane in self.lanes:
            try:
                lane.stage.close()
            except Exception:
                log.exception('closing stage %s failed', lane.stage.name)
