"""Scripting the LLM by role: planner requests get plans, composer requests get answers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

HANDLE = re.compile(r"art-[0-9a-f]{16}")


def role(request: dict[str, Any]) -> str:
    system = request["messages"][0]["content"] if request["messages"][0]["role"] == "system" else ""
    if "You are the planner" in system:
        return "planner"
    if "answer writer" in system:
        return "composer"
    return "tool"


def last_user(request: dict[str, Any]) -> str:
    return [m["content"] for m in request["messages"] if m["role"] == "user"][-1]


def handles_in_prompt(request: dict[str, Any]) -> list[str]:
    """Handles the user messages mention (the system prompt's format example is not one)."""
    text = " ".join(m["content"] for m in request["messages"] if m["role"] == "user")
    return list(dict.fromkeys(HANDLE.findall(text)))


class RoleScript:
    """Answers each role from its own queue; a queued item may be a function of the request."""

    def __init__(self) -> None:
        self.queues: dict[str, list[str | Callable[[dict[str, Any]], str]]] = {
            "planner": [],
            "composer": [],
            "tool": [],
        }

    def plan(self, *replies: Any) -> RoleScript:
        self.queues["planner"].extend(r if isinstance(r, str) or callable(r) else json.dumps(r) for r in replies)
        return self

    def answer(self, *replies: Any) -> RoleScript:
        self.queues["composer"].extend(replies)
        return self

    def tool_reply(self, *replies: Any) -> RoleScript:
        self.queues["tool"].extend(replies)
        return self

    def __call__(self, request: dict[str, Any]) -> str:
        queue = self.queues[role(request)]
        if not queue:
            raise AssertionError(f"no scripted {role(request)} reply left for: {last_user(request)[:200]}")
        item = queue.pop(0)
        return item(request) if callable(item) else item
