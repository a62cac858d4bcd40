"""Distributed floor control: exactly one robot answers, and robots never talk over each other.

Protocol (docs/floor-control.md), on the shared topic /conversation/floor; no coordinator:

1. When a robot's local addressee estimate says the turn may be for it (itself or the group), it
   publishes CLAIM with a score: its addressee probability plus, for group requests, a fair share
   (who the person looks at, who is nearest, who is free, who spoke least recently).
2. When its fused estimate for the turn arrives (all robots' estimates, same result everywhere), the
   turn's owner is known: the robot named, or for 'robots' the best CLAIM, ties broken by name; 'others'
   means nobody. The owner publishes GRANT with a lease as soon as the floor is free, and answers.
3. While it speaks it publishes RENEW every heartbeat_s; when done, RELEASE. A holder that goes silent
   (crashed, network lost) loses the floor when its lease expires: bounded, lease_s.
4. Two GRANTs racing each other: the later one (ties: larger name) yields and queues its turn.
5. Last line of defence, whatever the protocol state: every robot hears its peers' speech state
   (`/<peer>/speech/state`); a robot that finds itself speaking while a peer that started earlier
   (ties: smaller name) still speaks stops, queues its turn and treats the peer as the holder.

Barge-in (the speaking robot decides): human speech onset while speaking ducks the voice at once; about
0.18 s in, hearing's early backchannel probability decides stop or keep; the first words decide when
they open like an interruption ("wait", "sorry", a wh- or can-you question, our name); speech still going
on at give_up_after_s stops the robot unless its words are a listener response or hearing still takes it
for one (then it gets twice as long). A backchannel ("mm-hmm")
keeps the floor, a real interruption stops the robot within one audio chunk. If the "interruption" turns
out to be no words at all (a cough), or a few words that cannot be a turn of their own (our residue
garbling an "mm-hmm"), the robot resumes, and nobody answers those words.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.addressee import GROUP, OTHERS, mostly_within, same_turn
from voice_robot.conversing.config import BargeInConfig, FloorConfig
from voice_robot.conversing.cues import text_cues
from voice_robot.conversing.turn import withdrawn
from voice_robot.pipeline import Stage

FloorKind = m.FloorKind
LONGER_THAN_BACKCHANNEL = 2.0   # a finished utterance this many give_up_after_s long was no "mm-hmm"
EARLY_WINDOW_S = 0.1       # decisions within this of decide_after_s use the stricter early threshold
# Someone is talking from an utterance's first partial to its final (hearing sends one for every
# utterance, withdrawn ones included). While this robot is silent, hearing sends partials only at the
# start of an utterance, so a time since the last partial cannot tell a talker who goes on from one who
# stopped; this bound only covers a final that was lost.
OPEN_SPEECH_LOST_S = 10.0
# A turn waits for other people to stop talking at most this long after it ended: someone who talks on
# and on (or a radio heard as a person) must not keep the robot from answering the one who asked.
TALKING_HOLD_MAX_S = 2.0
LISTENER_RESPONSE_MAX_WORDS = 3   # "same thing", "I love him": what our residue makes of an "mm-hmm"
# Hearing's acoustics said this sure "backchannel" at some point: the words decoded over our voice may
# be longer ("and that is something" from a one-second "mm-hmm") without making it a turn.
LEANED_BACKCHANNEL = 0.7
THANKS = re.compile(r"^(thanks|thank you)\b")   # mid-explanation, thanks usually means "that will do"
PEER_STATE_STALE_S = 1.0    # a peer's "speaking" not refreshed for this long is over (it publishes ~8/s)
DECISION_WAIT_S = 1.0    # a final of ours still being decided holds the grant of its span this long at most
IDLE_RELEASE_S = 10.0    # longer than the dialogue's LLM timeout: a slow reply after a filler keeps the floor
# Probabilities reach us as ROS float32 fields: hearing's bounded acoustic estimate 0.1 arrives as
# 0.10000000149, and 1 - that fell short of the 0.9 stop threshold it was sent to meet.
FLOAT32_SLACK = 1e-6


@dataclass
class Contest:
    """One human turn some robot may answer."""
    start: float
    end: float
    claims: dict[str, float] = field(default_factory=dict)          # robot -> score
    claim_ids: dict[str, str] = field(default_factory=dict)         # robot -> its utterance id
    decision: m.AddresseeEstimate | None = None
    created: float = 0.0
    owner: str | None = None
    granted: bool = False
    absorbed: bool = False      # a listener response we stopped for and then talked on over: nobody answers
    # Other people's utterances still going on when we took the turn (after TALKING_HOLD_MAX_S): we
    # chose to talk over them, so they do not interrupt us.
    talked_over: frozenset = frozenset()


@dataclass
class Holder:
    robot: str
    lease_until: float
    granted_at: float
    utterance_id: str = ''


@dataclass
class Interruption:
    utterance_id: str
    onset: float
    decided: bool = False
    stopped: bool = False
    speech: m.SpeechState | None = None
    leaned_backchannel: float = 0.0     # the highest backchannel probability hearing gave it so far


def _longer(a: m.AddresseeEstimate, b: m.AddresseeEstimate) -> bool:
    return a.utterance_end - a.utterance_start > b.utterance_end - b.utterance_start


def group_share(me: RobotSpec, robots: list[RobotSpec], est: m.AddresseeEstimate, busy: bool,
                last_spoke_at: float, now: float) -> float:
    """A robot's claim on a group request: gaze, proximity, availability, fairness (0..1)."""
    gaze = sum(e.value for e in est.evidence if e.candidate == me.name and e.cue.endswith('gaze'))
    nearest = sum(e.value for e in est.evidence if e.candidate == me.name and e.cue.endswith('nearest'))
    idle_for = min(now - last_spoke_at, 60.0) / 60.0
    return 0.4 * min(gaze, 1.0) + 0.3 * min(nearest, 1.0) + 0.2 * (0.0 if busy else 1.0) + 0.1 * idle_for


