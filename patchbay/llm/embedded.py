"""A local OpenAI-compatible LLM server: llama-cpp-python's ``llama_cpp.server`` in a child process.

When no LLM endpoint is configured, patchbay serves a bundled GGUF model on
loopback and talks to it over HTTP with the ``openai`` client, exactly as it
would talk to a remote endpoint. ``llama_cpp`` is imported only in the child
process; importing this module costs nothing.

The child never outlives patchbay: :meth:`EmbeddedServer.stop` runs at exit,
and a watchdog thread inside the child exits it as soon as its parent is gone
(a ``kill -9`` of patchbay included), whichever thread started it.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LLMError
from .assets import DEFAULT_EMBEDDED_MODEL, _cache_root, _lookup, ensure_model

_SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
_INSTALL_FIX = (
    'pip install "patchbay[embedded]" (on CPUs that advertise AMX, build llama-cpp-python with '
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "llama-cpp-python[server]==0.3.36"; '
    "the default build crashes on the first token)"
)
_POLL_S = 0.1
_TAIL_CHARS = 4000

# Runs in the child: argv[1] is the parent's pid, the rest is llama_cpp.server's CLI.
# llama_cpp.server reads every setting from the environment too (HOST and PORT
# even override the flags; API_KEY would lock our own client out), so settings
# inherited from the user's shell are dropped before the server parses anything.
_LAUNCHER = """\
import os, runpy, sys, threading, time
parent = int(sys.argv.pop(1))
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
from llama_cpp.server.settings import Settings
for key in list(os.environ):
    if key.lower() in Settings.model_fields or key.upper() == "CONFIG_FILE":
        del os.environ[key]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class _PortTaken(Exception):
    """The port chosen for the server was taken before it could bind."""


