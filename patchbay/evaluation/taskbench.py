"""TaskBench records and the conversion between its plans and patchbay's.

TaskBench writes a plan as ``task_nodes``: ``{"task": TOOL, "arguments": [...]}``
where ``<node-j>`` is the output of the j-th node (0-based). patchbay writes
``<resource-N>`` for the task with id N.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..orchestrator.plan import REFERENCE, Plan, map_strings

_NODE = re.compile(r"<node-(\d+)>")


def load_records(path: Path | str) -> list[dict[str, Any]]:
    """The records of a TaskBench JSONL file (one JSON object a line, each with an ``id``).

    Raises:
        ConfigError: the file is missing, or a line is not a JSON object with an id and a request.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read TaskBench data {path}: {exc.strerror}") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number} is not JSON: {exc.msg}") from exc
        if not isinstance(record, dict) or "id" not in record or "user_request" not in record:
            raise ConfigError(f"{path}:{number}: a record needs 'id' and 'user_request'")
        records.append(record)
    return records


def plan_to_nodes(plan: Plan) -> list[dict[str, Any]]:
    """TaskBench ``task_nodes`` of a plan, in plan order, references as ``<node-j>``."""
    index = {task.id: j for j, task in enumerate(plan.tasks)}

    def convert(text: str) -> str:
        return REFERENCE.sub(lambda m: f"<node-{index[int(m.group(1) or m.group(2))]}>", text)

    return [{"task": t.tool, "arguments": map_strings(list(t.args.values()), convert)} for t in plan.tasks]


def nodes_to_raw_tasks(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Raw patchbay tasks (for :func:`~patchbay.orchestrator.validate_plan`) from TaskBench nodes."""

    def convert(text: str) -> str:
        return _NODE.sub(lambda m: f"<resource-{int(m.group(1)) + 1}>", text)

    tasks = []
    for j, node in enumerate(nodes):
        arguments = node.get("arguments", [])
        if isinstance(arguments, dict):
            arguments = list(arguments.values())
        tasks.append({"id": j + 1, "tool": node["task"], "args": map_strings(list(arguments), convert)})
    return tasks


def links_of(plan: Plan) -> list[dict[str, str]]:
    """TaskBench ``task_links`` of a plan: one per reference from a task to an earlier one."""
    tools = {t.id: t.tool for t in plan.tasks}
    seen: list[dict[str, str]] = []
    for task in plan.tasks:
        for dep in sorted(task.dependencies):
            link = {"source": tools[dep], "target": task.tool}
            if link not in seen:
                seen.append(link)
    return seen


__all__ = ["links_of", "load_records", "nodes_to_raw_tasks", "plan_to_nodes"]
