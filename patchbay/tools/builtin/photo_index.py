"""A persistent, incremental embedding index of a photo folder, for ``image_search``.

``patchbay index DIR`` walks the folder the user points it at and stores, for each
picture, its path relative to that folder, size, modification time, sha256, a
normalized CLIP embedding and (with ``--captions``) a caption with its sentence
embedding. A later run embeds only what is new or changed: a file whose size and
mtime are unchanged is not even read, a changed file whose bytes hash the same is
not re-embedded, and a file that was moved or copied reuses the embedding stored
for its bytes. Deleted files leave the index; unreadable or corrupt pictures are
recorded as failures and tried again on the next run, and never stop it.

The index is one ``index.npz`` (vectors plus a JSON header) replaced atomically,
so a reader never sees half an index; a long run also saves every few hundred
pictures, so an interrupted run keeps most of its work.

Example:
    >>> index = PhotoIndex("~/Pictures", index_dir(workspace, "photos"))
    >>> counts = index.update(clip)            # clip: any ImageEncoder
    >>> counts.describe()
    'added 120, updated 0, removed 0, unchanged 0, failed 1 (embedded 120)'
    >>> index.search(clip.embed_texts(["a cat on a sofa"])[0], k=4)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ...errors import InputError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
"""Which files are pictures, by suffix (any case)."""
INDEX_FILE = "index.npz"
FORMAT_VERSION = 1
MAX_PIXELS = 200_000_000
"""Pictures above this many pixels are recorded as failures rather than decoded."""
_DECODE_SIDE = 512  # JPEGs decode at reduced scale down to about this: CLIP and BLIP look at 224-384 px
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What Pillow raises for corrupt, truncated, unsupported or oversized files.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class ImageEncoder(Protocol):
    """Turns pictures into normalized float32 vectors (one row each); ``model_id`` names the model."""

    model_id: str

    def embed_images(self, images: list[PILImage]) -> np.ndarray: ...


class TextEncoder(Protocol):
    """Turns texts into normalized float32 vectors (one row each); ``model_id`` names the model."""

    model_id: str

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


class Captioner(Protocol):
    """Describes a picture in one sentence; ``model_id`` names the model."""

    model_id: str

    def caption(self, image: PILImage) -> str: ...


@dataclass
class PhotoEntry:
    """One indexed picture; ``path`` is relative to the index root, with forward slashes."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    caption: str | None = None


@dataclass
class UpdateCounts:
    """What one :meth:`PhotoIndex.update` did.

    Attributes:
        added: pictures new to the index.
        updated: pictures already indexed whose content changed.
        removed: pictures deleted from the folder (or no longer readable) and dropped.
        unchanged: pictures kept as they were.
        failed: files that could not be read or decoded this run (see ``PhotoIndex.failures``).
        embedded: pictures that went through the image model (new bytes only).
        captioned: pictures that were captioned this run.
    """

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    embedded: int = 0
    captioned: int = 0

    def describe(self) -> str:
        text = (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, "
            f"unchanged {self.unchanged}, failed {self.failed} (embedded {self.embedded}"
        )
        return text + (f", captioned {self.captioned})" if self.captioned else ")")


@dataclass
class SearchHit:
    """One ranked picture: its file, its path in the index, cosine similarity and caption."""

    file: Path
    path: str
    score: float
    caption: str | None = None


@dataclass
class _Row:
    entry: PhotoEntry
    vector: np.ndarray
    caption_vector: np.ndarray | None = None


@dataclass
class _Work:
    path: str
    size: int
    mtime_ns: int
    embed: bool  # False: the picture is current and only needs a caption
    previous: _Row | None = field(default=None, repr=False)


