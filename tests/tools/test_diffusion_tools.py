"""text_to_image and image_edit on tiny random SD / InstructPix2Pix pipelines loaded through from_pretrained."""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import huggingface_hub.constants
import numpy as np
import pytest
from PIL import Image as PILImage

from patchbay import InputError, Registry
from patchbay.errors import ConfigError
from patchbay.orchestrator import InProcessBackend
from patchbay.tools._invoke import ToolCall
from patchbay.tools.builtin._models import best_device
from patchbay.tools.builtin._pictures import decode_picture, fit_size
from patchbay.tools.builtin._pipelines import MAX_SEED
from patchbay.tools.builtin.diffusion import EDIT_LONGEST_SIDE, ImageEdit, TextToImage

pytest.importorskip("diffusers")
pytestmark = pytest.mark.usefixtures("torch_single_thread", "hub_offline")

FAST = {"steps": 2, "width": 72, "height": 64}


@pytest.fixture
def painter(tiny_sd_dir, monkeypatch) -> TextToImage:
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tiny_sd_dir))
    tool = TextToImage()
    tool.setup()
    return tool


@pytest.fixture
def editor(tiny_pix2pix_dir, monkeypatch) -> ImageEdit:
    monkeypatch.setenv("PATCHBAY_IMAGE_EDIT_MODEL", str(tiny_pix2pix_dir))
    tool = ImageEdit()
    tool.setup()
    return tool


def decoded(image) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(image.read_bytes()))
    picture.load()
    return picture


def photo(size=(72, 64)) -> PILImage.Image:
    img = PILImage.new("RGB", size, (200, 40, 40))
    img.paste((30, 30, 220), (0, 0, size[0] // 2, size[1] // 2))
    return img


# -- text_to_image -------------------------------------------------------------------------
def test_draws_a_png_of_the_requested_size(painter):
    image = painter.run("a photo of a cat", seed=1, **FAST)
    picture = decoded(image)
    assert image.mime == "image/png" and picture.format == "PNG"
    assert picture.size == (72, 64) and picture.mode == "RGB"
    assert np.asarray(picture).std() > 0, "a real picture, not a blank canvas"


def test_a_seed_gives_the_same_bytes_again_and_after_a_fresh_load(painter):
    first = painter.run("a red sofa", seed=7, **FAST).read_bytes()
    assert painter.run("a red sofa", seed=7, **FAST).read_bytes() == first
    again = TextToImage()
    again.setup()
    assert again.run("a red sofa", seed=7, **FAST).read_bytes() == first
    assert painter.run("a red sofa", seed=8, **FAST).read_bytes() != first


def test_without_a_seed_a_random_one_is_recorded_and_reproduces_the_picture(painter):
    image = painter.run("a blue dog", **FAST)
    recorded = decoded(image).text
    seed = int(recorded["seed"])
    assert 0 <= seed <= MAX_SEED
    assert image.name == f"text_to_image-seed{seed}.png"
    assert recorded["prompt"] == "a blue dog" and recorded["steps"] == "2" and recorded["width"] == "72"
    assert recorded["model"] == painter.loaded_model == str(painter.model_id())
    assert painter.run("a blue dog", seed=seed, **FAST).read_bytes() == image.read_bytes()


def test_the_prompt_and_negative_prompt_steer_the_picture(painter):
    plain = painter.run("a cat", seed=3, **FAST).read_bytes()
    assert painter.run("a dog", seed=3, **FAST).read_bytes() != plain
    assert painter.run("a cat", negative_prompt="blue", seed=3, **FAST).read_bytes() != plain


def test_loaded_once_on_the_best_device(painter):
    device, dtype = best_device()
    assert type(painter.pipeline).__name__ == "StableDiffusionPipeline"
    assert painter.pipeline.device.type == device and painter.pipeline.unet.dtype == dtype
    assert painter.pipeline.unet.training is False


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "  \n "}, "prompt is empty"),
        ({"prompt": "cat " * 300}, "characters long"),
        ({"prompt": "a cat", "negative_prompt": "x" * 1001}, "characters long"),
        ({"prompt": "a cat", "width": 100}, "multiple of 8 pixels, got 100; use 96 or 104"),
        ({"prompt": "a cat", "height": 2048}, "between 64 and 1024"),
        ({"prompt": "a cat", "width": 0}, "between 64 and 1024"),
        ({"prompt": "a cat", "steps": 0}, "steps must be between 1 and 150"),
        ({"prompt": "a cat", "guidance_scale": -1.0}, "guidance_scale must be between 0 and 30"),
        ({"prompt": "a cat", "seed": -5}, "seed must be between 0 and"),
    ],
)
def test_bad_arguments_are_input_errors_before_any_model_runs(arguments, message):
    with pytest.raises(InputError, match=message):
        TextToImage().run(**arguments)  # never set up: arguments are checked first


