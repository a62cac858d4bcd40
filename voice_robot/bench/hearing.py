"""`voice-robot bench hearing`: speed, memory and accuracy of the hearing front end.

* speed: realtime factor per part of the hearing stage (echo, DOA, tracking, beams, VAD, embeddings,
  ASR, turn cues) and in total, and peak RSS, for 4-, 6- and 8-microphone arrays on a rendered room
  with talkers taking turns (the numbers are rough: the machine is shared);
* DOA accuracy: the tracker (what utterances report) against raw per-block pyroomacoustics DOA on
  rendered rooms (RT60 0.3-0.8 s, SNR 10-30 dB, 1-3 simultaneous talkers), side by side;
* the same through the scenario simulator (voice_robot.sim.world) with two robots, one of them
  speaking: utterance DOA error, speaker attribution, robot speech taken for a person;
* the early (0.18 s) backchannel accuracy, leave-one-voice-out on TTS renders.

``simulate_hearing`` (a Simulator driving HearingStages, with scripted robot speech) is also what the
hearing tests use to check behaviour on whole scenes.
"""
from __future__ import annotations

import argparse
import math
import resource
import time
from dataclasses import dataclass, field

import numpy as np

from voice_robot import messages as m
from voice_robot.hearing.config import HearingConfig


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def angle_error_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.atan2(math.sin(a - b), math.cos(a - b))))


# --- running stages on audio ------------------------------------------------------------------------

def run_stage_on_audio(stage, mics: np.ndarray, sample_rate: int = 16000, frame_s: float = 0.02,
                       reference: np.ndarray | None = None, states: list[m.SpeechState] | None = None,
                       charge_compute: bool = True, tail_s: float = 1.0):
    """Feed (samples, channels) audio to a stage in 20 ms frames through an InProcessBus.

    ``reference`` (mono, same timeline) is published on 'speech/audio' as the robot's own voice.
    Returns (messages [(topic, msg, time)], wall seconds).
    """
    from voice_robot.pipeline import InProcessBus
    bus = InProcessBus(charge_compute=charge_compute)
    ns = '/' + stage.robot
    bus.add(stage, ns)
    out: list = []
    bus.tap_all(lambda topic, msg, t: out.append((topic, msg, t)))
    frame = int(round(frame_s * sample_rate))
    pending_states = sorted(states or [], key=lambda s: s.stamp)
    t_wall = time.perf_counter()
    seq = 0
    for i in range(0, mics.shape[0] - frame + 1, frame):
        t = i / sample_rate
        while pending_states and pending_states[0].stamp <= t:
            st = pending_states.pop(0)
            bus.publish(f'/{st.robot}/speech/state', st, at=st.stamp)
        if reference is not None and np.any(reference[i:i + frame]):
            bus.publish(ns + '/speech/audio', m.AudioChunk(t, sample_rate, reference[i:i + frame, None].copy(),
                                                           stage.robot, seq), at=t)
        seq += 1
        bus.publish(ns + '/audio/raw', m.AudioChunk(t, sample_rate, mics[i:i + frame].copy(), stage.robot, seq),
                    at=t + frame_s)
        bus.run_until(t + frame_s)
    bus.run_until(mics.shape[0] / sample_rate + tail_s)
    wall = time.perf_counter() - t_wall
    return out, wall


def finals(messages) -> list[m.Utterance]:
    """Final utterances that were not withdrawn (a withdrawn one has no text, voice or confidence)."""
    return [msg for topic, msg, _ in messages if topic.endswith('hearing/utterances') and msg.is_final
            and (msg.transcript or msg.voice_id or msg.confidence > 0)]


# --- the simulator harness ------------------------------------------------------------------------------

@dataclass
class ScriptedSpeech:
    robot: str
    t: float
    text: str


@dataclass
class HearingRun:
    truth: object
    utterances: list = field(default_factory=list)         # (robot, Utterance, publish time), all messages
    sources: list = field(default_factory=list)
    identities: list = field(default_factory=list)
    stages: dict = field(default_factory=dict)
    wall_s: float = 0.0                                      # including the simulator's rendering
    busy_s: dict = field(default_factory=dict)               # per robot: hearing compute
    duration_s: float = 0.0
    robot_speech: list = field(default_factory=list)        # (robot, start, end) as scripted

    def finals(self, robot: str | None = None) -> list[m.Utterance]:
        return [u for r, u, _ in self.utterances if u.is_final and (robot is None or r == robot)
                and (u.transcript or u.voice_id or u.confidence > 0)]


