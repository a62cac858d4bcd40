"""Render scenarios without the system: WAV files to listen to, and the simulator's realtime factor.

``python -m voice_robot.sim.render SCENARIO_OR_DIR ... [--wav OUT_DIR] [--respond]``

``ScriptedResponder`` stands in for the system where one is needed to exercise the closed loop
(tests, measurements): it reads the ground truth and answers each utterance addressed to a robot
like an ideal system would. It is a test driver, never part of the system under test.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice_robot.messages import AudioChunk, SpeechKind, SpeechState
from voice_robot.sim.world import Simulator, StepOutput


@dataclass
class _Speaking:
    robot: str
    speech_id: str
    audio: np.ndarray
    pos: int
    reply_to: object
    stop_at: float | None = None


class ScriptedResponder:
    """Answers addressed utterances ``delay_s`` after they end, in the robot's voice, chunk by chunk."""

    def __init__(self, sim: Simulator, delay_s: float = 0.6, text: str = 'Sure, I can help you with that.',
                 yield_after_s: float = 0.3):
        self.sim = sim
        self.delay_s = delay_s
        self.text = text
        self.yield_after_s = yield_after_s
        self._pending: list = []
        self._answered: set[str] = set()
        self._speaking: dict[str, _Speaking] = {}
        self._count = 0
        self._voices: dict[str, np.ndarray] = {}

    def _responder(self, utterance) -> str | None:
        if utterance.backchannel:
            return None
        to = utterance.to
        if isinstance(to, str) and to in self.sim._robots:
            return to
        if to == 'robots':
            return self.sim.scenario.robots[0].name
        return None

    def _speech(self, robot: str) -> np.ndarray:
        if robot not in self._voices:
            from voice_robot.acting.tts import synthesize
            voice = self.sim._robots[robot].voice or 'espeak:en'
            self._voices[robot] = synthesize(voice, self.text, self.sim.sample_rate)
        return self._voices[robot]

    def after_step(self, out: StepOutput) -> None:
        sim, now = self.sim, self.sim.t
        truth = sim._truth
        for uid in out.started:
            for u in truth.utterances:
                if u.id == uid:
                    self._pending.append(u)
                    if u.interrupts:
                        for speaking in self._speaking.values():
                            speaking.stop_at = u.start + self.yield_after_s
        for u in list(self._pending):
            if now >= u.end + self.delay_s:
                self._pending.remove(u)
                robot = self._responder(u)
                if robot is None or robot in self._speaking or u.id in self._answered:
                    continue
                self._answered.add(u.id)
                self._count += 1
                speaking = _Speaking(robot, f'{robot}-{self._count}', self._speech(robot), 0, u)
                self._speaking[robot] = speaking
                sim.on_speech_state(SpeechState(robot=robot, speaking=True, speech_id=speaking.speech_id,
                                                kind=SpeechKind.REPLY, text=self.text, started=now,
                                                in_reply_to=u.id, reply_to_start=u.start, reply_to_end=u.end,
                                                stamp=now))
        n = sim.frame_samples
        for robot, speaking in list(self._speaking.items()):
            stop = speaking.stop_at is not None and now >= speaking.stop_at
            if speaking.pos >= len(speaking.audio) or stop:
                u = speaking.reply_to
                sim.on_speech_state(SpeechState(robot=robot, speaking=False, speech_id=speaking.speech_id,
                                                in_reply_to=u.id, reply_to_start=u.start, reply_to_end=u.end,
                                                cancelled=stop, stamp=now))
                del self._speaking[robot]
                continue
            chunk = speaking.audio[speaking.pos:speaking.pos + n]
            speaking.pos += n
            sim.add_robot_audio(robot, AudioChunk(stamp=now, sample_rate=sim.sample_rate, samples=chunk[:, None]))


def run(sim: Simulator, respond: bool = False, max_s: float = 600.0, keep_audio: bool = False):
    """Play ``sim`` to the end; returns (per-robot audio or None, wall seconds of the run)."""
    responder = ScriptedResponder(sim) if respond else None
    frames: dict[str, list[np.ndarray]] = {name: [] for name in sim._robots}
    start = time.perf_counter()
    while not sim.done and sim.t < max_s:
        out = sim.step()
        if keep_audio:
            for name, chunk in out.audio.items():
                frames[name].append(chunk.samples)
        if responder is not None:
            responder.after_step(out)
    wall = time.perf_counter() - start
    audio = {name: np.concatenate(f) for name, f in frames.items()} if keep_audio else None
    return audio, wall


def main(argv=None) -> int:
    from voice_robot.config.errors import ConfigError
    from voice_robot.sim.scenario import load_scenario, scenario_files
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('paths', nargs='+', help='scenario files or directories')
    parser.add_argument('--wav', help='write <scenario>_<robot>.wav (multichannel) here')
    parser.add_argument('--respond', action='store_true', help='let a scripted responder answer addressed utterances')
    args = parser.parse_args(argv)
    try:
        files = scenario_files(args.paths)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    total_wall = total_sim = 0.0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        sim = Simulator(scenario)
        setup = time.perf_counter() - t0
        audio, wall = run(sim, respond=args.respond, keep_audio=bool(args.wav))
        total_wall += setup + wall
        total_sim += sim.t
        print(f'{scenario.name}: {sim.t:.1f} s simulated, set-up {setup:.2f} s, run {wall:.2f} s, '
              f'realtime factor {(setup + wall) / sim.t:.3f} (run only {wall / sim.t:.3f})')
        if args.wav:
            import soundfile
            out = Path(args.wav)
            out.mkdir(parents=True, exist_ok=True)
            for robot, samples in audio.items():
                soundfile.write(str(out / f'{scenario.name}_{robot}.wav'), samples, sim.sample_rate, subtype='FLOAT')
    if total_sim:
        print(f'all: {total_sim:.1f} s simulated in {total_wall:.2f} s, realtime factor {total_wall / total_sim:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
