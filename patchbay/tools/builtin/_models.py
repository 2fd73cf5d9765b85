"""Shared by the model-backed tools: which model, on which device, and whether its weights can be had.

Missing weights are a state, not a crash: :func:`model_availability` answers in
about 0.1 s (cache lookup, then one short network probe) so ``patchbay tools``
can say what is missing and how to get it, and the planner leaves the tool out.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any

from .._spec import Availability

HUB_HOST = "huggingface.co"


def configured_model(tool_name: str, default: str) -> str:
    """The model id or local path for a tool: ``PATCHBAY_<TOOL>_MODEL`` or the default."""
    return os.environ.get(f"PATCHBAY_{tool_name.upper()}_MODEL", default)


def best_device() -> tuple[str, Any]:
    """CUDA with float16 when a GPU is there, else CPU with float32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def model_availability(model_id: str, tool_name: str) -> Availability:
    """Whether ``model_id``'s weights are on disk, in the Hugging Face cache, or downloadable."""
    if Path(model_id).is_dir():
        return Availability(True)
    if _in_hub_cache(model_id):
        return Availability(True)
    if not _offline() and _hub_reachable():
        return Availability(True, f"{model_id} downloads on first use")
    return Availability(
        False,
        f"weights for {model_id} are not cached and cannot be downloaded here; on a machine with internet run "
        f"'hf download {model_id}', or set PATCHBAY_{tool_name.upper()}_MODEL to a local copy",
    )


def _in_hub_cache(model_id: str) -> bool:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return False
    try:
        snapshot_download(model_id, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return False
    return True


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


@functools.cache
def _hub_reachable(timeout_s: float = 1.0) -> bool:
    """One TCP connection attempt to the hub per process; no data is sent."""
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False
