"""Read an unknown tool name as the catalog tool its task evidently needs, without another LLM reply.

Small planners describe a step well and then invent the tool's name ("Audio
Extractor" for a video's sound track). The task still says a lot: the kinds of
its inputs (a ``<resource-N>`` of a video, a file named ``clip.mp4``), the kind
its consumers expect from it, the step it was written for, and the invented name
itself. Those pick the tool: candidates must accept those inputs and produce that
output (and, with an allowed-links graph, link to their neighbours), and the one
whose name and description are closest to the step and the invented name wins,
if it is nearly as close as the closest tool of the whole catalog (else the types
forced a tool the step does not ask for, and the validator reports the name).

Asking the model again costs a whole reply and, at temperature 0, usually brings
back the same name.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..tools import Registry, ToolSpec
from ..tools._spec import is_media_kind, kinds_compatible
from .plan import references_in, whole_reference
from .reference_repair import is_local_file_name, value_kind

log = logging.getLogger(__name__)

__all__ = ["resolve_unknown_tools", "text_similarity"]

Similarity = Callable[[str, Sequence[str]], Sequence[float]]
# The chosen tool must be about as close to the step as the closest tool of all, types aside.
CLOSE_ENOUGH = 0.85
# all-MiniLM-L6-v2 cosines under this are noise between short texts ("teleport" and "Always fails"
# score 0.31; the right tool for an invented name scored 0.59-0.69 in the TaskBench cases looked at).
UNRELATED_BELOW = 0.35


def resolve_unknown_tools(
    raw: list[dict[str, Any]],
    steps: Sequence[str],
    catalog: Sequence[ToolSpec],
    registry: Registry,
    *,
    allowed_links: set[tuple[str, str]] | None = None,
    similarity: Similarity | None = None,
    mistyped_references: bool = False,
) -> list[dict[str, Any]]:
    """Replace each misfit task's tool with the best fitting catalog tool, renaming its arguments to match.

    A misfit is a task whose tool is unknown, or a known tool handed what it
    cannot take: an argument it has no parameter for (``Image Search(image=...)``),
    a file of another media kind (``Image Search(text="photo.jpg")``), or, for a
    downloader, a local file of a kind it does not fetch (``Audio Downloader`` of
    ``clip.mp4``: the user wants the sound track). Such a plan fails validation
    as written, so reading it as the tool the step needs can only help; a task
    that fits is never touched, and a misfit with no fitting candidate stays as
    it is, for the validator to report.

    A reference to a task of the wrong kind is a misfit only with
    ``mistyped_references``: first
    :func:`~patchbay.orchestrator.reference_repair.repoint_mistyped_references`
    should try pointing it at the right task (the planner calls this again after).
    """
    known = {spec.name: spec for spec in catalog}
    ids = [task["id"] if task.get("id") is not None else position for position, task in enumerate(raw, start=1)]
    by_id = dict(zip(ids, raw, strict=True))

    def misfit(args: dict[str, Any], spec: ToolSpec) -> bool:
        return _misfit(args, spec, by_id, known, references=mistyped_references)

    misfits = [
        task
        for task in raw
        if isinstance(task.get("tool"), str)
        and isinstance(task.get("args"), dict)
        and (task["tool"] not in known or misfit(task["args"], known[task["tool"]]))
    ]
    if not misfits:
        return raw
    similarity = similarity or text_similarity
    for position, (own_id, task) in enumerate(zip(ids, raw, strict=True)):
        name = task["tool"]
        if not any(task is m for m in misfits):
            continue
        spelled = _spelled_alike(name, catalog) if name not in known else None
        if spelled is not None:
            renamed = _rename_args(task["args"], spelled, by_id, known)
            if len(renamed) == len(task["args"]) and not misfit(renamed, spelled):
                log.info("task %s: tool %r read as %s", own_id, name, spelled.name)
                task["tool"], task["args"] = spelled.name, renamed
                continue
        inputs = _input_kinds(task["args"], by_id, known)
        wanted = _wanted_output(own_id, raw, ids, known)
        neighbours = _neighbours(own_id, task, raw, ids, known)
        candidates = [
            spec
            for spec in catalog
            if _accepts(spec, inputs) and (wanted is None or spec.output_kind == wanted)
            and _links_allowed(spec.name, neighbours, allowed_links)
        ]  # fmt: skip
        if not candidates:
            continue
        step = steps[position] if position < len(steps) and len(steps) == len(raw) else ""
        query = f"{step} {_words(name)}".strip()
        scores = dict(
            zip(known, similarity(query, [f"{n}: {spec.description}" for n, spec in known.items()]), strict=True)
        )
        floor = max(CLOSE_ENOUGH * max(scores.values()), 1e-9)
        for chosen in sorted(candidates, key=lambda spec: scores[spec.name], reverse=True):
            if scores[chosen.name] < floor:
                break  # what fits the types is not what the step asks for: let the validator say so
            renamed = _rename_args(task["args"], chosen, by_id, known)
            if name in known and (len(renamed) < len(task["args"]) or misfit(renamed, chosen)):
                continue  # a value the user gave would be lost, or would still not fit
            if any(param.required and param.name not in renamed for param in chosen.params):
                continue  # the values written cannot fill its inputs: it is not the tool meant
            log.info("task %s: tool %r read as %s", own_id, name, chosen.name)
            task["tool"] = chosen.name
            task["args"] = renamed
            break
    return raw


def _misfit(
    args: dict[str, Any],
    spec: ToolSpec,
    by_id: dict[int, dict[str, Any]],
    known: dict[str, ToolSpec],
    *,
    references: bool,
) -> bool:
    """The known tool cannot take these arguments: an unknown name, a file (or a reference) of the wrong kind."""
    for name, value in args.items():
        param = spec.param(name)
        if param is None:
            return True
        if not isinstance(value, str):
            continue
        kind = value_kind(value, by_id, known)
        if whole_reference(value) is not None:
            if references and kind is not None and not _fits(kind, param.kind):
                return True
        elif param.kind == "url":
            if is_local_file_name(value) and kind != spec.output_kind:
                return True  # a download of a local file of another kind: a conversion was meant
        elif is_local_file_name(value) and kind is not None and not _fits(kind, param.kind):
            return True
    return False


def _fits(kind: str, param_kind: str) -> bool:
    return kinds_compatible(kind, param_kind) or param_kind == f"list[{kind}]"


def _input_kinds(args: dict[str, Any], by_id: dict[int, dict[str, Any]], known: dict[str, ToolSpec]) -> list[str]:
    """The media kinds the task's arguments carry: outputs of referenced tasks, and file names by extension."""
    kinds = []
    for value in args.values():
        kind = value_kind(value, by_id, known)
        if kind is not None and is_media_kind(kind):
            kinds.append(kind)
    return kinds


