"""The Ray backend on a real Ray head: placement by declared resources, faults, errors, the LLM from actors."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import cluster_tools
import pytest
import ray
from cluster_tools import registry
from llm_roles import responder, sleepy_plan
from PIL import Image as PILImage
from ray.util.state import list_actors

from patchbay import ArtifactStore, Provenance, Settings
from patchbay.cluster import PoolSize, RayBackend, RayOptions
from patchbay.cluster.batch import run_batch
from patchbay.errors import UnknownArtifactError
from patchbay.llm.client import ChatClient
from patchbay.orchestrator import Executor, Orchestrator, validate_plan
from patchbay.tools._invoke import ToolCall

pytestmark = pytest.mark.timeout(180)


# The test tools' module is not installed on the workers: its code travels by value with the specs.
ray.cloudpickle.register_pickle_by_value(cluster_tools)


def backend_for(head, workspace: Path, **pools: PoolSize) -> RayBackend:
    options = RayOptions(default_pool=PoolSize(0, 2), pools=pools, idle_timeout_s=120)
    return RayBackend(workspace, address=head.gcs_address, options=options)


def overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


async def test_half_gpu_tools_place_two_at_a_time_and_idle_actors_make_room(ray_head, tmp_path):
    reg = registry(builtins=False)
    backend = backend_for(ray_head, tmp_path, half_gpu=PoolSize(0, 4), other_half_gpu=PoolSize(0, 1))
    await backend.start()
    try:
        # One plan, four independent tasks: each asks for its own actor.
        plan = validate_plan([{"id": i, "tool": "half_gpu", "args": {"seconds": 2.0}} for i in range(1, 5)], reg)
        running = asyncio.ensure_future(Executor(reg, backend).run(plan, request_id="r"))
        while ((pool := backend.pool("half_gpu")) is None or pool.live < 2) and not running.done():
            await asyncio.sleep(0.05)
        # Ray placed two of the four actors; the other two wait for a GPU share.
        pending = [a for a in list_actors(address=ray_head.job_address) if a.state == "PENDING_CREATION"]
        assert (pool.live, pool.starting, len(pending)) == (2, 2, 2)
        results = await running
        assert [r.status for r in results.values()] == ["succeeded"] * 4
        outputs = [r.output["value"] for r in results.values()]
        assert pool.starting == 0  # once nobody waits, the pending actors are withdrawn
        assert len({o["pid"] for o in outputs}) == 2
        assert overlap([(o["start"], o["end"]) for o in outputs]) == 2
        assert {o["cuda"] for o in outputs} == {"0"}

        # Both GPU halves are held by idle half_gpu actors: one is stopped so the other tool can be placed.
        other = await asyncio.wait_for(
            backend.run(reg.get("other_half_gpu"), ToolCall("other_half_gpu", {}, "r", 9)), timeout=60
        )
        assert isinstance(other.value, int) and other.value not in {o["pid"] for o in outputs}
        assert backend.pool("half_gpu").live == 1
    finally:
        await backend.close()
    assert not ray.is_initialized()


async def test_tool_failures_are_not_retried_but_dead_workers_are_within_the_limit(ray_head, tmp_path, scripted_llm):
    reg = registry()
    store = ArtifactStore(tmp_path)
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 24), "teal").save(buf, "PNG")
    photo = store.put_bytes(buf.getvalue(), "image/png", Provenance("attachment", filename="p.png"))
    backend = backend_for(ray_head, tmp_path)
    scripted_llm.reply("Short summary.")
    backend.bind_llm(ChatClient(scripted_llm.base_url, "test", "scripted", structured="none", max_retries=0))
    await backend.start()
    try:
        plan = validate_plan(
            [
                {"id": 1, "tool": "refuse", "args": {"text": "that"}},
                {"id": 2, "tool": "crash", "args": {"text": "x"}},
                {"id": 3, "tool": "always_transient", "args": {"text": "x"}},
                {"id": 4, "tool": "needs_missing_weights", "args": {"text": "x"}},
                {"id": 5, "tool": "image_grayscale", "args": {"image": photo.id}},
                {"id": 6, "tool": "text_summarize", "args": {"text": "A long text about Ray actors."}},
            ],
            reg,
        )
        results = await Executor(reg, backend, retry_backoff_s=0.05).run(plan, request_id="r")
    finally:
        await backend.close()
    outcome = {r.tool: (r.status, r.attempts, r.error) for r in results.values()}
    assert outcome["refuse"] == ("failed", 1, "refusing 'that'")
    status, attempts, error = outcome["crash"]
    assert (status, attempts) == ("failed", 3) and "died during the call" in error
    assert outcome["always_transient"] == ("failed", 2, "upstream busy")
    status, attempts, error = outcome["needs_missing_weights"]
    assert (status, attempts) == ("failed", 1)
    assert error == (
        "needs_missing_weights could not be set up: "
        "weights for needs_missing_weights are not downloaded; run 'hf download x/y'"
    )
    gray = store.get(results[5].output["value"])
    with PILImage.open(gray.path) as img:
        assert img.mode == "L" and img.size == (32, 24)
    assert results[6].output == {"kind": "text", "value": "Short summary."}
    assert "A long text about Ray actors." in json.dumps(scripted_llm.requests[-1]["messages"])


async def test_an_unknown_handle_is_the_tools_input_error_not_a_ray_error(ray_head, tmp_path):
    reg = registry()
    backend = backend_for(ray_head, tmp_path)
    await backend.start()
    try:
        with pytest.raises(UnknownArtifactError, match="no artifact art-0123456789abcdef"):
            await backend.run(
                reg.get("image_grayscale"), ToolCall("image_grayscale", {"image": "art-0123456789abcdef"}, "r", 1)
            )
    finally:
        await backend.close()


async def test_killing_an_actor_mid_batch_loses_no_item(ray_head, tmp_path, scripted_llm):
    scripted_llm.respond_with(responder(sleepy_plan(1.0), answer="Slept: <resource-1>"))
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps({"id": f"n{i}", "request": f"[item-{i}] nap"}) + "\n" for i in range(6)))
    settings = Settings(base_url=scripted_llm.base_url, api_key="test", model="scripted", workspace=tmp_path / "ws")
    backend = backend_for(ray_head, tmp_path / "ws", sleepy=PoolSize(0, 3))
    killed: list[int] = []

    async def kill_one_busy_actor() -> None:
        while True:
            await asyncio.sleep(0.1)
            pool = backend.pool("sleepy")
            busy = pool.handles(busy=True) if pool else []
            if len(busy) >= 2:
                await asyncio.sleep(0.3)  # well inside a 1 s call
                victim = pool.handles(busy=True)[0]
                killed.append(1)
                ray.kill(victim, no_restart=True)
                return

    async with Orchestrator(settings, registry=registry(), backend=backend) as patchbay:
        summary, _ = await asyncio.gather(
            run_batch(requests, tmp_path / "out", patchbay, concurrency=3, echo=lambda line: None),
            kill_one_busy_actor(),
        )
        assert backend.pool("sleepy").live >= 1  # replaced
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert killed and summary["succeeded"] == 6 and summary["failed"] == 0
    assert sorted(r["id"] for r in records) == [f"n{i}" for i in range(6)]
    assert all(r["status"] == "succeeded" for r in records)
    retried = [t for r in records for t in r["tasks"] if t["attempts"] > 1]
    assert len(retried) >= 1 and summary["tasks_retried"] == len(retried)
    assert all(r["answer"] == f"Slept: item-{r['id'][1:]}" for r in records)


async def test_a_busy_actor_queues_calls_and_a_death_there_loses_none_of_them(ray_head, tmp_path):
    reg = registry(builtins=False)
    options = RayOptions(pools={"sleepy": PoolSize(1, 1)}, idle_timeout_s=120, queue_per_actor=2)
    backend = RayBackend(tmp_path, address=ray_head.gcs_address, options=options)
    await backend.start()
    try:
        plan = validate_plan(
            [{"id": i, "tool": "sleepy", "args": {"text": f"t{i}", "seconds": 1.5}} for i in (1, 2, 3)], reg
        )
        running = asyncio.ensure_future(Executor(reg, backend, retry_backoff_s=0.05).run(plan, request_id="r"))
        # One actor, three calls: one runs, one waits in the actor's mailbox, one waits in the pool.
        while (pool := backend.pool("sleepy")) is None or not pool.handles(busy=True):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        (victim,) = pool.handles(busy=True)
        assert pool.in_flight == 2
        ray.kill(victim, no_restart=True)
        results = await running
    finally:
        await backend.close()
    assert [(r.status, r.output["value"]) for r in results.values()] == [("succeeded", f"t{i}") for i in (1, 2, 3)]
    assert sorted(r.attempts for r in results.values()) == [1, 2, 2]