def simulate_hearing(scenario, config: HearingConfig | None = None, speech: list[ScriptedSpeech] = (),
                     charge_compute: bool = True, frame_s: float = 0.02) -> HearingRun:
    """Run every robot's HearingStage on the simulator's audio; robots say what ``speech`` scripts."""
    from voice_robot.acting.tts import synthesize
    from voice_robot.hearing.stage import HearingModels, HearingStage
    from voice_robot.pipeline import InProcessBus, resolve
    from voice_robot.sim.world import Simulator
    config = config or HearingConfig()
    sim = Simulator(scenario, sample_rate=config.sample_rate, frame_s=frame_s)
    bus = InProcessBus(charge_compute=charge_compute)
    robots = list(scenario.robots)
    models = HearingModels.load(config, robots)
    run = HearingRun(truth=None)
    for r in robots:
        stage = HearingStage(r, [p for p in robots if p.name != r.name], config, models=models)
        bus.add(stage, r.ns)
        run.stages[r.name] = stage
        bus.tap(resolve('hearing/utterances', r.ns), lambda tp, u, t, name=r.name: run.utterances.append((name, u, t)))
        bus.tap(resolve('audio/sources', r.ns), lambda tp, s, t, name=r.name: run.sources.append((name, s, t)))
    bus.tap('/voices/identities', lambda tp, v, t: run.identities.append(v))
    # Scripted robot speech: 20 ms chunks played into the room and given to the speaking robot's
    # hearing as its echo reference; speech states go to every robot.
    chunks: list[tuple[float, str, np.ndarray]] = []
    states: list[m.SpeechState] = []
    n = int(round(frame_s * config.sample_rate))
    for k, s in enumerate(speech):
        robot = scenario.robot(s.robot)
        audio = synthesize(robot.voice or 'espeak:en', s.text, config.sample_rate)
        for i in range(0, audio.size, n):
            chunks.append((s.t + i / config.sample_rate, s.robot, audio[i:i + n]))
        end = s.t + audio.size / config.sample_rate
        sid = f'{s.robot}-scripted-{k}'
        states.append(m.SpeechState(s.robot, True, sid, text=s.text, started=s.t, stamp=s.t))
        states.append(m.SpeechState(s.robot, False, sid, text=s.text, started=s.t, progress=1.0, stamp=end))
        run.robot_speech.append((s.robot, s.t, end))
    chunks.sort(key=lambda c: c[0])
    states.sort(key=lambda s: s.stamp)
    ns_of = {r.name: r.ns for r in robots}
    t_wall = time.perf_counter()
    while not sim.done:
        horizon = sim.t + frame_s
        while states and states[0].stamp < horizon:
            st = states.pop(0)
            sim.on_speech_state(st)
            bus.publish(resolve('speech/state', ns_of[st.robot]), st, at=max(st.stamp, sim.t))
        while chunks and chunks[0][0] < horizon:
            t, name, samples = chunks.pop(0)
            chunk = m.AudioChunk(t, config.sample_rate, samples.reshape(-1, 1), name)
            sim.add_robot_audio(name, chunk)
            bus.publish(resolve('speech/audio', ns_of[name]), chunk, at=max(t, sim.t))
        bus.run_until(horizon)
        out = sim.step()
        for name, chunk in out.audio.items():
            bus.publish(resolve('audio/raw', ns_of[name]), chunk, at=chunk.end)
    bus.run_until(sim.t + 1.0)
    run.wall_s = time.perf_counter() - t_wall
    run.busy_s = {lane.stage.robot: lane.busy_total for lane in bus.lanes}
    run.duration_s = sim.t
    run.truth = sim.truth
    bus.close()
    return run


