"""The annotator tools and controlnet_generate: real Canny on real photos, random-weight detectors and ControlNets."""

from __future__ import annotations

import importlib.util
import io
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from patchbay import InputError, Provenance, Registry
from patchbay.errors import ConfigError
from patchbay.media import Image
from patchbay.sniff import sniff_mime
from patchbay.tools.builtin.controlnet import (
    CannyEdges,
    ControlNetGenerate,
    DepthMap,
    LineArt,
    PoseMap,
    ScribbleMap,
)

if importlib.util.find_spec("controlnet_aux") is None:  # never import it whole: its __init__ needs torchvision
    pytest.skip("controlnet_aux is not installed", allow_module_level=True)
cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.usefixtures("torch_single_thread", "hub_offline")

FAST = {"steps": 2, "width": 72, "height": 64}


def decoded(image) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(image.read_bytes()))
    picture.load()
    return picture


def pixels(image) -> np.ndarray:
    return np.asarray(decoded(image).convert("RGB"))


def set_up(cls):
    tool = cls()
    tool.setup()
    return tool


@pytest.fixture
def annotator_weights(tiny_annotators_dir, tiny_depth_dir, monkeypatch):
    monkeypatch.setenv("PATCHBAY_ANNOTATORS_MODEL", str(tiny_annotators_dir))
    monkeypatch.setenv("PATCHBAY_DEPTH_MAP_MODEL", str(tiny_depth_dir))
    return tiny_annotators_dir


@pytest.fixture
def task_output(store):
    """Store a picture as if a task of ``tool`` had made it (its provenance says so)."""

    def make(img: PILImage.Image, tool: str) -> Image:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return Image(store.put_bytes(buf.getvalue(), "image/png", Provenance("task", "r0", 1, tool)))

    return make


# -- canny_edges: real edges on real photos ------------------------------------------------------
@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee"])
def test_canny_edges_of_real_photos_are_opencvs_canny(stored_image, name):
    photo = getattr(skimage_data, name)()  # 512x512 RGB, 512x512 grey, 400x600 RGB
    source = PILImage.fromarray(photo)
    edges = pixels(set_up(CannyEdges).run(stored_image(source)))
    rgb = np.asarray(source.convert("RGB"))
    expected = cv2.Canny(rgb, 100, 200) if min(rgb.shape[:2]) == 512 else None
    assert edges.shape == (source.height, source.width, 3)
    assert (edges[..., 0] == edges[..., 1]).all() and (edges[..., 1] == edges[..., 2]).all(), "white on black"
    share = (edges[..., 0] > 127).mean()
    assert 0.01 < share < 0.3, f"{name}: {share:.1%} of pixels are edges"
    if expected is not None:  # at 512 px nothing is resized: exactly OpenCV's Canny
        assert (edges[..., 0] == expected).all()


def test_canny_thresholds_control_how_many_edges_are_kept(stored_image):
    source = stored_image(PILImage.fromarray(skimage_data.astronaut()))
    tool = set_up(CannyEdges)
    fine = (pixels(tool.run(source, low_threshold=50, high_threshold=100)) > 127).mean()
    coarse = (pixels(tool.run(source, low_threshold=150, high_threshold=250)) > 127).mean()
    assert fine > 1.5 * coarse > 0


def test_canny_keeps_odd_sizes_and_reads_transparent_grey_and_jpeg_photos(stored_image):
    chelsea = PILImage.fromarray(skimage_data.chelsea())  # 451x300
    tool = set_up(CannyEdges)
    for img, fmt in (
        (chelsea, "PNG"),
        (chelsea, "JPEG"),
        (chelsea.convert("RGBA"), "PNG"),
        (chelsea.convert("L"), "PNG"),
    ):
        edges = decoded(tool.run(stored_image(img, format=fmt)))
        assert edges.size == (451, 300) and edges.mode == "RGB" and edges.format == "PNG"


@pytest.mark.parametrize(("low", "high"), [(200, 100), (-1, 100), (100, 300), (100, 100)])
def test_canny_thresholds_out_of_order_are_input_errors(stored_image, low, high):
    with pytest.raises(InputError, match="low_threshold < high_threshold"):
        set_up(CannyEdges).run(stored_image(PILImage.new("RGB", (64, 64))), low_threshold=low, high_threshold=high)


