"""What the speech_to_text backends share: their result types, the choice of backend, and language names.

Two backends run Whisper: faster-whisper (CTranslate2, the default: several times
faster than the reference code on CPU and GPU, int8 on CPU) and the reference
``openai-whisper`` package (PyTorch). Both take 16 kHz mono samples from
:mod:`._speech_input` and return :class:`ChunkTranscript`, so the tool above them
does not care which one ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...errors import ConfigError, InputError
from .._spec import Availability

BACKENDS = ("faster-whisper", "openai-whisper")
BACKEND_ENV = "PATCHBAY_SPEECH_TO_TEXT_BACKEND"


@dataclass(frozen=True)
class Segment:
    """One stretch of speech, its times in seconds from the start of the recording."""

    start: float
    end: float
    text: str


@dataclass
class ChunkTranscript:
    """What a backend heard in one chunk of a recording."""

    language: str
    language_probability: float
    segments: list[Segment] = field(default_factory=list)


class SpeechBackend(Protocol):
    """A loaded Whisper model, one per process."""

    name: str
    model_id: str
    device: str

    @property
    def languages(self) -> frozenset[str]:
        """Language codes the model can be told to expect (just ``en`` for English-only models)."""
        ...

    def transcribe(self, samples: np.ndarray, language: str | None) -> ChunkTranscript:
        """Transcribe 16 kHz mono samples; ``language`` None means detect it."""
        ...


def configured_backend() -> str:
    """``PATCHBAY_SPEECH_TO_TEXT_BACKEND``, default faster-whisper.

    Raises:
        ConfigError: an unknown backend name.
    """
    name = os.environ.get(BACKEND_ENV, "faster-whisper").strip().lower() or "faster-whisper"
    if name not in BACKENDS:
        raise ConfigError(f"{BACKEND_ENV}={name!r} is not a speech backend; use one of: {', '.join(BACKENDS)}")
    return name


def backend_availability(backend: str, model_id: str, tool_name: str) -> Availability:
    """Fast check that the backend's package and the model's weights are here (no loading)."""
    if backend == "openai-whisper":
        from ._asr_openai import availability
    else:
        from ._asr_faster import availability
    return availability(model_id, tool_name)


def load_backend(backend: str, model_id: str, cpu_threads: int) -> SpeechBackend:
    """Load the model once, on the best device there is.

    Raises:
        ConfigError: the package is missing or the weights cannot be found or read.
    """
    if backend == "openai-whisper":
        from ._asr_openai import OpenAIWhisper

        return OpenAIWhisper.load(model_id)
    from ._asr_faster import FasterWhisper

    return FasterWhisper.load(model_id, cpu_threads)


# The names people and planners write most; any two-letter code the model knows works too.
_LANGUAGE_CODES = {
    "english": "en",
    "chinese": "zh",
    "mandarin": "zh",
    "cantonese": "yue",
    "german": "de",
    "spanish": "es",
    "russian": "ru",
    "korean": "ko",
    "french": "fr",
    "japanese": "ja",
    "portuguese": "pt",
    "turkish": "tr",
    "polish": "pl",
    "catalan": "ca",
    "dutch": "nl",
    "arabic": "ar",
    "swedish": "sv",
    "italian": "it",
    "indonesian": "id",
    "hindi": "hi",
    "finnish": "fi",
    "vietnamese": "vi",
    "hebrew": "he",
    "ukrainian": "uk",
    "greek": "el",
    "malay": "ms",
    "czech": "cs",
    "romanian": "ro",
    "danish": "da",
    "hungarian": "hu",
    "tamil": "ta",
    "norwegian": "no",
    "thai": "th",
    "urdu": "ur",
    "croatian": "hr",
    "bulgarian": "bg",
    "persian": "fa",
    "farsi": "fa",
    "bengali": "bn",
    "swahili": "sw",
}
LANGUAGE_NAMES = {code: name.capitalize() for name, code in reversed(list(_LANGUAGE_CODES.items()))}


def resolve_language(language: str, backend: SpeechBackend) -> str | None:
    """The model's code for a language given as a code ("fr") or an English name ("French"); None: detect.

    Raises:
        InputError: a language the model does not know, or any but English for an English-only model.
    """
    wanted = language.strip().lower()
    if wanted in ("", "auto", "detect", "any", "unknown"):
        return None
    code = _LANGUAGE_CODES.get(wanted, wanted)
    known = backend.languages
    if code in known:
        return code
    if known == frozenset({"en"}) and (code in _LANGUAGE_CODES.values() or len(code) in (2, 3)):
        raise InputError(
            f"the speech model {backend.model_id} understands English only, not {language!r}; set "
            "PATCHBAY_SPEECH_TO_TEXT_MODEL to a multilingual model (e.g. base), or leave language empty"
        )
    examples = ", ".join(sorted(c for c in ("en", "fr", "de", "es", "zh", "ja", "ar", "hi") if c in known))
    raise InputError(
        f"{language!r} is not a language {backend.model_id} knows; give a two-letter code such as {examples}, "
        "an English language name such as 'French', or leave it empty to detect the language"
    )


def language_label(code: str) -> str:
    """``French (fr)``, or just the code when its name is not in the table."""
    name = LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else code
