"""The request's path: plan (planner) -> validate -> execute (executor, backends) -> compose."""

from .backends import ExecutionBackend, InProcessBackend
from .composer import ComposedAnswer, Composer
from .events import (
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
from .executor import Executor, TaskResult
from .orchestrator import Answer, Orchestrator
from .parse import parse_plan_text
from .plan import Plan, Task, reference
from .planner import Planner, plan_schema
from .validate import validate_plan

__all__ = [
    "Answer",
    "AnswerReady",
    "ComposedAnswer",
    "Composer",
    "Event",
    "ExecutionBackend",
    "Executor",
    "InProcessBackend",
    "Orchestrator",
    "Plan",
    "PlanReady",
    "PlanRejected",
    "Planner",
    "RequestFailed",
    "Task",
    "TaskFailed",
    "TaskFinished",
    "TaskResult",
    "TaskSkipped",
    "TaskStarted",
    "parse_plan_text",
    "plan_schema",
    "reference",
    "validate_plan",
]
