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
from .orchestrator import Answer, Orchestrator, Plan, Task
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