def _wanted_output(own_id: int, raw: list[dict[str, Any]], ids: list[int], known: dict[str, ToolSpec]) -> str | None:
    """The kind a later task's argument expects from this task, if any consumer says."""
    for consumer_id, consumer in zip(ids, raw, strict=True):
        spec = known.get(consumer.get("tool"))  # type: ignore[arg-type]
        if spec is None or consumer_id == own_id or not isinstance(consumer.get("args"), dict):
            continue
        for name, value in consumer["args"].items():
            param = spec.param(name)
            if param is not None and whole_reference(value) == own_id:
                return param.kind[5:-1] if param.kind.startswith("list[") else param.kind
    return None


def _neighbours(
    own_id: int, task: dict[str, Any], raw: list[dict[str, Any]], ids: list[int], known: dict[str, ToolSpec]
) -> tuple[list[str], list[str]]:
    """Known tools feeding this task, and known tools it feeds."""
    sources = [
        raw[ids.index(ref)]["tool"]
        for ref in references_in(task["args"])
        if ref in ids and raw[ids.index(ref)].get("tool") in known
    ]
    targets = [
        consumer["tool"]
        for consumer_id, consumer in zip(ids, raw, strict=True)
        if consumer_id != own_id
        and consumer.get("tool") in known
        and own_id in set(references_in(consumer.get("args")))
    ]
    return sources, targets


