"""`voice-robot demo` (`make demo`): a multi-party conversation in simulation over real ROS 2 topics.

Plays a bundled scenario in the closed-loop simulator, runs every robot's nodes in their own
processes and namespaces, narrates who said what to whom and which robot answered how fast, then
scores the run and writes its timeline plot.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from voice_robot.config.deployment import SystemConfig
from voice_robot.eval import score as scoring
from voice_robot.eval.ros_runner import run_scenario_ros
from voice_robot.eval.runner import RunOptions, confusion_text, table
from voice_robot.sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = 'demo_table.yaml'


def demo_scenario_path() -> Path:
    local = REPO / 'sim' / 'scenarios' / DEMO_SCENARIO
    if local.exists():
        return local
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('voice_robot')) / 'sim' / 'scenarios' / DEMO_SCENARIO


def main_demo(args) -> int:
    path = Path(args.scenario) if args.scenario else demo_scenario_path()
    scenario = load_scenario(path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    system = None
    brain = 'the offline brain'
    if os.environ.get('OPENAI_API_KEY'):
        system = SystemConfig()
        system.conversing.dialogue.llm.backend = 'openai'
        brain = f'OpenAI ({system.conversing.dialogue.llm.model})'
    print(f'voice_robot demo: scenario "{scenario.name}"')
    if scenario.description:
        print('  ' + ' '.join(scenario.description.split()))
    print(f"  robots: {', '.join(r.name for r in scenario.robots)}; people: {', '.join(h.name for h in scenario.humans)}; "
          f'dialogue: {brain}')
    print('  Every robot runs its own ROS 2 nodes (hearing, attention, persons, addressee, floor, dialogue,')
    print('  speech, motion) in its namespace; the simulator renders the room and plays the people.')
    print()
    record = run_scenario_ros(scenario, system, RunOptions(progress=True), live=True, rate=args.rate, workdir=out)
    scored = scoring.score_scenario(record)
    print()
    print(table([('demo', scored['metrics'])]))
    print()
    print(confusion_text(scored['metrics']))
    from voice_robot.eval.plot import plot_scenario
    png = plot_scenario(record, scored, out / f'{scenario.name}.png')
    doc = scoring.report([scored])
    (out / 'eval.json').write_text(json.dumps(doc, indent=1, default=str))
    print(f'\ntimeline plot: {png}\nscores: {out / "eval.json"}\nnode logs: {out}/*.log\nnode diagnostics (counters): {out / "diagnostics.json"}')
    hint = slow_host_hint(out / 'diagnostics.json', args.rate)
    if hint:
        print('\n' + hint)
    return 0


SLOW_HOST_LAG_S = 1.5     # hearing this far behind its microphones (more than one busy decode): answers come late


def slow_host_hint(diagnostics_file: Path, rate: float) -> str:
    """A note when hearing fell behind real time: every robot and the simulator share this host here."""
    try:
        nodes = json.loads(diagnostics_file.read_text())
        lag = max(float(values.get('audio lag max s', 0.0)) for values in nodes.values())
    except (OSError, ValueError, AttributeError):
        return ''
    if lag < SLOW_HOST_LAG_S:
        return ''
    return (f'Hearing ran up to {lag:.1f} s behind its microphones: the robots and the simulator need more '
            f'than this host\'s {os.cpu_count()} cores at {rate:g}x real time, so answers came late. '
            f'`voice-robot demo --rate {rate / 2:g}` gives every robot twice the compute per simulated second.')
