"""Runs a scenario through real ROS 2 topics: the simulator node, one process per robot, a monitor.

Used by `voice-robot eval --ros` and `voice-robot demo`. The robot processes get a deployment file
written from the scenario's robots and the stage settings (no humans, no events: no ground truth),
follow /clock, and talk to the simulator and to each other over DDS in their own ROS domain. The
monitor subscribes to what the robots publish (utterances, fused addressee decisions, speech states),
prints a live transcript when asked, and the simulator's truth file is scored like an in-process run.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from voice_robot import messages as m
from voice_robot.config.deployment import SystemConfig, deployment_for_scenario
from voice_robot.eval.adapt import face_humans, head_targets, robot_speech, truth_utterances
from voice_robot.eval.records import ScenarioRecord
from voice_robot.eval.runner import Recorder, RunOptions
from voice_robot.sim.scenario import Scenario

READY_TIMEOUT_S = 180.0


class Monitor:
    """An rclpy node recording (and optionally narrating) what the robots publish."""

    def __init__(self, robots: list, live: bool, log=sys.stdout, trace_path: Path | None = None):
        import rclpy
        from rclpy.parameter import Parameter
        import voice_robot_interfaces.msg as vr
        from voice_robot.nodes.convert import (addressee_from_ros, faces_from_ros, floor_from_ros,
                                               speech_state_from_ros, utterance_from_ros, voice_from_ros)
        self.node = rclpy.create_node('eval_monitor', parameter_overrides=[Parameter('use_sim_time', value=True)])
        # Every message with the simulated time it arrived: where the latency goes, for debugging.
        self.trace = open(trace_path, 'w') if trace_path else None
        self.rec = Recorder()
        self.live, self.log = live, log
        self.robots = robots
        self.last_end: dict[str, float] = {}
        self.speech_start: dict[str, float] = {}
        self.bad_messages = 0
        self.speech_text: dict[str, str] = {}
        for r in robots:
            self._subscribe(vr.Utterance, f'{r.ns}/hearing/utterances', utterance_from_ros, self.on_utterance)
            self._subscribe(vr.SpeechState, f'{r.ns}/speech/state', speech_state_from_ros, self.on_speech)
            self._subscribe(vr.FaceObservationArray, f'{r.ns}/faces/attention', faces_from_ros,
                            lambda frame: self.rec.on_attention(None, frame, None))
        self._subscribe(vr.VoiceIdentity, '/voices/identities', voice_from_ros,
                        lambda v: self.rec.on_voice(None, v, None))
        self._subscribe(vr.AddresseeEstimate, '/conversation/addressee', addressee_from_ros, self.on_addressee)
        self._subscribe(vr.FloorEvent, '/conversation/floor', floor_from_ros, lambda ev: None)
        # Every node's latest /diagnostics (its counters: drops, suppressions, splits), kept for the
        # run's directory: what went on inside the robots, after the fact.
        from diagnostic_msgs.msg import DiagnosticArray
        from voice_robot.nodes.shell import EVENT_QOS
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, EVENT_QOS)

    def _subscribe(self, msg_type, topic, convert, handler) -> None:
        from voice_robot.nodes.convert import BadMessage
        from voice_robot.nodes.shell import EVENT_QOS

        def callback(msg):
            try:
                converted = convert(msg)
                if self.trace is not None:
                    self._trace(topic, converted)
                handler(converted)
            except BadMessage as exc:
                self.bad_messages += 1     # counted like the nodes do; the run goes on
                if self.live:
                    print(f'           (ignored a bad message on {topic}: {exc})', file=self.log, flush=True)
        self.node.create_subscription(msg_type, topic, callback, EVENT_QOS)

    def _trace(self, topic: str, msg) -> None:
        import json
        from dataclasses import asdict, is_dataclass
        now = self.node.get_clock().now().nanoseconds * 1e-9
        body = {k: v for k, v in asdict(msg).items() if k not in ('embedding', 'evidence')} if is_dataclass(msg) else {}
        self.trace.write(json.dumps({'t': round(now, 3), 'topic': topic, **body}, default=str) + '\n')

    def on_diagnostics(self, msg) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        if self.trace is not None:
            self.trace.close()
        self.node.destroy_node()

    def say(self, t: float, text: str) -> None:
        if self.live:
            print(f'[{t:6.2f} s] {text}', file=self.log, flush=True)

    def on_utterance(self, u: m.Utterance) -> None:
        self.rec.on_utterance(None, u, None)
        if u.is_final and u.transcript:
            self.say(u.end, f'{u.robot} heard {u.voice_id or "someone"} at {math.degrees(u.azimuth):+.0f} deg: '
                            f'"{u.transcript}"')

    def on_addressee(self, est: m.AddresseeEstimate) -> None:
        before = len(self.rec.decisions)
        self.rec.on_addressee(None, est, None)
        if len(self.rec.decisions) > before:
            top = sorted(est.evidence, key=lambda e: -abs(e.contribution))[:3]
            why = ', '.join(f'{e.cue.split(":")[-1]}→{e.candidate} {e.contribution:+.1f}' for e in top)
            self.say(est.utterance_end, f'   "{est.transcript}" is for: {est.decision} '
                                        f'(p={max(est.probabilities):.2f}; {why})')
            self.last_end[est.utterance_id] = est.utterance_end

    def on_speech(self, s: m.SpeechState) -> None:
        key = f'{s.robot}:{s.speech_id}'
        if s.text:
            self.speech_text[key] = s.text
        if s.speaking and key not in self.speech_start:
            self.speech_start[key] = s.started
            latency = (s.started - s.reply_to_end) * 1000 if s.reply_to_end else float('nan')
            kind = {m.SpeechKind.FILLER: ' (filler)', m.SpeechKind.HOLD: ' (hold)'}.get(s.kind, '')
            lat = f' {latency:.0f} ms after the person stopped' if math.isfinite(latency) else ''
            self.say(s.started, f'   {s.robot} starts answering{kind}{lat}')
        elif not s.speaking and key in self.speech_start:
            said = self.speech_text.get(key, '')
            how = 'stops (interrupted)' if s.cancelled else 'said'
            self.say(s.stamp, f'   {s.robot} {how}: "{said}"')
            self.speech_start.pop(key, None)


def _wait_ready(node, robots, spin, timeout: float) -> bool:
    """True once every robot's hearing listens to its microphones and its speech output to commands."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spin(0.2)
        ok = all(node.count_subscribers(f'{r.ns}/audio/raw') > 0 and node.count_subscribers(f'{r.ns}/speech/command') > 0
                 for r in robots)
        if ok:
            return True
    return False


