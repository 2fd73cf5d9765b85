"""Helpers for the built-in tool tests: make sine tones, decode tool outputs, find a tone's pitch."""

from __future__ import annotations

import io

import numpy as np
import soundfile
from PIL import Image as PILImage

from patchbay import Audio, Image


def sine(freq: float, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone, frames x channels, float32."""
    t = np.arange(round(seconds * rate)) / rate
    tone = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(tone[:, None], channels, axis=1)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency in the first channel, in Hz."""
    spectrum = np.abs(np.fft.rfft(samples[:, 0]))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def decode_image(media: Image) -> PILImage.Image:
    """Open a tool's output bytes with Pillow, keeping the detected format."""
    img = PILImage.open(io.BytesIO(media.read_bytes()))
    img.load()
    return img


def decode_audio(media: Audio) -> tuple[np.ndarray, int, str]:
    """Decode a tool's output: samples (frames x channels), rate, and the container format."""
    data = media.read_bytes()
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate, soundfile.info(io.BytesIO(data)).format