def test_canny_and_standard_line_art_are_always_available(monkeypatch, tmp_path):
    monkeypatch.setenv("PATCHBAY_ANNOTATORS_MODEL", str(tmp_path))  # no weights at all
    assert CannyEdges.available().ok
    line_art = LineArt.available()
    assert line_art.ok and "only style 'standard'" in line_art.reason and "sk_model.pth" in line_art.reason


# -- annotators with weights: controlnet_aux's own loading code on random weights -----------------
def test_pose_map_loads_the_openpose_body_network_through_controlnet_aux(annotator_weights, stored_image):
    import torch

    tool = set_up(PoseMap)
    saved = torch.load(annotator_weights / "body_pose_model.pth")
    loaded = tool.annotator.body.model.state_dict()
    assert len(loaded) == len(saved) > 100
    # controlnet_aux's util.transfer maps each network key onto the file's (which lacks the first component).
    assert all(torch.equal(value, saved[key.split(".", 1)[1]].float()) for key, value in loaded.items())
    source = stored_image(PILImage.fromarray(skimage_data.astronaut()).resize((96, 80)))
    skeleton = pixels(tool.run(source))
    assert skeleton.shape == (80, 96, 3) and skeleton.dtype == np.uint8


def test_scribble_map_runs_pidinet_and_draws_bold_strokes(annotator_weights, stored_image):
    tool = set_up(ScribbleMap)
    scribble = pixels(tool.run(stored_image(PILImage.fromarray(skimage_data.coffee()).resize((90, 60)))))
    assert scribble.shape == (60, 90, 3)
    assert set(np.unique(scribble)) <= {0, 255}, "thresholded strokes, nothing in between"


def test_depth_map_is_grey_spans_the_full_range_and_is_repeatable(annotator_weights, stored_image):
    tool = set_up(DepthMap)
    source = stored_image(PILImage.fromarray(skimage_data.astronaut()).resize((80, 64)))
    depth = pixels(tool.run(source))
    assert depth.shape == (64, 80, 3)
    assert (depth[..., 0] == depth[..., 2]).all()
    assert depth.min() == 0 and depth.max() == 255
    assert (pixels(tool.run(source)) == depth).all()


@pytest.mark.parametrize("style", ["standard", "realistic", "coarse"])
def test_line_art_styles(annotator_weights, stored_image, style):
    chelsea = PILImage.fromarray(skimage_data.chelsea()).resize((90, 60))
    lines = decoded(set_up(LineArt).run(stored_image(chelsea), style=style))
    assert lines.size == (90, 60) and lines.mode == "RGB"


def test_line_art_standard_draws_the_photos_lines(stored_image):
    lines = pixels(set_up(LineArt).run(stored_image(PILImage.fromarray(skimage_data.astronaut()))))
    assert 0.01 < (lines[..., 0] > 64).mean() < 0.5


def test_a_neural_line_style_without_weights_says_how_to_get_them(monkeypatch, tmp_path, stored_image):
    monkeypatch.setenv("PATCHBAY_ANNOTATORS_MODEL", str(tmp_path))
    tool = set_up(LineArt)
    with pytest.raises(ConfigError, match="hf download lllyasviel/Annotators sk_model.pth") as info:
        tool.run(stored_image(PILImage.new("RGB", (64, 64))), style="realistic")
    assert "style='standard'" in str(info.value)


@pytest.mark.parametrize(("tool", "needs"), [(PoseMap, "body_pose_model.pth"), (ScribbleMap, "table5_pidinet.pth")])
def test_annotators_without_weights_are_unavailable_with_the_fix(monkeypatch, tmp_path, tool, needs):
    monkeypatch.setenv("PATCHBAY_ANNOTATORS_MODEL", str(tmp_path))
    availability = tool.available()
    assert (
        not availability.ok
        and needs in availability.reason
        and "hf download lllyasviel/Annotators" in availability.reason
    )
    with pytest.raises(ConfigError, match=needs):
        tool().setup()


