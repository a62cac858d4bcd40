"""The `voice-robot` command: bring-up without ros2 launch, simulation, evaluation and benchmarks."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _default_config() -> str:
    from voice_robot.nodes.shell import default_deployment_file
    return default_deployment_file()


# --- up / robot ------------------------------------------------------------------------------------

def cmd_up(args) -> int:
    """One process per robot, each hosting that robot's nodes in its namespace; Ctrl-C stops all."""
    from voice_robot.config.deployment import load_deployment_or_scenario
    from voice_robot.nodes.robot import nodes_for
    deployment = load_deployment_or_scenario(args.config)
    robots = [r for r in deployment.robots if not args.robots or r.name in args.robots.split(',')]
    if not robots:
        print(f'no robot of {args.config} matches --robots {args.robots}', file=sys.stderr)
        return 2
    procs = []
    for robot in robots:
        cmd = [sys.executable, '-m', 'voice_robot.cli', 'robot', '--config', str(args.config), '--robot', robot.name]
        if args.use_sim_time:
            cmd.append('--use-sim-time')
        procs.append((robot, subprocess.Popen(cmd)))
        names = ', '.join(n.name for n in nodes_for(robot))
        print(f'[up] {robot.name}: namespace {robot.ns}, nodes: {names} (pid {procs[-1][1].pid})', flush=True)

    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + args.duration if args.duration else None
    code = 0
    try:
        while any(p.poll() is None for _, p in procs):
            if deadline and time.monotonic() > deadline:
                stop()
                deadline = None
            if not stopping and any(p.poll() not in (None, 0) for _, p in procs):
                print('[up] a robot process failed; stopping the others', file=sys.stderr)
                code = 1
                stop()
            time.sleep(0.1)
    finally:
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    print('[up] all robots stopped', flush=True)
    failed = [p.returncode for _, p in procs if p.returncode and p.returncode > 0]
    return code or (failed[0] if failed else 0)


def cmd_robot(args) -> int:
    import rclpy

    from voice_robot.config.deployment import load_deployment_or_scenario
    from voice_robot.nodes.robot import make_nodes
    from voice_robot.nodes.shell import spin_nodes
    deployment = load_deployment_or_scenario(args.config)
    rclpy.init(args=['--ros-args'] + (['--params-file', args.params_file] if args.params_file else []))
    try:
        nodes = make_nodes(str(args.config), deployment, args.robot, use_sim_time=args.use_sim_time,
                           only=args.only.split(',') if args.only else None)
        spin_nodes(nodes)
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    return 0


# --- config check ----------------------------------------------------------------------------------

def cmd_check(args) -> int:
    from voice_robot.config.errors import ConfigError, load_yaml
    ok = True
    for path in args.files:
        try:
            data = load_yaml(path).data
            if isinstance(data, dict) and str(data.get('format', '')).startswith('voice_robot/scenario'):
                from voice_robot.sim.scenario import load_scenario
                load_scenario(path)
                kind = 'scenario'
            else:
                from voice_robot.config.deployment import load_deployment
                load_deployment(path)
                kind = 'deployment'
            print(f'{path}: valid {kind}')
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            ok = False
    return 0 if ok else 1


# --- sim / eval / bench / demo ----------------------------------------------------------------------

def cmd_sim(args) -> int:
    from voice_robot.nodes.simulator import main as sim_main
    ros_args = ['--ros-args', '-p', f'scenario:={args.scenario}', '-p', f'rate:={args.rate}']
    if args.truth_out:
        ros_args += ['-p', f'truth_out:={args.truth_out}']
    return sim_main(ros_args) or 0


def cmd_eval(args) -> int:
    from voice_robot.eval.runner import main_eval
    return main_eval(args)


def cmd_bench(args) -> int:
    from voice_robot.bench import main_bench
    return main_bench(args)


def cmd_demo(args) -> int:
    from voice_robot.eval.demo import main_demo
    return main_demo(args)