def index_dir(workspace: Path | str, name: str) -> Path:
    """Where the index called ``name`` lives: ``<workspace>/indexes/<name>``.

    Raises:
        InputError: the name is not 1-64 letters, digits, ``_``, ``.`` or ``-`` (so it
            can never climb out of the workspace).
    """
    if not _NAME.match(name):
        raise InputError(
            f"index name {name!r} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return Path(workspace) / "indexes" / name


class PhotoIndex:
    """The embeddings of every picture under ``root_dir``, kept in ``index_path``.

    Opening an index that was built for another folder keeps its embeddings only for
    reuse by content: the next :meth:`update` indexes the new folder, and copies the
    vector of any picture whose bytes it has seen before.

    Attributes:
        root: the indexed folder, absolute.
        model: the image model the vectors come from (None before the first update).
        caption_model, text_model: the captioner and the sentence model, for indexes with captions.
        failures: relative path -> why the last update could not use that file.
        moved_from: the folder a loaded index was built for, when that is not ``root_dir``.

    Raises:
        InputError: ``index_path`` holds an index that cannot be read.
    """

    def __init__(self, root_dir: Path | str, index_path: Path | str):
        self.root = Path(root_dir).expanduser().resolve()
        self.index_path = Path(index_path)
        self.model: str | None = None
        self.caption_model: str | None = None
        self.text_model: str | None = None
        self.failures: dict[str, str] = {}
        self._rows: dict[str, _Row] = {}
        self._reusable: dict[str, _Row] = {}  # sha256 -> row, from an index of another folder
        stored_root, rows = self._load()
        self.moved_from: Path | None = None  # the folder a loaded index was built for, if not root_dir
        if stored_root is None or Path(stored_root) == self.root:
            self._rows = rows
        else:
            self.moved_from = Path(stored_root)
            self._reusable = {row.entry.sha256: row for row in rows.values()}

    @classmethod
    def open(cls, index_path: Path | str) -> PhotoIndex:
        """The index saved at ``index_path``, for its own folder.

        Raises:
            InputError: there is no index there, or it cannot be read.
        """
        file = Path(index_path) / INDEX_FILE
        if not file.is_file():
            raise InputError(f"no photo index at {index_path}")
        return cls(_read_header(file)["root"], index_path)

    # -- reading -------------------------------------------------------------------
    @property
    def entries(self) -> list[PhotoEntry]:
        """The indexed pictures, sorted by path."""
        return [self._rows[p].entry for p in sorted(self._rows)]

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def has_captions(self) -> bool:
        return any(row.caption_vector is not None for row in self._rows.values())

    def search(self, query: np.ndarray, k: int | None = None) -> list[SearchHit]:
        """Pictures ranked by cosine similarity of their image embedding to ``query`` (best first).

        Args:
            query: a normalized vector from the text side of the index's model.
            k: how many to return; all of them when None.
        """
        paths = sorted(self._rows)
        if not paths:
            return []
        matrix = np.stack([self._rows[p].vector for p in paths])
        return self._rank(paths, matrix, query, k)

    def search_captions(self, query: np.ndarray, k: int | None = None) -> list[SearchHit]:
        """Captioned pictures ranked by similarity of their caption's embedding to ``query``."""
        paths = sorted(p for p, row in self._rows.items() if row.caption_vector is not None)
        if not paths:
            return []
        matrix = np.stack([self._rows[p].caption_vector for p in paths])  # type: ignore[misc]
        return self._rank(paths, matrix, query, k)

    def _rank(self, paths: list[str], matrix: np.ndarray, query: np.ndarray, k: int | None) -> list[SearchHit]:
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != matrix.shape[1]:
            raise InputError(
                f"the query has {query.shape[0]} dimensions but the index holds {matrix.shape[1]}: "
                "it was built with another model"
            )
        scores = matrix @ query
        order = np.argsort(-scores, kind="stable")[: k if k is not None else len(paths)]
        return [
            SearchHit(self.root / paths[i], paths[i], float(scores[i]), self._rows[paths[i]].entry.caption)
            for i in order
        ]

    # -- updating ------------------------------------------------------------------
    def update(
        self,
        encoder: ImageEncoder,
        *,
        captioner: Captioner | None = None,
        text_encoder: TextEncoder | None = None,
        progress: bool = True,
        batch_size: int = 16,
        checkpoint_every: int = 256,
    ) -> UpdateCounts:
        """Bring the index up to date with the folder and save it.

        Args:
            encoder: the image model; if it differs from the one the index was built
                with, every picture is embedded again.
            captioner: caption pictures that have no caption yet (needs ``text_encoder``).
            text_encoder: the sentence model that embeds captions for caption search.
            progress: show a tqdm bar on stderr.
            batch_size: pictures per forward pass of the image model.
            checkpoint_every: save after about this many pictures, so an interrupted
                run keeps its work.

        Returns:
            The counts of added, updated, removed, unchanged and failed pictures.

        Raises:
            InputError: the folder does not exist, or a captioner comes without a text encoder.
        """
        if not self.root.is_dir():
            raise InputError(f"{self.root} is not a folder")
        if (captioner is None) != (text_encoder is None):
            raise InputError("captions need both a captioner and a text encoder")
        counts = UpdateCounts()
        if self.model is not None and self.model != encoder.model_id:
            self._reusable = {}
            self._rows = {p: _Row(r.entry, np.empty(0, np.float32)) for p, r in self._rows.items()}
            stale_vectors = True
        else:
            stale_vectors = False
        if captioner is not None and self.caption_model not in (None, captioner.model_id):
            for row in self._rows.values():
                row.entry.caption, row.caption_vector = None, None
        self.model = encoder.model_id
        if captioner is not None and text_encoder is not None:
            self.caption_model = captioner.model_id
            if self.text_model not in (None, text_encoder.model_id):
                self._embed_captions(text_encoder, list(self._rows.values()), refresh=True)
            self.text_model = text_encoder.model_id

        # Embeddings by content, taken before deleted files go: a moved file's bytes reappear under a new name.
        known = {**self._reusable, **{r.entry.sha256: r for r in self._rows.values() if r.vector.size}}
        on_disk = dict(self._scan())
        for path in [p for p in self._rows if p not in on_disk]:
            del self._rows[path]
            counts.removed += 1
        self.failures = {}
        work: list[_Work] = []
        for path, (size, mtime_ns) in on_disk.items():
            row = self._rows.get(path)
            if row is not None and not stale_vectors and row.entry.size == size and row.entry.mtime_ns == mtime_ns:
                counts.unchanged += 1
                if captioner is not None and row.entry.caption is None:
                    work.append(_Work(path, size, mtime_ns, embed=False, previous=row))
                continue
            work.append(_Work(path, size, mtime_ns, embed=True, previous=row))

        try:
            self._process(work, known, encoder, captioner, text_encoder, counts, progress, batch_size, checkpoint_every)
        finally:
            self._reusable = {}
            self.save()
        return counts

    def _process(
        self,
        work: list[_Work],
        known: dict[str, _Row],
        encoder: ImageEncoder,
        captioner: Captioner | None,
        text_encoder: TextEncoder | None,
        counts: UpdateCounts,
        progress: bool,
        batch_size: int,
        checkpoint_every: int,
    ) -> None:
        """Read, hash, decode, embed and caption ``work``, batching the image model's calls."""
        from tqdm import tqdm

        pending: list[tuple[_Work, PhotoEntry, PILImage]] = []
        since_save = 0
        with tqdm(total=len(work), desc="indexing", unit="photo", file=sys.stderr, disable=not progress) as bar:
            for item in work:
                try:
                    data = (self.root / item.path).read_bytes()
                except OSError as exc:
                    self._fail(item, f"cannot read: {exc.strerror or exc}", counts)
                    bar.update()
                    continue
                entry = PhotoEntry(item.path, item.size, item.mtime_ns, hashlib.sha256(data).hexdigest())
                source = (_same_bytes(item.previous, entry) or known.get(entry.sha256)) if item.embed else None
                if source is not None:
                    # These bytes were embedded before (unchanged content, or a moved or copied file).
                    entry.caption = source.entry.caption
                    row = _Row(entry, source.vector, source.caption_vector)
                    self._rows[item.path] = row
                    self._count(item, counts, changed=source is not item.previous)
                    if captioner is None or entry.caption is not None:
                        bar.update()
                        continue
                    item = _Work(item.path, item.size, item.mtime_ns, embed=False, previous=row)
                try:
                    picture = _decode(data)
                except _DECODE_ERRORS as exc:
                    self._fail(item, _decode_failure(exc), counts)
                    bar.update()
                    continue
                pending.append((item, entry, picture))
                if len(pending) >= batch_size:
                    since_save += self._flush(pending, encoder, captioner, text_encoder, counts, known)
                    bar.update(len(pending))
                    pending = []
                    if since_save >= checkpoint_every:
                        self.save()
                        since_save = 0
            if pending:
                self._flush(pending, encoder, captioner, text_encoder, counts, known)
                bar.update(len(pending))

    def _flush(
        self,
        pending: list[tuple[_Work, PhotoEntry, PILImage]],
        encoder: ImageEncoder,
        captioner: Captioner | None,
        text_encoder: TextEncoder | None,
        counts: UpdateCounts,
        known: dict[str, _Row],
    ) -> int:
        """Embed (and caption) one batch of decoded pictures into the index; returns how many."""
        to_embed = [(item, entry, pic) for item, entry, pic in pending if item.embed]
        if to_embed:
            vectors = _normalized(encoder.embed_images([pic for _, _, pic in to_embed]))
            for (item, entry, _), vector in zip(to_embed, vectors, strict=True):
                row = _Row(entry, vector)
                kept = item.previous
                if kept is not None and kept.entry.sha256 == entry.sha256:  # same bytes, new image model
                    entry.caption, row.caption_vector = kept.entry.caption, kept.caption_vector
                self._rows[item.path] = row
                known[entry.sha256] = row
                self._count(item, counts, changed=True)
            counts.embedded += len(to_embed)
        if captioner is not None and text_encoder is not None:
            rows = []
            for item, _, picture in pending:
                row = self._rows[item.path]
                if row.entry.caption is None:
                    row.entry.caption = captioner.caption(picture).strip()
                    counts.captioned += 1
                    rows.append(row)
            self._embed_captions(text_encoder, rows)
        return len(pending)

    def _embed_captions(self, text_encoder: TextEncoder, rows: list[_Row], refresh: bool = False) -> None:
        rows = [r for r in rows if r.entry.caption is not None and (refresh or r.caption_vector is None)]
        if rows:
            vectors = _normalized(text_encoder.embed_texts([r.entry.caption or "" for r in rows]))
            for row, vector in zip(rows, vectors, strict=True):
                row.caption_vector = vector

    def _count(self, item: _Work, counts: UpdateCounts, changed: bool) -> None:
        if item.previous is None:
            counts.added += 1
        elif changed:
            counts.updated += 1
        else:
            counts.unchanged += 1

    def _fail(self, item: _Work, reason: str, counts: UpdateCounts) -> None:
        """Record an unusable file; changed content that cannot be read leaves the index."""
        self.failures[item.path] = reason
        counts.failed += 1
        if item.embed and self._rows.pop(item.path, None) is not None:
            counts.removed += 1

    def _scan(self) -> Iterator[tuple[str, tuple[int, int]]]:
        """(relative path, (size, mtime_ns)) of every picture under the root; hidden entries skipped."""
        index_dir = self.index_path.resolve()
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != index_dir)
            for name in sorted(files):
                if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    stat = (here / name).stat()
                except OSError:
                    continue  # a dangling link or a file deleted mid-scan
                yield (here / name).relative_to(self.root).as_posix(), (stat.st_size, stat.st_mtime_ns)

    # -- storage -------------------------------------------------------------------
    def save(self) -> None:
        """Write the index atomically: a temp file in the same folder, then a rename."""
        self.index_path.mkdir(parents=True, exist_ok=True)
        paths = sorted(p for p, row in self._rows.items() if row.vector.size)
        rows = [self._rows[p] for p in paths]
        dim = rows[0].vector.shape[0] if rows else 0
        caption_rows = [r for r in rows if r.caption_vector is not None]
        caption_dim = caption_rows[0].caption_vector.shape[0] if caption_rows else 0  # type: ignore[union-attr]
        vectors = np.stack([r.vector for r in rows]) if rows else np.zeros((0, dim), np.float32)
        caption_vectors = np.zeros((len(rows), caption_dim), np.float32)
        for i, row in enumerate(rows):
            if row.caption_vector is not None:
                caption_vectors[i] = row.caption_vector
        header = {
            "version": FORMAT_VERSION,
            "root": str(self.root),
            "model": self.model,
            "caption_model": self.caption_model,
            "text_model": self.text_model,
            "entries": [{**asdict(r.entry), "caption_vector": r.caption_vector is not None} for r in rows],
            "failures": self.failures,
        }
        blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        fd, tmp = tempfile.mkstemp(dir=self.index_path, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, header=blob, vectors=vectors.astype(np.float32), caption_vectors=caption_vectors)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.index_path / INDEX_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self) -> tuple[str | None, dict[str, _Row]]:
        file = self.index_path / INDEX_FILE
        if not file.is_file():
            return None, {}
        try:
            with np.load(file, allow_pickle=False) as data:
                header = json.loads(data["header"].tobytes())
                vectors = data["vectors"].astype(np.float32)
                caption_vectors = data["caption_vectors"].astype(np.float32)
            entries = header["entries"]
            if header.get("version") != FORMAT_VERSION or len(entries) != len(vectors):
                raise ValueError(f"format version {header.get('version')}, {len(entries)} entries")
            rows = {}
            for i, raw in enumerate(entries):
                has_caption_vector = raw.pop("caption_vector")
                entry = PhotoEntry(**raw)
                if Path(entry.path).is_absolute() or ".." in Path(entry.path).parts:
                    raise ValueError(f"entry {entry.path!r} leaves the indexed folder")
                rows[entry.path] = _Row(entry, vectors[i], caption_vectors[i] if has_caption_vector else None)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise InputError(
                f"the photo index {file} cannot be read ({exc}); "
                f"delete {self.index_path} and run `patchbay index` again"
            ) from exc
        self.model = header.get("model")
        self.caption_model = header.get("caption_model")
        self.text_model = header.get("text_model")
        self.failures = dict(header.get("failures", {}))
        return header["root"], rows


