"""ROS 2 node 'simulator': plays a scenario over ROS topics in scaled real time and records the truth.

It publishes ``/clock`` (the other nodes run with ``use_sim_time``) and, for every robot of the
scenario, ``/<robot>/audio/raw`` (microphone-array frames) and ``/<robot>/faces/observations``; it
listens to ``/<robot>/speech/audio`` (the robot's speech as played) and ``/<robot>/speech/state``
and renders that speech into the room; the finals of ``/<robot>/hearing/utterances`` say where a
reply's utterance was heard (which of two people talking at once it answers). At the end it writes
the ground truth with the robot speech record (``voice_robot/truth@1`` JSON, parameter ``truth_out``)
and exits.

Parameters: ``scenario`` (path; also accepted as the first non-ROS argument), ``rate`` (simulated
seconds per wall second, > 0: the system's nodes run in real time, so "as fast as possible" is not
offered), ``truth_out``, ``frame_ms`` (20), ``start_delay_s`` (wall seconds with the clock at 0
before the scenario starts, for the other nodes to connect), ``wait_for_listeners_s`` (5: before
that delay, wait up to this long until every robot's microphone stream has a subscriber; on a busy
machine a new process is discovered late, and audio published before that is lost).

Only this module knows about ROS; the simulation itself is ``voice_robot.sim.world.Simulator``.
"""
from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from rosgraph_msgs.msg import Clock

import voice_robot_interfaces.msg as vr
from voice_robot.nodes.convert import (BadMessage, audio_from_ros, audio_to_ros, faces_to_ros, speech_state_from_ros,
                                       to_time, utterance_from_ros)
from voice_robot.nodes.shell import AUDIO_QOS, EVENT_QOS, SENSOR_QOS
from voice_robot.pipeline import resolve

CLOCK_QOS = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
INBOX_SIZE = 2000          # robot chunks and states waiting for the next frame


