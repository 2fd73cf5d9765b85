"""Fix the reference mistakes small planner models make, without another LLM round trip.

Each repair here reads a plan the way its author evidently meant it. A repair
that needed the LLM would cost a whole reply (10-30 s on a laptop CPU), and
small models tend to repeat the same mistake when asked again.
"""

from __future__ import annotations

import re
from typing import Any

from ..tools import Registry
from .plan import whole_reference

__all__ = ["point_dangling_references_at", "read_self_references_as_user_text", "user_text"]

# Quoted spans: "...", '...', “...”, ‘...’. An apostrophe inside a word is not a quote.
_QUOTED = re.compile(r"\"([^\"]*)\"|“([^”]*)”|‘([^’]*)’|(?<!\w)'([^']*)'(?!\w)")


def user_text(request: str) -> str:
    """The text a request gives to work on: its longest quoted span, else what follows a colon, else all of it."""
    quoted = [span for m in _QUOTED.finditer(request) if len(span := next(g for g in m.groups() if g is not None)) >= 3]
    if quoted:
        return max(quoted, key=len).strip()
    head, colon, tail = request.partition(":")
    if colon and len(tail.split()) >= 3 and "//" not in head[-6:] + tail[:2]:
        return tail.strip()
    return request.strip()


def read_self_references_as_user_text(
    raw: list[dict[str, Any]], request: str, registry: Registry
) -> list[dict[str, Any]]:
    """A text argument that names its own task's output, or a later task the plan lacks, means the user's text.

    "Summarize this: ..." planned as ``summarize(text="<resource-1>")`` in task 1
    is the commonest mistake of 1.5B planners; the request's text is what was meant.
    Media arguments are left for the validator: a file cannot be guessed.
    """
    ids = [task["id"] if task.get("id") is not None else position for position, task in enumerate(raw, start=1)]
    for own_id, task in zip(ids, raw, strict=True):
        if task.get("tool") not in registry or not isinstance(task.get("args"), dict):
            continue
        spec = registry.get(task["tool"])
        for name, value in task["args"].items():
            param, ref = spec.param(name), whole_reference(value)
            if param is not None and param.kind == "text" and _means_user_text(ref, own_id, ids):
                task["args"][name] = user_text(request)
    return raw


def _means_user_text(ref: int | None, own_id: int, ids: list[int]) -> bool:
    """Its own output, or a later task that does not exist (a reference to 0 may be a 0-based one: kept)."""
    return ref is not None and (ref == own_id or (ref > own_id and ref not in ids))


def point_dangling_references_at(
    raw: list[dict[str, Any]], latest: dict[str, str], registry: Registry
) -> list[dict[str, Any]]:
    """Small models write "<resource-N>" for an earlier turn's file; read it as the latest file of that kind."""
    if not latest:
        return raw
    ids = {t["id"] if t["id"] is not None else i + 1 for i, t in enumerate(raw)}
    for task in raw:
        if task["tool"] not in registry or not isinstance(task["args"], dict):
            continue
        spec = registry.get(task["tool"])
        for name, value in task["args"].items():
            ref, param = whole_reference(value), spec.param(name)
            if ref is not None and ref not in ids and param is not None and param.kind in latest:
                task["args"][name] = latest[param.kind]
    return raw
