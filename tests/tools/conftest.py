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


# -- tiny random diffusion models, built once per session (see tiny_diffusion.py) -------------------
@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """A random SD 1.5-shaped pipeline saved with save_pretrained (text_to_image, controlnet_generate's base)."""
    from tiny_diffusion import save_tiny_stable_diffusion

    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def tiny_pix2pix_dir(tmp_path_factory):
    """A random InstructPix2Pix pipeline (image_edit)."""
    from tiny_diffusion import save_tiny_stable_diffusion

    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-pix2pix"), instruct_pix2pix=True)


@pytest.fixture(scope="session")
def tiny_controlnet_dirs(tmp_path_factory):
    """Random ControlNets for the canny and pose conditions (different seeds, so they differ)."""
    from tiny_diffusion import save_tiny_controlnet

    return {
        condition: save_tiny_controlnet(tmp_path_factory.mktemp(f"tiny-controlnet-{condition}"), seed=seed)
        for seed, condition in enumerate(("canny", "pose"))
    }


@pytest.fixture(scope="session")
def tiny_annotators_dir(tmp_path_factory):
    """Random weights for the pose, line-art and scribble detectors, under lllyasviel/Annotators' file names."""
    from tiny_diffusion import save_tiny_annotators

    return save_tiny_annotators(tmp_path_factory.mktemp("tiny-annotators"))


@pytest.fixture(scope="session")
def tiny_depth_dir(tmp_path_factory):
    """A random DPT depth estimator with its image processor."""
    from tiny_diffusion import save_tiny_depth_model

    return save_tiny_depth_model(tmp_path_factory.mktemp("tiny-depth"))


@pytest.fixture
def torch_single_thread():
    """torch's default of one thread per core crawls (~20x) when another process holds a core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hub_offline(monkeypatch):
    """No network for model lookups: a model that is not on disk fails in ~0.1 s."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
