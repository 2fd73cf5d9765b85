"""Fix the reference mistakes small planner models make, without another LLM round trip.

Each repair here reads a plan the way its author evidently meant it. A repair
that needed the LLM would cost a whole reply (10-30 s on a laptop CPU), and
small models tend to repeat the same mistake when asked again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..sniff import claimed_mime, kind_of_mime
from ..tools import Registry, ToolSpec, kinds_compatible
from ..tools._spec import is_media_kind
from .plan import references_in, whole_reference

__all__ = [
    "bypass_dropped_tasks",
    "complete_web_addresses",
    "drop_needless_downloads",
    "is_local_file_name",
    "known_specs",
    "point_dangling_references_at",
    "read_self_references_as_user_text",
    "remove_tasks",
    "repoint_mistyped_references",
    "user_text",
    "value_kind",
]

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
    """Small models write "<resource-N>" for an earlier turn's file; read it as the latest file of that kind.

    Such a reference names a task the plan lacks, or a later one (the model
    numbered the earlier turn's result as step 2 of a two-step plan); neither
    could mean a task of this plan. A reference to the task itself is left to
    :func:`repoint_mistyped_references`, which prefers a file the request names.
    """
    if not latest:
        return raw
    ids = [t["id"] if t["id"] is not None else i + 1 for i, t in enumerate(raw)]
    for own_id, task in zip(ids, raw, strict=True):
        if task["tool"] not in registry or not isinstance(task["args"], dict):
            continue
        spec = registry.get(task["tool"])
        for name, value in task["args"].items():
            ref, param = whole_reference(value), spec.param(name)
            if ref is None or param is None or param.kind not in latest:
                continue
            if ref not in ids or (isinstance(own_id, int) and ref > own_id):
                task["args"][name] = latest[param.kind]
    return raw


# File names in a request: "photo.jpg", 'example.mp4', song.wav (a dot, then a short extension).
_FILE_NAME = re.compile(r"(?<![\w/.-])([\w-]+(?:\.[\w-]+)*\.[A-Za-z0-9]{2,5})(?![\w/])")


def repoint_mistyped_references(
    raw: list[dict[str, Any]],
    request: str,
    registry: Registry,
    allowed_links: set[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """A media argument whose ``<resource-N>`` cannot be right points where the plan's shape says instead.

    A reference cannot be right when it names its own task, a task the plan
    lacks, or a task that makes another kind of thing (an image for a video
    argument). Small models write these when they number the user's own inputs
    as resources, or shift every reference by one. The argument then means the
    nearest earlier task that makes its kind (and may link to this tool), else
    the one file of that kind the request names. With neither, the validator
    reports the reference as it is.
    """
    ids = [task["id"] if task.get("id") is not None else position for position, task in enumerate(raw, start=1)]
    if 0 not in ids and any(0 in references_in(task.get("args")) for task in raw):
        return raw  # numbered from 0: the validator shifts every reference at once
    outputs = {
        task_id: registry.get(task["tool"]).output_kind
        for task_id, task in zip(ids, raw, strict=True)
        if isinstance(task.get("tool"), str) and task["tool"] in registry
    }
    for position, (own_id, task) in enumerate(zip(ids, raw, strict=True)):
        if task.get("tool") not in registry or not isinstance(task.get("args"), dict):
            continue
        spec = registry.get(task["tool"])
        for name, value in task["args"].items():
            param, ref = spec.param(name), whole_reference(value)
            if param is None or ref is None or not is_media_kind(param.kind) or param.kind.startswith("list["):
                continue
            if ref != own_id and ref in outputs and kinds_compatible(outputs[ref], param.kind):
                continue
            used = {whole_reference(v) for v in task["args"].values()}
            earlier = [
                task_id
                for task_id, task_before in zip(ids[:position], raw[:position], strict=True)
                if task_id in outputs and task_id not in used and kinds_compatible(outputs[task_id], param.kind)
                and (allowed_links is None or (task_before["tool"], spec.name) in allowed_links)
            ]  # fmt: skip
            if earlier:
                task["args"][name] = f"<resource-{earlier[-1]}>"
            elif len(files := _files_of_kind(request, param.kind)) == 1:
                task["args"][name] = files[0]
    return raw


def _files_of_kind(request: str, kind: str) -> list[str]:
    names = dict.fromkeys(m.group(1) for m in _FILE_NAME.finditer(request))
    return [n for n in names if (mime := claimed_mime(n)) is not None and kind_of_mime(mime) == kind]


_WEB_ADDRESS = re.compile(r"^(https?://|www\.)", re.IGNORECASE)


# "example.com/article", "www.example.org": a host name (and a path) written without its scheme.
_BARE_ADDRESS = re.compile(
    r"^(?:www\.[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}(?:/\S*)?|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}/\S*)$",
    re.IGNORECASE,
)


def complete_web_addresses(raw: list[dict[str, Any]], registry: Registry) -> list[dict[str, Any]]:
    """A url argument written without its scheme ("example.com/article") is read as https, as a browser would."""
    for task in raw:
        if task.get("tool") not in registry or not isinstance(task.get("args"), dict):
            continue
        spec = registry.get(task["tool"])
        for name, value in task["args"].items():
            param = spec.param(name)
            if (
                param is not None
                and param.kind == "url"
                and isinstance(value, str)
                and _BARE_ADDRESS.match(value.strip())
            ):
                task["args"][name] = "https://" + value.strip()
    return raw


def drop_needless_downloads(raw: list[dict[str, Any]], registry: Registry) -> list[dict[str, Any]]:
    """A "download" of a file the plan already has is no step: its consumers take the file itself.

    Small models put a downloader in front of ``example.jpg`` even when told not
    to, and after a step that already gives a file ("search a video, then
    download #1"). A task whose only argument is a url-kind one is removed when
    that argument holds a plain file name, or a result of a media kind that is
    the download's own kind or that nothing downstream uses (a closing "save
    it" step). Every whole reference to the removed task becomes its argument;
    the validator then checks that value's kind against each consumer.
    """
    ids = [task["id"] if task.get("id") is not None else position for position, task in enumerate(raw, start=1)]
    by_id = dict(zip(ids, raw, strict=True))
    known = known_specs(raw, registry)
    consumed = {ref for task in raw if isinstance(task.get("args"), dict) for ref in references_in(task["args"])}
    needless: dict[int, Any] = {}
    for own_id, task in zip(ids, raw, strict=True):
        if task.get("tool") not in registry or not isinstance(task.get("args"), dict) or len(task["args"]) != 1:
            continue
        spec = registry.get(task["tool"])
        ((name, value),) = task["args"].items()
        param = spec.param(name)
        if param is None or param.kind != "url":
            continue
        if isinstance(value, str) and is_local_file_name(value):
            needless[own_id] = value.strip()
        elif (ref := whole_reference(value)) is not None and ref != own_id:
            given = value_kind(value, by_id, known)
            if given is not None and is_media_kind(given) and (given == spec.output_kind or own_id not in consumed):
                needless[own_id] = value
    if len(needless) == len(raw):
        return raw
    return remove_tasks(raw, needless)


def remove_tasks(raw: list[dict[str, Any]], removed: Mapping[int, Any]) -> list[dict[str, Any]]:
    """The plan without the tasks in ``removed``; each whole reference to one becomes the value it stood for.

    ``removed`` maps a task id to what its consumers take instead (its input,
    for a step that was no step); chains of removed tasks are followed.
    """
    if not removed:
        return raw
    ids = [task["id"] if task.get("id") is not None else position for position, task in enumerate(raw, start=1)]
    kept = []
    for own_id, task in zip(ids, raw, strict=True):
        if own_id in removed:
            continue
        if isinstance(task.get("args"), dict):
            task["args"] = {name: _through(value, removed) for name, value in task["args"].items()}
        kept.append({**task, "id": own_id})
    return kept


def _through(value: Any, removed: Mapping[int, Any]) -> Any:
    """A reference to a removed task, followed to the value it stood for (through chains of them)."""
    seen: set[int] = set()
    while (ref := whole_reference(value)) is not None and ref in removed and ref not in seen:
        seen.add(ref)
        value = removed[ref]
    return value


def is_local_file_name(value: str) -> bool:
    """``photo.jpg``: a file name with a known extension, not a web address."""
    value = value.strip()
    return bool(_FILE_NAME.fullmatch(value)) and not _WEB_ADDRESS.match(value) and claimed_mime(value) is not None


def bypass_dropped_tasks(
    raw: list[dict[str, Any]], dropped: set[int], registry: Registry
) -> tuple[list[dict[str, Any]], list[str]]:
    """The tasks not in ``dropped``, each reference to a dropped pass-through task given that task's input.

    A task that cannot run (an invented tool, a file of the wrong kind) is often a
    step the user did not ask for, put between their file and the step they did
    ("image_info of street.png, then canny_edges of #1"). When the dropped task
    took one media input of the kind its consumer expects, the consumer can take
    that input itself; otherwise the consumer keeps the dangling reference, and
    the caller drops it in turn.

    Returns:
        ``(kept tasks, notes)``: a note for each reference given another value.
    """
    ids = [t["id"] if t.get("id") is not None else i + 1 for i, t in enumerate(raw)]
    by_id = dict(zip(ids, raw, strict=True))
    kept = [
        {**t, "id": own_id, "args": dict(t["args"]) if isinstance(t.get("args"), dict) else t.get("args")}
        for own_id, t in zip(ids, raw, strict=True)
        if own_id not in dropped
    ]
    known = known_specs(raw, registry)
    notes: list[str] = []
    for task in kept:
        spec = known.get(task["tool"]) if isinstance(task.get("tool"), str) else None
        if spec is None or not isinstance(task.get("args"), dict):
            continue
        for name, value in task["args"].items():
            ref, param = whole_reference(value), spec.param(name)
            if ref not in dropped or param is None or not is_media_kind(param.kind):
                continue
            passed = _only_input_of_kind(by_id[ref], param.kind, by_id, dropped, known)
            for _ in range(len(dropped)):  # through a run of dropped tasks, to the input before them
                through = whole_reference(passed)
                if through not in dropped:
                    break
                passed = _only_input_of_kind(by_id[through], param.kind, by_id, dropped, known)
            if passed is not None and whole_reference(passed) not in dropped:
                task["args"][name] = passed
                notes.append(f"task {task['id']} takes {passed} in place of dropped task {ref}'s result")
    return kept, notes


def _only_input_of_kind(
    task: dict[str, Any], kind: str, by_id: dict[int, dict[str, Any]], dropped: set[int], known: Mapping[str, ToolSpec]
) -> str | None:
    """The task's one file or result of media ``kind``, if just one (a dropped task of an unknown tool
    counts as passing its own input through)."""
    args = task.get("args")
    if not isinstance(args, dict):
        return None
    found = []
    for value in args.values():
        ref = whole_reference(value)
        if ref is None and not (isinstance(value, str) and is_local_file_name(value)):
            continue
        passes_through = ref in dropped and by_id[ref].get("tool") not in known
        found_kind = kind if passes_through else value_kind(value, by_id, known)
        if found_kind is not None and kinds_compatible(found_kind, kind):
            found.append(value)
    return found[0] if len(found) == 1 else None


def known_specs(raw: list[dict[str, Any]], registry: Registry) -> dict[str, ToolSpec]:
    """The specs of the plan's tools the registry knows, by name."""
    return {t["tool"]: registry.get(t["tool"]) for t in raw if isinstance(t.get("tool"), str) and t["tool"] in registry}


def value_kind(value: Any, by_id: dict[int, dict[str, Any]], known: Mapping[str, ToolSpec]) -> str | None:
    """What an argument value carries: a referenced task's output kind, a file's kind by its extension, or text."""
    ref = whole_reference(value)
    if ref is not None:
        source = by_id.get(ref)
        spec = known.get(source.get("tool")) if source else None  # type: ignore[arg-type]
        return spec.output_kind if spec else None
    if isinstance(value, str):
        mime = claimed_mime(value.strip()) if " " not in value.strip() else None
        return kind_of_mime(mime) if mime else "text"
    return None
