"""Speech output driven through the in-process bus with real TTS (espeak-ng)."""
from __future__ import annotations

import numpy as np
import pytest

from voice_robot import messages as m
from voice_robot.acting import tts
from voice_robot.acting.config import SpeechConfig
from voice_robot.acting.playback import NullSink
from voice_robot.acting.speech import SpeechOutputStage, segments
from voice_robot.config.robots import RobotSpec
from voice_robot.pipeline import InProcessBus

from bus_rig import BusRig

VOICE = 'espeak:en-us'
ARRAY = {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}
CHUNK_S = 0.02


def robot(voice: str | None = VOICE) -> RobotSpec:
    return RobotSpec(name='ada', position_m=[1.0, 1.0], mic_array=ARRAY, voice=voice)


class Rig(BusRig):
    """A speech stage on a bus, with everything it publishes recorded."""

    def __init__(self, config: SpeechConfig | None = None, voice: str | None = VOICE, sink=None):
        super().__init__()
        self.config = config or SpeechConfig(chunk_ms=CHUNK_S * 1000)
        # 'full' waits make playback independent of this machine's speed (charge_compute is off).
        self.stage = SpeechOutputStage(robot(voice), self.config, sink=sink, synthesis_wait='full')
        self.bus.add(self.stage, '/ada')
        self.audio: list[m.AudioChunk] = []
        self.states: list[m.SpeechState] = []
        self.bus.tap('/ada/speech/audio', lambda topic, msg, t: self.audio.append(msg))
        self.bus.tap('/ada/speech/state', lambda topic, msg, t: self.states.append(msg))

    def send(self, at: float, action, speech_id='', text='', kind=m.SpeechKind.REPLY, final=True, **kw):
        self.bus.publish('/ada/speech/command', m.SpeechCommand(action=action, speech_id=speech_id, text=text,
                                                                kind=kind, final=final, **kw), at=at)

    def states_of(self, speech_id):
        return [s for s in self.states if s.speech_id == speech_id]

    def end_of(self, speech_id) -> m.SpeechState:
        ends = [s for s in self.states_of(speech_id) if not s.speaking]
        assert len(ends) == 1, f'expected one end state for {speech_id}, got {ends}'
        return ends[0]

    def audio_between(self, t0, t1) -> np.ndarray:
        parts = [c.samples[:, 0] for c in self.audio if t0 <= c.stamp < t1]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@pytest.fixture
def rig():
    with Rig() as r:
        yield r


def synth(text: str, config: SpeechConfig) -> np.ndarray:
    return tts.synthesize(VOICE, text, config.sample_rate, config.level_dbfs)


def test_playback_is_stamped_on_the_sample_grid_whenever_the_ticks_come():
    # Ticks off the sample grid (a late tick, a clock between samples): every stamp still names the
    # sample it plays at, so the echo reference and the simulator store each chunk where it is played.
    with BusRig() as rig:
        rig.bus.now = 0.3 / 16000
        config = SpeechConfig(chunk_ms=CHUNK_S * 1000)
        rig.bus.add(SpeechOutputStage(robot(), config, synthesis_wait='full'), '/ada')
        audio = []
        rig.bus.tap('/ada/speech/audio', lambda topic, msg, t: audio.append(msg))
        rig.bus.publish('/ada/speech/command', m.SpeechCommand(action=m.SpeechAction.SAY, speech_id='s1',
                                                                text='Hello there.', final=True), at=0.1)
        rig.run(2.0)
    samples = np.array([c.stamp for c in audio]) * config.sample_rate
    assert audio and np.allclose(samples, np.round(samples), atol=1e-6)


def test_say_plays_exactly_the_synthesised_sentences_in_chunks(rig):
    rig.send(0.1, m.SpeechAction.SAY, 's1', 'Hello there. How are you today?', in_reply_to='u7',
             reply_to_start=-1.5, reply_to_end=0.05)
    rig.run(6.0)
    assert rig.audio, 'nothing was played'
    n = int(round(rig.config.sample_rate * CHUNK_S))
    assert all(c.samples.shape == (n, 1) and c.samples.dtype == np.float32 for c in rig.audio)
    assert all(c.sample_rate == rig.config.sample_rate and c.source == 'ada' for c in rig.audio)
    stamps = np.array([c.stamp for c in rig.audio])
    np.testing.assert_allclose(np.diff(stamps), CHUNK_S, atol=1e-6)   # continuous, stamped with play time
    assert stamps[0] == pytest.approx(0.1, abs=CHUNK_S + 1e-9)
    played = np.concatenate([c.samples[:, 0] for c in rig.audio])
    expected = np.concatenate([synth('Hello there.', rig.config), synth('How are you today?', rig.config)])
    # The played audio is the two sentences back to back (the last chunk padded with silence).
    assert played.size - expected.size < n
    np.testing.assert_allclose(played[:expected.size], expected, atol=1e-6)
    first, end = rig.states_of('s1')[0], rig.end_of('s1')
    assert first.speaking and first.started == pytest.approx(stamps[0])
    assert first.in_reply_to == 'u7' and first.kind == m.SpeechKind.REPLY
    assert (first.reply_to_start, first.reply_to_end) == (-1.5, 0.05)
    assert end.text == 'Hello there. How are you today?' and end.progress == 1.0 and not end.cancelled
    assert end.stamp == pytest.approx(rig.audio[-1].end, abs=CHUNK_S + 1e-9)


