"""Language-model backends for the dialogue agent, behind one small streaming interface.

A backend turns chat messages (OpenAI format) into spoken sentences and gesture tool calls:

    handle = backend.start(messages, tools=gesture_tools(['nod']), clock=stage.now)
    handle.poll()             -> sentences completed since the last poll
    handle.poll_tool_calls()  -> tool calls completed since the last poll
    handle.done, handle.error, handle.cancel(), handle.wait(timeout_s)

Generation runs in a background thread (network backends) or is computed at once and released on
the stage clock (the offline brain), so the dialogue stage only polls: the same code works in the
in-process eval bus and inside a ROS node. Backends are chosen by name (``LlmConfig.backend``):
``offline`` (voice_robot.conversing.brain.OfflineBrain) or ``openai`` (any OpenAI-compatible server).

Failures never hang and never raise into the stage: a reply that fails before saying anything says
FALLBACK_SENTENCE instead, the failure is counted in ``backend.stats`` and logged without secrets.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from voice_robot.conversing.config import LlmConfig

log = logging.getLogger(__name__)

FALLBACK_SENTENCE = 'Sorry, I lost my train of thought.'
GESTURE_TOOL = 'gesture'

# Lines of the group conversation are rendered as "[speaker to addressee] text" so that every
# backend sees who said what to whom; the offline brain parses the newest one back.
_LINE = re.compile(r'^\s*\[(?P<speaker>[^\]\s]+)(?: to (?P<addressee>[^\]]+))?\]\s*(?P<text>.*)$', re.S)


def format_line(speaker: str, addressee: str, text: str) -> str:
    return f'[{speaker} to {addressee}] {text}' if addressee else f'[{speaker}] {text}'


def parse_line(content: str) -> tuple[str, str, str]:
    """(speaker, addressee, text) of a rendered line; plain text gives ('', '', text)."""
    match = _LINE.match(content or '')
    if not match:
        return '', '', (content or '').strip()
    return match['speaker'], (match['addressee'] or '').strip(), match['text'].strip()


@dataclass
class ToolCall:
    name: str
    arguments: dict = field(default_factory=dict)


def gesture_tools(allowed: Iterable[str]) -> list[dict]:
    """The one tool a model may call: a named gesture from the allowed list."""
    names = [str(n) for n in allowed]
    if not names:
        return []
    return [{
        'type': 'function',
        'function': {
            'name': GESTURE_TOOL,
            'description': 'Make a short body gesture while you speak (for example nod to agree, wave to greet).',
            'parameters': {
                'type': 'object',
                'properties': {'name': {'type': 'string', 'enum': names, 'description': 'the gesture'}},
                'required': ['name'],
            },
        },
    }]


# --- sentences from a token stream ---------------------------------------------------------------

_ABBREVIATIONS = {'mr', 'mrs', 'ms', 'dr', 'st', 'prof', 'sr', 'jr', 'vs', 'etc', 'e.g', 'i.e', 'approx', 'no',
                  'mt', 'ave', 'fig', 'ca', 'inc', 'ltd', 'co'}
_BOUNDARY = re.compile(r'([.!?…]+)(["\'”’)\]]*)(\s+)|\n+')
_MARKUP = re.compile(r'[*_`#>]+')
_LIST_MARKER = re.compile(r'^\s*(?:[-•]|\d+[.)])\s+')
_LIST_NUMBER = re.compile(r'^\s*\d+\.$')
MAX_SENTENCE_CHARS = 240


def clean_sentence(text: str) -> str:
    """Spoken form of a sentence: no markdown, list markers or stray whitespace."""
    text = _LIST_MARKER.sub('', text)
    text = _MARKUP.sub('', text)
    text = ''.join(ch for ch in text if ch.isprintable())
    return ' '.join(text.split())


class SentenceSplitter:
    """Cuts streamed text into sentences as soon as each one is complete.

    A sentence ends at . ! ? followed by whitespace (so a boundary is known one token later), or at a
    line break; abbreviations and initials do not end sentences. Run-on text is cut at a comma or a
    space after MAX_SENTENCE_CHARS so speech can start.
    """

    def __init__(self):
        self._buffer = ''

    def feed(self, delta: str) -> list[str]:
        if not delta:
            return []
        self._buffer += delta
        out: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            end = match.end(2) if match.group(1) else match.start()
            candidate = self._buffer[start:end]
            if match.group(1) and match.group(1) == '.' and (self._is_abbreviation(candidate)
                                                              or _LIST_NUMBER.match(candidate)):
                continue
            sentence = clean_sentence(candidate)
            if sentence and any(ch.isalnum() for ch in sentence):
                out.append(sentence)
            start = match.end()
        self._buffer = self._buffer[start:]
        if self._ends_sentence(self._buffer):
            # Do not wait for the next token (it may be seconds away): "word." or "word!" ends here.
            out += self.flush()
        while len(self._buffer) > MAX_SENTENCE_CHARS:
            head = self._buffer[:MAX_SENTENCE_CHARS]
            cut = max(head.rfind(', '), head.rfind('; '))
            cut = cut + 1 if cut > MAX_SENTENCE_CHARS // 3 else head.rfind(' ')
            if cut <= 0:
                cut = MAX_SENTENCE_CHARS
            sentence = clean_sentence(self._buffer[:cut])
            if sentence:
                out.append(sentence)
            self._buffer = self._buffer[cut:]
        return out

    def flush(self) -> list[str]:
        sentence = clean_sentence(self._buffer)
        self._buffer = ''
        return [sentence] if sentence and any(ch.isalnum() for ch in sentence) else []

    @classmethod
    def _ends_sentence(cls, text: str) -> bool:
        stripped = text.rstrip()
        if len(stripped) < 2 or stripped != text and not text.endswith((' ', '\t')):
            return False
        if stripped[-1] in '!?':
            return True
        # "3." may become "3.5" and "Dr." is not an end: only a word ending in a single period counts.
        return stripped[-1] == '.' and stripped[-2].isalpha() and not cls._is_abbreviation(stripped)

    @staticmethod
    def _is_abbreviation(candidate: str) -> bool:
        words = candidate.rstrip('.').split()
        if not words:
            return False
        last = words[-1].lower().strip('("\'')
        if last in _ABBREVIATIONS:
            return True
        return len(last) == 1 and last.isalpha() and words[-1].isupper()


def split_sentences(text: str) -> list[str]:
    """All sentences of a complete text."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()