def score_run(run: HearingRun) -> dict:
    """DOA error, speaker attribution and robot-speech mistakes of a simulated run."""
    from scipy.optimize import linear_sum_assignment
    truth = run.truth
    doa_errors, pairs, missed, spurious, robot_taken = [], [], 0, 0, 0
    human_utts = [u for u in truth.utterances]
    for robot in run.stages:
        heard = run.finals(robot)
        for u in heard:
            best, overlap = None, 0.0
            for tu in human_utts:
                ov = min(u.end, tu.end) - max(u.start, tu.start)
                if ov > overlap:
                    best, overlap = tu, ov
            if best is None or overlap < 0.3 * max(1e-3, u.end - u.start):
                spurious += 1
                if any(r_start - 0.1 <= u.start <= r_end + 0.3 for _, r_start, r_end in run.robot_speech):
                    robot_taken += 1
                continue
            doa_errors.append(angle_error_deg(u.azimuth, truth.azimuths[robot][best.speaker]))
            pairs.append((u.voice_id, best.speaker))
        for tu in human_utts:
            if not any(min(u.end, tu.end) - max(u.start, tu.start) > 0.3 * (tu.end - tu.start) for u in heard):
                missed += 1
    # Aliases published on /voices/identities say which ids are the same person (merged across robots).
    alias = {v.voice_id: v.alias_of for v in run.identities if v.alias_of}

    def resolve(v):
        seen = set()
        while v in alias and v not in seen:
            seen.add(v)
            v = alias[v]
        return v

    def attribution(mapping):
        voices = sorted({mapping(v) for v, _ in pairs})
        humans = sorted({h for _, h in pairs})
        counts = np.zeros((len(voices), len(humans)))
        for v, h in pairs:
            counts[voices.index(mapping(v)), humans.index(h)] += 1
        rows, cols = linear_sum_assignment(-counts)
        return float(counts[rows, cols].sum() / len(pairs)), len(voices)

    accuracy = resolved = None
    voices = []
    if pairs:
        accuracy, _ = attribution(lambda v: v)
        resolved, _ = attribution(resolve)
        voices = sorted({v for v, _ in pairs})
    suppressed = sum(s.stats.get('robot speech suppressed', 0) for s in run.stages.values())
    return {'utterances_heard': len(pairs), 'truth_utterances': len(human_utts) * len(run.stages),
            'missed': missed, 'spurious': spurious, 'robot_speech_taken_for_person': robot_taken,
            'robot_speech_suppressed': int(suppressed),
            'doa_error_deg_median': round(float(np.median(doa_errors)), 2) if doa_errors else None,
            'speaker_attribution_accuracy': round(accuracy, 3) if accuracy is not None else None,
            'speaker_attribution_accuracy_aliases_resolved': round(resolved, 3) if resolved is not None else None,
            'voice_ids': len(voices),
            'realtime_factor_per_robot': round(float(np.mean(list(run.busy_s.values()))) / max(run.duration_s, 1e-9), 3)
            if run.busy_s else None}


# --- benchmark parts -----------------------------------------------------------------------------------

VOICES = ('flite:slt', 'flite:rms', 'piper:joe', 'flite:awb', 'espeak:en-us+f4', 'flite:kal')
SENTENCES = ('Could you tell me where the nearest train station is, please?',
             'I think we should meet again next week to talk about the plan.',
             'Did you see the game last night? It was a great match.',
             'My favourite season is autumn, when the leaves turn red.',
             'Please remind me to call my sister this evening.',
             'The coffee here is much better than at the other place.')


def _room_talkers(robot, rng, count: int, room, start: float, overlap: bool):
    from voice_robot.acting.tts import synthesize
    from voice_robot.hearing import scenes
    talkers = []
    used = []
    t = start
    for k in range(count):
        for _ in range(50):
            az = rng.uniform(-180, 180)
            if all(angle_error_deg(math.radians(az), math.radians(u)) > 40 for u in used):
                break
        dist = rng.uniform(1.0, 2.0)
        pos = scenes.place(robot, az, dist, rng.uniform(1.1, 1.6))
        if not (0.4 < pos[0] < room[0] - 0.4 and 0.4 < pos[1] < room[1] - 0.4):
            continue
        used.append(az)
        audio = synthesize(VOICES[int(rng.integers(len(VOICES)))], SENTENCES[int(rng.integers(len(SENTENCES)))])
        talkers.append(scenes.Talker(pos, audio, t))
        t = t + (0.3 if overlap else audio.size / 16000 + 0.5)
    return talkers


