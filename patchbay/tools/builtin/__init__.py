"""The built-in tools: cheap image, audio and text operations, and the expert models.

The cheap tools need no weights. The model tools (BLIP, CLIP, OCR) load their
weights lazily, once per process, and report themselves unavailable, with the
fix, where the weights or programs are missing.

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
from . import audio, blip, clip, controlnet, diffusion, image, ocr, speech, speech_synthesis, text, voice_clone

__all__ = ["register"]


# One module per line: each family of tools is owned by one module.
_MODULES = (
    image,
    audio,
    text,
    blip,
    clip,
    ocr,
    speech,
    speech_synthesis,
    voice_clone,
    diffusion,
    controlnet,
)


def register(registry: Registry) -> None:
    """Add every built-in tool to ``registry``; patchbay's own entry-point hook."""
    registry.add(*(tool for module in _MODULES for tool in module.TOOLS))
