"""The hearing stage: microphone-array frames in, who speaks from where and what they said out.

Per 16 ms hop (STFT with nfft 512 at 16 kHz): echo cancellation of the robot's own voice on every
microphone, per-bin near-end evidence (``echo.NearEndDetector``) and a residual-echo post-filter; per
~64 ms block: DOA (on blocks that stand out from the noise floor, or every block with the noise-aware
``gevd`` estimator) and the multi-source tracker (a linear array reports the front image of each
source); per live track: a beam (MVDR or delay-and-sum, nulls toward the other talkers), VAD on the
beam, endpointing. An utterance opens when a tracked talker's beam has ``onset_ms`` of speech (first
partial at once: barge-in latency), gets acoustic backchannel estimates at 0.18 s and 0.3 s (with a
decode of the first words when it talks over this robot), partials with text from ``asr.min_partial_audio_s``
on (spaced out by ``asr.partial_growth``; only while this robot speaks, where they decide barge-ins,
unless ``asr.partials_while_idle``), and exactly one final after ``vad.min_silence_ms`` of
silence with transcript, voice id, end-of-turn and backchannel probabilities. The final's transcript
is decoded speculatively once the talker has paused ``asr.speculative_after_ms``, so a longer
silence (commas do not split sentences) does not delay it; a VAD blip shorter than the decode's pad
after that pause, or a partial decoded after it, needs no second decode.

Robot speech is never an utterance: the robot's own voice is cancelled and, while it plays, a segment
is a person's only if enough time-frequency bins stand out from the expected residual echo (it starts
where they first do) and its level envelope does not follow what the robot plays (the canceller's
residue keeps that envelope: its partials are held back while it does, its final is withdrawn);
words decoded over the robot's voice count only with ASR confidence
``asr.over_own_voice_min_confidence`` (the residue garbles a "mm-hmm" into random words), and a
partial's end is the last hop where the person stood out (the VAD stays busy on residue); a peer
robot's voice is recognised by direction (its bearing, and where its voice was heard before), by its
level envelope following what the peer plays (``/<peer>/speech/audio``) unless the peer's own hearing
heard a person then (``/<peer>/hearing/utterances``), and at the final by its enrolled voice. Such
segments are tagged with ``robot_name`` in ``audio/sources`` and counted ("robot speech suppressed").

Voice ids: an embedding joins a voice (``diarization.VoiceRegistry``) helped by the track's and the
direction's last voice; a voice just heard from elsewhere needs a clearer match, and segments shorter
than ``diarization.min_audio_s`` only borrow a voice. Peers' voices arrive on ``/voices/identities``.

ASR decodes run on the stage's worker (``Stage.offload``: a thread of the hearing node, a lane of its
own in eval), so hearing goes on with the audio while one runs; their words come back to the stage,
for the utterance if it is still open (partials) or to complete its final.

Models are loaded in the constructor (or shared through ``HearingModels`` when several robots run in
one process). Bad input is dropped with a counted reason; every buffer is bounded.
"""
from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.hearing import turn_cues
from voice_robot.hearing.asr import Recognizer, RobotNameMatcher, make_recognizer
from voice_robot.hearing.audio import BadAudio, FrameAssembler, RingBuffer, StreamingStft, check_chunk, db, resample
from voice_robot.hearing.beamforming import make_beamformer
from voice_robot.hearing.config import HearingConfig
from voice_robot.hearing.diarization import RobotVoices, VoiceRegistry
from voice_robot.hearing.doa import DoaEstimator, NoiseAwareDoa, NoiseFloor, wrap
from voice_robot.hearing.echo import (EchoCanceller, PeerVoiceCanceller, near_end_detector, ReferenceBuffer,
                                      band_mask, expected_residue_db)
from voice_robot.hearing.embedding import SpeakerEmbedder, make_embedder, reduce_background
from voice_robot.hearing.leakage import envelope_correlation
from voice_robot.hearing.segmenter import Endpointer, Segment, TalkerStream
from voice_robot.hearing.tracking import SourceTracker, Track
from voice_robot.hearing.vad import CHUNK, Vad, make_vad
from voice_robot.pipeline import Stage

OWN_VOICE_MIN_S = 0.4       # envelopes shorter than this correlate by chance (a "wait" with our voice)
# ... from this long on, a near-perfect follow is residue often enough to hold a partial back (a person
# over our voice reaches it in about 2 % of 0.2-0.4 s windows; residue that stops the robot, in most)
OWN_VOICE_EARLY_S = 0.2
OWN_VOICE_EARLY_CORRELATION = 0.9
OWN_LAG_HOPS = 2
REFERENCE_ONSET_GUARD_S = 0.12   # near-end evidence this soon after we start playing is our own onset
REFERENCE_ONSET_AFTER_S = 0.4    # ... after this much silence (a new act, not the next word)
BARGE_IN_PROGRESS_S = 0.1    # partials at least this often while someone talks over the robot
BARGE_IN_ASR_INTERVAL_S = 0.2   # re-decode this often while someone talks over the robot without words yet
EARLY_BACKCHANNEL_S = turn_cues.EARLY_WINDOWS_S     # acoustic backchannel estimates published at these ages
# ... while the robot is silent: no barge-in to decide, and the clean-render model reads 0.18 s
SILENT_EARLY_BACKCHANNEL_S = tuple(w for w in EARLY_BACKCHANNEL_S if w >= turn_cues.CLEAN_EARLY_WINDOW_S)
BARGE_IN_WORDS_FROM_S = 0.18    # barge-in decodes start with the estimate at this age (less audio rarely holds a word)
OWN_VOICE_CHECK_S = 0.18        # audio enough to tell whether an onset over our voice only follows it
MAX_PARTIAL_LAG_S = 0.3
LATE_REFERENCE_TOLERANCE_S = 0.001   # chunk and hop grids differ by rounding, not by lateness
# Fast conversational speech runs at about 4 words/s (6 syllables/s); ASR output denser than this over
# the robot's voice is its residue turned into a sentence.
MAX_WORDS_PER_S = 6.0
CUT_IN_BACKCHANNEL_P = 0.05   # a partial whose doubted words open like a cut-in ("sorry, ...")
YOUNG_SEGMENT_S = 0.3          # an utterance this young may still move to the track that hears it
# Two people close together take turns on one track (the tracker follows the sound across); a pause
# followed by sound from clearly elsewhere is the next talker, even when the pause is too short to end
# an utterance.
TALKER_CHANGE_PAUSE_S = 0.064
TALKER_CHANGE_DEG = 12.0       # the tracker's merge distance: closer bearings are one talker
TALKER_CHANGE_BLOCKS = 4       # DOA blocks on each side of the pause that must agree
WALKING_DEG_PER_S = 15.0       # a talker turning around the array this fast before the pause is moving
# Two people one behind the other share a bearing: across a pause too short to end an utterance, only
# the voice tells that the next talker took over. The embeddings of the speech on either side decide.
VOICE_CHANGE_PAUSE_S = 0.15    # shorter pauses are breaths inside one person's sentence
VOICE_CHANGE_BEFORE_S = 0.8    # speech needed on each side of the pause to describe a voice
VOICE_CHANGE_AFTER_S = 1.0
VOICE_CHANGE_CONTEXT_S = 2.0   # at most this much before the pause is embedded
VOICE_CHANGE_SPEECH_SHARE = 0.5   # VAD chunks that must be speech on each side (less: mostly silence)
# A peer robot that hears one talker end and another begin from elsewhere (two people in line as seen
# from here are apart as seen from there) marks where our one utterance may hold two voices: the voice
# test judges that instant as it judges a pause. The peer's next talker must come within PEER_TURN_GAP_S
# (its onset can lag in noise) from a bearing at least PEER_TURN_DEG away.
PEER_TURN_GAP_S = 1.0
PEER_TURN_DEG = 15.0
DIRECTION_HINT_DEG = 12.0      # a new utterance this close to a known voice's direction hints at it
ELSEWHERE_DEG = 25.0           # ... and one this far from where a voice was just heard is likely someone else
VOICE_PLACE_MEMORY_S = 60.0
BACKGROUND_GAP_S = 0.15       # the onset may start a little before the segment does: keep it out
BACKGROUND_MIN_S = 0.3         # less background than this describes it badly: embed as heard
NEARBY_VOICE_MIN_SIMILARITY = 0.4   # a weak check (other people mostly score 0.3-0.6): rules out clear clashes
REVERB_DECAY_DB_PER_S = 80.0   # 60 dB in 0.75 s: slower than most rooms ring down
EMBEDDING_LOG = 200          # recent utterance embeddings kept for diagnostics and analysis
CLOSED_SPANS_KEPT = 64       # recent finals whose spans bound how much they overlapped later ones
NOISE_LEARN_MARGIN_DB = 2.0  # gevd: blocks this close to the floor, ...
NOISE_LEARN_AFTER_SPEECH_S = 0.6   # ... this long after anyone spoke, are background
PEER_UTTERANCES_KEPT = 64    # recent utterances of each peer's hearing
PEER_LAG_HOPS = 8            # a peer's voice reaches us up to 128 ms after it is played (distance, reverberation)
PEER_PLAYING_GAP_S = 0.5    # a peer whose audio had energy this recently is still playing (pauses between words)


@dataclass
class HearingModels:
    """The heavy, stateless-per-call models; one set can serve several robots' stages."""
    vad: Vad
    embedder: SpeakerEmbedder | None
    recognizer: Recognizer
    robot_voices: RobotVoices | None

    @classmethod
    def load(cls, config: HearingConfig, robots: list[RobotSpec]) -> 'HearingModels':
        names = [n for r in robots for n in r.names()]
        vad = make_vad(config.vad.backend)
        embedder = make_embedder(config.embedder)
        recognizer = make_recognizer(config.asr, names)
        voices = RobotVoices(embedder, config.sample_rate)
        for r in robots:
            voices.enrol(r.name, r.voice)
        if config.diarization.background_reduction > 0:
            # The first call imports noisereduce (a second or more): at start-up, not on the first
            # utterance, where a real-time node would fall behind its microphones.
            quiet = np.full(int(0.3 * config.sample_rate), 1e-4, np.float32)
            reduce_background(quiet, quiet, config.sample_rate, config.diarization.background_reduction)
        return cls(vad, embedder, recognizer, voices)


@dataclass
class PeerUtterance:
    """What a peer's hearing published about one utterance (its latest partial or final)."""
    start: float
    end: float
    withdrawn: bool
    is_final: bool
    azimuth: float


@dataclass
class RobotSpeaking:
    speaking: bool = False
    since: float = -math.inf
    stopped: float = -math.inf


