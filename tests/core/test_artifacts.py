"""The artifact store: content addressing, provenance, lying files, and paths that escape."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image as PILImage

from patchbay import ArtifactStore, Provenance
from patchbay.artifacts import is_handle
from patchbay.errors import InputError, UnknownArtifactError, WorkspaceError
from patchbay.media import Image


def _png(color="blue", size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_same_bytes_share_one_artifact_and_collect_provenance(tmp_path):
    store = ArtifactStore(tmp_path)
    a = store.put_bytes(_png(), "image/png", Provenance("task", "r1", 1, "draw"))
    b = store.put_bytes(_png(), "image/png", Provenance("task", "r2", 3, "paint"))
    assert a.id == b.id and is_handle(a.id)
    assert [p.request_id for p in store.get(a.id).provenance] == ["r1", "r2"]
    assert a.path.suffix == ".png" and a.path.read_bytes() == _png()
    c = store.put_bytes(_png("red"), "image/png", Provenance("task", "r1", 2, "draw"))
    assert c.id != a.id


def test_writes_leave_no_temporary_files(tmp_path):
    store = ArtifactStore(tmp_path)
    store.put_bytes(b"hello", "text/plain", Provenance("task", "r", 1, "t"))
    leftovers = [p for p in (tmp_path / "artifacts").rglob(".tmp-*")]
    assert leftovers == []


def test_attachment_is_checked_against_its_name(tmp_path):
    store = ArtifactStore(tmp_path / "ws")
    real = tmp_path / "photo.png"
    real.write_bytes(_png())
    art = store.put_file(real)
    assert art.mime == "image/png" and art.name == "photo.png"
    assert art.provenance[0].source == "attachment"

    liar = tmp_path / "notes.png"
    liar.write_text("just some text, not a picture")
    with pytest.raises(InputError, match="notes.png claims to be image/png but its content is text/plain"):
        store.put_file(liar)
    with pytest.raises(InputError, match="does not exist"):
        store.put_file(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        store.put_file(empty)


@pytest.mark.parametrize("reference", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt"])
def test_paths_outside_the_workspace_are_refused(tmp_path, reference):
    (tmp_path / "secret.txt").write_text("secret")
    store = ArtifactStore(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        store.resolve(reference)


def test_a_symlink_that_escapes_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    store = ArtifactStore(tmp_path / "ws")
    os.symlink(tmp_path / "secret.txt", tmp_path / "ws" / "link.txt")
    with pytest.raises(WorkspaceError, match="leads outside"):
        store.resolve("link.txt")


def test_resolve_accepts_handles_attachment_names_and_workspace_files(tmp_path):
    store = ArtifactStore(tmp_path)
    art = store.put_bytes(_png(), "image/png", Provenance("attachment", filename="cat.png"), name="cat.png")
    assert store.resolve(art.id) == store.get(art.id)
    assert store.resolve("cat.png", {"cat.png": art.id}).id == art.id
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "dog.png").write_bytes(_png("green"))
    assert store.resolve("inbox/dog.png").mime == "image/png"
    with pytest.raises(UnknownArtifactError):
        store.resolve("art-0000000000000000")
    with pytest.raises(UnknownArtifactError, match="neither an artifact handle"):
        store.resolve("nothing-here.png")


def test_corrupt_and_oversized_images_fail_with_clear_errors(tmp_path):
    store = ArtifactStore(tmp_path)
    truncated = store.put_bytes(_png()[:40], "image/png", Provenance("task", "r", 1, "t"))
    with pytest.raises(InputError, match="corrupt or truncated|not an image"):
        Image(truncated).to_pil()
    big = store.put_bytes(_png(size=(400, 300)), "image/png", Provenance("task", "r", 1, "t"))
    with pytest.raises(InputError, match="above the limit"):
        Image(big).to_pil(max_pixels=1000)


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size: what a decompression bomb looks like before any pixel."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_an_input_error_not_a_crash(tmp_path):
    store = ArtifactStore(tmp_path)
    bomb = store.put_bytes(_png_header_claiming(20000, 20000), "image/png", Provenance("task", "r", 1, "t"))
    with pytest.raises(InputError, match="too large to decode safely"):
        Image(bomb).to_pil()
