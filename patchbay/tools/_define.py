"""Derive a ToolSpec from a typed function or a Tool class: hints and docstring, written once."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import PydanticSchemaGenerationError, TypeAdapter

from ..errors import ToolDefinitionError
from ..media import Media, Text
from ._docstring import parse_docstring
from ._spec import Availability, Param, Resources, ToolContext, ToolSpec

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Tool:
    """Base class for tools that hold a model: weights load once in ``setup()`` and serve many calls.

    Subclass it, write a typed, documented ``run`` method, and register the class.
    Each process (or Ray actor) makes one instance, calls ``setup()`` once before
    the first call, and reuses it.

    Example:
        >>> class Caption(Tool):
        ...     name = "image_caption"
        ...     resources = Resources(gpu=0.25, memory_mb=1500)
        ...     def setup(self):
        ...         self.model = load_model()
        ...     def run(self, image: Image) -> str:
        ...         '''Describe an image in one sentence.
        ...
        ...         Args:
        ...             image: the picture to describe.
        ...         '''
        ...         return self.model(image.to_pil())
    """

    name: ClassVar[str] = ""
    resources: ClassVar[Resources] = Resources()
    timeout_s: ClassVar[float | None] = None
    retries: ClassVar[int | None] = None

    def setup(self) -> None:
        """Load weights and other expensive state; called once per process before the first call."""

    @classmethod
    def available(cls) -> Availability:
        """Fast check (no loading) of whether this tool can run here; override for model tools."""
        return Availability(True)


def define_tool(
    target: Callable[..., Any] | type[Tool],
    *,
    name: str | None = None,
    resources: Resources | None = None,
    timeout_s: float | None = None,
    retries: int | None = None,
    available: Callable[[], Availability] | None = None,
) -> ToolSpec:
    """Build a ToolSpec from a function or a Tool subclass.

    Raises:
        ToolDefinitionError: listing every problem found, not just the first.
    """
    problems: list[str] = []
    if isinstance(target, type):
        if not issubclass(target, Tool):
            raise ToolDefinitionError(target.__name__, ["a tool class must subclass patchbay.Tool"])
        func = getattr(target, "run", None)
        if func is None or func is getattr(Tool, "run", None):
            raise ToolDefinitionError(target.__name__, ["a Tool subclass must define run()"])
        tool_name = name or target.name or _snake(target.__name__)
        doc = parse_docstring(func.__doc__ or target.__doc__)
        resources = resources or target.resources
        timeout_s = timeout_s if timeout_s is not None else target.timeout_s
        retries = retries if retries is not None else target.retries
        available = available or target.available
        skip_first = True
    else:
        func = target
        tool_name = name or func.__name__
        doc = parse_docstring(func.__doc__)
        skip_first = False

    if not _NAME.match(tool_name):
        problems.append(f"name {tool_name!r} must be letters, digits and underscores, starting with a letter")
    if not doc.summary:
        problems.append("has no docstring: the planner needs a description")

    try:
        hints = typing.get_type_hints(func)
    except (NameError, TypeError) as exc:
        hints = {}
        problems.append(f"type hints cannot be resolved: {exc}")

    params: list[Param] = []
    context_param: str | None = None
    signature = inspect.signature(func)
    for index, (pname, p) in enumerate(signature.parameters.items()):
        if skip_first and index == 0:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(f"parameter {pname!r}: *args and **kwargs cannot be planned")
            continue
        hint = hints.get(pname)
        if hint is None:
            problems.append(f"parameter {pname!r} has no type hint")
            continue
        if hint is ToolContext:
            context_param = pname
            continue
        description = doc.args.get(pname, "")
        if not description:
            problems.append(f"parameter {pname!r} is not described in the docstring's Args section")
        try:
            kind, schema = describe_type(hint)
        except TypeError as exc:
            problems.append(f"parameter {pname!r}: {exc}")
            continue
        required = p.default is inspect.Parameter.empty
        schema = {**schema, "description": description}
        if not required:
            schema["default"] = p.default
        params.append(
            Param(
                name=pname,
                kind=kind,
                description=description,
                required=required,
                default=None if required else p.default,
                json_schema=schema,
                annotation=hint,
            )
        )

    output_kind = "text"
    if "return" not in hints:
        problems.append("has no return type hint")
    else:
        try:
            output_kind, _ = describe_type(hints["return"])
        except TypeError as exc:
            problems.append(f"return type: {exc}")

    if problems:
        raise ToolDefinitionError(tool_name, problems)
    return ToolSpec(
        name=tool_name,
        description=doc.summary,
        params=params,
        output_kind=output_kind,
        output_description=doc.returns,
        output_annotation=hints.get("return"),
        resources=resources or Resources(),
        timeout_s=timeout_s,
        retries=retries,
        implementation=target,
        context_param=context_param,
        availability_check=available,
    )


def describe_type(hint: Any) -> tuple[str, dict[str, Any]]:
    """The planner-facing kind of a type and its JSON schema; TypeError if unsupported."""
    if isinstance(hint, type) and issubclass(hint, Media):
        return hint.kind, {"type": "string", "x-media": hint.kind}
    if hint is Text or hint is str:
        return "text", {"type": "string"}
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) == 1:
            kind, schema = describe_type(members[0])
            return kind, {"anyOf": [schema, {"type": "null"}]}
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        if isinstance(item, type) and issubclass(item, Media):
            return f"list[{item.kind}]", {"type": "array", "items": {"type": "string", "x-media": item.kind}}
    if origin is Literal:
        return "text" if all(isinstance(a, str) for a in get_args(hint)) else "json", _schema_of(hint)
    kind = {bool: "boolean", int: "integer", float: "number"}.get(hint, "json")
    return kind, _schema_of(hint)


def _schema_of(hint: Any) -> dict[str, Any]:
    try:
        schema = TypeAdapter(hint).json_schema()
    except PydanticSchemaGenerationError as exc:
        raise TypeError(f"{hint!r} has no JSON schema") from exc
    schema.pop("title", None)
    return schema


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
