"""Real Ray jobs: ``patchbay batch --address`` and ``ray job submit``, a stopped job resumed; ``run --backend ray``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llm_roles import grayscale_plan, planner_tags, responder, role
from PIL import Image as PILImage
from ray.job_submission import JobSubmissionClient
from support.scripted_openai import ScriptedReply

pytestmark = pytest.mark.timeout(240)


def command(*argv: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def read_results(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def job_dir(tmp_path) -> Path:
    """The folder uploaded as the job's working directory: requests and their pictures."""
    folder = tmp_path / "job"
    folder.mkdir()
    for i, colour in enumerate(("red", "green", "blue", "orange")):
        PILImage.new("RGB", (20 + i, 12), colour).save(folder / f"p{i}.png")
    return folder


def test_a_stopped_job_resubmitted_resumes_and_completes_every_item_once(ray_head, scripted_llm, job_dir, tmp_path):
    def slow_planner(request):
        reply = responder(grayscale_plan, answer="Gray: <resource-1>")(request)
        return ScriptedReply(reply, delay_s=0.8) if role(request) == "planner" else reply

    scripted_llm.respond_with(slow_planner)
    rows = [{"id": f"r{i}", "request": f"[item-{i}] gray", "attachments": [f"p{i % 4}.png"]} for i in range(8)]
    rows.insert(3, {"id": "bad", "request": "[item-99] gray", "attachments": ["missing.png"]})
    (job_dir / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    env = ray_head.env(**scripted_llm.env, PATCHBAY_RAY_POOLS="image_grayscale=0:2")

    # 1. `patchbay batch --address` submits the job and follows its log; the job is stopped after two items.
    follower = subprocess.Popen(
        [sys.executable, "-m", "patchbay", "batch", "requests.jsonl", "--out", str(out),
         "--address", ray_head.job_address, "--concurrency", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=job_dir,
    )  # fmt: skip
    try:
        submitted = None
        while submitted is None and (line := follower.stdout.readline()):
            submitted = re.search(r"submitted Ray job (raysubmit_[A-Za-z0-9]+)", line)
        job_id = submitted.group(1)
        deadline = time.monotonic() + 120
        while len(read_results(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped = JobSubmissionClient(ray_head.job_address).stop_job(job_id)  # what `ray job stop` sends
        assert stopped, f"the job ended before it was stopped:\n{follower.communicate(timeout=60)[0][-3000:]}"
        followed, _ = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 1  # the job did not finish
    assert "batch: 9 items, 0 already done, 9 to run, 1 at a time" in followed  # the job's log, followed
    assert f"Ray job {job_id} ended STOPPED" in followed
    done_first = [r["id"] for r in read_results(out)]
    assert 2 <= len(done_first) < 9, done_first
    planned_first = len(planner_tags(scripted_llm.requests))

    # 2. The same batch through plain `ray job submit`: it resumes and finishes.
    runtime_env = json.dumps({"env_vars": {**scripted_llm.env, "PATCHBAY_RAY_POOLS": "image_grayscale=0:2"}})
    second = command(
        "ray", "job", "submit", f"--address={ray_head.job_address}", "--working-dir", ".",
        f"--runtime-env-json={runtime_env}", "--",
        "python", "-m", "patchbay.cluster.batch", "requests.jsonl", "--out", str(out), "--concurrency", "2",
        env=env, cwd=job_dir,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"batch: 9 items, {len(done_first)} already done" in second.stdout

    records = read_results(out)
    ids = [r["id"] for r in records]
    assert sorted(ids) == sorted(["bad", *(f"r{i}" for i in range(8))]) and len(ids) == len(set(ids))
    tags_second = planner_tags(scripted_llm.requests)[planned_first:]
    finished_first = {f"item-{i[1:]}" if i != "bad" else "item-99" for i in done_first}
    assert not finished_first & set(tags_second)  # items done before the stop were not planned again
    by_id = {r["id"]: r for r in records}
    for i in range(8):
        record = by_id[f"r{i}"]
        assert record["status"] == "succeeded", record
        (artifact,) = record["artifacts"]
        assert Path(artifact["path"]).is_relative_to(out / "workspace")
        with PILImage.open(artifact["path"]) as img:  # written by a Ray actor into the shared workspace
            assert img.mode == "L" and img.size == (20 + i % 4, 12)
        assert record["answer"] == f"Gray: {artifact['id']}"
    assert by_id["bad"]["status"] == "failed" and "missing.png does not exist" in by_id["bad"]["error"]
    (error,) = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert error["id"] == "bad"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["succeeded"], summary["failed"], summary["not_done"]) == (8, 1, 0)
    assert (summary["skipped_as_done"], summary["interrupted"]) == (len(done_first), False)


def test_run_with_the_ray_backend_and_no_address_starts_a_local_ray(ray_head, scripted_llm, job_dir, tmp_path):
    scripted_llm.respond_with(responder(grayscale_plan, answer="Here: <resource-1>"))
    env = {k: v for k, v in ray_head.env(**scripted_llm.env).items() if not k.startswith("PATCHBAY_")}
    env["PATCHBAY_WORKSPACE"] = str(tmp_path / "ws")
    out = tmp_path / "files"
    result = command(
        sys.executable,
        "-m",
        "patchbay",
        "run",
        "[item-1] make p1.png gray",
        "--attach",
        "p1.png",
        "--backend",
        "ray",
        "--out",
        str(out),
        env=env,
        cwd=job_dir,
    )
    assert result.returncode == 0, result.stderr
    (written,) = out.iterdir()
    with PILImage.open(written) as img:
        assert img.mode == "L" and img.size == (21, 12)
    assert result.stdout.startswith(f"Here: {written.stem}")