async def test_through_the_backend_the_picture_becomes_an_artifact_of_the_task(tiny_sd_dir, monkeypatch, store):
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tiny_sd_dir))
    (spec,) = Registry().add(TextToImage)
    backend = InProcessBackend(store)
    args = {"prompt": "a photo of a cat", "seed": 5, **FAST}
    try:
        first = await backend.run(spec, ToolCall(spec.name, args, request_id="r1", task_id=3))
        second = await backend.run(spec, ToolCall(spec.name, args, request_id="r1", task_id=4))
        instance = backend.instance(spec)
    finally:
        await backend.close()
    assert first.kind == "image" and first.value == second.value, "one set-up instance, the same seeded picture"
    artifact = store.get(first.value)
    assert artifact.path.is_file() and artifact.mime == "image/png" and artifact.name == "text_to_image-seed5.png"
    assert [(p.source, p.request_id, p.task_id, p.tool) for p in artifact.provenance] == [
        ("task", "r1", 3, "text_to_image"),
        ("task", "r1", 4, "text_to_image"),
    ]
    with PILImage.open(artifact.path) as img:
        assert img.size == (72, 64)
    assert instance is backend.instance(spec)


def test_memory_savers_are_applied_and_offload_is_skipped_without_a_gpu(tiny_sd_dir, monkeypatch):
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tiny_sd_dir))
    monkeypatch.setenv("PATCHBAY_DIFFUSION_MEMORY", "attention-slicing, vae-tiling, model-offload")
    tool = TextToImage()
    tool.setup()
    processors = {type(p).__name__ for p in tool.pipeline.unet.attn_processors.values()}
    assert processors == {"SlicedAttnProcessor"}
    assert tool.pipeline.vae.use_tiling
    if best_device()[0] == "cpu":
        assert tool.pipeline.device.type == "cpu"
    assert decoded(tool.run("a cat", seed=2, **FAST)).size == (72, 64)


@pytest.mark.parametrize("value", ["attention-slicing,turbo", "model-offload,sequential-offload"])
def test_a_bad_memory_setting_is_a_config_error(tiny_sd_dir, monkeypatch, value):
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tiny_sd_dir))
    monkeypatch.setenv("PATCHBAY_DIFFUSION_MEMORY", value)
    with pytest.raises(ConfigError, match="PATCHBAY_DIFFUSION_MEMORY"):
        TextToImage().setup()


# -- availability ------------------------------------------------------------------------------
def test_available_from_a_local_directory(tiny_sd_dir, tiny_pix2pix_dir, monkeypatch):
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tiny_sd_dir))
    monkeypatch.setenv("PATCHBAY_IMAGE_EDIT_MODEL", str(tiny_pix2pix_dir))
    assert TextToImage.available().ok and ImageEdit.available().ok


@pytest.mark.parametrize(
    ("tool", "default"),
    [(TextToImage, "stable-diffusion-v1-5/stable-diffusion-v1-5"), (ImageEdit, "timbrooks/instruct-pix2pix")],
)
def test_uncached_default_weights_are_a_state_with_the_fix_not_a_crash(monkeypatch, tmp_path, tool, default):
    monkeypatch.delenv(f"PATCHBAY_{tool.name.upper()}_MODEL", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty, whatever this machine holds

    def no_network(*args, **kwargs):
        raise AssertionError("the availability check must not touch the network when offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    availability = tool.available()
    assert not availability.ok
    assert default in availability.reason and f"hf download {default}" in availability.reason
    assert f"PATCHBAY_{tool.name.upper()}_MODEL" in availability.reason
    assert tool.name not in {s.name for s in _registry_of(tool).plannable()}


def _registry_of(tool) -> Registry:
    registry = Registry()
    registry.add(tool)
    return registry


def test_setup_without_weights_is_a_config_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tmp_path))  # a directory with no model in it
    with pytest.raises(ConfigError, match="PATCHBAY_TEXT_TO_IMAGE_MODEL") as info:
        TextToImage().setup()
    assert str(tmp_path) in str(info.value)


