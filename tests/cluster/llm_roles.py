"""Scripting the LLM for batch tests: plans keyed by the item tag in the request, a fixed composer reply."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

HANDLE = re.compile(r"art-[0-9a-f]{16}")
TAG = re.compile(r"\[(item-[0-9a-z]+)\]")


def role(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    system = first["content"] if first["role"] == "system" else ""
    if "You are the planner" in system:
        return "planner"
    if "answer writer" in system:
        return "composer"
    return "tool"


def user_text(request: dict[str, Any]) -> str:
    return " ".join(m["content"] for m in request["messages"] if m["role"] == "user")


def item_tag(request: dict[str, Any]) -> str | None:
    """The ``[item-N]`` tag of the request being planned (the last one: earlier turns come first)."""
    tags = TAG.findall(user_text(request))
    return tags[-1] if tags else None


def planner_tags(requests: list[dict[str, Any]]) -> list[str | None]:
    """The item tag of every planner request the server saw, in order."""
    return [item_tag(r) for r in requests if role(r) == "planner"]


def responder(plan_for: Callable[[dict[str, Any]], dict[str, Any]], answer: str = "Done: <resource-1>"):
    """Answer planner requests with ``plan_for(request)``, the composer with ``answer``."""

    def respond(request: dict[str, Any]) -> str:
        if role(request) == "planner":
            return json.dumps(plan_for(request))
        if role(request) == "composer":
            return answer
        return "a short summary"

    return respond


def grayscale_plan(request: dict[str, Any]) -> dict[str, Any]:
    """Grayscale the request's last attached image, or answer directly when there is none."""
    handles = HANDLE.findall(user_text(request))
    if not handles:
        return {"tasks": []}
    return {"tasks": [{"id": 1, "tool": "image_grayscale", "args": {"image": handles[-1]}}]}


def sleepy_plan(seconds: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def plan(request: dict[str, Any]) -> dict[str, Any]:
        return {"tasks": [{"id": 1, "tool": "sleepy", "args": {"text": item_tag(request), "seconds": seconds}}]}

    return plan
