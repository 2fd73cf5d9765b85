"""The front door: one object that takes a request and its files and streams the run.

It wires the parts (LLM client, planner, executor, composer, artifact store,
LangGraph checkpointer) from :class:`~patchbay.config.Settings`, and starts and
stops the embedded model server when no endpoint is configured.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import Artifact, ArtifactStore, Provenance, read_checked
from ..config import Settings
from ..errors import PatchbayError
from ..llm.client import ChatClient
from ..llm.connect import connect
from ..tools import Registry
from .backends import ExecutionBackend, make_backend
from .composer import Composer
from .events import Event, RequestFailed
from .executor import Executor, TaskResult
from .graph import RunContext, build_graph, new_turn
from .plan import Plan
from .planner import Planner

log = logging.getLogger("patchbay.events")


@dataclass
class Answer:
    """What a request produced: the reply, the files it presents, and how it got there."""

    request_id: str
    thread_id: str
    text: str
    artifacts: list[Artifact]
    plan: Plan
    results: list[TaskResult] = field(default_factory=list)

    @property
    def failed_tasks(self) -> list[TaskResult]:
        return [r for r in self.results if r.status != "succeeded"]


class Orchestrator:
    """Plans, runs and answers requests; one per process, shared by many conversations.

    Use it as an async context manager (it owns the embedded server and the
    conversation database)::

        async with Orchestrator(Settings.from_env()) as patchbay:
            answer = await patchbay.arun("make photo.png black and white", ["photo.png"])
            print(answer.text, [a.path for a in answer.artifacts])

    Args:
        settings: endpoint, model, workspace and budgets.
        registry: the tools; default: every installed plugin's tools.
        backend: where tools run; default: the one ``settings.backend`` names
            (in this process, or Ray workers).
        dry_run: plan only; spec-only tools are offered to the planner.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        backend: ExecutionBackend | None = None,
        dry_run: bool = False,
    ):
        self.settings = settings or Settings.from_env()
        self.registry = registry if registry is not None else Registry.discover()
        self.store = ArtifactStore(self.settings.workspace)
        self._backend = backend
        self._dry_run = dry_run
        self._stack = contextlib.AsyncExitStack()
        self._graph: Any = None
        self.client: ChatClient | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def __aenter__(self) -> Orchestrator:
        try:
            await self._open()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def _open(self) -> None:
        settings = self.settings
        self.client = await self._stack.enter_async_context(connect(settings))
        planner_client = self.client
        if settings.uses_embedded:
            planner_client = await self._stack.enter_async_context(connect(settings, role="planner"))
        self.planner = Planner(
            planner_client,
            self.registry,
            max_attempts=settings.max_plan_attempts,
            include_spec_only=self._dry_run,
            plan_format=settings.plan_format,
        )
        self.composer = Composer(self.client, name_of=self._artifact_name)
        backend = self._backend or make_backend(settings, self.store)
        self._backend = backend
        backend.bind_llm(self.client)
        await backend.start()
        self.executor = Executor(self.registry, backend, default_timeout_s=settings.task_timeout_s)
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        saver = await self._stack.enter_async_context(
            AsyncSqliteSaver.from_conn_string(str(self.store.workspace / "conversations.sqlite"))
        )
        self._graph = build_graph(saver)

    def _artifact_name(self, handle: str) -> str | None:
        try:
            return self.store.get(handle).name
        except PatchbayError:
            return None

    async def aclose(self) -> None:
        """Close the conversation database, the workers and the embedded server."""
        await self._stack.aclose()
        if self._backend is not None:
            await self._backend.close()

    # -- requests ------------------------------------------------------------------
    def attach(self, paths: Sequence[Path | str]) -> list[dict[str, Any]]:
        """Store the user's files; names stay unique within the request.

        Raises:
            InputError: a file is missing, unreadable, empty or not what its name says.
        """
        # Check every file before storing any, so a bad one leaves nothing behind.
        checked = [(Path(path), *read_checked(Path(path))) for path in paths]
        attached: list[dict[str, Any]] = []
        names: set[str] = set()
        for path, data, mime in checked:
            artifact = self.store.put_bytes(data, mime, Provenance("attachment", filename=path.name), name=path.name)
            name, n = path.name, 1
            while name in names:
                n += 1
                name = f"{path.stem} ({n}){path.suffix}"
            names.add(name)
            attached.append({"id": artifact.id, "name": name, "mime": artifact.mime})
        return attached

    async def astream(
        self,
        request: str,
        attachments: Sequence[Path | str] = (),
        *,
        thread_id: str | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[Event]:
        """Run a request in a conversation thread, yielding each event as it happens.

        The last event is :class:`AnswerReady`, or :class:`RequestFailed` just
        before the error is raised.

        Raises:
            InputError: an attachment is unusable (before anything runs).
            PlanningFailed, LLMError: no plan could be made.
        """
        self._require_open()
        request_id = request_id or uuid.uuid4().hex[:12]
        thread_id = thread_id or request_id
        attached = self.attach(attachments)
        config = {"configurable": {"thread_id": thread_id}}
        context = RunContext(
            self.planner, self.executor, self.composer, self.store, self.registry, self.settings.max_replans
        )
        try:
            async for event in self._graph.astream(
                new_turn(request_id, request, attached), config, context=context, stream_mode="custom"
            ):
                log.info("%s", event.to_dict())
                yield event
        except Exception as exc:
            yield RequestFailed(request_id, error=str(exc))
            raise

    async def arun(
        self,
        request: str,
        attachments: Sequence[Path | str] = (),
        *,
        thread_id: str | None = None,
        request_id: str | None = None,
    ) -> Answer:
        """Run a request to the end and return the :class:`Answer`."""
        request_id = request_id or uuid.uuid4().hex[:12]
        thread_id = thread_id or request_id
        async for _ in self.astream(request, attachments, thread_id=thread_id, request_id=request_id):
            pass
        return await self.last_answer(thread_id)

    async def last_answer(self, thread_id: str) -> Answer:
        """The answer of the thread's latest turn, rebuilt from the checkpoint."""
        self._require_open()
        snapshot = await self._graph.aget_state({"configurable": {"thread_id": thread_id}})
        state = snapshot.values
        answer = state.get("answer") or {"text": "", "artifacts": []}
        return Answer(
            request_id=state.get("request_id", ""),
            thread_id=thread_id,
            text=answer["text"],
            artifacts=[self.store.get(h) for h in answer["artifacts"]],
            plan=Plan.from_json(state.get("plan") or {}),
            results=[TaskResult.from_dict(r) for r in state.get("results", [])],
        )

    async def aplan(self, request: str, attachments: Sequence[Path | str] = ()) -> Plan:
        """Plan a request without running it (``patchbay plan``)."""
        self._require_open()
        attached = self.attach(attachments)
        handles = {a["id"] for a in attached} | {a["name"] for a in attached}

        def check(kind: str, value: str) -> str | None:
            return None if value in handles else f"{value!r} is not one of the request's attachments"

        # Spec-only catalogs (evaluation) name files the user merely mentions: no check there.
        return await self.planner.aplan(
            request,
            request_id="dry-run",
            attachments=attached,
            check_media_literal=None if self._dry_run else check,
        )

    def _require_open(self) -> None:
        if self._graph is None:
            raise RuntimeError("use the Orchestrator inside 'async with' (it starts the LLM and the database)")
