"""Ask the LLM for a plan, validate it, and send it back with the errors until it is right."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from ..errors import PlanError, PlanningFailed, PlanValidationError
from ..llm.client import ChatClient
from ..prompts import render
from ..tools import Registry, ToolSpec
from ..tools._spec import is_media_kind
from .events import Event, PlanRejected
from .parse import parse_plan_steps, parse_plan_text
from .plan import Plan
from .plan_lines import format_plan_lines, in_line_notation, line_name, parse_plan_lines
from .reference_repair import (
    bypass_dropped_tasks,
    complete_web_addresses,
    drop_needless_downloads,
    point_dangling_references_at,
    read_self_references_as_user_text,
    repoint_mistyped_references,
)
from .step_repair import drop_done_conversions, fetch_web_addresses, uncross_arguments
from .tool_resolution import resolve_unknown_tools
from .validate import LiteralCheck, validate_plan

# How the LLM writes a plan: JSON, or one line a step (see plan_lines).
PlanFormat = Literal["json", "lines"]


class Planner:
    """Turns a request into a validated :class:`Plan` through the LLM.

    Args:
        client: the LLM.
        registry: the tools.
        max_attempts: how many replies to try (the first plus repairs).
        include_spec_only: offer spec-only tools too (dry runs and evaluation).
        allowed_links: tool-to-tool links a plan may use (None: any type-correct link).
        salvage: when every attempt is rejected, run the valid part of the last plan
            (tasks with problems, and tasks that need them, are dropped) instead of nothing.
        plan_format: how the LLM writes plans: ``json`` (what schema-constrained
            endpoints enforce) or ``lines`` (``2. action -> tool(arg=#1)``, a third
            of the tokens, for a model decoding on a CPU; only with a ``prefill``
            client), which plans TaskBench better and faster (docs/benchmarks.md).
    """

    def __init__(
        self,
        client: ChatClient,
        registry: Registry,
        *,
        max_attempts: int = 3,
        include_spec_only: bool = False,
        allowed_links: set[tuple[str, str]] | None = None,
        salvage: bool = True,
        plan_format: PlanFormat = "lines",
    ):
        self.client = client
        self.plan_format: PlanFormat = plan_format if client.structured == "prefill" else "json"
        self.registry = registry
        self.max_attempts = max_attempts
        self.include_spec_only = include_spec_only
        self.allowed_links = allowed_links
        self.salvage = salvage
        self._catalog: list[ToolSpec] | None = None

    def catalog(self) -> list[ToolSpec]:
        """The tools the LLM is shown: available ones (and spec-only ones for dry runs).

        Worked out once per planner: availability checks touch the disk and the
        network, and a stable catalog keeps the prompt prefix cacheable.
        """
        if self._catalog is None:
            self._catalog = self.registry.plannable(include_spec_only=self.include_spec_only)
        return self._catalog

    def examples(self, limit: int = 4) -> list[dict[str, str]]:
        """Worked examples whose tools are all in the catalog (static, so the prompt prefix caches).

        One-step examples are shown first: a small model copies the shape of the
        first plans it reads, and after a three-step example it padded one-step
        requests with a caption or an image_info step (docs/benchmarks.md).
        """
        names = {t.name for t in self.catalog()}
        chosen = [e for e in _example_pool() if {t["tool"] for t in e["plan"]["tasks"]} <= names][:limit]
        chosen.sort(key=lambda example: len(example["plan"]["tasks"]) > 1)
        return [{"request": e["request"], "plan": self._show(e["plan"])} for e in chosen]

    def _show(self, plan: dict[str, Any]) -> str:
        """A worked example's plan, written the way this planner asks the LLM to write plans."""
        if self.plan_format == "lines":
            shown = self.shown_names()
            tasks = [{**task, "tool": shown.get(task["tool"], task["tool"])} for task in plan["tasks"]]
            return format_plan_lines(tasks, plan.get("steps"))
        return json.dumps(plan)

    def shown_names(self) -> dict[str, str]:
        """Tool name -> the name the LLM is shown, where they differ (brackets in line notation)."""
        if self.plan_format != "lines":
            return {}
        names = {spec.name for spec in self.catalog()}
        shown = {name: line_name(name) for name in names}
        return {name: line for name, line in shown.items() if line != name and line not in names}

    def messages(
        self,
        request: str,
        *,
        attachments: list[dict[str, Any]] | None = None,
        history: list[dict[str, Any]] | None = None,
        feedback: str | None = None,
    ) -> list[dict[str, str]]:
        """The chat messages of a first planning attempt (also what prompt snapshots test)."""
        return [
            {
                "role": "system",
                "content": render(
                    "plan_system",
                    tools=self.catalog(),
                    examples=self.examples(),
                    plan_format=self.plan_format,
                    shown_names=self.shown_names(),
                ),
            },
            {
                "role": "user",
                "content": render(
                    "plan_user",
                    plan_format=self.plan_format,
                    request=request,
                    attachments=attachments or [],
                    history=history or [],
                    feedback=feedback,
                ),
            },
        ]

    async def aplan(
        self,
        request: str,
        *,
        request_id: str,
        attachments: list[dict[str, Any]] | None = None,
        history: list[dict[str, Any]] | None = None,
        feedback: str | None = None,
        check_media_literal: LiteralCheck | None = None,
        emit: Callable[[Event], None] | None = None,
        latest: dict[str, str] | None = None,
    ) -> Plan:
        """Plan ``request``; repair rejected plans up to ``max_attempts`` replies in all.

        Raises:
            PlanningFailed: no valid plan within the budget; the message has the last reason.
            LLMError: the endpoint failed.

        ``latest`` maps a media kind to the conversation's latest result of that kind:
        a follow-up's whole-value reference to a task the new plan lacks ("it") means it.
        """
        tools = self.catalog()
        allowed = {t.name for t in tools}
        schema = plan_schema(tools)
        messages = self.messages(request, attachments=attachments, history=history, feedback=feedback)
        last_error = ""
        readable: list[list[dict[str, Any]]] = []  # each attempt's plan that parsed, repairs applied
        replies: list[str] = []
        lines = self.plan_format == "lines"
        real_names = {shown: name for name, shown in self.shown_names().items()}
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            if lines:
                reply = await self.client.acomplete(
                    messages, prefix=LINES_PREFIX, max_tokens=LINES_MAX_TOKENS, stop=LINES_STOPS
                )
            else:
                reply = await self.client.acomplete(
                    messages, schema=schema, prefix=PLAN_PREFIX, max_tokens=PLAN_MAX_TOKENS
                )
            if reply in replies:
                break  # the model repeats a rejected plan word for word: more repairs would too
            replies.append(reply)
            try:
                raw, steps = parse_plan_lines(reply) if lines else (parse_plan_text(reply), parse_plan_steps(reply))
                raw = [{**task, "tool": real_names.get(task["tool"], task["tool"])} for task in raw]
                raw = uncross_arguments(raw, self.registry)
                raw = resolve_unknown_tools(raw, steps, tools, self.registry, allowed_links=self.allowed_links)
                raw = point_dangling_references_at(raw, latest or {}, self.registry)
                raw = complete_web_addresses(raw, self.registry)
                raw = drop_needless_downloads(raw, self.registry)
                raw = fetch_web_addresses(raw, self.registry, tools)
                raw = read_self_references_as_user_text(raw, request, self.registry)
                raw = repoint_mistyped_references(raw, request, self.registry, self.allowed_links)
                raw = resolve_unknown_tools(
                    raw, steps, tools, self.registry, allowed_links=self.allowed_links, mistyped_references=True
                )
                raw = drop_done_conversions(raw, self.registry)
                readable.append(raw)
                return validate_plan(raw, self.registry, check_media_literal, allowed, self.allowed_links)
            except PlanError as exc:
                last_error = str(exc)
                if emit is not None:
                    emit(PlanRejected(request_id, reason=last_error, attempt=attempt))
                shown = in_line_notation(last_error) if lines else last_error
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": render("plan_repair", error=shown, plan_format=self.plan_format)},
                ]
        if self.salvage and readable:
            # The largest valid part of any attempt (the earliest on a tie): at temperature 0 a
            # repair often keeps the wrong step and loses a right one.
            salvaged = [self._salvage(attempt_raw, check_media_literal, allowed) for attempt_raw in readable]
            plan, dropped = max(salvaged, key=lambda kept: len(kept[0].tasks))
            if plan.tasks:
                if emit is not None:
                    emit(
                        PlanRejected(request_id, reason="kept the valid part of the plan; " + dropped, attempt=attempt)
                    )
                return plan
        tries = f"{attempt} attempts" if attempt > 1 else "1 attempt"
        raise PlanningFailed(f"no valid plan after {tries}; last problem: {last_error}")

    def _salvage(self, raw: list[dict[str, Any]], check: LiteralCheck | None, allowed: set[str]) -> tuple[Plan, str]:
        """The largest valid part of a plan: drop tasks with problems until the rest validates."""
        remaining = list(raw)
        notes: list[str] = []
        for _ in range(len(raw)):
            try:
                return validate_plan(remaining, self.registry, check, allowed, self.allowed_links), "; ".join(notes)
            except PlanValidationError as exc:
                bad = {int(m.group(1)) for p in exc.problems if (m := _TASK_ID.match(p))}
                if not bad:
                    break
                notes.extend(exc.problems)
                remaining, bypassed = bypass_dropped_tasks(remaining, bad, self.registry)
                notes.extend(bypassed)
            if not remaining:
                break
        return Plan(), "; ".join(notes)


