"""`voice-robot bench`: speed, memory and accuracy figures for the notes (never asserted in tests).

* ``hearing``: realtime factor per hearing stage and total, memory, for 4-, 6- and 8-mic arrays, and
  the tracker's DOA accuracy against raw per-frame pyroomacoustics DOA on rendered rooms
  (voice_robot.bench.hearing).
* ``barge-in``: yield latency and false stops of barge-in policies on rendered backchannels and
  interruptions said over the robot's own voice (voice_robot.bench.barge_in).
* ``render``: the simulator alone: rendering realtime factor per scenario.
* ``eval``: a whole closed-loop eval: wall time / simulated time, and compute per stage.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_scenarios(quick: bool) -> list[Path]:
    from voice_robot.sim.scenario import scenario_files
    shared = REPO.parent / 'shared' / 'scenarios'
    files = scenario_files([shared]) if shared.is_dir() else scenario_files([REPO / 'sim' / 'scenarios'])
    return files[:2] if quick else files


def bench_render(quick: bool) -> dict:
    from voice_robot.sim.scenario import load_scenario
    from voice_robot.sim.world import Simulator
    rows = []
    for f in bench_scenarios(quick):
        sc = load_scenario(f)
        t0 = time.perf_counter()
        sim = Simulator(sc)
        setup = time.perf_counter() - t0
        while not sim.done:
            sim.step()
        wall = time.perf_counter() - t0
        rows.append({'scenario': sc.name, 'simulated_s': round(sim.t, 2), 'setup_s': round(setup, 2),
                     'wall_s': round(wall, 2), 'realtime_factor': round(wall / sim.t, 3),
                     'robots': len(sc.robots), 'channels': sum(r.mic_array.channels for r in sc.robots)})
    total_sim = sum(r['simulated_s'] for r in rows)
    total_wall = sum(r['wall_s'] for r in rows)
    return {'rows': rows, 'realtime_factor': round(total_wall / max(total_sim, 1e-9), 3), 'rss_mb': round(rss_mb(), 1)}


def bench_eval(quick: bool) -> dict:
    from voice_robot.eval import score as scoring
    from voice_robot.eval.runner import RunOptions, run_scenario
    from voice_robot.sim.scenario import load_scenario
    rows = []
    busy: dict[str, float] = {}
    for f in bench_scenarios(quick):
        sc = load_scenario(f)
        rec = run_scenario(sc, None, RunOptions(progress=False))
        m = scoring.score_scenario(rec)['metrics']
        rows.append({'scenario': sc.name, 'simulated_s': round(rec.duration_s, 2), 'wall_s': round(rec.wall_time_s, 2),
                     'realtime_factor': round(rec.wall_time_s / rec.duration_s, 3),
                     'render_s': round(rec.render_wall_time_s, 2), 'robots': len(rec.robots),
                     'response_latency_p50_ms': m['response_latency_ms']['p50']})
        for key, value in rec.extra.get('stage_busy_s', {}).items():
            stage = key.split('[')[0]
            busy[stage] = busy.get(stage, 0.0) + value
    sim_total = sum(r['simulated_s'] for r in rows)
    robot_seconds = sum(r['simulated_s'] * r['robots'] for r in rows)
    return {'rows': rows,
            'realtime_factor': round(sum(r['wall_s'] for r in rows) / max(sim_total, 1e-9), 3),
            'core_share_per_robot_by_stage': {k: round(v / max(robot_seconds, 1e-9), 4) for k, v in sorted(busy.items())},
            'rss_mb': round(rss_mb(), 1)}


def print_rows(title: str, result: dict) -> None:
    print(f'== {title}')
    rows = result.get('rows', [])
    if rows:
        keys = list(rows[0])
        print('  '.join(k.rjust(max(len(k), 10)) for k in keys))
        for r in rows:
            print('  '.join(str(r[k]).rjust(max(len(k), 10)) for k in keys))
    for k, v in result.items():
        if k != 'rows':
            print(f'{k}: {v}')
    print()


def main_bench(args) -> int:
    results = {}
    if args.what in ('hearing', 'all'):
        from voice_robot.bench import hearing
        results['hearing'] = hearing.run(args)
        hearing.print_report(results['hearing'])
    if args.what in ('barge-in', 'all'):
        from voice_robot.bench import barge_in
        results['barge_in'] = barge_in.run(args)
        print_rows('barge-in (rendered backchannels and interruptions over the robot\'s voice, per policy)',
                   results['barge_in'])
    if args.what in ('render', 'all'):
        results['render'] = bench_render(args.quick)
        print_rows('render (simulator alone)', results['render'])
    if args.what in ('eval', 'all'):
        results['eval'] = bench_eval(args.quick)
        print_rows('closed-loop eval (in process)', results['eval'])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        print(f'wrote {args.json}', file=sys.stderr)
    return 0
