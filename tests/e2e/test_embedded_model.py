"""End to end on the real embedded planner: Qwen2.5-Coder-1.5B served by llama.cpp on loopback.

The model plans, patchbay runs the built-in tools, and a follow-up turn in the
same thread works on the first turn's result. Under CI (CI=true) a missing model
fails instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image as PILImage

from patchbay import Orchestrator, Settings
from patchbay.llm.embedded import _missing_server_modules

pytestmark = pytest.mark.embedded
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "landscape.png"


@pytest.fixture
def embedded_settings(tmp_path) -> Settings:
    missing = _missing_server_modules()
    if missing:
        message = f"llama-cpp-python[server] is not installed (missing {', '.join(missing)})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return Settings(workspace=tmp_path / "ws", embedded_model="qwen2.5-coder-1.5b", llm_threads=2)


async def test_the_embedded_model_plans_runs_and_follows_up(embedded_settings):
    assert embedded_settings.uses_embedded
    async with Orchestrator(embedded_settings) as patchbay:
        # The planner has a llama.cpp server of its own, so answers never evict its cached catalog.
        assert patchbay.planner.client.base_url != patchbay.client.base_url
        first = await patchbay.arun("Rotate landscape.png by 90 degrees", [EXAMPLE], thread_id="e2e")
        assert [t.tool for t in first.plan.tasks] == ["image_rotate"]
        assert first.failed_tasks == []
        rotated = first.results[0].output["value"]
        with PILImage.open(patchbay.store.get(rotated).path) as img:
            assert img.size == (200, 320)
        assert rotated in [a.id for a in first.artifacts]
        assert first.text

        second = await patchbay.arun("Now make it 100 pixels wide", thread_id="e2e")
        assert [t.tool for t in second.plan.tasks] == ["image_resize"]
        assert second.plan.tasks[0].args["image"] == rotated
        resized = second.results[0].output["value"]
        with PILImage.open(patchbay.store.get(resized).path) as img:
            assert img.size == (100, 160)
