"""The tool boundary: handles become Image/Audio objects on the way in, artifacts on the way out.

Every execution backend (in-process threads, Ray actors) calls a tool through
:func:`invoke`, so conversion and storage rules are the same everywhere.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from ..artifacts import ArtifactStore, Provenance
from ..errors import InputError, ToolError
from ..media import MEDIA_TYPES, Media
from ._spec import ToolContext, ToolSpec, is_media_kind, type_adapter


@dataclass
class ToolCall:
    """One call of one tool, with references already replaced by values (handles, text, numbers)."""

    tool: str
    args: dict[str, Any]
    request_id: str
    task_id: int
    attachments: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskOutput:
    """A task's result as the graph state holds it: a handle (or handles) for media, else JSON."""

    kind: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskOutput:
        return cls(data["kind"], data["value"])

    def handles(self) -> list[str]:
        if self.kind.startswith("list["):
            return list(self.value)
        return [self.value] if is_media_kind(self.kind) else []


def bind_arguments(spec: ToolSpec, call: ToolCall, store: ArtifactStore) -> dict[str, Any]:
    """Keyword arguments for the tool's function: media resolved from the store, literals validated.

    Raises:
        InputError: a handle names no artifact, points outside the workspace, or
            is the wrong kind of media; a literal has the wrong type.
    """
    kwargs: dict[str, Any] = {}
    for name, value in call.args.items():
        param = spec.param(name)
        if param is None:
            raise InputError(f"{spec.name} has no argument {name!r}")
        if is_media_kind(param.kind):
            if param.kind.startswith("list["):
                if not isinstance(value, list):
                    raise InputError(f"argument {name!r} expects a list of {param.kind[5:-1]}")
                kwargs[name] = [_media(spec, name, param.kind[5:-1], v, call, store) for v in value]
            else:
                kwargs[name] = _media(spec, name, param.kind, value, call, store)
        elif param.annotation is not None:
            try:
                kwargs[name] = type_adapter(param.annotation).validate_python(value)
            except ValidationError as exc:
                reason = "; ".join(e["msg"] for e in exc.errors())
                raise InputError(f"argument {name!r} = {value!r:.60}: {reason}") from exc
        else:
            kwargs[name] = value
    return kwargs


def _media(spec: ToolSpec, name: str, kind: str, value: Any, call: ToolCall, store: ArtifactStore) -> Media:
    if not isinstance(value, str):
        raise InputError(f"argument {name!r} expects a {kind} handle, got {type(value).__name__}")
    artifact = store.resolve(value, call.attachments)
    if kind != "file" and artifact.kind != kind:
        raise InputError(
            f"argument {name!r} of {spec.name} expects {kind}, but {artifact.id}"
            f"{f' ({artifact.name})' if artifact.name else ''} is {artifact.mime}"
        )
    return MEDIA_TYPES[kind](artifact)


def store_output(spec: ToolSpec, result: Any, call: ToolCall, store: ArtifactStore) -> TaskOutput:
    """Store media results as artifacts; return everything else as JSON-safe values.

    Raises:
        ToolError: the tool returned something its annotation does not allow.
    """
    kind = spec.output_kind
    provenance = Provenance("task", call.request_id, call.task_id, spec.name)
    if is_media_kind(kind):
        if kind.startswith("list["):
            if not isinstance(result, (list, tuple)):
                raise ToolError(f"{spec.name} returned {type(result).__name__}, not a list of {kind[5:-1]}")
            return TaskOutput(kind, [_store_one(kind[5:-1], r, provenance, store) for r in result])
        return TaskOutput(kind, _store_one(kind, result, provenance, store))
    if spec.output_annotation is None:
        return TaskOutput(kind, result)
    try:
        value = type_adapter(spec.output_annotation).dump_python(result, mode="json")
    except (ValidationError, TypeError, ValueError) as exc:
        raise ToolError(f"{spec.name} returned a value that does not match its annotation: {exc}") from exc
    return TaskOutput(kind, str(value) if kind == "text" else value)


def _store_one(kind: str, result: Any, provenance: Provenance, store: ArtifactStore) -> str:
    media = MEDIA_TYPES[kind].coerce(result)
    if media.artifact is not None:
        return media.artifact.id
    return store.put_bytes(media.read_bytes(), media.mime, provenance, name=media.name).id


def prepare(
    spec: ToolSpec,
    call: ToolCall,
    store: ArtifactStore,
    instance: Any = None,
    generate: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The callable to run and its keyword arguments (context injected if the tool asks)."""
    kwargs = bind_arguments(spec, call, store)
    if spec.context_param:
        kwargs[spec.context_param] = ToolContext(call.request_id, call.task_id, store, generate)
    target = instance.run if spec.is_class else spec.implementation
    return target, kwargs


def invoke(
    spec: ToolSpec, call: ToolCall, store: ArtifactStore, instance: Any = None, generate: Any = None
) -> TaskOutput:
    """Run a synchronous tool call start to finish (bind, call, store)."""
    target, kwargs = prepare(spec, call, store, instance, generate)
    if inspect.iscoroutinefunction(target):
        raise ToolError(f"{spec.name} is async; run it with ainvoke")
    return store_output(spec, target(**kwargs), call, store)