def _read_header(file: Path) -> dict[str, Any]:
    try:
        with np.load(file, allow_pickle=False) as data:
            return json.loads(data["header"].tobytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"the photo index {file} cannot be read ({exc}); delete it and run `patchbay index`") from exc


def _same_bytes(previous: _Row | None, entry: PhotoEntry) -> _Row | None:
    """``previous`` if it holds a current embedding of exactly ``entry``'s bytes."""
    if previous is not None and previous.vector.size and previous.entry.sha256 == entry.sha256:
        return previous
    return None


def _decode(data: bytes) -> PILImage:
    """Decode a picture upright, in RGB, JPEGs at reduced scale; raises one of _DECODE_ERRORS."""
    from PIL import Image as PILImageModule
    from PIL import ImageOps

    with PILImageModule.open(io.BytesIO(data)) as img:
        if img.width * img.height > MAX_PIXELS:
            raise ValueError(f"{img.width}x{img.height} is above the limit of {MAX_PIXELS} pixels")
        img.draft("RGB", (_DECODE_SIDE, _DECODE_SIDE))
        img.load()
        return ImageOps.exif_transpose(img).convert("RGB")


def _decode_failure(exc: BaseException) -> str:
    """Why a picture could not be decoded, in words (Pillow's own text names a BytesIO object)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not a picture Pillow can read"
    return f"corrupt or truncated ({type(exc).__name__}: {exc})"


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