@pytest.mark.parametrize("content", ["garbage", "wrong shapes"])
def test_damaged_annotator_weights_are_a_config_error(monkeypatch, tmp_path, content):
    import torch

    path = tmp_path / "table5_pidinet.pth"
    if content == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 10)
    else:
        torch.save({"state_dict": {"module.init_block.weight": torch.zeros(2, 2)}}, path)
    monkeypatch.setenv("PATCHBAY_ANNOTATORS_MODEL", str(tmp_path))
    assert ScribbleMap.available().ok, "the file is there; only loading can tell it is damaged"
    with pytest.raises(ConfigError, match="the scribble annotator cannot load table5_pidinet.pth"):
        ScribbleMap().setup()


def test_uncached_hub_weights_are_unavailable_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("PATCHBAY_ANNOTATORS_MODEL", "nobody-here/no-such-annotators")
    monkeypatch.setenv("PATCHBAY_DEPTH_MAP_MODEL", "nobody-here/no-such-depth")

    def no_network(*args, **kwargs):
        raise AssertionError("the availability check must not touch the network when offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    for tool, model in ((PoseMap, "nobody-here/no-such-annotators"), (DepthMap, "nobody-here/no-such-depth")):
        availability = tool.available()
        assert not availability.ok and f"hf download {model}" in availability.reason


def test_annotators_read_bad_pictures_as_input_errors(stored_image, stored_bytes):
    data = stored_image(PILImage.new("RGB", (64, 64), "white")).read_bytes()
    with pytest.raises(InputError, match="corrupt or truncated"):
        set_up(CannyEdges).run(stored_bytes(data[:60], "image/png"))


# -- controlnet_generate -------------------------------------------------------------------------
@pytest.fixture
def generator(tiny_sd_dir, tiny_controlnet_dirs, annotator_weights, monkeypatch) -> ControlNetGenerate:
    monkeypatch.setenv("PATCHBAY_CONTROLNET_GENERATE_MODEL", str(tiny_sd_dir))
    for condition, directory in tiny_controlnet_dirs.items():
        monkeypatch.setenv(f"PATCHBAY_CONTROLNET_{condition.upper()}_MODEL", str(directory))
    return set_up(ControlNetGenerate)


@pytest.fixture
def portrait(stored_image) -> Image:
    return stored_image(PILImage.fromarray(skimage_data.astronaut()).resize((64, 96)))


def test_generates_from_a_photo_following_its_edges(generator, portrait):
    image = generator.run(portrait, "a cat", condition="canny", seed=4, **FAST)
    picture = decoded(image)
    assert picture.size == (72, 64) and picture.format == "PNG"
    assert image.name == "controlnet_generate-seed4.png"
    assert picture.text["condition"] == "canny" and picture.text["source"] == portrait.handle
    assert picture.text["image_is_map"] == "False"
    assert generator.run(portrait, "a cat", condition="canny", seed=4, **FAST).read_bytes() == image.read_bytes()


def test_each_condition_uses_its_own_controlnet_and_annotator(generator, portrait, tiny_controlnet_dirs):
    canny = generator.run(portrait, "a cat", condition="canny", seed=4, **FAST)
    pose = generator.run(portrait, "a cat", condition="pose", seed=4, **FAST)
    assert pose.read_bytes() != canny.read_bytes()
    assert decoded(pose).text["controlnet"] == str(tiny_controlnet_dirs["pose"])
    assert decoded(canny).text["controlnet"] == str(tiny_controlnet_dirs["canny"])


def test_given_only_a_width_the_photo_shape_is_kept(generator, portrait):
    assert decoded(generator.run(portrait, "a cat", width=64, steps=1, seed=0)).size == (64, 96)


def test_a_map_is_used_as_it_is(generator, portrait, task_output):
    edges = PILImage.fromarray(cv2.Canny(np.asarray(PILImage.open(portrait.path).convert("RGB")), 100, 200)).convert(
        "RGB"
    )
    from_photo = generator.run(portrait, "a cat", seed=1, **FAST).read_bytes()
    given_map = task_output(edges, "image_caption")  # not made by canny_edges: only the flag says it is a map
    flagged = generator.run(given_map, "a cat", image_is_map=True, seed=1, **FAST)
    assert decoded(flagged).text["image_is_map"] == "True"
    made_by_canny = task_output(edges.rotate(180), "canny_edges")
    from_provenance = generator.run(made_by_canny, "a cat", seed=1, **FAST)
    assert decoded(from_provenance).text["image_is_map"] == "True"
    assert len({from_photo, flagged.read_bytes(), from_provenance.read_bytes()}) == 3


def test_a_map_of_another_condition_is_refused(generator, task_output):
    skeleton = task_output(PILImage.new("RGB", (72, 64)), "pose_map")
    with pytest.raises(InputError, match="is a pose map made by pose_map; use condition='pose'"):
        generator.run(skeleton, "a cat", condition="canny", **FAST)


def test_a_condition_without_its_controlnet_says_how_to_get_it(generator, portrait, monkeypatch):
    monkeypatch.setenv("PATCHBAY_CONTROLNET_DEPTH_MODEL", "nobody-here/no-such-controlnet")
    with pytest.raises(ConfigError, match="hf download nobody-here/no-such-controlnet") as info:
        generator.run(portrait, "a cat", condition="depth", **FAST)
    assert "PATCHBAY_CONTROLNET_DEPTH_MODEL" in str(info.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "a cat", "control_strength": 3.0}, "control_strength must be between 0 and 2"),
        ({"prompt": "a cat", "width": 100}, "multiple of 8"),
        ({"prompt": "a cat", "condition": "normals"}, "condition must be one of"),
    ],
)
def test_controlnet_bad_arguments_are_input_errors(portrait, arguments, message):
    with pytest.raises(InputError, match=message):
        ControlNetGenerate().run(portrait, **arguments)