# --- the interface -------------------------------------------------------------------------------

class ReplyHandle(ABC):
    """One reply being generated. All methods are non-blocking except ``wait``."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """No more sentences or tool calls will come (finished, failed or cancelled)."""

    @property
    @abstractmethod
    def error(self) -> str | None:
        """Why generation failed ('timeout', 'rate limited', ...), free of secrets; None when fine."""

    @abstractmethod
    def poll(self) -> list[str]:
        """Sentences completed since the last call."""

    @abstractmethod
    def poll_tool_calls(self) -> list[ToolCall]:
        """Tool calls completed since the last call."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop generating; later polls return nothing."""

    def wait(self, timeout_s: float) -> bool:
        """Block up to timeout_s (wall time) until something can be polled or generation ends.

        Used by the eval so that waiting for a remote model costs simulated time; returns whether
        anything is ready. Backends that compute instantly return at once.
        """
        return True


class StaticReply(ReplyHandle):
    """A reply known in advance (a canned answer): everything is ready at once."""

    def __init__(self, sentences: list[str], tool_calls: list[ToolCall] | None = None):
        self._sentences = list(sentences)
        self._tool_calls = list(tool_calls or [])
        self._cancelled = False

    @property
    def done(self) -> bool:
        return self._cancelled or not (self._sentences or self._tool_calls)

    @property
    def error(self) -> str | None:
        return None

    def poll(self) -> list[str]:
        out, self._sentences = self._sentences, []
        return out

    def poll_tool_calls(self) -> list[ToolCall]:
        out, self._tool_calls = self._tool_calls, []
        return out

    def cancel(self) -> None:
        self._cancelled = True
        self._sentences, self._tool_calls = [], []


