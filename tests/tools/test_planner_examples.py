"""The planner's worked examples for the built-in tools are valid plans: a wrong example teaches wrong plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchbay import Registry
from patchbay.orchestrator.validate import validate_plan

POOL = json.loads((Path(__file__).parents[2] / "patchbay" / "prompts" / "examples.json").read_text())
BUILTIN = Registry.discover()
BUILTIN_EXAMPLES = [e for e in POOL if {t["tool"] for t in e["plan"]["tasks"]} <= set(BUILTIN.names())]


def test_the_pool_has_examples_for_the_model_tools():
    used = {t["tool"] for e in BUILTIN_EXAMPLES for t in e["plan"]["tasks"]}
    assert {"speech_to_text", "text_to_speech", "image_caption", "text_to_image", "voice_clone"} <= used


@pytest.mark.parametrize("example", BUILTIN_EXAMPLES, ids=lambda e: e["request"][:40])
def test_each_builtin_example_validates(example):
    plan = validate_plan(example["plan"]["tasks"], BUILTIN)
    assert len(plan.tasks) == len(example["plan"]["steps"])