def test_controlnet_availability_lists_the_conditions_that_cannot_run(
    tiny_sd_dir, tiny_controlnet_dirs, annotator_weights, monkeypatch
):
    monkeypatch.setenv("PATCHBAY_CONTROLNET_GENERATE_MODEL", str(tiny_sd_dir))
    monkeypatch.setenv("PATCHBAY_CONTROLNET_CANNY_MODEL", str(tiny_controlnet_dirs["canny"]))
    for condition in ("pose", "depth", "lineart", "scribble"):
        monkeypatch.setenv(f"PATCHBAY_CONTROLNET_{condition.upper()}_MODEL", f"nobody-here/{condition}")
    availability = ControlNetGenerate.available()
    assert availability.ok
    for condition in ("pose", "depth", "lineart", "scribble"):
        assert f"condition '{condition}' unavailable" in availability.reason
    monkeypatch.setenv("PATCHBAY_CONTROLNET_CANNY_MODEL", "nobody-here/canny")
    assert not ControlNetGenerate.available().ok


# -- registration and imports --------------------------------------------------------------------
def test_all_register_as_documented_image_tools():
    registry = Registry()
    registry.add(CannyEdges, PoseMap, DepthMap, LineArt, ScribbleMap, ControlNetGenerate)
    for spec in registry:
        assert spec.is_class and spec.output_kind == "image" and spec.params[0].kind == "image"
        assert spec.description and spec.output_description and all(p.description for p in spec.params)
    generate = registry.get("controlnet_generate")
    assert generate.param("condition").display_type == '"canny"|"pose"|"depth"|"lineart"|"scribble"'
    assert "pose of this photo" in generate.description and "image_edit" in generate.description
    assert generate.resources.gpu > 0 and registry.get("canny_edges").resources.gpu == 0


def test_detectors_import_without_torchvision_and_without_controlnet_aux_init():
    code = (
        "import sys; from patchbay.tools.builtin._annotators import detector_module; "
        "detector_module('canny'); detector_module('open_pose.body'); detector_module('pidi'); "
        "print(hasattr(sys.modules['controlnet_aux'], 'CannyDetector'), 'torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_importing_the_module_does_not_import_torch_or_controlnet_aux():
    code = (
        "import sys, patchbay.tools.builtin.controlnet; print('torch' in sys.modules, 'controlnet_aux' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_stored_maps_are_pngs(stored_image):
    edges = set_up(CannyEdges).run(stored_image(PILImage.new("RGB", (64, 64), "white")))
    assert sniff_mime(edges.read_bytes()) == "image/png" and edges.name == "canny_edges.png"
