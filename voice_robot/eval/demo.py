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
    rate = args.rate
    if rate is None:
        decode_s = measure_decode_s(system or SystemConfig())
        rate = choose_rate(decode_s, len(scenario.robots), os.cpu_count() or 1)
        if rate == 1.0 and decode_s > 0:
            print(f'  This host decodes speech in {decode_s:.2f} s: the room runs in real time.')
        if rate < 1.0:
            print(f'  This host decodes speech in {decode_s:.2f} s, too slow for {len(scenario.robots)} robots and the '
                  f'simulator on {os.cpu_count()} cores in real time: the room runs at {rate:g}x (simulated time, '
                  f'as Gazebo does on a slow machine), so every robot gets the compute a robot computer would '
                  f'give it. `--rate 1` forces real time.')
    print()
    record = run_scenario_ros(scenario, system, RunOptions(progress=True), live=True, rate=rate, workdir=out)
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
    hint = slow_host_hint(out / 'diagnostics.json', rate)
    if hint:
        print('\n' + hint)
    return 0


SLOW_HOST_LAG_S = 1.5     # hearing this far behind its microphones (more than one busy decode): answers come late
# Whisper seconds per core that real time affords, per robot and decode. Anchors: hosts decoding in
# 0.17-0.19 s (2 threads) ran the two-robot demo in real time on 2 cores, answering 0.7-1.0 s after the
# person; a host decoding in 0.34-0.55 s fell 2-5 s behind at 1x and kept up at 0.5x (hence 0.55 / 2).
# That host sometimes timed its decodes under 0.3 s for a moment, then fell behind at 1x: the line sits
# lower, and the decode is timed pessimistically.
REALTIME_DECODE_LOAD_S = 0.275
TIMED_DECODES = 6
SLOWEST_RATE = 0.25


def measure_decode_s(system: SystemConfig) -> float:
    """Seconds one warm decode of 2 s of audio takes here with the configured recogniser (0 when it
    is not a local model: an API's latency is not this host's compute)."""
    import time

    import numpy as np

    from voice_robot.hearing.asr import make_recognizer
    asr = system.hearing.asr.model_copy(update={'cpu_threads': min(system.hearing.asr.cpu_threads, os.cpu_count() or 1)})
    if asr.backend != 'faster_whisper':
        return 0.0
    recognizer = make_recognizer(asr)
    audio = (0.003 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    costs = []
    for _ in range(TIMED_DECODES + 1):      # the first decode warms the model up
        t0 = time.perf_counter()
        recognizer.transcribe(audio, over_own_voice=True)     # the costliest decode it makes
        costs.append(time.perf_counter() - t0)
    recognizer.close()
    # Sustained speed is what keeps up, not a quick moment: the second slowest (one spike aside).
    return float(sorted(costs[1:])[-2])


def choose_rate(decode_s: float, robots: int, cores: int) -> float:
    """The real-time factor at which every robot's hearing keeps up: 1, or halved until the decode
    load per core fits (never below SLOWEST_RATE)."""
    load = decode_s * max(1, robots) / max(1, cores)
    rate = 1.0
    while load * rate > REALTIME_DECODE_LOAD_S and rate / 2 >= SLOWEST_RATE:
        rate /= 2
    return rate


def slow_host_hint(diagnostics_file: Path, rate: float, command: str = 'voice-robot demo') -> str:
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
            f'`{command} --rate {rate / 2:g}` gives every robot twice the compute per simulated second.')
