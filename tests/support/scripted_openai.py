"""A scripted OpenAI-compatible HTTP server that stands in for the LLM in tests.

Tests reach it through the real ``openai`` client over real HTTP, so the code
under test runs exactly as it does against llama.cpp, vLLM or OpenAI; only the
model's answers are scripted (the way pydantic-ai's ``FunctionModel`` scripts
turns). Standard library only.

Example::

    with ScriptedLLM() as llm:
        llm.reply('{"tasks": []}')
        client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert out.choices[0].message.content == '{"tasks": []}'
        assert llm.requests[0]["messages"][0]["content"] == "hi"
"""

from __future__ import annotations

import collections
import json
import math
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ScriptedError", "ScriptedLLM", "ScriptedReply", "Responder"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class ScriptedReply:
    """One assistant message to send back, optionally after ``delay_s`` seconds."""

    content: str
    delay_s: float = 0.0


@dataclass(frozen=True)
class ScriptedError:
    """An HTTP error answer with an OpenAI-style body ``{"error": {...}}``.

    ``type`` defaults from the status (400 -> "invalid_request_error", 5xx ->
    "server_error"), the way OpenAI-compatible servers label them.
    """

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    delay_s: float = 0.0

    def body(self) -> dict[str, Any]:
        """The JSON error body the server sends."""
        kind = self.type or _ERROR_TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")
        return {"error": {"message": self.message, "type": kind, "param": None, "code": self.code}}


Answer = str | ScriptedReply | ScriptedError
Responder = Callable[[dict[str, Any]], Answer]


