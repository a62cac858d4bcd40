"""A fake OpenAI-compatible chat server on 127.0.0.1 for tests (an external service, not our code).

``FakeOpenAi`` runs ``http.server`` in a thread and answers POST /v1/chat/completions with Server-Sent
Events like the real API (``stream=True``), following a queue of scripted behaviours:

    with FakeOpenAi() as server:
        server.script(Stream(['Hello', ' there.', ' How can', ' I help?']))
        server.script(Status(429))
        ...  # OpenAiChat(LlmConfig(backend='openai', base_url=server.base_url))

Requests are recorded (headers and JSON body) for assertions.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Stream:
    """A streamed completion: text deltas, then tool calls, with delays in seconds."""
    deltas: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str]] = field(default_factory=list)   # (name, raw JSON arguments)
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    split_tool_arguments: bool = True      # send arguments in two fragments, like the real API


@dataclass
class Status:
    """An HTTP error with an OpenAI-style JSON error body."""
    code: int
    echo_authorization: bool = False       # put the request's Authorization header into the body
    retry_after_s: float | None = None


@dataclass
class Garbage:
    """A 200 response that is not what a client expects."""
    body: bytes = b'data: {this is not json\n\n'
    content_type: str = 'text/event-stream'


@dataclass
class Hang:
    """Accept the request and say nothing for a while."""
    seconds: float = 30.0


class FakeOpenAi:
    def __init__(self):
        self._script: list = []
        self._lock = threading.Lock()
        self.requests: list[dict] = []
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):     # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length) if length else b''
                try:
                    body = json.loads(raw or b'{}')
                except json.JSONDecodeError:
                    body = {'unparseable': raw.decode(errors='replace')}
                with server._lock:
                    server.requests.append({'path': self.path, 'headers': dict(self.headers), 'body': body})
                    behaviour = server._script.pop(0) if server._script else Stream(['OK.'])
                if not self.path.rstrip('/').endswith('/chat/completions'):
                    return self._json(404, {'error': {'message': 'not found', 'type': 'invalid_request_error'}})
                try:
                    server._respond(self, behaviour)
                except (BrokenPipeError, ConnectionResetError):
                    pass              # the client gave up (timeout or cancel): that is allowed

            def _json(self, code, payload, extra_headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                for k, v in (extra_headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name='fake-openai')

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f'http://{host}:{port}/v1'

    def script(self, *behaviours) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def start(self) -> 'FakeOpenAi':
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- responses -------------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _respond(self, handler, behaviour) -> None:
        if isinstance(behaviour, Status):
            message = f'fake error {behaviour.code}'
            if behaviour.echo_authorization:
                message += f" (you sent {handler.headers.get('Authorization')})"
            headers = {'Retry-After': str(behaviour.retry_after_s)} if behaviour.retry_after_s is not None else {}
            return handler._json(behaviour.code, {'error': {'message': message, 'type': 'fake', 'code': None}},
                                 headers)
        if isinstance(behaviour, Hang):
            self._sleep(behaviour.seconds)
            return handler._json(200, {'error': {'message': 'too late'}})
        if isinstance(behaviour, Garbage):
            handler.send_response(200)
            handler.send_header('Content-Type', behaviour.content_type)
            handler.send_header('Content-Length', str(len(behaviour.body)))
            handler.end_headers()
            handler.wfile.write(behaviour.body)
            return
        self._stream(handler, behaviour)

    def _stream(self, handler, s: Stream) -> None:
        handler.send_response(200)
        handler.send_header('Content-Type', 'text/event-stream')
        handler.send_header('Cache-Control', 'no-cache')
        handler.send_header('Connection', 'close')
        handler.end_headers()
        created = int(time.time())

        def send(delta: dict, finish: str | None = None) -> None:
            chunk = {'id': 'chatcmpl-fake', 'object': 'chat.completion.chunk', 'created': created,
                     'model': 'fake-model', 'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]}
            handler.wfile.write(b'data: ' + json.dumps(chunk).encode() + b'\n\n')
            handler.wfile.flush()

        self._sleep(s.first_token_delay_s)
        send({'role': 'assistant', 'content': ''})
        for i, text in enumerate(s.deltas):
            if i and s.token_delay_s:
                self._sleep(s.token_delay_s)
            send({'content': text})
        for index, (name, arguments) in enumerate(s.tool_calls):
            head = {'index': index, 'id': f'call_{index}', 'type': 'function',
                    'function': {'name': name, 'arguments': ''}}
            send({'tool_calls': [head]})
            parts = [arguments[:len(arguments) // 2], arguments[len(arguments) // 2:]] \
                if s.split_tool_arguments else [arguments]
            for part in parts:
                send({'tool_calls': [{'index': index, 'function': {'arguments': part}}]})
        send({}, 'tool_calls' if s.tool_calls and not s.deltas else 'stop')
        handler.wfile.write(b'data: [DONE]\n\n')
        handler.wfile.flush()
        handler.close_connection = True