# -- image_edit --------------------------------------------------------------------------------
def test_edit_keeps_the_size_and_is_deterministic_with_a_seed(editor, stored_image):
    source = stored_image(photo((72, 64)))
    first = editor.run(source, "make it snowy", steps=2, seed=11)
    picture = decoded(first)
    assert picture.size == (72, 64) and picture.format == "PNG"
    assert editor.run(source, "make it snowy", steps=2, seed=11).read_bytes() == first.read_bytes()
    assert editor.run(source, "make it snowy", steps=2, seed=12).read_bytes() != first.read_bytes()
    assert picture.text["instruction"] == "make it snowy" and picture.text["source"] == source.handle
    assert first.name == "image_edit-seed11.png"


def test_edit_rounds_odd_sizes_to_multiples_of_eight(editor, stored_image):
    odd = decoded(editor.run(stored_image(photo((77, 70))), "make it blue", steps=1, seed=0))
    assert odd.size == (80, 72)


def test_big_pictures_are_fitted_to_the_longest_side_and_decoded_at_reduced_scale(stored_image):
    # Running even the tiny model at 768 px is slow (its VAE only halves the picture), so the sizing is checked here.
    assert fit_size(1600, 1000, longest=EDIT_LONGEST_SIDE) == (768, 480)
    assert fit_size(1000, 1600, longest=EDIT_LONGEST_SIDE) == (480, 768)
    big = stored_image(photo((3000, 2000)), format="JPEG")
    picture = decode_picture(big, draft_size=(EDIT_LONGEST_SIDE, EDIT_LONGEST_SIDE))
    assert picture.mode == "RGB" and picture.size == (1500, 1000), "JPEG decoded at half scale, still above 768"


def test_edit_accepts_transparent_and_grey_pictures(editor, stored_image):
    for img in (photo().convert("RGBA"), photo().convert("L"), photo().convert("P")):
        assert decoded(editor.run(stored_image(img), "make it snowy", steps=1, seed=0)).size == (72, 64)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"instruction": ""}, "instruction is empty"),
        ({"instruction": "make it snowy", "image_guidance_scale": 0.5}, "image_guidance_scale must be between 1"),
        ({"instruction": "make it snowy", "steps": 500}, "steps must be between"),
    ],
)
def test_edit_bad_arguments_are_input_errors(editor, stored_image, arguments, message):
    with pytest.raises(InputError, match=message):
        editor.run(stored_image(photo()), **arguments)


def test_edit_of_a_truncated_picture_is_an_input_error(editor, stored_image, stored_bytes):
    data = stored_image(photo()).read_bytes()
    with pytest.raises(InputError, match="corrupt or truncated"):
        editor.run(stored_bytes(data[: len(data) // 2], "image/png"), "make it snowy")


# -- registration ------------------------------------------------------------------------------
def test_both_register_as_documented_image_tools_with_gpu_resources():
    registry = Registry()
    registry.add(TextToImage, ImageEdit)
    draw, edit = registry.get("text_to_image"), registry.get("image_edit")
    assert [p.name for p in draw.params] == [
        "prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "seed",
    ]  # fmt: skip
    assert [(p.name, p.kind, p.required) for p in edit.params[:2]] == [
        ("image", "image", True),
        ("instruction", "text", True),
    ]
    for spec in (draw, edit):
        assert spec.is_class and spec.output_kind == "image"
        assert spec.description and spec.output_description and all(p.description for p in spec.params)
        assert 0 < spec.resources.gpu <= 0.5 and spec.resources.memory_mb >= 4000
    assert "no input picture" in draw.description and "image_edit" in draw.description
    assert "instruction" in edit.description


def test_importing_the_module_does_not_import_torch_or_diffusers():
    code = "import sys, patchbay.tools.builtin.diffusion; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
