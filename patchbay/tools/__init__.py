"""The tool API: define a tool once (typed function or class), register it, describe it."""

from ._define import Tool, define_tool, describe_type
from ._registry import ENTRY_POINT_GROUP, Registry, spec_from_json, tool
from ._spec import Availability, Param, Resources, ToolContext, ToolSpec, kinds_compatible

__all__ = [
    "ENTRY_POINT_GROUP",
    "Availability",
    "Param",
    "Registry",
    "Resources",
    "Tool",
    "ToolContext",
    "ToolSpec",
    "define_tool",
    "describe_type",
    "kinds_compatible",
    "spec_from_json",
    "tool",
]
