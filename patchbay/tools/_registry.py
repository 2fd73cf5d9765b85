"""The tool registry: discovers tools through entry points and remembers where each came from."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DuplicateToolError
from ._define import Tool, define_tool
from ._spec import Param, ToolSpec

ENTRY_POINT_GROUP = "patchbay.tools"


def tool(
    target: Callable[..., Any] | type[Tool] | None = None,
    /,
    **options: Any,
) -> Any:
    """Turn a typed, documented function (or Tool subclass) into a tool.

    Use bare (``@tool``) or with options (``@tool(name=..., resources=Resources(gpu=0.5),
    timeout_s=60, retries=2)``). The decorated object is a :class:`ToolSpec`; a plugin's
    ``register(registry)`` hook hands it to :meth:`Registry.add`.

    Raises:
        ToolDefinitionError: listing every problem with the definition.
    """
    if target is None:
        return lambda t: define_tool(t, **options)
    return define_tool(target, **options)


class Registry:
    """Every tool patchbay can plan with, by name, with the package each came from.

    Example:
        >>> registry = Registry.discover()      # built-ins and installed plugins
        >>> registry.get("image_grayscale").source
        'patchbay'
    """

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec] = {}
        self._loading_source = "(local)"

    # -- building ----------------------------------------------------------------
    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """A registry holding every tool installed packages declare under the entry-point group."""
        registry = cls()
        registry.load_entry_points(group)
        return registry

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Call each plugin's ``register(registry)`` hook, recording its package as the source.

        Raises:
            ConfigError: a plugin's hook cannot be imported or is not callable.
        """
        for ep in sorted(entry_points(group=group), key=lambda e: (e.name != "builtin", e.name)):
            source = ep.dist.name if ep.dist is not None else ep.value.split(":")[0]
            try:
                hook = ep.load()
            except ImportError as exc:
                raise ConfigError(f"plugin {ep.name!r} from {source} cannot be imported: {exc}") from exc
            if not callable(hook):
                raise ConfigError(
                    f"plugin {ep.name!r} from {source}: entry point {ep.value} must name a register(registry) function"
                )
            with self.loading_from(source):
                hook(self)

    @contextlib.contextmanager
    def loading_from(self, source: str) -> Iterator[None]:
        """Tools added inside this block are recorded as coming from ``source``."""
        previous, self._loading_source = self._loading_source, source
        try:
            yield
        finally:
            self._loading_source = previous

    def add(self, *tools: ToolSpec | Callable[..., Any] | type[Tool]) -> list[ToolSpec]:
        """Register tools (ToolSpecs, or plain functions and Tool classes to define now).

        Raises:
            DuplicateToolError: a tool of that name is already registered; names both sources.
            ToolDefinitionError: a function or class is not a valid tool.
        """
        added = []
        for item in tools:
            spec = item if isinstance(item, ToolSpec) else define_tool(item)
            if spec.source == "(unregistered)":
                # A copy: one decorated function may sit in several registries, each with its own source.
                spec = dataclasses.replace(spec, source=self._loading_source)
            existing = self._tools.get(spec.name)
            if existing is not None:
                raise DuplicateToolError(spec.name, existing.source, spec.source)
            self._tools[spec.name] = spec
            added.append(spec)
        return added

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)

    def load_spec_file(self, path: Path | str, source: str | None = None) -> list[ToolSpec]:
        """Register spec-only tools from a JSON file (TaskBench's ``tool_desc.json`` form or a list).

        Raises:
            ConfigError: the file is missing, is not JSON, or an entry lacks a name.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read tool specs from {path}: {exc}") from exc
        entries = data.get("nodes", data.get("tools")) if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise ConfigError(f"{path}: expected a list of tools or an object with 'nodes'")
        with self.loading_from(source or path.name):
            return self.add(*(spec_from_json(entry, where=str(path)) for entry in entries))

    # -- reading -----------------------------------------------------------------
    def get(self, name: str) -> ToolSpec:
        """The tool called ``name``; KeyError lists near matches."""
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(sorted(self._tools.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def plannable(self, include_spec_only: bool = False) -> list[ToolSpec]:
        """Tools the planner may use: available ones, plus spec-only ones for dry runs."""
        return [s for s in self if (include_spec_only and s.spec_only) or (not s.spec_only and s.availability().ok)]


def spec_from_json(entry: dict[str, Any], where: str = "spec") -> ToolSpec:
    """A spec-only tool from ``{name|id, description|desc, input-type|inputs, output-type|outputs}``.

    Inputs may be type names (``"image"``) or objects with ``name``, ``type`` and
    ``description``; parameters named only by type are called after it
    (``image``, ``image_2`` for a second image).
    """
    if not isinstance(entry, dict) or not (entry.get("name") or entry.get("id")):
        raise ConfigError(f"{where}: every tool spec needs a 'name' (or 'id'): {entry!r:.80}")
    name = str(entry.get("name") or entry.get("id"))
    inputs = entry.get("inputs", entry.get("input-type", entry.get("input_types", [])))
    outputs = entry.get("outputs", entry.get("output-type", entry.get("output_types", ["text"])))
    params: list[Param] = []
    seen: dict[str, int] = {}
    for item in inputs:
        if isinstance(item, dict):
            kind = str(item.get("type", "text")).lower()
            pname = str(item.get("name") or kind)
            description = str(item.get("description", ""))
        else:
            kind = str(item).lower()
            pname, description = kind, f"the {kind} input"
        seen[pname] = seen.get(pname, 0) + 1
        if seen[pname] > 1:
            pname = f"{pname}_{seen[pname]}"
        params.append(
            Param(
                name=pname,
                kind=kind,
                description=description,
                required=True,
                json_schema={"type": "string", "description": description},
            )
        )
    first_output = outputs[0] if outputs else "text"
    if isinstance(first_output, dict):
        first_output = first_output.get("type", "text")
    return ToolSpec(
        name=name,
        description=str(entry.get("description") or entry.get("desc") or ""),
        params=params,
        output_kind=str(first_output).lower(),
    )
