"""The default speech backend: faster-whisper (Whisper on CTranslate2).

CTranslate2 runs Whisper several times faster than the PyTorch reference code and
in less memory: int8 on CPU, float16 on a CUDA GPU. No torch is imported. Silero
voice-activity detection (its ONNX model ships inside faster-whisper) drops the
silences and music before decoding, which is both faster and stops Whisper from
inventing words in them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from .._spec import Availability
from ._asr import ChunkTranscript, Segment
from ._models import model_availability

BEAM_SIZE = 5
"""faster-whisper's own default: better transcripts than greedy decoding for a modest cost."""


def availability(model_id: str, tool_name: str) -> Availability:
    """Whether faster-whisper is installed and the model is a local CTranslate2 folder, cached, or downloadable."""
    if importlib.util.find_spec("faster_whisper") is None:
        return Availability(False, f"{tool_name} needs faster-whisper: pip install faster-whisper")
    path = Path(model_id)
    if path.is_dir():
        if (path / "model.bin").is_file():
            return Availability(True)
        return Availability(False, f"{model_id} is a folder but not a CTranslate2 Whisper model (no model.bin)")
    import faster_whisper.utils

    # A size name ("base") stands for a CTranslate2 conversion on the Hugging Face hub.
    repo = getattr(faster_whisper.utils, "_MODELS", {}).get(model_id, model_id)
    if "/" not in repo:
        sizes = ", ".join(faster_whisper.utils.available_models())
        return Availability(False, f"{model_id!r} is not a Whisper size ({sizes}), a hub id or a local folder")
    return model_availability(repo, tool_name)


@dataclass
class FasterWhisper:
    """A faster-whisper model loaded on the best device; ``transcribe`` serves one call at a time."""

    model: Any
    model_id: str
    device: str
    name: str = "faster-whisper"

    @classmethod
    def load(cls, model_id: str, cpu_threads: int) -> FasterWhisper:
        """Load ``model_id`` (a size name, hub id or local folder): CUDA float16 if a GPU is there, else CPU int8.

        Raises:
            ConfigError: the weights cannot be found or read, with the fix in the message.
        """
        import ctranslate2
        from faster_whisper import WhisperModel

        device, compute_type = ("cuda", "float16") if ctranslate2.get_cuda_device_count() > 0 else ("cpu", "int8")
        try:
            model = WhisperModel(model_id, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        except (OSError, ValueError, RuntimeError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"speech_to_text cannot load the faster-whisper model {model_id!r} ({first_line}); on a machine "
                f"with internet it downloads by itself, or set PATCHBAY_SPEECH_TO_TEXT_MODEL to a local "
                "CTranslate2 Whisper folder"
            ) from exc
        return cls(model, model_id, device)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.model.supported_languages)

    def transcribe(self, samples: np.ndarray, language: str | None) -> ChunkTranscript:
        """Transcribe one chunk with voice-activity detection; segment times are relative to the chunk."""
        segments, info = self.model.transcribe(
            samples,
            language=language,
            beam_size=BEAM_SIZE,
            vad_filter=True,
        )
        heard = [Segment(s.start, s.end, s.text.strip()) for s in segments if s.text.strip()]
        return ChunkTranscript(info.language, float(info.language_probability), heard)
