"""The executor: ready tasks overlap, failures stop only their descendants, transient ones retry."""

from __future__ import annotations

import pytest
from plan_tools import make_flaky, registry

from patchbay import ArtifactStore
from patchbay.orchestrator import Executor, InProcessBackend, validate_plan
from patchbay.orchestrator.events import TaskFailed, TaskFinished, TaskSkipped, TaskStarted


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path)


async def run(raw, store, reg=None, **executor_options):
    reg = reg or registry()
    plan = validate_plan(raw, reg)
    events = []
    backend = InProcessBackend(store)
    try:
        results = await Executor(reg, backend, **executor_options).run(plan, request_id="r", emit=events.append)
    finally:
        await backend.close()
    return results, events


def intervals(events):
    starts = {e.task_id: e.at for e in events if isinstance(e, TaskStarted)}
    ends = {e.task_id: e.at for e in events if isinstance(e, (TaskFinished, TaskFailed))}
    return {tid: (starts[tid], ends[tid]) for tid in ends}


@pytest.mark.parametrize("tool", ["nap", "async_nap"])
async def test_independent_tasks_overlap(store, tool):
    raw = [{"id": i, "tool": tool, "args": {"text": str(i), "seconds": 0.3}} for i in (1, 2, 3)]
    results, events = await run(raw, store)
    assert all(r.status == "succeeded" for r in results.values())
    spans = intervals(events)
    # Every task started before any other finished: they ran at the same time.
    assert max(start for start, _ in spans.values()) < min(end for _, end in spans.values())


async def test_a_dependent_task_starts_only_after_its_input_is_ready(store):
    raw = [
        {"id": 1, "tool": "nap", "args": {"text": "a", "seconds": 0.2}},
        {"id": 2, "tool": "shout", "args": {"text": "<resource-1> and more"}},
    ]
    results, events = await run(raw, store)
    spans = intervals(events)
    assert spans[2][0] >= spans[1][1]
    assert results[2].output == {"kind": "text", "value": "A AND MORE"}
    assert results[2].args == {"text": "a and more"}


async def test_a_failure_skips_only_its_descendants(store):
    raw = [
        {"id": 1, "tool": "explode", "args": {"text": "bad"}},
        {"id": 2, "tool": "shout", "args": {"text": "<resource-1>"}},
        {"id": 3, "tool": "speak", "args": {"text": "<resource-2>"}},
        {"id": 4, "tool": "nap", "args": {"text": "independent", "seconds": 0.2}},
        {"id": 5, "tool": "shout", "args": {"text": "<resource-4>"}},
    ]
    results, events = await run(raw, store)
    assert results[1].status == "failed" and results[1].error == "cannot handle 'bad'"
    assert results[1].attempts == 1  # a tool's own failure is not retried
    assert results[2].status == results[3].status == "skipped"
    assert results[2].error == "task 1 (explode) failed: cannot handle 'bad'"
    assert results[3].error == results[2].error  # the root cause, not "task 2 was skipped"
    assert results[4].status == results[5].status == "succeeded"
    assert results[5].output["value"] == "INDEPENDENT"
    assert {e.task_id for e in events if isinstance(e, TaskSkipped)} == {2, 3}


async def test_transient_failures_are_retried(store):
    reg = registry()
    flaky, calls = make_flaky(failures=2)
    reg.add(flaky)
    results, events = await run([{"id": 1, "tool": "flaky", "args": {"text": "ok"}}], store, reg, retry_backoff_s=0.01)
    assert results[1].status == "succeeded" and results[1].attempts == 3 and calls["n"] == 3
    failures = [e for e in events if isinstance(e, TaskFailed)]
    assert [e.will_retry for e in failures] == [True, True]


async def test_retries_are_bounded(store):
    reg = registry()
    flaky, calls = make_flaky(failures=10)
    reg.add(flaky)
    results, _ = await run([{"id": 1, "tool": "flaky", "args": {"text": "ok"}}], store, reg, retry_backoff_s=0.01)
    assert results[1].status == "failed" and calls["n"] == 4  # 1 + retries=3
    assert "worker lost" in results[1].error


async def test_a_task_past_its_timeout_fails_and_its_branch_stops(store):
    raw = [
        {"id": 1, "tool": "async_nap", "args": {"text": "slow", "seconds": 5}},
        {"id": 2, "tool": "shout", "args": {"text": "<resource-1>"}},
        {"id": 3, "tool": "shout", "args": {"text": "fine"}},
    ]
    results, _ = await run(raw, store, default_timeout_s=0.2, transient_retries=1, retry_backoff_s=0.01)
    assert results[1].status == "failed" and "timed out after 0.2 s" in results[1].error
    assert results[1].attempts == 2
    assert results[2].status == "skipped" and results[3].status == "succeeded"


async def test_media_flows_between_tasks_by_handle(store, tmp_path):
    from PIL import Image as PILImage

    from patchbay import Provenance

    path = tmp_path / "in.png"
    PILImage.new("RGB", (20, 10)).save(path)
    photo = store.put_file(path, Provenance("attachment", filename="in.png"))
    raw = [
        {"id": 1, "tool": "caption", "args": {"image": photo.id}},
        {"id": 2, "tool": "speak", "args": {"text": "<resource-1>"}},
    ]
    results, _ = await run(raw, store)
    assert results[1].output == {"kind": "text", "value": "a 20x10 picture"}
    audio = store.get(results[2].output["value"])
    assert audio.mime == "audio/wav"
    assert audio.provenance[0].task_id == 2 and audio.provenance[0].tool == "speak"


async def test_wrong_media_kind_at_the_boundary_is_an_input_error(store, tmp_path):
    wav = store.put_bytes(
        b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav", __import__("patchbay").Provenance("task", "r", 1, "x")
    )
    results, _ = await run([{"id": 1, "tool": "caption", "args": {"image": wav.id}}], store)
    assert results[1].status == "failed"
    assert "expects image" in results[1].error and "audio/wav" in results[1].error


async def test_a_class_tool_is_set_up_once_and_serves_every_call(store):
    from patchbay import Tool

    setups = []

    class Counter(Tool):
        """Counts calls on one loaded instance."""

        name = "counter"

        def setup(self) -> None:
            setups.append(1)
            self.calls = 0

        def run(self, text: str) -> str:
            """Count a call.

            Args:
                text: a label.
            """
            self.calls += 1
            return f"{text}:{self.calls}"

    reg = registry()
    reg.add(Counter)
    raw = [{"id": i, "tool": "counter", "args": {"text": f"t{i}"}} for i in range(1, 6)]
    results, _ = await run(raw, store, reg)
    assert len(setups) == 1
    assert sorted(int(r.output["value"].split(":")[1]) for r in results.values()) == [1, 2, 3, 4, 5]
