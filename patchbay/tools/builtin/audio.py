"""Built-in audio tools on soundfile, numpy and scipy: trim, join, convert, resample, measure, mix, picture.

Inputs decode with :meth:`Audio.to_array` (undecodable data is an InputError there);
outputs are 16-bit WAV unless a tool converts on purpose. The spectrogram is drawn
with numpy and Pillow alone, so no plotting library is needed.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Literal

import numpy as np
import soundfile

from ...errors import InputError
from ...media import Audio, Image
from .._registry import tool
from .._spec import Resources

MIN_RATE, MAX_RATE = 4_000, 192_000

if TYPE_CHECKING:
    from PIL import Image as PILImage

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
def audio_convert(audio: Audio, format: Literal["wav", "flac", "ogg", "mp3"]) -> Audio:
    """Re-encode a recording as WAV (uncompressed), FLAC (lossless, smaller), OGG Vorbis or MP3 (lossy, smallest).

    Args:
        audio: the recording to convert.
        format: the file format to write.

    Returns:
        The same sound in the requested format, at the input's sample rate and channels.
    """
    if format not in ("wav", "flac", "ogg", "mp3"):
        raise InputError(f"format must be wav, flac, ogg or mp3, got {format!r}")
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


MIX_TAIL_S = 1.5
"""How long the music plays on, fading out, after the voice ends."""
_FADE_IN_S = 0.3


@tool(resources=_LIGHT)
def audio_mix(voice: Audio, music: Audio, music_volume: float = 0.25) -> Audio:
    """Mix a voice recording over background music, the music quieter under the voice.

    The music loops or is cut to the voice's length, and fades out just after it.

    Args:
        voice: the speech (or any main sound) that must stay clearly audible.
        music: the background music.
        music_volume: the music's loudness relative to its original level, from 0 (silent)
            to 1 (unchanged); 0.25 keeps speech easy to follow.

    Returns:
        The mix as WAV, as long as the voice plus a 1.5 s fade-out, at the higher sample
        rate and the larger channel count of the two.
    """
    if not (math.isfinite(music_volume) and 0 <= music_volume <= 1):
        raise InputError(f"music_volume must be between 0 and 1, got {music_volume}")
    speech, speech_rate = voice.to_array()
    backing, backing_rate = music.to_array()
    if len(speech) == 0 or len(backing) == 0:
        raise InputError("both the voice and the music must hold some sound")
    rate = max(speech_rate, backing_rate)
    channels = max(speech.shape[1], backing.shape[1])
    speech = _match_channels(_resample(speech, speech_rate, rate), channels)
    backing = _match_channels(_resample(backing, backing_rate, rate), channels)
    length = len(speech) + round(MIX_TAIL_S * rate)
    repeats = -(-length // len(backing))
    bed = np.tile(backing, (repeats, 1))[:length] * np.float32(music_volume)
    fade_in = min(round(_FADE_IN_S * rate), length)
    bed[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)[:, None]
    tail = length - len(speech)
    bed[len(speech) :] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)[:, None]
    mix = bed
    mix[: len(speech)] += speech
    peak = float(np.max(np.abs(mix)))
    if peak > 1.0:
        # Scale the whole mix rather than clip: clipping crackles, scaling is inaudible.
        mix /= peak / 0.99
    return _encode(mix, rate)


SPECTROGRAM_WIDTH, SPECTROGRAM_HEIGHT = 800, 256
"""The plot area in pixels; margins for the axis labels come on top."""
_DYNAMIC_RANGE_DB = 80.0
# Dark to bright, perceptually even (close to matplotlib's "inferno").
_PALETTE = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float32,
)


@tool(resources=_LIGHT)
def audio_spectrogram(audio: Audio) -> Image:
    """Draw a picture of a recording's frequencies over time (a spectrogram), to see speech, music or noise.

    Args:
        audio: the recording to picture.

    Returns:
        A PNG picture: time in seconds left to right, frequency in kHz upward, loud parts
        bright and quiet ones dark (over an 80 dB range).
    """
    samples, rate = audio.to_array()
    mono = samples.mean(axis=1)
    n_fft = 2048 if rate >= 32_000 else 1024 if rate >= 16_000 else 512
    if len(mono) < n_fft:
        mono = np.pad(mono, (0, n_fft - len(mono)))
    # At most two analysis windows per pixel column: an hour of sound costs no more than a minute of it.
    hop = max(n_fft // 4, (len(mono) - n_fft) // (2 * SPECTROGRAM_WIDTH) + 1)
    starts = np.arange(0, len(mono) - n_fft + 1, hop)
    window = np.hanning(n_fft).astype(np.float32)
    frames = np.stack([mono[s : s + n_fft] for s in starts]) * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    decibels = 10 * np.log10(power + 1e-12)
    top = decibels.max()
    level = np.clip((decibels - (top - _DYNAMIC_RANGE_DB)) / _DYNAMIC_RANGE_DB, 0.0, 1.0)
    return Image.from_pil(_draw_spectrogram(level.T[::-1], duration=len(samples) / rate, max_hz=rate / 2))


TOOLS = [
    audio_trim,
    audio_concatenate,
    audio_convert,
    audio_resample,
    audio_duration,
    audio_mix,
    audio_spectrogram,
]


def _draw_spectrogram(level: np.ndarray, duration: float, max_hz: float) -> PILImage.Image:
    """Colour a (frequency x time) array of 0-1 levels, highest frequency first, and label its axes."""
    from PIL import Image as PILImageModule
    from PIL import ImageDraw

    stops = np.linspace(0.0, 1.0, len(_PALETTE))
    rgb = np.stack([np.interp(level, stops, _PALETTE[:, c]) for c in range(3)], axis=-1).astype(np.uint8)
    plot = PILImageModule.fromarray(rgb, "RGB").resize(
        (SPECTROGRAM_WIDTH, SPECTROGRAM_HEIGHT), PILImageModule.Resampling.BILINEAR
    )
    left, bottom = 52, 20
    canvas = PILImageModule.new("RGB", (SPECTROGRAM_WIDTH + left + 8, SPECTROGRAM_HEIGHT + bottom + 8), "white")
    canvas.paste(plot, (left, 4))
    draw = ImageDraw.Draw(canvas)
    for fraction in (0.0, 0.5, 1.0):
        y = 4 + round((1 - fraction) * (SPECTROGRAM_HEIGHT - 1))
        draw.line([(left - 4, y), (left - 1, y)], fill="black")
        draw.text((2, max(0, y - 6)), f"{fraction * max_hz / 1000:.1f} kHz", fill="black")
    for fraction in (0.0, 0.5, 1.0):
        x = left + round(fraction * (SPECTROGRAM_WIDTH - 1))
        draw.line([(x, SPECTROGRAM_HEIGHT + 4), (x, SPECTROGRAM_HEIGHT + 7)], fill="black")
        label = f"{fraction * duration:.1f} s"
        draw.text((min(x, canvas.width - 6 * len(label)), SPECTROGRAM_HEIGHT + 8), label, fill="black")
    return canvas


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
