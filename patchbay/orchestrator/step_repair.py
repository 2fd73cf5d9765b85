"""Fix steps a small planner wrote with the right tools but the wrong wiring, without another LLM reply.

:mod:`.reference_repair` fixes what a reference points at; these fix the
steps around it: two arguments handed each other's values, a web address
handed to a tool that wants what is behind it, and a conversion step applied
to a value that is already what the step would make. Each reads the plan the
way its author evidently meant it; a repair reply would cost 5-30 s on a
laptop CPU, and 1.5B models often lose a right step while fixing a wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..sniff import claimed_mime, kind_of_mime
from ..tools import Registry, ToolSpec, kinds_compatible
from ..tools._spec import is_media_kind
from .plan import reference, whole_reference
from .reference_repair import known_specs, remove_tasks, value_kind

__all__ = ["drop_done_conversions", "fetch_web_addresses", "uncross_arguments"]

# A whole value that is one web address: "https://example.com/a.jpg", "www.example.org/page".
_WEB_ADDRESS = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)


def uncross_arguments(raw: list[dict[str, Any]], registry: Registry) -> list[dict[str, Any]]:
    """Two arguments that each hold what the other expects are swapped.

    ``Video Synchronization(video=<the audio>, audio="clip.mp4")``: the model
    wrote the inputs in the order the request named them. Only values whose
    kind is known (a file name, a reference to a known tool) are considered,
    and only a swap that makes both fit.
    """
    _, by_id, known = _index(raw, registry)
    for task in raw:
        spec = known.get(task.get("tool")) if isinstance(task.get("tool"), str) else None
        args = task.get("args")
        if spec is None or not isinstance(args, dict):
            continue
        misplaced = [
            (name, kind)
            for name, value in args.items()
            if (param := spec.param(name)) is not None
            and (kind := _carried_kind(value, by_id, known)) is not None
            and not kinds_compatible(kind, param.kind)
        ]
        for first, (name, kind) in enumerate(misplaced):
            partner = next(
                (
                    other
                    for other, other_kind in misplaced[first + 1 :]
                    if kinds_compatible(kind, spec.param(other).kind)  # type: ignore[union-attr]
                    and kinds_compatible(other_kind, spec.param(name).kind)  # type: ignore[union-attr]
                ),
                None,
            )
            if partner is not None:
                args[name], args[partner] = args[partner], args[name]
                break
    return raw


def _carried_kind(value: Any, by_id: dict[int, dict[str, Any]], known: dict[str, ToolSpec]) -> str | None:
    """The kind a value certainly carries: a known tool's output, or a file named by extension (not free text)."""
    kind = value_kind(value, by_id, known)
    if kind == "text" and whole_reference(value) is None:
        return None  # free text could mean anything, an instruction or a prompt
    return kind


def fetch_web_addresses(
    raw: list[dict[str, Any]], registry: Registry, catalog: Sequence[ToolSpec]
) -> list[dict[str, Any]]:
    """A web address given where a file or a text's content is expected is downloaded first.

    ``Image Colorizer(image="https://example.com/old.jpg")`` and
    ``Text Summarizer(text="https://example.com/article")`` mean the picture and
    the article, not their addresses. When the catalog has a downloader for
    that kind (a tool taking one url and making it), a download step is put in
    front and the argument refers to it; one address is downloaded once. An
    address whose extension claims another kind (a ``.jpg`` for a text
    argument), or a tool that makes web addresses itself, is left alone.
    """
    downloaders = _downloaders(catalog)
    if not downloaders:
        return raw
    ids, _, known = _index(raw, registry)
    next_id = max((i for i in ids if isinstance(i, int)), default=0) + 1
    downloader_names = {tool.name for tool in downloaders.values()}
    fetched: dict[tuple[str, str], int] = {}
    result: list[dict[str, Any]] = []
    for own_id, task in zip(ids, raw, strict=True):
        spec = known.get(task.get("tool")) if isinstance(task.get("tool"), str) else None
        args = task.get("args")
        if spec is None or not isinstance(args, dict) or spec.output_kind == "url":
            result.append({**task, "id": own_id})
            continue
        if spec.name in downloader_names:
            fetched.update({(str(v).strip(), spec.output_kind): own_id for v in args.values() if isinstance(v, str)})
        for name, value in args.items():
            param = spec.param(name)
            if param is None or not isinstance(value, str) or not _WEB_ADDRESS.match(value.strip()):
                continue
            address = value.strip()
            claimed = claimed_mime(address.split("?")[0])
            kind = param.kind
            downloader = downloaders.get(kind)
            if downloader is None or (claimed is not None and kind_of_mime(claimed) not in {kind, "text"}):
                continue
            if (address, kind) not in fetched:
                url_param = next(p.name for p in downloader.params if p.required)
                result.append({"id": next_id, "tool": downloader.name, "args": {url_param: _with_scheme(address)}})
                fetched[(address, kind)] = next_id
                next_id += 1
            args[name] = reference(fetched[(address, kind)])
        result.append({**task, "id": own_id})
    return result


def _downloaders(catalog: Sequence[ToolSpec]) -> dict[str, ToolSpec]:
    """The first tool of each output kind (media or text) whose one required input is a url."""
    found: dict[str, ToolSpec] = {}
    for spec in catalog:
        required = [p for p in spec.params if p.required]
        makes_content = is_media_kind(spec.output_kind) or spec.output_kind == "text"
        if makes_content and len(required) == 1 and required[0].kind == "url":
            found.setdefault(spec.output_kind, spec)
    return found


def _with_scheme(address: str) -> str:
    return address if address.lower().startswith(("http://", "https://")) else "https://" + address


def drop_done_conversions(raw: list[dict[str, Any]], registry: Registry) -> list[dict[str, Any]]:
    """A one-input conversion handed what it would make is no step: its consumers take its input.

    ``Text Downloader``, then ``Audio-to-Text(audio=#1)`` "to get the article
    as text": the text is already there. A task is dropped when its only
    argument refers to an earlier task whose output kind is not what the
    argument takes but is exactly what the task makes.
    """
    ids, by_id, known = _index(raw, registry)
    done: dict[int, str] = {}
    for own_id, task in zip(ids, raw, strict=True):
        spec = known.get(task.get("tool")) if isinstance(task.get("tool"), str) else None
        args = task.get("args")
        if spec is None or not isinstance(args, dict) or len(args) != 1:
            continue
        ((name, value),) = args.items()
        param, ref = spec.param(name), whole_reference(value)
        if param is None or ref is None or ref == own_id:
            continue
        given = value_kind(value, by_id, known)
        if given is not None and given == spec.output_kind and not kinds_compatible(given, param.kind):
            done[own_id] = value
    return remove_tasks(raw, done)


def _index(
    raw: list[dict[str, Any]], registry: Registry
) -> tuple[list[int], dict[int, dict[str, Any]], dict[str, ToolSpec]]:
    """Each task's id (its position when it has none), the tasks by id, and the known tools' specs."""
    ids = [task["id"] if task.get("id") is not None else position for position, task in enumerate(raw, start=1)]
    known = known_specs(raw, registry)
    return ids, dict(zip(ids, raw, strict=True)), known