def cmd_fit(args) -> int:
    from voice_robot.conversing.fit import main_fit
    return main_fit(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='voice-robot', description=__doc__)
    sub = p.add_subparsers(dest='command', required=True, metavar='COMMAND')

    up = sub.add_parser('up', help="start every configured robot's nodes over ROS 2 (Ctrl-C stops)")
    up.add_argument('--config', default=None, help='deployment YAML (default: config/deployment.yaml)')
    up.add_argument('--robots', help='comma-separated subset of robots')
    up.add_argument('--use-sim-time', action='store_true', help='follow /clock (with voice-robot sim)')
    up.add_argument('--duration', type=float, default=0, help='stop after this many seconds (0: until Ctrl-C)')
    up.set_defaults(func=cmd_up)

    rb = sub.add_parser('robot', help="run one robot's nodes in this process")
    rb.add_argument('--config', default=None)
    rb.add_argument('--robot', required=True)
    rb.add_argument('--params-file', help='ROS parameter YAML (ros__parameters) overriding node settings')
    rb.add_argument('--only', help='comma-separated node names')
    rb.add_argument('--use-sim-time', action='store_true')
    rb.set_defaults(func=cmd_robot)

    ck = sub.add_parser('check', help='validate deployment or scenario files')
    ck.add_argument('files', nargs='+')
    ck.set_defaults(func=cmd_check)

    sm = sub.add_parser('sim', help='play a scenario on ROS 2 topics (audio, faces, /clock)')
    sm.add_argument('scenario')
    sm.add_argument('--rate', type=float, default=1.0, help='simulated seconds per wall second')
    sm.add_argument('--truth-out', help='write ground truth and robot speech as JSON here')
    sm.set_defaults(func=cmd_sim)

    ev = sub.add_parser('eval', help='run the system on scenarios and score it (voice_robot/eval@1)')
    ev.add_argument('scenarios', nargs='+', help='scenario files or directories')
    ev.add_argument('--json', help='write the voice_robot/eval@1 JSON here')
    ev.add_argument('--plot', help='write one timeline PNG per scenario into this directory')
    ev.add_argument('--compare', action='store_true', help='also score the baseline policies on the same data')
    ev.add_argument('--config', default=None, help='deployment YAML whose stage settings the system uses')
    ev.add_argument('--ros', action='store_true', help='run the system as ROS 2 nodes over real topics')
    ev.add_argument('--rate', type=float, default=None,
                    help='with --ros: simulated seconds per wall second (default: 1, or slower when this host '
                         'decodes too slowly for the scenario\'s robots in real time, as the demo chooses)')
    ev.add_argument('--no-compute-latency', action='store_true',
                    help='do not charge measured compute time to simulated time')
    ev.add_argument('--quiet', action='store_true')
    ev.set_defaults(func=cmd_eval)

    bn = sub.add_parser('bench', help='speed, memory and accuracy benchmarks')
    bn.add_argument('what', choices=['hearing', 'barge-in', 'eval', 'render', 'all'])
    bn.add_argument('--quick', action='store_true')
    bn.add_argument('--json', help='write results as JSON here')
    bn.set_defaults(func=cmd_bench)

    dm = sub.add_parser('demo', help='the multi-party demo over ROS 2 topics, with a live transcript')
    dm.add_argument('--scenario', default=None, help='scenario to play (default: a bundled one)')
    dm.add_argument('--rate', type=float, default=None,
                    help='simulated seconds per wall second (default: 1, or slower when this host decodes too slowly)')
    dm.add_argument('--out', default='build/demo', help='where the plot and JSON go')
    dm.set_defaults(func=cmd_demo)

    ft = sub.add_parser('fit-addressee', help="fit the addressee model's cue weights on a scenario library")
    ft.add_argument('scenarios', nargs='*', default=['sim/scenarios'])
    ft.add_argument('--out', default=None, help='weights YAML (default: the bundled weights file)')
    ft.add_argument('--samples', help='cache of the labelled cue values (JSON): written after the runs')
    ft.add_argument('--reuse-samples', action='store_true', help='fit on --samples without running scenarios')
    ft.add_argument('--l2', type=float, default=None, help='pull towards the prior weights (default 0.5)')
    ft.set_defaults(func=cmd_fit)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault('ROS_LOG_DIR', str(Path.home() / '.ros' / 'log'))
    args = build_parser().parse_args(argv)
    if getattr(args, 'config', 'unset') is None:
        args.config = _default_config()
    from voice_robot.config.errors import ConfigError
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
