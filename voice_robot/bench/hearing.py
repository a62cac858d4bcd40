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
import json
import math
from pathlib import Path
import resource
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from voice_robot import messages as m
from voice_robot.fusing.voices import follow_aliases
from voice_robot.hearing.config import HearingConfig


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def angle_error_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.atan2(math.sin(a - b), math.cos(a - b))))


# --- running stages on audio ------------------------------------------------------------------------

def run_stage_on_audio(stage, mics: np.ndarray, sample_rate: int = 16000, frame_s: float = 0.02,
                       reference: np.ndarray | None = None, states: list[m.SpeechState] | None = None,
                       charge_compute: bool = True, tail_s: float = 1.0,
                       peer_audio: dict[str, np.ndarray] | None = None, extra: list | None = None):
    """Feed (samples, channels) audio to a stage in 20 ms frames through an InProcessBus.

    ``reference`` (mono, same timeline) is published on 'speech/audio' as the robot's own voice;
    ``peer_audio`` {robot: mono} on '/<robot>/speech/audio' as what peers play; ``extra`` is a list of
    (topic, message, time) published at those times (a peer's utterances, identities...).
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
    pending_extra = sorted(extra or [], key=lambda x: x[2])

    def span(played: np.ndarray) -> tuple[int, int]:
        return (int(np.argmax(np.abs(played) > 0)), played.size - int(np.argmax(np.abs(played[::-1]) > 0))) \
            if np.any(played) else (0, 0)
    acts = {name: span(p) for name, p in (peer_audio or {}).items()}
    own_act = span(reference) if reference is not None else (0, 0)
    t_wall = time.perf_counter()
    seq = 0
    for i in range(0, mics.shape[0] - frame + 1, frame):
        t = i / sample_rate
        while pending_states and pending_states[0].stamp <= t:
            st = pending_states.pop(0)
            bus.publish(f'/{st.robot}/speech/state', st, at=st.stamp)
        while pending_extra and pending_extra[0][2] <= t:
            topic, msg, at = pending_extra.pop(0)
            bus.publish(topic, msg, at=at)
        # A speech stage sends its whole act, pauses included, as one stream of chunks.
        for name, played in (peer_audio or {}).items():
            if acts[name][0] <= i + frame and i < acts[name][1]:
                bus.publish(f'/{name}/speech/audio', m.AudioChunk(t, sample_rate, played[i:i + frame, None].copy(),
                                                                  name, seq), at=t)
        if reference is not None and own_act[0] <= i + frame and i < own_act[1]:
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
    from voice_robot.hearing.stage import HearingModels
    from voice_robot.pipeline import InProcessBus, resolve
    from voice_robot.sim.world import Simulator
    config = config or HearingConfig()
    sim = Simulator(scenario, sample_rate=config.sample_rate, frame_s=frame_s)
    bus = InProcessBus(charge_compute=charge_compute)
    robots = list(scenario.robots)
    run = _hearing_on_bus(bus, robots, config, HearingModels.load(config, robots), record_sources=True)
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
    _finish(run, bus, sim, t_wall)
    return run


def _hearing_on_bus(bus, robots, config: HearingConfig, models, record_sources: bool) -> HearingRun:
    """A HearingRun whose stages (one per robot, the others its peers) are on ``bus``, recording what they publish.

    ``record_sources`` also keeps every block's sound sources (``run.sources``), which adds up over a long run.
    """
    from voice_robot.hearing.stage import HearingStage
    from voice_robot.pipeline import resolve
    run = HearingRun(truth=None)
    for r in robots:
        stage = HearingStage(r, [p for p in robots if p.name != r.name], config, models=models)
        bus.add(stage, r.ns)
        run.stages[r.name] = stage
        bus.tap(resolve('hearing/utterances', r.ns), lambda tp, u, t, name=r.name: run.utterances.append((name, u, t)))
        if record_sources:
            bus.tap(resolve('audio/sources', r.ns), lambda tp, s, t, name=r.name: run.sources.append((name, s, t)))
    bus.tap('/voices/identities', lambda tp, v, t: run.identities.append(v))
    return run


def _finish(run: HearingRun, bus, sim, t_wall: float) -> None:
    """Take what the finished simulation measured into ``run`` and close the bus (and its stages)."""
    run.wall_s = time.perf_counter() - t_wall
    run.busy_s = {lane.stage.robot: lane.busy_total + (lane.worker.busy_total if lane.worker else 0.0)
                  for lane in bus.lanes}
    run.duration_s = sim.t
    run.truth = sim.truth
    bus.close()


def _alias_resolver(identities) -> Callable[[str], str]:
    """voice id -> the id it ends at through the aliases published on /voices/identities, which say which
    ids are the same person (merged across robots). A cycle of aliases stops where it would repeat."""
    alias = {v.voice_id: v.alias_of for v in identities if v.alias_of and v.alias_of != v.voice_id}

    return lambda v: follow_aliases(alias, v)


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
    resolve = _alias_resolver(run.identities)

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



# --- the scenario library: hearing alone, robots answering from ground truth --------------------------

REPLY_TEXT = ('Sure, I can help you with that. Let me check it for you, it will only take a moment, '
              'and then I will tell you everything I know about it.')
BARGE_IN_WINDOW_S = 2.0        # an onset heard later than this after the truth onset is a miss


class _Wiretap:
    """The simulator as the scripted responder sees it; what the robots play also reaches their hearing."""

    def __init__(self, sim, played: list, states: list):
        self._sim = sim
        self._played = played
        self._states = states

    def __getattr__(self, name):
        return getattr(self._sim, name)

    def add_robot_audio(self, robot: str, chunk) -> None:
        self._sim.add_robot_audio(robot, chunk)
        self._played.append((robot, chunk))

    def on_speech_state(self, state) -> None:
        self._sim.on_speech_state(state)
        self._states.append(state)


class LibraryModels:
    """Models loaded once for a whole library run; only the robot voices and names change per scenario."""

    def __init__(self, config: HearingConfig):
        from voice_robot.hearing.asr import make_recognizer
        from voice_robot.hearing.embedding import make_embedder
        from voice_robot.hearing.vad import make_vad
        self.config = config
        self.vad = make_vad(config.vad.backend)
        self.embedder = make_embedder(config.embedder)
        self.recognizer = make_recognizer(config.asr, [])
        self._voice_cache: dict = {}

    def for_robots(self, robots):
        import copy
        from voice_robot.hearing.asr import prompt_for
        from voice_robot.hearing.diarization import RobotVoices
        from voice_robot.hearing.stage import HearingModels
        names = [n for r in robots for n in r.names()]
        recognizer = copy.copy(self.recognizer)
        if hasattr(recognizer, 'names'):
            recognizer.names = names
            recognizer.prompt = prompt_for(names) or None
        voices = RobotVoices(self.embedder, self.config.sample_rate)
        for r in robots:
            if r.voice not in self._voice_cache:
                voices.enrol(r.name, r.voice)
                self._voice_cache[r.voice] = voices.voices.get(r.name)
            cached = self._voice_cache[r.voice]
            if cached is not None:
                from voice_robot.hearing.diarization import RobotVoice
                voices.voices[r.name] = RobotVoice(r.name, r.voice, cached.centroid)
        return HearingModels(self.vad, self.embedder, recognizer, voices)


def simulate_scenario_hearing(scenario, config: HearingConfig | None = None, models: LibraryModels | None = None,
                              reply_text: str = REPLY_TEXT, charge_compute: bool = True,
                              frame_s: float = 0.02) -> HearingRun:
    """Play a library scenario with only every robot's HearingStage as the system under test.

    The robots' speech comes from ``ScriptedResponder`` (it answers addressed utterances from the ground
    truth, like an ideal system, and yields to interruptions): the world's behaviour, never part of the
    system. What a robot plays is its hearing's echo reference; speech states reach every robot.
    """
    from voice_robot.pipeline import InProcessBus, resolve
    from voice_robot.sim.render import ScriptedResponder
    from voice_robot.sim.world import Simulator
    config = config or HearingConfig()
    models = models or LibraryModels(config)
    sim = Simulator(scenario, sample_rate=config.sample_rate, frame_s=frame_s)
    played: list = []
    states: list = []
    responder = ScriptedResponder(_Wiretap(sim, played, states), text=reply_text)
    bus = InProcessBus(charge_compute=charge_compute)
    robots = list(scenario.robots)
    run = _hearing_on_bus(bus, robots, config, models.for_robots(robots), record_sources=False)
    ns_of = {r.name: r.ns for r in robots}
    t_wall = time.perf_counter()
    while not sim.done:
        bus.run_until(sim.t + frame_s)
        out = sim.step()
        for name, chunk in out.audio.items():
            bus.publish(resolve('audio/raw', ns_of[name]), chunk, at=chunk.end)
        responder.after_step(out)
        for state in states:
            bus.publish(resolve('speech/state', ns_of[state.robot]), state, at=sim.t)
        for name, chunk in played:
            bus.publish(resolve('speech/audio', ns_of[name]), chunk, at=sim.t)
        states.clear()
        played.clear()
    bus.run_until(sim.t + 1.0)
    for stage in run.stages.values():
        stage.close()
    _finish(run, bus, sim, t_wall)
    run.robot_speech = [(s.robot, s.start, s.end) for s in run.truth.robot_speech]
    return run


def _words(text: str) -> list[str]:
    import re
    t = text.lower().replace('-', ' ')
    return re.sub(r"[^a-z0-9' ]+", ' ', t).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    d = list(range(len(hyp) + 1))
    for i, rw in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(hyp, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
            prev, d[j] = d[j], cur
    return d[len(hyp)] / len(ref)


def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _chain(finals: list) -> tuple[list, list]:
    """(the largest set of finals that do not overlap in time, the rest: ghosts)."""
    chain, ghosts, end = [], [], -math.inf
    for u in sorted(finals, key=lambda u: u.end):
        if u.start >= end - 0.1:
            chain.append(u)
            end = u.end
        else:
            ghosts.append(u)
    return sorted(chain, key=lambda u: u.start), ghosts


def score_library_run(run: HearingRun, name: str = '') -> dict:
    """Per-scenario hearing metrics against the ground truth (see ``library``)."""
    from types import SimpleNamespace
    from voice_robot.eval.score import speaker_attribution
    truth = run.truth
    utts = list(truth.utterances)
    robot_names = [str(n).lower() for n in run.stages]
    alias_names = {n.lower(): r for r, st in run.stages.items() for n in st.spec.names()}
    speech = list(truth.robot_speech)
    messages: dict[tuple, list] = {}
    for robot, u, t in run.utterances:
        messages.setdefault((robot, u.utterance_id), []).append((u, t))
    row = {'scenario': name or truth.scenario, 'truth': len(utts) * len(run.stages)}
    detected = missed = ghosts = splits = merged = spurious = robot_as_human = 0
    wers, doa, latencies, name_hits, name_total = [], [], [], 0, 0
    resolved_finals = []
    for robot, stage in run.stages.items():
        heard = run.finals(robot)
        owner = {}
        for f in heard:
            ovs = sorted(((_overlap(f.start, f.end, u.start, u.end), u) for u in utts), key=lambda x: -x[0])
            dur = max(1e-3, f.end - f.start)
            human = sum(o for o, _ in ovs)
            robot_ov = sum(_overlap(f.start, f.end, s.start, s.end) for s in speech)
            if human < 0.1 * dur and robot_ov > 0.5 * dur:
                robot_as_human += 1
            if not ovs or ovs[0][0] < 0.3 * dur and ovs[0][0] < 0.3 * (ovs[0][1].end - ovs[0][1].start):
                spurious += 1
                continue
            owner[f.utterance_id] = ovs[0][1].id
            if len(ovs) > 1 and ovs[1][0] > max(0.3, 0.3 * (ovs[1][1].end - ovs[1][1].start)):
                merged += 1
        for u in utts:
            mine = [f for f in heard if owner.get(f.utterance_id) == u.id]
            covered = sum(_overlap(f.start, f.end, u.start, u.end) for f in _chain(mine)[0])
            if not mine or covered < 0.3 * (u.end - u.start):
                missed += 1
                continue
            detected += 1
            chain, extra = _chain(mine)
            ghosts += len(extra)
            splits += len(chain) - 1
            hyp = ' '.join(f.transcript for f in chain)
            wers.append(word_error_rate(u.text, hyp))
            said = {w for w in _words(u.text) if w in alias_names}
            if said:
                name_total += 1
                name_hits += int(said <= {w for w in _words(hyp) if w in alias_names})
            best = max(mine, key=lambda f: _overlap(f.start, f.end, u.start, u.end))
            doa.append(angle_error_deg(best.azimuth, truth.azimuths[robot][u.speaker]))
            last = max(chain, key=lambda f: f.end)
            published = [t for (uu, t) in messages[(robot, last.utterance_id)] if uu.is_final]
            if published:
                latencies.append(published[-1] - u.end)
    # Speaker attribution as the eval scores it: voice ids resolved through published aliases.
    resolve = _alias_resolver(run.identities)
    finals_all = [f for r in run.stages for f in run.finals(r)]
    record = SimpleNamespace(utterances=utts, system_utterances=[
        SimpleNamespace(voice_id=resolve(f.voice_id), start=f.start, end=f.end) for f in finals_all])
    attribution = speaker_attribution(record)
    raw = speaker_attribution(SimpleNamespace(utterances=utts, system_utterances=finals_all))
    # Barge-in: human speech that starts while a robot talks, heard by that robot.
    onsets, onset_misses, early, early3, false_onsets = [], 0, [], [], 0
    for s in speech:
        for u in utts:
            if not s.start <= u.start < s.end:
                continue
            first = None
            for (robot, uid), msgs in messages.items():
                if robot != s.robot:
                    continue
                last = msgs[-1][0]
                if _overlap(last.start, max(last.end, last.start + 0.1), u.start, u.end) <= 0 or \
                        last.start < u.start - 0.5:
                    continue
                t = msgs[0][1]
                if first is None or t < first[0]:
                    first = (t, msgs)
            if first is None or first[0] - u.start > BARGE_IN_WINDOW_S:
                onset_misses += 1
                continue
            onsets.append(first[0] - u.start)
            if u.backchannel or u.interrupts:
                for msg, _ in first[1]:
                    if msg.is_final or msg.backchannel_probability <= 0:
                        continue
                    span = msg.end - msg.start
                    target = early if span < 0.25 else early3 if span < 0.45 else None
                    if target is not None and not any(x[0] == (s.robot, u.id) for x in target):
                        target.append(((s.robot, u.id), (msg.backchannel_probability > 0.5) == u.backchannel))
    for (robot, uid), msgs in messages.items():
        last = msgs[-1][0]
        end = max(last.end, last.start + 0.1)
        if sum(_overlap(last.start, end, u.start, u.end) for u in utts) > 0:
            continue
        if any(s.robot == robot and _overlap(last.start, end, s.start, s.end + 0.4) > 0 for s in speech):
            false_onsets += 1
    busy = run.busy_s
    row.update({
        'detected': detected, 'missed': missed, 'ghosts': ghosts, 'splits': splits, 'merged': merged,
        'spurious': spurious, 'robot_as_human': robot_as_human,
        'wer': round(float(np.mean(wers)), 3) if wers else None,
        'names': f'{name_hits}/{name_total}',
        'doa_deg': round(float(np.median(doa)), 1) if doa else None,
        'attribution': attribution['accuracy'], 'attribution_raw': raw['accuracy'],
        'final_latency_ms': round(1000 * float(np.median(latencies))) if latencies else None,
        'barge_in_onset_ms': round(1000 * float(np.median(onsets))) if onsets else None,
        'barge_in_missed': onset_misses, 'false_onsets': false_onsets,
        'bc_early': f'{sum(ok for _, ok in early)}/{len(early)}',
        'bc_0.3s': f'{sum(ok for _, ok in early3)}/{len(early3)}',
        'rtf': round(float(np.mean(list(busy.values()))) / max(run.duration_s, 1e-9), 3) if busy else None,
    })
    row['_raw'] = {'wers': wers, 'doa': doa, 'latencies': latencies, 'onsets': onsets, 'early': [ok for _, ok in early],
                   'early3': [ok for _, ok in early3], 'name_hits': name_hits, 'name_total': name_total,
                   'attribution_correct': attribution['correct'], 'attribution_total': attribution['total'],
                   'attribution_raw_correct': raw['correct'], 'busy': sum(busy.values()),
                   'robot_seconds': run.duration_s * len(run.stages)}
    return row


def timeline(run: HearingRun) -> list[str]:
    """Truth, robot speech and every robot's utterances in time order (for reading failures)."""
    lines = []
    for u in run.truth.utterances:
        flags = ''.join(f for f, on in (('I', u.interrupts), ('B', u.backchannel)) if on)
        lines.append((u.start, f'{u.start:7.2f}-{u.end:6.2f} TRUTH {u.id:>4} {u.speaker:>6} {flags:2} {u.text!r}'))
    for s in run.truth.robot_speech:
        lines.append((s.start, f'{s.start:7.2f}-{s.end:6.2f} ROBOT {s.robot} speaks{" (cancelled)" if s.cancelled else ""}'))
    firsts: dict = {}
    for robot, u, t in run.utterances:
        key = (robot, u.utterance_id)
        if key not in firsts:
            firsts[key] = t
        if u.is_final:
            gone = '' if (u.transcript or u.voice_id or u.confidence > 0) else ' WITHDRAWN'
            lines.append((u.start, f'{u.start:7.2f}-{u.end:6.2f}   {u.utterance_id:>9} first@{firsts[key]:.2f} '
                                   f'final@{t:.2f} {u.voice_id or "-":>14} az={math.degrees(u.azimuth):5.0f} '
                                   f'eot={u.end_of_turn_probability:.2f} bc={u.backchannel_probability:.2f}'
                                   f'{gone} {u.transcript!r}'))
    return [line for _, line in sorted(lines, key=lambda x: x[0])]


