"""The dialogue agent: answers the utterances floor control grants this robot, sentence by sentence.

Contract with floor control (voice_robot.conversing.floor): a FloorEvent GRANT naming this robot asks it
to answer utterance ``utterance_id`` (the person's whole turn spans utterance_start..utterance_end).
The agent then sends SpeechCommand SAY (kind REPLY, in_reply_to and the span copied) with the first
sentence as soon as it exists, APPENDs the following ones and marks the last final.

To hide language-model latency the reply is prepared speculatively as soon as this robot's fused
addressee estimate says the utterance is for it (or for the robots as a group), and spoken only on
GRANT; another robot's GRANT discards it. When no sentence is ready ``filler_after_s`` after the GRANT
a short filler is said first. A cancelled speech act (barge-in) stops the reply. When a reply act
ends the robot publishes a DialogueTurn with the words actually spoken, which, with the fused
estimates of every robot, feeds the shared conversation memory rendered into the prompt.

Gestures come only from the model's gesture tool calls and only from ``allowed_gestures``; anything
else is refused and counted, so nothing a model says can command arbitrary motion.
"""
from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.config import DialogueConfig
from voice_robot.conversing.llm import (FALLBACK_SENTENCE, GESTURE_TOOL, ChatBackend, ReplyHandle, StaticReply,
                                        format_line, gesture_tools, make_backend)
from voice_robot.conversing.memory import ConversationMemory
from voice_robot.pipeline import Stage

MAX_REMEMBERED = 256          # utterances / estimates / speech acts kept for lookups
NOT_HEARD = 'Sorry, I did not catch that. Could you say it again?'


@dataclass
class Reply:
    """One answer to one human turn, from preparation to the end of its speech."""
    utterance_id: str
    start: float
    end: float
    text: str                       # what the person said (the prompt's newest line)
    speaker: str                    # the person's voice id ('' unknown)
    addressed_as: str               # this robot's name or 'robots'
    handle: ReplyHandle
    prepared_at: float
    granted_at: float | None = None
    speech_id: str = ''
    filler_id: str = ''
    said: bool = False              # the SAY of the current speech act has been sent
    acts: int = 0                   # speech acts started for this reply (a long pause ends one)
    final_sent: bool = False
    sentences: list[str] = field(default_factory=list)
    stopped: bool = False           # cancelled (barge-in, superseded, another robot's floor)
    turn_published: bool = False
    spoken: list[str] = field(default_factory=list)    # what each finished act actually said
    first_started: float | None = None                  # play time of the reply's first audio
    first_speech_id: str = ''

    def matches(self, utterance_id: str, start: float, end: float) -> bool:
        if utterance_id and utterance_id == self.utterance_id:
            return True
        shorter = min(self.end - self.start, end - start)
        if shorter <= 0:
            return False
        return (min(self.end, end) - max(self.start, start)) / shorter >= 0.5


