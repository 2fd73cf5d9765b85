"""Validation names the task and the reason for every problem, before anything runs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_tools import registry

from patchbay.errors import PlanError, PlanValidationError
from patchbay.orchestrator import validate_plan

REG = registry()


def problems_of(raw, **kwargs) -> list[str]:
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(raw, REG, **kwargs)
    return caught.value.problems


def test_a_good_plan_gets_dependencies_from_references():
    plan = validate_plan(
        [
            {"id": 2, "tool": "speak", "args": {"text": "<resource-1>"}},
            {"id": 1, "tool": "caption", "args": {"image": "art-0123456789abcdef"}},
            {"id": 3, "tool": "shout", "args": ["said: <GENERATED>-1", "2"]},
        ],
        REG,
    )
    assert [t.id for t in plan.tasks] == [1, 2, 3]  # reordered so nothing precedes its input
    assert plan.task(2).dependencies == {1}
    assert plan.task(3).args == {"text": "said: <GENERATED>-1", "times": 2}  # positional, coerced
    assert [t.id for t in plan.leaves()] == [2, 3]


def test_unknown_tool_suggests_the_closest():
    assert problems_of([{"id": 1, "tool": "shoutt", "args": {"text": "x"}}]) == [
        "task 1: unknown tool 'shoutt'; did you mean shout?"
    ]


def test_tools_outside_the_offered_catalog_are_unknown():
    problems = problems_of([{"id": 1, "tool": "explode", "args": {"text": "x"}}], allowed_tools={"shout"})
    assert problems[0].startswith("task 1: unknown tool 'explode'")


def test_unknown_and_missing_arguments():
    problems = problems_of([{"id": 1, "tool": "shout", "args": {"txt": "x"}}])
    assert "task 1 (shout): unknown argument 'txt' (arguments: text, times)" in problems
    assert any(p.startswith("task 1 (shout): missing required argument 'text'") for p in problems)


def test_reference_to_a_missing_task():
    assert problems_of([{"id": 1, "tool": "shout", "args": {"text": "<resource-7>"}}]) == [
        "task 1 (shout): argument 'text' refers to <resource-7>, but there is no such task"
    ]


def test_type_mismatch_names_both_sides():
    problems = problems_of(
        [
            {"id": 1, "tool": "speak", "args": {"text": "hello"}},
            {"id": 2, "tool": "caption", "args": {"image": "<resource-1>"}},
        ]
    )
    assert problems == ["task 2 (caption): argument 'image' expects image but <resource-1> (speak) produces audio"]


def test_media_cannot_be_spliced_into_text():
    problems = problems_of(
        [
            {"id": 1, "tool": "speak", "args": {"text": "hello"}},
            {"id": 2, "tool": "shout", "args": {"text": "listen: <resource-1>"}},
        ]
    )
    assert "splices <resource-1> into text" in problems[0]


def test_literal_types_are_checked():
    problems = problems_of([{"id": 1, "tool": "shout", "args": {"text": "x", "times": "many"}}])
    assert problems[0].startswith("task 1 (shout): argument 'times' = 'many' is not a valid integer")


def test_cycles_and_self_references():
    problems = problems_of(
        [
            {"id": 1, "tool": "shout", "args": {"text": "<resource-2>"}},
            {"id": 2, "tool": "shout", "args": {"text": "<resource-1>"}},
        ]
    )
    assert problems == ["tasks 1 -> 2 -> 1 form a cycle; a task can only use outputs of tasks that do not depend on it"]
    assert "refers to its own output" in problems_of([{"id": 1, "tool": "shout", "args": {"text": "<resource-1>"}}])[0]


def test_duplicate_ids():
    problems = problems_of(
        [{"id": 1, "tool": "shout", "args": {"text": "a"}}, {"id": 1, "tool": "shout", "args": {"text": "b"}}]
    )
    assert problems == ["task 1: the id is used twice; give every task its own id"]


def test_media_literals_go_through_the_callers_check():
    def check(kind, value):
        return None if value == "art-0123456789abcdef" else f"{value!r} is not a file of this conversation"

    problems = problems_of([{"id": 1, "tool": "caption", "args": {"image": "holiday.jpg"}}], check_media_literal=check)
    assert problems == ["task 1 (caption): argument 'image': 'holiday.jpg' is not a file of this conversation"]


def test_several_problems_are_reported_together():
    problems = problems_of(
        [
            {"id": 1, "tool": "nope", "args": {}},
            {"id": 2, "tool": "shout", "args": {}},
        ]
    )
    assert len(problems) == 2


task_strategy = st.fixed_dictionaries(
    {
        "id": st.one_of(st.none(), st.integers(-3, 6)),
        "tool": st.sampled_from(["shout", "speak", "caption", "nap", "unknown"]),
        "args": st.one_of(
            st.dictionaries(
                st.sampled_from(["text", "times", "image", "seconds", "bogus"]),
                st.one_of(
                    st.text(max_size=12),
                    st.integers(),
                    st.sampled_from(["<resource-1>", "<resource-2>", "x <resource-3> y", "<GENERATED>-0"]),
                    st.none(),
                    st.lists(st.integers(), max_size=2),
                ),
                max_size=3,
            ),
            st.lists(st.text(max_size=6), max_size=3),
        ),
    }
)


@settings(max_examples=400, deadline=None)
@given(st.lists(task_strategy, max_size=6))
def test_the_validator_never_crashes_and_always_says_why(raw):
    try:
        plan = validate_plan(raw, REG)
    except PlanValidationError as exc:
        assert exc.problems and all(p.startswith("task") for p in exc.problems)
    except PlanError as exc:  # pragma: no cover - any other plan error still needs a message
        assert str(exc)
    else:
        done = set()
        for task in plan.tasks:
            assert task.dependencies <= done
            done.add(task.id)