def _pct(values, q):
    return round(1000 * float(np.percentile(values, q))) if values else None


def library_summary(rows: list[dict]) -> dict:
    raw = [r['_raw'] for r in rows]
    total = {k: sum(r[k] for r in rows) for k in ('truth', 'detected', 'missed', 'ghosts', 'splits', 'merged',
                                                   'spurious', 'robot_as_human', 'barge_in_missed', 'false_onsets')}
    cat = lambda key: [v for x in raw for v in x[key]]     # noqa: E731
    early, early3 = cat('early'), cat('early3')
    total.update({
        'wer_mean': round(float(np.mean(cat('wers'))), 3) if cat('wers') else None,
        'name_recall': round(sum(x['name_hits'] for x in raw) / max(1, sum(x['name_total'] for x in raw)), 3),
        'doa_deg_median': round(float(np.median(cat('doa'))), 2) if cat('doa') else None,
        'attribution': round(sum(x['attribution_correct'] for x in raw) / max(1, sum(x['attribution_total'] for x in raw)), 3),
        'attribution_raw': round(sum(x['attribution_raw_correct'] for x in raw)
                                 / max(1, sum(x['attribution_total'] for x in raw)), 3),
        'final_latency_ms': {'p50': _pct(cat('latencies'), 50), 'p95': _pct(cat('latencies'), 95)},
        'barge_in_onset_ms': {'p50': _pct(cat('onsets'), 50), 'p95': _pct(cat('onsets'), 95), 'n': len(cat('onsets'))},
        'backchannel_early_accuracy': round(float(np.mean(early)), 3) if early else None,
        'backchannel_early_n': len(early),
        'backchannel_0.3s_accuracy': round(float(np.mean(early3)), 3) if early3 else None,
        'backchannel_0.3s_n': len(early3),
        'rtf_per_robot': round(sum(x['busy'] for x in raw) / max(1e-9, sum(x['robot_seconds'] for x in raw)), 3),
    })
    return total


