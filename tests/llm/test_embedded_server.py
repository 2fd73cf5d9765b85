"""The embedded llama.cpp server, started for real and reached through the ``openai`` client.

SmolLM2-135M serves the smoke tests (it loads in about a second); one test runs
the real default planner, Qwen2.5-Coder-1.5B, for a schema-constrained answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from patchbay.errors import ConfigError, LLMError
from patchbay.llm import EmbeddedServer, embedded, start_embedded
from patchbay.llm.client import ChatClient

# Bounded values only, so a small max_tokens cannot cut the JSON short.
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "enum": ["yes", "no"]},
        "sure": {"type": "boolean"},
    },
    "required": ["answer", "sure"],
}


def _gone(pid: int) -> bool:
    """Whether a process no longer runs (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _client(server: EmbeddedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)


def _check_answer(content: str | None) -> dict:
    data = json.loads(content or "")
    assert set(data) == {"answer", "sure"}
    assert data["answer"] in ("yes", "no")
    assert isinstance(data["sure"], bool)
    return data


# --- no server needed -------------------------------------------------------


def test_importing_patchbay_llm_does_not_import_llama_cpp():
    code = "import sys, patchbay.llm; assert 'llama_cpp' not in sys.modules, 'llama_cpp was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_start_without_llama_cpp_names_the_install_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "_missing_server_modules", lambda: ["llama_cpp", "uvicorn"])
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")

    with pytest.raises(ConfigError) as caught:
        EmbeddedServer(model, model_alias="m", log_path=tmp_path / "log").start()
    assert "llama_cpp" in str(caught.value)
    assert 'pip install "patchbay[embedded]"' in str(caught.value)


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="n_threads"):
        EmbeddedServer(tmp_path / "m.gguf", model_alias="m", n_threads=0)
    with pytest.raises(ConfigError, match="does not exist"):
        EmbeddedServer(tmp_path / "missing.gguf", model_alias="m", log_path=tmp_path / "log").start()


def test_base_url_needs_a_port(tmp_path):
    server = EmbeddedServer(tmp_path / "m.gguf", model_alias="m")
    with pytest.raises(LLMError, match="start"):
        _ = server.base_url
    fixed = EmbeddedServer(tmp_path / "m.gguf", model_alias="m", host="::1", port=8123)
    assert fixed.base_url == "http://[::1]:8123/v1"


def test_default_threads_is_at_least_one():
    assert embedded.default_threads() >= 1
    assert EmbeddedServer(Path("m.gguf"), model_alias="m").n_threads == embedded.default_threads()


# --- the real server with SmolLM2-135M -------------------------------------


@pytest.fixture(scope="module")
def smol_server(llama_server, smollm2_path, tmp_path_factory):
    server = EmbeddedServer(
        smollm2_path,
        model_alias="smollm2-135m",
        n_ctx=2048,
        n_threads=2,
        log_path=tmp_path_factory.mktemp("logs") / "smollm2.log",
    )
    with server:
        yield server


@pytest.mark.embedded
def test_chat_completion_returns_text(smol_server):
    reply = _client(smol_server).chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=16,
        temperature=0,
    )
    content = reply.choices[0].message.content
    assert isinstance(content, str) and content.strip()


@pytest.mark.embedded
def test_json_object_with_schema_is_enforced(smol_server):
    # llama_cpp.server answers HTTP 500 to {"type": "json_schema", ...}; this form reaches the grammar.
    reply = _client(smol_server).chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Is the sky blue? Answer in JSON."}],
        response_format={"type": "json_object", "schema": ANSWER_SCHEMA},  # type: ignore[typeddict-unknown-key]
        max_tokens=48,
        temperature=0,
    )
    _check_answer(reply.choices[0].message.content)


