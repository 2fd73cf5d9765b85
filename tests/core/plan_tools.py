"""A small registry of real tools for plan, executor and conversation tests."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from patchbay import Audio, Image, tool
from patchbay.errors import ToolError, TransientToolError
from patchbay.evaluation.runner import spec_registry
from patchbay.tools import Registry


@tool
def caption(image: Image) -> str:
    """Describe an image by its size.

    Args:
        image: the picture.
    """
    pil = image.to_pil()
    return f"a {pil.width}x{pil.height} picture"


@tool
def speak(text: str) -> Audio:
    """Say text as a short beep per word.

    Args:
        text: the words.
    """
    import numpy as np

    samples = np.zeros((800 * max(1, len(text.split())), 1), dtype="float32")
    return Audio.from_array(samples, 8000)


@tool
def shout(text: str, times: int = 1) -> str:
    """Upper-case text.

    Args:
        text: the words.
        times: how often to repeat them.
    """
    return " ".join([text.upper()] * times)


@tool
def nap(text: str, seconds: float = 0.1) -> str:
    """Sleep, then echo.

    Args:
        text: what to echo.
        seconds: how long to sleep.
    """
    time.sleep(seconds)
    return text


@tool
async def async_nap(text: str, seconds: float = 0.1) -> str:
    """Sleep without a thread, then echo.

    Args:
        text: what to echo.
        seconds: how long to sleep.
    """
    await asyncio.sleep(seconds)
    return text


@tool
def explode(text: str) -> str:
    """Always fails.

    Args:
        text: ignored.
    """
    raise ToolError(f"cannot handle {text!r}")


def make_flaky(failures: int):
    """A tool that fails transiently ``failures`` times, then succeeds."""
    calls = {"n": 0}

    @tool(name="flaky", retries=3)
    def flaky(text: str) -> str:
        """Fails transiently a few times.

        Args:
            text: what to echo.
        """
        calls["n"] += 1
        if calls["n"] <= failures:
            raise TransientToolError(f"worker lost (call {calls['n']})")
        return text

    return flaky, calls


def registry() -> Registry:
    reg = Registry()
    with reg.loading_from("tests"):
        reg.add(caption, speak, shout, nap, async_nap, explode)
    return reg


def spec_tools(folder: Path, nodes: list[dict[str, Any]]) -> Registry:
    """Spec-only tools from TaskBench-style nodes (``id``, ``desc``, ``input-type``, ``output-type``)."""
    path = folder / "tool_desc.json"
    path.write_text(json.dumps({"nodes": nodes}))
    return spec_registry(path)


def typed_tools(folder: Path, tools: list[tuple[str, list[str], str]]) -> Registry:
    """Spec-only tools from ``(name, input kinds, output kind)``, each described by its name."""
    return spec_tools(folder, [{"id": n, "desc": f"{n}.", "input-type": i, "output-type": [o]} for n, i, o in tools])


def raw_tasks(*calls: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A raw plan (as the planner parses one) from ``(tool, args)`` pairs, numbered from 1."""
    return [{"id": i, "tool": tool, "args": dict(args)} for i, (tool, args) in enumerate(calls, 1)]