def library(paths, config: HearingConfig | None = None, only: list[str] | None = None, progress=None,
            detail: bool = False) -> dict:
    """Hearing-only metrics per scenario of a library (see ``simulate_scenario_hearing``):
    truth utterances x robots, detected / missed / ghosts (extra finals overlapping another final of the
    same truth utterance on one robot) / splits (further finals in sequence) / merged (a final covering a
    second truth utterance too), spurious finals and robot speech taken for a person, mean word error
    rate and robot-name recall of the finals, median DOA error, speaker attribution (as the eval
    scores it, aliases followed; raw ids too), final latency (truth end -> final published), barge-in
    onset latency (truth onset during robot speech -> first message of that robot, sim time with
    compute charged), false onsets (utterances opened on no human speech while that robot spoke),
    early backchannel accuracy (0.18 s and 0.3 s partials of backchannels and interruptions)."""
    from voice_robot.sim.scenario import load_scenario, scenario_files
    config = config or HearingConfig()
    models = LibraryModels(config)
    rows = []
    for path in scenario_files([str(p) for p in paths]):
        scenario = load_scenario(path)
        if only and scenario.name not in only:
            continue
        t0 = time.perf_counter()
        run = simulate_scenario_hearing(scenario, config, models)
        row = score_library_run(run, scenario.name)
        row['wall_s'] = round(time.perf_counter() - t0, 1)
        if detail:
            row['_timeline'] = timeline(run)
            row['_stats'] = {name: dict(stage.stats) for name, stage in run.stages.items()}
        rows.append(row)
        if progress:
            progress(row)
    return {'rows': rows, 'summary': library_summary(rows)}