class FloorStage(Stage):
    name = 'floor'
    outputs = ('/conversation/floor', 'speech/command')

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], floor: FloorConfig, barge_in: BargeInConfig):
        super().__init__(robot.name)
        self.me = robot
        self.robots = robots
        self.names = [r.name for r in robots]
        self.cfg = floor
        self.barge = barge_in
        self.contests: list[Contest] = []
        self.holder: Holder | None = None
        self.queue: list[Contest] = []             # turns won while the floor was busy
        self.my_grant: Contest | None = None
        self.speech: m.SpeechState | None = None
        self.spoke_since_grant = False
        self.last_spoke_at = -1e9
        self.seq = itertools.count(1)
        self.interruption: Interruption | None = None
        self.resume: m.SpeechState | None = None
        # The dialogue reported our turn while someone's speech over its last words was still being
        # decided: the floor goes once that is (unless we resume).
        self.turn_reported = False
        self.act_text: tuple[str, str] = ('', '')   # (speech id, whole text) of the latest act, to resume it
        self.last_renew = -1e9
        # Human speech this robot hears right now (partials without their final): nobody takes the
        # floor while a person is still talking.
        self.open_speech: dict[str, float] = {}
        self.peer_speech: dict[str, tuple[m.SpeechState, float]] = {}   # name -> (latest state, when seen)
        self._stopped_over_peer = ''     # our act already stopped for a peer's (its state lags the CANCEL)
        # Our hearing's finals with words that no fused decision covers yet: (start, end, when heard).
        # Two utterances heard over one span (a fragment of its first word, and the whole request) are
        # decided one by one; the span's turn is not granted until both are.
        self.undecided: list[tuple[float, float, float]] = []

    def inputs(self):
        handlers = {
            '/conversation/addressee': self.on_estimate,
            '/conversation/floor': self.on_floor,
            '/conversation/turns': self.on_turn,
            'speech/state': self.on_speech_state,
            'speech/command': self.on_speech_command,
            'hearing/utterances': self.on_utterance,
        }
        for r in self.robots:
            if r.name != self.robot:
                handlers[f'{r.ns}/speech/state'] = self.on_peer_speech
        return handlers

    def timers(self):
        return [(0.02, self.tick)]

    # --- protocol ---------------------------------------------------------------------------
    def _send(self, kind: FloorKind, contest: Contest | None = None, score: float = 0.0) -> m.FloorEvent:
        now = self.now()
        uid = contest.claim_ids.get(self.robot, '') if contest else ''
        if contest and not uid and contest.decision is not None:
            uid = contest.decision.utterance_id
        # Stamp and score as peers will read them: the grant race and the claim ranking compare our
        # own values with theirs, and each robot must rank the same numbers.
        ev = m.FloorEvent(kind=kind, robot=self.robot, utterance_id=uid,
                          utterance_start=contest.start if contest else 0.0,
                          utterance_end=contest.end if contest else 0.0, score=m.as_float32(score),
                          lease_until=now + self.cfg.lease_s if kind in (FloorKind.GRANT, FloorKind.RENEW) else now,
                          sequence=next(self.seq), stamp=m.as_stamped(now))
        self.publish('/conversation/floor', ev)
        return ev

    def _contest_for(self, start: float, end: float, create: bool = True) -> Contest | None:
        probe = m.AddresseeEstimate('', '', [], [], '', utterance_start=start, utterance_end=end)
        for c in self.contests:
            if c.absorbed and not mostly_within(start, end, c.start, c.end):
                # What we talked on over (a listener response, a fragment hearing took back) is no
                # turn; a longer one that contains it (the person's own utterance around a fragment,
                # "mm-hmm" and then a question) is one of its own.
                continue
            other = m.AddresseeEstimate('', '', [], [], '', utterance_start=c.start, utterance_end=c.end)
            if same_turn(probe, other):
                c.start, c.end = min(c.start, start), max(c.end, end)
                return c
        if not create:
            return None
        c = Contest(start, end, created=self.now())
        self.contests.append(c)
        self.contests = self.contests[-32:]
        return c

    def on_estimate(self, est: m.AddresseeEstimate) -> None:
        if est.robot != self.robot:
            return
        if not est.fused:
            # Local estimate: claim if this turn may be ours (named, or the group).
            p_me, p_group = est.probability(self.robot), est.probability(GROUP)
            if p_me + p_group < 0.2:
                return
            c = self._contest_for(est.utterance_start, est.utterance_end)
            if c.absorbed:
                return
            c.claim_ids[self.robot] = est.utterance_id
            busy = self.speech is not None and self.speech.speaking
            score = p_me + p_group * group_share(self.me, self.robots, est, busy, self.last_spoke_at, self.now())
            c.claims[self.robot] = self._send(FloorKind.CLAIM, c, score).score
            return
        self.undecided = [x for x in self.undecided if not mostly_within(x[0], x[1], est.utterance_start,
                                                                         est.utterance_end)]
        c = self._contest_for(est.utterance_start, est.utterance_end)
        previous = c.decision
        if previous is not None and c.owner is not None and not c.absorbed and not c.granted \
                and previous.utterance_id != est.utterance_id and est.decision != previous.decision \
                and ((c.owner == '' and est.decision != OTHERS) or _longer(est, previous)):
            # Another utterance heard in the same span decides: one for someone over one for nobody (a
            # fragment beside a real turn), and the longer-heard version over a fragment of its start.
            self.stats['turns decided again (another utterance, same span)'] += 1
            if c in self.queue:
                self.queue.remove(c)
            c.owner = None
        c.decision = est
        c.claim_ids.setdefault(self.robot, est.utterance_id)
        self._resolve(c)

    def _resolve(self, c: Contest) -> None:
        d = c.decision
        if d is None or c.owner is not None:
            return
        if d.decision in self.names:
            c.owner = d.decision
        elif d.decision == GROUP:
            if not c.claims:
                c.owner = min(self.names)   # nobody claimed: deterministic fallback so someone answers
            else:
                c.owner = max(c.claims, key=lambda r: (round(c.claims[r], 6), [-ord(ch) for ch in r]))
        else:
            c.owner = ''
        if c.owner == self.robot:
            self.stats['turns won'] += 1
            self.queue.append(c)
            self._grant_if_free()

    def on_floor(self, ev: m.FloorEvent) -> None:
        now = self.now()
        if ev.kind == FloorKind.CLAIM:
            if ev.robot == self.robot:
                return
            c = self._contest_for(ev.utterance_start, ev.utterance_end)
            c.claims[ev.robot] = ev.score
            c.claim_ids[ev.robot] = ev.utterance_id
            if c.decision is not None and c.owner is None:
                self._resolve(c)
            return
        if ev.robot == self.robot:
            return
        if ev.kind in (FloorKind.GRANT, FloorKind.RENEW):
            if ev.lease_until < now:
                return self.drop('expired floor lease', ev.robot)
            if ev.kind == FloorKind.GRANT and self.holder and self.holder.robot == self.robot:
                # Both granted themselves: the later grant (ties: larger name) yields.
                mine = self.holder.granted_at
                if (ev.stamp, ev.robot) < (mine, self.robot):
                    self._yield_to(ev)
                return
            if self.holder is None or self.holder.robot != self.robot:
                self.holder = Holder(ev.robot, ev.lease_until, ev.stamp, ev.utterance_id)
        elif ev.kind == FloorKind.RELEASE:
            if self.holder and self.holder.robot == ev.robot:
                self.holder = None
                self._grant_if_free()

    def _yield_to(self, ev: m.FloorEvent) -> None:
        self.stats['grant races lost'] += 1
        if self.my_grant is not None:
            self.my_grant.granted = False
            self.queue.insert(0, self.my_grant)
        self.my_grant = None
        self.publish('speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, stamp=self.now()))
        self.holder = Holder(ev.robot, ev.lease_until, ev.stamp, ev.utterance_id)

    def _floor_free(self, now: float) -> bool:
        if self.holder is None:
            return True
        if self.holder.robot == self.robot:
            return self.my_grant is None
        if self.holder.lease_until < now:
            self.stats['peer leases expired'] += 1
            self.holder = None
            return True
        return False

    def _someone_talking(self, now: float) -> bool:
        for uid, seen in list(self.open_speech.items()):
            if now - seen > OPEN_SPEECH_LOST_S:
                del self.open_speech[uid]
        return bool(self.open_speech)

    def _grant_if_free(self) -> None:
        now = self.now()
        if not self.queue or not self._floor_free(now):
            return
        if self._someone_talking(now) and now - self.queue[0].end < TALKING_HOLD_MAX_S:
            self.stats['grant held: a person is talking'] += 1
            return
        if self._peers_speaking(now):
            # A peer is audibly speaking whatever the protocol says (a RELEASE or lease not seen yet).
            self.stats['grant held: a peer is speaking'] += 1
            return
        if self.interruption is not None and not self.interruption.decided:
            return
        self.undecided = [x for x in self.undecided if now - x[2] < DECISION_WAIT_S]
        head = self.queue[0]
        if any(mostly_within(start, end, head.start, head.end) or mostly_within(head.start, head.end, start, end)
               for start, end, _ in self.undecided):
            self.stats['grant held: another utterance of the turn is being decided'] += 1
            return
        c = self.queue.pop(0)
        if now - c.end > 5.0:
            self.stats['turns abandoned (floor busy too long)'] += 1
            return self._grant_if_free()
        c.granted = True
        c.talked_over = frozenset(self.open_speech) - set(c.claim_ids.values())
        if c.talked_over:
            self.stats['grants over a person talking (waited long enough)'] += 1
        self.my_grant = c
        self.spoke_since_grant = False
        self.turn_reported = False
        self.last_renew = now
        grant = self._send(FloorKind.GRANT, c)
        # Our grant time as peers read it: the race between two GRANTs compares the two.
        self.holder = Holder(self.robot, grant.lease_until, grant.stamp, c.claim_ids.get(self.robot, ''))

    def _release(self) -> None:
        if self.holder is not None and self.holder.robot == self.robot:
            self._send(FloorKind.RELEASE, self.my_grant)
            self.holder = None
        self.my_grant = None
        self.turn_reported = False
        self._grant_if_free()

    # --- speech and dialogue ----------------------------------------------------------------
    def on_speech_state(self, state: m.SpeechState) -> None:
        prev = self.speech
        self.speech = state
        now = self.now()
        if state.speaking:
            self.last_spoke_at = now
            if self.my_grant is not None:
                self.spoke_since_grant = True
            elif self.holder is not None and self.holder.robot != self.robot and self.holder.lease_until >= now:
                # Speech without the floor would talk over another robot: stop it.
                self.stats['speech without floor cancelled'] += 1
                self.publish('speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, state.speech_id, stamp=now))
        if prev is not None and prev.speaking and not state.speaking and state.cancelled:
            # The cancelled state carries how far the act got; the earlier one its text if this lacks it.
            self.resume = state if state.text else prev
        self._stop_talking_over_a_peer(now)

    def _peers_speaking(self, now: float) -> dict[str, m.SpeechState]:
        return {name: state for name, (state, seen) in self.peer_speech.items()
                if state.speaking and now - seen <= PEER_STATE_STALE_S}

    def on_peer_speech(self, state: m.SpeechState) -> None:
        if not isinstance(state, m.SpeechState) or state.robot not in self.names or state.robot == self.robot:
            return self.drop('bad peer speech state', repr(state)[:80])
        self.peer_speech[state.robot] = (state, self.now())
        self._stop_talking_over_a_peer(self.now())

    def _stop_talking_over_a_peer(self, now: float) -> None:
        """Robots never talk over each other, whatever the floor protocol believes (a lost RELEASE, a
        lease misjudged under load): of two robots speaking at once, the one that started later (ties:
        the larger name) stops at once and queues its turn behind the other."""
        mine = self.speech
        if mine is None or not mine.speaking or mine.speech_id == self._stopped_over_peer:
            return
        for name, state in self._peers_speaking(now).items():
            if (state.started, name) < (mine.started, self.robot):
                self._stopped_over_peer = mine.speech_id
                self.stats['speech over a peer cancelled'] += 1
                self.publish('speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, mine.speech_id, stamp=now))
                if self.my_grant is not None:
                    self.my_grant.granted = False
                    self.queue.insert(0, self.my_grant)
                    self.my_grant = None
                self.resume = None          # the floor is the peer's: nothing to pick up after it
                self.holder = Holder(name, now + self.cfg.lease_s, state.started)
                return

    def on_speech_command(self, cmd: m.SpeechCommand) -> None:
        # Speech state carries only the words played so far: a resumed act needs the rest as well.
        if cmd.action == m.SpeechAction.SAY:
            self.act_text = (cmd.speech_id, cmd.text)
        elif cmd.action == m.SpeechAction.APPEND and cmd.speech_id == self.act_text[0]:
            self.act_text = (cmd.speech_id, f'{self.act_text[1]} {cmd.text}'.strip())

    def on_turn(self, turn: m.DialogueTurn) -> None:
        # The dialogue publishes our turn when the reply has been spoken: the floor is free again.
        if turn.speaker != self.robot or self.my_grant is None:
            return
        if self.interruption is None:
            self._release()
        else:
            # A "mm-hmm" over our last words, or a false interruption we may resume after: decide first.
            self.turn_reported = True
            self.stats['releases waiting for a barge-in decision'] += 1

    def _release_if_reported(self) -> None:
        """The barge-in decision is in: release the floor if the dialogue already reported our turn."""
        speaking = self.speech is not None and self.speech.speaking
        if self.turn_reported and self.my_grant is not None and not speaking:
            self._release()

    # --- barge-in ---------------------------------------------------------------------------
    def on_utterance(self, u: m.Utterance) -> None:
        now = self.now()
        if u.is_final:
            self.open_speech.pop(u.utterance_id, None)
            if u.transcript.strip() and not withdrawn(u):
                self.undecided = (self.undecided + [(u.start, u.end, now)])[-16:]
        else:
            self.open_speech[u.utterance_id] = now
            if len(self.open_speech) > 16:
                self.open_speech.pop(min(self.open_speech, key=self.open_speech.get))
        speaking = self.speech is not None and self.speech.speaking
        intr = self.interruption
        if intr is None:
            if not speaking or u.is_final:
                return
            if u.end < self.speech.started:
                # A late partial of speech that ended before we began: nobody is talking over us.
                self.stats['barge-in ignored (ended before our speech)'] += 1
                return
            if self.my_grant is not None and u.utterance_id in self.my_grant.talked_over:
                self.stats['barge-in ignored (someone we chose to talk over)'] += 1
                return
            self.interruption = intr = Interruption(u.utterance_id, u.start, speech=self.speech)
            self.publish('speech/command', m.SpeechCommand(m.SpeechAction.DUCK, self.speech.speech_id, stamp=now))
            self.stats['barge-in onsets'] += 1
        if u.utterance_id != intr.utterance_id:
            return
        if withdrawn(u):
            # Hearing took it back (too short, or our own voice after all): nothing to yield to.
            intr.decided = True
            return self._finish_interruption(intr, u, text_cues('', {}), now)
        heard = u.end - u.start
        words = text_cues(u.transcript, {r: [r] for r in self.names})
        backchannel = max(u.backchannel_probability, words.backchannel_like)
        intr.leaned_backchannel = max(intr.leaned_backchannel, backchannel)
        if not intr.decided and (heard >= self.barge.decide_after_s or u.is_final):
            p_stop = 1.0 - backchannel
            if words.interrupting:
                # "Wait", "sorry", "what...", "can you...", our name: an interruption. Other words over
                # our voice may be its residue garbling a "mm-hmm": they wait for acoustics or more speech.
                p_stop = max(p_stop, 0.95)
            # A sequential test: stop early only when sure, later on the even odds.
            early = heard < self.barge.decide_after_s + EARLY_WINDOW_S and not u.is_final
            threshold = self.barge.early_stop_threshold if early else self.barge.stop_threshold
            # Speech still going on after give_up_after_s is talking over us, unless hearing still
            # takes it for a listener response (our voice's residue can draw out a "yeah"): then it
            # gets until it is clearly longer than one. Once it has ended (the final), only an
            # utterance clearly longer than a listener response is.
            clearly_longer = heard >= self.barge.give_up_after_s * LONGER_THAN_BACKCHANNEL
            going_on = not u.is_final and heard >= self.barge.give_up_after_s and backchannel <= 0.5
            if p_stop >= threshold - FLOAT32_SLACK:
                self._stop_for(intr, now)
            elif (clearly_longer or going_on) and not words.backchannel_like:
                self._stop_for(intr, now)
            elif u.is_final or clearly_longer:
                intr.decided = True
        if u.is_final:
            self._finish_interruption(intr, u, words, now)

    def _stop_for(self, intr: Interruption, now: float) -> None:
        intr.decided = True
        intr.stopped = True
        self.stats['barge-in stops'] += 1
        self.publish('speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, '', stamp=now))

    def _finish_interruption(self, intr: Interruption, u: m.Utterance, words, now: float) -> None:
        self.interruption = None
        # No words at all (a cough, or words hearing could not tell from our residue), or a few words
        # that neither ask nor call anyone ("mm-hmm" garbled into "same thing"): a sound over our
        # voice, not a turn to answer.
        no_turn = words.words == 0 or self._listener_response(u, words, intr.leaned_backchannel)
        if not intr.stopped:
            self.stats['barge-in kept (backchannel)'] += 1
            if no_turn:
                self._absorb(u)
            self.publish('speech/command', m.SpeechCommand(m.SpeechAction.UNDUCK, stamp=now))
            return self._release_if_reported()
        if self.resume is not None and not self._someone_talking(now) and no_turn:
            # Pick up where we were (unless someone has started talking meanwhile: the floor is theirs).
            self._absorb(u)
            if words.words:
                self.stats['short remarks talked on over'] += 1
            else:
                self.stats['false interruptions resumed'] += 1
            self.turn_reported = False       # the resumed act reports a turn of its own
            self._resume_speech(self.resume, now)
            self.resume = None
            return
        self.resume = None
        answered = self.my_grant
        if answered is not None:
            self._release()
            if intr.utterance_id in answered.claim_ids.values():
                self._reopen(answered, u)

    def _reopen(self, c: Contest, u: m.Utterance) -> None:
        """The person we answered was not done: their own utterance went on over our reply (a pause
        mid-sentence, or partials that stalled while hearing lagged) and stopped it. The whole turn is
        still to be answered: it is decided again on the estimate of all of it."""
        self.stats['turns reopened (the person was not done)'] += 1
        c.granted, c.owner = False, None
        if c.decision is not None and c.decision.utterance_end >= u.end - 0.05:
            self._resolve(c)          # that estimate came before the final reached us

    def _listener_response(self, u: m.Utterance, words, leaned_backchannel: float = 0.0) -> bool:
        """Heard over our voice, about as long as a backchannel, and nothing in the words that asks,
        calls a robot or cuts in: a listener response whatever ASR made of it."""
        short = u.end - u.start < self.barge.give_up_after_s * LONGER_THAN_BACKCHANNEL
        few = words.words <= LISTENER_RESPONSE_MAX_WORDS or leaned_backchannel >= LEANED_BACKCHANNEL
        return (short and few and not words.interrupting
                and not words.request and not words.group
                and not any(nc.vocative or nc.mention for nc in words.names.values())
                and not THANKS.match(u.transcript.strip().lower()))

    def _absorb(self, u: m.Utterance) -> None:
        c = self._contest_for(u.start, u.end)
        c.owner, c.absorbed = '', True
        if c in self.queue:
            self.queue.remove(c)

    def _resume_speech(self, state: m.SpeechState, now: float) -> None:
        """Say the act again from the start of the sentence it was cut in."""
        text = self.act_text[1] if self.act_text[0] == state.speech_id else state.text
        said = len(state.text.split())
        cut = sum(len(w) + 1 for w in text.split()[:said])
        starts = [i + 1 for i, ch in enumerate(text[:cut]) if ch in '.!?']
        rest = text[(starts[-1] if starts else 0):].strip()
        if not rest:
            return self._release() if self.my_grant is not None else None
        self.publish('speech/command', m.SpeechCommand(
            m.SpeechAction.SAY, f'{state.speech_id}-resumed', rest, state.kind, True, state.in_reply_to,
            state.reply_to_start, state.reply_to_end, stamp=now))

    # --- timer ------------------------------------------------------------------------------
    def tick(self) -> None:
        now = self.now()
        if self.my_grant is not None:
            speaking = self.speech is not None and self.speech.speaking
            # Renew while the grant lasts (speaking, or between a filler and the reply): a crashed
            # robot stops renewing and loses the floor after lease_s.
            if now - self.last_renew >= self.cfg.heartbeat_s:
                self.last_renew = now
                self.holder.lease_until = now + self.cfg.lease_s
                self._send(FloorKind.RENEW, self.my_grant)
            granted_at = self.holder.granted_at if self.holder else now
            if not speaking and not self.spoke_since_grant and now - granted_at > 4.0:
                self.stats['grants never spoken'] += 1
                self._release()
            elif not speaking and self.spoke_since_grant and self.interruption is None \
                    and now - self.last_spoke_at > IDLE_RELEASE_S:
                self.stats['released after idle'] += 1
                self._release()   # the dialogue never reported its turn: don't hold the floor for ever
        if self.interruption is not None and now - self.interruption.onset > 6.0:
            self.interruption = None     # the final never came
            self._release_if_reported()
        self._grant_if_free()
        # Forget old contests.
        self.contests = [c for c in self.contests if now - c.created < 30.0]

    def diagnostics(self):
        d = super().diagnostics()
        d['holder'] = self.holder.robot if self.holder else ''
        d['queued turns'] = str(len(self.queue))
        return d