def _accepts(spec: ToolSpec, inputs: list[str]) -> bool:
    """Every media input has a parameter of its kind (each parameter taking one)."""
    free = [p.kind[5:-1] if p.kind.startswith("list[") else p.kind for p in spec.params if is_media_kind(p.kind)]
    for kind in inputs:
        if kind not in free:
            return False
        free.remove(kind)
    return True


def _links_allowed(tool: str, neighbours: tuple[list[str], list[str]], allowed: set[tuple[str, str]] | None) -> bool:
    if allowed is None:
        return True
    sources, targets = neighbours
    return all((s, tool) in allowed for s in sources) and all((tool, t) in allowed for t in targets)


def _rename_args(
    args: dict[str, Any], spec: ToolSpec, by_id: dict[int, dict[str, Any]], known: dict[str, ToolSpec]
) -> dict[str, Any]:
    """Give each value to the chosen tool's parameter of its kind, in order; a name that fits already is kept."""
    params = list(spec.params)
    renamed: dict[str, Any] = {}
    leftovers = []
    for name, value in args.items():
        param = spec.param(name)
        if param is not None and name not in renamed:
            renamed[name] = value
        else:
            leftovers.append(value)
    for value in leftovers:
        kind = value_kind(value, by_id, known) or "text"
        free = [p for p in params if p.name not in renamed]
        match = next((p for p in free if p.kind == kind or p.kind == f"list[{kind}]"), None)
        if match is None and kind == "text":
            match = next((p for p in free if not is_media_kind(p.kind) and p.required), None)
        if match is not None:
            renamed[match.name] = value
    return renamed


def _spelled_alike(name: str, catalog: Sequence[ToolSpec]) -> ToolSpec | None:
    """The one catalog tool whose name differs from ``name`` only in case, spaces and punctuation.

    "Image to Text" is the model naming Image-to-Text, whatever the step says: no
    closeness of meaning should override that.
    """
    letters = _letters(name)
    alike = [spec for spec in catalog if _letters(spec.name) == letters]
    return alike[0] if len(alike) == 1 else None


def _letters(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _words(name: str) -> str:
    """``"AudioExtractor"``, ``"audio_extractor"``, ``"Audio-Extractor"`` -> ``"audio extractor"``."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return re.sub(r"[\s_\-]+", " ", spaced).strip().lower()


def text_similarity(query: str, texts: Sequence[str]) -> list[float]:
    """How close ``query`` is to each text, 0 for unrelated: all-MiniLM-L6-v2 cosines, else word overlap.

    Cosines under ``UNRELATED_BELOW`` count as 0, so a name that resembles no
    tool is left for the validator instead of being read as the least bad one.
    """
    encoder = _sentence_encoder()
    if encoder is not None:
        vectors = encoder.embed_texts([query, *texts])
        return [float(v) if v >= UNRELATED_BELOW else 0.0 for v in vectors[1:] @ vectors[0]]
    query_words = _stems(query)
    return [len(query_words & _stems(text)) / (len(_stems(text)) ** 0.5 or 1.0) for text in texts]


@functools.cache
def _sentence_encoder() -> Any:
    try:
        from ..tools.builtin.clip import load_sentence_encoder

        return load_sentence_encoder()
    except Exception as exc:  # torch, transformers or the weights missing: words are enough to go on
        log.info("tool names are matched by words, not meaning: %s", exc)
        return None


def _stems(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", _words(text))
    return {re.sub(r"(ing|ion|er|or|ed|es|s)$", "", w) for w in words if len(w) > 2}
