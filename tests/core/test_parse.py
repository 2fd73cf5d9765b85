"""The plan parser copes with what real LLMs write, and never crashes on anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchbay.errors import PlanError, PlanParseError
from patchbay.orchestrator.parse import parse_plan_text

PLAN = '{"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}'
EXPECTED = [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]


@pytest.mark.parametrize(
    "reply",
    [
        PLAN,
        f"```json\n{PLAN}\n```",
        f"Sure! Here is the plan:\n```\n{PLAN}\n```\nLet me know if you need more.",
        f"Here is the plan: {PLAN} Hope that helps.",
        '[{"id": 1, "tool": "shout", "args": {"text": "hi"},},]',
        '{"id": 1, "tool": "shout", "args": {"text": "hi"}}',
        "{'tasks': [{'id': 1, 'tool': 'shout', 'args': {'text': 'hi'}}]}",
        '<think>I should shout.</think>{"tasks": [{"id": "1", "task": "shout", "arguments": {"text": "hi"}}]}',
        '{"plan": [{"id": 1, "tool": "shout", "args": "{\\"text\\": \\"hi\\"}"}]}',
    ],
)
def test_tolerates_real_llm_formatting(reply):
    assert parse_plan_text(reply) == EXPECTED


def test_positional_arguments_and_missing_ids_survive_parsing():
    raw = parse_plan_text('[{"task": "shout", "arguments": ["hi", 2]}]')
    assert raw == [{"id": None, "tool": "shout", "args": ["hi", 2]}]


def test_handles_written_in_reference_notation_are_read_as_handles():
    raw = parse_plan_text(
        '[{"id": 1, "tool": "caption", "args": {"image": "<resource-20116f51d36c48b3>"}},'
        ' {"id": 2, "tool": "caption", "args": ["<art-20116f51d36c48b3>"]}]'
    )
    assert raw[0]["args"] == {"image": "art-20116f51d36c48b3"}
    assert raw[1]["args"] == ["art-20116f51d36c48b3"]
    assert parse_plan_text('[{"id": 2, "tool": "x", "args": {"a": "<resource-1>"}}]')[0]["args"] == {
        "a": "<resource-1>"
    }


def test_empty_plan_is_a_direct_answer():
    assert parse_plan_text('{"tasks": []}') == []
    assert parse_plan_text("[]") == []


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty"),
        ("I cannot help with that.", "no JSON"),
        ('{"answer": "42"}', 'no "tasks" list'),
        ('{"tasks": [{"id": 1, "args": {}}]}', "names no tool"),
        ('{"tasks": [{"id": "first", "tool": "x"}]}', "ids are integers"),
        ('{"tasks": ["shout"]}', "not an object"),
        ("42", "expected a JSON object or list"),
    ],
)
def test_rejections_say_why(reply, reason):
    with pytest.raises(PlanParseError, match=reason):
        parse_plan_text(reply)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_no_text_crashes_the_parser(text):
    try:
        parse_plan_text(text)
    except PlanError as exc:
        assert str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_no_json_value_crashes_the_parser(value):
    import json

    try:
        raw = parse_plan_text(json.dumps(value))
    except PlanError as exc:
        assert str(exc)
    else:
        assert all(isinstance(t["tool"], str) and isinstance(t["args"], (dict, list)) for t in raw)
