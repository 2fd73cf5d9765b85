"""Check a raw plan against the tool registry before anything runs; name every problem."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..artifacts import HANDLE_PREFIX
from ..errors import PlanValidationError
from ..sniff import claimed_mime, kind_of_mime
from ..tools import Registry, ToolSpec, kinds_compatible
from ..tools._spec import is_media_kind, type_adapter
from .plan import REFERENCE, Plan, Task, map_strings, references_in, whole_reference

MAX_TASKS = 64
_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)

# Given a literal a media parameter received, an error message, or None if usable.
LiteralCheck = Callable[[str, str], str | None]


def validate_plan(
    raw_tasks: list[dict[str, Any]],
    registry: Registry,
    check_media_literal: LiteralCheck | None = None,
    allowed_tools: set[str] | None = None,
    allowed_links: set[tuple[str, str]] | None = None,
) -> Plan:
    """Turn parsed tasks into a :class:`Plan`, or raise with every problem found.

    Args:
        raw_tasks: output of :func:`~patchbay.orchestrator.parse.parse_plan_text`.
        registry: the tools the plan may call.
        check_media_literal: ``(kind, value) -> error or None`` for a literal given
            to a media parameter (an artifact handle, an attachment name); when
            None such literals are accepted as they are (dry runs).
        allowed_tools: restrict the plan to these names (the catalog the planner
            was shown); None allows every registered tool.
        allowed_links: (source tool, target tool) pairs a reference may connect
            (TaskBench's ``graph_desc.json``); None allows every type-correct link.

    Raises:
        PlanValidationError: unknown tool or argument, missing argument, reference
            to a missing or later task, type mismatch, cycle. Each problem names
            its task.
    """
    if len(raw_tasks) > MAX_TASKS:
        raise PlanValidationError([f"the plan has {len(raw_tasks)} tasks; at most {MAX_TASKS} are allowed"])
    problems: list[str] = []
    tasks: list[Task] = []
    ids: set[int] = set()
    for position, raw in enumerate(raw_tasks):
        task_id = raw.get("id")
        if task_id is None:
            task_id = position + 1
            while task_id in ids:
                task_id += 1
        if task_id in ids:
            problems.append(f"task {task_id}: the id is used twice; give every task its own id")
            continue
        ids.add(task_id)
        tasks.append(Task(task_id, raw["tool"], raw["args"]))

    _shift_zero_based_references(tasks, ids)
    specs: dict[int, ToolSpec] = {}
    for task in tasks:
        spec = _lookup(task, registry, allowed_tools, problems)
        if spec is None:
            continue
        specs[task.id] = spec
        task.args = _named_args(task, spec, problems)

    for task in tasks:
        spec = specs.get(task.id)
        if spec is None:
            continue
        for name, value in list(task.args.items()):
            param = spec.param(name)
            if param is None:
                continue
            for ref in set(references_in(value)):
                if ref == task.id:
                    problems.append(
                        f"task {task.id} ({task.tool}): argument {name!r} refers to its own output; "
                        "<resource-N> means an earlier task's output: for the user's own text or file, "
                        "copy it from the request"
                    )
                elif ref not in ids:
                    problems.append(
                        f"task {task.id} ({task.tool}): argument {name!r} refers to <resource-{ref}>, "
                        "but there is no such task"
                    )
            ref = whole_reference(value)
            if ref is not None and ref in specs and ref != task.id:
                produced = specs[ref].output_kind
                if not kinds_compatible(produced, param.kind):
                    problems.append(
                        f"task {task.id} ({task.tool}): argument {name!r} expects {param.kind} but "
                        f"<resource-{ref}> ({specs[ref].name}) produces {produced}"
                    )
                elif allowed_links is not None and (specs[ref].name, spec.name) not in allowed_links:
                    problems.append(
                        f"task {task.id} ({task.tool}): the output of {specs[ref].name} cannot feed "
                        f"{spec.name}; that link is not allowed"
                    )
            elif ref is None:
                task.args[name] = _check_literal(task, spec, name, value, specs, check_media_literal, problems)

    if not problems:
        cycle = _find_cycle(tasks)
        if cycle:
            problems.append(
                "tasks " + " -> ".join(str(t) for t in cycle) + " form a cycle; a task can only use "
                "outputs of tasks that do not depend on it"
            )
    if problems:
        raise PlanValidationError(problems)
    return Plan(_in_dependency_order(tasks))


def _shift_zero_based_references(tasks: list[Task], ids: set[int]) -> None:
    """Tasks numbered from 1 but referenced from 0 (HuggingGPT's habit): shift every reference up."""
    references = {r for t in tasks for r in references_in(t.args)}
    if 0 in ids or 0 not in references or not ids or min(ids) != 1:
        return

    def shift(text: str) -> str:
        return REFERENCE.sub(lambda m: f"<resource-{int(m.group(1) or m.group(2)) + 1}>", text)

    for task in tasks:
        task.args = map_strings(task.args, shift)


def _lookup(task: Task, registry: Registry, allowed: set[str] | None, problems: list[str]) -> ToolSpec | None:
    known = sorted(allowed) if allowed is not None else registry.names()
    if task.tool in registry and (allowed is None or task.tool in allowed):
        return registry.get(task.tool)
    close = difflib.get_close_matches(task.tool, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; use only tools from the list"
    problems.append(f"task {task.id}: unknown tool {task.tool!r}{hint}")
    return None


def _named_args(task: Task, spec: ToolSpec, problems: list[str]) -> dict[str, Any]:
    raw = task.args
    where = f"task {task.id} ({spec.name})"
    if isinstance(raw, list):
        if len(raw) > len(spec.params):
            problems.append(f"{where}: {len(raw)} arguments given, the tool takes {len(spec.params)}")
        args = {p.name: v for p, v in zip(spec.params, raw, strict=False)}
    else:
        args = {str(k): v for k, v in raw.items()}
        for name in args:
            if spec.param(name) is None:
                expected = ", ".join(p.name for p in spec.params) or "none"
                problems.append(f"{where}: unknown argument {name!r} (arguments: {expected})")
    # An explicit null for an optional argument means "use the default".
    args = {k: v for k, v in args.items() if not (v is None and (p := spec.param(k)) and not p.required)}
    for p in spec.params:
        if p.required and p.name not in args:
            problems.append(f"{where}: missing required argument {p.name!r} ({p.kind}: {p.description})")
    return args


def _check_literal(
    task: Task,
    spec: ToolSpec,
    name: str,
    value: Any,
    specs: dict[int, ToolSpec],
    check_media_literal: LiteralCheck | None,
    problems: list[str],
) -> Any:
    param = spec.param(name)
    if param is None:  # already reported as an unknown argument
        return value
    where = f"task {task.id} ({spec.name}): argument {name!r}"
    embedded = set(references_in(value))
    for ref in embedded:
        producer = specs.get(ref)
        if producer is not None and is_media_kind(producer.output_kind):
            problems.append(
                f"{where} splices <resource-{ref}> into text, but {producer.name} produces "
                f"{producer.output_kind}; pass the reference alone as the whole argument"
            )
    if is_media_kind(param.kind):
        if param.kind.startswith("list["):
            if not isinstance(value, list):
                problems.append(f"{where} expects a list of {param.kind[5:-1]} references or handles")
                return value
            items = value
        else:
            items = [value]
        for item in items:
            if whole_reference(item) is not None:
                continue
            if not isinstance(item, str):
                problems.append(f"{where} expects {param.kind} (an artifact handle or <resource-N>), got {item!r:.60}")
            else:
                error = (check_media_literal or _file_name_check)(param.kind, item)
                if error:
                    problems.append(f"{where}: {error}")
        return value
    if param.kind == "url" and not embedded and isinstance(value, str) and not _URL.match(value.strip()):
        problems.append(
            f"{where} expects a URL (http://... or https://...), got {value!r:.60}; a file the user "
            "already has needs no downloading: pass it straight to the tool that uses it"
        )
        return value
    if embedded or param.annotation is None:
        return value
    try:
        return type_adapter(param.annotation).validate_python(value)
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        problems.append(f"{where} = {value!r:.60} is not a valid {param.kind}: {reason}")
        return value


def _file_name_check(kind: str, value: str) -> str | None:
    """Without a store to ask (dry runs): a file name's extension must fit the argument's kind."""
    if value.startswith(HANDLE_PREFIX):
        return None
    if _URL.match(value.strip()):
        return f"{value!r:.60} is a URL, not a {kind}; download it with a tool whose input is a url first"
    mime = claimed_mime(value.strip())
    if mime is None or kind == "file":
        return None
    actual = kind_of_mime(mime)
    if actual != kind:
        return f"{value!r:.60} is {actual}, but the argument expects {kind}"
    return None


def _find_cycle(tasks: list[Task]) -> list[int]:
    """A list of task ids forming a cycle, or [] if the graph is acyclic."""
    deps = {t.id: t.dependencies for t in tasks}
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    stack: list[int] = []

    def visit(node: int) -> list[int]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(deps.get(node, ())):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for t in tasks:
        if t.id not in state:
            found = visit(t.id)
            if found:
                return found
    return []


def _in_dependency_order(tasks: list[Task]) -> list[Task]:
    """Stable topological order: plan order, except a task never precedes what it uses."""
    done: set[int] = set()
    ordered: list[Task] = []
    remaining = list(tasks)
    while remaining:
        for t in remaining:
            if t.dependencies <= done:
                ordered.append(t)
                done.add(t.id)
                remaining.remove(t)
                break
    return ordered
