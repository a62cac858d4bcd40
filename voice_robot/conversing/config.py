"""Settings of addressee estimation, end of turn, barge-in, floor control and the dialogue agent."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from voice_robot.config.base import Section


class AddresseeConfig(Section):
    weights_file: Optional[str] = None       # fitted cue weights (YAML); None = the bundled fit
    fuse_window_s: float = Field(0.15, ge=0)  # wait this long for other robots' estimates
    min_probability: float = Field(0.5, ge=0, le=1)   # below this the decision is "others"


class TurnConfig(Section):
    """End of turn: VAD silence combined with the transcript and prosody."""
    min_silence_s: float = Field(0.25, ge=0)      # earliest possible end of turn
    max_silence_s: float = Field(1.2, gt=0)       # end of turn whatever the transcript says
    complete_threshold: float = Field(0.5, ge=0, le=1)


class BargeInConfig(Section):
    decide_after_s: float = Field(0.12, gt=0)     # speech heard before the stop/keep decision (hearing: EARLY_WINDOWS_S)
    give_up_after_s: float = Field(0.6, gt=0)     # undecided speech this long stops the robot
    # Acoustics alone (hearing's early backchannel probability) stop the robot only when this sure: over
    # the robot's own voice the first 0.12-0.3 s tell "mm-hmm" from "wait" imperfectly (hearing's models
    # put 38 % of interruptions and 0.2 % of backchannels at 0.1 or below by 0.18 s, 56 % and 0.3 % by
    # 0.3 s), so words and speech that goes on past give_up_after_s decide many barge-ins.
    stop_threshold: float = Field(0.9, ge=0, le=1)
    early_stop_threshold: float = Field(0.9, ge=0, le=1)   # on the first ~0.1 s after decide_after_s
    duck_gain_db: float = Field(-12.0, le=0)
    resume_after_false_s: float = Field(0.8, gt=0)


class FloorConfig(Section):
    claim_window_s: float = Field(0.12, ge=0)     # collect rival claims this long before deciding
    lease_s: float = Field(1.5, gt=0)             # a silent holder loses the floor after this
    heartbeat_s: float = Field(0.5, gt=0)


class LlmConfig(Section):
    backend: Literal['offline', 'openai'] = 'offline'
    model: str = 'gpt-4o-mini'
    base_url: Optional[str] = None            # any OpenAI-compatible server (Ollama, vLLM, llama.cpp)
    api_key_env: str = 'OPENAI_API_KEY'
    timeout_s: float = Field(8.0, gt=0)
    first_token_timeout_s: float = Field(4.0, gt=0)
    max_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.6, ge=0, le=2)
    think_time_s: float = Field(0.0, ge=0)    # offline brain: simulated latency (exercises fillers)


class DialogueConfig(Section):
    llm: LlmConfig = Field(default_factory=LlmConfig)
    filler_after_s: float = Field(0.9, gt=0)  # say a filler when the first sentence is this late
    fillers: list[str] = Field(default_factory=lambda: ['Hmm, let me think.', 'One moment.', 'Let me see.'])
    persona: str = 'You are {name}, a friendly robot in a room with several people and robots. Answer briefly.'
    memory_turns: int = Field(20, ge=1)
    allowed_gestures: list[str] = Field(default_factory=lambda: ['nod', 'shake', 'wave', 'point', 'tilt'])
    poll_period_s: float = Field(0.02, gt=0, le=0.5)   # how often a streaming reply is polled for sentences
    gesture_duration_s: float = Field(1.0, gt=0)       # duration asked for a gesture (motion clamps it)


class ConversingConfig(Section):
    addressee: AddresseeConfig = Field(default_factory=AddresseeConfig)
    turn: TurnConfig = Field(default_factory=TurnConfig)
    barge_in: BargeInConfig = Field(default_factory=BargeInConfig)
    floor: FloorConfig = Field(default_factory=FloorConfig)
    dialogue: DialogueConfig = Field(default_factory=DialogueConfig)
