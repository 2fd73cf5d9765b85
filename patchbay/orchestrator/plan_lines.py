"""The compact plan notation: one line a step, ``2. summarize it -> Text Summarizer(text=#1)``.

A JSON plan spends most of its tokens on punctuation: ``{"id": 2, "tool": ...,
"args": {...}}`` is about 30 tokens where this line is about 15. A small local
model decodes ~10 tokens a second on two cores, so the notation alone took a
third off the median time to plan on TaskBench (docs/benchmarks.md). It is what the planner asks for when it
begins the reply itself (``prefill`` output); endpoints with schema-constrained
JSON keep JSON.

The result is the same raw task list the JSON parser makes, with ``#N`` read as
``<resource-N>``, so everything downstream sees one form.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import PlanParseError
from .parse import MAX_PLAN_CHARS, strip_reasoning
from .plan import REFERENCE

# How a step's action is separated from its tool call.
ARROW = "->"
# What a reply says when the request needs no tool.
NO_PLAN = "none"
_NUMBERED = re.compile(r"^\s*(?:step\s*)?(\d{1,4})\s*[.):]\s*(.*)$", re.IGNORECASE)
# A double- or single-quoted string, escapes included: the rewrites below leave it as it is.
_QUOTED_TEXT = r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'"""
# A quoted string (kept as it is) or a bare #N (a reference).
_QUOTED_OR_REFERENCE = re.compile(_QUOTED_TEXT + r"|#(\d{1,4})\b")
# A quoted string (kept as it is) or an argument's "name:" at its start.
_QUOTED_OR_COLON_ARGUMENT = re.compile(_QUOTED_TEXT + r"|((?:^|,)\s*)([A-Za-z_]\w*)\s*:(?!//)")
# A quoted string (kept as it is) or "name=" straight after another "name=".
_QUOTED_OR_CHAINED_NAME = re.compile(_QUOTED_TEXT + r"|([A-Za-z_]\w*\s*=)\s*[A-Za-z_]\w*\s*=(?!=)")
# A quoted string (kept as it is) or a tool name with spaces or hyphens opening a call.
_QUOTED_OR_SPACED_CALL = re.compile(_QUOTED_TEXT + r"|\b([A-Za-z]\w*(?:(?:\s+|\s*-\s*)[A-Za-z0-9]\w*)+)\s*\(")
_ASSIGNMENT = re.compile(r"\s*([^=\"']+?)\s*=\s*(\S.*?)\s*")
_NO_TOOL = re.compile(r"->\s*(?:none|no tool|n/a|-)\s*\.?\s*$", re.IGNORECASE)
_QUOTED_REFERENCE = re.compile(r"\s*#(\d{1,4})\s*")
# "tool(args) -> image" (the catalog's way of showing an output kind, copied into a plan
# line) or "-> art-0123456789abcdef" (the result's handle, guessed): not part of the call.
_KIND_TAIL = r"\s*->\s*[\w\[\] -]{1,40}$"
_TRAILING_KIND = re.compile(r"\)" + _KIND_TAIL)
# "tool(args -> image": the same with the call's closing bracket forgotten.
_UNCLOSED_KIND = re.compile(_KIND_TAIL)
# "tool(args)  # a note" or "// a note": a comment after the call.
_TRAILING_COMMENT = re.compile(r"\)\s+(?:#|//).*$")
_WRITTEN_REFERENCE = re.compile(r"<resource-(\d+)>")
_JSON_WORDS = {"true": True, "false": False, "null": None, "none": None, "True": True, "False": False, "None": None}