class ChatBackend(ABC):
    """A language model that streams replies."""

    name = 'backend'

    def __init__(self):
        self.stats: Counter[str] = Counter()

    @abstractmethod
    def start(self, messages: list[dict], tools: list[dict] | None = None,
              clock: Callable[[], float] | None = None) -> ReplyHandle:
        """Begin generating a reply to ``messages``; ``clock`` is the stage clock (simulated time)."""

    def close(self) -> None:
        """Release clients and threads."""


def make_backend(config: LlmConfig, robot_name: str = '') -> ChatBackend:
    """The backend named by ``config.backend``."""
    if config.backend == 'offline':
        from voice_robot.conversing.brain import OfflineBrain
        return OfflineBrain(config, robot_name)
    if config.backend == 'openai':
        return OpenAiChat(config)
    raise ValueError(f"unknown LLM backend {config.backend!r}; known: offline, openai")


# --- a handle fed by a background thread ---------------------------------------------------------

class StreamingHandle(ReplyHandle):
    """Thread-safe mailbox between a generating thread and the polling stage."""

    def __init__(self, first_token_timeout_s: float, timeout_s: float, on_failure: Callable[[str], None]):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sentences: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._done = False
        self._error: str | None = None
        self._spoke = False          # any sentence produced (so a failure needs no fallback)
        self._tokens = False         # any text or tool call received (the first-token deadline is met)
        self._cancelled = False
        self._closer: Callable[[], None] | None = None
        # Network deadlines are wall time on purpose: they bound how long a real server may take.
        self._started = time.monotonic()
        self._first_token_timeout_s = first_token_timeout_s
        self._timeout_s = timeout_s
        self._on_failure = on_failure

    # --- producer side (the thread) ---
    def note_token(self) -> None:
        self._tokens = True

    def add_sentences(self, sentences: list[str]) -> bool:
        with self._lock:
            if self._done:
                return False
            if sentences:
                self._sentences.extend(sentences)
                self._spoke = True
                self._changed.notify_all()
            return True

    def add_tool_call(self, call: ToolCall) -> None:
        with self._lock:
            if not self._done:
                self._tool_calls.append(call)
                self._changed.notify_all()

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._closer = None
            self._changed.notify_all()

    def fail(self, reason: str) -> None:
        with self._lock:
            if self._done:
                return
            self._fail_locked(reason)

    def _fail_locked(self, reason: str) -> None:
        self._error = reason
        if not self._spoke and not self._cancelled:
            self._sentences.append(FALLBACK_SENTENCE)
            self._spoke = True
        self._done = True
        closer, self._closer = self._closer, None
        self._changed.notify_all()
        self._on_failure(reason)
        if closer is not None:
            threading.Thread(target=_quietly, args=(closer,), daemon=True).start()

    def set_closer(self, closer: Callable[[], None] | None) -> None:
        with self._lock:
            self._closer = closer

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    # --- consumer side (the stage) ---
    @property
    def done(self) -> bool:
        self._check_deadlines()
        return self._done

    @property
    def error(self) -> str | None:
        return self._error

    def poll(self) -> list[str]:
        self._check_deadlines()
        with self._lock:
            out, self._sentences = self._sentences, []
        return out

    def poll_tool_calls(self) -> list[ToolCall]:
        with self._lock:
            out, self._tool_calls = self._tool_calls, []
        return out

    def cancel(self) -> None:
        with self._lock:
            if self._done:
                return
            self._cancelled = True
            self._done = True
            self._sentences, self._tool_calls = [], []
            closer, self._closer = self._closer, None
            self._changed.notify_all()
        if closer is not None:
            threading.Thread(target=_quietly, args=(closer,), daemon=True).start()

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._lock:
            while not (self._sentences or self._tool_calls or self._done):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, 0.05))
                self._check_deadlines_locked()
            return bool(self._sentences or self._tool_calls or self._done)

    def _check_deadlines(self) -> None:
        with self._lock:
            self._check_deadlines_locked()

    def _check_deadlines_locked(self) -> None:
        if self._done:
            return
        elapsed = time.monotonic() - self._started
        if not self._tokens and not self._spoke and elapsed > self._first_token_timeout_s:
            self._fail_locked('first token timeout')
        elif elapsed > self._timeout_s:
            self._fail_locked('timeout')


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:   # closing a half-read HTTP stream may raise anything; it is being abandoned
        pass


