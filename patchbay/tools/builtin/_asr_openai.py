"""The second speech backend: the reference ``openai-whisper`` package (PyTorch).

Chosen with ``PATCHBAY_SPEECH_TO_TEXT_BACKEND=openai-whisper``, for results that
match the reference implementation exactly or for checkpoints only it reads (``.pt``
files). It is slower than faster-whisper and has no voice-activity detection of its
own; its no-speech probability drops silent windows instead. Install it with
``pip install --no-deps openai-whisper`` plus numba, tiktoken and more-itertools:
its declared dependency on triton pulls a 1 GB GPU compiler that does nothing on CPU.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from .._spec import Availability
from ._asr import ChunkTranscript, Segment
from ._models import best_device

_DOWNLOAD_HOST = "openaipublic.azureedge.net"


def availability(model_id: str, tool_name: str) -> Availability:
    """Whether openai-whisper and torch are installed and the checkpoint is a file, cached, or downloadable."""
    missing = [pkg for pkg in ("whisper", "torch") if importlib.util.find_spec(pkg) is None]
    if missing:
        return Availability(
            False,
            f"{tool_name} with openai-whisper needs {' and '.join(missing)}: "
            "pip install --no-deps openai-whisper numba tiktoken more-itertools (and torch)",
        )
    if Path(model_id).is_file():
        return Availability(True)
    import whisper

    if model_id not in whisper.available_models():
        return Availability(
            False,
            f"{model_id!r} is neither an openai-whisper size ({', '.join(whisper.available_models())}) "
            "nor a checkpoint file",
        )
    if _cached_checkpoint(model_id).is_file():
        return Availability(True)
    if _reachable(_DOWNLOAD_HOST):
        return Availability(True, f"openai-whisper {model_id} downloads on first use")
    return Availability(
        False,
        f"openai-whisper weights for {model_id!r} are not cached at {_cached_checkpoint(model_id)} and cannot be "
        "downloaded here; on a machine with internet run "
        f"python -c \"import whisper; whisper.load_model('{model_id}')\", "
        "or set PATCHBAY_SPEECH_TO_TEXT_MODEL to a .pt checkpoint",
    )


def _cached_checkpoint(size: str) -> Path:
    """Where ``whisper.load_model(size)`` keeps its download."""
    import whisper

    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    return root / os.path.basename(whisper._MODELS[size])


def _reachable(host: str, timeout_s: float = 1.0) -> bool:
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False  # the same switch that keeps the other model tools from reaching out
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass
class OpenAIWhisper:
    """An openai-whisper model on the best device; ``transcribe`` serves one call at a time."""

    model: Any
    model_id: str
    device: str
    name: str = "openai-whisper"

    @classmethod
    def load(cls, model_id: str) -> OpenAIWhisper:
        """Load a size name (downloaded and cached by openai-whisper) or a ``.pt`` checkpoint file.

        Raises:
            ConfigError: the checkpoint cannot be found, downloaded or read.
        """
        import whisper

        device, _ = best_device()
        try:
            model = whisper.load_model(model_id, device=device)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"speech_to_text cannot load the openai-whisper model {model_id!r} ({first_line}); on a machine "
                "with internet it downloads by itself, or set PATCHBAY_SPEECH_TO_TEXT_MODEL to a .pt checkpoint"
            ) from exc
        return cls(model.eval(), model_id, device)

    @property
    def languages(self) -> frozenset[str]:
        from whisper.tokenizer import LANGUAGES

        if not self.model.is_multilingual:
            return frozenset({"en"})
        return frozenset(list(LANGUAGES)[: self.model.num_languages])

    def transcribe(self, samples: np.ndarray, language: str | None) -> ChunkTranscript:
        """Transcribe one chunk; the language is detected on its first 30 s when not given."""
        import torch
        import whisper

        probability = 1.0
        if language is None:
            if self.model.is_multilingual:
                mel = whisper.log_mel_spectrogram(
                    whisper.pad_or_trim(samples), n_mels=self.model.dims.n_mels, device=self.device
                )
                with torch.inference_mode():
                    _, probs = self.model.detect_language(mel)
                language = max(probs, key=probs.get)
                probability = float(probs[language])
            else:
                language = "en"
        result = whisper.transcribe(
            self.model, samples, language=language, fp16=self.device == "cuda", verbose=None, task="transcribe"
        )
        heard = [
            Segment(float(s["start"]), float(s["end"]), s["text"].strip())
            for s in result["segments"]
            if s["text"].strip()
        ]
        return ChunkTranscript(language, probability, heard)