def print_library(result: dict) -> None:
    rows = [{k: v for k, v in r.items() if not k.startswith('_')} for r in result['rows']]
    print(_table(rows))
    print('summary:')
    for k, v in result['summary'].items():
        print(f'  {k}: {v}')


# --- early backchannel data: renders through the hearing stage ---------------------------------------

ROBOT_TTS_VOICES = ('espeak:en+m1', 'espeak:en+f4', 'espeak:en-us+m4', 'espeak:en-gb+f5', 'espeak:en+m6',
                    'espeak:en-us+m5', 'espeak:en-gb-x-rp+m2', 'espeak:en+m3')
ROBOT_SENTENCES = ('Sure, let me explain how that works, step by step, it only takes a moment of your time.',
                   'The first thing to know is that the machine warms the water before it reaches the tank.',
                   'Once upon a time there was a small dragon who lived on a mountain above the village.',
                   'The bus leaves every twenty minutes from the stop in front of the main entrance.',
                   'You can find the glass bottles in the green container next to the back door.')


def backchannel_render(rng, k: int, robot_sentences: int = 1, robot_after_s: float = 0.8, voices=None):
    """One backchannel (even k) or interruption said over the robot's own voice in a random room:
    (robot, scene, reference, person start s, label 1 = backchannel, voice), or None if it does not fit.
    The robot says ``robot_sentences`` sentences and talks on at least ``robot_after_s`` after the onset;
    the person speaks with one of ``voices`` (default: ``turn_cues.TRAINING_VOICES``)."""
    from voice_robot.acting.tts import synthesize
    from voice_robot.hearing import scenes, turn_cues
    label = 1 - k % 2
    phrase_list = turn_cues.BACKCHANNEL_PHRASES if label else turn_cues.INTERRUPTION_PHRASES
    phrase = phrase_list[int(rng.integers(len(phrase_list)))]
    voices = voices or turn_cues.TRAINING_VOICES
    voice = voices[int(rng.integers(len(voices)))]
    room = (rng.uniform(4.5, 8.0), rng.uniform(4.0, 6.0), 2.7)
    kind = ('circular', 'linear')[int(rng.integers(2))]
    pos = (room[0] * rng.uniform(0.3, 0.5), room[1] * rng.uniform(0.35, 0.65))
    yaw = rng.uniform(-60, 60)
    if kind == 'circular':
        robot = scenes.make_robot(int(rng.choice([4, 6, 8])), float(rng.uniform(0.03, 0.05)), pos, yaw)
    else:
        robot = scenes.make_linear_robot(int(rng.choice([4, 6])), float(rng.uniform(0.03, 0.05)), pos, yaw)
    robot_voice = ROBOT_TTS_VOICES[int(rng.integers(len(ROBOT_TTS_VOICES)))]
    own = np.concatenate([synthesize(robot_voice, ROBOT_SENTENCES[int(rng.integers(len(ROBOT_SENTENCES)))])
                          for _ in range(robot_sentences)])
    person = synthesize(voice, phrase)
    robot_start = 0.3
    person_start = robot_start + rng.uniform(1.2, max(1.3, own.size / 16000 - robot_after_s))
    talkers = [scenes.Talker(tuple(robot.loudspeaker_map()), own, robot_start, 'robot'),
               scenes.Talker(scenes.place(robot, rng.uniform(-75, 75), rng.uniform(0.9, 2.4), rng.uniform(1.1, 1.7)),
                             person, person_start, 'person')]
    if not all(0.3 < t.position[i] < room[i] - 0.3 for t in talkers[1:] for i in (0, 1)):
        return None
    scene = scenes.render(robot, talkers, room, float(rng.uniform(0.2, 0.8)), float(rng.uniform(12, 30)),
                          ('pink', 'white', 'babble')[int(rng.integers(3))], seed=k, max_order=8,
                          duration_s=person_start + max(person.size / 16000 + 0.6, robot_after_s))
    reference = np.zeros(scene.mics.shape[0], np.float32)
    i0 = int(robot_start * 16000)
    reference[i0:i0 + own.size] = own[:max(0, reference.size - i0)]
    return robot, scene, reference, person_start, label, voice