def doa_accuracy(rooms: int, seed: int = 0, config: HearingConfig | None = None) -> dict:
    """Tracker (utterance azimuths of the stage, and per-block track azimuths) vs raw per-block DOA."""
    from voice_robot.hearing import scenes
    from voice_robot.hearing.audio import StreamingStft
    from voice_robot.hearing.doa import DoaEstimator
    from voice_robot.hearing.stage import HearingModels, HearingStage
    rng = np.random.default_rng(seed)
    config = config or HearingConfig(asr={'backend': 'none'})
    rows = []
    models = None
    for k in range(rooms):
        channels = (4, 6, 8)[k % 3]
        n_talkers = 1 + k % 3
        room = (rng.uniform(5, 8), rng.uniform(4, 6), 3.0)
        robot = scenes.make_robot(channels, (0.032, 0.046, 0.05)[k % 3], (room[0] / 2, room[1] / 2),
                                  rng.uniform(-180, 180))
        rt60, snr = rng.uniform(0.3, 0.8), rng.uniform(10, 30)
        talkers = _room_talkers(robot, rng, n_talkers, room, 0.5, overlap=True)
        if not talkers:
            continue
        scene = scenes.render(robot, talkers, room, rt60, snr, 'pink', seed=k, max_order=10)
        sr = scene.sample_rate
        # Raw pyroomacoustics: one estimate per 64 ms block, as many sources as talk in that block.
        doa = DoaEstimator(robot.mic_positions_base(), sr, config.doa.nfft, config.doa.algorithm,
                           config.doa.freq_range_hz, config.doa.grid_step_deg, max_sources=3)
        stft = StreamingStft(config.doa.nfft, channels)
        frames, raw_errors, track_errors = [], [], []
        hop = config.doa.nfft // 2
        active_power = [np.mean(img ** 2, axis=1) for img in scene.images]
        block = 4
        for i in range(0, scene.mics.shape[0] - hop + 1, hop):
            frames.append(stft.frame(scene.mics[i:i + hop]))
            if len(frames) % block:
                continue
            lo = max(0, i + hop - block * hop)
            talking = [j for j, p in enumerate(active_power)
                       if np.mean(p[lo:i + hop]) > 0.1 * np.mean(p[p > 0]) if np.any(p > 0)]
            if not talking:
                continue
            est = doa.locate(np.stack(frames[-block:], axis=2), len(talking))
            for j in talking:
                raw_errors.append(min(angle_error_deg(e, scene.azimuths[j]) for e in est))
        if models is None:
            models = HearingModels.load(config, [robot])
        stage = HearingStage(robot, [], config, models=models)
        messages, _ = run_stage_on_audio(stage, scene.mics, sr, charge_compute=False)
        for topic, msg, _ in messages:
            if topic.endswith('audio/sources'):
                t = msg.stamp
                idx = int(t * sr)
                talking = [j for j, p in enumerate(active_power)
                           if np.mean(p[max(0, idx - 1024):idx]) > 0.1 * np.mean(p[p > 0])]
                for j in talking:
                    humans = [s for s in msg.sources if not s.robot_name]
                    if humans:
                        track_errors.append(min(angle_error_deg(s.azimuth, scene.azimuths[j]) for s in humans))
        utt_errors = []
        for u in finals(messages):
            best = max(range(len(talkers)),
                       key=lambda j: min(u.end, scene.spans[j][1]) - max(u.start, scene.spans[j][0]))
            utt_errors.append(angle_error_deg(u.azimuth, scene.azimuths[best]))
        rows.append({'channels': channels, 'talkers': len(talkers), 'rt60_s': round(rt60, 2), 'snr_db': round(snr, 1),
                     'raw_median_deg': round(float(np.median(raw_errors)), 1) if raw_errors else None,
                     'raw_within_10deg': round(float(np.mean(np.array(raw_errors) < 10)), 2) if raw_errors else None,
                     'tracker_median_deg': round(float(np.median(track_errors)), 1) if track_errors else None,
                     'tracker_within_10deg':
                         round(float(np.mean(np.array(track_errors) < 10)), 2) if track_errors else None,
                     'utterance_median_deg': round(float(np.median(utt_errors)), 1) if utt_errors else None,
                     'utterances': len(utt_errors)})
    summary = {}
    for key in ('raw_median_deg', 'tracker_median_deg', 'utterance_median_deg', 'raw_within_10deg',
                'tracker_within_10deg'):
        vals = [r[key] for r in rows if r[key] is not None]
        summary[key] = round(float(np.mean(vals)), 2) if vals else None
    by_talkers = {}
    for n in (1, 2, 3):
        sel = [r for r in rows if r['talkers'] == n]
        if sel:
            by_talkers[n] = {k: round(float(np.mean([r[k] for r in sel if r[k] is not None] or [np.nan])), 2)
                             for k in ('raw_median_deg', 'tracker_median_deg', 'utterance_median_deg')}
    return {'rows': rows, 'mean_of_rooms': summary, 'by_talkers': by_talkers}