@pytest.mark.embedded
def test_stop_ends_the_process_and_inherited_server_settings_are_ignored(
    llama_server, smollm2_path, tmp_path, monkeypatch
):
    # llama_cpp.server reads its settings from the environment too; none of these may leak in.
    monkeypatch.setenv("API_KEY", "sekrit")
    monkeypatch.setenv("HOST", "192.0.2.1")
    monkeypatch.setenv("PORT", "9")
    monkeypatch.setenv("N_CTX", "1")
    server = EmbeddedServer(smollm2_path, model_alias="smol", n_ctx=512, n_threads=2, log_path=tmp_path / "s.log")
    with server:
        pid = server.pid
        assert pid is not None and server.running
        assert [m.id for m in _client(server).models.list()] == ["smol"]
        # Sleeping OpenMP waits: spinning threads starve when a tool holds a core.
        assert b"OMP_WAIT_POLICY=PASSIVE" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert server.start() is server  # already running: a no-op
    assert not server.running
    assert _gone(pid)
    server.stop()  # stopping twice is harmless


@pytest.mark.embedded
def test_server_dies_with_its_parent_even_when_started_from_a_thread(llama_server, smollm2_path, tmp_path):
    script = f"""
import sys, threading, time
from pathlib import Path
from patchbay.llm.client import ChatClient
from patchbay.llm import EmbeddedServer
server = EmbeddedServer(Path({str(smollm2_path)!r}), model_alias="smol", n_ctx=512, n_threads=1,
                        log_path=Path({str(tmp_path / "orphan.log")!r}))
worker = threading.Thread(target=server.start)
worker.start(); worker.join()
print(server.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line.strip().isdigit(), f"the parent did not start a server: {line!r}"
        server_pid = int(line)
        assert not _gone(server_pid)
        parent.send_signal(signal.SIGKILL)  # no atexit, no cleanup: only the watchdog can act
        parent.wait()
        assert _wait_gone(server_pid, timeout_s=15), "the server outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.embedded
def test_a_bad_model_file_fails_fast_with_the_log_tail(llama_server, tmp_path):
    model = tmp_path / "broken.gguf"
    model.write_bytes(b"this is not a gguf file" * 100)
    server = EmbeddedServer(model, model_alias="broken", n_threads=1, log_path=tmp_path / "broken.log")

    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        server.start()

    message = str(caught.value)
    assert "exited with code" in message
    assert str(tmp_path / "broken.log") in message
    assert time.monotonic() - started < 60  # it failed on the exit, not on the 180 s timeout
    assert not server.running


# --- the real default planner ----------------------------------------------


@pytest.mark.embedded
def test_qwen_answers_a_schema_constrained_request(llama_server, qwen_path, tmp_path):
    schema = {
        "type": "object",
        "properties": {"tool": {"type": "string", "enum": ["speech_to_text", "text_to_speech", "image_caption"]}},
        "required": ["tool"],
    }
    server = start_embedded(n_threads=2, n_ctx=2048, log_path=tmp_path / "qwen.log", progress=False)
    try:
        assert server.model_path == qwen_path
        reply = _client(server).chat.completions.create(
            model="qwen2.5-coder-1.5b",
            messages=[
                {"role": "system", "content": "You pick the one tool that fits the request. Answer in JSON."},
                {"role": "user", "content": "Transcribe the attached recording meeting.wav."},
            ],
            response_format={"type": "json_object", "schema": schema},  # type: ignore[typeddict-unknown-key]
            max_tokens=24,
            temperature=0,
        )
        data = json.loads(reply.choices[0].message.content or "")
        assert data["tool"] in schema["properties"]["tool"]["enum"]
    finally:
        pid = server.pid
        server.stop()
    assert pid is not None and _gone(pid)


@pytest.mark.embedded
def test_prefill_prompts_match_the_models_own_chat_template(smol_server):
    # The prefill mode writes ChatML itself; the same conversation must reach the model as the
    # server's own template (the GGUF's) renders it, so greedy replies agree token for token.
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
    ]
    chat = ChatClient(smol_server.base_url, "none", "smollm2-135m", structured="none", max_retries=0)
    prefill = ChatClient(smol_server.base_url, "none", "smollm2-135m", structured="prefill", max_retries=0)
    assert prefill.complete(messages, prefix="", max_tokens=12) == chat.complete(messages, max_tokens=12)
    begun = prefill.complete(messages, prefix='{"colour": "', max_tokens=12)
    assert begun.startswith('{"colour": "') and len(begun) > len('{"colour": "')