def backchannel_stage_accuracy(count: int = 200, seed: int = 1, config: HearingConfig | None = None) -> dict:
    """Accuracy of the backchannel probability the stage publishes at 0.18 s and at 0.3 s (with the
    barge-in words when ASR runs) on backchannels / interruptions said over the robot's own voice."""
    from voice_robot.hearing.stage import HearingModels, HearingStage
    rng = np.random.default_rng(seed)
    config = config or HearingConfig()
    models = None
    hits = {0.18: [], 0.3: []}
    for k in range(count):
        got = backchannel_render(rng, k)
        if got is None:
            continue
        robot, scene, reference, person_start, label, voice = got
        if models is None:
            models = HearingModels.load(config, [robot])
        stage = HearingStage(robot, [], config, models=models)
        messages, _ = run_stage_on_audio(stage, scene.mics, reference=reference, charge_compute=False, tail_s=0.3)
        seen: dict = {}
        for topic, msg, _ in messages:
            if not topic.endswith('hearing/utterances') or msg.is_final or msg.backchannel_probability <= 0:
                continue
            if not person_start - 0.3 <= msg.start <= person_start + 0.4:
                continue
            span = msg.end - msg.start
            window = 0.18 if span < 0.25 else 0.3 if span < 0.45 else None
            if window is not None and window not in seen:
                seen[window] = (msg.backchannel_probability > 0.5) == bool(label)
        for window, ok in seen.items():
            hits[window].append(ok)
    return {f'{w}s': {'accuracy': round(float(np.mean(v)), 3) if v else None, 'n': len(v)} for w, v in hits.items()}


