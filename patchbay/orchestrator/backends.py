"""Where tool calls run. The executor talks only to :class:`ExecutionBackend`.

The in-process backend runs synchronous tools in a thread pool and awaits async
ones; class tools are instantiated and ``setup()`` once per process. The Ray
backend (``patchbay.cluster``) implements the same interface with actors.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..artifacts import ArtifactStore
from ..errors import ConfigError
from ..tools import ToolSpec
from ..tools._invoke import TaskOutput, ToolCall, invoke, prepare, store_output
from ..tools._spec import is_media_kind

if TYPE_CHECKING:
    from ..config import Settings
    from ..llm.client import ChatClient


class ExecutionBackend(abc.ABC):
    """Runs one tool call and returns its stored output.

    Implementations raise :class:`~patchbay.errors.TransientToolError` for
    failures worth retrying (a dead worker), :class:`~patchbay.errors.ToolError`
    or :class:`~patchbay.errors.InputError` for the rest.
    """

    name: str = "backend"

    async def start(self) -> None:
        """Acquire workers; called once before the first call."""

    def bind_llm(self, client: ChatClient) -> None:
        """Learn the planner's LLM, for tools that ask for ``ToolContext.generate``; called before start."""

    @abc.abstractmethod
    async def run(self, spec: ToolSpec, call: ToolCall) -> TaskOutput:
        """Run ``call`` with the tool ``spec`` and return its output."""

    async def close(self) -> None:
        """Release workers."""


class InProcessBackend(ExecutionBackend):
    """Runs tools in this process: sync tools in threads, async tools on the loop."""

    name = "in-process"

    def __init__(
        self,
        store: ArtifactStore,
        generate: Callable[[str], str] | None = None,
        max_threads: int = 64,
    ):
        self.store = store
        self.generate = generate
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="patchbay-tool")
        self._instances: dict[str, Any] = {}
        self._setup_lock = threading.Lock()

    def bind_llm(self, client: ChatClient) -> None:
        if self.generate is None:
            self.generate = client.generate

    def instance(self, spec: ToolSpec) -> Any:
        """The one set-up instance of a class tool in this process (created on first use)."""
        if not spec.is_class:
            return None
        existing = self._instances.get(spec.name)
        if existing is not None:
            return existing
        with self._setup_lock:
            if spec.name not in self._instances:
                obj = spec.implementation()
                obj.setup()
                self._instances[spec.name] = obj
            return self._instances[spec.name]

    async def run(self, spec: ToolSpec, call: ToolCall) -> TaskOutput:
        loop = asyncio.get_running_loop()
        impl = spec.implementation.run if spec.is_class else spec.implementation
        if not inspect.iscoroutinefunction(impl):
            return await loop.run_in_executor(self._pool, self._run_sync, spec, call)
        # Async tools: one hop to bind (files are read there), then the call on the loop.
        target, kwargs = await loop.run_in_executor(self._pool, self._prepare, spec, call)
        result = await target(**kwargs)
        if is_media_kind(spec.output_kind):
            return await loop.run_in_executor(self._pool, store_output, spec, result, call, self.store)
        return store_output(spec, result, call, self.store)

    def _prepare(self, spec: ToolSpec, call: ToolCall) -> tuple[Any, dict[str, Any]]:
        return prepare(spec, call, self.store, self.instance(spec), self.generate)

    def _run_sync(self, spec: ToolSpec, call: ToolCall) -> TaskOutput:
        return invoke(spec, call, self.store, self.instance(spec), self.generate)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_backend(settings: Settings, store: ArtifactStore) -> ExecutionBackend:
    """The backend ``settings.backend`` names, for the workspace of ``store``.

    Raises:
        ConfigError: an unknown backend name, or ``ray`` without Ray installed.
    """
    if settings.backend == "in-process":
        return InProcessBackend(store)
    if settings.backend == "ray":
        from ..cluster import RayBackend

        return RayBackend.from_settings(settings)
    raise ConfigError(f"unknown execution backend {settings.backend!r}; use 'in-process' or 'ray'")
