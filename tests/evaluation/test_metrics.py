"""The TaskBench scorer on hand-made gold/prediction pairs with known results."""

from __future__ import annotations

import pytest

from patchbay.evaluation import edit_distance, record_links, score

GOLD_CHAIN = {
    "task_nodes": [
        {"task": "Video-to-Audio", "arguments": ["a.mp4"]},
        {"task": "Audio-to-Text", "arguments": ["<node-0>"]},
        {"task": "Text Summarizer", "arguments": ["<node-1>"]},
    ],
    "task_links": [
        {"source": "Video-to-Audio", "target": "Audio-to-Text"},
        {"source": "Audio-to-Text", "target": "Text Summarizer"},
    ],
}
GOLD_SINGLE = {"task_nodes": [{"task": "Image Colorizer", "arguments": ["x.jpg"]}], "task_links": []}


def test_a_perfect_prediction_scores_100():
    s = score([(GOLD_CHAIN, {"task_nodes": GOLD_CHAIN["task_nodes"]})])
    assert (s.node_f1, s.link_f1, s.edit_distance, s.failure_rate) == (100.0, 100.0, 0.0, 0.0)


def test_partial_prediction_known_values():
    predicted = {
        "task_nodes": [
            {"task": "Video-to-Audio", "arguments": ["a.mp4"]},
            {"task": "Audio-to-Text", "arguments": ["<node-0>"]},
            {"task": "Text Translator", "arguments": ["<node-1>"]},
        ]
    }
    s = score([(GOLD_CHAIN, predicted)])
    # nodes: 2 of 3 right each way -> P = R = F1 = 2/3; links: 1 of 2 -> 1/2.
    assert s.node_f1 == pytest.approx(200 / 3)
    assert s.link_f1 == pytest.approx(50.0)
    assert s.edit_distance == pytest.approx(1 / 3)


def test_a_failed_plan_scores_zero_and_is_never_dropped():
    s = score([(GOLD_CHAIN, None), (GOLD_SINGLE, {"task_nodes": GOLD_SINGLE["task_nodes"]})])
    assert s.records == 2 and s.failures == 1 and s.failure_rate == 50.0
    # micro-averaged: 1 TP of 1 predicted, of 4 gold nodes
    assert s.nodes.precision == 1.0 and s.nodes.recall == 0.25
    assert s.node_f1 == pytest.approx(40.0)
    assert s.link_f1 == 0.0
    assert s.edit_distance == pytest.approx(0.5)  # 1.0 for the failure, 0 for the hit
    errored = score([(GOLD_SINGLE, {"task_nodes": GOLD_SINGLE["task_nodes"], "error": "bad plan"})])
    assert errored.node_f1 == 0.0 and errored.failures == 1


def test_links_given_explicitly_win_over_references():
    predicted = {"task_nodes": GOLD_CHAIN["task_nodes"], "task_links": []}
    assert score([(GOLD_CHAIN, predicted)]).link_f1 == 0.0


def test_record_links_and_edit_distance():
    assert record_links(GOLD_CHAIN["task_nodes"]) == {
        ("Video-to-Audio", "Audio-to-Text"),
        ("Audio-to-Text", "Text Summarizer"),
    }
    assert edit_distance(["a", "b"], ["a", "b"]) == 0.0
    assert edit_distance([], []) == 0.0
    assert edit_distance(["a"], []) == 1.0
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == pytest.approx(1 / 3)


def test_median_time():
    s = score([(GOLD_SINGLE, {"task_nodes": [], "seconds": t}) for t in (3.0, 1.0, 10.0, 2.0)])
    assert s.median_seconds == 2.5
