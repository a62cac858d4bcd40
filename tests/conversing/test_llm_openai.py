"""OpenAiChat through the real openai client against a fake OpenAI-compatible server on 127.0.0.1."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAi, Garbage, Hang, Status, Stream  # noqa: E402

from voice_robot.conversing.config import LlmConfig  # noqa: E402
from voice_robot.conversing.llm import FALLBACK_SENTENCE, OpenAiChat, ToolCall, gesture_tools  # noqa: E402

MESSAGES = [{'role': 'system', 'content': 'You are Ada.'}, {'role': 'user', 'content': '[v1 to ada] hello'}]
SECRET = 'sk-test-DO-NOT-LEAK-1234567890abcdef'
SAFETY_CAP_S = 30.0     # a broken backend would hang forever; the test gives up long before


@pytest.fixture
def server():
    with FakeOpenAi() as s:
        yield s


def backend(server, **overrides) -> OpenAiChat:
    config = dict(backend='openai', base_url=server.base_url, model='fake-model', first_token_timeout_s=1.0,
                  timeout_s=5.0)
    config.update(overrides)
    return OpenAiChat(LlmConfig(**config))


def drain(handle):
    """Poll like the stage does until the reply is done: (sentences, tool calls, polls that had sentences)."""
    sentences, calls, batches = [], [], []
    give_up = time.monotonic() + SAFETY_CAP_S
    while not handle.done:
        assert time.monotonic() < give_up, 'the reply never finished'
        handle.wait(0.05)
        got = handle.poll()
        if got:
            batches.append((got, handle.done))
        sentences += got
        calls += handle.poll_tool_calls()
    sentences += handle.poll()
    calls += handle.poll_tool_calls()
    return sentences, calls, batches


def test_sentences_stream_out_as_they_complete(server):
    server.script(Stream(['Hello', ' there.', ' The weather', ' is fine', ' today!', ' See', ' you.'],
                         token_delay_s=0.15))
    llm = backend(server)
    handle = llm.start(MESSAGES, tools=gesture_tools(['nod']))
    sentences, calls, batches = drain(handle)
    assert sentences == ['Hello there.', 'The weather is fine today!', 'See you.']
    assert batches[0][0] == ['Hello there.'] and batches[0][1] is False     # before the stream had ended
    assert handle.error is None and not calls
    [request] = server.requests
    body = request['body']
    assert body['stream'] is True and body['model'] == 'fake-model' and body['messages'] == MESSAGES
    assert body['tools'][0]['function']['name'] == 'gesture'
    assert body['tools'][0]['function']['parameters']['properties']['name']['enum'] == ['nod']


def test_gesture_tool_calls_are_parsed(server):
    server.script(Stream(['Of course.'], tool_calls=[('gesture', '{"name": "nod"}')]))
    sentences, calls, _ = drain(backend(server).start(MESSAGES, tools=gesture_tools(['nod', 'wave'])))
    assert sentences == ['Of course.'] and calls == [ToolCall('gesture', {'name': 'nod'})]


def test_a_reply_that_only_gestures_asks_again_for_the_words(server):
    server.script(Stream([], tool_calls=[('gesture', '{"name": "wave"}')]), Stream(['Hi there!']))
    sentences, calls, _ = drain(backend(server).start(MESSAGES, tools=gesture_tools(['wave'])))
    assert sentences == ['Hi there!'] and calls == [ToolCall('gesture', {'name': 'wave'})]
    second = server.requests[1]['body']['messages']
    assert second[-2]['role'] == 'assistant' and second[-2]['tool_calls'][0]['function']['name'] == 'gesture'
    assert second[-1]['role'] == 'tool' and second[-1]['tool_call_id'] == 'call_0'


def test_malformed_tool_calls_are_ignored_and_counted(server):
    server.script(Stream(['Sure.'], tool_calls=[('gesture', '{"name": nod'), ('', '{"name": "nod"}')]))
    llm = backend(server)
    sentences, calls, _ = drain(llm.start(MESSAGES, tools=gesture_tools(['nod'])))
    assert sentences == ['Sure.'] and calls == []
    assert llm.stats['malformed tool calls'] == 2


@pytest.mark.parametrize('behaviour, reason', [
    (Status(500), 'server error (500)'),
    (Status(503), 'server error (503)'),
    (Status(429, retry_after_s=0.0), 'rate limited (429)'),
    (Garbage(), 'garbage response'),
    (Garbage(b'<html><body>Bad gateway</body></html>', 'text/html'), 'empty reply'),
])
def test_server_failures_give_the_fallback_sentence(server, behaviour, reason):
    server.script(behaviour)
    llm = backend(server)
    handle = llm.start(MESSAGES)
    sentences, _, _ = drain(handle)
    assert sentences == [FALLBACK_SENTENCE]
    assert handle.error.startswith(reason)
    assert sum(v for k, v in llm.stats.items() if k.startswith('failed: ')) == 1
    assert len(server.requests) == 1        # no retries: the person is waiting


def test_a_server_that_never_answers_times_out_with_the_fallback(server):
    server.script(Hang(20.0))
    handle = backend(server, first_token_timeout_s=0.5).start(MESSAGES)
    sentences, _, _ = drain(handle)
    assert sentences == [FALLBACK_SENTENCE] and 'timeout' in handle.error


def test_a_stream_that_stalls_after_some_sentences_keeps_them_and_stops(server):
    server.script(Stream(['First part.', ' Second', ' part.'], token_delay_s=3.0))
    handle = backend(server, first_token_timeout_s=1.0, timeout_s=2.0).start(MESSAGES)
    sentences, _, _ = drain(handle)
    assert sentences == ['First part.']       # no fallback once something has been said
    assert 'timeout' in handle.error


def test_cancel_stops_a_reply_in_the_middle(server):
    server.script(Stream(['One.', ' Two.', ' Three.', ' Four.', ' Five.'], token_delay_s=0.3))
    handle = backend(server).start(MESSAGES)
    got = []
    give_up = time.monotonic() + SAFETY_CAP_S
    while not got:
        assert time.monotonic() < give_up
        handle.wait(0.05)
        got = handle.poll()
    handle.cancel()
    assert handle.done and handle.poll() == [] and handle.error is None
    assert got == ['One.']


def test_the_api_key_is_sent_but_never_logged_or_shown(server, monkeypatch, caplog):
    monkeypatch.setenv('VOICE_ROBOT_TEST_KEY', SECRET)
    server.script(Status(401, echo_authorization=True), Status(500, echo_authorization=True))
    llm = backend(server, api_key_env='VOICE_ROBOT_TEST_KEY')
    with caplog.at_level(logging.DEBUG):
        errors = []
        for _ in range(2):
            handle = llm.start(MESSAGES)
            drain(handle)
            errors.append(handle.error)
    headers = {k.lower(): v for k, v in server.requests[0]['headers'].items()}
    assert headers['authorization'] == f'Bearer {SECRET}'
    assert SECRET not in caplog.text and SECRET[-12:] not in caplog.text
    assert all(SECRET not in e for e in errors) and errors[0] == 'request refused (401)'
    assert SECRET not in repr(llm.stats)


def test_no_key_and_no_server_gives_the_fallback_without_network(monkeypatch):
    monkeypatch.delenv('VOICE_ROBOT_NO_SUCH_KEY', raising=False)
    llm = OpenAiChat(LlmConfig(backend='openai', api_key_env='VOICE_ROBOT_NO_SUCH_KEY'))
    handle = llm.start(MESSAGES)
    sentences, _, _ = drain(handle)
    assert sentences == [FALLBACK_SENTENCE] and 'VOICE_ROBOT_NO_SUCH_KEY' in handle.error
