"""Find the plan in what an LLM actually wrote: fences, prose, single objects, trailing commas.

The result is a list of raw task dicts (``id``, ``tool``, ``args``) for the
validator; nothing here knows about tools.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from ..errors import PlanParseError
from .plan import map_strings

MAX_PLAN_CHARS = 200_000
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_TOOL_KEYS = ("tool", "task", "name", "tool_name", "function")
_ARG_KEYS = ("args", "arguments", "parameters", "params", "inputs")
_LIST_KEYS = ("tasks", "plan", "steps", "task_nodes", "nodes", "calls")
# Small models mix the two notations: <resource-3f2a9c1b4d5e6f70>, <art-3f2a...> for art-3f2a...
_WRAPPED_HANDLE = re.compile(r"<\s*(?:resource-|art-)?([0-9a-f]{16})\s*>")


def parse_plan_text(text: str) -> list[dict[str, Any]]:
    """Extract the raw task list from an LLM reply.

    Returns:
        A list of ``{"id": int | None, "tool": str, "args": dict | list}``; an
        empty list when the model planned no tool call.

    Raises:
        PlanParseError: no JSON plan could be found, with what was wrong.
    """
    if not isinstance(text, str):
        raise PlanParseError(f"expected text from the model, got {type(text).__name__}")
    if len(text) > MAX_PLAN_CHARS:
        raise PlanParseError(f"the reply is {len(text)} characters long; a plan must be shorter")
    text = strip_reasoning(text)
    if not text:
        raise PlanParseError("the reply is empty; answer with a JSON plan")
    last_error = "no JSON object or list found in the reply"
    for candidate in _candidates(text):
        value = _load_lenient(candidate)
        if value is _NOTHING:
            continue
        try:
            return _as_task_list(value)
        except PlanParseError as exc:
            last_error = str(exc)
    raise PlanParseError(last_error)


_NOTHING = object()


def strip_reasoning(text: str) -> str:
    """The reply without ``<think>`` blocks (reasoning models write them before the plan)."""
    return _THINK.sub("", text).strip()


def parse_plan_steps(text: str) -> list[str]:
    """The ``steps`` a reply lists before its tasks (the actions the model read in the request); [] if none."""
    if not isinstance(text, str) or len(text) > MAX_PLAN_CHARS:
        return []
    for candidate in _candidates(strip_reasoning(text)):
        value = _load_lenient(candidate)
        if isinstance(value, dict) and isinstance(value.get("steps"), list):
            return [step if isinstance(step, str) else json.dumps(step) for step in value["steps"]]
    return []


def _candidates(text: str) -> list[str]:
    """Fenced blocks first, then the whole reply, then each balanced JSON value in it."""
    found = [m.group(1).strip() for m in _FENCE.finditer(text)]
    found.append(text)
    found.extend(_balanced_values(text))
    return found


def _balanced_values(text: str) -> list[str]:
    """Every top-level ``{...}`` or ``[...]`` span, honouring strings and escapes."""
    spans: list[str] = []
    depth, start, in_string, escape, quote = 0, -1, False, False, ""
    for i, ch in enumerate(text):
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                in_string = False
            continue
        if ch in "\"'" and depth > 0:
            in_string, quote = True, ch
        elif ch in "{[":
            if depth == 0:
                start = i
            depth += 1
        elif ch in "}]" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    if depth > 0 and start >= 0:
        spans.append(text[start:])  # truncated output: maybe closable below
    return spans


def _load_lenient(candidate: str) -> Any:
    """json.loads, then with trailing commas removed, then as a Python literal."""
    try:
        return json.loads(candidate)
    except (json.JSONDecodeError, RecursionError):
        pass
    repaired = _strip_trailing_commas(candidate)
    try:
        return json.loads(repaired)
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        # Some models answer in Python syntax: single quotes, True/None.
        return ast.literal_eval(repaired)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOTHING


def _strip_trailing_commas(text: str) -> str:
    out: list[str] = []
    in_string, escape = False, False
    for i, ch in enumerate(text):
        if in_string:
            out.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == ",":
            rest = text[i + 1 :].lstrip()
            if rest[:1] in ("}", "]"):
                continue
        out.append(ch)
    return "".join(out)


def _as_task_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            if key in value:
                return _as_task_list(value[key])
        if any(k in value for k in _TOOL_KEYS):
            return [_as_task(value, 0)]
        raise PlanParseError('the JSON has no "tasks" list and is not a task; expected {"tasks": [...]}')
    if isinstance(value, list):
        return [_as_task(item, i) for i, item in enumerate(value)]
    raise PlanParseError(f"expected a JSON object or list, got {type(value).__name__}")


def _as_task(item: Any, position: int) -> dict[str, Any]:
    where = f"task #{position + 1}"
    if not isinstance(item, dict):
        raise PlanParseError(f"{where} is {type(item).__name__}, not an object")
    tool = next((item[k] for k in _TOOL_KEYS if k in item), None)
    if isinstance(tool, dict):  # {"function": {"name": ..., "arguments": ...}}
        item = {**item, **tool}
        tool = tool.get("name")
    if not isinstance(tool, str) or not tool.strip():
        raise PlanParseError(f'{where} names no tool (expected a "tool" string)')
    raw_id = item.get("id", item.get("task_id"))
    task_id: int | None
    if raw_id is None:
        task_id = None
    elif isinstance(raw_id, bool):
        raise PlanParseError(f"{where} ({tool}) has id {raw_id!r}; ids are integers")
    elif isinstance(raw_id, int):
        task_id = raw_id
    elif isinstance(raw_id, str) and re.fullmatch(r"\s*(?:task[-_ ]?)?(\d{1,9})\s*", raw_id, re.I):
        task_id = int(re.sub(r"\D", "", raw_id))
    else:
        raise PlanParseError(f"{where} ({tool}) has id {raw_id!r}; ids are integers")
    args = next((item[k] for k in _ARG_KEYS if k in item), {})
    if isinstance(args, str):
        try:
            args = json.loads(args)  # OpenAI tool-call style: arguments as a JSON string
        except json.JSONDecodeError:
            args = [args]
    if args is None:
        args = {}
    if not isinstance(args, (dict, list)):
        args = [args]
    args = map_strings(args, lambda text: _WRAPPED_HANDLE.sub(lambda m: f"art-{m.group(1)}", text))
    return {"id": task_id, "tool": tool.strip(), "args": args}