class SimulatorNode(Node):
    def __init__(self, scenario: str | None = None, **kwargs):
        super().__init__('simulator', **kwargs)
        dyn = ParameterDescriptor(dynamic_typing=True)
        self.declare_parameter('scenario', scenario or '', dyn)
        self.declare_parameter('rate', 1.0, dyn)
        self.declare_parameter('truth_out', '', dyn)
        self.declare_parameter('frame_ms', 20.0, dyn)
        self.declare_parameter('start_delay_s', 1.0, dyn)
        self.declare_parameter('wait_for_listeners_s', 5.0, dyn)
        self.rate = float(self.get_parameter('rate').value)
        if not math.isfinite(self.rate) or self.rate <= 0:
            raise ValueError(f'rate must be > 0 (simulated seconds per wall second), got {self.rate}; '
                             'the ROS simulator cannot run "as fast as possible" because the nodes run in real time')
        path = str(self.get_parameter('scenario').value or '')
        if not path:
            raise ValueError("parameter 'scenario' (a scenario YAML file) is required")
        frame_ms = float(self.get_parameter('frame_ms').value)
        self.start_delay_s = max(0.0, float(self.get_parameter('start_delay_s').value))
        self.wait_for_listeners_s = max(0.0, float(self.get_parameter('wait_for_listeners_s').value))
        self.truth_out = str(self.get_parameter('truth_out').value or '')

        from voice_robot.sim.world import Simulator
        self.sim = Simulator(path, frame_s=frame_ms / 1000.0)
        self.stats: Counter[str] = Counter()
        self._inbox: queue.Queue = queue.Queue(maxsize=INBOX_SIZE)
        self.finished = threading.Event()
        self.error: str | None = None

        self._clock_pub = self.create_publisher(Clock, '/clock', CLOCK_QOS)
        self._audio_pubs, self._face_pubs = {}, {}
        for robot in self.sim.scenario.robots:
            ns = robot.ns
            self._audio_pubs[robot.name] = self.create_publisher(vr.AudioFrame, resolve('audio/raw', ns), AUDIO_QOS)
            self._face_pubs[robot.name] = self.create_publisher(vr.FaceObservationArray,
                                                                resolve('faces/observations', ns), SENSOR_QOS)
            self.create_subscription(vr.AudioFrame, resolve('speech/audio', ns),
                                     lambda msg, name=robot.name: self._on_audio(name, msg), EVENT_QOS)
            self.create_subscription(vr.SpeechState, resolve('speech/state', ns),
                                     lambda msg, name=robot.name: self._on_state(name, msg), EVENT_QOS)
            self.create_subscription(vr.Utterance, resolve('hearing/utterances', ns),
                                     lambda msg, name=robot.name: self._on_heard(name, msg), EVENT_QOS)
        self._thread = threading.Thread(target=self._run, name='simulator', daemon=True)

    def start(self) -> None:
        self._thread.start()

    # --- inputs (executor thread) ----------------------------------------------------------------
    def _enqueue(self, item) -> None:
        try:
            self._inbox.put_nowait(item)
        except queue.Full:
            self.stats['dropped: inbox full'] += 1

    def _convert(self, convert, topic: str, msg):
        """The message as plain data, or None after counting it as a bad ``topic`` message."""
        try:
            return convert(msg)
        except BadMessage as exc:
            self._drop(f'bad {topic}', str(exc))
            return None

    def _on_audio(self, robot: str, msg) -> None:
        chunk = self._convert(audio_from_ros, 'speech/audio', msg)
        if chunk is not None:
            self._enqueue(('audio', robot, chunk))

    def _on_state(self, robot: str, msg) -> None:
        state = self._convert(speech_state_from_ros, 'speech/state', msg)
        if state is not None:
            state.robot = robot          # the topic says whose state it is
            self._enqueue(('state', robot, state))

    def _on_heard(self, robot: str, msg) -> None:
        utterance = self._convert(utterance_from_ros, 'hearing/utterances', msg)
        if utterance is not None and utterance.is_final:
            utterance.robot = robot
            self._enqueue(('heard', robot, utterance))

    def _drop(self, reason: str, detail: str) -> None:
        self.stats[f'dropped: {reason}'] += 1
        if self.stats[f'dropped: {reason}'] == 1:
            self.get_logger().warning(f'dropped input ({reason}): {detail}')

    # --- the simulation loop (its own thread, paced by the wall clock) ----------------------------
    def _run(self) -> None:
        try:
            self._publish_clock(0.0)
            self._wait_for_listeners()
            time.sleep(self.start_delay_s)
            wall0 = time.perf_counter()
            while not self.sim.done and rclpy.ok():
                self._apply_inbox()
                out = self.sim.step()
                self._publish_clock(self.sim.t)
                for name, chunk in out.audio.items():
                    self._audio_pubs[name].publish(audio_to_ros(chunk, f'{name}/mic_array'))
                for frame in out.faces:
                    self._face_pubs[frame.robot].publish(faces_to_ros(frame))
                delay = wall0 + self.sim.t / self.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                else:
                    self.stats['frames behind real time'] += 1
            self._apply_inbox()
            self._write_truth()
            self.get_logger().info(f'scenario {self.sim.scenario.name} done at t={self.sim.t:.2f} s')
        except Exception as exc:   # report and exit instead of leaving a silent node behind
            self.error = f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'simulation failed: {self.error}')
        finally:
            self.finished.set()

    def _wait_for_listeners(self) -> None:
        deadline = time.monotonic() + self.wait_for_listeners_s
        while True:
            deaf = [name for name, pub in self._audio_pubs.items() if pub.get_subscription_count() == 0]
            if not deaf or time.monotonic() >= deadline or not rclpy.ok():
                break
            time.sleep(0.05)
        if deaf:
            self.stats['robots without a microphone listener at the start'] += len(deaf)
            self.get_logger().warning(f'starting although nobody listens to the microphones of {", ".join(deaf)} '
                                      f'after {self.wait_for_listeners_s:g} s')

    def _apply_inbox(self) -> None:
        while True:
            try:
                kind, robot, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                if kind == 'audio':
                    self.sim.add_robot_audio(robot, item)
                elif kind == 'heard':
                    self.sim.on_heard(item)
                else:
                    self.sim.on_speech_state(item)
            except ValueError as exc:
                self._drop(f'unusable {kind}', str(exc))

    def _publish_clock(self, t: float) -> None:
        self._clock_pub.publish(Clock(clock=to_time(t)))

    def _write_truth(self) -> None:
        truth = self.sim.truth
        for key, value in self.stats.items():
            truth.stats[f'node: {key}'] = value
        if self.truth_out:
            truth.write_json(Path(self.truth_out))
            self.get_logger().info(f'ground truth written to {self.truth_out}')


def main(args=None) -> int:
    argv = list(sys.argv if args is None else args)
    rclpy.init(args=argv)
    plain = rclpy.utilities.remove_ros_args(argv)
    if args is None or (plain and plain[0] == sys.argv[0]):
        plain = plain[1:]            # the program name
    node = None
    code = 0
    try:
        node = SimulatorNode(plain[0] if plain else None)
        node.start()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not node.finished.is_set():
            executor.spin_once(timeout_sec=0.05)
        if node.error:
            code = 1
    except (ValueError, OSError, RuntimeError) as exc:     # bad parameters or scenario, TTS missing
        print(f'simulator: {exc}', file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