# --- OpenAI and compatible servers ---------------------------------------------------------------

def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and of a Bearer token) masked."""
    if secret:
        text = text.replace(secret, '***')
    return re.sub(r'(?i)(bearer\s+)\S+', r'\1***', text)


class OpenAiChat(ChatBackend):
    """Chat completions with stream=True through the openai client.

    Works with OpenAI (key from ``config.api_key_env``) and with any OpenAI-compatible server
    (``config.base_url``: Ollama, vLLM, llama.cpp; a local server needs no key). Sentences are
    released as they complete; a gesture tool call with no words asks the model once more for the words.
    """

    name = 'openai'
    LOCAL_KEY = 'not-needed'      # OpenAI-compatible local servers ignore the key but the client wants one

    def __init__(self, config: LlmConfig):
        super().__init__()
        self.config = config
        self._client = None
        self._client_lock = threading.Lock()

    def _api_key(self) -> str | None:
        key = os.environ.get(self.config.api_key_env, '').strip()
        if key:
            return key
        return self.LOCAL_KEY if self.config.base_url else None

    def _get_client(self):
        with self._client_lock:
            if self._client is None:
                key = self._api_key()
                if key is None:
                    raise _Failure(f'no API key: set {self.config.api_key_env} or llm.base_url')
                import openai
                timeout = openai.Timeout(self.config.timeout_s, connect=min(5.0, self.config.timeout_s),
                                         read=self.config.first_token_timeout_s)
                # Retries would multiply the wait before the robot says anything: fail fast, say the fallback.
                self._client = openai.OpenAI(api_key=key, base_url=self.config.base_url, timeout=timeout,
                                             max_retries=0)
            return self._client

    def start(self, messages, tools=None, clock=None) -> ReplyHandle:
        handle = StreamingHandle(self.config.first_token_timeout_s, self.config.timeout_s, self._count_failure)
        self.stats['requests'] += 1
        thread = threading.Thread(target=self._run, args=(handle, list(messages), tools or None),
                                  name='llm-openai', daemon=True)
        thread.start()
        return handle

    def _count_failure(self, reason: str) -> None:
        self.stats[f'failed: {reason}'] += 1
        log.warning('LLM reply failed (%s); saying the fallback sentence', reason)

    def _token_limit(self) -> dict:
        # OpenAI's newer models only take max_completion_tokens; compatible servers know max_tokens.
        if self.config.base_url:
            return {'max_tokens': self.config.max_tokens}
        return {'max_completion_tokens': self.config.max_tokens}

    def _run(self, handle: StreamingHandle, messages: list[dict], tools: list[dict] | None) -> None:
        try:
            client = self._get_client()
            for round_ in range(2):
                spoke, calls = self._stream_once(client, handle, messages, tools)
                if handle.cancelled or spoke or not calls or round_ == 1:
                    break
                # The model only gestured: send the tool results back and ask for the spoken words.
                messages = messages + [
                    {'role': 'assistant', 'content': None,
                     'tool_calls': [{'id': c_id, 'type': 'function',
                                     'function': {'name': c.name, 'arguments': json.dumps(c.arguments)}}
                                    for c_id, c in calls]},
                ] + [{'role': 'tool', 'tool_call_id': c_id, 'content': 'done'} for c_id, _ in calls]
                tools = None
            if not handle.cancelled and not handle._spoke:
                handle.fail('empty reply')
            else:
                handle.finish()
        except _Failure as exc:
            handle.fail(str(exc))
        except Exception as exc:
            if handle.cancelled:
                handle.finish()
                return
            handle.fail(self._describe(exc))

    def _stream_once(self, client, handle: StreamingHandle, messages: list[dict],
                     tools: list[dict] | None) -> tuple[bool, list[tuple[str, ToolCall]]]:
        kwargs: dict[str, Any] = dict(model=self.config.model, messages=messages, stream=True,
                                      temperature=self.config.temperature, **self._token_limit())
        if tools:
            kwargs['tools'] = tools
        stream = client.chat.completions.create(**kwargs)
        handle.set_closer(stream.close)
        splitter = SentenceSplitter()
        spoke = False
        pending: dict[int, dict] = {}
        try:
            for chunk in stream:
                if handle.cancelled or handle._done:
                    break
                choices = getattr(chunk, 'choices', None) or []
                if not choices:
                    continue
                delta = getattr(choices[0], 'delta', None)
                if delta is None:
                    continue
                content = getattr(delta, 'content', None)
                if (isinstance(content, str) and content) or getattr(delta, 'tool_calls', None):
                    handle.note_token()
                if isinstance(content, str) and content:
                    sentences = splitter.feed(content)
                    if sentences:
                        spoke = True
                        handle.add_sentences(sentences)
                for call in getattr(delta, 'tool_calls', None) or []:
                    slot = pending.setdefault(getattr(call, 'index', 0) or 0, {'id': '', 'name': '', 'args': ''})
                    if getattr(call, 'id', None):
                        slot['id'] = call.id
                    function = getattr(call, 'function', None)
                    if function is not None:
                        if getattr(function, 'name', None):
                            slot['name'] += function.name
                        if getattr(function, 'arguments', None):
                            slot['args'] += function.arguments
        finally:
            handle.set_closer(None)
            _quietly(stream.close)
        if handle.cancelled:
            return spoke, []
        rest = splitter.flush()
        if rest:
            spoke = True
            handle.add_sentences(rest)
        calls = []
        for index, slot in sorted(pending.items()):
            call = self._parse_tool_call(slot)
            if call is not None:
                calls.append((slot['id'] or f'call_{index}', call))
                handle.add_tool_call(call)
        return spoke, calls

    def _parse_tool_call(self, slot: dict) -> ToolCall | None:
        name = slot['name'].strip()
        try:
            args = json.loads(slot['args']) if slot['args'].strip() else {}
        except (json.JSONDecodeError, RecursionError):
            args = None
        if not name or not isinstance(args, dict):
            self.stats['malformed tool calls'] += 1
            log.warning('LLM sent a malformed tool call (name %r); ignored', name[:40])
            return None
        return ToolCall(name=name, arguments=args)

    def _describe(self, exc: Exception) -> str:
        """A short, secret-free reason for a failure."""
        import openai
        if isinstance(exc, openai.RateLimitError):
            return 'rate limited (429)'
        if isinstance(exc, openai.APITimeoutError):
            return 'timeout'
        if isinstance(exc, openai.APIStatusError):
            status = getattr(exc, 'status_code', 0)
            return f'server error ({status})' if status >= 500 else f'request refused ({status})'
        if isinstance(exc, openai.APIConnectionError):
            return 'connection error'
        if isinstance(exc, (json.JSONDecodeError, ValueError, TypeError, KeyError, AttributeError)):
            return f'garbage response ({type(exc).__name__})'
        return redact(f'{type(exc).__name__}', self._api_key())

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                _quietly(self._client.close)
                self._client = None


class _Failure(RuntimeError):
    """A failure with a reason that is safe to show."""