def backchannel_stage_dataset(count: int = 1000, seed: int = 0, progress=None) -> dict:
    """Backchannels and interruptions said over the robot's own voice in rendered rooms, heard through a
    real HearingStage in closed loop with the floor (``bench.barge_in.closed_loop``: the DUCK at the
    onset lowers the robot's voice, as on a robot), ASR off: per early window, the audio the stage
    itself scores. Segments the robot's own residue opens away from the person's speech are kept too,
    labelled 1 (nothing to stop for): fitted on people alone, the models took such residue for a
    cut-in now and then. Returns {window_s: (audio clips, labels (1 = backchannel or residue),
    voices, kinds ('person' or 'residue'))}.
    """
    from voice_robot.bench.barge_in import ROBOT_TALKS_ON_S, closed_loop
    from voice_robot.conversing.config import BargeInConfig
    from voice_robot.hearing import turn_cues
    from voice_robot.hearing.asr import NullRecognizer
    from voice_robot.hearing.stage import HearingModels, HearingStage
    from voice_robot.hearing.vad import make_vad
    rng = np.random.default_rng(seed)
    config = HearingConfig(asr={'backend': 'none'})
    models = HearingModels(make_vad(config.vad.backend), None, NullRecognizer(), None)
    out = {w: ([], [], [], []) for w in turn_cues.EARLY_WINDOWS_S}
    captured: list = []
    original = HearingStage._estimate_backchannel_early

    def capture(stage, stream, seg, age):
        window = original(stage, stream, seg, age)
        if stage._own_speaking(seg.start):
            captured.append((round(window, 2), stream.audio(seg.start - 0.02, seg.start + window), seg))
        return window
    HearingStage._estimate_backchannel_early = capture
    try:
        for k in range(count):
            got = backchannel_render(rng, k, robot_sentences=2, robot_after_s=ROBOT_TALKS_ON_S,
                                     voices=turn_cues.OVER_OWN_VOICE_TRAINING_VOICES)
            if got is None:
                continue
            robot, scene, reference, person_start, label, voice = got
            person_end = scene.spans[1][1]
            captured.clear()
            closed_loop(robot, scene, reference, person_start, BargeInConfig(), config, models)
            person_seg = None
            for window, audio, seg in captured:
                if window not in out or audio.size < int((window - 0.05) * 16000):
                    continue            # the stream's history did not reach back to the onset
                if person_start - 0.3 <= seg.start <= person_start + 0.4 and (person_seg is None or person_seg is seg):
                    person_seg, kind, y = seg, 'person', label       # the first segment there is the person's
                elif seg.start + window < person_start - 0.05 or seg.start > person_end + 0.1:
                    kind, y = 'residue', 1
                else:
                    continue
                xs, ys, vs, ks = out[window]
                xs.append(np.asarray(audio, np.float32))
                ys.append(y)
                vs.append(voice)
                ks.append(kind)
            if progress:
                progress(k, label, voice, len(captured))
    finally:
        HearingStage._estimate_backchannel_early = original
    return {w: (x, np.array(y), np.array(v), np.array(kd, dtype=object)) for w, (x, y, v, kd) in out.items()}


def _row_kinds(rows: tuple) -> np.ndarray:
    """The kinds of a dataset's rows ('person' where an older 3-tuple has none)."""
    return rows[3] if len(rows) > 3 else np.full(len(rows[1]), 'person', dtype=object)


def over_own_voice_features(dataset: dict, features: str, encoder=None) -> dict:
    """``backchannel_stage_dataset``'s clips as the feature vectors of one model kind (clips too short
    for the features are left out): {window: (vectors, labels, voices, kinds)}."""
    from voice_robot.hearing import turn_cues
    kind = turn_cues.OverOwnVoiceModel(features, {}, encoder)
    out = {}
    for window, data in dataset.items():
        clips, y, voices = data[:3]
        kinds = _row_kinds(data)
        rows, keep = [], []
        for i, clip in enumerate(clips):
            try:
                rows.append(kind.vector(clip, 16000, window))
                keep.append(i)
            except ValueError:
                continue
        out[window] = (np.array(rows), y[keep], voices[keep], kinds[keep])
    return out


ENCODER_MODEL_C = 0.01
# Residue-only segments are rare in the renders (about one in ten) and each weighs this much more in
# the fit: a stop on the robot's own voice is worse than a late one (weight chosen on held-out renders
# and the library's scenes, see the bundle's report).
RESIDUE_WEIGHT = 10.0


def _over_own_voice_classifier(features: str):
    from voice_robot.hearing import turn_cues
    if features == turn_cues.ENCODER_FEATURES:
        # 768 correlated encoder dimensions from a few thousand clips: a strongly regularised linear
        # model (trees over-fit them; C chosen on renders of other rooms, see the bundle's report).
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        return make_pipeline(StandardScaler(), LogisticRegression(C=ENCODER_MODEL_C, max_iter=3000))
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0)


def _fit_weighted(features: str, x, y, weights):
    model = _over_own_voice_classifier(features)
    key = f'{model.steps[-1][0]}__sample_weight' if hasattr(model, 'steps') else 'sample_weight'
    return model.fit(x, y, **{key: weights})


