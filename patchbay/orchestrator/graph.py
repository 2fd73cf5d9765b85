"""The request flow as a LangGraph StateGraph: plan -> execute -> compose, with a bounded replan.

The state holds only ids, handles and plain dicts, so any checkpointer can save
it; the planner, executor, composer and store live in :class:`RunContext`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from ..artifacts import ArtifactStore
from ..sniff import kind_of_mime
from ..tools import Registry, kinds_compatible
from ..tools._invoke import TaskOutput
from .composer import Composer
from .events import AnswerReady, PlanReady
from .executor import Executor, TaskResult
from .plan import Plan
from .planner import Planner


class ConversationState(TypedDict, total=False):
    """One conversation thread; ``history`` accumulates across turns."""

    request_id: str
    request: str
    attachments: list[dict[str, Any]]  # this turn's: {id, name, mime}
    history: Annotated[list[dict[str, Any]], operator.add]
    plan: dict[str, Any] | None
    results: list[dict[str, Any]]
    feedback: str | None
    replans: int
    answer: dict[str, Any] | None


@dataclass
class RunContext:
    """The live objects the nodes use; never checkpointed."""

    planner: Planner
    executor: Executor
    composer: Composer
    store: ArtifactStore
    registry: Registry
    max_replans: int = 1


def new_turn(request_id: str, request: str, attachments: list[dict[str, Any]]) -> ConversationState:
    """The input that starts a turn: resets the per-turn fields, keeps the history."""
    return {
        "request_id": request_id,
        "request": request,
        "attachments": attachments,
        "plan": None,
        "results": [],
        "feedback": None,
        "replans": 0,
        "answer": None,
    }


def known_artifacts(state: ConversationState) -> list[dict[str, Any]]:
    """Every artifact this conversation has seen: earlier turns' files and this turn's attachments."""
    seen = [a for turn in state.get("history", []) for a in turn.get("artifacts", [])]
    return seen + list(state.get("attachments", []))


async def plan_node(state: ConversationState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    artifacts = {a["id"]: a for a in known_artifacts(state)}
    names = {a["name"]: a["id"] for a in state.get("attachments", []) if a.get("name")}

    def check_media_literal(kind: str, value: str) -> str | None:
        handle = names.get(value, value)
        if handle not in artifacts:
            return (
                f"{value!r} is not a file of this conversation; use an attachment's handle, "
                "an earlier artifact's handle, or <resource-N>"
            )
        actual = ctx.store.get(handle).kind
        if not kinds_compatible(actual, kind):
            return f"{value} is {actual}, but the argument expects {kind}"
        return None

    replans = state.get("replans", 0) + (1 if state.get("feedback") else 0)
    plan = await ctx.planner.aplan(
        state["request"],
        request_id=state["request_id"],
        attachments=state.get("attachments", []),
        history=state.get("history", []),
        feedback=state.get("feedback"),
        check_media_literal=check_media_literal,
        emit=runtime.stream_writer,
        latest=_latest_results(state),
    )
    runtime.stream_writer(PlanReady(state["request_id"], plan=plan.to_json(), attempt=replans + 1))
    return {"plan": plan.to_json(), "replans": replans, "feedback": None}


async def execute_node(state: ConversationState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    plan = Plan.from_json(state["plan"] or {})
    names = {a["name"]: a["id"] for a in state.get("attachments", []) if a.get("name")}
    results = await ctx.executor.run(
        plan, request_id=state["request_id"], attachments=names, emit=runtime.stream_writer
    )
    failed = [r for r in results.values() if r.status == "failed"]
    feedback = None
    if failed:
        feedback = "\n".join(f"- task {r.task_id} ({r.tool}) failed: {r.error}" for r in failed)
    return {"results": [r.to_dict() for r in results.values()], "feedback": feedback}


def after_execute(state: ConversationState, runtime: Runtime[RunContext]) -> Literal["plan", "compose"]:
    """Back to planning once more when tasks failed, within the replan budget."""
    if state.get("feedback") and state.get("replans", 0) < runtime.context.max_replans:
        return "plan"
    return "compose"


async def compose_node(state: ConversationState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    results = [TaskResult.from_dict(r) for r in state.get("results", [])]
    known = {a["id"] for a in known_artifacts(state)}
    answer = await ctx.composer.acompose(
        state["request"],
        results,
        attachments=state.get("attachments", []),
        history=state.get("history", []),
        known_handles=known,
    )
    runtime.stream_writer(AnswerReady(state["request_id"], text=answer.text, artifacts=answer.artifacts))
    made = [
        {"id": h, "mime": ctx.store.get(h).mime, "name": None, "tool": r.tool}
        for r in results
        if r.status == "succeeded" and r.output
        for h in _output_handles(r)
    ]
    turn = {
        "request_id": state["request_id"],
        "request": state["request"],
        "answer": answer.text,
        "artifacts": [{**a, "tool": None} for a in state.get("attachments", [])] + made,
    }
    return {
        "answer": {"text": answer.text, "artifacts": answer.artifacts, "composer_error": answer.composer_error},
        "history": [turn],
    }


def _latest_results(state: ConversationState) -> dict[str, str]:
    """The most recent file of each media kind that earlier turns made."""
    latest: dict[str, str] = {}
    for turn in state.get("history", []):
        for artifact in turn.get("artifacts", []):
            if artifact.get("tool"):
                latest[kind_of_mime(artifact["mime"])] = artifact["id"]
    return latest


def _output_handles(result: TaskResult) -> list[str]:
    return TaskOutput.from_dict(result.output or {"kind": "text", "value": ""}).handles()


def build_graph(checkpointer: Checkpointer = None) -> Any:
    """Compile the plan -> execute -> compose graph (with the replan edge)."""
    graph = StateGraph(ConversationState, context_schema=RunContext)
    graph.add_node("plan", plan_node)
    graph.add_node("execute", execute_node)
    graph.add_node("compose", compose_node)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", lambda s: "execute" if (s.get("plan") or {}).get("tasks") else "compose")
    graph.add_conditional_edges("execute", after_execute)
    graph.add_edge("compose", END)
    return graph.compile(checkpointer=checkpointer)
