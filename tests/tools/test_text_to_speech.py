"""text_to_speech: a real failed connection to edge-tts, the announced offline fallback, and the audio it writes.

edge-tts is pointed at a proxy on a closed local port, so its connection fails for
real and at once, on any machine, with or without internet.
"""

from __future__ import annotations

import io
import logging
import socket

import pytest
import soundfile

from patchbay.errors import ConfigError, InputError, ToolError
from patchbay.tools.builtin._tts_engines import EdgeTTS, Piper
from patchbay.tools.builtin.speech_synthesis import TextToSpeech

TEXT = "Please send the meeting notes to the whole team before Friday."
WORDS = len(TEXT.split())


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def offline(monkeypatch, closed_port):
    """edge-tts reaches its service only through a proxy that refuses every connection."""
    monkeypatch.setenv("PATCHBAY_EDGE_TTS_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.delenv("PATCHBAY_TEXT_TO_SPEECH_ENGINES", raising=False)


def make_tool(monkeypatch: pytest.MonkeyPatch, engines: str | None = None) -> TextToSpeech:
    if engines is not None:
        monkeypatch.setenv("PATCHBAY_TEXT_TO_SPEECH_ENGINES", engines)
    tool = TextToSpeech()
    tool.setup()
    return tool


def decoded(result) -> tuple[float, int, str]:
    """Duration in seconds, sample rate and container format of the audio a tool returned."""
    info = soundfile.info(io.BytesIO(result.read_bytes()))
    return info.duration, info.samplerate, info.format


def assert_plausible_speech(result, words: int) -> None:
    duration, _, _ = decoded(result)
    # People speak 2 to 4 words a second; engines with pauses fall in 1 to 5.
    assert words / 5 <= duration <= words / 1, f"{duration:.2f} s for {words} words"


@pytest.mark.skipif(not EdgeTTS.installed(), reason="edge-tts is not installed")
def test_the_offline_fallback_engages_when_edge_tts_cannot_connect(offline, monkeypatch, caplog):
    tool = make_tool(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="patchbay.tools.builtin.speech_synthesis"):
        result = tool.run(TEXT)
    offline_engine = "piper" if Piper.installed() else "espeak-ng"
    assert result.name == f"speech-{offline_engine}-offline-fallback.wav" and result.mime == "audio/wav"
    _, rate, container = decoded(result)
    assert container == "WAV" and rate == 22_050  # Piper's medium voices and espeak-ng both speak at 22.05 kHz
    assert_plausible_speech(result, WORDS)
    announcement = caplog.records[-1].getMessage()
    assert f"{offline_engine} spoke" in announcement and "edge-tts service could not be reached" in announcement
    assert "ClientProxyConnectionError" in announcement  # the real connection error, not a stand-in

    # The next call does not wait on the dead service again, and still says why it fell back.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="patchbay.tools.builtin.speech_synthesis"):
        again = tool.run("Short and sweet.")
    assert again.name.endswith("-offline-fallback.wav")
    assert "unreachable less than five minutes ago" in caplog.records[-1].getMessage()


@pytest.mark.skipif(not EdgeTTS.installed(), reason="edge-tts is not installed")
def test_a_french_voice_falls_back_to_espeak_in_french(offline, monkeypatch):
    result = make_tool(monkeypatch).run("Bonjour à tous, la réunion commence.", voice="fr-FR-DeniseNeural")
    assert result.name == "speech-espeak-ng-offline-fallback.wav"  # the bundled Piper voice speaks English only
    assert_plausible_speech(result, 6)


def test_espeak_alone_speaks_mp3_and_follows_the_rate(monkeypatch):
    tool = make_tool(monkeypatch, "espeak-ng")
    normal = tool.run(TEXT, format="mp3")
    assert normal.name == "speech-espeak-ng.mp3" and normal.mime == "audio/mpeg"
    duration, _, container = decoded(normal)
    assert container == "MP3"
    assert_plausible_speech(normal, WORDS)
    faster, _, _ = decoded(tool.run(TEXT, rate=60))
    assert faster < duration * 0.8


def test_transcript_time_marks_are_not_read_aloud(monkeypatch):
    tool = make_tool(monkeypatch, "espeak-ng")
    plain, _, _ = decoded(tool.run("Hello there."))
    marked, _, _ = decoded(
        tool.run("[language: English (en), as requested; 1.0 s of audio]\n[00:00.0–00:01.0] Hello there.")
    )
    assert marked == pytest.approx(plain, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "   "}, "empty text"),
        ({"text": "[00:00.0–00:01.0] "}, "empty text"),
        ({"text": "x" * 20_001}, "at most 20000"),
        ({"text": "hi", "rate": 300}, "rate must be between -50 and 100"),
        ({"text": "hi", "pitch": -90}, "pitch must be between -50 and 50"),
    ],
)
def test_bad_input_is_one_clear_error(monkeypatch, kwargs, message):
    with pytest.raises(InputError, match=message):
        make_tool(monkeypatch, "espeak-ng").run(**kwargs)


@pytest.mark.skipif(not EdgeTTS.installed(), reason="edge-tts is not installed")
def test_a_voice_name_edge_tts_would_refuse_is_an_input_error(monkeypatch):
    with pytest.raises(InputError, match="'a nice female voice' is not an edge-tts voice name"):
        make_tool(monkeypatch, "espeak-ng").run("hi", voice="a nice female voice")


@pytest.mark.skipif(not EdgeTTS.installed(), reason="edge-tts is not installed")
def test_when_no_engine_can_speak_every_reason_is_listed(offline, monkeypatch):
    with pytest.raises(ToolError, match=r"no speech engine could read the text: edge-tts: .*could not be reached"):
        make_tool(monkeypatch, "edge-tts").run(TEXT)


def test_engine_configuration_is_checked(monkeypatch):
    monkeypatch.setenv("PATCHBAY_TEXT_TO_SPEECH_ENGINES", "espeak-ng,festival")
    assert "use a comma-separated list of edge-tts, piper, espeak-ng" in TextToSpeech.available().reason
    with pytest.raises(ConfigError, match="festival"):
        TextToSpeech().setup()
    monkeypatch.setenv("PATCHBAY_TEXT_TO_SPEECH_ENGINES", "espeak-ng")
    assert TextToSpeech.available().ok
