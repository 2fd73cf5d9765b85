"""Tools registered in code (not through an entry point) for the Ray tests: they travel to actors pickled."""

from __future__ import annotations

import os
import time
from typing import Any

from patchbay import Resources, Tool, tool
from patchbay.errors import ConfigError, ToolError, TransientToolError
from patchbay.tools import Registry


@tool(resources=Resources(cpus=0.25))
def sleepy(text: str, seconds: float = 1.0) -> str:
    """Sleep, then echo.

    Args:
        text: what to echo.
        seconds: how long to sleep.
    """
    time.sleep(seconds)
    return text


@tool(resources=Resources(gpu=0.5, cpus=0.5))
def half_gpu(seconds: float = 1.0) -> dict[str, Any]:
    """Hold half a GPU for a while and say where it ran.

    Args:
        seconds: how long to hold it.
    """
    start = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}


@tool(resources=Resources(gpu=0.5, cpus=0.5))
def other_half_gpu() -> int:
    """Another tool wanting half a GPU.

    Returns:
        The serving process id.
    """
    return os.getpid()


@tool(resources=Resources(cpus=0.25))
def refuse(text: str) -> str:
    """Always fails for its own reasons.

    Args:
        text: what it refuses.
    """
    raise ToolError(f"refusing {text!r}")


@tool(resources=Resources(cpus=0.25))
def crash(text: str) -> str:
    """Kills its own worker process on every call.

    Args:
        text: ignored.
    """
    os._exit(3)


@tool(resources=Resources(cpus=0.25), retries=1)
def always_transient(text: str) -> str:
    """Fails with a transient error every time.

    Args:
        text: ignored.
    """
    raise TransientToolError("upstream busy")


class NeedsMissingWeights(Tool):
    """A model tool whose weights are not there.

    Args:
        text: ignored.
    """

    name = "needs_missing_weights"
    resources = Resources(cpus=0.25)

    def setup(self) -> None:
        raise ConfigError("weights for needs_missing_weights are not downloaded; run 'hf download x/y'")

    def run(self, text: str) -> str:
        return text


def registry(*, builtins: bool = True) -> Registry:
    """The installed tools (optionally) plus the test tools above."""
    reg = Registry.discover() if builtins else Registry()
    with reg.loading_from("tests"):
        reg.add(sleepy, half_gpu, other_half_gpu, refuse, crash, always_transient, NeedsMissingWeights)
    return reg