def test_progress_is_published_about_every_100ms_and_never_goes_back(rig):
    rig.send(0.0, m.SpeechAction.SAY, 's1', 'This sentence takes well over a second to say out loud.')
    rig.run(6.0)
    speaking = [s for s in rig.states_of('s1') if s.speaking]
    assert len(speaking) >= 8
    gaps = np.diff([s.stamp for s in speaking])
    assert gaps.max() <= 0.1 + CHUNK_S + 1e-6
    progress = [s.progress for s in speaking]
    assert progress == sorted(progress) and 0 < progress[0] < 0.2 and progress[-1] > 0.8


def test_cancel_stops_within_one_chunk_and_reports_what_was_said(rig):
    rig.send(0.0, m.SpeechAction.SAY, 's1', 'One two three four five six seven eight nine ten eleven twelve.')
    rig.send(0.7, m.SpeechAction.CANCEL, 's1')
    rig.run(4.0)
    last_audio_end = max(c.end for c in rig.audio)
    assert 0.7 < last_audio_end <= 0.7 + CHUNK_S + 1e-9
    end = rig.end_of('s1')
    assert end.cancelled and not end.speaking and end.stamp == pytest.approx(0.7)
    said = end.text.split()
    assert 0 < len(said) < 12 and said == 'One two three four five six seven eight nine ten eleven twelve.'.split()[:len(said)]


def test_cancel_without_id_stops_playing_and_queued_acts(rig):
    rig.send(0.0, m.SpeechAction.SAY, 'a', 'Let me tell you something rather long about the weather.')
    rig.send(0.1, m.SpeechAction.SAY, 'b', 'And then something else.')
    rig.send(0.5, m.SpeechAction.CANCEL, '')
    rig.run(5.0)
    assert max(c.end for c in rig.audio) <= 0.5 + CHUNK_S + 1e-9
    assert rig.end_of('a').cancelled and rig.end_of('b').cancelled
    assert not any(s.speaking for s in rig.states_of('b'))


def test_append_streams_sentences_and_final_ends_the_act(rig):
    rig.send(0.0, m.SpeechAction.SAY, 's1', 'First sentence.', final=False)
    rig.send(0.3, m.SpeechAction.APPEND, 's1', 'Second one.', final=False)
    rig.run(0.3 + 0.001)
    # Playback began with the first sentence before the rest of the reply existed.
    assert rig.audio and rig.audio[0].stamp == pytest.approx(0.0, abs=CHUNK_S)
    rig.send(3.0, m.SpeechAction.APPEND, 's1', 'Third after a pause.', final=True)
    rig.run(8.0)
    end = rig.end_of('s1')
    assert end.text == 'First sentence. Second one. Third after a pause.'
    # While it waited for the third sentence the act stayed open (no end state before the third played).
    assert end.stamp > 3.0
    assert sum(1 for s in rig.states_of('s1') if not s.speaking) == 1
    third = synth('Third after a pause.', rig.config)
    late = rig.audio_between(3.0, 10.0)
    np.testing.assert_allclose(late[:third.size], third, atol=1e-6)


def test_a_gap_longer_than_max_gap_ends_the_act_and_late_appends_are_dropped(rig):
    rig.send(0.0, m.SpeechAction.SAY, 's1', 'Only this.', final=False)
    rig.send(5.0, m.SpeechAction.APPEND, 's1', 'Too late.', final=True)
    rig.run(8.0)
    end = rig.end_of('s1')
    last_audio = max(c.end for c in rig.audio)
    assert end.stamp - last_audio == pytest.approx(rig.config.max_gap_s, abs=2 * CHUNK_S)
    assert end.text == 'Only this.' and not end.cancelled
    assert rig.stage.stats['dropped: append to ended act'] == 1
    assert not rig.audio_between(4.9, 9.0).size