class ScriptedLLM:
    """An OpenAI-compatible chat server on 127.0.0.1 that answers from a script.

    Answers come, in order, from the queue filled by :meth:`reply` and
    :meth:`reply_error`; when the queue is empty, from the function given to
    :meth:`respond_with`; with neither, the request gets HTTP 500 "scripted LLM:
    no reply queued for this request", so a test that forgot a turn fails loudly.

    Args:
        model_id: the one model listed by ``GET /v1/models``; also the echoed
            model when a request names none.
        reject_json_schema: answer HTTP 400 to any request whose
            ``response_format`` has type ``"json_schema"`` (as some servers do),
            without consuming a scripted answer, so a client's fallback can be
            tested.

    Raises:
        RuntimeError: from ``base_url`` before :meth:`start`, or from a second
            :meth:`start`.

    Example::

        with ScriptedLLM(reject_json_schema=True) as llm:
            llm.respond_with(lambda request: "plan" if "plan" in str(request["messages"]) else "answer")
            client = llm.client()
    """

    def __init__(self, *, model_id: str = "scripted", reject_json_schema: bool = False) -> None:
        self.model_id = model_id
        self.reject_json_schema = reject_json_schema
        self._lock = threading.Lock()
        self._queue: collections.deque[ScriptedReply | ScriptedError] = collections.deque()
        self._responder: Responder | None = None
        self._requests: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ScriptedLLM:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("ScriptedLLM is already started; call stop() first")
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; pending delays are cut short. Idempotent."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, ready for ``openai.OpenAI(base_url=...)``."""
        if self._httpd is None:
            raise RuntimeError("ScriptedLLM is not started; call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def env(self) -> dict[str, str]:
        """``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` pointing at this server."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "test"}

    def client(self, **overrides: Any) -> Any:
        """A real ``openai.OpenAI`` for this server (``max_retries=0``, 10 s timeout unless overridden)."""
        import openai

        return openai.OpenAI(**{**self._client_kwargs(), **overrides})

    def async_client(self, **overrides: Any) -> Any:
        """A real ``openai.AsyncOpenAI`` for this server, same defaults as :meth:`client`."""
        import openai

        return openai.AsyncOpenAI(**{**self._client_kwargs(), **overrides})

    def _client_kwargs(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "api_key": "test", "max_retries": 0, "timeout": 10.0}

    # -- scripting ---------------------------------------------------------

    def reply(self, content: str, *, delay_s: float = 0.0) -> None:
        """Queue one assistant message, sent after ``delay_s`` seconds."""
        if not isinstance(content, str):
            raise TypeError(f"reply() takes the message text as str, got {type(content).__name__}; json.dumps it first")
        with self._lock:
            self._queue.append(ScriptedReply(content, delay_s))

    def reply_error(
        self, status: int, message: str, *, type: str | None = None, code: str | None = None, delay_s: float = 0.0
    ) -> None:
        """Queue one HTTP error answer with an OpenAI-style error body."""
        with self._lock:
            self._queue.append(ScriptedError(status, message, type=type, code=code, delay_s=delay_s))

    def respond_with(self, fn: Responder | None) -> None:
        """Answer with ``fn(request_body)`` whenever the queue is empty; ``None`` removes it.

        ``fn`` returns the message text, a :class:`ScriptedReply` (for a delay)
        or a :class:`ScriptedError`. It runs on the server thread; if it raises,
        the request gets HTTP 500 with the traceback.
        """
        with self._lock:
            self._responder = fn

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of every JSON body received (chat and text completions), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """How many queued answers have not been sent yet."""
        with self._lock:
            return len(self._queue)

    # -- used by the handler -----------------------------------------------

    def _answer(self, body: dict[str, Any]) -> ScriptedReply | ScriptedError:
        with self._lock:
            self._requests.append(body)
            if self.reject_json_schema and _response_format_type(body) == "json_schema":
                return ScriptedError(
                    400,
                    "scripted LLM: response_format type 'json_schema' is not supported by this server "
                    "(ScriptedLLM(reject_json_schema=True))",
                )
            if self._queue:
                return self._queue.popleft()
            responder = self._responder
        if responder is None:
            return ScriptedError(500, "scripted LLM: no reply queued for this request")
        try:
            answer = responder(body)
        except Exception:  # the test's own function failed: report it to the client, loudly
            return ScriptedError(500, "scripted LLM: respond_with function raised:\n" + traceback.format_exc())
        if isinstance(answer, str):
            return ScriptedReply(answer)
        if isinstance(answer, (ScriptedReply, ScriptedError)):
            return answer
        # The same classes reached through another import path (tests.support... vs support...).
        if type(answer).__name__ == "ScriptedError":
            return ScriptedError(answer.status, answer.message, answer.type, answer.code, answer.delay_s)
        if type(answer).__name__ == "ScriptedReply":
            return ScriptedReply(answer.content, answer.delay_s)
        return ScriptedError(
            500,
            f"scripted LLM: respond_with function returned {type(answer).__name__}, "
            "expected str, ScriptedReply or ScriptedError",
        )


def _response_format_type(body: dict[str, Any]) -> Any:
    fmt = body.get("response_format")
    return fmt.get("type") if isinstance(fmt, dict) else None


def _rough_tokens(value: Any) -> int:
    """About four characters a token, as a stand-in for a real tokenizer."""
    text = value if isinstance(value, str) else json.dumps(value)
    return math.ceil(len(text) / 4) if text else 0


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _stream_pieces(content: str) -> list[str]:
    """Split text into word-sized pieces (whitespace kept) so a stream has several chunks."""
    pieces: list[str] = []
    start = 0
    for i in range(1, len(content)):
        if content[i].isspace() and not content[i - 1].isspace():
            pieces.append(content[start:i])
            start = i
    if content:
        pieces.append(content[start:])
    return pieces


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, scripted: ScriptedLLM) -> None:
        self.scripted = scripted
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test) closes its socket mid-answer; that is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; tests inspect ScriptedLLM.requests instead

    def do_GET(self) -> None:
        if self._route() == "/v1/models":
            model = {"id": self.server.scripted.model_id, "object": "model", "created": 0, "owned_by": "scripted"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_not_found()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        route = self._route()
        if route not in ("/v1/chat/completions", "/v1/completions"):
            self._send_not_found()
            return
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            self._send_error(ScriptedError(400, f"scripted LLM: request body is not valid JSON: {err}"))
            return
        if not isinstance(body, dict):
            self._send_error(ScriptedError(400, "scripted LLM: request body must be a JSON object"))
            return
        answer = self.server.scripted._answer(body)
        if answer.delay_s > 0 and self.server.scripted._stopping.wait(answer.delay_s):
            self.close_connection = True  # server stopping: drop the connection rather than hold up stop()
            return
        if isinstance(answer, ScriptedError):
            self._send_error(answer)
        elif route == "/v1/completions":
            self._send_json(200, self._text_completion(body, answer.content))
        elif body.get("stream"):
            self._send_stream(body, answer.content)
        else:
            self._send_json(200, self._completion(body, answer.content))

    def _route(self) -> str:
        path = self.path.split("?", 1)[0].rstrip("/")
        return path if path.startswith("/v1/") else "/v1" + path

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        prompt_tokens = _rough_tokens(body.get("messages", []))
        completion_tokens = _rough_tokens(content)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.server.scripted.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(prompt_tokens, completion_tokens),
        }

    def _text_completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        """A ``/v1/completions`` answer: the scripted content continues the raw prompt."""
        prompt_tokens = _rough_tokens(body.get("prompt", ""))
        completion_tokens = _rough_tokens(text)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model") or self.server.scripted.model_id,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(prompt_tokens, completion_tokens),
        }

    def _send_stream(self, body: dict[str, Any], content: str) -> None:
        full = self._completion(body, content)
        base = {"id": full["id"], "object": "chat.completion.chunk", "created": full["created"], "model": full["model"]}

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in _stream_pieces(content)]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": full["usage"]})

        # No Content-Length: the body ends when the connection closes, as HTTP/1.1 allows.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for event in events:
            self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _send_not_found(self) -> None:
        self._send_error(ScriptedError(404, f"scripted LLM: no route for {self.command} {self.path}"))

    def _send_error(self, error: ScriptedError) -> None:
        self._send_json(error.status, error.body())

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        # One request per connection: no idle keep-alive threads to outlive stop().
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(data)
