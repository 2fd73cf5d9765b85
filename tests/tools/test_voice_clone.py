"""voice_clone against a local server that keeps GPT-SoVITS api_v2's /tts contract, and returns a real WAV."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
import soundfile
from speech_samples import convert, espeak
from support.sovits_server import OUTPUT_RATE, SECONDS_PER_WORD, SovitsServer

from patchbay import File, Provenance
from patchbay.errors import InputError, ToolError
from patchbay.tools import ToolContext
from patchbay.tools.builtin.voice_clone import VoiceClone

REFERENCE_TEXT = "Hello, this is my own voice, recorded for a short test."
TEXT = "Please call me back tomorrow"


@pytest.fixture
def sovits(monkeypatch):
    with SovitsServer() as server:
        monkeypatch.setenv("PATCHBAY_GPT_SOVITS_URL", server.url)
        for name in ("SHARED_DIR", "SERVER_DIR"):
            monkeypatch.delenv(f"PATCHBAY_GPT_SOVITS_{name}", raising=False)
        yield server


@pytest.fixture(scope="module")
def my_voice(tmp_path_factory) -> Path:
    """About four seconds of a voice, the length GPT-SoVITS wants for a reference."""
    path = espeak(REFERENCE_TEXT, tmp_path_factory.mktemp("voice") / "ref.wav", words_per_minute=150)
    assert 3 <= soundfile.info(path).duration <= 10
    return path


def clone_tool() -> VoiceClone:
    tool = VoiceClone()
    tool.setup()
    return tool


def context(store) -> ToolContext:
    return ToolContext("req-1", 1, store)


def test_the_users_voice_is_cloned_through_the_api(sovits, store, my_voice):
    reference = File(store.put_file(my_voice))  # stored as an attachment, as the orchestrator stores one
    result = clone_tool().run(TEXT, reference, context(store), reference_text=REFERENCE_TEXT, language="English")

    assert result.name == "cloned-voice-gpt-sovits.wav" and result.mime == "audio/wav"
    info = soundfile.info(io.BytesIO(result.read_bytes()))
    assert info.samplerate == OUTPUT_RATE
    assert info.duration == pytest.approx(len(TEXT.split()) * SECONDS_PER_WORD, abs=0.01)
    (request,) = sovits.requests
    assert {k: request[k] for k in ("text", "text_lang", "prompt_text", "prompt_lang", "media_type")} == {
        "text": TEXT,
        "text_lang": "en",
        "prompt_text": REFERENCE_TEXT,
        "prompt_lang": "en",
        "media_type": "wav",
    }
    assert request["streaming_mode"] is False
    shared = Path(request["ref_audio_path"])
    assert shared.parent == store.workspace / "voice-refs" and shared.name == f"ref-{reference.handle}.wav"
    assert soundfile.info(shared).duration == pytest.approx(soundfile.info(my_voice).duration, abs=0.01)


def test_a_webm_reference_reaches_the_server_as_wav_through_a_shared_folder(
    sovits, monkeypatch, store, my_voice, tmp_path
):
    shared, mount = tmp_path / "shared", tmp_path / "mnt-on-server"
    shared.mkdir()
    mount.symlink_to(shared)  # the same folder under another name, as a server mounting it would see it
    monkeypatch.setenv("PATCHBAY_GPT_SOVITS_SHARED_DIR", str(shared))
    monkeypatch.setenv("PATCHBAY_GPT_SOVITS_SERVER_DIR", str(mount))
    reference = File(store.put_file(convert(my_voice, tmp_path / "note.webm")))

    clone_tool().run(TEXT, reference, context(store), reference_language="en", language="auto")

    (request,) = sovits.requests
    assert request["ref_audio_path"] == f"{mount}/ref-{reference.handle}.wav"
    assert (request["text_lang"], request["prompt_lang"], request["prompt_text"]) == ("auto", "en", "")
    assert soundfile.info(shared / f"ref-{reference.handle}.wav").format == "WAV"


def test_only_a_recording_the_user_attached_can_be_cloned(sovits, store, my_voice):
    made = store.put_bytes(my_voice.read_bytes() + b"", "audio/wav", Provenance("task", "req-0", 2, "text_to_speech"))
    with pytest.raises(InputError, match=r"only clones a voice from a recording the user attached.*text_to_speech"):
        clone_tool().run(TEXT, File(made), context(store))
    assert sovits.requests == []


@pytest.mark.parametrize(("seconds", "problem"), [(1.5, "lasts 1.5 s"), (14.0, "lasts 14.0 s")])
def test_a_reference_outside_three_to_ten_seconds_is_refused_here(sovits, store, tmp_path, seconds, problem):
    import numpy as np

    path = tmp_path / "ref.wav"
    soundfile.write(path, 0.1 * np.sin(np.arange(int(seconds * 16_000)) / 5).astype("float32"), 16_000)
    with pytest.raises(InputError, match=f"{problem}; GPT-SoVITS needs a reference of 3 to 10 seconds"):
        clone_tool().run(TEXT, File(store.put_file(path)), context(store))
    assert sovits.requests == []


def test_unknown_languages_and_empty_text_are_input_errors(sovits, store, my_voice):
    reference = File(store.put_file(my_voice))
    with pytest.raises(InputError, match="language 'Klingon' is not a language GPT-SoVITS speaks"):
        clone_tool().run(TEXT, reference, context(store), language="Klingon")
    with pytest.raises(InputError, match="empty text"):
        clone_tool().run("  ", reference, context(store))


# -- the server's answers ----------------------------------------------------------------------
def test_the_server_being_down_is_a_clear_error(monkeypatch, store, my_voice):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PATCHBAY_GPT_SOVITS_URL", f"http://127.0.0.1:{port}")
    state = VoiceClone.available()
    assert state.ok and f"no GPT-SoVITS server answers at http://127.0.0.1:{port}" in state.reason
    with pytest.raises(ToolError, match=rf"no GPT-SoVITS server answers at http://127.0.0.1:{port}.*api_v2.py"):
        clone_tool().run(TEXT, File(store.put_file(my_voice)), context(store))


def test_a_400_from_the_server_carries_its_message(monkeypatch, store, my_voice):
    with SovitsServer(version="v1") as v1:  # a v1 model speaks no Korean
        monkeypatch.setenv("PATCHBAY_GPT_SOVITS_URL", v1.url)
        with pytest.raises(ToolError, match=r"refused the request \(HTTP 400\): text_lang: ko is not supported in v"):
            clone_tool().run(
                TEXT, File(store.put_file(my_voice)), context(store), language="ko", reference_language="en"
            )


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (400, '{"message": "tts failed", "Exception": "CUDA out of memory"}', "application/json",
         r"refused the request \(HTTP 400\): tts failed \(CUDA out of memory\)"),
        (404, '{"detail": "Not Found"}', "application/json", r"does not exist \(HTTP 404\): is .* api_v2.py server"),
        (500, "Internal Server Error", "text/plain", r"GPT-SoVITS server failed \(HTTP 500\): Internal Server Error"),
        (200, '{"message": "success"}', "application/json", r"answered with application/json, not audio"),
        (200, b"RIFF\x00\x00 not really a wav", "audio/wav", r"not a readable WAV"),
    ],
)  # fmt: skip
def test_every_bad_answer_is_one_clear_error(sovits, store, my_voice, status, body, content_type, message):
    sovits.answer_next(status, body, content_type)
    with pytest.raises(ToolError, match=message):
        clone_tool().run(TEXT, File(store.put_file(my_voice)), context(store), reference_text=REFERENCE_TEXT)
