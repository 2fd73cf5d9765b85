"""Built-in audio tools on soundfile, numpy and scipy: trim, join, convert, resample, measure.

Inputs decode with :meth:`Audio.to_array` (undecodable data is an InputError there);
outputs are 16-bit WAV unless a tool converts on purpose.
"""

from __future__ import annotations

import io
import math
from typing import Literal

import numpy as np
import soundfile

from ...errors import InputError
from ...media import Audio
from .._registry import tool
from .._spec import Resources

MIN_RATE, MAX_RATE = 4_000, 192_000

_LIGHT = Resources(cpus=1, memory_mb=512)


@tool(resources=_LIGHT)
def audio_trim(audio: Audio, start: float = 0.0, end: float | None = None) -> Audio:
    """Keep only the part of a recording between two times, in seconds from its beginning.

    An end past the recording's length is cut back to its length.

    Args:
        audio: the recording to trim.
        start: where the kept part begins, in seconds (0 is the beginning).
        end: where the kept part ends, in seconds; omit it to keep everything after start.

    Returns:
        The kept part as WAV, at the input's sample rate and channel count.
    """
    samples, rate = audio.to_array()
    duration = len(samples) / rate
    if not math.isfinite(start) or start < 0:
        raise InputError(f"start must be 0 or more seconds, got {start}")
    if end is not None and not (math.isfinite(end) and end > start):
        raise InputError(f"end ({end} s) must be after start ({start} s)")
    if start >= duration:
        raise InputError(f"start ({start} s) is not before the end of the {duration:.3f} s recording")
    first = round(start * rate)
    last = len(samples) if end is None else min(len(samples), round(end * rate))
    if last <= first:
        raise InputError(f"{start} s to {end} s is shorter than one sample at {rate} Hz")
    return _encode(samples[first:last], rate)


@tool(resources=_LIGHT)
def audio_concatenate(first: Audio, second: Audio) -> Audio:
    """Join two recordings end to end: the second plays right after the first.

    The second is resampled and mixed up or down to the first's sample rate and
    channel count, so recordings of different rates and channel layouts can be joined.

    Args:
        first: the recording that plays first; its sample rate and channels are kept.
        second: the recording appended after it.

    Returns:
        The joined recording as WAV.
    """
    head, rate = first.to_array()
    tail, tail_rate = second.to_array()
    tail = _match_channels(_resample(tail, tail_rate, rate), head.shape[1])
    return _encode(np.concatenate([head, tail], axis=0), rate)


@tool(resources=_LIGHT)
def audio_convert(audio: Audio, format: Literal["wav", "flac", "ogg"]) -> Audio:
    """Re-encode a recording as WAV (uncompressed), FLAC (lossless, smaller) or OGG Vorbis (lossy, smallest).

    Args:
        audio: the recording to convert.
        format: the file format to write.

    Returns:
        The same sound in the requested format, at the input's sample rate and channels.
    """
    if format not in ("wav", "flac", "ogg"):
        raise InputError(f"format must be wav, flac or ogg, got {format!r}")
    samples, rate = audio.to_array()
    return _encode(samples, rate, format.upper())


@tool(resources=_LIGHT)
def audio_resample(audio: Audio, sample_rate: int) -> Audio:
    """Change a recording's sample rate, e.g. to 16000 Hz, which most speech models expect.

    Args:
        audio: the recording to resample.
        sample_rate: the new rate in samples per second (Hz), between 4000 and 192000.

    Returns:
        The resampled recording as WAV, same duration and channels.
    """
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise InputError(f"sample_rate must be between {MIN_RATE} and {MAX_RATE} Hz, got {sample_rate}")
    samples, rate = audio.to_array()
    return _encode(_resample(samples, rate, sample_rate), sample_rate)


@tool(resources=Resources(cpus=0.5, memory_mb=64))
def audio_duration(audio: Audio) -> float:
    """Measure how long a recording lasts, in seconds.

    Args:
        audio: the recording to measure.

    Returns:
        The duration in seconds, rounded to the millisecond.
    """
    label = audio.handle or "audio"
    try:
        # Read only the header: no need to decode an hour of sound to count it.
        with soundfile.SoundFile(io.BytesIO(audio.read_bytes())) as sound:
            frames, rate = sound.frames, sound.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(f"{label} is not audio that can be decoded ({audio.mime}): {exc}") from exc
    return round(frames / rate, 3)


TOOLS = [audio_trim, audio_concatenate, audio_convert, audio_resample, audio_duration]


def _resample(samples: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    if rate_from == rate_to:
        return samples
    # scipy.signal takes a noticeable moment to import; only resampling pays for it.
    from scipy.signal import resample_poly

    step = math.gcd(rate_from, rate_to)
    return resample_poly(samples, rate_to // step, rate_from // step, axis=0).astype(np.float32)


def _match_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """Mix down to mono, then copy it to every channel, unless the layouts already agree."""
    if samples.shape[1] == channels:
        return samples
    mono = samples.mean(axis=1, keepdims=True)
    return np.repeat(mono, channels, axis=1)


def _encode(samples: np.ndarray, rate: int, format: str = "WAV") -> Audio:
    # Resampling can overshoot full scale slightly; clip rather than let PCM wrap around.
    return Audio.from_array(np.clip(samples, -1.0, 1.0), rate, format=format)
