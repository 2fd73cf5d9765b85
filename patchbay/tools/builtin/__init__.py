"""The built-in tools: cheap image, audio and text operations that need no model weights.

They reach the registry the way any plugin's tools do, through the entry point
``builtin = "patchbay.tools.builtin:register"`` in patchbay's ``pyproject.toml``,
so that path runs every time patchbay starts.

Example:
    >>> registry = Registry.discover()
    >>> registry.get("image_resize").source
    'patchbay'
"""

from __future__ import annotations

from .._registry import Registry
from . import audio, image, text

__all__ = ["register"]


def register(registry: Registry) -> None:
    """Add every built-in tool to ``registry``; patchbay's own entry-point hook."""
    registry.add(*image.TOOLS, *audio.TOOLS, *text.TOOLS)
