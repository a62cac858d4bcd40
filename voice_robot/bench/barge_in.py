"""`voice-robot bench barge-in`: how fast the robot yields to interruptions and how often it stops for a
backchannel, over many rendered trials instead of the handful a scenario library holds.

Each trial renders one backchannel ("mm-hmm") or interruption ("sorry, stop") said over the robot's own
voice in a random room, array, voice and noise (``hearing.backchannel_render``), and runs a real
HearingStage on it with compute charged to simulated time (so ASR latency counts). What hearing
published is then replayed into a real FloorStage for each barge-in policy (``BargeInConfig``
variants), which shows the trade-off between yield latency and false stops for the same audio.

Latency is from the person's onset to the CANCEL command; playback stops within one audio chunk after
that. A trial without a CANCEL within 2 s counts as 2000 ms, as the eval's ``yield_latency_ms`` does.
The replay keeps the robot's voice at full level after it ducks (the render cannot duck), so residue
is if anything louder than on a robot.
"""
from __future__ import annotations

import time

import numpy as np

from voice_robot import messages as m
from voice_robot.conversing.config import BargeInConfig, FloorConfig
from voice_robot.hearing.config import HearingConfig

NO_STOP_MS = 2000.0
ROBOT_TALKS_ON_S = 2.2      # the robot's act goes on at least this long after the person's onset
FALSE_STOP_AFTER_S = 1.0     # as the eval's false_yields: stopped within 1 s of the backchannel's end

POLICIES = {
    'shipped': {},
    'acoustics_at_0.8': {'early_stop_threshold': 0.8},
    'acoustics_at_0.7': {'early_stop_threshold': 0.7, 'stop_threshold': 0.7},
    'give_up_0.4s': {'give_up_after_s': 0.4},
    'give_up_0.3s': {'give_up_after_s': 0.3},
    'stop_on_any_speech': {'decide_after_s': 0.01, 'early_stop_threshold': 0.0, 'stop_threshold': 0.0},
}


def hear_trials(count: int, seed: int = 7, config: HearingConfig | None = None, progress=None) -> list[dict]:
    """Render ``count`` trials (half backchannels) and record what hearing published during each."""
    from voice_robot.bench.hearing import backchannel_render, run_stage_on_audio
    from voice_robot.hearing.stage import HearingModels, HearingStage
    rng = np.random.default_rng(seed)
    config = config or HearingConfig()
    models = None
    trials = []
    for k in range(count):
        got = backchannel_render(rng, k, robot_sentences=2, robot_after_s=ROBOT_TALKS_ON_S)
        if got is None:
            continue
        robot, scene, reference, person_start, label, voice = got
        if models is None:
            models = HearingModels.load(config, [robot])
        stage = HearingStage(robot, [], config, models=models)
        t0 = time.perf_counter()
        messages, _ = run_stage_on_audio(stage, scene.mics, reference=reference, charge_compute=True, tail_s=1.0)
        utterances = [(t, msg) for topic, msg, t in messages if topic.endswith('hearing/utterances')]
        person = [tk for tk in scene.talkers if tk.name == 'person'][0]
        active = np.flatnonzero(reference)
        trials.append({'robot': robot, 'backchannel': bool(label), 'voice': voice,
                       'person_start': person_start, 'person_end': person_start + person.signal.size / 16000,
                       'robot_start': active[0] / 16000 if active.size else 0.0,
                       'robot_end': active[-1] / 16000 if active.size else 0.0,
                       'utterances': utterances, 'wall_s': time.perf_counter() - t0})
        if progress:
            progress(trials[-1])
    return trials


def replay(trial: dict, barge_in: BargeInConfig) -> float | None:
    """Seconds from the person's onset to the floor's CANCEL (None: it never stopped)."""
    from voice_robot.conversing.floor import FloorStage
    from voice_robot.pipeline import InProcessBus
    robot = trial['robot']
    bus = InProcessBus(charge_compute=False)
    bus.add(FloorStage(robot, [robot], FloorConfig(), barge_in), robot.ns)
    cancels: list[float] = []
    bus.tap(f'{robot.ns}/speech/command',
            lambda topic, cmd, t: cancels.append(t) if cmd.action == m.SpeechAction.CANCEL else None)
    bus.publish(f'{robot.ns}/speech/state', m.SpeechState(robot.name, True, 'act', text='A long explanation.',
                                                          started=trial['robot_start'], progress=0.1),
                at=trial['robot_start'])
    for t, u in trial['utterances']:
        if t > trial['robot_end']:
            break
        bus.publish(f'{robot.ns}/hearing/utterances', u, at=t)
    bus.run_until(trial['robot_end'])
    stops = [t for t in cancels if t >= trial['robot_start']]
    return stops[0] - trial['person_start'] if stops else None


def score(trials: list[dict], barge_in: BargeInConfig) -> dict:
    latencies, false_stops, early_stops, backchannels = [], 0, 0, 0
    for trial in trials:
        stop = replay(trial, barge_in)
        if trial['backchannel']:
            backchannels += 1
            if stop is not None and stop <= trial['person_end'] - trial['person_start'] + FALSE_STOP_AFTER_S:
                false_stops += 1
        else:
            latencies.append(NO_STOP_MS if stop is None or stop > 2.0 else max(0.0, 1000.0 * stop))
        if stop is not None and stop < 0:
            early_stops += 1          # stopped before the person spoke: residue taken for a person
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return {'interruptions': len(latencies), 'backchannels': backchannels,
            'yield_p50_ms': round(float(np.percentile(lat, 50))), 'yield_p95_ms': round(float(np.percentile(lat, 95))),
            'yield_within_300ms': round(float(np.mean(lat <= 300.0)), 3),
            'false_stop_rate': round(false_stops / max(1, backchannels), 3), 'stops_before_onset': early_stops}


def run(args) -> dict:
    count = 24 if getattr(args, 'quick', False) else 120
    t0 = time.perf_counter()
    trials = hear_trials(count)
    heard_s = time.perf_counter() - t0
    rows = []
    for name, overrides in POLICIES.items():
        row = {'policy': name}
        row.update(score(trials, BargeInConfig(**overrides)))
        rows.append(row)
    return {'rows': rows, 'trials': len(trials), 'hearing_wall_s': round(heard_s, 1),
            'bench_wall_s': round(time.perf_counter() - t0, 1)}
