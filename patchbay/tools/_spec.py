"""What the rest of patchbay knows about a tool: its parameters, output, resources and origin."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..artifacts import ArtifactStore

MEDIA_KINDS = ("image", "audio", "video", "file")


@functools.cache
def type_adapter(annotation: Any) -> Any:
    """One pydantic TypeAdapter per annotation: building one costs ~50 us, so never per call."""
    from pydantic import TypeAdapter

    return TypeAdapter(annotation)


SCALAR_KINDS = ("text", "integer", "number", "boolean")


def kinds_compatible(produced: str, wanted: str) -> bool:
    """Can a value of kind ``produced`` feed a parameter of kind ``wanted``?"""
    if produced == wanted or wanted == "any" or produced == "any":
        return True
    if wanted == "file":
        return produced in MEDIA_KINDS
    if wanted == "text":
        # Numbers and JSON render as text; media never silently become text.
        return produced in SCALAR_KINDS or produced == "json"
    if wanted == "number":
        return produced == "integer"
    if wanted.startswith("list[") and produced.startswith("list["):
        return kinds_compatible(produced[5:-1], wanted[5:-1])
    return False


def is_media_kind(kind: str) -> bool:
    return kind in MEDIA_KINDS or (kind.startswith("list[") and kind[5:-1] in MEDIA_KINDS)


@dataclass(frozen=True)
class Resources:
    """What one call of a tool needs, so a backend can place it without a side table.

    Attributes:
        gpu: share of one GPU (0.5 lets two replicas share a card).
        cpus: CPU cores one call keeps busy.
        memory_mb: approximate resident memory of the loaded tool.
        batchable: whether several calls can be served as one batch.
        max_batch_size: the largest batch worth forming.
    """

    gpu: float = 0.0
    cpus: float = 1.0
    memory_mb: int = 0
    batchable: bool = False
    max_batch_size: int = 1

    def describe(self) -> str:
        parts = [f"cpu {self.cpus:g}"]
        if self.gpu:
            parts.append(f"gpu {self.gpu:g}")
        if self.memory_mb:
            parts.append(f"{self.memory_mb} MB")
        if self.batchable:
            parts.append(f"batch<={self.max_batch_size}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Availability:
    """Whether a tool can run here, and if not, why and how to fix it."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Param:
    """One tool parameter, as the planner and the validator see it."""

    name: str
    kind: str
    description: str
    required: bool
    default: Any = None
    json_schema: dict[str, Any] = field(default_factory=dict)
    annotation: Any = None  # the Python type; None for spec-only tools

    @property
    def display_type(self) -> str:
        """The type as the planner reads it: the allowed values for enums, else the kind."""
        choices = self.json_schema.get("enum")
        if choices is None:
            choices = next((s.get("enum") for s in self.json_schema.get("anyOf", []) if "enum" in s), None)
        return "|".join(json.dumps(c) for c in choices) if choices else self.kind


@dataclass
class ToolContext:
    """What a tool may ask of patchbay during a call, injected by type annotation.

    Attributes:
        request_id: the request this call serves.
        task_id: the plan task this call runs.
        store: the workspace artifact store.
        generate: the planner's LLM as a plain ``prompt -> text`` function, for
            tools such as summarize or translate; None where no LLM is configured.
    """

    request_id: str
    task_id: int
    store: ArtifactStore | None = None
    generate: Callable[[str], str] | None = None

    @property
    def workspace(self) -> Path | None:
        return self.store.workspace if self.store is not None else None


@dataclass
class ToolSpec:
    """A registered tool: derived once from a typed function or class, or loaded from a JSON spec.

    ``implementation`` is the function, or the :class:`~patchbay.tools.Tool` subclass
    whose ``run`` method does the work; it is None for spec-only tools, which can
    be planned (dry runs, evaluation) but not executed.
    """

    name: str
    description: str
    params: list[Param]
    output_kind: str
    output_description: str = ""
    output_annotation: Any = None
    resources: Resources = field(default_factory=Resources)
    timeout_s: float | None = None
    retries: int | None = None  # None: the executor's default for transient failures
    implementation: Any = None
    context_param: str | None = None
    source: str = "(unregistered)"
    availability_check: Callable[[], Availability] | None = None

    @property
    def spec_only(self) -> bool:
        return self.implementation is None

    @property
    def is_class(self) -> bool:
        return isinstance(self.implementation, type)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def availability(self) -> Availability:
        """Fast check (no model loading) of whether this tool can run here."""
        if self.spec_only:
            return Availability(False, "spec only: can be planned, not executed")
        if self.availability_check is None:
            return Availability(True)
        return self.availability_check()

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of this tool's arguments object."""
        return {
            "type": "object",
            "properties": {p.name: p.json_schema for p in self.params},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call a function tool directly, as if undecorated."""
        if self.implementation is None or self.is_class:
            raise TypeError(f"tool {self.name!r} is not a plain function")
        return self.implementation(*args, **kwargs)