class DialogueStage(Stage):
    name = 'dialogue'
    outputs = ('speech/command', 'motion/request', '/conversation/turns')

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], config: DialogueConfig,
                 llm: ChatBackend | None = None, pace_llm: bool = True):
        """``pace_llm``: while a granted reply is still being generated, each poll blocks up to one poll
        period of wall time, so that in the eval a remote model's latency costs simulated time (sim
        time cannot run ahead of the network). A ROS node passes False (its clock runs on its own)."""
        super().__init__(robot.name)
        self.spec = robot
        self.robots = list(robots)
        self.config = config
        self.llm = llm if llm is not None else make_backend(config.llm, robot.name)
        self.pace_llm = pace_llm
        self.memory = ConversationMemory(config.memory_turns)
        self._tools = gesture_tools(config.allowed_gestures)
        self._utterances: OrderedDict[str, m.Utterance] = OrderedDict()
        self._estimates: OrderedDict[str, m.AddresseeEstimate] = OrderedDict()
        self._by_speech_id: OrderedDict[str, Reply] = OrderedDict()
        self._prepared: Reply | None = None
        self._reply: Reply | None = None
        self._other_turns: OrderedDict[str, bool] = OrderedDict()
        self._ids = itertools.count(1)
        self._filler_index = 0

    # --- wiring ------------------------------------------------------------------------------
    def inputs(self):
        return {'/conversation/floor': self.on_floor,
                '/conversation/addressee': self.on_addressee,
                'hearing/utterances': self.on_utterance,
                '/conversation/turns': self.on_turn,
                'speech/state': self.on_speech_state}

    def timers(self):
        return [(self.config.poll_period_s, self.tick)]

    def close(self) -> None:
        for reply in (self._prepared, self._reply):
            if reply is not None:
                reply.handle.cancel()
        self.llm.close()

    def diagnostics(self):
        values = super().diagnostics()
        values.update({f'llm {k}': str(v) for k, v in sorted(self.llm.stats.items())})
        return values

    @property
    def persona(self) -> str:
        template = self.spec.persona or self.config.persona
        # Personas are free text: only the {name} placeholder is filled, other braces stay as written.
        return template.replace('{name}', self.spec.name.capitalize())

    # --- inputs ------------------------------------------------------------------------------
    def on_utterance(self, msg) -> None:
        if not isinstance(msg, m.Utterance) or not isinstance(msg.transcript, str) or not msg.utterance_id:
            return self.drop('bad utterance', type(msg).__name__)
        if not (_finite(msg.start, msg.end)) or msg.end < msg.start:
            return self.drop('bad utterance times', f'{msg.start}..{msg.end}')
        self._remember(self._utterances, msg.utterance_id, msg)

    def on_turn(self, msg) -> None:
        if not isinstance(msg, m.DialogueTurn) or not isinstance(msg.text, str) or not _finite(msg.start, msg.end):
            return self.drop('bad dialogue turn', type(msg).__name__)
        self.memory.add_turn(msg)

    def on_addressee(self, msg) -> None:
        if not isinstance(msg, m.AddresseeEstimate) or not isinstance(msg.decision, str):
            return self.drop('bad addressee estimate', type(msg).__name__)
        if not _finite(msg.utterance_start, msg.utterance_end) or msg.utterance_end < msg.utterance_start:
            return self.drop('bad addressee times', f'{msg.utterance_start}..{msg.utterance_end}')
        if not msg.fused:
            return            # local estimates are votes for the fusion, not decisions
        self.memory.add_estimate(msg)
        if msg.robot != self.robot:
            return            # other robots' fusions feed the memory; decisions for us are our own
        self._remember(self._estimates, msg.utterance_id, msg)
        if msg.decision in (self.robot, m.GROUP):
            self._prepare(msg)
        elif self._prepared is not None and self._prepared.matches(msg.utterance_id, msg.utterance_start,
                                                                   msg.utterance_end):
            self._discard_prepared('addressed elsewhere')

    def on_floor(self, msg) -> None:
        if not isinstance(msg, m.FloorEvent) or not isinstance(msg.robot, str):
            return self.drop('bad floor event', type(msg).__name__)
        try:
            kind = m.FloorKind(msg.kind)
        except ValueError:
            return self.drop('bad floor kind', str(msg.kind))
        if not _finite(msg.utterance_start, msg.utterance_end):
            return self.drop('bad floor times', f'{msg.utterance_start}..{msg.utterance_end}')
        if kind != m.FloorKind.GRANT:
            return
        if msg.robot == self.robot:
            self._grant(msg)
            return
        # Another robot answers: whatever we prepared is not ours to say.
        if self._prepared is not None:
            self._discard_prepared('floor granted to ' + msg.robot)
        reply = self._reply
        if reply is not None and not reply.said and reply.matches(msg.utterance_id, msg.utterance_start,
                                                                  msg.utterance_end):
            self._stop(reply, 'floor granted to ' + msg.robot, cancel_speech=True)

    def on_speech_state(self, msg) -> None:
        if not isinstance(msg, m.SpeechState) or not isinstance(msg.speech_id, str) or not isinstance(msg.text, str):
            return self.drop('bad speech state', type(msg).__name__)
        if msg.robot and msg.robot != self.robot:
            return self.drop('speech state of another robot', msg.robot)
        reply = self._by_speech_id.get(msg.speech_id)
        if reply is None:
            self._other_act(msg)
            return
        if msg.speaking:
            if msg.speech_id == reply.speech_id and reply.first_started is None and msg.started > 0:
                reply.first_started = msg.started
            return
        if msg.cancelled:
            # Barge-in (or floor control) stopped us: stop generating, remember what was really said.
            if msg.speech_id == reply.speech_id:
                reply.spoken.append(msg.text)
            self._stop(reply, 'speech cancelled', cancel_speech=False)
            self._publish_turn(reply, msg.stamp)
            return
        if msg.speech_id != reply.speech_id:
            return            # the filler ended; the reply follows
        reply.spoken.append(msg.text)
        reply.said, reply.speech_id = False, ''       # that act is over: more sentences need a new act
        if reply.final_sent or reply.handle.done:
            self._publish_turn(reply, msg.stamp)
            if self._reply is reply:
                self._reply = None
        else:
            self.stats['reply acts ended waiting for the model'] += 1

    def _other_act(self, msg: m.SpeechState) -> None:
        """A speech act the dialogue did not start but that continues one of its replies (floor control
        resumes a reply after a false interruption): its end is a turn of ours too."""
        if msg.speaking or msg.cancelled or msg.kind != m.SpeechKind.REPLY or not msg.in_reply_to:
            return
        if not any(r.utterance_id == msg.in_reply_to for r in self._by_speech_id.values()):
            return
        if msg.speech_id in self._other_turns:
            return
        self._other_turns[msg.speech_id] = True
        while len(self._other_turns) > MAX_REMEMBERED:
            self._other_turns.popitem(last=False)
        self._emit_turn(' '.join(msg.text.split()), msg.started if msg.started > 0 else msg.stamp, msg.stamp,
                        msg.speech_id, self._speaker_of(msg.in_reply_to))

    def tick(self) -> None:
        reply = self._reply
        if reply is None or reply.stopped:
            return
        if self.pace_llm and not reply.handle.done:
            reply.handle.wait(self.config.poll_period_s)
        self._pump(reply)

    # --- replies -----------------------------------------------------------------------------
    def _prepare(self, estimate: m.AddresseeEstimate) -> None:
        if self._reply is not None and not self._reply.stopped and \
                self._reply.matches(estimate.utterance_id, estimate.utterance_start, estimate.utterance_end):
            return            # already answering this turn
        text = self._turn_text(estimate.utterance_id, estimate.utterance_start, estimate.utterance_end)
        prepared = self._prepared
        if prepared is not None and prepared.matches(estimate.utterance_id, estimate.utterance_start,
                                                     estimate.utterance_end) and prepared.text == text:
            prepared.end = max(prepared.end, estimate.utterance_end)
            return
        if prepared is not None:
            self._discard_prepared('utterance changed')
        self._prepared = self._start_reply(estimate.utterance_id, estimate.utterance_start, estimate.utterance_end,
                                           text, estimate.voice_id, estimate.decision)
        self.stats['replies prepared'] += 1

    def _grant(self, event: m.FloorEvent) -> None:
        current = self._reply
        if current is not None and not current.stopped and current.matches(event.utterance_id, event.utterance_start,
                                                                           event.utterance_end):
            return            # a repeated GRANT for the turn we are answering
        if current is not None and not current.stopped:
            self._stop(current, 'superseded by a new turn', cancel_speech=True)
        text = self._turn_text(event.utterance_id, event.utterance_start, event.utterance_end)
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.matches(event.utterance_id, event.utterance_start, event.utterance_end) \
                and prepared.text == text:
            reply = prepared
            reply.utterance_id = event.utterance_id or reply.utterance_id
            self.stats['prepared replies used'] += 1
        else:
            if prepared is not None:
                prepared.handle.cancel()
                self.stats['prepared replies discarded'] += 1
            estimate = self._estimate_for(event.utterance_id, event.utterance_start, event.utterance_end)
            reply = self._start_reply(event.utterance_id, event.utterance_start, event.utterance_end, text,
                                      self._voice_of(event, estimate), estimate.decision if estimate else self.robot)
        reply.start, reply.end = event.utterance_start, event.utterance_end
        reply.granted_at = self.now()
        reply.speech_id = self._new_id('reply')
        self._remember(self._by_speech_id, reply.speech_id, reply)
        self._reply = reply
        self.stats['replies granted'] += 1
        self._pump(reply)

    def _start_reply(self, utterance_id: str, start: float, end: float, text: str, speaker: str,
                     addressed_as: str) -> Reply:
        if text:
            handle = self.llm.start(self._messages(text, speaker, addressed_as, (start, end)), tools=self._tools,
                                    clock=self.now)
        else:
            self.stats['replies without transcript'] += 1
            handle = StaticReply([NOT_HEARD])
        return Reply(utterance_id, start, end, text, speaker, addressed_as or self.robot, handle, self.now())

    def _pump(self, reply: Reply) -> None:
        """Send what the model has produced; a filler when it is late."""
        now = self.now()
        sentences = reply.handle.poll()
        for call in reply.handle.poll_tool_calls():
            self._gesture(call)
        done = reply.handle.done
        if not done and reply.granted_at is not None and now - reply.granted_at > self.config.llm.timeout_s + 1.0:
            # The backend should have given up by now: never leave a person waiting, never hold the floor.
            reply.handle.cancel()
            self.stats['replies abandoned (watchdog)'] += 1
            done = True
            if not sentences and reply.acts == 0 and not reply.said:
                sentences = [FALLBACK_SENTENCE]
        if not reply.said and not sentences and not done and reply.granted_at is not None:
            if not reply.filler_id and reply.acts == 0 and now - reply.granted_at >= self.config.filler_after_s \
                    and self.config.fillers:
                self._say_filler(reply)
        for index, sentence in enumerate(sentences):
            last = done and index == len(sentences) - 1
            reply.sentences.append(sentence)
            if not reply.said:
                if not reply.speech_id:
                    reply.speech_id = self._new_id('reply')
                    self._remember(self._by_speech_id, reply.speech_id, reply)
                self._command(m.SpeechAction.SAY, reply, reply.speech_id, sentence, m.SpeechKind.REPLY, final=last)
                reply.first_speech_id = reply.first_speech_id or reply.speech_id
                reply.said = True
                reply.acts += 1
                self.stats['replies spoken'] += 1
            else:
                self._command(m.SpeechAction.APPEND, reply, reply.speech_id, sentence, m.SpeechKind.REPLY, final=last)
            reply.final_sent = last
        if done and reply.said and not reply.final_sent:
            self._command(m.SpeechAction.APPEND, reply, reply.speech_id, '', m.SpeechKind.REPLY, final=True)
            reply.final_sent = True
        if done and not reply.said and not reply.stopped:
            # The model is done and no act is playing (nothing to say at all, or the last act ended while
            # waiting for the model): the turn is over, let the floor go.
            if reply.acts == 0:
                self.stats['replies with nothing to say'] += 1
            self._publish_turn(reply, now)
            if self._reply is reply:
                self._reply = None

    def _say_filler(self, reply: Reply) -> None:
        fillers = self.config.fillers
        text = fillers[self._filler_index % len(fillers)]
        self._filler_index += 1
        reply.filler_id = self._new_id('filler')
        self._remember(self._by_speech_id, reply.filler_id, reply)
        self._command(m.SpeechAction.SAY, reply, reply.filler_id, text, m.SpeechKind.FILLER, final=True)
        self.stats['fillers'] += 1

    def _command(self, action: m.SpeechAction, reply: Reply, speech_id: str, text: str, kind: m.SpeechKind,
                 final: bool) -> None:
        self.publish('speech/command', m.SpeechCommand(
            action=action, speech_id=speech_id, text=text, kind=kind, final=final, in_reply_to=reply.utterance_id,
            reply_to_start=reply.start, reply_to_end=reply.end, stamp=self.now()))

    def _gesture(self, call) -> None:
        gesture = call.arguments.get('name') if isinstance(call.arguments, dict) else None
        if call.name != GESTURE_TOOL or not isinstance(gesture, str) or gesture not in self.config.allowed_gestures:
            self.stats['gestures refused'] += 1
            self._logger.warning(f'dialogue[{self.robot}] refused tool call {call.name!r} '
                                 f'{str(gesture)[:40]!r}: allowed gestures are {self.config.allowed_gestures}')
            return
        self.stats['gestures'] += 1
        self.publish('motion/request', m.MotionCommand(
            robot=self.robot, action=m.MotionAction.GESTURE, gesture=gesture,
            duration_s=self.config.gesture_duration_s, amplitude=0.5, stamp=self.now()))

    def _stop(self, reply: Reply, reason: str, cancel_speech: bool) -> None:
        if reply.stopped:
            return
        reply.stopped = True
        reply.handle.cancel()
        self.stats[f'replies stopped: {reason}'] += 1
        if cancel_speech:
            for speech_id in (reply.filler_id, reply.speech_id if reply.said else ''):
                if speech_id:
                    self.publish('speech/command', m.SpeechCommand(action=m.SpeechAction.CANCEL, speech_id=speech_id,
                                                                   stamp=self.now()))
        if self._reply is reply:
            self._reply = None

    def _discard_prepared(self, reason: str) -> None:
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared.handle.cancel()
            self.stats[f'prepared replies discarded: {reason}'] += 1

    def _publish_turn(self, reply: Reply, end: float) -> None:
        """The reply is over: tell everyone what was actually said (floor control also frees the floor).

        Published even when nothing was said (a TTS failure), so the floor is not held by silence."""
        if reply.turn_published:
            return
        reply.turn_published = True
        text = ' '.join(' '.join(part.split()) for part in reply.spoken if part and part.strip())
        start = reply.first_started or reply.granted_at or self.now()
        self._emit_turn(text, start, end if _finite(end) and end > 0 else self.now(),
                        reply.first_speech_id or reply.utterance_id, reply.speaker)

    def _emit_turn(self, text: str, start: float, end: float, turn_id: str, addressee: str) -> None:
        turn = m.DialogueTurn(speaker=self.robot, addressee=addressee or m.OTHERS, text=text, start=start,
                              end=max(start, end), utterance_id=turn_id, stamp=self.now())
        self.memory.add_turn(turn)
        self.stats['turns published'] += 1
        self.publish('/conversation/turns', turn)

    def _speaker_of(self, utterance_id: str) -> str:
        for reply in self._by_speech_id.values():
            if reply.utterance_id == utterance_id and reply.speaker:
                return reply.speaker
        return ''

    # --- prompt ------------------------------------------------------------------------------
    def _messages(self, text: str, speaker: str, addressed_as: str, span: tuple[float, float]) -> list[dict]:
        others = [r.name for r in self.robots if r.name != self.robot]
        gestures = ', '.join(self.config.allowed_gestures)
        context = (
            f'\n\nYou are the robot {self.robot}. '
            + (f'Other robots here: {", ".join(others)}. ' if others else '')
            + 'People are known by voice ids. Conversation lines look like "[speaker to addressee] words"; '
              '"robots" means the robots as a group. '
              'Answer the newest line. Reply only with what you say aloud: one to three short sentences, '
              'no lists, no markdown, no emojis.'
            + (f' When a gesture fits, call the gesture tool ({gestures}), and always answer in words too.'
               if gestures else ''))
        messages = [{'role': 'system', 'content': self.persona + context}]
        messages += self.memory.render(self.robot, exclude=span)
        messages.append({'role': 'user', 'content': format_line(speaker or 'someone', addressed_as or self.robot,
                                                                text)})
        return messages

    def _turn_text(self, utterance_id: str, start: float, end: float) -> str:
        """The person's whole turn: own final transcripts inside the span (of the same voice as the named
        utterance: someone talking over them is not part of the question), else the estimate's transcript."""
        parts = []
        named = self._utterances.get(utterance_id)
        voice = named.voice_id if named is not None else ''
        for u in sorted(self._utterances.values(), key=lambda u: u.start):
            inside = u.utterance_id == utterance_id or (u.end > start - 0.05 and u.start < end + 0.05 and end > start
                                                        and (not voice or not u.voice_id or u.voice_id == voice))
            if inside and u.transcript.strip():
                parts.append((u.is_final, u))
        finals = [u for final, u in parts if final]
        chosen = finals or [u for _, u in parts]
        if chosen:
            return ' '.join(' '.join(u.transcript.split()) for u in chosen)
        estimate = self._estimate_for(utterance_id, start, end)
        return ' '.join((estimate.transcript if estimate else '').split())

    def _estimate_for(self, utterance_id: str, start: float, end: float) -> m.AddresseeEstimate | None:
        if utterance_id in self._estimates:
            return self._estimates[utterance_id]
        best, best_overlap = None, 0.0
        for estimate in self._estimates.values():
            shorter = min(end - start, estimate.utterance_end - estimate.utterance_start)
            if shorter <= 0:
                continue
            overlap = (min(end, estimate.utterance_end) - max(start, estimate.utterance_start)) / shorter
            if overlap > best_overlap:
                best, best_overlap = estimate, overlap
        return best if best_overlap >= 0.5 else None

    def _voice_of(self, event: m.FloorEvent, estimate: m.AddresseeEstimate | None) -> str:
        if estimate is not None and estimate.voice_id:
            return estimate.voice_id
        utterance = self._utterances.get(event.utterance_id)
        return utterance.voice_id if utterance is not None else ''

    # --- helpers -----------------------------------------------------------------------------
    def _new_id(self, what: str) -> str:
        return f'{self.robot}-{what}-{next(self._ids)}'

    @staticmethod
    def _remember(store: OrderedDict, key: str, value) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > MAX_REMEMBERED:
            store.popitem(last=False)


def _finite(*values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False
