"""Human-readable lines for each event, as ``patchbay run`` prints them to stderr."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ..orchestrator.events import (
    AnswerReady,
    Event,
    PlanReady,
    PlanRejected,
    RequestFailed,
    TaskFailed,
    TaskFinished,
    TaskSkipped,
    TaskStarted,
)


def format_plan(plan: dict[str, Any]) -> str:
    """One line per task: ``[2] image_resize(image=<resource-1>, width=256)``."""
    tasks = plan.get("tasks", [])
    if not tasks:
        return "plan: no tools needed; answering directly"
    lines = [f"plan: {len(tasks)} task{'s' if len(tasks) != 1 else ''}"]
    for t in tasks:
        args = ", ".join(f"{k}={_short(v)}" for k, v in t["args"].items())
        lines.append(f"  [{t['id']}] {t['tool']}({args})")
    return "\n".join(lines)


def format_event(event: Event) -> str | None:
    """The progress line for an event, or None for events the answer itself shows."""
    if isinstance(event, PlanReady):
        return format_plan(event.plan)
    if isinstance(event, PlanRejected):
        reasons = [line.lstrip("- ") for line in event.reason.splitlines() if not line.endswith(":")][:3]
        return f"plan {event.attempt} rejected: {'; '.join(reasons)}"
    if isinstance(event, TaskStarted):
        retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return f"  [{event.task_id}] {event.tool} started{retry}"
    if isinstance(event, TaskFinished):
        return f"  [{event.task_id}] {event.tool} done in {event.duration_s:.2f}s -> {_short(event.output['value'])}"
    if isinstance(event, TaskFailed):
        again = ", retrying" if event.will_retry else ""
        return f"  [{event.task_id}] {event.tool} FAILED{again}: {event.error}"
    if isinstance(event, TaskSkipped):
        return f"  [{event.task_id}] {event.tool} skipped: {event.cause}"
    if isinstance(event, RequestFailed):
        return None  # the CLI prints the error line itself
    if isinstance(event, AnswerReady):
        return None
    return None


def print_event(event: Event, stream: TextIO, as_json: bool = False) -> None:
    if as_json:
        stream.write(json.dumps(event.to_dict(), default=str) + "\n")
    else:
        line = format_event(event)
        if line:
            stream.write(line + "\n")
    stream.flush()


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
