"""Snapshots of the rendered prompts and the tool schemas: any change shows up as a reviewed diff.

Regenerate after an intended change with ``PATCHBAY_UPDATE_SNAPSHOTS=1 pytest tests/core/test_snapshots.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from patchbay.llm.client import ChatClient
from patchbay.orchestrator import Composer, Planner, TaskResult, plan_schema
from patchbay.tools import Registry

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("PATCHBAY_UPDATE_SNAPSHOTS") == "1"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no snapshot {name}; run with PATCHBAY_UPDATE_SNAPSHOTS=1 to create it")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; review the diff and update the snapshot"


@pytest.fixture(scope="module")
def builtin():
    """The cheap built-in tools: their availability does not depend on the machine."""
    from patchbay.tools.builtin import audio, image, text

    registry = Registry()
    registry.add(*image.TOOLS, *audio.TOOLS, *text.TOOLS)
    return registry


def unused_client(structured="auto") -> ChatClient:
    return ChatClient("http://127.0.0.1:9/v1", "x", "m", structured=structured)


@pytest.mark.parametrize(("plan_format", "suffix"), [("json", ""), ("lines", "_lines")])
def test_planner_prompt(builtin, plan_format, suffix):
    planner = Planner(unused_client("prefill"), builtin, plan_format=plan_format)
    messages = planner.messages(
        "now make it black and white",
        attachments=[{"id": "art-00000000000000aa", "name": "song.wav", "mime": "audio/wav"}],
        history=[
            {
                "request": "resize photo.png to 100 px wide",
                "answer": "Done: art-00000000000000bb",
                "artifacts": [
                    {"id": "art-00000000000000cc", "mime": "image/png", "name": "photo.png", "tool": None},
                    {"id": "art-00000000000000bb", "mime": "image/png", "name": None, "tool": "image_resize"},
                ],
            }
        ],
        feedback="- task 1 (image_grayscale) failed: art-00000000000000bb is corrupt",
    )
    check(f"plan_system{suffix}.txt", messages[0]["content"])
    check(f"plan_user{suffix}.txt", messages[1]["content"])


def test_composer_prompt():
    results = [
        TaskResult(1, "image_grayscale", "succeeded", {}, output={"kind": "image", "value": "art-00000000000000dd"}),
        TaskResult(2, "text_summarize", "failed", {}, error="the LLM timed out"),
        TaskResult(3, "image_resize", "skipped", {}, error="task 2 (text_summarize) failed: the LLM timed out"),
    ]
    messages = Composer(unused_client()).messages("gray it and summarize", results, [], [])
    check("compose_system.txt", messages[0]["content"])
    check("compose_user.txt", messages[1]["content"])


def test_builtin_tool_schemas(builtin):
    schemas = {spec.name: {"input": spec.input_schema(), "output": spec.output_kind} for spec in builtin}
    check("builtin_tool_schemas.json", json.dumps(schemas, indent=1, sort_keys=True) + "\n")
    check("plan_schema.json", json.dumps(plan_schema(list(builtin)), indent=1, sort_keys=True) + "\n")
