"""speech_to_text: Whisper transcripts of any recording, with the language and time marks.

The model loads once per process (or Ray actor) in ``setup()``. Configuration:

* ``PATCHBAY_SPEECH_TO_TEXT_MODEL``: a Whisper size (``base`` by default; ``tiny``,
  ``small``, ``large-v3``, ...), a hub id, a local CTranslate2 folder (faster-whisper)
  or a ``.pt`` checkpoint (openai-whisper).
* ``PATCHBAY_SPEECH_TO_TEXT_BACKEND``: ``faster-whisper`` (default) or ``openai-whisper``.
* ``PATCHBAY_SPEECH_TO_TEXT_MAX_MINUTES``: the longest recording accepted (default 240).
* ``PATCHBAY_SPEECH_TO_TEXT_CHUNK_SECONDS``: how much sound is decoded and transcribed
  at a time (default 600), which bounds memory for hours-long recordings.

The transcript is text, because text is what the next tools (summarize, translate,
text_to_speech) take. Its first line names the language (and whether it was detected)
and the length; each following line is one segment, ``[mm:ss.s–mm:ss.s] words``. With
``timestamps=False`` it is the plain words. :func:`spoken_text` strips those marks
again, so a transcript fed to text_to_speech is read without them.
"""

from __future__ import annotations

import os
import re
import threading
from typing import ClassVar

from ...errors import ConfigError, InputError
from ...media import File
from .._define import Tool
from .._spec import Availability, Resources
from ._asr import (
    BACKEND_ENV,
    ChunkTranscript,
    Segment,
    SpeechBackend,
    backend_availability,
    configured_backend,
    language_label,
    load_backend,
    resolve_language,
)
from ._models import configured_model
from ._speech_input import SAMPLE_RATE, describe_length, is_silent, probe, speech_chunks

DEFAULT_MODEL = "base"
DEFAULT_MAX_MINUTES = 240.0
DEFAULT_CHUNK_SECONDS = 600.0

_MARK = re.compile(r"^\[(?:\d+:)?\d{2}:\d{2}\.\d[–-](?:\d+:)?\d{2}:\d{2}\.\d\]\s?", re.MULTILINE)
_HEADER = re.compile(r"^\[(?:language|speech|sound track)[^\]\n]*\]\s*\n?", re.MULTILINE)


class SpeechToText(Tool):
    """Transcribe speech in a recording or a video's sound track with Whisper."""

    name = "speech_to_text"
    # Whisper base: 74M parameters, ~150 MB as int8 on CPU, ~300 MB as float16 on a GPU; decoding
    # one 10-minute chunk adds ~100 MB. CTranslate2 uses two CPU threads on CPU.
    resources = Resources(gpu=0.25, cpus=2, memory_mb=1000)
    # An hour of speech on two CPU cores takes minutes; a GPU does it in seconds.
    timeout_s: ClassVar[float | None] = 3600.0
    retries: ClassVar[int | None] = 0

    @classmethod
    def model_id(cls) -> str:
        """``PATCHBAY_SPEECH_TO_TEXT_MODEL``, default the standard ``base`` size."""
        return configured_model(cls.name, DEFAULT_MODEL)

    @classmethod
    def available(cls) -> Availability:
        """Whether the backend is installed and the weights are on disk or downloadable (no loading)."""
        try:
            backend = configured_backend()
        except ConfigError as exc:
            return Availability(False, str(exc))
        return backend_availability(backend, cls.model_id(), cls.name)

    def setup(self) -> None:
        """Load the configured model once.

        Raises:
            ConfigError: bad configuration, a missing package, or weights that cannot be loaded.
        """
        self.max_seconds = _positive_env("PATCHBAY_SPEECH_TO_TEXT_MAX_MINUTES", DEFAULT_MAX_MINUTES) * 60
        self.chunk_seconds = _positive_env("PATCHBAY_SPEECH_TO_TEXT_CHUNK_SECONDS", DEFAULT_CHUNK_SECONDS)
        self.backend: SpeechBackend = load_backend(
            configured_backend(), self.model_id(), cpu_threads=max(1, int(self.resources.cpus))
        )
        # The in-process backend calls run() from several threads; one model serves one call at a time.
        self._lock = threading.Lock()

    def run(self, audio: File, language: str = "", timestamps: bool = True) -> str:
        """Write down the words spoken in a recording (speech recognition), e.g. a meeting, a voice note or a video.

        Takes any common audio file (wav, mp3, flac, ogg, m4a, webm) or a video, whose sound
        track is used. The spoken language is detected unless given.

        Args:
            audio: the recording to transcribe: an audio file, or a video with sound.
            language: the language spoken, as a code like "en" or "fr" or a name like
                "French"; leave empty to detect it.
            timestamps: true: a first line with the language and length, then one line per
                segment starting with its time span like [00:01.2–00:03.4]; false: only the words.

        Returns:
            The transcript as text.

        Raises:
            InputError: the file is not audio, is corrupt, holds no speech, is too long,
                or the language is unknown to the model.
        """
        label = audio.handle or "audio"
        recording = probe(audio.path, label)
        if recording.duration_s is not None and recording.duration_s > self.max_seconds:
            raise InputError(
                f"{label} lasts {describe_length(recording.duration_s)}, longer than the "
                f"{describe_length(self.max_seconds)} speech_to_text accepts; cut it into parts with "
                "audio_trim, or raise PATCHBAY_SPEECH_TO_TEXT_MAX_MINUTES"
            )
        wanted = resolve_language(language, self.backend)
        segments: list[Segment] = []
        detected: ChunkTranscript | None = None
        total = 0.0
        with self._lock:
            for offset, samples in speech_chunks(audio.path, label, chunk_s=self.chunk_seconds, max_s=self.max_seconds):
                total = offset + len(samples) / SAMPLE_RATE
                if is_silent(samples):
                    continue
                # The language heard first holds for the rest: one recording, one language.
                heard = self.backend.transcribe(samples, wanted or (detected.language if detected else None))
                if heard.segments and detected is None:
                    detected = heard
                segments.extend(Segment(offset + s.start, offset + s.end, s.text) for s in heard.segments)
        if not segments:
            raise InputError(
                f"no speech was found in {label} ({describe_length(total)}): it is silent or holds only noise or music"
            )
        if not timestamps:
            return " ".join(s.text for s in segments)
        if wanted or detected is None:
            language_note = f"language: {language_label(wanted or '')}, as requested"
        else:
            language_note = (
                f"language: {language_label(detected.language)}, detected "
                f"with probability {detected.language_probability:.2f}"
            )
        source = f"; sound track of a video ({recording.codec})" if recording.has_video else ""
        header = f"[{language_note}; {describe_length(total)} of audio{source}]"
        lines = [f"[{_clock(s.start, total)}–{_clock(s.end, total)}] {s.text}" for s in segments]
        return "\n".join([header, *lines])


def spoken_text(transcript: str) -> str:
    """The words of a speech_to_text transcript without its header and time marks (other text unchanged)."""
    stripped = _MARK.sub("", _HEADER.sub("", transcript))
    return " ".join(line.strip() for line in stripped.splitlines() if line.strip())


def _clock(seconds: float, total: float) -> str:
    """``mm:ss.s``, or ``h:mm:ss.s`` when the recording passes an hour."""
    tenths = round(seconds * 10)
    minutes, rest = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    text = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{text}" if total >= 3600 else text


def _positive_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be a positive number")
    return value


TOOLS = [SpeechToText]

__all__ = ["BACKEND_ENV", "SpeechToText", "TOOLS", "spoken_text"]
