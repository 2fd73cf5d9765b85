"""Typed events, one per step of a request; the CLI, the UI and logs all consume these."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Event:
    request_id: str
    at: float = field(default_factory=time.time, kw_only=True)

    type: str = field(default="event", init=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlanReady(Event):
    plan: dict[str, Any]
    attempt: int = 1
    type: Literal["plan_ready"] = field(default="plan_ready", init=False)


@dataclass(frozen=True)
class PlanRejected(Event):
    """The LLM's plan failed parsing or validation; it is asked again with the reason."""

    reason: str
    attempt: int
    type: Literal["plan_rejected"] = field(default="plan_rejected", init=False)


@dataclass(frozen=True)
class TaskStarted(Event):
    task_id: int
    tool: str
    args: dict[str, Any]
    attempt: int = 1
    type: Literal["task_started"] = field(default="task_started", init=False)


@dataclass(frozen=True)
class TaskFinished(Event):
    task_id: int
    tool: str
    output: dict[str, Any]
    duration_s: float
    type: Literal["task_finished"] = field(default="task_finished", init=False)


@dataclass(frozen=True)
class TaskFailed(Event):
    task_id: int
    tool: str
    error: str
    attempt: int
    will_retry: bool
    type: Literal["task_failed"] = field(default="task_failed", init=False)


@dataclass(frozen=True)
class TaskSkipped(Event):
    task_id: int
    tool: str
    cause: str
    type: Literal["task_skipped"] = field(default="task_skipped", init=False)


@dataclass(frozen=True)
class AnswerReady(Event):
    text: str
    artifacts: list[str]
    type: Literal["answer_ready"] = field(default="answer_ready", init=False)


@dataclass(frozen=True)
class RequestFailed(Event):
    error: str
    type: Literal["request_failed"] = field(default="request_failed", init=False)
