"""Speech recognition: bundled Whisper on recordings and in rooms, robot names, the OpenAI API (faked)."""
import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import soundfile

from hearing_helpers import SR, tts
from voice_robot.hearing import scenes
from voice_robot.hearing.asr import (AsrError, OpenAiRecognizer, RobotNameMatcher, bundled_whisper_path,
                                     collapse_loops, make_recognizer, resolve_whisper_model)
from voice_robot.hearing.config import AsrConfig


def words(text):
    return [w.strip('.,?!;:').lower() for w in text.split() if w.strip('.,?!;:')]


def word_recall(hyp, ref):
    h = words(hyp)
    return sum(1 for w in words(ref) if w in h) / max(1, len(words(ref)))


def test_bundled_tiny_en_is_found_offline():
    path = bundled_whisper_path()
    assert path is not None and (path / 'model.bin').is_file()
    assert resolve_whisper_model('tiny.en') == (str(path), True)
    with pytest.raises(AsrError, match='no such directory'):
        resolve_whisper_model('/nonexistent/whisper')


def test_whisper_transcribes_recorded_speech(recognizer):
    for clip, text in scenes.librivox_clips()[1:4]:
        result = recognizer.transcribe(clip)
        assert word_recall(result.text, text) > 0.7, (result.text, text)
        assert 0 < result.confidence <= 1


@pytest.fixture(scope='module')
def windowed_recognizer():
    """Whisper encoding 10 s instead of its 30 s of mostly padding (``asr.encoder_window_s``)."""
    return make_recognizer(AsrConfig(encoder_window_s=10.0))


def test_a_short_encoder_window_hears_what_the_full_window_hears(recognizer, windowed_recognizer):
    """The default window (20 s) and a 10 s one hear recorded speech as Whisper's own 30 s does, which
    the default keeps for audio heard over the robot's own voice."""
    assert recognizer.encoder_window_s == AsrConfig().encoder_window_s == 20
    assert recognizer.over_own_voice_window_s == AsrConfig().over_own_voice_encoder_window_s == 30
    for clip, text in scenes.librivox_clips()[1:4]:
        whole = recognizer.transcribe(clip, over_own_voice=True)
        for short in (recognizer.transcribe(clip), windowed_recognizer.transcribe(clip)):
            assert word_recall(short.text, text) >= word_recall(whole.text, text) - 0.1, (short.text, whole.text)
            assert abs(short.confidence - whole.confidence) < 0.15


def test_decodes_over_its_own_voice_encode_the_longer_window(recognizer):
    clip, _ = scenes.librivox_clips()[1]
    recognizer.transcribe(clip[:2 * SR], over_own_voice=True)
    assert recognizer.model.window_frames == 3000                   # 30 s of 10 ms frames
    recognizer.transcribe(clip[:2 * SR])
    assert recognizer.model.window_frames == 2000
    recognizer.transcribe(np.resize(clip, 21 * SR))               # never shorter than the audio and 1 s
    assert recognizer.model.window_frames == 2200


def test_partials_over_its_own_voice_encode_the_barge_in_window():
    """They decide whether the robot stops talking (asr.barge_in_encoder_window_s): a short window is
    quick there, and finals over its voice stay careful."""
    assert AsrConfig().barge_in_encoder_window_s == 30
    quick = make_recognizer(AsrConfig(barge_in_encoder_window_s=8.0))
    start = tts('flite:awb', 'Sorry, stop. What time is it?')[:int(0.3 * SR)]
    result = quick.transcribe(start, final=False, over_own_voice=True)
    assert quick.model.window_frames == 800
    assert 'sorry' in words(result.text), result.text
    quick.transcribe(start, final=True, over_own_voice=True)
    assert quick.model.window_frames == 3000
    quick.transcribe(start, final=False)                          # no robot voice: the default window
    assert quick.model.window_frames == 2000


def test_decoder_loops_collapse_to_one_phrase():
    assert collapse_loops('Okay Okay Okay Okay Okay Okay Okay Okay') == 'Okay'
    assert collapse_loops('Got it. Got it. Got it. Got it') == 'Got it.'
    assert collapse_loops('Bye C- Bye C- Bye C- Bye C- Bye') == 'Bye C-'          # and the dangling restart
    assert collapse_loops('And then both. And then both. And then both.') == 'And then both.'
    assert collapse_loops('f f f f f f f f f f') == 'f'
    assert collapse_loops('That is very, very, very, very good.') == 'That is very, good.'
    assert collapse_loops('They will observe you. They will observe you. They will') == 'They will observe you.'
    # What people say twice or three times is kept.
    for said in ('No, no, no.', 'Sorry, sorry.', 'Yeah yeah', 'Tell me a story about the sea.', '', '... ...'):
        assert collapse_loops(said) == said


def test_audio_longer_than_the_window_is_heard_to_its_end(windowed_recognizer):
    clips = scenes.librivox_clips()
    order = (clips[1], clips[2], clips[0])
    long_audio = np.concatenate([c for c, _ in order])          # about 15 s: longer than the 10 s window
    assert long_audio.size / SR > windowed_recognizer.encoder_window_s + 2
    heard = words(windowed_recognizer.transcribe(long_audio).text)
    last_words = words(order[-1][1])[-5:]                       # the end of the audio: "... power to do for them"
    assert sum(w in heard for w in last_words) >= 4, (heard, last_words)