def test_reply_replaces_a_queued_filler_that_has_not_started(rig):
    rig.send(0.0, m.SpeechAction.SAY, 'r0', 'A first reply that is still playing.')
    rig.send(0.2, m.SpeechAction.SAY, 'f1', 'Hmm, let me think.', kind=m.SpeechKind.FILLER)
    rig.send(0.4, m.SpeechAction.SAY, 'r1', 'Here is the answer.', kind=m.SpeechKind.REPLY)
    rig.run(8.0)
    assert not rig.states_of('f1'), 'the replaced filler must never play'
    assert rig.stage.stats['fillers replaced'] == 1
    assert rig.end_of('r0').stamp <= rig.states_of('r1')[0].started + 1e-9
    assert rig.end_of('r1').text == 'Here is the answer.'


def test_a_playing_filler_finishes_before_the_reply(rig):
    rig.send(0.0, m.SpeechAction.SAY, 'f1', 'One moment.', kind=m.SpeechKind.FILLER, in_reply_to='u1')
    rig.send(0.2, m.SpeechAction.SAY, 'r1', 'The capital of France is Paris.', in_reply_to='u1')
    rig.run(6.0)
    filler_end = rig.end_of('f1')
    reply_start = rig.states_of('r1')[0]
    assert filler_end.text == 'One moment.' and filler_end.kind == m.SpeechKind.FILLER
    assert reply_start.started >= filler_end.stamp - 1e-9
    assert reply_start.started - filler_end.stamp <= CHUNK_S + 1e-9


def test_duck_lowers_the_volume_without_ending_the_act(rig):
    text = 'This is a fairly long sentence that keeps going for a while so we can duck it.'
    rig.send(0.0, m.SpeechAction.SAY, 's1', text)
    rig.send(0.8, m.SpeechAction.DUCK)
    rig.send(1.6, m.SpeechAction.UNDUCK)
    rig.run(8.0)
    played = np.concatenate([c.samples[:, 0] for c in rig.audio])
    expected = synth(text, rig.config)
    n = int(round(rig.config.sample_rate * CHUNK_S))
    start = int(round((0.8 + 2 * CHUNK_S) * rig.config.sample_rate))
    stop = int(round(1.6 * rig.config.sample_rate))
    ratio = np.sqrt(np.mean(played[start:stop] ** 2) / np.mean(expected[start:stop] ** 2))
    assert 20 * np.log10(ratio) == pytest.approx(rig.config.duck_gain_db, abs=0.5)
    after = slice(stop + 2 * n, stop + 20 * n)
    np.testing.assert_allclose(played[after], expected[after], atol=1e-6)   # full volume again
    ducked = [s for s in rig.states_of('s1') if s.speaking and s.ducked]
    assert ducked and min(s.stamp for s in ducked) == pytest.approx(0.8)
    end = rig.end_of('s1')
    assert not end.cancelled and end.text == text


def test_tts_failure_speaks_nothing_reports_and_counts(rig):
    rig.send(0.0, m.SpeechAction.SAY, 'bad', 'This cannot be said.', voice='espeak:zz-no-such-voice')
    rig.send(0.5, m.SpeechAction.SAY, 'good', 'But this can.')
    rig.run(5.0)
    assert rig.stage.stats['tts errors'] >= 1
    bad_end = rig.end_of('bad')
    assert not bad_end.speaking and bad_end.text == '' and bad_end.started == 0.0
    assert rig.audio and min(c.stamp for c in rig.audio) >= 0.5 - 1e-9
    assert rig.end_of('good').text == 'But this can.'


def test_every_sentence_of_a_failing_voice_is_counted_and_the_act_still_ends(rig):
    rig.send(0.0, m.SpeechAction.SAY, 's1', 'First.', final=False, voice='espeak:zz-no-such-voice')
    rig.send(0.1, m.SpeechAction.APPEND, 's1', 'Second.', final=False)
    rig.send(0.2, m.SpeechAction.APPEND, 's1', 'Third.', final=True)
    rig.run(3.0)
    assert rig.stage.stats['tts errors'] == 3
    assert not rig.audio
    end = rig.end_of('s1')
    assert end.text == '' and not end.cancelled and end.stamp < 0.5


def test_fallback_voice_is_used_when_the_chosen_voice_fails():
    rig = Rig(SpeechConfig(chunk_ms=CHUNK_S * 1000, fallback_voice=VOICE))
    try:
        rig.send(0.0, m.SpeechAction.SAY, 's1', 'Still audible.', voice='espeak:zz-no-such-voice')
        rig.run(4.0)
        assert rig.stage.stats['tts fallbacks'] == 1
        assert rig.end_of('s1').text == 'Still audible.' and rig.audio
    finally:
        rig.close()


def test_voice_comes_from_the_robot_else_the_config_default():
    assert SpeechOutputStage(robot('espeak:en-us+f3'), SpeechConfig(warm_up=False)).voice == 'espeak:en-us+f3'
    assert SpeechOutputStage(robot(None), SpeechConfig(default_voice='flite:slt', warm_up=False)).voice == 'flite:slt'