_TASK_ID = re.compile(r"^task (\d+)\b")

# How a plan reply begins when the client can begin it (``prefill`` output): compact JSON, steps first.
PLAN_PREFIX = '{"steps": ['
# A plan of 8 steps is about 300 tokens; the cap stops a reply that loops instead of closing its JSON.
PLAN_MAX_TOKENS = 1024
# A line-notation reply begins like the worked examples' plans; a blank line or a
# new "Request:" means the model has moved past its plan. 8 steps are about 160 tokens.
LINES_PREFIX = ""
LINES_STOPS = ("\n\n", "\nRequest:")
LINES_MAX_TOKENS = 400


@functools.cache
def _example_pool() -> list[dict[str, Any]]:
    return json.loads((Path(__file__).parents[1] / "prompts" / "examples.json").read_text())


def plan_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """A JSON schema of a plan over ``tools``: tool names are an enum, args follow each tool."""
    variants = [
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "tool": {"const": t.name},
                "args": _args_schema(t),
            },
            "required": ["id", "tool", "args"],
        }
        for t in tools
    ]
    item: dict[str, Any] = {"anyOf": variants} if variants else {"type": "object"}
    return {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"type": "string"}},
            "tasks": {"type": "array", "items": item},
        },
        "required": ["steps", "tasks"],
    }


def _args_schema(spec: ToolSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for p in spec.params:
        if is_media_kind(p.kind) and p.kind.startswith("list["):
            properties[p.name] = {"type": "array", "items": {"type": "string"}}
        elif is_media_kind(p.kind) or p.kind in ("text", "url") or p.annotation is None:
            properties[p.name] = {"type": "string"}
        elif p.kind in ("integer", "number", "boolean"):
            properties[p.name] = {"type": p.kind}
        else:
            # Enums and structured values: the validator checks them precisely.
            schema = {k: v for k, v in p.json_schema.items() if k in ("type", "enum", "items")}
            properties[p.name] = schema or {}
    return {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in spec.params if p.required],
    }
