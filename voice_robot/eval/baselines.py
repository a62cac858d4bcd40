"""Reference policies for `voice-robot eval --compare`, run on the same scenarios and scored the same way.

They replace addressee estimation and floor control with what simpler systems do; hearing, dialogue
and speech stay the same, so differences come from the turn decisions alone.

* ``all_answer``: every robot answers any speech it hears (single-user voice agents today): each robot
  answers every final utterance of its own hearing, and stops talking when it hears speech (VAD barge-in).
* ``nearest_answers``: the robot nearest to the talker answers. Each robot places the talker from its
  own direction of arrival at an assumed 1.5 m and answers if it is itself the nearest robot.
* ``name_answers``: the robot whose name is heard answers (anywhere in the transcript), nobody otherwise.

No coordination between robots: no floor protocol, so double answers and overlaps can happen.
"""
from __future__ import annotations

import math

import numpy as np

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.cues import find_names, tokenize
from voice_robot.pipeline import Stage

ASSUMED_RANGE_M = 1.5


class BaselinePolicyStage(Stage):
    name = 'baseline'
    outputs = ('/conversation/floor', '/conversation/addressee', 'speech/command')

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], policy: str):
        super().__init__(robot.name)
        if policy not in ('all_answer', 'nearest_answers', 'name_answers'):
            raise ValueError(f'unknown baseline policy {policy!r}')
        self.me, self.robots, self.policy = robot, robots, policy
        self.names = {r.name: r.names() for r in robots}
        self.speaking = False
        self.seq = 0

    def inputs(self):
        return {'hearing/utterances': self.on_utterance, 'speech/state': self.on_state}

    def on_state(self, state: m.SpeechState) -> None:
        self.speaking = state.speaking

    def decide(self, u: m.Utterance) -> str:
        if self.policy == 'all_answer':
            return m.GROUP
        if self.policy == 'name_answers':
            hits = find_names(tokenize(u.transcript), self.names)
            named = [r for r, h in hits.items() if h]
            return named[0] if named else m.OTHERS
        centre = self.me.array_center_map()
        bearing = self.me.yaw + u.azimuth
        talker = centre[:2] + ASSUMED_RANGE_M * np.array([math.cos(bearing), math.sin(bearing)])
        dists = {r.name: float(np.linalg.norm(talker - np.asarray(r.position_m))) for r in self.robots}
        return min(dists, key=dists.get)

    def on_utterance(self, u: m.Utterance) -> None:
        now = self.now()
        if not u.is_final:
            if self.speaking and self.policy == 'all_answer':
                self.publish('speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, stamp=now))
            return
        decision = self.decide(u)
        answers = decision == self.robot or (decision == m.GROUP and self.policy == 'all_answer')
        cands = [r.name for r in self.robots] + [m.GROUP, m.OTHERS]
        probs = [1.0 if c == decision else 0.0 for c in cands]
        self.publish('/conversation/addressee', m.AddresseeEstimate(
            u.utterance_id, self.robot, cands, probs, decision, u.start, u.end, u.voice_id, u.transcript,
            fused=True, stamp=now))
        if answers:
            self.seq += 1
            self.publish('/conversation/floor', m.FloorEvent(
                m.FloorKind.GRANT, self.robot, u.utterance_id, u.start, u.end, 1.0, now + 30.0, self.seq, now))