def test_bad_commands_are_dropped_and_counted(rig):
    rig.bus.publish('/ada/speech/command', 'not a command', at=0.0)
    rig.send(0.0, 99, 'x', 'nope')
    rig.send(0.0, m.SpeechAction.APPEND, 'nobody', 'orphan')
    rig.send(0.0, m.SpeechAction.CANCEL, 'nobody')
    rig.send(0.0, m.SpeechAction.SAY, 'nan', 'time is broken', reply_to_start=float('nan'))
    rig.send(0.1, m.SpeechAction.SAY, 'ok', 'Fine.')
    rig.send(0.2, m.SpeechAction.SAY, 'ok', 'Duplicate.')
    rig.run(3.0)
    stats = rig.stage.stats
    assert stats['dropped: bad command'] == 3
    assert stats['dropped: append to unknown act'] == 1
    assert stats['dropped: cancel of unknown act'] == 1
    assert stats['dropped: duplicate speech_id'] == 1
    assert rig.stage.stats['handler errors'] == 0
    assert rig.end_of('ok').text == 'Fine.'


def test_sink_receives_every_played_chunk_and_a_failing_sink_is_counted():
    sink = NullSink()
    rig = Rig(sink=sink)
    try:
        rig.send(0.0, m.SpeechAction.SAY, 's1', 'Into the loudspeaker.')
        rig.run(3.0)
        assert sink.stats['chunks'] == len(rig.audio) > 0
    finally:
        rig.close()

    class BrokenDevice(NullSink):      # an external device that fails on every write
        def write(self, samples, sample_rate):
            raise OSError('device unplugged')

    rig = Rig(sink=BrokenDevice())
    try:
        rig.send(0.0, m.SpeechAction.SAY, 's1', 'Still published.')
        rig.run(3.0)
        assert rig.stage.stats['playback errors'] == len(rig.audio) > 0
        assert rig.end_of('s1').text == 'Still published.'
    finally:
        rig.close()


def test_queue_is_bounded():
    rig = Rig(SpeechConfig(chunk_ms=CHUNK_S * 1000, max_queued_acts=2))
    try:
        for i in range(5):
            rig.send(0.0, m.SpeechAction.SAY, f's{i}', f'Number {i}.')
        rig.run(0.001)
        assert rig.stage.stats['dropped: speech queue full'] == 2
    finally:
        rig.close()


def test_long_sentences_are_cut_at_clauses():
    text = ('When the rain finally stopped, the children ran outside, jumped into every puddle they could find, '
            'and laughed until the sun went down behind the hills.')
    parts = segments(text, 60)
    assert ' '.join(parts) == text and len(parts) >= 3 and all(len(p) <= 60 for p in parts[:-1])
    assert segments('Hello there. How are you?') == ['Hello there.', 'How are you?']


def test_with_compute_charged_a_cancel_during_synthesis_still_stops_within_one_chunk(tmp_path, monkeypatch):
    # The eval's mode: synthesis (piper, slower than a chunk) costs simulated time, one chunk per tick,
    # so a CANCEL that arrives while the first sentence is synthesised is handled before anything plays.
    monkeypatch.setenv('VOICE_ROBOT_CACHE', str(tmp_path))       # nothing cached: real synthesis time
    config = SpeechConfig(chunk_ms=CHUNK_S * 1000)
    stage = SpeechOutputStage(robot('piper:joe'), config)          # synthesis_wait='tick', as build() makes it
    bus = InProcessBus(charge_compute=True)
    bus.add(stage, '/ada')
    audio, states = [], []
    bus.tap('/ada/speech/audio', lambda topic, msg, t: audio.append(msg))
    bus.tap('/ada/speech/state', lambda topic, msg, t: states.append(msg))
    text = ('This is a long first sentence for the piper voice, long enough that synthesising it takes '
            'clearly longer than one audio chunk on any machine.')
    bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.SAY, 's1', text), at=1.0)
    bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.CANCEL, 's1'), at=1.05)
    bus.publish('/ada/speech/command', m.SpeechCommand(m.SpeechAction.SAY, 's2', 'Short.'), at=3.0)
    bus.run_until(8.0)
    bus.close()
    assert all(chunk.end <= 1.05 + CHUNK_S + 1e-9 for chunk in audio if chunk.stamp < 3.0)
    cancelled = [s for s in states if s.speech_id == 's1' and s.cancelled]
    assert len(cancelled) == 1
    later = [chunk for chunk in audio if chunk.stamp >= 3.0]
    assert later and later[0].stamp > 3.0             # the synthesis time of 's2' was charged before it played