def fit_over_own_voice_models(train: dict, test: dict, path=None, features: str | None = None,
                              encoder: str | None = None, residue_weight: float = RESIDUE_WEIGHT) -> dict:
    """Fit one over-own-voice model per window on ``train`` and score it and each voice left out on
    ``test`` (renders of other rooms): {window: (feature vectors, labels, voices[, kinds])} of
    ``features``; residue rows weigh ``residue_weight``. Writes the bundle the hearing stage loads
    (``encoder``: the Whisper model the features came from)."""
    import joblib
    from sklearn.metrics import roc_auc_score
    from voice_robot.hearing import turn_cues
    features = features or turn_cues.OVER_OWN_VOICE_FEATURES
    report, models = {}, {}
    for window, rows in sorted(train.items()):
        x, y, voices = rows[:3]
        residue = _row_kinds(rows) == 'residue'
        xt, yt, vt = test[window][:3]
        residue_t = _row_kinds(test[window]) == 'residue'
        person_t = ~residue_t
        if len(y) < 40 or len(set(y.tolist())) < 2:
            continue
        weights = np.where(residue, residue_weight, 1.0)
        model = _fit_weighted(features, x, y, weights)
        p = model.predict_proba(xt)[:, 1]
        left_out = []
        for voice in sorted(set(voices.tolist())):
            held = (vt == voice) & person_t
            if held.sum() and len(set(yt[held].tolist())) == 2:
                rest = voices != voice
                pv = _fit_weighted(features, x[rest], y[rest], weights[rest]).predict_proba(xt[held])[:, 1]
                left_out.append(float(np.mean((pv > 0.5) == yt[held])))
        pp, yp = p[person_t], yt[person_t]
        report[window] = {
            'train': int(len(y)), 'train_residue': int(residue.sum()), 'residue_weight': residue_weight,
            'test': int(person_t.sum()), 'test_residue': int(residue_t.sum()),
            'test_accuracy': round(float(np.mean((pp > 0.5) == yp)), 3),
            'test_auc': round(float(roc_auc_score(yp, pp)), 3),
            'voice_left_out_accuracy': round(float(np.mean(left_out)), 3) if left_out else None,
            'interruptions_below_0.2': round(float(np.mean(pp[yp == 0] < 0.2)), 3),
            'backchannels_below_0.2': round(float(np.mean(pp[yp == 1] < 0.2)), 3),
            # the barge-in decision's operating point: a stop probability of 0.9
            'interruptions_at_most_0.1': round(float(np.mean(pp[yp == 0] <= 0.1)), 3),
            'backchannels_at_most_0.1': round(float(np.mean(pp[yp == 1] <= 0.1)), 3),
            # residue: a stop at 0.1; at 0.5 or less, the floor stops for it once it lasts give_up_after_s
            'residue_at_most_0.1': round(float(np.mean(p[residue_t] <= 0.1)), 3) if residue_t.any() else None,
            'residue_at_most_0.5': round(float(np.mean(p[residue_t] <= 0.5)), 3) if residue_t.any() else None}
        models[window] = model
    path = path or (turn_cues.OVER_OWN_VOICE_ENCODER_MODEL if features == turn_cues.ENCODER_FEATURES
                    else turn_cues.OVER_OWN_VOICE_MODEL)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    bundle = {'features': features, 'models': models, 'report': report}
    if encoder:
        bundle['encoder'] = encoder
    joblib.dump(bundle, path, compress=3)
    turn_cues.over_own_voice_models.cache_clear()
    return report


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


FIRST_ACT_WINDOWS_S = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.5))


def echo_first_act(trials: int = 8, double_talk: bool = True) -> dict:
    """ERLE of the robot's very first act (nothing learned yet), per window after its onset, with the
    least-squares warm start and without; a person talks from just before the robot starts."""
    from voice_robot.acting.tts import synthesize
    from voice_robot.hearing import scenes
    from voice_robot.hearing.echo import EchoCanceller
    rows = {'warm start': [], 'cold start': []}
    for k in range(trials):
        rng = np.random.default_rng(k)
        robot = scenes.make_robot(4, 0.032, (2.0, 2.0), 0.0)
        own = np.concatenate([synthesize(ROBOT_TTS_VOICES[k % len(ROBOT_TTS_VOICES)],
                                         ROBOT_SENTENCES[(k + i) % len(ROBOT_SENTENCES)]) for i in range(2)])[:4 * 16000]
        talkers = [scenes.Talker(tuple(robot.loudspeaker_map()), own, 0.5, 'robot')]
        if double_talk:
            person = synthesize(VOICES[k % len(VOICES)], SENTENCES[k % len(SENTENCES)])
            talkers.append(scenes.Talker(scenes.place(robot, rng.uniform(-60, 60), rng.uniform(1.2, 2.0), 1.5),
                                         person, 0.4, 'person'))
        scene = scenes.render(robot, talkers, (5.0, 4.5, 2.7), float(rng.uniform(0.3, 0.6)), 20.0, 'babble',
                              seed=k, max_order=8, duration_s=4.5)
        reference = np.zeros(scene.mics.shape[0])
        reference[8000:8000 + own.size] = own[:scene.mics.shape[0] - 8000]
        echo = scene.images[0]
        for name, blocks in (('warm start', 4), ('cold start', 0)):
            aec = EchoCanceller(scene.mics.shape[1], 256, 10, 1.0, 16000, (300.0, 3500.0), warm_start_blocks=blocks)
            powers = []
            for i in range(0, scene.mics.shape[0] - 255, 256):
                out = aec.process(scene.mics[i:i + 256], reference[i:i + 256])
                residue = echo[i:i + 256] - (scene.mics[i:i + 256] - out)
                powers.append((i / 16000 - 0.5, float(np.sum(echo[i:i + 256] ** 2)), float(np.sum(residue ** 2))))
            p = np.array(powers)
            windows = [p[(p[:, 0] >= a) & (p[:, 0] < b)] for a, b in FIRST_ACT_WINDOWS_S]
            rows[name].append([10 * np.log10(w[:, 1].sum() / (w[:, 2].sum() + 1e-12)) for w in windows])
    return {'rows': [{'canceller': name, **{f'ERLE {a}-{b} s': round(float(np.mean([r[j] for r in v])), 1)
                                            for j, (a, b) in enumerate(FIRST_ACT_WINDOWS_S)}}
                     for name, v in rows.items()],
            'trials': trials, 'person_talking': double_talk}


