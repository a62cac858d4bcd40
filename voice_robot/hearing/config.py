"""Settings of the hearing pipeline (one per robot). Defaults live here and in config/*.yaml."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator

from voice_robot.config.base import Section


class DoaConfig(Section):
    # srp_phat, music, normmusic: pyroomacoustics; gevd: whitened by the learned background (doa.NoiseAwareDoa)
    algorithm: Literal['srp_phat', 'music', 'normmusic', 'gevd'] = 'srp_phat'
    nfft: int = Field(512, ge=128, le=4096)
    freq_range_hz: list[float] = Field(default_factory=lambda: [300.0, 3500.0], min_length=2, max_length=2)
    grid_step_deg: float = Field(2.0, gt=0, le=30)
    block_s: float = Field(0.064, gt=0.01, le=1.0)     # audio per DOA estimate
    max_sources: int = Field(3, ge=1, le=8)
    energy_margin_db: float = Field(3.0, ge=0)         # DOA only on blocks this far above the noise floor
    context_blocks: int = Field(4, ge=1, le=8)         # blocks of STFT frames per DOA estimate
    secondary_ratio: float = Field(0.6, gt=0, le=1)    # weaker peaks than this (relative) are not sources
    min_separation_deg: float = Field(25.0, ge=0, le=180)
    min_excess_db: float = Field(3.0, ge=0)           # gevd: a source must stand out from the background this much


class TrackingConfig(Section):
    birth_blocks: int = Field(3, ge=1)                # consecutive supporting blocks to create a track
    death_s: float = Field(1.5, gt=0)                  # unsupported time before a track is dropped
    gate_deg: float = Field(20.0, gt=0, le=180)        # association gate
    process_noise_deg: float = Field(2.0, ge=0)        # per second
    measurement_noise_deg: float = Field(6.0, gt=0)
    merge_deg: float = Field(12.0, ge=0, le=90)        # closer tracks are one talker
    tentative_death_s: float = Field(0.4, gt=0)        # unconfirmed tracks die sooner
    support_s: float = Field(0.4, gt=0)                # a talker is active while DOA supported this recently


class BeamformerConfig(Section):
    kind: Literal['mvdr', 'das'] = 'mvdr'
    diagonal_loading: float = Field(1e-2, ge=0)


class EchoConfig(Section):
    """Suppression of the robot's own voice and other robots' voices."""
    cancel_own: bool = True
    filter_taps: int = Field(10, ge=1, le=64)          # partitions of 16 ms: 160 ms of echo path
    # Cancel each peer robot's voice too, with its played audio (its speech/audio) as the reference: a
    # peer talking across the room otherwise masks a person near us in DOA, beams and VAD.
    cancel_peers: bool = True
    peer_filter_taps: int = Field(16, ge=1, le=64)     # 256 ms: a path across the room and its early echoes
    step: float = Field(1.0, gt=0, le=1.5)             # NLMS step before double-talk control
    reference_wait_s: float = Field(0.1, ge=0, le=1.0)  # hold mic audio this long for late speech/audio
    own_echo_margin_db: float = Field(12.0)            # while the robot talks, a person must exceed its residue by this
    # Per-bin barge-in evidence (echo.NearEndDetector): bins of 300-4000 Hz where what the canceller
    # leaves exceeds the expected residual echo by near_end_margin_db; a hop with near_end_share of
    # such bins is a person's; near_end_hops of them in a block (or at an onset) make a person.
    near_end_margin_db: float = Field(10.0, ge=0)
    near_end_share: float = Field(0.15, gt=0, le=1)
    near_end_hops: int = Field(2, ge=1, le=8)
    # A hop is also a person's when near_end_low_share of the bins in near_end_low_band_hz stand out:
    # voices with little energy above 300 Hz (flite's, deep voices) show there only. 0 (the default):
    # off. 0.3 hears far more such people over the robot's voice, and so also more of their 1 s
    # "mm-hmm"s, which then outlast conversing.barge_in.give_up_after_s: raise that to 0.9 with it
    # (docs/floor-control.md, "Deep voices").
    near_end_low_band_hz: list[float] = Field(default_factory=lambda: [100.0, 1000.0], min_length=2, max_length=2)
    near_end_low_share: float = Field(0.0, ge=0, le=1)
    near_end_decay_db_per_s: float = Field(40.0, gt=0)  # residue after each syllable dies no faster (RT60 1.5 s)
    post_filter: bool = True                           # suppress residual echo before DOA, beams, VAD, ASR
    robot_tail_s: float = Field(0.4, ge=0)             # a robot's reverberation after it stops speaking
    robot_direction_gate_deg: float = Field(20.0, ge=0, le=180)
    robot_voice_similarity: float = Field(0.80, ge=0, le=1)
    # A segment heard while a peer robot plays, whose level envelope follows what that peer plays
    # (its speech/audio) this closely, is the peer's voice wherever the array places it.
    peer_envelope_correlation: float = Field(0.55, ge=0, le=1)
    peer_unexplained_share: float = Field(0.15, ge=0, le=1)   # ... and is loud this rarely while the peer is quiet
    # A segment heard while this robot speaks whose envelope follows its own played audio this closely is
    # the canceller's residue, even where the per-bin detector saw a person.
    own_envelope_correlation: float = Field(0.8, ge=0, le=1)

    @field_validator('near_end_low_band_hz')
    @classmethod
    def _low_band(cls, value: list[float]) -> list[float]:
        if not 0 <= value[0] < value[1] <= 8000:
            raise ValueError(f'expected [low, high] Hz with 0 <= low < high <= 8000, got {value}')
        return value


class VadConfig(Section):
    backend: Literal['silero', 'webrtcvad', 'energy'] = 'silero'
    threshold: float = Field(0.5, ge=0, le=1)
    located_threshold: float = Field(0.5, ge=0, le=1)  # onset threshold where DOA currently places a source
    min_speech_ms: float = Field(120.0, ge=0)          # shorter segments are withdrawn (final with no text)
    onset_ms: float = Field(64.0, ge=32)               # speech this long opens an utterance (first partial)
    min_silence_ms: float = Field(350.0, ge=0)        # VAD silence that closes a segment (commas are shorter)
    pad_ms: float = Field(120.0, ge=0)
    max_utterance_s: float = Field(20.0, gt=1)


class EmbedderConfig(Section):
    backend: Literal['resemblyzer', 'speechbrain'] = 'resemblyzer'
    model: Optional[str] = None                        # speechbrain: local dir or hub id
    device: str = 'cpu'
    allow_download: bool = False                       # speechbrain hub ids: fetch weights (needs network)


class DiarizationConfig(Section):
    # Beamformed reverberant speech: same talker 0.74-0.93, different talkers <= 0.65 (resemblyzer,
    # bench simulator scene); clean TTS voices reach 0.76 between different espeak variants.
    same_voice_threshold: float = Field(0.72, ge=-1, le=1)   # cosine to join a voice
    merge_threshold: float = Field(0.80, ge=-1, le=1)        # cosine to merge two voice ids
    # Across a pause inside an utterance, speech on either side less similar than this is two talkers
    # (people one behind the other share a bearing); -1 never splits. Library scenes: one voice across
    # a pause 0.64-0.83, another voice 0.34-0.45.
    voice_change_threshold: float = Field(0.55, ge=-1, le=1)
    min_audio_s: float = Field(1.0, ge=0)     # shorter segments (backchannels) borrow a voice, never found one
    # The beam's background just before an utterance is gated out of it before embedding (0 = off).
    background_reduction: float = Field(0.9, ge=0, le=1)
    background_context_s: float = Field(3.0, gt=0)     # how much of the beam before the onset to learn it from


class AsrConfig(Section):
    backend: Literal['faster_whisper', 'openai', 'none'] = 'faster_whisper'
    model: str = 'tiny.en'             # size, local CTranslate2 dir, or hub id; "tiny.en" uses the bundled copy
    device: str = 'cpu'
    compute_type: str = 'int8'
    cpu_threads: int = Field(2, ge=1, le=64)
    beam_size: int = Field(1, ge=1, le=10)
    # Whisper encodes 30 s however short the audio. A shorter window (never shorter than the audio plus
    # 1 s) cuts a CPU decode of a short utterance by most of the encoder's share (tiny.en, 2 threads:
    # 0.37 -> 0.25 s at 20 s, 0.11 s at 10 s), and the decode after a talker pauses is most of the
    # answer's latency; it hears robot names a little less often (54 -> 52 of 60 clean phrases at 20 s).
    encoder_window_s: float = Field(20.0, ge=1.0, le=30.0)
    # Audio heard while this robot plays its voice (barge-in decisions, partials, finals of speech over
    # it): the canceller's residue comes out of a shorter window as words nobody said more often, and
    # such words stop the robot. Whisper's own window by default.
    over_own_voice_encoder_window_s: float = Field(30.0, ge=1.0, le=30.0)
    # Partials over it decide whether the robot stops. A shorter window decodes them sooner (the first
    # 0.3-1 s of a barge-in: 0.05-0.08 s at 8 s against 0.33-0.41 s at 30 s, tiny.en, 2 threads, AMD),
    # so words can stop the robot with the 0.18 s acoustic estimate; on the library's barge-in scenes
    # (6 interleaved charged runs) 8 s gave yield p95 380-525 ms against 677-1235, but stopped for 6 of
    # 42 backchannels against 1. Whisper's own window by default; 8 where interruptions matter more.
    barge_in_encoder_window_s: float = Field(30.0, ge=1.0, le=30.0)
    language: Optional[str] = 'en'
    partial_interval_s: float = Field(0.5, gt=0)      # first re-decode interval while someone speaks
    partial_growth: float = Field(1.3, ge=1.0, le=4.0)  # each next partial waits that much longer (compute)
    openai_model: str = 'gpt-4o-mini-transcribe'
    api_key_env: str = 'OPENAI_API_KEY'
    base_url: Optional[str] = None
    timeout_s: float = Field(10.0, gt=0)
    openai_partials: bool = False                      # partial results through the API cost a request each
    allow_download: bool = False                       # sizes / hub ids not in the local cache
    name_match_threshold: float = Field(0.75, ge=0, le=1)   # fuzzy matching of words to robot names
    min_partial_audio_s: float = Field(0.5, ge=0)      # no ASR partial on less speech than this
    # Partial text decides barge-ins while this robot speaks; otherwise only displays follow it, and each
    # such decode can hold the CPU just as the talker stops, delaying the final (and the answer) by a decode.
    partials_while_idle: bool = False
    # Speculative final: once a talker has been silent this long, decode the segment as it stands;
    # if the silence goes on to end the segment, the final reuses it (0 = off). Keeps finals fast
    # with a longer vad.min_silence_ms; must be at least vad.pad_ms (the final's audio pad).
    speculative_after_ms: float = Field(160.0, ge=0)
    barge_in_words: bool = True        # decode speech over this robot's own voice at 0.18 s and 0.3 s
    # Words heard over the robot's own voice with less confidence than this are its residue garbling a
    # "mm-hmm" ("you know?", "love you"), not what the person said: partials keep their earlier text.
    over_own_voice_min_confidence: float = Field(0.3, ge=0, le=1)


class HearingConfig(Section):
    sample_rate: int = Field(16000, ge=8000, le=48000)
    doa: DoaConfig = Field(default_factory=DoaConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    beamformer: BeamformerConfig = Field(default_factory=BeamformerConfig)
    echo: EchoConfig = Field(default_factory=EchoConfig)
    vad: VadConfig = Field(default_factory=VadConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    diarization: DiarizationConfig = Field(default_factory=DiarizationConfig)
    asr: AsrConfig = Field(default_factory=AsrConfig)
    max_queue_frames: int = Field(50, ge=1)           # bounded input queue in the node
    max_gap_s: float = Field(0.5, gt=0)               # longer gaps in audio/raw restart the stream
    history_s: float = Field(1.0, ge=0.3, le=5.0)     # audio kept to beamform a new talker from its onset
    identities_period_s: float = Field(1.0, gt=0)     # publish changed voices at most this often
    # Acoustic backchannel-or-interruption estimate while the robot talks, from models fitted on speech
    # heard over the robot's voice: 'bundled' (a linear model on Whisper encoder states where the
    # Whisper model is installed, else the trees), 'trees' (gradient-boosted trees on hand-made
    # features), 'logistic' (the clean-render model, as when the robot is silent), or the path of a
    # bundle written by `python -m voice_robot.bench.hearing --fit-early`.
    backchannel_model: str = 'bundled'

    @field_validator('backchannel_model')
    @classmethod
    def _model_exists(cls, value: str) -> str:
        if value not in ('bundled', 'trees', 'logistic') and not Path(value).expanduser().is_file():
            raise ValueError(f"expected 'bundled', 'trees', 'logistic' or the path of a model file (--fit-early); "
                             f'no file {value}')
        return value