def names_heard(recognizer, over_own_voice):
    matcher = RobotNameMatcher({'ada': 'ada', 'bruno': 'bruno', 'Bruno': 'bruno'})
    heard = []
    for voice in ('flite:slt', 'piper:joe', 'flite:awb'):
        for name, phrase in (('ada', 'Ada, what time is it?'), ('bruno', 'Bruno, where is the restroom?')):
            result = recognizer.transcribe(tts(voice, phrase), over_own_voice=over_own_voice)
            text, mentioned = matcher.correct(result.text)
            heard.append((name in mentioned, voice, text))
    return heard


def test_robot_names_are_recognised(recognizer):
    """At Whisper's own 30 s window (used over the robot's own voice) every voice's vocative is heard."""
    heard = names_heard(recognizer, over_own_voice=True)
    assert all(ok for ok, _, _ in heard), heard


def test_the_default_window_hears_most_robot_names(recognizer):
    """The default 20 s window answers sooner but hears fewer names: flite's awb voice saying "Ada,
    what time is it?" comes out as "A. What time is it?" (60 clean phrases: 52 names against 54)."""
    heard = names_heard(recognizer, over_own_voice=False)
    assert sum(ok for ok, _, _ in heard) >= len(heard) - 1, heard


def test_name_matcher_fixes_near_misses_but_leaves_ordinary_words():
    m = RobotNameMatcher({'ada': 'ada', 'bruno': 'bruno', 'cleo': 'cleo'})
    assert m.correct('Eta, could I get the menu?') == ('Ada, could I get the menu?', ['ada'])
    assert m.correct('Bruna, where is it?') == ('Bruno, where is it?', ['bruno'])
    assert m.correct('Clio, stop.')[1] == ['cleo']
    assert m.correct('add a little sugar')[1] == []          # common words stay common words
    assert m.correct('I had a dream and the bread was brown.')[1] == []


def test_silence_and_bad_audio(recognizer):
    assert recognizer.transcribe(np.zeros(800, np.float32)).text == ''
    with pytest.raises(ValueError, match='NaN'):
        recognizer.transcribe(np.full(SR, np.nan, np.float32))


class _FakeTranscriptionApi(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        type(self).requests.append({'path': self.path, 'auth': self.headers.get('Authorization'),
                                    'content_type': self.headers.get('Content-Type'), 'body': body})
        out = json.dumps({'text': 'Bruno, what time is it?'}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    server = HTTPServer(('127.0.0.1', 0), _FakeTranscriptionApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeTranscriptionApi.requests = []
    yield f'http://127.0.0.1:{server.server_address[1]}/v1'
    server.shutdown()


def test_openai_backend_sends_wav_with_the_names_and_never_logs_the_key(fake_api, monkeypatch, caplog):
    monkeypatch.setenv('VR_TEST_KEY', 'sk-secret-test-key')
    rec = make_recognizer(AsrConfig(backend='openai', api_key_env='VR_TEST_KEY', base_url=fake_api),
                          names=['ada', 'bruno'])
    audio = tts('flite:slt', 'Bruno, what time is it?')
    with caplog.at_level(logging.DEBUG):
        result = rec.transcribe(audio, final=True)
    assert result.text == 'Bruno, what time is it?'
    (req,) = _FakeTranscriptionApi.requests
    assert req['path'].endswith('/audio/transcriptions')
    assert req['auth'] == 'Bearer sk-secret-test-key'
    assert b'Ada, Bruno' in req['body'] and b'gpt-4o-mini-transcribe' in req['body']
    wav_start = req['body'].index(b'RIFF')
    decoded, rate = soundfile.read(io.BytesIO(req['body'][wav_start:]), dtype='float32')
    assert rate == SR and abs(decoded.size - audio.size) < 100
    assert 'sk-secret-test-key' not in caplog.text
    assert rec.transcribe(audio, final=False).text == ''        # partials cost a request each: off
    assert len(_FakeTranscriptionApi.requests) == 1


def test_openai_backend_without_key_or_server_fails_clearly(monkeypatch):
    monkeypatch.delenv('VR_TEST_KEY', raising=False)
    with pytest.raises(AsrError, match='VR_TEST_KEY'):
        OpenAiRecognizer(api_key_env='VR_TEST_KEY')
    monkeypatch.setenv('VR_TEST_KEY', 'sk-another-secret')
    rec = OpenAiRecognizer(api_key_env='VR_TEST_KEY', base_url='http://127.0.0.1:9/v1', timeout_s=1.0)
    with pytest.raises(AsrError) as err:
        rec.transcribe(tts('flite:slt', 'Hello.'))
    assert 'sk-another-secret' not in str(err.value)


def test_name_matcher_only_takes_near_misses_where_people_address_someone():
    m = RobotNameMatcher({'ada': 'ada', 'bruno': 'bruno'})
    assert m.correct('Add a, what time is it?') == ('Ada, what time is it?', ['ada'])
    assert m.correct('Thanks, Bruna.')[1] == ['bruno']
    assert m.correct('The bread was brown.')[1] == []
    assert m.correct('I asked Ada and Bruno.')[1] == ['ada', 'bruno']       # exact names count anywhere
