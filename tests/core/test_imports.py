"""Importing patchbay stays light: heavy libraries load only inside the tools and backends that need them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "diffusers", "ray", "gradio", "langgraph", "openai", "llama_cpp")


def test_import_patchbay_loads_no_heavy_library():
    code = (
        "import sys, patchbay; from patchbay import tool, Image, Audio, Registry; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_orchestrator_still_imports_without_ml_libraries():
    code = (
        "import sys; from patchbay import Orchestrator; "
        "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'ray', 'gradio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
