"""The ``patchbay`` command as a user runs it: a real process, a real HTTP endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llm_script import RoleScript, handles_in_prompt
from PIL import Image as PILImage

TASKBENCH_TOOLS = Path(__file__).resolve().parents[3] / "shared" / "taskbench" / "tool_desc.json"


def patchbay(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PATCHBAY_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "patchbay", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


@pytest.fixture
def env(scripted_llm, tmp_path):
    return {**scripted_llm.env, "PATCHBAY_WORKSPACE": str(tmp_path / "ws")}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    PILImage.new("RGB", (64, 32), "purple").save(path)
    return path


def grayscale_then_resize(request):
    handle = handles_in_prompt(request)[-1]
    return json.dumps(
        {
            "tasks": [
                {"id": 1, "tool": "image_grayscale", "args": {"image": handle}},
                {"id": 2, "tool": "image_resize", "args": {"image": "<resource-1>", "width": 16}},
            ]
        }
    )


def test_run_prints_plan_progress_and_answer_and_writes_the_file(scripted_llm, env, photo, tmp_path):
    scripted_llm.respond_with(RoleScript().plan(grayscale_then_resize).answer("Here is your picture: <resource-2>"))
    out = tmp_path / "out"
    result = patchbay("run", "make photo.png gray and small", "--attach", str(photo), "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert "plan: 2 tasks" in result.stderr
    assert "[1] image_grayscale(image=art-" in result.stderr
    assert "[2] image_resize done in" in result.stderr
    files = list(out.iterdir())
    assert len(files) == 1 and files[0].suffix == ".png"
    with PILImage.open(files[0]) as img:
        assert img.size == (16, 8) and img.mode == "L"
    assert result.stdout.startswith(f"Here is your picture: {files[0].stem}")


def test_plan_is_a_dry_run_over_spec_only_tools(scripted_llm, env):
    scripted_llm.respond_with(
        RoleScript().plan(
            {
                "tasks": [
                    {"id": 1, "tool": "Video-to-Audio", "args": ["example.mp4"]},
                    {"id": 2, "tool": "Audio-to-Text", "args": ["<resource-1>"]},
                ]
            }
        )
    )
    result = patchbay("plan", "transcribe example.mp4", "--tools", str(TASKBENCH_TOOLS), env=env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["tasks"][1] == {"id": 2, "tool": "Audio-to-Text", "args": {"audio": "<resource-1>"}}
    assert len(scripted_llm.requests) == 1  # planned, never executed or composed


def test_tools_lists_the_catalog_with_provenance():
    result = patchbay("tools", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["image_resize"]["source"] == "patchbay" and rows["image_resize"]["available"]
    assert rows["image_resize"]["signature"].startswith("image: image")
    assert "cpu" in rows["audio_trim"]["resources"]


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    errors = [line for line in lines if line.startswith("patchbay: error: ")]
    assert errors == lines[-1:], result.stderr  # progress may precede it; the error is the one last line
    assert "Traceback" not in result.stderr
    return errors[0]


def test_a_missing_attachment(env, tmp_path):
    line = _one_error_line(patchbay("run", "describe it", "--attach", str(tmp_path / "nope.png"), env=env))
    assert "nope.png does not exist" in line


def test_a_text_file_named_png_leaves_nothing_half_written(env, tmp_path, photo):
    liar = tmp_path / "notes.png"
    liar.write_text("hello")
    line = _one_error_line(patchbay("run", "describe it", "--attach", str(photo), "--attach", str(liar), env=env))
    assert "claims to be image/png but its content is text/plain" in line
    leftovers = [p for p in (tmp_path / "ws").rglob("*") if p.is_file() and p.name != "conversations.sqlite"]
    assert leftovers == []


def test_an_unreachable_endpoint(tmp_path):
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "x", "PATCHBAY_WORKSPACE": str(tmp_path)}
    line = _one_error_line(patchbay("run", "hello", env=env))
    assert "cannot reach the LLM at http://127.0.0.1:9/v1" in line


def test_a_model_that_returns_garbage(scripted_llm, env):
    scripted_llm.respond_with(RoleScript().plan("%%%", "no idea", "<<<>>>"))
    line = _one_error_line(patchbay("run", "hello", env=env))
    assert "no valid plan after 3 attempts" in line


def test_a_path_outside_the_workspace(scripted_llm, env):
    escape = {"tasks": [{"id": 1, "tool": "image_grayscale", "args": {"image": "/etc/passwd"}}]}
    scripted_llm.respond_with(RoleScript().plan(escape, escape, escape))
    line = _one_error_line(patchbay("run", "make /etc/passwd gray", env=env))
    assert "'/etc/passwd' is not a file of this conversation" in line


def test_bad_configuration_is_one_line(env):
    line = _one_error_line(patchbay("run", "hello", env={**env, "PATCHBAY_STRUCTURED_OUTPUT": "yaml"}))
    assert "PATCHBAY_STRUCTURED_OUTPUT='yaml'" in line