def speed(channels_list=(4, 6, 8), seconds: float = 20.0, seed: int = 1) -> dict:
    """Realtime factor per part and total on a rendered room with talkers taking turns."""
    from voice_robot.hearing import scenes
    from voice_robot.hearing.stage import HearingModels, HearingStage
    config = HearingConfig()
    rows = []
    models = None
    for channels in channels_list:
        rng = np.random.default_rng(seed)
        room = (6.0, 5.0, 3.0)
        robot = scenes.make_robot(channels, {4: 0.032, 6: 0.046, 8: 0.05}.get(channels, 0.05), (3.0, 2.5))
        talkers = []
        t = 0.5
        while t < seconds - 3.0:
            got = _room_talkers(robot, rng, 1, room, t, overlap=False)
            if got:
                talkers += got
                t += got[0].signal.size / 16000 + rng.uniform(0.8, 2.0)
        scene = scenes.render(robot, talkers, room, 0.4, 25, 'pink', duration_s=seconds, seed=seed, max_order=10)
        if models is None:
            t0 = time.perf_counter()
            models = HearingModels.load(config, [robot])
            load_s = time.perf_counter() - t0
        stage = HearingStage(robot, [], config, models=models)
        messages, wall = run_stage_on_audio(stage, scene.mics, scene.sample_rate, charge_compute=False, tail_s=0.0)
        dur = scene.mics.shape[0] / scene.sample_rate
        speech_s = sum(tk.signal.size for tk in talkers) / 16000
        row = {'channels': channels, 'audio_s': round(dur, 1), 'speech_s': round(speech_s, 1),
               'rtf_total': round(wall / dur, 3)}
        for part, secs in sorted(stage.compute.items()):
            row[f'rtf_{part.replace(" ", "_")}'] = round(secs / dur, 4)
        row['utterances'] = len(finals(messages))
        row['talker_turns'] = len(talkers)
        rows.append(row)
    return {'rows': rows, 'model_load_s': round(load_s, 2), 'rss_mb': round(rss_mb(), 1)}


def simulator_accuracy(quick: bool) -> dict:
    """Two robots and three people in a simulated room; one robot talks over a person at times."""
    from voice_robot.sim.scenario import parse_scenario
    text = f"""
format: voice_robot/scenario@1
name: bench_hearing_sim
seed: 3
room: {{size_m: [7.0, 5.5, 3.0], rt60_s: 0.5, noise: {{kind: pink, snr_db: 20}}}}
robots:
  - {{name: ada, position_m: [2.5, 2.7], yaw_deg: 0, voice: "espeak:en+m3",
     mic_array: {{layout: circular, channels: 4, radius_m: 0.032, height_m: 0.9}}}}
  - {{name: bruno, position_m: [4.8, 2.7], yaw_deg: 180, voice: "espeak:en-us+m5",
     mic_array: {{layout: circular, channels: 6, radius_m: 0.046, height_m: 1.0}}}}
humans:
  - {{name: iris, position_m: [3.6, 1.3, 1.2], voice: "flite:slt"}}
  - {{name: jon, position_m: [3.7, 4.2, 1.2], voice: "flite:rms"}}
  - {{name: kim, position_m: [1.2, 3.6, 1.6], voice: "piper:joe"}}
events:
  - {{id: u1, t: 0.8, speaker: iris, say: "Ada, could I get the menu please?", to: ada}}
  - {{id: u2, t: 4.0, speaker: jon, say: "Did you see the game last night?", to: kim}}
  - {{id: u3, t: 6.8, speaker: kim, say: "No, I was working late again.", to: jon}}
  - {{id: u4, t: 9.6, speaker: iris, say: "Bruno, where is the restroom?", to: bruno}}
  - {{id: u5, t: 15.5, speaker: jon, say: "That is a shame, it was a great match.", to: kim}}
""" + ("" if quick else """
  - {id: u6, t: 19.0, speaker: kim, say: "Maybe we can watch the next one together.", to: jon}
  - {id: u7, t: 22.5, speaker: iris, say: "Ada, what time do you close tonight?", to: ada}
""")
    sc = parse_scenario(text)
    speech = [ScriptedSpeech('bruno', 12.0, 'The restroom is down the hall, second door on the left.'),
              ScriptedSpeech('ada', 2.9, 'Of course, here it is.')]
    if not quick:
        speech.append(ScriptedSpeech('ada', 25.5, 'We close at ten tonight.'))
    run = simulate_hearing(sc, speech=speech)
    return score_run(run)


