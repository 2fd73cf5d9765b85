"""Fixtures for the built-in tool tests: real images and sine-wave recordings in a real artifact store."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import soundfile
from PIL import Image as PILImage

from patchbay import ArtifactStore, Audio, Image, Provenance
from patchbay.sniff import sniff_mime

_ATTACHMENT = Provenance("attachment", filename="fixture")


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path)


@pytest.fixture
def stored_image(store) -> Callable[..., Image]:
    """Store a PIL image (encoded as ``format``) and hand it over as a tool would get it."""

    def make(img: PILImage.Image, format: str = "PNG") -> Image:
        buf = io.BytesIO()
        img.save(buf, format=format)
        data = buf.getvalue()
        return Image(store.put_bytes(data, sniff_mime(data), _ATTACHMENT))

    return make


@pytest.fixture
def stored_audio(store) -> Callable[..., Audio]:
    """Store float samples (frames x channels) as a sound file and hand it over as a tool would get it."""

    def make(samples: np.ndarray, rate: int, format: str = "WAV") -> Audio:
        buf = io.BytesIO()
        soundfile.write(buf, samples, rate, format=format)
        data = buf.getvalue()
        return Audio(store.put_bytes(data, sniff_mime(data), _ATTACHMENT))

    return make


@pytest.fixture
def stored_bytes(store) -> Callable[[bytes, str], Image | Audio]:
    """Store raw bytes under a claimed MIME type, for corrupt and mislabelled inputs."""

    def make(data: bytes, mime: str) -> Image | Audio:
        media = Image if mime.startswith("image/") else Audio
        return media(store.put_bytes(data, mime, _ATTACHMENT))

    return make
