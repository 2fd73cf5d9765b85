"""Run a plan's graph: every task whose inputs are ready starts at once.

A failed task marks only its descendants skipped (with the cause); independent
branches run to the end. Transient failures (a timeout, a dead worker) are
retried with backoff; a tool's own failure is not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import PatchbayError, TaskTimeout, TransientToolError
from ..tools import Registry
from ..tools._invoke import TaskOutput, ToolCall
from .backends import ExecutionBackend
from .events import Event, TaskFailed, TaskFinished, TaskSkipped, TaskStarted
from .plan import REFERENCE, Plan, Task, map_strings, whole_reference

Emit = Callable[[Event], None]


@dataclass
class TaskResult:
    """What happened to one task; serializable into the graph state."""

    task_id: int
    tool: str
    status: Literal["succeeded", "failed", "skipped"]
    args: dict[str, Any]
    output: dict[str, Any] | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        return cls(**data)


class Executor:
    """Runs validated plans on an :class:`ExecutionBackend`.

    Args:
        registry: where task tools are looked up.
        backend: where calls run.
        default_timeout_s: per-task limit for tools that declare none.
        transient_retries: extra attempts after a transient failure, for tools
            that declare no ``retries`` of their own.
        retry_backoff_s: first wait before a retry; doubles each time.
    """

    def __init__(
        self,
        registry: Registry,
        backend: ExecutionBackend,
        *,
        default_timeout_s: float = 600.0,
        transient_retries: int = 2,
        retry_backoff_s: float = 0.2,
    ):
        self.registry = registry
        self.backend = backend
        self.default_timeout_s = default_timeout_s
        self.transient_retries = transient_retries
        self.retry_backoff_s = retry_backoff_s

    async def run(
        self,
        plan: Plan,
        *,
        request_id: str,
        attachments: dict[str, str] | None = None,
        emit: Emit | None = None,
    ) -> dict[int, TaskResult]:
        """Run every task of ``plan``; returns each task's result by id (never raises for a task)."""
        emit = emit or (lambda event: None)
        attachments = attachments or {}
        by_id = {t.id: t for t in plan.tasks}
        dependents: dict[int, list[int]] = {t.id: [] for t in plan.tasks}
        waiting: dict[int, set[int]] = {}
        for t in plan.tasks:
            waiting[t.id] = set(t.dependencies)
            for dep in t.dependencies:
                dependents[dep].append(t.id)
        results: dict[int, TaskResult] = {}
        outputs: dict[int, TaskOutput] = {}
        running: dict[asyncio.Future[TaskResult], int] = {}

        def launch(task: Task) -> None:
            call = ToolCall(task.tool, _resolve_args(task.args, outputs), request_id, task.id, attachments)
            running[asyncio.ensure_future(self._run_task(task, call, emit))] = task.id

        def skip_descendants(failed: TaskResult) -> None:
            cause = f"task {failed.task_id} ({failed.tool}) {failed.status}: {failed.error}"
            frontier = list(dependents[failed.task_id])
            while frontier:
                tid = frontier.pop()
                if tid in results:
                    continue
                task = by_id[tid]
                results[tid] = TaskResult(tid, task.tool, "skipped", task.args, error=cause)
                emit(TaskSkipped(request_id, task_id=tid, tool=task.tool, cause=cause))
                frontier.extend(dependents[tid])

        for t in plan.tasks:
            if not waiting[t.id]:
                launch(t)
        try:
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    tid = running.pop(future)
                    result = future.result()
                    results[tid] = result
                    if result.status != "succeeded" or result.output is None:
                        skip_descendants(result)
                        continue
                    outputs[tid] = TaskOutput.from_dict(result.output)
                    for child in dependents[tid]:
                        waiting[child].discard(tid)
                        if not waiting[child] and child not in results:
                            launch(by_id[child])
        finally:
            for future in running:
                future.cancel()
        return {t.id: results[t.id] for t in plan.tasks}

    async def _run_task(self, task: Task, call: ToolCall, emit: Emit) -> TaskResult:
        spec = self.registry.get(task.tool)
        timeout = spec.timeout_s or self.default_timeout_s
        retries = self.transient_retries if spec.retries is None else spec.retries
        result = TaskResult(task.id, task.tool, "failed", call.args)
        backoff = self.retry_backoff_s
        for attempt in range(1, retries + 2):
            result.attempts = attempt
            started = time.time()
            result.started_at = result.started_at or started
            emit(TaskStarted(call.request_id, task_id=task.id, tool=task.tool, args=call.args, attempt=attempt))
            transient = False
            try:
                async with asyncio.timeout(timeout):
                    output = await self.backend.run(spec, call)
            except TimeoutError:
                error, transient = str(TaskTimeout(f"timed out after {timeout:g} s")), True
            except TransientToolError as exc:
                error, transient = str(exc) or type(exc).__name__, True
            except PatchbayError as exc:
                error = str(exc)
            except Exception as exc:  # a bug inside a tool must not take the request down
                error = f"{type(exc).__name__}: {exc}"
            else:
                result.status, result.output = "succeeded", output.to_dict()
                result.finished_at = time.time()
                emit(
                    TaskFinished(
                        call.request_id,
                        task_id=task.id,
                        tool=task.tool,
                        output=result.output,
                        duration_s=result.finished_at - started,
                    )
                )
                return result
            will_retry = transient and attempt <= retries
            emit(
                TaskFailed(
                    call.request_id,
                    task_id=task.id,
                    tool=task.tool,
                    error=error,
                    attempt=attempt,
                    will_retry=will_retry,
                )
            )
            result.error = error
            if not will_retry:
                break
            await asyncio.sleep(backoff)
            backoff *= 2
        result.finished_at = time.time()
        return result


def _resolve_args(value: Any, outputs: dict[int, TaskOutput]) -> Any:
    """Replace references with the outputs they name: whole values as is, spliced ones as text."""

    def resolve(text: str) -> Any:
        ref = whole_reference(text)
        if ref is not None:
            return outputs[ref].value
        return REFERENCE.sub(lambda m: str(outputs[int(m.group(1) or m.group(2))].value), text)

    return map_strings(value, resolve)
