"""The Ray actor that serves one tool: load it once, then run many calls through the common invoke path.

The actor opens an :class:`~patchbay.artifacts.ArtifactStore` on the same
workspace directory as the driver, so inputs and outputs move as handles and
files, never through Ray or the LLM. On a multi-node cluster that directory
must be shared storage (NFS, EFS, a ReadWriteMany volume) mounted at the same
path on every node.

Errors travel back as plain data (:class:`CallFailure`), not as raised
exceptions, so the driver rebuilds the same patchbay error class with the
tool's own message instead of Ray's wrapped traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import errors
from ..artifacts import ArtifactStore
from ..tools import Registry, ToolSpec
from ..tools._invoke import TaskOutput, ToolCall, prepare, store_output


@dataclass(frozen=True)
class LLMEndpoint:
    """Where an actor reaches the planner's LLM for ``ToolContext.generate`` (it must be reachable from workers)."""

    base_url: str | None
    api_key: str | None
    model: str
    structured: str = "auto"
    temperature: float = 0.0
    timeout_s: float = 300.0


@dataclass(frozen=True)
class ToolSource:
    """How an actor obtains its tool: by name from the installed plugins, or the spec itself.

    Tools registered through entry points are found again with
    ``Registry.discover()`` inside the actor; tools registered in code travel
    as the pickled :class:`ToolSpec`.
    """

    name: str
    spec: ToolSpec | None = None


@dataclass(frozen=True)
class CallFailure:
    """A failed call or setup, as data: the patchbay error class name and its message."""

    error_type: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> CallFailure:
        if isinstance(exc, errors.PatchbayError):
            return cls(type(exc).__name__, str(exc))
        return cls("ToolError", f"{type(exc).__name__}: {exc}")

    def to_exception(self) -> errors.PatchbayError:
        """The same patchbay error class again (ToolError for anything unknown)."""
        cls = getattr(errors, self.error_type, None)
        # Only classes built from a message alone; the structured ones (duplicate tools...) fall back.
        if isinstance(cls, type) and issubclass(cls, errors.PatchbayError) and cls.__init__ is Exception.__init__:
            return cls(self.message)
        return errors.ToolError(self.message)


@dataclass(frozen=True)
class WorkerInfo:
    """Who an actor is, for logs and tests."""

    pid: int
    host: str
    cuda_visible_devices: str | None


class ToolWorker:
    """One tool, set up once per actor, serving one call at a time.

    Args:
        source: the tool to serve.
        workspace: the artifact store's directory (shared storage on a cluster).
        llm: the planner's endpoint, for tools that call ``ToolContext.generate``.
    """

    def __init__(self, source: ToolSource, workspace: str, llm: LLMEndpoint | None = None):
        self._source = source
        self._workspace = workspace
        self._llm = llm
        self._spec: ToolSpec | None = None
        self._instance: Any = None
        self._store: ArtifactStore | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> WorkerInfo | CallFailure:
        """Find the tool and run its ``setup()``; a failure comes back as data, not as a dead actor."""
        try:
            spec = self._source.spec or _installed_tool(self._source.name)
            if spec.implementation is None:
                raise errors.ToolError(f"{spec.name} is spec-only: it can be planned but not run")
            self._store = ArtifactStore(Path(self._workspace))
            if spec.is_class:
                instance = spec.implementation()
                instance.setup()
                self._instance = instance
            self._spec = spec
        except Exception as exc:  # setup() of any tool: report it instead of dying
            return CallFailure.of(exc)
        return WorkerInfo(os.getpid(), socket.gethostname(), os.environ.get("CUDA_VISIBLE_DEVICES"))

    def run(self, call: ToolCall) -> TaskOutput | CallFailure:
        """Run one call (bind inputs from the store, call the tool, store the output)."""
        if self._spec is None or self._store is None:
            return CallFailure("ToolError", f"the worker for {self._source.name} was not started")
        spec, store = self._spec, self._store
        try:
            target, kwargs = prepare(spec, call, store, self._instance, self._generate if self._llm else None)
            result = target(**kwargs)
            if inspect.isawaitable(result):
                result = self._event_loop().run_until_complete(result)
            return store_output(spec, result, call, store)
        except Exception as exc:  # every failure goes back to the driver as data
            return CallFailure.of(exc)

    def _generate(self, prompt: str) -> str:
        llm = self._llm
        if llm is None:
            raise errors.ToolError(f"{self._source.name} needs the planner's LLM, but none was given to the worker")
        if self._client is None:
            from ..llm.client import ChatClient

            self._client = ChatClient(
                llm.base_url,
                llm.api_key,
                llm.model,
                structured=llm.structured,  # type: ignore[arg-type]
                temperature=llm.temperature,
                timeout_s=llm.timeout_s,
            )
        return self._client.generate(prompt)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """One loop per actor for async tools, so clients they cache stay on one loop."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop


def _installed_tool(name: str) -> ToolSpec:
    """The tool called ``name`` among the plugins installed on this worker.

    Raises:
        ConfigError: no installed plugin provides it here.
    """
    registry = Registry.discover()
    if name not in registry:
        raise errors.ConfigError(
            f"tool {name!r} is not installed on this Ray worker; install the package that provides it "
            "on every node (or ship it with the job's working_dir)"
        )
    return registry.get(name)
