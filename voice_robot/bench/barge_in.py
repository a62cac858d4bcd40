"""`voice-robot bench barge-in`: how fast the robot yields to interruptions and how often it stops for a
backchannel, over many rendered trials instead of the handful a scenario library holds.

Each trial renders one backchannel ("mm-hmm") or interruption ("sorry, stop") said over the robot's own
voice in a random room, array, voice and noise (``hearing.backchannel_render``; the robot talks on for
at least ROBOT_TALKS_ON_S after the person's onset). For every barge-in policy (``BargeInConfig``
variants) a real HearingStage and a real FloorStage run on it in closed loop, with compute charged to
simulated time: the floor's DUCK lowers the robot's voice in what the microphones hear and in the echo
reference from the next frame on, CANCEL silences it, as the speech node does on a robot.

Yield latency is from the person's onset to CANCEL (playback stops within one audio chunk after that);
no CANCEL within 2 s counts as 2000 ms, as the eval's ``yield_latency_ms`` does. A false stop is a
CANCEL within 1 s of a backchannel's end, as the eval's ``false_yields``.
"""
from __future__ import annotations

import time

import numpy as np

from voice_robot import messages as m
from voice_robot.conversing.config import BargeInConfig, FloorConfig
from voice_robot.hearing.config import HearingConfig

NO_STOP_MS = 2000.0
FALSE_STOP_AFTER_S = 1.0
ROBOT_TALKS_ON_S = 2.2      # the robot's act goes on at least this long after the person's onset
FRAME_S = 0.02

POLICIES = {
    'shipped': {},
    'give_up_0.4s': {'give_up_after_s': 0.4},
    'stop_on_any_speech': {'decide_after_s': 0.01, 'early_stop_threshold': 0.0, 'stop_threshold': 0.0},
}


def closed_loop(robot, scene, reference: np.ndarray, person_start: float, barge_in: BargeInConfig,
                config: HearingConfig, models, sample_rate: int = 16000) -> float | None:
    """Hearing and floor on one rendered barge-in; seconds from the person's onset to CANCEL, or None."""
    from voice_robot.conversing.floor import FloorStage
    from voice_robot.hearing.stage import HearingStage
    from voice_robot.pipeline import InProcessBus
    bus = InProcessBus(charge_compute=True)
    ns = robot.ns
    bus.add(HearingStage(robot, [], config, models=models), ns)
    bus.add(FloorStage(robot, [robot], FloorConfig(), barge_in), ns)
    robot_image = scene.images[0]
    rest = scene.mics - robot_image
    ducked = 10 ** (barge_in.duck_gain_db / 20.0)
    gain = {'now': 1.0, 'cancel': None}

    def on_command(topic, cmd, t):
        if cmd.action == m.SpeechAction.DUCK and gain['cancel'] is None:
            gain['now'] = ducked
        elif cmd.action == m.SpeechAction.UNDUCK and gain['cancel'] is None:
            gain['now'] = 1.0
        elif cmd.action == m.SpeechAction.CANCEL and gain['cancel'] is None:
            gain['now'], gain['cancel'] = 0.0, t
            bus.publish(f'{ns}/speech/state', m.SpeechState(robot.name, False, 'act', cancelled=True, stamp=t), at=t)
    bus.tap(f'{ns}/speech/command', on_command)
    active = np.flatnonzero(reference)
    robot_start = active[0] / sample_rate if active.size else 0.0
    bus.publish(f'{ns}/speech/state', m.SpeechState(robot.name, True, 'act', text='A long explanation.',
                                                    started=robot_start, progress=0.1), at=robot_start)
    frame = int(FRAME_S * sample_rate)
    end = min(scene.mics.shape[0], int((person_start + ROBOT_TALKS_ON_S) * sample_rate))
    for seq, i in enumerate(range(0, end - frame + 1, frame)):
        t = i / sample_rate
        g = gain['now']
        played = reference[i:i + frame] * g
        if np.any(played):
            bus.publish(f'{ns}/speech/audio', m.AudioChunk(t, sample_rate, played[:, None].copy(), robot.name, seq), at=t)
        mics = (rest[i:i + frame] + g * robot_image[i:i + frame]).astype(np.float32)
        bus.publish(f'{ns}/audio/raw', m.AudioChunk(t, sample_rate, mics, robot.name, seq), at=t + FRAME_S)
        bus.run_until(t + FRAME_S)
    return None if gain['cancel'] is None else gain['cancel'] - person_start


def run_trials(count: int, policies: dict[str, BargeInConfig], seed: int = 7, config: HearingConfig | None = None,
               progress=None) -> list[dict]:
    """Render ``count`` trials (half backchannels); each policy's stop time on each."""
    from voice_robot.bench.hearing import backchannel_render
    from voice_robot.hearing.stage import HearingModels
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
        person = [tk for tk in scene.talkers if tk.name == 'person'][0]
        trial = {'backchannel': bool(label), 'voice': voice, 'person_s': person.signal.size / 16000, 'stops': {}}
        for name, barge_in in policies.items():
            trial['stops'][name] = closed_loop(robot, scene, reference, person_start, barge_in, config, models)
        trials.append(trial)
        if progress:
            progress(trial)
    return trials


def score(trials: list[dict], policy: str) -> dict:
    latencies, false_stops, early_stops, backchannels = [], 0, 0, 0
    for trial in trials:
        stop = trial['stops'][policy]
        if trial['backchannel']:
            backchannels += 1
            if stop is not None and stop <= trial['person_s'] + FALSE_STOP_AFTER_S:
                false_stops += 1
        else:
            latencies.append(NO_STOP_MS if stop is None or stop > 2.0 else max(0.0, 1000.0 * stop))
        if stop is not None and stop < 0:
            early_stops += 1          # stopped before the person spoke: residue taken for a person
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return {'policy': policy, 'interruptions': len(latencies), 'backchannels': backchannels,
            'yield_p50_ms': round(float(np.percentile(lat, 50))), 'yield_p95_ms': round(float(np.percentile(lat, 95))),
            'yield_within_300ms': round(float(np.mean(lat <= 300.0)), 3),
            'not_stopped_in_2s': round(float(np.mean(lat >= NO_STOP_MS)), 3),
            'false_stop_rate': round(false_stops / max(1, backchannels), 3), 'stops_before_onset': early_stops}


def run(args) -> dict:
    count = 20 if getattr(args, 'quick', False) else 100
    t0 = time.perf_counter()
    policies = {name: BargeInConfig(**overrides) for name, overrides in POLICIES.items()}
    trials = run_trials(count, policies)
    return {'rows': [score(trials, name) for name in policies], 'trials': len(trials),
            'bench_wall_s': round(time.perf_counter() - t0, 1)}
