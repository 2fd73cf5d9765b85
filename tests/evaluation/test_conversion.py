"""patchbay plans to TaskBench form and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchbay.evaluation import links_of, nodes_to_raw_tasks, plan_to_nodes, spec_registry
from patchbay.orchestrator import validate_plan

TOOLS = Path(__file__).resolve().parents[3] / "shared" / "taskbench" / "tool_desc.json"


@pytest.fixture(scope="module")
def registry():
    return spec_registry(TOOLS)


def test_plan_to_taskbench_nodes_and_links(registry):
    plan = validate_plan(
        [
            {"id": 1, "tool": "Video-to-Audio", "args": {"video": "example.mp4"}},
            {"id": 2, "tool": "Audio Noise Reduction", "args": {"audio": "<resource-1>"}},
            {"id": 3, "tool": "Audio Effects", "args": {"audio": "<resource-2>", "text": "reverb"}},
        ],
        registry,
    )
    assert plan_to_nodes(plan) == [
        {"task": "Video-to-Audio", "arguments": ["example.mp4"]},
        {"task": "Audio Noise Reduction", "arguments": ["<node-0>"]},
        {"task": "Audio Effects", "arguments": ["<node-1>", "reverb"]},
    ]
    assert links_of(plan) == [
        {"source": "Video-to-Audio", "target": "Audio Noise Reduction"},
        {"source": "Audio Noise Reduction", "target": "Audio Effects"},
    ]


def test_taskbench_nodes_back_to_a_plan_in_any_order(registry):
    # TaskBench lists nodes in any order; <node-j> indexes that list.
    nodes = [
        {"task": "Audio Effects", "arguments": ["<node-1>", "reverb"]},
        {"task": "Audio Noise Reduction", "arguments": ["<node-2>"]},
        {"task": "Video-to-Audio", "arguments": ["example.mp4"]},
    ]
    plan = validate_plan(nodes_to_raw_tasks(nodes), registry)
    assert [t.tool for t in plan.tasks] == ["Video-to-Audio", "Audio Noise Reduction", "Audio Effects"]
    assert plan.task(1).args == {"audio": "<resource-2>", "text": "reverb"}
    round_trip = plan_to_nodes(plan)
    assert round_trip[2] == {"task": "Audio Effects", "arguments": ["<node-1>", "reverb"]}
    assert {(link["source"], link["target"]) for link in links_of(plan)} == {
        ("Video-to-Audio", "Audio Noise Reduction"),
        ("Audio Noise Reduction", "Audio Effects"),
    }