def parse_plan_lines(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The raw tasks and the steps' actions of a reply in line notation.

    Returns:
        ``(tasks, steps)``: tasks as ``{"id", "tool", "args"}`` dicts (args a dict
        for named arguments, a list for positional ones), and each line's action
        text ("" where the line has none). Both empty when the reply says ``none``.

    Raises:
        PlanParseError: the reply has no plan line, or a line whose call cannot be read.
    """
    if not isinstance(text, str):
        raise PlanParseError(f"expected text from the model, got {type(text).__name__}")
    if len(text) > MAX_PLAN_CHARS:
        raise PlanParseError(f"the reply is {len(text)} characters long; a plan must be shorter")
    body = strip_reasoning(text)
    tasks: list[dict[str, Any]] = []
    steps: list[str] = []
    for line in body.splitlines():
        parsed = _parse_line(line)
        if parsed is not None:
            task, step = parsed
            tasks.append(task)
            steps.append(step)
    if tasks:
        return _hoist_nested_calls(tasks, steps)
    if _says_no_plan(body):
        return [], []
    shown = body.strip()[:120] or "nothing"
    raise PlanParseError(
        f"no plan line found (the reply was {shown!r}); write one line a step: 1. action {ARROW} tool(argument=value)"
    )


def format_plan_lines(tasks: list[dict[str, Any]], steps: list[str] | None = None) -> str:
    """Write raw tasks (and their steps' actions) in line notation: how worked examples are shown."""
    if not tasks:
        return NO_PLAN
    lines = []
    for position, task in enumerate(tasks):
        step = steps[position] if steps and position < len(steps) else ""
        args = task.get("args") or {}
        if isinstance(args, dict):
            rendered = ", ".join(f"{name}={_format_value(value)}" for name, value in args.items())
        else:
            rendered = ", ".join(_format_value(value) for value in args)
        action = f"{step} {ARROW} " if step else ""
        lines.append(f"{task.get('id', position + 1)}. {action}{task['tool']}({rendered})")
    return "\n".join(lines)


def line_name(tool: str) -> str:
    """How a tool's name is written in a plan line: brackets dropped, since the call's own follow it.

    Shown "Image Search (by Image)(image=#1)", a small model writes
    "Image Search(image=#1, by Image)" or "Image Search (by Image=#1)".
    """
    return re.sub(r"\s+", " ", re.sub(r"[()\[\]]", " ", tool)).strip()


def in_line_notation(message: str) -> str:
    """A validator message with ``<resource-N>`` written as ``#N``, the way a line-notation plan writes it."""
    return re.sub(r"<resource-(\d+|N)>", r"#\1", message)


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole and whole.group(1):
            return f"#{whole.group(1)}"
    return json.dumps(value, ensure_ascii=False)


def _says_no_plan(body: str) -> bool:
    words = re.sub(r"[^a-z ]", " ", body.lower()).split()
    return not words or (words[-1] in ("none", "nothing") and len(words) <= 4)


def _parse_line(line: str) -> tuple[dict[str, Any], str] | None:
    """One numbered line as ``(task, action)``; None for a line that is not a step (prose, a header)."""
    numbered = _NUMBERED.match(line)
    rest = numbered.group(2) if numbered else line.strip().lstrip("-*• ").strip()
    call = _call_at_end(rest) or _assigned_call(rest)
    if call is None:
        if _NO_TOOL.search(rest):
            return None  # "save it as x.jpg -> none": the model says this action needs no tool
        if numbered and rest.strip():
            raise PlanParseError(
                f"step {numbered.group(1)} has no tool call: {rest.strip()[:100]!r}; "
                f"write it as {numbered.group(1)}. action {ARROW} tool(argument=value)"
            )
        return None
    head, arguments = call
    action, _, tool = head.rpartition(ARROW)
    tool = tool.strip().strip("`*\"'").strip()
    if not tool or (not numbered and not action and not _looks_like_name(tool)):
        return None
    task_id = int(numbered.group(1)) if numbered else None
    args = _parse_arguments(arguments, f"step {task_id}" if task_id is not None else f"the call {tool}(...)")
    return {"id": task_id, "tool": tool, "args": args}, action.strip().rstrip(":").strip()


def _looks_like_name(text: str) -> bool:
    """An unnumbered line counts only when it is a bare call: a short tool name, not a sentence with brackets."""
    return len(text.split()) <= 5 and not text.endswith((".", ","))


def _assigned_call(text: str) -> tuple[str, str] | None:
    """``action -> Tool Name="#1"``: a one-argument call written as an assignment, read as ``Tool Name("#1")``."""
    action, arrow, tail = text.rpartition(ARROW)
    assigned = _ASSIGNMENT.fullmatch(tail) if arrow else None
    return (f"{action}{ARROW} {assigned.group(1)}", assigned.group(2)) if assigned else None


def _call_at_end(text: str) -> tuple[str, str] | None:
    """Split ``head(args)`` at the balanced parentheses that close the line (names may hold brackets)."""
    stripped = _TRAILING_KIND.sub(")", _TRAILING_COMMENT.sub(")", text.rstrip()).rstrip(";,."))
    if not stripped.endswith(")") and stripped.count("(") > stripped.count(")"):
        stripped = _UNCLOSED_KIND.sub(")", stripped)
    if not stripped.endswith(")"):
        return None
    depth, quote = 0, ""
    for i in range(len(stripped) - 1, -1, -1):
        ch = stripped[i]
        if quote:
            # Scanning backwards, a quote closes when the character before it is not a backslash.
            if ch == quote and not (i > 0 and stripped[i - 1] == "\\"):
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                head = stripped[:i].rstrip()
                return (head, stripped[i + 1 : -1]) if head else None
    return None


def _parse_arguments(text: str, where: str) -> dict[str, Any] | list[Any]:
    """``name=value, ...`` (or positional values) as Python would read them, with ``#N`` as a reference.

    Where Python cannot read them, the slips small models make are undone one by
    one, each on top of the last, until a reading works: the catalog's
    ``name: type`` copied as ``text: "hello"``; an argument named twice,
    ``audio=audio="#3"``; a nested call to a tool whose name is not an
    identifier, ``video=Image Stitcher(...)`` or ``text=Audio-to-Text(...)``.
    The first reading's error is the one reported.
    """
    nested_names: dict[str, str] = {}
    first_error: PlanParseError | None = None
    for source in _readings(_references_as_strings(text), nested_names):
        try:
            call = ast.parse(f"f({source})", mode="eval").body
            assert isinstance(call, ast.Call)
            args = _call_arguments(call, where)
        except SyntaxError as exc:
            first_error = first_error or PlanParseError(
                f"{where}: cannot read the arguments ({text.strip()[:100]!r}): {exc.msg}"
            )
        except PlanParseError as exc:
            first_error = first_error or exc
        else:
            return _restore_nested_names(args, nested_names) if nested_names else args
    assert first_error is not None
    raise first_error


def _call_arguments(call: ast.Call, where: str) -> dict[str, Any] | list[Any]:
    positional = [_value(node, where) for node in call.args]
    named = {kw.arg: _value(kw.value, where) for kw in call.keywords if kw.arg is not None}
    if positional and named:
        raise PlanParseError(f"{where} mixes positional and named arguments; name every argument")
    return positional if positional else named


@dataclass(frozen=True)
class _NestedCall:
    """A tool call written as another call's argument, until it becomes a task of its own."""

    tool: str
    args: dict[str, Any] | list[Any]


def _hoist_nested_calls(tasks: list[dict[str, Any]], steps: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Make each nested call a task just before the task that takes its result; renumber references to match."""
    flat: list[tuple[dict[str, Any], str, int | None]] = []  # task, action, its number as written

    def hoist(value: Any) -> Any:
        if not isinstance(value, _NestedCall):
            return value
        flat.append(({"tool": value.tool, "args": _map_leaves(value.args, hoist)}, "", None))
        return _Placeholder(len(flat))

    for position, (task, step) in enumerate(zip(tasks, steps, strict=True), start=1):
        args = _map_leaves(task["args"], hoist)
        flat.append(({"tool": task["tool"], "args": args}, step, task["id"] if task["id"] is not None else position))
    if len(flat) == len(tasks):
        return tasks, steps
    new_id = {written: index for index, (_, _, written) in enumerate(flat, start=1) if written is not None}

    def renumber(value: Any) -> Any:
        if isinstance(value, _Placeholder):
            return f"<resource-{value.id}>"
        if isinstance(value, str):
            return _WRITTEN_REFERENCE.sub(
                lambda m: f"<resource-{new_id[int(m.group(1))]}>" if int(m.group(1)) in new_id else m.group(0), value
            )
        return value

    hoisted = [
        {"id": index, "tool": task["tool"], "args": _map_leaves(task["args"], renumber)}
        for index, (task, _, _) in enumerate(flat, start=1)
    ]
    return hoisted, [step for _, step, _ in flat]


@dataclass(frozen=True)
class _Placeholder:
    """The result of a hoisted call, by its new task id, until references are renumbered."""

    id: int


def _map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with ``leaf`` applied to everything that is not a list or a dict, depth first."""
    if isinstance(value, list):
        return [_map_leaves(item, leaf) for item in value]
    if isinstance(value, dict):
        return {name: _map_leaves(item, leaf) for name, item in value.items()}
    return leaf(value)


def _readings(source: str, nested_names: dict[str, str]) -> Iterator[str]:
    """The arguments as written, then with each slip undone on top of the last (each distinct text once)."""
    yield source
    rewrites: tuple[Callable[[str], str], ...] = (
        _colons_as_assignments,
        _one_name_per_argument,
        lambda text: _name_nested_calls(text, nested_names),
    )
    for rewrite in rewrites:
        rewritten = rewrite(source)
        if rewritten != source:
            yield rewritten
        source = rewritten


def _one_name_per_argument(source: str) -> str:
    """``audio=video="#3"`` (a name written, then another) as ``audio="#3"``: the first name stays."""
    return _QUOTED_OR_CHAINED_NAME.sub(lambda m: m.group(1) if m.group(1) else m.group(0), source)


def _name_nested_calls(source: str, names: dict[str, str]) -> str:
    """Give nested calls to tools named with spaces or hyphens an identifier, recorded in ``names``."""

    def name(match: re.Match[str]) -> str:
        if not match.group(1):
            return match.group(0)
        placeholder = f"_nested_tool_{len(names)}"
        names[placeholder] = re.sub(r"\s*-\s*", "-", match.group(1))
        return placeholder + "("

    return _QUOTED_OR_SPACED_CALL.sub(name, source)


def _restore_nested_names(args: dict[str, Any] | list[Any], names: dict[str, str]) -> dict[str, Any] | list[Any]:
    def restore(value: Any) -> Any:
        if isinstance(value, _NestedCall):
            return _NestedCall(names.get(value.tool, value.tool), _map_leaves(value.args, restore))
        return value

    return _map_leaves(args, restore)  # type: ignore[no-any-return]


def _colons_as_assignments(source: str) -> str:
    """Rewrite ``name: value`` as ``name=value`` for each argument; quoted text is left alone."""
    return _QUOTED_OR_COLON_ARGUMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}=" if m.group(2) else m.group(0), source)


def _references_as_strings(text: str) -> str:
    """Rewrite ``#N`` outside quotes as ``"<resource-N>"``; quoted text is left alone."""
    return _QUOTED_OR_REFERENCE.sub(lambda m: f'"<resource-{m.group(1)}>"' if m.group(1) else m.group(0), text)


def _value(node: ast.expr, where: str) -> Any:
    """A literal; a bare word (``text=reverb``, ``true``, ``photo.jpg``) is read as the word, as small models mean it.

    A quoted ``"#2"`` is a reference too: small models quote it as often as not.
    A call (``video=Video Voiceover(#2)`` written as ``VideoVoiceover('#2')``) is a
    step of its own, made before the one that takes its result.
    """
    if isinstance(node, ast.Call) and (name := _dotted_name(node.func)):
        return _NestedCall(name, _call_arguments(node, where))
    if isinstance(node, ast.Name):
        return _JSON_WORDS.get(node.id, node.id)
    if isinstance(node, ast.Attribute) and (dotted := _dotted_name(node)):
        return dotted  # an unquoted file name: photo.jpg
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, where) for item in node.elts]
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise PlanParseError(f'{where}: {ast.unparse(node)[:80]!r} is not a value; quote text, e.g. "..."') from None
    if isinstance(value, str) and (quoted := _QUOTED_REFERENCE.fullmatch(value)):
        return f"<resource-{quoted.group(1)}>"
    return value


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted_name(node.value)):
        return f"{base}.{node.attr}"
    return None
