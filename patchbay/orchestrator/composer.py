"""Write the final answer from the results, citing only artifacts that exist."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LLMError
from ..llm.client import ChatClient
from ..prompts import render
from ..tools._invoke import TaskOutput
from .executor import TaskResult
from .plan import REFERENCE

# Anything that looks like a handle, including invented ones of the wrong length.
_HANDLE_LIKE = re.compile(r"\bart-[0-9a-zA-Z]{4,}\b")
_SUMMARY_CHARS = 2000


@dataclass
class ComposedAnswer:
    """The reply text and the artifacts it presents, in order."""

    text: str
    artifacts: list[str] = field(default_factory=list)
    composer_error: str | None = None


class Composer:
    """Asks the LLM to write the answer, then checks every file it cites."""

    def __init__(self, client: ChatClient, name_of: Callable[[str], str | None] | None = None):
        """``name_of`` gives an artifact's file name: it tells the LLM what a file is (e.g. which voice spoke)."""
        self.client = client
        self.name_of = name_of

    def messages(
        self,
        request: str,
        results: list[TaskResult],
        attachments: list[dict[str, Any]],
        history: list[dict[str, Any]],
    ) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": render("compose_system")},
            {
                "role": "user",
                "content": render(
                    "compose_user",
                    request=request,
                    attachments=attachments,
                    history=history,
                    results=[_summarize(r, self.name_of) for r in results],
                ),
            },
        ]

    async def acompose(
        self,
        request: str,
        results: list[TaskResult],
        *,
        attachments: list[dict[str, Any]],
        history: list[dict[str, Any]],
        known_handles: set[str],
    ) -> ComposedAnswer:
        """The grounded answer; falls back to a plain listing of results if the LLM fails.

        Args:
            known_handles: artifacts the answer may cite (attachments, earlier turns).
        """
        produced = _produced_handles(results)
        citable = known_handles | set(produced)
        try:
            text = await self.client.acomplete(self.messages(request, results, attachments, history))
            error = None
        except LLMError as exc:
            if not results:
                raise
            text, error = _fallback_text(results), str(exc)
        text = ground(text, results, citable)
        cited = [h for h in dict.fromkeys(_HANDLE_LIKE.findall(text)) if h in citable]
        final = [h for h in _leaf_media(results) if h not in cited]
        return ComposedAnswer(text.strip(), cited + final, error)


def ground(text: str, results: list[TaskResult], citable: set[str]) -> str:
    """Resolve ``<resource-N>`` mentions and strike handles that name no real artifact."""
    by_id = {r.task_id: r for r in results}

    def resolve_reference(match: re.Match[str]) -> str:
        task_id = int(match.group(1) or match.group(2))
        result = by_id.get(task_id)
        if result is None or result.status != "succeeded" or result.output is None:
            return f"(task {task_id} produced nothing)"
        output = TaskOutput.from_dict(result.output)
        handles = output.handles()
        return ", ".join(handles) if handles else str(output.value)

    text = REFERENCE.sub(resolve_reference, text)
    return _HANDLE_LIKE.sub(lambda m: m.group(0) if m.group(0) in citable else "[no such file]", text)


def _summarize(result: TaskResult, name_of: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    summary = result.error or ""
    if result.status == "succeeded" and result.output is not None:
        output = TaskOutput.from_dict(result.output)
        handles = output.handles()
        if handles:
            named = [f"{h} ({name})" if name_of and (name := name_of(h)) else h for h in handles]
            summary = f"{output.kind} {', '.join(named)}"
        else:
            summary = str(output.value)
            if len(summary) > _SUMMARY_CHARS:
                summary = summary[:_SUMMARY_CHARS] + " [...]"
    return {"task_id": result.task_id, "tool": result.tool, "status": result.status, "summary": summary}


def _produced_handles(results: list[TaskResult]) -> list[str]:
    handles: list[str] = []
    for r in results:
        if r.status == "succeeded" and r.output is not None:
            handles.extend(TaskOutput.from_dict(r.output).handles())
    return handles


def _leaf_media(results: list[TaskResult]) -> list[str]:
    """Media made by tasks whose output no other task consumed: the plan's deliverables."""
    consumed = {h for r in results for h in _handles_in(r.args)}
    return [h for h in _produced_handles(results) if h not in consumed]


def _handles_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return _HANDLE_LIKE.findall(value)
    if isinstance(value, list):
        return [h for v in value for h in _handles_in(v)]
    if isinstance(value, dict):
        return [h for v in value.values() for h in _handles_in(v)]
    return []


def _fallback_text(results: list[TaskResult]) -> str:
    lines = ["The answer could not be written by the LLM; here are the results:"]
    for r in results:
        s = _summarize(r)
        lines.append(f"- task {s['task_id']} {s['tool']}: {s['status']} {s['summary']}".rstrip())
    return "\n".join(lines)
