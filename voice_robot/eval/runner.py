"""`voice-robot eval`: run the system under test on scenarios in closed loop and score it.

For speed the stages are wired in process (voice_robot.pipeline.InProcessBus) instead of over DDS, but
they are the same Stage objects the ROS nodes host, built by the same node builders. The system sees
only sensor data (each robot's microphone frames and face observations) and its own configuration
(robot names, poses, arrays, voices): ``deployment_for_scenario`` strips everything else.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from voice_robot import messages as m
from voice_robot.conversing.turn import withdrawn
from voice_robot.config.deployment import Deployment, SystemConfig, deployment_for_scenario, load_system
from voice_robot.eval import score as scoring
from voice_robot.acting.speech import SpeechOutputStage
from voice_robot.eval.adapt import face_humans, head_targets, robot_speech, truth_utterances
from voice_robot.fusing.voices import VoiceAliases
from voice_robot.eval.records import GazeSample, ScenarioRecord, SystemDecision, SystemUtterance
from voice_robot.nodes.robot import CORE_NODES, NodeSpec
from voice_robot.pipeline import InProcessBus, resolve
from voice_robot.sim.scenario import Scenario, load_scenario, scenario_files

POLICIES = ('system', 'all_answer', 'nearest_answers', 'name_answers')
POLICY_TITLES = {
    'system': 'voice_robot',
    'all_answer': 'every robot answers any speech it hears',
    'nearest_answers': 'the nearest robot answers',
    'name_answers': 'the robot whose name is heard answers',
}


@dataclass
class RunOptions:
    policy: str = 'system'
    charge_compute: bool = True
    progress: bool = True
    frame_s: float = 0.02
    log: object = sys.stderr


@dataclass
class Recorder:
    """Collects what the system published, as scoring records."""
    utterances: list[SystemUtterance] = field(default_factory=list)
    decisions: list[SystemDecision] = field(default_factory=list)
    gaze: list[GazeSample] = field(default_factory=list)
    aliases: VoiceAliases = field(default_factory=VoiceAliases)

    def on_voice(self, topic, v: m.VoiceIdentity, t):
        self.aliases.on_identity(v)

    def resolved_utterances(self) -> list[SystemUtterance]:
        """Utterances with voice ids as the robots finally agreed on them (merged ids followed)."""
        return [SystemUtterance(u.robot, u.utterance_id, u.start, u.end, self.aliases.canonical(u.voice_id),
                                u.azimuth, u.transcript) for u in self.utterances]

    def on_utterance(self, topic, u: m.Utterance, t):
        if u.is_final and not withdrawn(u):
            self.utterances.append(SystemUtterance(u.robot, u.utterance_id, u.start, u.end, u.voice_id, u.azimuth,
                                                   u.transcript))

    def on_attention(self, topic, frame: m.FaceFrame, t):
        self.gaze.extend(GazeSample(frame.robot, float(frame.stamp), f.face_id, f.looked_at) for f in frame.faces)

    def on_addressee(self, topic, est: m.AddresseeEstimate, t):
        if not est.fused:
            return
        if any(d.robot != est.robot and scoring.overlap(d.start, d.end, est.utterance_start, est.utterance_end) > 0
               for d in self.decisions[-10:]):
            return   # another robot already published the fused decision of this turn
        self.decisions.append(SystemDecision(
            est.robot, est.utterance_id, est.utterance_start, est.utterance_end, est.decision, list(est.candidates),
            [float(p) for p in est.probabilities],
            [{'cue': e.cue, 'candidate': e.candidate, 'value': round(e.value, 3),
              'contribution': round(e.contribution, 3)} for e in est.evidence],
            est.transcript, est.voice_id))


def system_nodes(robot, policy: str) -> list[NodeSpec]:
    """The stages of one robot in eval: the ROS node set minus drivers (the simulator replaces them)."""
    nodes = [n for n in CORE_NODES if n.name != 'attention' or robot.camera is not None]
    if policy != 'system':
        nodes = [n for n in nodes if n.name not in ('addressee', 'floor', 'motion')]
    return nodes


def build_system(deployment: Deployment, bus: InProcessBus, policy: str = 'system') -> dict:
    stages: dict[str, list] = {}
    for robot in deployment.robots:
        stages[robot.name] = []
        for spec in system_nodes(robot, policy):
            module = importlib.import_module(spec.module)
            section = getattr(deployment, spec.section) if spec.section else None
            stage = module.build(deployment=deployment, robot=robot.name, section=section)
            bus.add(stage, robot.ns)
            stages[robot.name].append(stage)
        if policy != 'system':
            from voice_robot.eval.baselines import BaselinePolicyStage
            stage = BaselinePolicyStage(robot, deployment.robots, policy)
            bus.add(stage, robot.ns)
            stages[robot.name].append(stage)
    return stages


def run_scenario(scenario: Scenario, system: SystemConfig | None = None, options: RunOptions | None = None,
                 feature_sink: list | None = None) -> ScenarioRecord:
    from voice_robot.sim.world import Simulator
    options = options or RunOptions()
    deployment = deployment_for_scenario(scenario, system)
    t_wall = time.perf_counter()
    sim = Simulator(scenario, sample_rate=deployment.hearing.sample_rate, frame_s=options.frame_s)
    render_wall = time.perf_counter() - t_wall
    bus = InProcessBus(charge_compute=options.charge_compute)
    t_build = time.perf_counter()
    stages = build_system(deployment, bus, options.policy)
    startup = time.perf_counter() - t_build      # model loading: once per process, not per scenario second
    if not options.charge_compute:
        # Simulated time then does not follow wall time: a sentence waited for by the wall clock would
        # be ready at a simulated time that depends on the machine's load (runs would not repeat).
        for stage in (s for robot_stages in stages.values() for s in robot_stages):
            if isinstance(stage, SpeechOutputStage):
                stage.synthesis_wait = 'full'
    rec = Recorder()
    for robot in deployment.robots:
        ns = robot.ns
        bus.tap(resolve('speech/audio', ns), lambda topic, chunk, t, name=robot.name: sim.add_robot_audio(name, chunk))
        bus.tap(resolve('speech/state', ns), lambda topic, state, t: sim.on_speech_state(state))
        bus.tap(resolve('hearing/utterances', ns), rec.on_utterance)
        bus.tap(resolve('hearing/utterances', ns), lambda topic, u, t: sim.on_heard(u))
        bus.tap(resolve('faces/attention', ns), rec.on_attention)
    bus.tap('/conversation/addressee', rec.on_addressee)
    bus.tap('/voices/identities', rec.on_voice)
    ns_of = {r.name: r.ns for r in deployment.robots}

    t_loop = time.perf_counter()
    next_report = 5.0
    while not sim.done:
        bus.run_until(sim.t + options.frame_s)
        t0 = time.perf_counter()
        out = sim.step()
        render_wall += time.perf_counter() - t0
        for robot_name, chunk in out.audio.items():
            bus.publish(resolve('audio/raw', ns_of[robot_name]), chunk, at=chunk.end)
        for frame in out.faces:
            bus.publish(resolve('faces/observations', ns_of[frame.robot]), frame, at=frame.stamp)
        if options.progress and sim.t >= next_report:
            print(f'  {scenario.name}: {sim.t:5.1f} s simulated, {time.perf_counter() - t_wall:5.1f} s wall',
                  file=options.log, flush=True)
            next_report += 5.0
    bus.run_until(sim.t + 0.5)
    wall = time.perf_counter() - t_wall - startup
    truth = sim.truth
    extra = {'stage_stats': {f'{lane.stage.name}[{lane.stage.robot}]': dict(lane.stage.stats) for lane in bus.lanes},
             'stage_busy_s': {f'{lane.stage.name}[{lane.stage.robot}]{" worker" if lane is not top else ""}':
                              round(lane.busy_total, 3) for top in bus.lanes for lane in (top, top.worker) if lane},
             'loop_wall_s': round(time.perf_counter() - t_loop, 3), 'system_startup_s': round(startup, 2)}
    if feature_sink is not None:
        for lane in bus.lanes:
            feature_sink.extend(getattr(lane.stage, 'features_log', []))
    bus.close()
    return ScenarioRecord(
        name=scenario.name, robots=[r.name for r in scenario.robots], humans=[h.name for h in scenario.humans],
        duration_s=sim.t, utterances=truth_utterances(truth), speech=robot_speech(truth),
        clip_azimuths=truth.clip_azimuths, gaze=rec.gaze, face_humans=face_humans(truth),
        head_targets=head_targets(truth),
        system_utterances=rec.resolved_utterances(), decisions=rec.decisions, wall_time_s=wall,
        render_wall_time_s=render_wall,
        extra=extra)


# --- reporting ------------------------------------------------------------------------------------

METRIC_ROWS = [
    ('addressee_accuracy', 'addressee accuracy', '{:.2f}'),
    ('response_accuracy', 'response accuracy', '{:.2f}'),
    ('missed_responses', 'missed responses', '{}'),
    ('wrong_robot_responses', 'wrong-robot responses', '{}'),
    ('double_responses', 'double responses', '{}'),
    ('spurious_responses', 'spurious responses', '{}'),
    ('robot_overlap_s', 'robot overlap (s)', '{:.2f}'),
    ('response_latency_ms', 'response latency p50/p95 (ms)', None),
    ('yield_latency_ms', 'yield latency p50/p95 (ms)', None),
    ('yields_not_measured', 'yields not measured', '{}'),
    ('false_yields', 'false yields', '{}'),
    ('speaker_attribution_accuracy', 'speaker attribution accuracy', '{:.2f}'),
    ('doa_error_deg', 'DOA error median (deg)', '{:.1f}'),
    ('gaze_target_accuracy', 'gaze target accuracy', '{:.2f}'),
    ('realtime_factor', 'realtime factor', '{:.2f}'),
]


def fmt(key: str, value, pattern) -> str:
    if value is None:
        return '-'
    if pattern is None:
        return '-' if value.get('p50') is None else f"{value['p50']:.0f}/{value['p95']:.0f}"
    try:
        return pattern.format(value)
    except (TypeError, ValueError):
        return str(value)


def table(columns: list[tuple[str, dict]]) -> str:
    width = max(len(label) for _, label, _ in METRIC_ROWS) + 2
    colw = max(12, *(len(name) + 2 for name, _ in columns))
    lines = ['metric'.ljust(width) + ''.join(name.rjust(colw) for name, _ in columns)]
    lines.append('-' * len(lines[0]))
    for key, label, pattern in METRIC_ROWS:
        lines.append(label.ljust(width) + ''.join(fmt(key, metrics.get(key), pattern).rjust(colw)
                                                for _, metrics in columns))
    return '\n'.join(lines)


def confusion_text(metrics: dict) -> str:
    conf = metrics.get('addressee_confusion') or {}
    cols = ['robot', 'robots', 'others', 'undetected']
    lines = ['addressee confusion (rows: truth, columns: decision)',
             'truth'.ljust(10) + ''.join(c.rjust(11) for c in cols)]
    for truth in ('robot', 'robots', 'others'):
        row = conf.get(truth, {})
        lines.append(truth.ljust(10) + ''.join(str(row.get(c, 0)).rjust(11) for c in cols))
    return '\n'.join(lines)


def ros_runner_at(rate: float | None, system: SystemConfig | None, log):
    """``run_scenario_ros`` at ``rate``, or at the rate the demo would choose for each scenario's robots
    on this host (a slow host runs the room slower, as Gazebo does, instead of letting hearing fall behind)."""
    from voice_robot.eval.demo import choose_rate, measure_decode_s, slow_host_hint
    from voice_robot.eval.ros_runner import run_scenario_ros
    decode_s = None if rate is not None else measure_decode_s(system or SystemConfig())

    def run(scenario, system, options):
        at = rate if rate is not None else choose_rate(decode_s, len(scenario.robots), os.cpu_count() or 1)
        if at != 1.0:
            print(f'  {scenario.name}: {len(scenario.robots)} robot(s) on {os.cpu_count()} cores at '
                  f'{at:g}x real time', file=log, flush=True)
        record = run_scenario_ros(scenario, system, options, rate=at)
        hint = slow_host_hint(Path(record.extra['workdir']) / 'diagnostics.json', at, 'voice-robot eval --ros')
        if hint:
            print(f'  {scenario.name}: {hint}', file=log, flush=True)
        return record
    return run


def main_eval(args) -> int:
    files = scenario_files(args.scenarios)
    scenarios = [load_scenario(f) for f in files]      # every file validated before anything runs
    system = load_system(args.config) if args.config else None
    log = sys.stderr
    policies = list(POLICIES) if args.compare else ['system']
    rate = getattr(args, 'rate', None)
    if rate is not None and not (getattr(args, 'ros', False) and math.isfinite(rate) and rate > 0):
        raise SystemExit('voice-robot eval: --rate needs --ros and a positive number of simulated seconds '
                         f'per wall second, got {rate}')
    if getattr(args, 'ros', False):
        runner = ros_runner_at(rate, system, log)
    else:
        runner = run_scenario
    results: dict[str, list[dict]] = {p: [] for p in policies}
    records: dict[str, list[ScenarioRecord]] = {p: [] for p in policies}
    for sc in scenarios:
        for policy in policies:
            if not args.quiet:
                print(f'[eval] {sc.name} ({POLICY_TITLES[policy]}) ...', file=log, flush=True)
            opts = RunOptions(policy=policy, charge_compute=not args.no_compute_latency, progress=not args.quiet,
                              log=log)
            record = runner(sc, system, opts)
            scored = scoring.score_scenario(record)
            results[policy].append(scored)
            records[policy].append(record)
            if not args.quiet:
                m_ = scored['metrics']
                print(f'[eval] {sc.name}: addressee {fmt("", m_["addressee_accuracy"], "{:.2f}")}, '
                      f'response {fmt("", m_["response_accuracy"], "{:.2f}")}, '
                      f'latency p50 {fmt("", m_["response_latency_ms"], None)} ms, '
                      f'RTF {m_["realtime_factor"]:.2f}', file=log, flush=True)
    doc = scoring.report(results['system'])
    doc['render_realtime_factor'] = round(sum(r.render_wall_time_s for r in records['system'])
                                          / max(sum(r.duration_s for r in records['system']), 1e-9), 3)
    if args.compare:
        doc['baselines'] = {p: {'title': POLICY_TITLES[p], 'aggregate': scoring.aggregate(results[p]),
                                'scenarios': [{'name': s['name'], 'metrics': s['metrics']} for s in results[p]]}
                            for p in policies if p != 'system'}
    for sc_doc, record in zip(doc['scenarios'], records['system']):
        sc_doc['stage_busy_s'] = record.extra.get('stage_busy_s', {})
        sc_doc['stage_stats'] = record.extra.get('stage_stats', {})

    print()
    for s in results['system']:
        print(f"== {s['name']}")
        print(table([('system', s['metrics'])]))
        print()
    columns = [('system', doc['aggregate'])]
    if args.compare:
        columns += [(p, doc['baselines'][p]['aggregate']) for p in policies if p != 'system']
        print('baselines: ' + '; '.join(f'{p} = {POLICY_TITLES[p]}' for p in policies if p != 'system'))
    print(f"== all {len(scenarios)} scenarios ({doc['aggregate'].get('utterances_scored', 0)} scored utterances)")
    print(table(columns))
    print()
    print(confusion_text(doc['aggregate']))
    print(f"rendering realtime factor: {doc['render_realtime_factor']:.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1, default=_json_default))
        print(f'wrote {args.json}')
    if args.plot:
        from voice_robot.eval.plot import plot_scenario
        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        for s, record in zip(results['system'], records['system']):
            path = plot_scenario(record, s, out / f"{s['name']}.png")
            print(f'wrote {path}')
    return 0


def _json_default(obj):
    try:
        import numpy as np
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:
        pass
    return str(obj)