def default_threads() -> int:
    """The number of CPU cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class EmbeddedServer:
    """A llama.cpp OpenAI-compatible server for one GGUF model, run as a child process.

    Args:
        model_path: the ``.gguf`` file to serve.
        model_alias: the model id clients send as ``model``.
        host: the address to listen on; loopback by default.
        port: the port to listen on; None picks a free one at :meth:`start`.
        n_ctx: the context size in tokens.
        n_threads: CPU threads for generation and prompt processing; None uses
            every core this process may run on. Fewer can be faster when other
            processes hold cores. The child gets ``OMP_WAIT_POLICY=PASSIVE``
            unless the environment sets it, so llama.cpp's threads sleep
            rather than spin while they wait for a busy core.
        startup_timeout_s: how long :meth:`start` waits for the model to load.
        chat_format: a llama-cpp-python chat format to force; None uses the
            template stored in the GGUF.
        log_path: where the server's stdout and stderr go; default
            ``$PATCHBAY_CACHE/logs/embedded-<alias>[-<role>].log``.
        role: what this server is for, when a process runs more than one
            (``planner``); it keeps their logs apart.
        extra_args: further ``llama_cpp.server`` flags, e.g. ``["--cache", "true"]``.

    Example:
        >>> with EmbeddedServer(path, model_alias="qwen", n_threads=2) as server:  # doctest: +SKIP
        ...     client = openai.OpenAI(base_url=server.base_url, api_key="none")
        ...     client.chat.completions.create(model="qwen", messages=[...])
    """

    def __init__(
        self,
        model_path: Path,
        *,
        model_alias: str,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        startup_timeout_s: float = 180,
        chat_format: str | None = None,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
        role: str | None = None,
    ):
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads must be at least 1, got {n_threads}")
        if n_ctx < 0:
            raise ConfigError(f"n_ctx must be 0 (the model's own) or more, got {n_ctx}")
        self.model_path = Path(model_path)
        self.model_alias = model_alias
        self.host = host
        self.n_ctx = n_ctx
        self.n_threads = n_threads if n_threads is not None else default_threads()
        self.startup_timeout_s = startup_timeout_s
        self.chat_format = chat_format
        self.extra_args = tuple(extra_args)
        safe_alias = re.sub(r"[^A-Za-z0-9._-]", "_", model_alias)
        log_name = f"embedded-{safe_alias}-{role}.log" if role else f"embedded-{safe_alias}.log"
        self.log_path = Path(log_path) if log_path else _cache_root() / "logs" / log_name
        self._requested_port = port
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int | None:
        """The port the server listens on; None before :meth:`start` when it is picked then."""
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:41234/v1``."""
        if self._port is None:
            raise LLMError("the embedded server has no port yet: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/v1"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedServer:
        """Start the server and wait until it answers ``GET /v1/models``; a no-op if it runs.

        Returns:
            The server itself, so ``server = EmbeddedServer(...).start()`` works.

        Raises:
            ConfigError: llama-cpp-python's server is not installed, or the model file is missing.
            LLMError: the server exited or did not answer within ``startup_timeout_s``;
                the message holds the end of its log.
        """
        with self._lock:
            if self.running:
                return self
            self._process = None
            if not self.model_path.is_file():
                raise ConfigError(f"the model file {self.model_path} does not exist")
            missing = _missing_server_modules()
            if missing:
                raise ConfigError(
                    f"the embedded LLM server needs modules that are not installed: {', '.join(missing)}. "
                    f"Fix: {_INSTALL_FIX}"
                )
            attempts = 3 if self._requested_port is None else 1
            for attempt in range(1, attempts + 1):
                self._port = self._requested_port or _free_port(self.host)
                self._launch()
                try:
                    self._wait_ready()
                    return self
                except _PortTaken:
                    self._stop_locked(timeout_s=5)
                    if attempt == attempts:
                        raise LLMError(
                            f"the embedded server could not bind {self.host}:{self._port}: the "
                            f"address is in use; log {self.log_path}:\n{_tail(self.log_path)}"
                        ) from None
            raise AssertionError("unreachable")  # the loop returns or raises

    def stop(self, timeout_s: float = 10) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout_s``; a no-op if it is not running."""
        with self._lock:
            self._stop_locked(timeout_s)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else self.host
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"EmbeddedServer({self.model_alias!r} at {where}, {state})"

    def _command(self) -> list[str]:
        """The child's command line."""
        args = [
            "--model", str(self.model_path),
            "--model_alias", self.model_alias,
            "--host", self.host,
            "--port", str(self._port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            # By default a new request silently ends another one's stream with [DONE].
            "--interrupt_requests", "false",
        ]  # fmt: skip
        if self.chat_format:
            args += ["--chat_format", self.chat_format]
        return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *args, *self.extra_args]

    def _launch(self) -> None:
        """Start the child process, its output going to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # llama.cpp's OpenMP threads spin at every barrier by default; when a tool
        # holds a core, a 2-thread Qwen run on 2 cores went from 12 tok/s to
        # under 1. Sleeping waits cost ~10% when idle and keep ~5.5 tok/s under load.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session: a Ctrl-C meant to cancel a request in the
                # terminal does not kill the server; stop() and the watchdog do.
                start_new_session=True,
            )
        atexit.register(self._stop_at_exit)

    def _wait_ready(self) -> None:
        """Poll ``/v1/models`` until our model is listed; raise with the log tail if the child dies or stalls."""
        process = self._process
        if process is None:
            raise LLMError("the embedded server was stopped while starting")
        url = f"{self.base_url}/models"
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = process.poll()
            if code is not None:
                tail = _tail(self.log_path)
                if self._requested_port is None and "address already in use" in tail.lower():
                    raise _PortTaken()
                self._stop_locked(timeout_s=1)
                hint = ""
                if code in (-signal.SIGSEGV, 128 + signal.SIGSEGV):
                    hint = f" It crashed (SIGSEGV); {_INSTALL_FIX}."
                raise LLMError(
                    f"the embedded llama.cpp server for {self.model_alias!r} exited with code {code} "
                    f"before it was ready.{hint} Log {self.log_path}:\n{tail}"
                )
            if _serves(url, self.model_alias):
                return
            if time.monotonic() > deadline:
                self._stop_locked(timeout_s=5)
                raise LLMError(
                    f"the embedded llama.cpp server for {self.model_alias!r} did not answer {url} within "
                    f"{self.startup_timeout_s:g} s; raise startup_timeout_s on a slow machine. "
                    f"Log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(_POLL_S)

    def _stop_at_exit(self) -> None:
        """Stop the child as the interpreter exits, without waiting on a lock a dead thread may hold."""
        self._stop_locked(timeout_s=5)

    def _stop_locked(self, timeout_s: float) -> None:
        """Stop the child; the caller holds ``self._lock`` (or is the only user)."""
        process, self._process = self._process, None
        atexit.unregister(self._stop_at_exit)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._requested_port is None:
            self._port = None


def start_embedded(
    name: str = DEFAULT_EMBEDDED_MODEL,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    **server_kwargs: Any,
) -> EmbeddedServer:
    """Make sure an embedded model is on disk, then serve it; returns the running server.

    Args:
        name: a key of :data:`~patchbay.llm.EMBEDDED_MODELS`.
        cache_dir: where assembled models live (see :func:`~patchbay.llm.ensure_model`).
        progress: show a progress bar while the model is assembled.
        **server_kwargs: passed to :class:`EmbeddedServer`; ``model_alias``
            defaults to ``name``.

    Raises:
        ConfigError: the model or the server is not installed.
        LLMError: the server did not come up.

    Example:
        >>> server = start_embedded(n_threads=2)  # doctest: +SKIP
        >>> server.base_url
        'http://127.0.0.1:41234/v1'
        >>> server.stop()  # doctest: +SKIP
    """
    model = _lookup(name)
    path = ensure_model(name, cache_dir=cache_dir, progress=progress)
    server_kwargs.setdefault("model_alias", name)
    server_kwargs.setdefault("chat_format", model.chat_format)
    return EmbeddedServer(path, **server_kwargs).start()


def _missing_server_modules() -> list[str]:
    """The modules llama_cpp.server needs that are not importable (found without importing them)."""
    missing = []
    for module in _SERVER_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def _free_port(host: str) -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Loopback requests must not go through a proxy from HTTP_PROXY.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _serves(url: str, alias: str) -> bool:
    """Whether ``url`` answers with a model list that holds ``alias``."""
    try:
        with _opener.open(url, timeout=2) as response:
            body = json.load(response)
    except (OSError, ValueError):  # refused, reset, timed out, not JSON yet
        return False
    models = body.get("data") if isinstance(body, dict) else None
    return isinstance(models, list) and any(isinstance(m, dict) and m.get("id") == alias for m in models)


def _tail(path: Path) -> str:
    """The last few thousand characters of a log file."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _TAIL_CHARS))
            return f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log: {exc})"