def backchannel_early() -> dict:
    from voice_robot.hearing import turn_cues
    x, y, v = turn_cues.backchannel_dataset()
    fit = turn_cues.fit_backchannel_early(x, y, v)
    shipped = np.array([turn_cues.backchannel_probability_early_from_vector(row) for row in x])
    return {'leave_one_voice_out_accuracy': round(fit['leave_one_voice_out_accuracy'], 3),
            'shipped_weights_accuracy_on_training_renders': round(float(np.mean((shipped > 0.5) == y)), 3),
            'renders': int(len(y))}


def run(args) -> dict:
    quick = bool(getattr(args, 'quick', False))
    t0 = time.perf_counter()
    result = {'note': 'speed numbers are rough: the machine is shared with other jobs'}
    result['speed'] = speed(seconds=10.0 if quick else 30.0)
    result['doa'] = doa_accuracy(rooms=6 if quick else 18)
    try:
        result['simulator'] = simulator_accuracy(quick)
    except ImportError as exc:
        result['simulator'] = {'skipped': f'simulator not available: {exc}'}
    result['backchannel_early'] = backchannel_early()
    result['rss_mb'] = round(rss_mb(), 1)
    result['bench_wall_s'] = round(time.perf_counter() - t0, 1)
    return result


def _table(rows: list[dict]) -> str:
    if not rows:
        return '  (none)'
    keys = list(dict.fromkeys(k for r in rows for k in r))
    widths = {k: max(len(k), *(len(str(r.get(k, ''))) for r in rows)) for k in keys}
    lines = ['  '.join(k.rjust(widths[k]) for k in keys)]
    lines += ['  '.join(str(r.get(k, '')).rjust(widths[k]) for k in keys) for r in rows]
    return '\n'.join(lines)


def print_report(result: dict) -> None:
    print('== hearing: speed (realtime factor = compute s / audio s; rough, shared machine)')
    print(_table(result['speed']['rows']))
    print(f"model load {result['speed']['model_load_s']} s, peak RSS {result['rss_mb']} MB")
    print('\n== hearing: DOA accuracy, raw per-block pyroomacoustics vs tracker (deg)')
    print(_table(result['doa']['rows']))
    print('mean over rooms:', result['doa']['mean_of_rooms'])
    print('by number of talkers:', result['doa']['by_talkers'])
    print('\n== hearing: simulator (two robots, three people, robot speech)')
    for k, v in result['simulator'].items():
        print(f'  {k}: {v}')
    print('\n== hearing: early backchannel (first 0.18 s of audio)')
    for k, v in result['backchannel_early'].items():
        print(f'  {k}: {v}')
    print(f"\nbench wall time {result['bench_wall_s']} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--fit-backchannel', action='store_true',
                        help='refit the early backchannel weights on TTS renders and print them')
    args = parser.parse_args(argv)
    if args.fit_backchannel:
        from voice_robot.hearing import turn_cues
        x, y, v = turn_cues.backchannel_dataset()
        fit = turn_cues.fit_backchannel_early(x, y, v)
        np.set_printoptions(precision=4, linewidth=110)
        for k in ('mean', 'std', 'weights'):
            print(f'BACKCHANNEL_FEATURE_{k.upper()} =' if k != 'weights' else 'BACKCHANNEL_EARLY_WEIGHTS =',
                  repr(np.round(fit[k], 4)))
        print('BACKCHANNEL_EARLY_BIAS =', round(fit['bias'], 4))
        print('leave-one-voice-out accuracy:', round(fit['leave_one_voice_out_accuracy'], 3))
        return 0
    result = run(args)
    print_report(result)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