class HearingStage(Stage):
    name = 'hearing'
    outputs = ('audio/sources', 'hearing/utterances', '/voices/identities')

    def __init__(self, robot: RobotSpec, peers: list[RobotSpec], config: HearingConfig,
                 models: HearingModels | None = None):
        super().__init__(robot.name)
        if config.sample_rate != 16000:
            raise ValueError('the hearing stage runs at 16 kHz (silero VAD, Whisper and the embedders need it); '
                             f'hearing.sample_rate is {config.sample_rate}')
        self.spec = robot
        self.peers = [p for p in peers if p.name != robot.name]
        self.config = config
        self.sample_rate = config.sample_rate
        self.channels = robot.mic_array.channels
        self.nfft = config.doa.nfft
        self.hop = self.nfft // 2
        self.hop_s = self.hop / self.sample_rate
        self.block_hops = max(1, int(round(config.doa.block_s / self.hop_s)))
        self.models = models or HearingModels.load(config, [robot] + self.peers)
        choice = config.backchannel_model
        self.over_own_voice_models = (
            None if choice == 'logistic' else turn_cues.default_over_own_voice_model() if choice == 'bundled'
            else turn_cues.over_own_voice_models(str(turn_cues.OVER_OWN_VOICE_MODEL if choice == 'trees' else choice)))
        if choice not in ('bundled', 'logistic', 'trees') and self.over_own_voice_models is None:
            raise ValueError(f'hearing.backchannel_model: {choice} is no model bundle written by --fit-early '
                             '(see the warning above)')
        positions = robot.mic_positions_base()
        self._positions = positions
        d = config.doa
        if d.algorithm == 'gevd':
            self.doa = NoiseAwareDoa(positions, self.sample_rate, self.nfft, d.freq_range_hz, d.grid_step_deg,
                                     d.max_sources, d.secondary_ratio, d.min_separation_deg, d.min_excess_db)
        else:
            self.doa = DoaEstimator(positions, self.sample_rate, self.nfft, d.algorithm, d.freq_range_hz,
                                    d.grid_step_deg, d.max_sources, d.secondary_ratio, d.min_separation_deg)
        t = config.tracking
        self.tracker = SourceTracker(t.birth_blocks, t.death_s, t.gate_deg, t.process_noise_deg,
                                     t.measurement_noise_deg, t.merge_deg, t.tentative_death_s,
                                     self.block_hops * self.hop_s)
        self.beamformer = make_beamformer(config.beamformer.kind, positions, self.sample_rate, self.nfft,
                                          config.beamformer.diagonal_loading)
        e = config.echo
        self.echo = EchoCanceller(self.channels, self.hop, e.filter_taps, e.step, self.sample_rate,
                                  tuple(config.doa.freq_range_hz))
        self.near_end = near_end_detector(self.nfft // 2 + 1, self.sample_rate, self.hop_s, e.near_end_margin_db,
                                          e.near_end_decay_db_per_s, e.near_end_share, e.near_end_low_band_hz,
                                          e.near_end_low_share)
        self._near_hops: deque = deque(maxlen=int(round(2.0 / self.hop_s)))   # (stamp, near-end share)
        self._block_near = 0
        self._expected_residual_db = -200.0
        self._error_floor = NoiseFloor(rise_db_per_s=3.0)
        self.reference = ReferenceBuffer(self.sample_rate)
        self._own_played_until = math.inf     # end of our latest speech act once speech/state said so
        self.registry = VoiceRegistry(robot.name, config.diarization.same_voice_threshold,
                                      config.diarization.merge_threshold)
        names = {n: r.name for r in [robot] + self.peers for n in r.names()}
        self.name_matcher = RobotNameMatcher(names, config.asr.name_match_threshold)
        self._peer_bearings = {p.name: self.doa.fold(robot.bearing_to(np.r_[p.array_center_map()[:2], 0.0]))
                               for p in self.peers}
        self._robot_state: dict[str, RobotSpeaking] = {p.name: RobotSpeaking() for p in self.peers}
        # What the peers play (their speech/audio): a voice in the room whose envelope is known.
        self.peer_audio: dict[str, ReferenceBuffer] = {p.name: ReferenceBuffer(self.sample_rate) for p in self.peers}
        # One canceller per peer: its loudspeaker-to-array path is learned over all its speech acts.
        self.peer_echo: dict[str, PeerVoiceCanceller] = {
            p.name: PeerVoiceCanceller(self.channels, self.hop, e.peer_filter_taps, e.step, self.sample_rate,
                                       tuple(config.doa.freq_range_hz), e.own_echo_margin_db, e.near_end_margin_db,
                                       e.near_end_share, e.near_end_hops, e.near_end_decay_db_per_s,
                                       REVERB_DECAY_DB_PER_S, e.near_end_low_band_hz, e.near_end_low_share)
            for p in self.peers} if e.cancel_peers else {}
        self._peer_of_topic = {f'{p.ns}/speech/audio': p.name for p in self.peers}
        self._heard_peer_bearings: dict[str, list[float]] = {}
        self._last_speech_block = -math.inf
        self._peer_utterances: dict[str, dict[str, PeerUtterance]] = {}
        self.segment_log: deque = deque(maxlen=EMBEDDING_LOG)
        self._assembler = FrameAssembler(self.hop, self.sample_rate, self.channels, config.max_gap_s)
        self._stft = StreamingStft(self.nfft, self.channels)
        self._pending_hops: deque = deque()
        self._history = RingBuffer(max(self.block_hops * config.doa.context_blocks, int(config.history_s / self.hop_s)))
        self._block_frames: list[np.ndarray] = []
        self._block_echo = 0.0
        self._block_error = 0.0
        self._block_residual = 0.0
        self._aec_running = False
        self._reference_quiet_since: float | None = 0.0   # start of the current silence in what we play
        self._reference_onset = -1e9                       # when we last started playing after a silence
        self.noise_floor = NoiseFloor()
        self.streams: dict[int, TalkerStream] = {}
        self._utterance_count = 0
        self._last_identities = -math.inf
        self._band = band_mask(self.nfft // 2 + 1, self.sample_rate, config.doa.freq_range_hz)
        self.compute: Counter[str] = Counter()      # seconds of compute per part (diagnostics, bench)
        self.suppressed: list[tuple[str, float, float]] = []     # (robot, start, end) of robot segments
        self._latest_mic = -math.inf
        self._audio_lag_max = 0.0
        self._heard_until = -math.inf       # end of the last microphone hop processed
        self._echo_dominated = False
        self._echo_history: deque = deque(maxlen=3)
        self._frame_levels: deque = deque(maxlen=self.block_hops * config.doa.context_blocks)
        self._voice_directions: dict[str, tuple[float, float]] = {}
        self.embedding_log: list[tuple[str, float, float, np.ndarray]] = []
        self.voice_change_log: list[tuple[str, float, float, float]] = []   # (utterance, pause, cosine)
        self._withdrawn: deque = deque(maxlen=64)       # utterance ids published as withdrawn finals
        self._closed_spans: dict[str, tuple[float, float]] = {}   # recent finals' (start, end), bounded
        self._leak_floor = 10 ** (-20 / 10)

    # --- wiring ----------------------------------------------------------------------------------
    def inputs(self):
        handlers = {'audio/raw': self.on_audio, 'speech/audio': self.on_speech_audio,
                    'speech/state': self.on_own_state, '/voices/identities': self.on_identity}
        for p in self.peers:
            handlers[f'{p.ns}/speech/state'] = self.on_peer_state
            handlers[f'{p.ns}/speech/audio'] = (lambda chunk, name=p.name: self.on_peer_audio(name, chunk))
            handlers[f'{p.ns}/hearing/utterances'] = (lambda u, name=p.name: self.on_peer_utterance(name, u))
        return handlers

    def close(self) -> None:
        for stream in list(self.streams.values()):
            self._close_stream(stream, self._latest_mic if math.isfinite(self._latest_mic) else 0.0)
        self.streams.clear()

    def diagnostics(self) -> dict[str, str]:
        out = super().diagnostics()
        for k, v in sorted(self.compute.items()):
            out[f'compute s: {k}'] = f'{v:.3f}'
        out['tracks'] = str(len(self.tracker.tracks))
        out['audio lag max s'] = f'{self._audio_lag_max:.2f}'
        out['voices'] = str(len(self.registry.active()))
        out['echo erle db'] = f'{self.echo.erle_db:.1f}'
        for name, peer in self.peer_echo.items():
            c = peer.canceller
            out[f'peer echo erle db: {name}'] = f'{c.erle_db:.1f}' if c.adapted else 'not learned yet'
        return out

    # --- inputs ----------------------------------------------------------------------------------
    def _speech_samples(self, chunk) -> np.ndarray | None:
        """Mono samples at our rate of a robot's played speech chunk, or None (dropped) when unusable."""
        if not isinstance(chunk, m.AudioChunk) or not isinstance(chunk.samples, np.ndarray):
            self.drop('bad speech/audio', f'expected AudioChunk, got {type(chunk).__name__}')
            return None
        x = chunk.samples
        if x.ndim == 2:
            if x.shape[1] != 1:
                self.drop('bad speech/audio', f'robot speech must be mono, got {x.shape[1]} channels')
                return None
            x = x[:, 0]
        if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)) or not math.isfinite(chunk.stamp):
            self.drop('bad speech/audio', 'empty, non-finite or badly shaped reference')
            return None
        if chunk.sample_rate <= 0:
            self.drop('bad speech/audio', f'sample rate {chunk.sample_rate}')
            return None
        if chunk.sample_rate != self.sample_rate:
            x = resample(x, chunk.sample_rate, self.sample_rate)
        return x

    def on_speech_audio(self, chunk: m.AudioChunk) -> None:
        x = self._speech_samples(chunk)
        if x is None:
            return
        if chunk.stamp < self._heard_until - LATE_REFERENCE_TOLERANCE_S:
            # Its microphone hops were already heard without it (the robot's voice was left in them).
            self.stats['own speech/audio later than its microphone audio'] += 1
            self.stats['own speech/audio later than its microphone audio (s)'] = round(
                self.stats['own speech/audio later than its microphone audio (s)']
                + min(x.size / self.sample_rate, self._heard_until - chunk.stamp), 3)
        self.reference.push(chunk.stamp, x)
        self._drain_pending(force=False)

    def on_peer_utterance(self, peer: str, u: m.Utterance) -> None:
        """What a peer's hearing makes of the room: people it heard (over its own voice, too)."""
        if not isinstance(u, m.Utterance) or not (math.isfinite(u.start) and math.isfinite(u.end)):
            return self.drop('bad peer utterance', type(u).__name__)
        heard = self._peer_utterances.setdefault(peer, {})
        heard[u.utterance_id] = PeerUtterance(u.start, u.end, u.withdrawn, u.is_final, u.azimuth)
        while len(heard) > PEER_UTTERANCES_KEPT:
            heard.pop(next(iter(heard)))

    def _peer_heard_person(self, peer: str, start: float, end: float) -> bool:
        """Did the peer's own hearing (the best judge of what is said over its voice) hear a person then?"""
        span = max(end - start, 1e-3)
        for u in self._peer_utterances.get(peer, {}).values():
            if not u.withdrawn and min(end, u.end) - max(start, u.start) >= min(0.2, 0.3 * span):
                return True
        return False

    def _peer_turn_changes(self, seg: Segment, t: float) -> list[float]:
        """Instants inside the open utterance where a peer heard one person stop and another, from
        elsewhere, start; with enough speech on both sides here to compare voices. Each is offered once."""
        found = []
        for peer, heard in self._peer_utterances.items():
            done = [(uid, u) for uid, u in heard.items() if u.is_final and not u.withdrawn
                    and seg.start + VOICE_CHANGE_BEFORE_S <= u.end <= t - VOICE_CHANGE_AFTER_S]
            for uid, first in done:
                for nid, nxt in heard.items():
                    key = (peer, uid, nid)
                    if nxt.withdrawn or key in seg.peer_changes_judged \
                            or not first.end - 0.1 <= nxt.start <= first.end + PEER_TURN_GAP_S \
                            or abs(math.degrees(wrap(nxt.azimuth - first.azimuth))) < PEER_TURN_DEG:
                        continue
                    seg.peer_changes_judged.add(key)
                    found.append(first.end)
        return sorted(found)

    def on_peer_audio(self, peer: str, chunk: m.AudioChunk) -> None:
        x = self._speech_samples(chunk)
        if x is None:
            return
        self.peer_audio[peer].push(chunk.stamp, x)
        self._drain_pending(force=False)

    def on_peer_state(self, state: m.SpeechState) -> None:
        if not isinstance(state, m.SpeechState) or state.robot not in self._robot_state:
            return self.drop('bad speech/state', f'from unknown robot {getattr(state, "robot", None)!r}')
        t = state.stamp if state.stamp and math.isfinite(state.stamp) else self.now()
        rs = self._robot_state[state.robot]
        if state.speaking and not rs.speaking:
            rs.since = state.started if state.started and math.isfinite(state.started) else t
        if not state.speaking and rs.speaking:
            rs.stopped = t
        rs.speaking = bool(state.speaking)

    def on_own_state(self, state: m.SpeechState) -> None:
        """Our speech node says when an act ended: microphone audio after that has no echo reference to
        wait for (without this, every hop of the next second waited ``echo.reference_wait_s`` for it)."""
        if not isinstance(state, m.SpeechState) or state.robot != self.robot:
            return self.drop('bad speech/state', f'expected our own SpeechState, got {getattr(state, "robot", state)!r}')
        if state.speaking:
            self._own_played_until = math.inf
        elif state.stamp and math.isfinite(state.stamp):
            self._own_played_until = float(state.stamp)
        else:
            self._own_played_until = self.reference.last_end

    def on_identity(self, identity: m.VoiceIdentity) -> None:
        if not isinstance(identity, m.VoiceIdentity):
            return self.drop('bad voice identity', type(identity).__name__)
        if identity.origin_robot == self.robot:
            return
        try:
            changed = self.registry.merge_remote(identity, self.now())
        except ValueError as exc:
            return self.drop('bad voice identity', str(exc))
        if changed:
            self.stats['voice merges'] += 1
            self._publish_identities(force=True)

    def on_audio(self, chunk: m.AudioChunk) -> None:
        started = time.perf_counter()
        try:
            samples = check_chunk(chunk, self.channels, self.sample_rate)
            hops = self._assembler.push(float(chunk.stamp), samples, chunk.sequence or None)
        except BadAudio as exc:
            return self.drop(exc.reason, exc.detail)
        finally:
            self.compute['input'] += time.perf_counter() - started
        if self._assembler.restarted:
            self.stats['stream restarts'] += 1
            self._restart(float(chunk.stamp))
        if self._assembler.gap_filled_s:
            self.stats['gap s filled'] = round(self._assembler.gap_filled_s, 3)
        self._latest_mic = max(self._latest_mic, chunk.end)
        # How far behind the microphone hearing runs (a loaded CPU): what late partials and answers trace to.
        self._audio_lag_max = max(self._audio_lag_max, self.now() - float(chunk.end))
        for hop in hops:
            if len(self._pending_hops) >= self.config.max_queue_frames * 4:
                self._pending_hops.popleft()
                self.drop('echo reference late', 'microphone audio waited too long for speech/audio')
            self._pending_hops.append(hop)
        self._drain_pending(force=False)

    def _drain_pending(self, force: bool) -> None:
        wait = self.config.echo.reference_wait_s if self.config.echo.cancel_own or self.peer_echo else 0.0
        while self._pending_hops:
            hop = self._pending_hops[0]
            end = hop.stamp + self.hop_s
            # Every reference still playing (ours, the peers') should cover the hop before it is cancelled.
            # A peer counts only while it is audibly playing: waiting for it after it stopped would
            # only delay hearing whoever speaks next.
            live = [self.peer_audio[name] for name in self.peer_echo if self._robot_state[name].speaking
                    and self.peer_audio[name].last_active > hop.stamp - PEER_PLAYING_GAP_S]
            behind = any(not buf.covers(end) for buf in live)
            if self.config.echo.cancel_own and self.reference.last_end > hop.stamp - 1.0:
                # Our own voice: up to where the speech node says the act ended, if it has.
                behind = behind or not self.reference.covers(min(end, self._own_played_until))
            if not force and wait > 0 and behind and self._latest_mic - end < wait:
                return
            if behind and wait > 0:
                # Waited as long as allowed: this hop is heard with the missing voice left in it.
                self.stats['hops processed without their echo reference'] += 1
            self._pending_hops.popleft()
            self._process_hop(hop.stamp, hop.samples)

    def _restart(self, t: float) -> None:
        self.close()
        self._stft.reset()
        self.tracker.reset()
        self._history.clear()
        self._block_frames.clear()
        self._pending_hops.clear()
        self.echo.reset_reference()

    # --- per hop -----------------------------------------------------------------------------------
    def _process_hop(self, stamp: float, samples: np.ndarray) -> None:
        self._heard_until = stamp + self.hop_s
        c = self.compute
        t0 = time.perf_counter()
        if self.config.echo.cancel_own and self.reference.last_end > stamp - 5.0:
            if not self._aec_running:
                self.echo.reset_reference()      # stale reference blocks from the last speech act
                self._aec_running = True
            ref = self.reference.get(stamp, self.hop)
            samples = self.echo.process(samples, ref)
            self._block_echo += self.echo.echo_band_power
            self._block_error += self.echo.residual_band_power
            filtered = False
            playing = bool(np.any(np.abs(ref) > 1e-4))
            if not playing:
                if self._reference_quiet_since is None:
                    self._reference_quiet_since = stamp
            else:
                if self._reference_quiet_since is not None and \
                        stamp - self._reference_quiet_since >= REFERENCE_ONSET_AFTER_S:
                    self._reference_onset = stamp
                self._reference_quiet_since = None
            if self.echo.error_bin_power is not None:
                share = self.near_end.update(self.echo.error_bin_power, self.echo.echo_bin_power,
                                             bool(np.any(ref)))
                if stamp - self._reference_onset < REFERENCE_ONSET_GUARD_S:
                    # The detector's smoothed statistics lag our own voice's onset by a hop or two:
                    # evidence there is our onset, not a person.
                    share = 0.0
                self._near_hops.append((stamp, share))
                self._block_near += share >= self.config.echo.near_end_share
                filtered = self.config.echo.post_filter and self.echo.adapted
        else:
            self._aec_running = False
            if self._reference_quiet_since is None:
                self._reference_quiet_since = stamp
            filtered = False
        if self.peer_echo:
            samples = self._cancel_peers(stamp, samples)
        frame = self._stft.frame(samples)
        if filtered:
            frame = frame * self.near_end.gain[None, :].astype(np.float32)
        frame_stamp = stamp          # the frame ends at stamp + hop_s; its second half is this hop
        t1 = time.perf_counter()
        c['echo'] += t1 - t0
        self._history.append(frame_stamp, frame)
        band_power = float(np.mean(np.abs(frame[:, self._band]) ** 2))
        self._frame_levels.append(float(db(band_power)))
        # The loudest hop of the block: an onset in its last hop should trigger DOA now, not a block later.
        self._block_residual = max(self._block_residual, band_power)
        self._block_frames.append(frame)
        for stream in list(self.streams.values()):
            self._feed_stream(stream, frame_stamp, frame)
        if len(self._block_frames) >= self.block_hops:
            self._process_block(stamp + self.hop_s)

    def _cancel_peers(self, stamp: float, samples: np.ndarray) -> np.ndarray:
        """Subtract what each peer robot that is playing now contributes, from its played audio.

        While a peer speaks, hops wait for its audio as for our own (``echo.reference_wait_s``); a peer
        reference that comes later still leaves its hop uncancelled, counted as 'peer reference late'."""
        end = stamp + self.hop_s
        for name, canceller in self.peer_echo.items():
            buf = self.peer_audio[name]
            if buf.last_active < stamp - PEER_PLAYING_GAP_S:     # quiet: its reverberation has died away
                canceller.running = False
                continue
            if not buf.covers(end) and self._robot_state[name].speaking:
                self.stats['peer reference late'] += 1
                continue                         # (once it stopped, what it did not send is silence)
            samples = canceller.process(samples, buf.get(stamp, self.hop))
        return samples

    def _feed_stream(self, stream: TalkerStream, frame_stamp: float, frame: np.ndarray, replay: bool = False):
        t0 = time.perf_counter()
        beam = self.beamformer.apply(stream.weights, frame)
        stream.trail.push(frame_stamp - self.hop_s, float(np.mean(np.abs(beam[self._band]) ** 2)))
        chunks = stream.push_frame(frame_stamp, beam)
        t1 = time.perf_counter()
        self.compute['beamforming'] += t1 - t0
        for chunk_stamp, chunk in chunks:
            tv = time.perf_counter()
            p = stream.vad.process(stream.vad_input(chunk_stamp, chunk))
            self.compute['vad'] += time.perf_counter() - tv
            stream.last_probability = p
            stream.probabilities.append((chunk_stamp, p))
            if stream.segment is not None:
                stream.segment.speech_probability_sum += p
                stream.segment.speech_chunks += 1
            track = self.tracker.get(stream.track_id)
            may_open = track is not None and self._may_open(track, chunk_stamp)
            # Where the array locates a source right now, weaker speech evidence is enough to open: in
            # babble the VAD doubts a talker whom DOA clearly places (diffuse noise has no direction).
            located = may_open and track.last_update >= chunk_stamp - self.block_hops * self.hop_s \
                and not self._echo_dominated
            onset = min(self.config.vad.threshold, self.config.vad.located_threshold) if located else None
            pause_start = stream.endpointer.silence_start
            for ev in stream.endpointer.push(chunk_stamp, p, may_open, onset):
                if replay:
                    continue      # replayed history only decides the state; events come live
                if ev.kind == 'onset':
                    self._open_segment(stream, track, ev.time)
                else:
                    self._close_segment(stream, ev.time, ev.forced)
            if stream.segment is not None and pause_start is not None and stream.endpointer.silence_start is None \
                    and chunk_stamp - pause_start >= TALKER_CHANGE_PAUSE_S:
                stream.segment.pause = (pause_start, chunk_stamp)
                if chunk_stamp - pause_start >= VOICE_CHANGE_PAUSE_S and len(stream.segment.voice_pauses) < 8:
                    stream.segment.voice_pauses.append((pause_start, chunk_stamp))
            if not replay and stream.segment is not None:
                self._segment_progress(stream, chunk_stamp + CHUNK / self.sample_rate)
                self._speculate(stream)

    def _may_open(self, track: Track, t: float) -> bool:
        """A beam may open an utterance only for a talker the array currently hears there.

        Beams of a small array leak: every beam hears the loudest talker. The track must have DOA
        support now and at least half the support of the best-supported track in the last
        ``support_s`` (a reflection or an echo ghost gets sporadic peaks only).
        """
        window = self.config.tracking.support_s
        now = self.tracker._last_t if self.tracker._last_t is not None else t
        if track.last_update < now - window or track.last_update < t - window:
            return False
        mine = track.supported_since(now - window)
        ranked = sorted(self.tracker.tracks, key=lambda tr: (tr.supported_since(now - window), tr.strength),
                        reverse=True)
        best = ranked[0].supported_since(now - window) if ranked else 0
        if mine < 0.5 * best:
            return False
        # A second source appearing with the first is usually a reflection: only the dominant one opens
        # at once; another must first prove itself (a confirmed track) to open its own utterance.
        return ranked[0] is track or track.confirmed

    # --- per block ---------------------------------------------------------------------------------
    def _process_block(self, t: float) -> None:
        cfg = self.config
        frames = self._block_frames
        self._block_frames = []
        level = float(db(self._block_residual))
        echo_level = float(db(self._block_echo / len(frames))) if self._block_echo > 0 else -200.0
        error_level = float(db(self._block_error / len(frames))) if self._block_error > 0 else -200.0
        self._block_residual = self._block_echo = self._block_error = 0.0
        floor = self.noise_floor.update(t, level)
        own_active = self._own_speaking(t)
        # While the robot talks, a block is talker evidence only if what the canceller leaves stands out
        # from the residue it leaves of the robot's voice alone (residual_ratio_db below the echo
        # estimate); otherwise it is the robot's own voice. Until the canceller has converged once it
        # cannot tell its residue from a person: everything is then taken for the robot's own voice (a
        # barge-in during the robot's very first second of speech is missed rather than the robot
        # answering itself).
        ratio = self.echo.residual_ratio_db
        # The room keeps ringing after each word while the echo estimate drops at once: the expected
        # residue decays no faster than a reverberant room does; and it is never below the background.
        expected_residual = expected_residue_db(echo_level, ratio, self._expected_residual_db,
                                                REVERB_DECAY_DB_PER_S * self.block_hops * self.hop_s)
        self._expected_residual_db = expected_residual if own_active else -200.0
        error_floor = self._error_floor.update(t, error_level) if error_level > -199 else -200.0
        broadband_person = ratio is not None and \
            error_level >= max(expected_residual, error_floor) + cfg.echo.own_echo_margin_db
        near_hops = self._block_near
        near_end_person = near_hops >= cfg.echo.near_end_hops
        self._block_near = 0
        echo_dominated = own_active and (not self.echo.adapted or not (broadband_person or near_end_person))
        # A peer's residue alone is no talker evidence either (every peer canceller closes its block).
        peer_residue = [name for name, pv in self.peer_echo.items() if pv.residue_only(self.block_hops * self.hop_s)]
        if peer_residue and not echo_dominated:
            self.stats['blocks peer-residue only'] += 1
            echo_dominated = True
        self.last_block = {'t': t, 'level_db': level, 'floor_db': floor, 'error_db': error_level,
                           'expected_residual_db': expected_residual, 'own_active': own_active,
                           'echo_dominated': echo_dominated, 'near_hops': near_hops}
        self._echo_dominated = echo_dominated
        self._echo_history.append(echo_dominated)
        peaks = []
        t0 = time.perf_counter()
        gevd = isinstance(self.doa, NoiseAwareDoa)
        if echo_dominated:
            self.stats['blocks echo-dominated'] += 1     # the robot's own voice: no talker evidence
        elif gevd:
            # Every block: the estimator itself says whether anything stands out from the background
            # (a person a few dB over a television does not stand out in level).
            recent = [f for _, f in list(self._history.items)[-2 * self.block_hops:]]
            try:
                peaks = self.doa.estimate(np.stack(recent, axis=2))
            except ValueError as exc:
                self.drop('doa failed', str(exc))
            # The background is learned only where surely nobody talks: a speech tail taken for
            # background would whiten its talker's direction away.
            if any(st.last_probability >= cfg.vad.threshold or st.segment is not None for st in self.streams.values()):
                self._last_speech_block = t
            quiet = level <= floor + NOISE_LEARN_MARGIN_DB and not own_active and \
                t - self._last_speech_block > NOISE_LEARN_AFTER_SPEECH_S
            if quiet and not peaks:
                for f in frames:
                    self.doa.observe_noise(f)
                    self.beamformer.observe_noise(f)
        elif level > floor + cfg.doa.energy_margin_db:
            recent = list(self._history.items)[-self.block_hops * cfg.doa.context_blocks:]
            # Only frames that stand out from the background: at an onset most of the context is still
            # room noise, which would pull the estimate anywhere.
            loud = [f for (_, f), p in zip(recent, list(self._frame_levels)[-len(recent):])
                    if p > floor + cfg.doa.energy_margin_db]
            context = loud if len(loud) >= 2 else [f for _, f in recent[-2:]]
            try:
                peaks = self.doa.estimate(np.stack(context, axis=2))
            except ValueError as exc:
                self.drop('doa failed', str(exc))
        else:
            for f in frames:
                self.beamformer.observe_noise(f)
        t1 = time.perf_counter()
        self.compute['doa'] += t1 - t0
        self.last_block['peaks'] = peaks
        born_before = {tr.track_id for tr in self.tracker.tracks}
        tracks = self.tracker.update(t, peaks, level)
        supported = {tr.track_id for tr in self.tracker.assigned.values()} if peaks else set()
        self.compute['tracking'] += time.perf_counter() - t1
        live_ids = {tr.track_id for tr in tracks}
        for track_id in list(self.streams):
            if track_id not in live_ids:
                gone = self.streams.pop(track_id)
                heir = self.streams.get(self.tracker.merged_into.get(track_id, -1))
                if heir is None or not self._merge_streams(gone, heir, t):
                    self._close_stream(gone, t)
        for tr in tracks:
            tr.robot_name = self._robot_for_direction(tr.azimuth, t)
        self._update_beams(tracks)
        for tr in tracks:
            if tr.track_id not in self.streams:
                self._start_stream(tr, replay=tr.track_id not in born_before)
            stream = self.streams[tr.track_id]
            seg = stream.segment
            if seg is not None:
                if tr.track_id in supported:
                    seg.azimuths.append(tr.azimuth)
                    seg.weights.append(max(tr.strength, 0.1))
                    seg.foreign_since = None
                    seg.bearings.extend((t, peaks[i].azimuth) for i, a in self.tracker.assigned.items() if a is tr)
                    pause = self._talker_change(seg) if seg.pause is not None and not seg.robot_name else None
                    if pause is not None:
                        self._split_at_pause(stream, tr, pause, 'another talker after a pause')
                        seg = stream.segment
                elif seg.foreign_since is None and (supported or len(self._echo_history) == sum(self._echo_history)
                                                    == self._echo_history.maxlen):
                    # Another source is what the array hears now, or only the robot's own voice is.
                    seg.foreign_since = t - self.block_hops * self.hop_s
                if seg.robot_name:
                    self._check_robot_segment(stream, tr, t, echo_dominated, supported)
                elif seg.foreign_since is not None and t - seg.foreign_since >= cfg.tracking.support_s:
                    # The beam still hears speech, but the array hears it from elsewhere: another
                    # talker took over (leakage into this beam). The talker stopped when that began.
                    self.stats['utterances ended by another talker'] += 1
                    self._close_segment(stream, seg.foreign_since, True)
                    stream.endpointer.force_end(t)
        self._move_young_segments(t, tracks, supported)
        self._overlaps()
        self._publish_sources(t, tracks)
        if self.now() - self._last_identities >= cfg.identities_period_s:
            self._publish_identities()

    def _move_young_segments(self, t: float, tracks: list[Track], supported: set[int]) -> None:
        """An utterance opened on a track that the array stopped hearing right away (the first DOA block
        of an onset is mostly background) moves to the track that does hear the talker."""
        for stream in list(self.streams.values()):
            seg = stream.segment
            if seg is None or seg.robot_name or t - seg.start > YOUNG_SEGMENT_S or stream.track_id in supported:
                continue
            heirs = [tr for tr in tracks if tr.track_id in supported and tr.track_id in self.streams
                     and self.streams[tr.track_id].segment is None and not tr.robot_name
                     and self.streams[tr.track_id].last_probability >= self.config.vad.threshold]
            if not heirs:
                continue
            heir = max(heirs, key=lambda tr: (tr.strength, tr.hits))
            stream.segment = None
            stream.endpointer.force_end(t)
            seg.azimuths, seg.weights = [heir.azimuth], [max(heir.strength, 0.1)]
            self._adopt(self.streams[heir.track_id], seg, t)
            self.stats['utterances moved to another track'] += 1

    @staticmethod
    def _talker_change(seg: Segment) -> tuple[float, float] | None:
        """The segment's latest pause if the sound after it came from clearly elsewhere than before it.
        Undecided (too few bearings after the pause yet) keeps the pause for later blocks."""
        start, end = seg.pause
        before = [(t, az) for t, az in seg.bearings if t <= start][-3 * TALKER_CHANGE_BLOCKS:]
        after = [az for t, az in seg.bearings if t > end]
        if len(after) < TALKER_CHANGE_BLOCKS:
            return None
        seg.pause = None
        if len(before) < TALKER_CHANGE_BLOCKS:
            return None

        def mean(azimuths):
            return math.atan2(sum(math.sin(a) for a in azimuths), sum(math.cos(a) for a in azimuths))
        centre = mean([az for _, az in before])
        times = np.array([t for t, _ in before])
        offsets = np.array([wrap(az - centre) for _, az in before])
        if np.ptp(times) > 0 and abs(np.polyfit(times, offsets, 1)[0]) > math.radians(WALKING_DEG_PER_S):
            return None                  # a moving talker's bearing jumps across a pause too
        return (start, end) if abs(wrap(mean(after) - centre)) > math.radians(TALKER_CHANGE_DEG) else None

    def _voice_changed(self, stream: TalkerStream, seg: Segment, pause: tuple[float, float]) -> bool:
        """Whether the speech after the pause is another voice than the speech before it.

        Only judged on clean evidence: enough speech on both sides, and no robot talking then (its
        residue would change the "voice" of either side)."""
        threshold = self.config.diarization.voice_change_threshold
        start, end = pause
        if self.models.embedder is None or threshold <= -1 or start - seg.start < VOICE_CHANGE_BEFORE_S:
            return False
        after_end = end + VOICE_CHANGE_AFTER_S
        if self._own_speaking(after_end) or self._own_speaking(seg.start) or \
                any(self._peer_speaking(name, after_end) or self._peer_speaking(name, seg.start)
                    for name in self._robot_state if name != self.robot):
            return False
        before_start = max(seg.start, start - VOICE_CHANGE_CONTEXT_S)
        speech = self.config.vad.threshold
        if min(stream.speech_share(before_start, start, speech), stream.speech_share(end, after_end, speech)) \
                < VOICE_CHANGE_SPEECH_SHARE:
            return False          # mostly a tail or the room on one side: its "voice" is not a person's
        before = stream.audio(before_start, start)
        after = stream.audio(end, after_end)
        t0 = time.perf_counter()
        try:
            a = self.models.embedder.embed(self._without_background(stream, seg, before))
            b = self.models.embedder.embed(self._without_background(stream, seg, after))
        except (ValueError, RuntimeError) as exc:
            self.drop('embedding failed', str(exc))
            return False
        finally:
            self.compute['embedding'] += time.perf_counter() - t0
        similarity = float(np.dot(a, b))
        self.voice_change_log.append((seg.utterance_id, start, end, similarity))
        del self.voice_change_log[:-EMBEDDING_LOG]
        return similarity < threshold

    def _split_at_pause(self, stream: TalkerStream, track: Track | None, pause: tuple[float, float],
                        cause: str) -> None:
        """End the utterance where the pause began and start the next talker's where it ended."""
        start, end = pause
        after = [(t, az) for t, az in stream.segment.bearings if t > end]
        later_pauses = [p for p in stream.segment.voice_pauses if p[0] >= end]
        judged = stream.segment.peer_changes_judged
        self.stats[f'utterances split ({cause})'] += 1
        self._close_segment(stream, start, True)
        stream.voice_id = ''            # the track's voice was the previous talker's
        stream.endpointer.onset_time = end      # the longest-utterance limit counts from the new talker
        self._open_segment(stream, track, end)
        if stream.segment is not None:
            stream.segment.bearings = after
            stream.segment.voice_pauses = later_pauses
            stream.segment.peer_changes_judged = judged

    def _merge_streams(self, gone: TalkerStream, heir: TalkerStream, t: float) -> bool:
        """The tracker merged ``gone``'s track into ``heir``'s: both beams heard one talker, so there is
        one utterance. The older segment goes on in the heir's stream (with the older audio) and a
        younger duplicate is withdrawn; False when there is nothing to hand over."""
        seg, other = gone.segment, heir.segment
        if seg is None or seg.robot_name or (other is not None and other.robot_name):
            return False
        gone.segment = None
        if other is not None and other.start <= seg.start:
            younger, younger_stream = seg, gone
        else:
            younger, younger_stream = other, heir
            heir.segment = None
            heir.inherit_history(gone)
            self._adopt(heir, seg, t)
        if younger is not None:
            self.stats['utterances withdrawn (same talker on a merged track)'] += 1
            self._withdraw(younger_stream, younger, t)
        else:
            self.stats['utterances moved to a merged track'] += 1
        return True

    @staticmethod
    def _adopt(target: TalkerStream, seg: Segment, t: float) -> None:
        """Continue ``seg`` on another talker stream, whose track now carries its talker."""
        seg.track_id = target.track_id
        target.segment = seg
        ep = target.endpointer
        if ep.in_speech:
            ep.onset_time = seg.start if ep.onset_time is None else min(ep.onset_time, seg.start)
        else:
            ep.in_speech, ep.onset_time, ep.silence, ep.silence_start = True, seg.start, 0, None
            ep.last_speech_end = t

    def _update_beams(self, tracks: list[Track]) -> None:
        t0 = time.perf_counter()
        azimuths = {tr.track_id: tr.azimuth for tr in tracks}
        active = [tr for tr in tracks if tr.last_update >= (self.tracker._last_t or 0) - self.config.tracking.support_s]
        for tr in tracks:
            stream = self.streams.get(tr.track_id)
            others = [o.azimuth for o in active if o.track_id != tr.track_id
                      and abs(wrap(o.azimuth - tr.azimuth)) > math.radians(self.config.doa.min_separation_deg)]
            key = (round(azimuths[tr.track_id], 2), tuple(round(o, 2) for o in others))
            if stream is None or stream.weights_azimuth == key:
                continue
            stream.weights, stream.weights_azimuth = self.beamformer.weights(tr.azimuth, others), key
        self.compute['beamforming'] += time.perf_counter() - t0

    def _start_stream(self, track: Track, replay: bool) -> None:
        cfg = self.config
        endpointer = Endpointer(cfg.vad.threshold, cfg.vad.onset_ms, cfg.vad.min_silence_ms, cfg.vad.max_utterance_s)
        stream = TalkerStream(track.track_id, self.nfft, self.models.vad.stream(), endpointer, self.sample_rate,
                              cfg.vad.max_utterance_s + cfg.history_s + 1.0)
        others = [o.azimuth for o in self.tracker.tracks if o.track_id != track.track_id
                  and abs(wrap(o.azimuth - track.azimuth)) > math.radians(cfg.doa.min_separation_deg)]
        stream.weights = self.beamformer.weights(track.azimuth, others)
        self.streams[track.track_id] = stream
        if replay:
            # Beamform the recent past toward the new talker so its onset is not lost to the DOA delay.
            for frame_stamp, frame in list(self._history.items):
                self._feed_stream(stream, frame_stamp, frame, replay=True)
            if stream.endpointer.in_speech:
                self._open_segment(stream, track, stream.endpointer.onset_time)

    def _close_stream(self, stream: TalkerStream, t: float) -> None:
        ev = stream.endpointer.force_end(t)
        if stream.segment is not None:
            self._close_segment(stream, ev.time if ev else t, True)

    # --- robots ------------------------------------------------------------------------------------
    def _own_speaking(self, t: float) -> bool:
        tail = self.config.echo.robot_tail_s
        return self.config.echo.cancel_own and self.reference.last_active >= t - tail - self.hop_s \
            and self._played(t - tail - 0.2, tail + 0.2)

    def _played(self, start: float, seconds: float) -> bool:
        """Did this robot play anything audible in ``seconds`` from ``start``?"""
        played = self.reference.get(start, int(seconds * self.sample_rate))
        return float(np.max(np.abs(played), initial=0.0)) > 1e-4

    def _first_near_end_hop(self, t: float) -> float:
        """Stamp of the first hop since t with near-end (person) evidence, or t when there is none."""
        thr = self.config.echo.near_end_share
        return next((s for s, share in self._near_hops if s >= t and share >= thr), t)

    def _near_end_since(self, t: float) -> bool:
        """Did enough hops since t carry near-end (person) evidence over the robot's own voice?"""
        if not self.echo.adapted:
            return False
        thr = self.config.echo.near_end_share
        return sum(1 for s, share in self._near_hops if s >= t and share >= thr) >= self.config.echo.near_end_hops

    def _peer_speaking(self, name: str, t: float) -> bool:
        rs = self._robot_state.get(name)
        if rs is None:
            return False
        return rs.speaking or t - rs.stopped <= self.config.echo.robot_tail_s

    def _robot_for_direction(self, azimuth: float, t: float) -> str:
        gate = math.radians(self.config.echo.robot_direction_gate_deg)
        best, best_d = '', gate
        for name, bearings in self._peer_directions().items():
            if not self._peer_speaking(name, t):
                continue
            for bearing in bearings:
                d = abs(wrap(azimuth - bearing))
                if d <= best_d:
                    best, best_d = name, d
        return best

    def _peer_directions(self) -> dict[str, list[float]]:
        """Where each peer's voice comes from: its bearing, and where its voice was actually heard
        (a small or linear array, or a reflection, can place it far from the geometric bearing)."""
        return {name: [bearing] + self._heard_peer_bearings.get(name, [])
                for name, bearing in self._peer_bearings.items()}

    def _learn_peer_direction(self, peer: str, azimuth: float) -> None:
        heard = self._heard_peer_bearings.setdefault(peer, [])
        gate = math.radians(self.config.echo.robot_direction_gate_deg) / 2
        if all(abs(wrap(azimuth - b)) > gate for b in [self._peer_bearings[peer]] + heard):
            heard.append(float(azimuth))
            del heard[:-3]

    def _peer_voice(self, stream: TalkerStream, start: float, end: float) -> str:
        """The peer robot whose played audio explains this stretch of the beam, or ''.

        Its voice leaks into every beam, so a person talking over it (a backchannel, a question) can
        follow its envelope too: it is the peer's voice only if the peer's own hearing, which
        cancels that voice, heard nobody then."""
        best, best_corr = '', -1.0
        for name, (corr, unexplained) in self._peer_follow(stream, start, end).items():
            if corr >= self.config.echo.peer_envelope_correlation and \
                    unexplained <= self.config.echo.peer_unexplained_share and corr > best_corr \
                    and not self._peer_heard_person(name, start, end):
                best, best_corr = name, corr
        return best

    def _peer_follow(self, stream: TalkerStream, start: float, end: float) -> dict[str, tuple[float, float]]:
        """Per peer playing meanwhile: (envelope correlation of the beam with its played audio, share of
        the beam's loud hops when the peer had been quiet for PEER_LAG_HOPS: someone else's sound)."""
        out = {}
        for name, buf in self.peer_audio.items():
            if buf.last_active < start or not self._peer_speaking(name, end):
                continue
            follow = self._follow(stream, start, end, buf)
            if follow is not None:
                out[name] = follow
        return out

    def _own_voice(self, stream: TalkerStream, start: float, end: float, early: bool = False) -> bool:
        """Does this stretch of the beam follow what we play ourselves (residue the canceller left)?

        The canceller's residue keeps the envelope of our voice; a person talking over us does not.
        ``early``: also judge stretches from OWN_VOICE_EARLY_S on, by a stricter correlation."""
        if end - start < OWN_VOICE_MIN_S:
            if not early or end - start < OWN_VOICE_EARLY_S:
                return False
            threshold = OWN_VOICE_EARLY_CORRELATION
        else:
            threshold = self.config.echo.own_envelope_correlation
        if not self._own_speaking(end):
            return False
        # Our loudspeaker is on the array: its voice arrives within a hop, not after a room crossing.
        follow = self._follow(stream, start, end, self.reference, max_lag_hops=OWN_LAG_HOPS)
        return follow is not None and follow[0] >= threshold and follow[1] <= self.config.echo.peer_unexplained_share

    def _follow(self, stream: TalkerStream, start: float, end: float, buf: ReferenceBuffer,
                max_lag_hops: int = PEER_LAG_HOPS) -> tuple[float, float] | None:
        stamps, levels = stream.trail.window(start, end)
        if stamps.size < 8:
            return None
        lag = max_lag_hops
        ref = self.reference_envelope(buf, stamps, lag)
        if ref.size == 0 or float(np.mean(ref[lag:] > ref.max() - 30)) < 0.3:
            return None            # mostly silent meanwhile: nothing to follow
        loud = levels > levels.max() - 15.0
        recent = np.lib.stride_tricks.sliding_window_view(ref, lag + 1).max(axis=1)
        quiet = recent < ref.max() - 30.0
        unexplained = float(np.sum(loud & quiet)) / max(1, int(loud.sum()))
        return envelope_correlation(levels, ref, range(lag + 1)), unexplained

    def _check_robot_segment(self, stream: TalkerStream, track: Track, t: float, echo_dominated: bool,
                             supported: set[int]) -> None:
        """A robot segment whose robot went quiet but whose talker goes on is a person: hand over."""
        seg = stream.segment
        if not seg.robot_name:
            return
        still = (seg.robot_name == self.robot and self._own_speaking(t)) or \
                (seg.robot_name != self.robot and self._peer_speaking(seg.robot_name, t)
                 and track.robot_name == seg.robot_name)
        human_now = track.track_id in supported and not track.robot_name and not echo_dominated
        seg.human_blocks = seg.human_blocks + 1 if human_now else 0
        if not still or seg.human_blocks >= 2:
            self._close_segment(stream, t, True, quiet=True)
            stream.endpointer.force_end(t)
            stream.endpointer.run = 0

    # --- segments ----------------------------------------------------------------------------------
    def _open_segment(self, stream: TalkerStream, track: Track | None, start: float) -> None:
        if stream.segment is not None:
            return
        own_speaking = self._own_speaking(start)
        if own_speaking:
            # A replayed onset over our own voice starts with its residue: the person starts where the
            # near-end evidence does (the barge-in decision weighs what they said, not our echo).
            start = max(start, self._first_near_end_hop(start - 0.05) - 0.05)
        self._utterance_count += 1
        seg = Segment(f'{self.robot}/{self._utterance_count}', stream.track_id, start)
        if track is not None:
            seg.azimuths.append(track.azimuth)
            seg.weights.append(max(track.strength, 0.1))
            seg.robot_name = track.robot_name or self._robot_for_direction(track.azimuth, start)
        if not seg.robot_name and own_speaking and (
                not self._near_end_since(start - 0.05)
                or (stream.latest - start >= OWN_VOICE_CHECK_S and self._own_voice(stream, start, stream.latest))):
            # While the robot talks, a person must stand out from its residue since the onset, and what
            # was heard so far must not simply follow the robot's own voice.
            seg.robot_name = self.robot
        seg.asr_interval = self.config.asr.partial_interval_s
        seg.next_asr_at = start + max(self.config.asr.min_partial_audio_s, self.config.asr.partial_interval_s)
        stream.segment = seg
        if seg.robot_name:
            self.stats['robot speech suppressed'] += 1
            self.stats[f'robot speech suppressed: {seg.robot_name}'] += 1
            return
        self.stats['utterances opened'] += 1
        if stream.latest - start >= self._early_windows(seg)[0]:
            # Opened late (a cautious onset over the robot's voice): the barge-in decision on this very
            # partial needs the acoustic estimate, not a blank that reads as "surely not a backchannel".
            self._estimate_backchannel_early(stream, seg, stream.latest - start)
        self._publish_utterance(stream, seg, end=stream.latest)

    def _withdraw_as_robot(self, stream: TalkerStream, seg: Segment, t: float, robot: str) -> None:
        """A published segment turned out to be a robot's voice: a final with no words takes it back."""
        self._withdraw(stream, seg, t)
        seg.robot_name = robot
        self.stats['robot speech suppressed'] += 1
        self.stats[f'robot speech suppressed: {robot}'] += 1

    def _early_windows(self, seg: Segment) -> tuple[float, ...]:
        return EARLY_BACKCHANNEL_S if self._own_speaking(seg.start) else SILENT_EARLY_BACKCHANNEL_S

    def _estimate_backchannel_early(self, stream: TalkerStream, seg: Segment, age: float) -> float:
        """The estimate at the latest early window ``age`` s of speech cover (windows it came too late
        for are skipped: one estimate, of the most audio). Returns the window."""
        over_own_voice = self._own_speaking(seg.start)
        windows = EARLY_BACKCHANNEL_S if over_own_voice else SILENT_EARLY_BACKCHANNEL_S
        while seg.early_count + 1 < len(windows) and windows[seg.early_count + 1] <= age:
            seg.early_count += 1
        window = windows[seg.early_count]
        seg.early_count += 1
        seg.early_done = True
        t0 = time.perf_counter()
        audio = stream.audio(seg.start - 0.02, seg.start + window)
        seg.backchannel_early = turn_cues.backchannel_probability_early(
            audio, self.sample_rate, window, models=self.over_own_voice_models if over_own_voice else None)
        self.compute['turn cues'] += time.perf_counter() - t0
        return window

    def _segment_progress(self, stream: TalkerStream, t: float) -> None:
        seg = stream.segment
        if seg.robot_name:
            return
        if seg.voice_pauses and t - seg.voice_pauses[0][1] >= VOICE_CHANGE_AFTER_S:
            pause = seg.voice_pauses.pop(0)
            if self._voice_changed(stream, seg, pause):
                self._split_at_pause(stream, self.tracker.get(stream.track_id), pause, 'another voice after a pause')
                seg = stream.segment
                if seg is None:
                    return
        if self.peers and self._peer_utterances:
            for instant in self._peer_turn_changes(seg, t):
                if any(abs(instant - p[0]) < 0.5 for p in seg.voice_pauses):
                    continue      # a pause of our own there is judged on its own evidence
                if self._voice_changed(stream, seg, (instant, instant)):
                    self._split_at_pause(stream, self.tracker.get(stream.track_id), (instant, instant),
                                         'another voice where a peer heard another talker')
                    seg = stream.segment
                    if seg is None:
                        return
                    break
        published = seg.partials
        self._segment_update(stream, seg, t)
        if seg.partials == published and not seg.robot_name and stream.segment is seg \
                and stream.endpointer.silence == 0 and self._own_speaking(t) \
                and self._heard_over_own_voice_until(seg, t) - seg.published_end >= BARGE_IN_PROGRESS_S:
            # Someone talks over this robot: floor control gives up waiting for words after a while of
            # speech, so it must hear that the speech goes on even between decodes.
            self._publish_utterance(stream, seg, end=t)

    def _heard_over_own_voice_until(self, seg: Segment, t: float) -> float:
        """While we talk, a person's speech goes on only as long as it stands out from our residue
        (which keeps the VAD busy after a "mm-hmm" has ended): the last such hop, or t."""
        if not self.echo.adapted or not self._own_speaking(t):
            return t
        thr = self.config.echo.near_end_share
        last = max((s for s, share in self._near_hops if seg.start - 0.05 <= s <= t and share >= thr), default=None)
        return t if last is None else max(seg.start, min(t, last + self.hop_s))

    def _segment_update(self, stream: TalkerStream, seg: Segment, t: float) -> None:
        cfg = self.config
        windows = self._early_windows(seg)
        if seg.early_count < len(windows) and t - seg.start >= windows[seg.early_count]:
            # A barge-in decision cannot wait for words: publish acoustic backchannel estimates on the
            # first audio, then again on a little more.
            window = self._estimate_backchannel_early(stream, seg, t - seg.start)
            # The estimate goes out at once; the decode below runs on the stage's worker (0.1-0.4 s on
            # a CPU), so it holds back neither this estimate nor the next.
            self._publish_utterance(stream, seg, end=t)
            wants_words = window >= BARGE_IN_WORDS_FROM_S and not seg.transcript and cfg.asr.barge_in_words \
                and cfg.asr.backend != 'none' and self._own_speaking(seg.start) and self.now() - t <= MAX_PARTIAL_LAG_S
            if wants_words:
                # Someone talks over this robot: whether to stop hangs on "sorry" / "wait" versus
                # "mm-hmm" / "yeah", which the first word tells far better than acoustics. Decode with
                # each acoustic estimate until words are trusted (0.18 s often holds "sorry" already;
                # barge-ins are rare, so the extra decode costs little), before the regular partials.
                # Until the words say which, decode again soon: every 0.1 s the robot talks on costs.
                seg.next_asr_at = t + BARGE_IN_ASR_INTERVAL_S
                self._decode_partial(stream, seg, t, over_own_voice=True, barge_in=True)
            return
        if t >= seg.next_asr_at and t - seg.start >= 0.5 and self.peers:
            peer = self._peer_voice(stream, seg.start, t)
            if peer:
                self.segment_log.append((seg.utterance_id, seg.start, t, self._leak_diagnostics(stream, seg.start, t)))
                # What we took for a person follows a peer robot's played voice: take it back now.
                self.stats['robot speech suppressed early (follows peer audio)'] += 1
                az, _ = self._azimuth(seg)
                self._learn_peer_direction(peer, az)
                return self._withdraw_as_robot(stream, seg, t, peer)
        if t >= seg.next_asr_at and cfg.asr.backend != 'none':
            # Each partial re-decodes the utterance so far: space them out as it grows (but not while
            # it talks over us and has no words yet: those decide whether we stop).
            seg.asr_interval *= cfg.asr.partial_growth
            barge_in = self._own_speaking(t) and not seg.transcript
            seg.next_asr_at = t + (BARGE_IN_ASR_INTERVAL_S if barge_in else seg.asr_interval)
            if self.now() - t > MAX_PARTIAL_LAG_S:
                # Processing is behind the audio: partial text would be stale; catch up first.
                self.stats['asr partials skipped (behind)'] += 1
                return
            if not barge_in and not cfg.asr.partials_while_idle and not self._own_speaking(t):
                self.stats['asr partials skipped (idle)'] += 1
                return
            begin = seg.start - cfg.vad.pad_ms / 1000.0
            self._decode_partial(stream, seg, t, over_own_voice=self._over_own_voice(begin, t), barge_in=False)

    def _decode_partial(self, stream: TalkerStream, seg: Segment, t: float, over_own_voice: bool,
                        barge_in: bool) -> None:
        """Decode the utterance so far (to ``t``) for a partial: one decode per utterance at a time; its
        words go out if the utterance is still open when they come."""
        if seg.decoding:
            self.stats['asr partials skipped (a decode of the utterance is running)'] += 1
            return
        seg.decoding = True
        audio = stream.audio(seg.start - self.config.vad.pad_ms / 1000.0, t)

        def words(heard: str, text: str, confidence: float) -> None:
            seg.decoding = False
            holder = self._holder(seg)
            if holder is None or seg.robot_name:
                self.stats['asr partials dropped (the utterance ended first)'] += 1
                return
            self.stats['asr barge-in decodes' if barge_in else 'asr partial decodes'] += 1
            if not barge_in:
                self._keep_as_speculation(holder, seg, t, text, confidence)
            self._publish_words(holder, seg, t, heard, text, confidence)
        self._decode(audio, over_own_voice, False, words)

    def _holder(self, seg: Segment) -> TalkerStream | None:
        """The talker stream whose open utterance ``seg`` is (None once it was closed)."""
        return next((st for st in self.streams.values() if st.segment is seg), None)

    def _publish_words(self, stream: TalkerStream, seg: Segment, t: float, heard: str, text: str,
                       confidence: float) -> None:
        """A partial with newly decoded words (``heard`` as decoded, ``text`` with names corrected), if
        they are trusted; doubted words that first show a cut-in are published as that alone."""
        cut_in = seg.cut_in_heard
        # Hearing went on while the words were decoded: a partial's end never moves back.
        end = max(t, seg.published_end)
        if self._trust_words(heard, confidence, t, seg):
            seg.transcript = text
            self._publish_utterance(stream, seg, end=end)
        elif seg.cut_in_heard and not cut_in:
            self._publish_utterance(stream, seg, end=end)

    def _trust_words(self, text: str, confidence: float, t: float, seg: Segment | None = None,
                     start: float | None = None) -> bool:
        """Whether words decoded up to ``t`` (of speech heard from ``start``, or the segment's start)
        stand: over our own voice they need ASR confidence and a plausible length."""
        if not text:
            return False
        if not self._own_speaking(t):
            return True
        start = seg.start if start is None and seg is not None else start
        doubted = confidence < self.config.asr.over_own_voice_min_confidence
        if not doubted and start is not None and self._too_many_words(text, t - start):
            # Whisper hallucinates fluent sentences into our residue ("we're going to make sure that
            # we're going to make sure" from a 0.7 s "mm-hmm"), often with good confidence: more words
            # than anyone says in that time were not said.
            doubted = True
            self.stats['asr words doubted (too many for the audio, over own voice)'] += 1
        if doubted:
            self.stats['asr words doubted (over own voice)'] += 1
            if seg is not None and not seg.cut_in_heard and turn_cues.opens_as_cut_in(text):
                # The words stay unpublished, but the opening tells a cut-in from a "mm-hmm" better than
                # acoustics do: the partials say so through their backchannel probability.
                seg.cut_in_heard = True
                self.stats['cut-ins heard in doubted words (over own voice)'] += 1
            return False
        return True

    def _too_many_words(self, text: str, heard_s: float) -> bool:
        pad = self.config.vad.pad_ms / 1000.0
        return len(text.split()) > MAX_WORDS_PER_S * (heard_s + 2 * pad) + 1

    def _decode(self, audio: np.ndarray, over_own_voice: bool, final: bool,
                then: Callable[[str, str, float], None]) -> None:
        """Transcribe on the stage's worker, then ``then(heard, text, confidence)`` (``text`` with names
        corrected; empty when ASR fails or is off). A decode takes 0.1-0.4 s on a CPU: meanwhile hearing
        goes on with the audio, so the acoustic estimates that stop the robot for a barge-in are not held
        back by a decode. ``final``: of final quality (``False``: a partial)."""
        if self.config.asr.backend == 'none':
            return then('', '', 0.0)
        recognizer = self.models.recognizer

        def job():
            t0 = time.perf_counter()
            try:
                return recognizer.transcribe(audio, final=final, over_own_voice=over_own_voice), None, \
                    time.perf_counter() - t0
            except Exception as exc:     # a failing recogniser must not stop hearing
                return None, exc, time.perf_counter() - t0

        def done(outcome) -> None:
            result, error, seconds = outcome
            self._count_decode(seconds, over_own_voice, final)
            if error is not None:
                self.stats['asr errors'] += 1
                self.drop('asr failed', f'{type(error).__name__}: {error}')
                return then('', '', 0.0)
            text, _ = self.name_matcher.correct(result.text)
            then(result.text, text, result.confidence)
        self.offload(job, done)

    def _count_decode(self, seconds: float, over_own_voice: bool, final: bool = True) -> None:
        self.compute['asr'] += seconds
        self.stats['asr decodes (default window)' if not over_own_voice else
                   'asr decodes over own voice (longer window)' if final else
                   'asr partials over own voice (barge-in window)'] += 1

    def _over_own_voice(self, start: float, end: float) -> bool:
        """Did this robot play its voice (or its tail ring) while [start, end] was heard?"""
        tail = self.config.echo.robot_tail_s
        return self.reference.last_active >= start - tail and self._played(start - tail, end - start + tail)

    def _speculate(self, stream: TalkerStream) -> None:
        """A talker paused: decode the segment now, so that a final after the full silence is ready."""
        seg = stream.segment
        cfg = self.config
        ep = stream.endpointer
        after = cfg.asr.speculative_after_ms
        if seg.robot_name or after <= 0 or not ep.in_speech or ep.silence_start is None \
                or self._speculation_covers(seg, ep.silence_start) or cfg.asr.backend == 'none':
            return
        if ep.silence * ep.chunk_s * 1000.0 < max(after, cfg.vad.pad_ms) or ep.silence >= ep.silence_chunks:
            return
        end = ep.silence_start
        if (end - seg.start) * 1000.0 < cfg.vad.min_speech_ms or self.now() - end > MAX_PARTIAL_LAG_S + 0.3:
            return
        pad = cfg.vad.pad_ms / 1000.0
        seg.speculative_end = end
        seg.speculating = True
        seg.next_asr_at = max(seg.next_asr_at, end + seg.asr_interval)
        self.stats['asr speculative decodes'] += 1

        def speculation(heard: str, text: str, confidence: float) -> None:
            seg.speculating = False
            if seg.speculative_end != end:
                return       # a later partial heard the pause's speech already
            seg.speculative_text, seg.speculative_confidence = text, confidence
            holder = self._holder(seg)
            # Kept for the final either way (which judges the words again); a partial shows only words
            # that would be trusted now, or residue garbled into words would decide a barge-in.
            if holder is not None and not seg.robot_name and self._trust_words(text, confidence, end, seg):
                seg.transcript = text
                self._publish_utterance(holder, seg, end=max(end, seg.published_end))
        self._decode(stream.audio(seg.start - pad, end + pad), self._over_own_voice(seg.start - pad, end + pad),
                     True, speculation)

    def _keep_as_speculation(self, stream: TalkerStream, seg: Segment, t: float, text: str, confidence: float) -> None:
        """A partial decoded at ``t`` after the talker paused heard the whole segment, as a speculative
        decode for that pause would: keep it for the final instead of decoding the same audio again
        (the partial's decode otherwise only delays the speculative one by its own length)."""
        ep = stream.endpointer
        if ep.silence_start is None or t - ep.silence_start < self.config.vad.pad_ms / 1000.0 - 1e-6:
            return
        seg.speculative_end = ep.silence_start
        seg.speculative_text, seg.speculative_confidence = text, confidence
        self.stats['asr partials kept as speculative'] += 1

    def _speculation_covers(self, seg: Segment, end: float) -> bool:
        """Whether the speculative decode already heard all of a segment that ends at ``end``.

        It decoded ``vad.pad_ms`` past the pause it was made for, so a blip of the VAD after that pause
        (a breath, the tail of a rising "France?") moves the end by less than the pad and adds no
        unheard speech: decoding again would only delay the answer by a decode.
        """
        if seg.speculative_end is None:
            return False
        moved = end - seg.speculative_end
        return -1e-6 < moved <= self.config.vad.pad_ms / 1000.0 + 1e-6

    def _close_segment(self, stream: TalkerStream, end: float, forced: bool, quiet: bool = False) -> None:
        seg = stream.segment
        if seg is None:
            return
        stream.segment = None
        cfg = self.config
        if seg.robot_name:
            self.suppressed.append((seg.robot_name, seg.start, end))
            del self.suppressed[:-100]
            return
        duration = end - seg.start
        if duration * 1000.0 < cfg.vad.min_speech_ms:
            self.stats['utterances withdrawn (too short)'] += 1
            self._withdraw(stream, seg, end)
            return
        pad = cfg.vad.pad_ms / 1000.0
        audio = stream.audio(seg.start - pad, end + pad)
        speech = stream.audio(seg.start, end)
        self.segment_log.append((seg.utterance_id, seg.start, end, self._leak_diagnostics(stream, seg.start, end)))
        known_voices = set(self.registry.voices)
        peer = self._peer_voice(stream, seg.start, end)
        if peer:
            self.stats['robot speech suppressed late (follows peer audio)'] += 1
            az, _ = self._azimuth(seg)
            self._learn_peer_direction(peer, az)
            robot_voice, voice_id = peer, ''
        elif self._own_voice(stream, seg.start, end):
            self.stats['robot speech suppressed late (follows own audio)'] += 1
            robot_voice, voice_id = self.robot, ''
        else:
            voice_id, robot_voice = self._identify(stream, seg, speech, end)
            if robot_voice:
                self.stats['robot speech suppressed late (by voice)'] += 1
        if robot_voice:
            self.stats['robot speech suppressed'] += 1
            self.stats[f'robot speech suppressed: {robot_voice}'] += 1
            self._withdraw(stream, seg, end)
            return
        finish = partial(self._finish_final, stream, seg, end, duration, speech, voice_id, known_voices)
        if self._speculation_covers(seg, end):
            self.stats['asr speculative finals used'] += 1
            if seg.speculating:
                # Its decode is still running: the worker runs jobs in order, so it is done by then.
                self.offload(lambda: None, lambda _: finish(seg.speculative_text, seg.speculative_confidence))
            else:
                finish(seg.speculative_text, seg.speculative_confidence)
        else:
            self._decode(audio, self._over_own_voice(seg.start - pad, end + pad), True,
                         lambda heard, text, confidence: finish(text, confidence))

    def _finish_final(self, stream: TalkerStream, seg: Segment, end: float, duration: float, speech: np.ndarray,
                      voice_id: str, known_voices: set, text: str, confidence: float) -> None:
        """The final of a closed utterance, once its words are decoded."""
        cfg = self.config
        if text and not self._trust_words(text, confidence, end, start=seg.start):
            # Garbled residue of our own voice: what was said is unknown (a "mm-hmm", most likely), and
            # words nobody said must not become a turn to answer. Who made the sound can still be known:
            # a voice heard before keeps the utterance, without words (as a cough would be); a voice
            # founded on this residue alone does not.
            if voice_id and self.registry.canonical(voice_id) in known_voices:
                self.stats['words dropped over own voice (voice kept)'] += 1
                text, confidence = '', 0.0
            else:
                self.stats['utterances withdrawn (doubtful words over own voice)'] += 1
                self._withdraw(stream, seg, end)
                return
        t1 = time.perf_counter()
        eot = turn_cues.end_of_turn_probability(text, speech, self.sample_rate, names=self.name_matcher.names)
        bc = turn_cues.backchannel_probability(text, duration, early=seg.backchannel_early if seg.early_done else None,
                                               audio=None if seg.early_done else speech)
        self.compute['turn cues'] += time.perf_counter() - t1
        if cfg.asr.backend == 'none':
            confidence = seg.speech_probability_sum / max(1, seg.speech_chunks)   # VAD's belief instead
        elif not text:
            confidence = 0.0
        self.stats['utterances final'] += 1
        self._publish_final(stream, seg, end, text, confidence, voice_id, eot, bc)

    def _identify(self, stream: TalkerStream, seg: Segment, speech: np.ndarray, end: float) -> tuple[str, str]:
        """(voice id, robot name if the voice is a robot's that was speaking)."""
        cfg = self.config
        emb = None
        t0 = time.perf_counter()
        if self.models.embedder is not None and speech.size >= self.models.embedder.min_samples:
            try:
                emb = self.models.embedder.embed(self._without_background(stream, seg, speech))
            except (ValueError, RuntimeError) as exc:
                self.drop('embedding failed', str(exc))
        self.compute['embedding'] += time.perf_counter() - t0
        if emb is None:
            return self._track_voice(stream, seg) or self._voice_from_direction(seg), ''
        self.embedding_log.append((seg.utterance_id, seg.start, end, emb))
        del self.embedding_log[:-EMBEDDING_LOG]
        if self.models.robot_voices is not None:
            for robot, sim in self.models.robot_voices.similarity(emb).items():
                speaking = self._own_speaking(end) if robot == self.robot else self._peer_speaking(robot, end)
                # A person talking over a peer sounds partly like it; the peer's own hearing knows better.
                heard = robot != self.robot and self._peer_heard_person(robot, seg.start, end)
                if sim >= cfg.echo.robot_voice_similarity and speaking and not heard:
                    return '', robot
        duration = speech.size / self.sample_rate
        overlapped = self._overlap_s(seg, end) > 0.3 * duration
        elsewhere = self._voices_elsewhere(seg, end)
        track_voice = self._track_voice(stream, seg)
        if duration < cfg.diarization.min_audio_s or overlapped:
            if track_voice:
                return track_voice, ''
            best, score = self.registry.best_match(emb, exclude=elsewhere) if self.registry.active() else ('', -1.0)
            if best and score >= cfg.diarization.same_voice_threshold:
                return self.registry.canonical(best), ''
            # A short or overlapped segment's embedding is unreliable: where the sound comes from says
            # more, as long as the voice does not contradict it.
            nearby = self._voice_from_direction(seg)
            if nearby and self.registry.similarity(nearby, emb) >= NEARBY_VOICE_MIN_SIMILARITY:
                return nearby, ''
            if duration < cfg.diarization.min_audio_s:
                return '', ''           # too little voice to found an identity on (a "mm-hmm")
        hint = track_voice or self._voice_from_direction(seg)
        voice_id, _ = self.registry.assign(emb, self.now(), hint=hint, learn=not overlapped, elsewhere=elsewhere)
        if not voice_id:
            return '', ''

        stream.voice_id = voice_id
        az, _ = self._azimuth(seg)
        self._voice_directions[voice_id] = (az, end)
        return voice_id, ''

    def _overlap_s(self, seg: Segment, end: float) -> float:
        """Seconds of the segment other people's speech covered. Counted per block while both were open,
        which includes the other's closing silence: for one that has ended, no more than the time its
        speech really overlapped (a 0.4 s fragment is not 0.7 s of someone else talking)."""
        total = 0.0
        for uid, sec in seg.overlapped_with.items():
            if uid in self._withdrawn:
                continue        # hearing took it back: noise or a robot's voice, nobody talking
            span = self._closed_spans.get(uid)
            if span is not None:
                sec = min(sec, max(0.0, min(end, span[1]) - max(seg.start, span[0])))
            total += sec
        return total

    def _without_background(self, stream: TalkerStream, seg: Segment, speech: np.ndarray) -> np.ndarray:
        """The utterance with the beam's background (learnt just before its onset) gated out."""
        cfg = self.config.diarization
        if cfg.background_reduction <= 0:
            return speech
        background = stream.audio(seg.start - cfg.background_context_s, seg.start - BACKGROUND_GAP_S)
        if background.size < BACKGROUND_MIN_S * self.sample_rate:
            self.stats['embeddings without background reduction (new track)'] += 1
            return speech
        return reduce_background(speech, background, self.sample_rate, cfg.background_reduction)

    def reference_envelope(self, buffer: ReferenceBuffer, stamps: np.ndarray, lag_hops: int) -> np.ndarray:
        """Per-hop levels (dB) of a played reference on the hop grid ``stamps``, starting lag_hops earlier."""
        if stamps.size == 0:
            return np.zeros(0)
        t0 = float(stamps[0]) - lag_hops * self.hop_s
        n = stamps.size + lag_hops
        x = buffer.get(t0, n * self.hop).reshape(n, self.hop)
        return 10.0 * np.log10(np.mean(x.astype(np.float64) ** 2, axis=1) + 1e-10)

    def _leak_diagnostics(self, stream: TalkerStream, start: float, end: float) -> dict:
        out = {}
        stamps, levels = stream.trail.window(start, end)
        lag = 8
        for name, (corr, unexplained) in self._peer_follow(stream, start, end).items():
            out[name] = (round(corr, 3), round(unexplained, 2))
        for other in self.streams.values():
            if other is stream:
                continue
            s2, l2 = other.trail.window(start - 2 * self.hop_s, end + 2 * self.hop_s)
            if s2.size == stamps.size + 4:
                out[f'track{other.track_id}'] = (round(envelope_correlation(levels, l2, range(-2, 3)), 3),
                                                 round(float(np.mean(levels) - np.mean(l2[2:-2])), 1))
        return out

    def _track_voice(self, stream: TalkerStream, seg: Segment) -> str:
        """The track's previous voice, if this segment comes from where that voice was heard: a track
        can be handed from one talker to another nearby, and then its voice is no hint."""
        voice = self.registry.canonical(stream.voice_id) if stream.voice_id else ''
        if not voice:
            return ''
        az, _ = self._azimuth(seg)
        places = [vaz for vid, (vaz, _) in self._voice_directions.items() if self.registry.canonical(vid) == voice]
        if places and min(abs(wrap(az - vaz)) for vaz in places) > math.radians(DIRECTION_HINT_DEG):
            return ''
        return voice

    def _voices_elsewhere(self, seg: Segment, end: float) -> set[str]:
        """Voices this robot heard recently from a clearly different direction than this segment."""
        az, _ = self._azimuth(seg)
        return {self.registry.canonical(vid) for vid, (vaz, t) in self._voice_directions.items()
                if end - t < VOICE_PLACE_MEMORY_S and abs(wrap(az - vaz)) > math.radians(ELSEWHERE_DEG)}

    def _voice_from_direction(self, seg: Segment) -> str:
        """The voice last heard from (about) this direction: people mostly stay where they are, so it is
        the likely talker when the embedding alone is borderline."""
        az, _ = self._azimuth(seg)
        best, best_t = '', -math.inf
        for voice_id, (vaz, t) in self._voice_directions.items():
            if abs(wrap(az - vaz)) <= math.radians(DIRECTION_HINT_DEG) and t > best_t:
                best, best_t = voice_id, t
        return self.registry.canonical(best) if best else ''

    def _overlaps(self) -> None:
        open_segments = [s.segment for s in self.streams.values() if s.segment is not None and not s.segment.robot_name]
        if len(open_segments) > 1:
            block = self.block_hops * self.hop_s
            for seg in open_segments:
                for other in open_segments:
                    if other is not seg:
                        seg.overlapped_with[other.utterance_id] = seg.overlapped_with.get(other.utterance_id, 0.0) + block

    # --- publishing ---------------------------------------------------------------------------------
    def _azimuth(self, seg: Segment) -> tuple[float, float]:
        if not seg.azimuths:
            return 0.0, math.pi
        a = np.asarray(seg.azimuths)
        w = np.asarray(seg.weights)
        c, s = float(np.sum(w * np.cos(a))), float(np.sum(w * np.sin(a)))
        r = math.hypot(c, s) / float(np.sum(w))
        std = math.sqrt(max(0.0, -2.0 * math.log(max(r, 1e-9))))
        track = self.tracker.get(seg.track_id)
        if track is not None:
            std = max(std / math.sqrt(len(a)), track.azimuth_std)
        return math.atan2(s, c), std

    def _publish_utterance(self, stream: TalkerStream, seg: Segment, end: float) -> None:
        """A partial (finals go out through ``_publish_final``)."""
        end = self._heard_over_own_voice_until(seg, end)
        if self._own_voice(stream, seg.start, end, early=True):
            # So far it only follows what we play (the canceller's residue): floor control would take
            # speech going on over us for a person talking and stop. Held back until it stops following
            # (a person talking over us) or the final withdraws it.
            self.stats['partials held back (follow own voice)'] += 1
            return
        az, std = self._azimuth(seg)
        seg.partials += 1
        seg.published = True
        seg.published_end = end
        eot = turn_cues.end_of_turn_probability(seg.transcript, names=self.name_matcher.names) \
            if seg.transcript else 0.0
        if seg.early_done:
            bc = turn_cues.backchannel_probability(seg.transcript, end - seg.start, early=seg.backchannel_early,
                                                   ongoing=True)
            if seg.cut_in_heard and not seg.transcript:
                bc = min(bc, CUT_IN_BACKCHANNEL_P)
        else:
            bc = 0.0
        self.publish('hearing/utterances', m.Utterance(
            utterance_id=seg.utterance_id, robot=self.robot, start=seg.start, end=max(end, seg.start),
            voice_id=self.registry.canonical(stream.voice_id) if stream.voice_id else '',
            azimuth=az, azimuth_std=std, transcript=seg.transcript, is_final=False, confidence=0.0,
            end_of_turn_probability=eot, backchannel_probability=bc, stamp=self.now()))

    def _withdraw(self, stream, seg, end) -> None:
        """Take an utterance back: a final with no words and no voice."""
        self._publish_final(stream, seg, end, text='', confidence=0.0, voice_id='', eot=0.0, bc=0.0)

    def _publish_final(self, stream, seg, end, text, confidence, voice_id, eot, bc) -> None:
        az, std = self._azimuth(seg)
        final = m.Utterance(
            utterance_id=seg.utterance_id, robot=self.robot, start=seg.start, end=max(end, seg.start),
            voice_id=voice_id, azimuth=az, azimuth_std=std, transcript=text, is_final=True,
            confidence=float(confidence), end_of_turn_probability=float(eot), backchannel_probability=float(bc),
            stamp=self.now())
        self.publish('hearing/utterances', final)
        if final.withdrawn:
            self._withdrawn.append(seg.utterance_id)
        self._closed_spans[seg.utterance_id] = (final.start, final.end)
        while len(self._closed_spans) > CLOSED_SPANS_KEPT:
            del self._closed_spans[next(iter(self._closed_spans))]
        self._publish_identities()

    def _publish_sources(self, t: float, tracks: list[Track]) -> None:
        sources = []
        for tr in tracks:
            if not tr.confirmed:
                continue
            stream = self.streams.get(tr.track_id)
            seg = stream.segment if stream is not None else None
            sources.append(m.SoundSource(
                track_id=tr.track_id, azimuth=tr.azimuth, azimuth_std=tr.azimuth_std, energy_db=tr.energy_db,
                speech_probability=stream.last_probability if stream is not None else 0.0,
                robot_name=(seg.robot_name if seg is not None and seg.robot_name else tr.robot_name)))
        self.publish('audio/sources', m.SoundSources(stamp=t, robot=self.robot, sources=sources))

    def _publish_identities(self, force: bool = False) -> None:
        now = self.now()
        if not force and now - self._last_identities < self.config.identities_period_s:
            return
        self._last_identities = now
        for identity in self.registry.to_publish(now):
            self.publish('/voices/identities', identity)