def share_host_cores(deployment):
    """Every robot's processes run on this one host here (on robots, each has its own computer): two
    recognizers decoding the same question at once on two threads each oversubscribe a 2-core host, and
    both finals come later than on one thread each."""
    share = max(1, (os.cpu_count() or 1) // max(1, len(deployment.robots)))
    if deployment.hearing.asr.cpu_threads > share:
        deployment.hearing.asr.cpu_threads = share
    return deployment


def run_scenario_ros(scenario: Scenario, system: SystemConfig | None = None, options: RunOptions | None = None,
                     live: bool = False, rate: float = 1.0, workdir: str | Path | None = None) -> ScenarioRecord:
    import rclpy
    from voice_robot.sim.truth import GroundTruth
    options = options or RunOptions()
    if options.policy != 'system':
        raise ValueError('baselines run in process only (voice-robot eval --compare without --ros)')
    if scenario._path is None:
        raise ValueError('run_scenario_ros needs a scenario loaded from a file')
    work = Path(workdir or tempfile.mkdtemp(prefix='voice_robot_ros_eval_'))
    work.mkdir(parents=True, exist_ok=True)
    deployment = share_host_cores(deployment_for_scenario(scenario, system))
    deploy_file = work / 'deployment.yaml'
    deploy_file.write_text(yaml.safe_dump(deployment.model_dump(mode='json', exclude_none=True), sort_keys=False))
    truth_file = work / 'truth.json'
    env = dict(os.environ)
    env.setdefault('ROS_DOMAIN_ID', str(random.randint(101, 215)))
    env.setdefault('ROS_LOG_DIR', str(work / 'ros_log'))
    os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
    os.environ.setdefault('ROS_LOG_DIR', env['ROS_LOG_DIR'])
    py = sys.executable
    logs = {}
    procs = []
    t_wall = time.perf_counter()
    rclpy.init()
    monitor = None
    try:
        monitor = Monitor(deployment.robots, live, options.log if not live else sys.stdout,
                          trace_path=work / 'trace.jsonl')

        def spin(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                rclpy.spin_once(monitor.node, timeout_sec=0.02)

        for robot in deployment.robots:
            logs[robot.name] = open(work / f'{robot.name}.log', 'w')
            procs.append(subprocess.Popen([py, '-m', 'voice_robot.cli', 'robot', '--config', str(deploy_file),
                                           '--robot', robot.name, '--use-sim-time'], env=env,
                                          stdout=logs[robot.name], stderr=subprocess.STDOUT))
        if options.progress:
            print(f'  {scenario.name}: starting {len(procs)} robot process(es) (models load) ...',
                  file=options.log, flush=True)
        if not _wait_ready(monitor.node, deployment.robots, spin, READY_TIMEOUT_S):
            raise RuntimeError(f'robots did not come up within {READY_TIMEOUT_S:.0f} s; logs in {work}')
        logs['simulator'] = open(work / 'simulator.log', 'w')
        t_sim = time.perf_counter()
        sim = subprocess.Popen([py, '-m', 'voice_robot.cli', 'sim', str(scenario._path), '--rate', str(rate),
                                '--truth-out', str(truth_file)], env=env, stdout=logs['simulator'],
                               stderr=subprocess.STDOUT)
        procs.append(sim)
        if options.progress:
            print(f'  {scenario.name}: simulator running at {rate:g}x real time', file=options.log, flush=True)
        limit = time.monotonic() + 600.0
        while sim.poll() is None and time.monotonic() < limit:
            spin(0.1)
        if sim.poll() is None:
            raise RuntimeError(f'simulator did not finish; logs in {work}')
        if sim.returncode != 0 or not truth_file.exists():
            raise RuntimeError(f'simulator failed (exit {sim.returncode}); see {work / "simulator.log"}')
        sim_wall = time.perf_counter() - t_sim
        spin(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()
        if monitor is not None:
            (work / 'diagnostics.json').write_text(json.dumps(monitor.diagnostics, indent=1, sort_keys=True))
            monitor.close()
        rclpy.try_shutdown()
    truth = GroundTruth.read_json(truth_file)
    startup = time.perf_counter() - t_wall - sim_wall
    duration = truth.duration or max([u.end for u in truth.utterances] + [0.0]) + 6.0
    return ScenarioRecord(
        name=scenario.name, robots=[r.name for r in scenario.robots], humans=[h.name for h in scenario.humans],
        duration_s=duration, utterances=truth_utterances(truth), speech=robot_speech(truth),
        clip_azimuths=truth.clip_azimuths, gaze=monitor.rec.gaze, face_humans=face_humans(truth),
        head_targets=head_targets(truth),
        system_utterances=monitor.rec.resolved_utterances(), decisions=monitor.rec.decisions, wall_time_s=sim_wall,
        extra={'workdir': str(work), 'transport': 'ros2', 'startup_s': round(startup, 1), 'rate': rate})