def backchannel_early() -> dict:
    from voice_robot.hearing import turn_cues
    x, y, v = turn_cues.backchannel_dataset()
    fit = turn_cues.fit_backchannel_early(x, y, v)
    shipped = np.array([turn_cues.backchannel_probability_early_from_vector(row) for row in x])
    return {'leave_one_voice_out_accuracy': round(fit['leave_one_voice_out_accuracy'], 3),
            'shipped_weights_accuracy_on_training_renders': round(float(np.mean((shipped > 0.5) == y)), 3),
            'renders': int(len(y))}


def config_from_overrides(overrides: list[str] | None) -> HearingConfig:
    """HearingConfig with dotted ``section.key=value`` overrides (values parsed as YAML)."""
    import yaml
    data: dict = {}
    for item in overrides or []:
        key, _, value = item.partition('=')
        node = data
        parts = key.strip().split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return HearingConfig(**data)


def run(args) -> dict:
    quick = bool(getattr(args, 'quick', False))
    t0 = time.perf_counter()
    result = {'note': 'speed numbers are rough: the machine is shared with other jobs'}
    scenarios = getattr(args, 'scenarios', None)
    if scenarios:
        config = config_from_overrides(getattr(args, 'set', None))

        def progress(row):
            shown = {k: v for k, v in row.items() if not k.startswith('_')}
            print(' '.join(f'{k}={v}' for k, v in shown.items()), flush=True)
            for line in row.get('_timeline', []):
                print('   ', line, flush=True)
        result['library'] = library(scenarios, config, getattr(args, 'only', None), progress=progress,
                                    detail=bool(getattr(args, 'detail', False)))
        result['bench_wall_s'] = round(time.perf_counter() - t0, 1)
        return result
    result['speed'] = speed(seconds=10.0 if quick else 30.0)
    result['doa'] = doa_accuracy(rooms=6 if quick else 18)
    try:
        result['simulator'] = simulator_accuracy(quick)
    except ImportError as exc:
        result['simulator'] = {'skipped': f'simulator not available: {exc}'}
    result['backchannel_early'] = backchannel_early()
    result['echo_first_act'] = echo_first_act(trials=4 if quick else 8)
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
    if 'library' in result:
        print('== hearing on the scenario library (robots answer from ground truth; compute charged to sim time)')
        print_library(result['library'])
        print(f"\nbench wall time {result['bench_wall_s']} s")
        return
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
    first = result['echo_first_act']
    print(f"\n== hearing: the robot's first act, a person talking throughout ({first['trials']} rooms; "
          f"ERLE from the act's onset, dB)")
    print(_table(first['rows']))
    print(f"\nbench wall time {result['bench_wall_s']} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--fit-backchannel', action='store_true',
                        help='refit the early backchannel weights on TTS renders and print them')
    parser.add_argument('--scenarios', nargs='+', help='scenario files or directories: hearing-only library run')
    parser.add_argument('--only', nargs='+', help='with --scenarios: only these scenario names')
    parser.add_argument('--set', nargs='+', metavar='KEY=VALUE', help='hearing config overrides (vad.min_silence_ms=300)')
    parser.add_argument('--json', help='write the result as JSON here')
    parser.add_argument('--detail', action='store_true', help='with --scenarios: print each timeline')
    parser.add_argument('--fit-early', type=int, metavar='RENDERS',
                        help='render this many backchannels/interruptions over robot speech through the hearing '
                             'stage in closed loop (and half as many other rooms to test on), fit the over-own-voice '
                             'backchannel models (trees and Whisper encoder; the residue segments the robot\'s own voice '
                             'opens count as nothing to stop for) and write them (--out, default: the bundled files)')
    parser.add_argument('--out', help='with --fit-early: write the two models to OUT.barge_in_vector.joblib and '
                             'OUT.whisper_encoder.joblib instead of the bundled files')
    parser.add_argument('--backchannel-accuracy', type=int, metavar='RENDERS',
                        help='accuracy of the published backchannel probability at 0.18 s and 0.3 s on this many '
                             'backchannels/interruptions over robot speech rendered through the hearing stage')
    args = parser.parse_args(argv)
    if args.backchannel_accuracy:
        print(backchannel_stage_accuracy(args.backchannel_accuracy))
        return 0
    if args.fit_early:
        def progress(k, *a):
            if k % 50 == 0:
                print(k, *a, flush=True)
        from voice_robot.hearing import turn_cues
        train = backchannel_stage_dataset(args.fit_early, seed=0, progress=progress)
        test = backchannel_stage_dataset(max(100, args.fit_early // 2), seed=1, progress=progress)
        encoder = turn_cues.load_onset_encoder('tiny.en')
        for features, whisper in ((turn_cues.OVER_OWN_VOICE_FEATURES, None), (turn_cues.ENCODER_FEATURES, 'tiny.en')):
            out = f'{args.out}.{features.split("/")[0]}.joblib' if args.out else None
            report = fit_over_own_voice_models(over_own_voice_features(train, features, encoder),
                                               over_own_voice_features(test, features, encoder), out, features, whisper)
            print(features, json.dumps(report, indent=1))
        return 0
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
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
