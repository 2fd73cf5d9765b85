"""The batch runner itself, with tools in-process: input checks, attachments, threads, resuming exactly once."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from llm_roles import grayscale_plan, item_tag, planner_tags, responder, role, sleepy_plan, user_text
from PIL import Image as PILImage
from support.scripted_openai import ScriptedReply

from patchbay import Settings
from patchbay.cluster.batch import run_batch
from patchbay.cluster.batch_items import read_items
from patchbay.cluster.batch_log import ResultLog
from patchbay.errors import InputError
from patchbay.orchestrator import Orchestrator


def settings_for(server, tmp_path: Path) -> Settings:
    return Settings(base_url=server.base_url, api_key="test", model="scripted", workspace=tmp_path / "ws")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def read_results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, colour in (("red.png", "red"), ("blue.png", "blue")):
        PILImage.new("RGB", (24, 16), colour).save(folder / name)
    return folder


@pytest.fixture
def file_server(photos):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(photos))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_every_line_gets_one_result_and_bad_ones_only_cost_themselves(
    scripted_llm, tmp_path, photos, file_server
):
    scripted_llm.respond_with(responder(grayscale_plan, answer="Gray: <resource-1>"))
    requests = write_jsonl(
        photos / "requests.jsonl",
        [
            {"id": "path", "request": "[item-1] gray", "attachments": ["red.png"]},
            {"id": "url", "request": "[item-2] gray", "attachments": [f"{file_server}/blue.png"]},
            {"id": "uri", "request": "[item-3] gray", "attachments": [(photos / "red.png").as_uri()]},
            {"id": "missing", "request": "[item-4] gray", "attachments": ["nowhere.png"]},
            {"id": "s3", "request": "[item-5] gray", "attachments": ["s3://bucket/x.png"]},
            {"id": "gone", "request": "[item-6] gray", "attachments": [f"{file_server}/gone.png"]},
            "{not json",
            {"id": "empty", "request": "  ", "colour": "red"},
            {"id": 7, "request": "[item-7] just chat"},
        ],
    )
    out = tmp_path / "out"
    lines: list[str] = []
    async with Orchestrator(settings_for(scripted_llm, tmp_path)) as patchbay:
        summary = await run_batch(requests, out, patchbay, concurrency=3, echo=lines.append)
    records = {r["id"]: r for r in read_results(out)}
    assert sorted(records) == sorted(["path", "url", "uri", "missing", "s3", "gone", "line-7", "empty", "7"])
    for item in ("path", "url", "uri"):
        record = records[item]
        assert record["status"] == "succeeded" and record["tasks"][0]["tool"] == "image_grayscale"
        (artifact,) = record["artifacts"]
        assert record["answer"] == f"Gray: {artifact['id']}"
        with PILImage.open(artifact["path"]) as img:
            assert img.mode == "L" and img.size == (24, 16)
        assert record["tasks"][0]["seconds"] >= 0 and record["plan"]["tasks"][0]["tool"] == "image_grayscale"
    assert "does not exist" in records["missing"]["error"]
    assert "s3:// is not supported" in records["s3"]["error"]
    assert records["gone"]["error"].startswith(f"cannot download attachment {file_server}/gone.png: HTTP Error 404")
    assert records["line-7"]["error"].startswith("line 7 is not JSON")
    assert '"request" must be a non-empty string' in records["empty"]["error"]
    assert "unknown field(s) colour" in records["empty"]["error"]
    assert records["7"]["status"] == "succeeded" and records["7"]["tasks"] == []
    # Only the runnable items reached the planner, each once.
    assert sorted(planner_tags(scripted_llm.requests)) == ["item-1", "item-2", "item-3", "item-7"]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["id"] for e in errors) == ["empty", "gone", "line-7", "missing", "s3"]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (summary["items"], summary["succeeded"], summary["failed"], summary["not_done"]) == (9, 4, 5, 0)
    assert lines[0] == "batch: 9 items, 0 already done, 9 to run, 3 at a time"
    assert sum(line.startswith("[") for line in lines) == 9 and lines[-1].startswith("batch done: 4 succeeded")


async def test_an_interrupted_batch_resumes_and_runs_no_item_twice(scripted_llm, tmp_path):
    scripted_llm.respond_with(
        lambda request: (
            ScriptedReply(responder(sleepy_plan(0.0))(request), delay_s=0.15) if role(request) == "planner" else "ok"
        )
    )
    requests = write_jsonl(
        tmp_path / "requests.jsonl", [{"id": f"r{i}", "request": f"[item-{i}] nap"} for i in range(8)]
    )
    out = tmp_path / "out"
    settings = settings_for(scripted_llm, tmp_path)
    from cluster_tools import registry

    async with Orchestrator(settings, registry=registry(builtins=False)) as patchbay:
        first = asyncio.ensure_future(run_batch(requests, out, patchbay, concurrency=2, echo=lambda line: None))
        while not (out / "results.jsonl").exists() or len(read_results(out)) < 3:
            await asyncio.sleep(0.02)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    done_first = [r["id"] for r in read_results(out)]
    assert 3 <= len(done_first) < 8
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    # A kill in the middle of writing leaves half a line: it is cut off, not counted as done.
    with open(out / "results.jsonl", "a") as fh:
        fh.write('{"id": "r7", "status": "succ')
    seen_before = len(scripted_llm.requests)

    lines: list[str] = []
    async with Orchestrator(settings, registry=registry(builtins=False)) as patchbay:
        summary = await run_batch(requests, out, patchbay, concurrency=2, echo=lines.append)
    ids = [r["id"] for r in read_results(out)]
    assert sorted(ids) == [f"r{i}" for i in range(8)] and len(ids) == len(set(ids))
    second_run = planner_tags(scripted_llm.requests[seen_before:])
    assert not {f"item-{i[1:]}" for i in done_first} & set(second_run)
    assert lines[0] == f"batch: 8 items, {len(done_first)} already done, {8 - len(done_first)} to run, 2 at a time"
    assert (summary["succeeded"], summary["skipped_as_done"], summary["interrupted"]) == (8, len(done_first), False)


async def test_items_of_one_thread_run_in_order_as_one_conversation(scripted_llm, tmp_path, photos):
    def plan(request):
        if item_tag(request) == "item-2":
            assert "Earlier in this conversation" in user_text(request)
        return grayscale_plan(request) if item_tag(request) == "item-1" else {"tasks": []}

    scripted_llm.respond_with(responder(plan, answer="ok"))
    requests = write_jsonl(
        photos / "requests.jsonl",
        [
            {"id": "first", "request": "[item-1] gray", "attachments": ["red.png"], "thread_id": "chat"},
            {"id": "second", "request": "[item-2] what did you do?", "thread_id": "chat"},
        ],
    )
    async with Orchestrator(settings_for(scripted_llm, tmp_path)) as patchbay:
        summary = await run_batch(requests, tmp_path / "out", patchbay, concurrency=4, echo=lambda line: None)
    assert summary["succeeded"] == 2
    assert planner_tags(scripted_llm.requests) == ["item-1", "item-2"]
    assert {r["thread_id"] for r in read_results(tmp_path / "out")} == {"chat"}


def test_duplicate_ids_and_a_busy_output_folder_are_refused_up_front(tmp_path):
    requests = write_jsonl(
        tmp_path / "r.jsonl", [{"id": "a", "request": "x"}, {"request": "y"}, {"id": "a", "request": "z"}]
    )
    with pytest.raises(InputError, match="every request needs its own id, but 'a' on lines 1 and 3"):
        read_items(requests)
    with ResultLog(tmp_path / "out"), pytest.raises(InputError, match="another batch .* is writing to"):
        ResultLog(tmp_path / "out").__enter__()


def test_patchbay_batch_without_an_address_runs_here_and_a_rerun_does_nothing_again(scripted_llm, tmp_path, photos):
    scripted_llm.respond_with(responder(grayscale_plan, answer="ok"))
    rows = [
        {"id": "a", "request": "[item-1] gray", "attachments": ["red.png"]},
        {"id": "b", "request": "[item-2] gray", "attachments": ["nope.png"]},
    ]
    write_jsonl(photos / "requests.jsonl", rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PATCHBAY_"))}
    env.update(scripted_llm.env)
    argv = [sys.executable, "-m", "patchbay", "batch", "requests.jsonl", "--out", str(tmp_path / "out")]
    argv += ["--backend", "in-process"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=photos, timeout=120)
    assert first.returncode == 3, first.stderr  # an answer for every item, but one item failed
    assert "[2/2]" in first.stdout and "batch done: 1 succeeded, 0 partial, 1 failed" in first.stdout
    planned = len(planner_tags(scripted_llm.requests))
    again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=photos, timeout=120)
    assert again.returncode == 3 and "batch: 2 items, 2 already done, 0 to run" in again.stdout
    assert len(planner_tags(scripted_llm.requests)) == planned
    assert (tmp_path / "out" / "workspace" / "artifacts").is_dir()
