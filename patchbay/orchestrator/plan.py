"""The plan: tasks that call tools, linked by references to earlier tasks' outputs.

The JSON form the planner emits (and ``patchbay plan`` prints)::

    {"tasks": [
      {"id": 1, "tool": "image_grayscale", "args": {"image": "art-3f2a9c1b4d5e6f70"}},
      {"id": 2, "tool": "image_resize",   "args": {"image": "<resource-1>", "width": 256}}
    ]}

An argument is a literal or a reference ``<resource-N>`` to the output of task N
(HuggingGPT's ``<GENERATED>-N`` is read the same way). A reference may stand
alone (the value is passed as is: an artifact, a number, text) or sit inside a
longer string (the referenced text is spliced in). Dependencies are derived
from the references, never from a separate list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

REFERENCE = re.compile(r"<resource-(\d+)>|<GENERATED>-(\d+)")


def reference(task_id: int) -> str:
    """The canonical reference to task ``task_id``'s output."""
    return f"<resource-{task_id}>"


def whole_reference(value: Any) -> int | None:
    """The task id if ``value`` is exactly one reference, else None."""
    if not isinstance(value, str):
        return None
    match = REFERENCE.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """Apply ``change`` to every string inside an argument value (lists and dicts included)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: map_strings(v, change) for k, v in value.items()}
    return value


def references_in(value: Any) -> Iterator[int]:
    """Every task id referenced anywhere inside an argument value."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield int(match.group(1) or match.group(2))
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references_in(item)


@dataclass
class Task:
    """One tool call. ``args`` maps parameter names to literals or references."""

    id: int
    tool: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def dependencies(self) -> set[int]:
        return set(references_in(self.args))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "tool": self.tool, "args": self.args}


@dataclass
class Plan:
    """A validated graph of tasks; an empty plan means the LLM answers directly."""

    tasks: list[Task] = field(default_factory=list)

    def task(self, task_id: int) -> Task:
        return next(t for t in self.tasks if t.id == task_id)

    def dependents(self, task_id: int) -> list[Task]:
        """Tasks that use ``task_id``'s output directly."""
        return [t for t in self.tasks if task_id in t.dependencies]

    def descendants(self, task_id: int) -> list[Task]:
        """Every task that depends on ``task_id``, directly or not, in plan order."""
        found: set[int] = set()
        frontier = [task_id]
        while frontier:
            current = frontier.pop()
            for t in self.dependents(current):
                if t.id not in found:
                    found.add(t.id)
                    frontier.append(t.id)
        return [t for t in self.tasks if t.id in found]

    def leaves(self) -> list[Task]:
        """Tasks nobody depends on: the plan's final outputs."""
        used = {d for t in self.tasks for d in t.dependencies}
        return [t for t in self.tasks if t.id not in used]

    def to_json(self) -> dict[str, Any]:
        return {"tasks": [t.to_json() for t in self.tasks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_json` output (already validated; no checks here)."""
        return cls([Task(int(t["id"]), t["tool"], dict(t["args"])) for t in data.get("tasks", [])])
