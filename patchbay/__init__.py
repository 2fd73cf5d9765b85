"""patchbay: a planner LLM that controls many expert models.

A request (with attachments) goes to a planner LLM, which emits a plan: a graph
of tool calls. patchbay validates the plan, runs it (every ready task at once),
passes media between tasks by artifact handle, and composes a multimodal answer.

Importing this package loads no heavy library (no torch, transformers, ray or
gradio): those load inside the tools and backends that need them.
"""

from .artifacts import Artifact, ArtifactStore, Provenance
from .config import Settings
from .errors import (
    ConfigError,
    InputError,
    PatchbayError,
    PlanError,
    ToolError,
    TransientToolError,
    WorkspaceError,
)
from .media import Audio, File, Image, Media, Text, Video
from .tools import (
    Availability,
    Registry,
    Resources,
    Tool,
    ToolContext,
    ToolSpec,
    tool,
)

__all__ = [
    "Answer",
    "Artifact",
    "ArtifactStore",
    "Audio",
    "Availability",
    "ConfigError",
    "File",
    "Image",
    "InputError",
    "Media",
    "Orchestrator",
    "Plan",
    "PatchbayError",
    "PlanError",
    "Provenance",
    "Registry",
    "Resources",
    "Settings",
    "Task",
    "Text",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "TransientToolError",
    "Video",
    "WorkspaceError",
    "tool",
]


# The orchestrator pulls in langgraph and openai (~1 s); a plugin that only
# defines tools should not pay for that, so these load on first use.
_LAZY = {"Answer", "Orchestrator", "Plan", "Task"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from . import orchestrator

        return getattr(orchestrator, name)
    raise AttributeError(f"module 'patchbay' has no attribute {name!r}")
