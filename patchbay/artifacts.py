"""The workspace artifact store: content-addressed files with a MIME type and provenance.

Every attachment and every media output of a tool lives here. The LLM and the
graph state only ever see an artifact's handle (``art-`` followed by 16 hex
digits of the content's sha256), never its bytes.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, UnknownArtifactError, WorkspaceError
from .sniff import kind_of_mime, verified_mime

HANDLE_PREFIX = "art-"
_HANDLE_HEX = 16


@dataclass(frozen=True)
class Provenance:
    """Where an artifact came from: a user attachment, or a task of a request."""

    source: str  # "attachment" | "task" | "workspace"
    request_id: str | None = None
    task_id: int | None = None
    tool: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Artifact:
    """One stored file. ``id`` is the handle the planner and the answer use."""

    id: str
    mime: str
    size: int
    path: Path
    provenance: tuple[Provenance, ...] = field(default=())
    name: str | None = None

    @property
    def kind(self) -> str:
        return kind_of_mime(self.mime)

    def describe(self) -> str:
        """A one-line description for prompts and listings."""
        label = f" ({self.name})" if self.name else ""
        return f"{self.id}{label}: {self.mime}, {self.size} bytes"


def is_handle(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(HANDLE_PREFIX)
        and len(value) == len(HANDLE_PREFIX) + _HANDLE_HEX
        and all(c in "0123456789abcdef" for c in value[len(HANDLE_PREFIX) :])
    )


class ArtifactStore:
    """Files under ``<workspace>/artifacts``, named by content hash, written atomically.

    Example:
        >>> store = ArtifactStore(Path("ws"))
        >>> art = store.put_bytes(b"hello", "text/plain", Provenance("task", "r1", 1, "echo"))
        >>> store.get(art.id).path.read_bytes()
        b'hello'
    """

    def __init__(self, workspace: Path | str):
        self.workspace = Path(workspace).resolve()
        self.root = self.workspace / "artifacts"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # -- writing -----------------------------------------------------------------
    def put_bytes(self, data: bytes, mime: str, provenance: Provenance, name: str | None = None) -> Artifact:
        """Store ``data``; storing identical bytes again only adds provenance."""
        digest = hashlib.sha256(data).hexdigest()
        handle = HANDLE_PREFIX + digest[:_HANDLE_HEX]
        ext = mimetypes.guess_extension(mime) or ".bin"
        folder = self.root / digest[:2]
        folder.mkdir(exist_ok=True)
        blob = folder / f"{handle}{ext}"
        with self._lock:
            if not blob.exists():
                _atomic_write(blob, data)
            meta = self._read_meta(handle) or {
                "id": handle,
                "mime": mime,
                "size": len(data),
                "file": blob.name,
                "name": name,
                "provenance": [],
            }
            entry = asdict(provenance)
            if entry not in meta["provenance"]:
                meta["provenance"].append(entry)
            _atomic_write(self._meta_path(handle), json.dumps(meta, indent=1).encode())
        return self._artifact_from_meta(meta)

    def put_file(self, path: Path | str, provenance: Provenance | None = None) -> Artifact:
        """Store a user's file, after checking it exists and is what its name claims.

        Raises:
            InputError: missing, unreadable, empty or mislabelled file.
        """
        path = Path(path)
        data, mime = read_checked(path)
        return self.put_bytes(data, mime, provenance or Provenance("attachment", filename=path.name), name=path.name)

    # -- reading -----------------------------------------------------------------
    def get(self, handle: str) -> Artifact:
        """The artifact behind ``handle``.

        Raises:
            UnknownArtifactError: no such artifact in this workspace.
        """
        if not is_handle(handle):
            raise UnknownArtifactError(f"{handle!r} is not an artifact handle")
        meta = self._read_meta(handle)
        if meta is None:
            raise UnknownArtifactError(f"no artifact {handle} in workspace {self.workspace}")
        return self._artifact_from_meta(meta)

    def exists(self, handle: str) -> bool:
        return is_handle(handle) and self._meta_path(handle).exists()

    def resolve(self, reference: str, attachments: dict[str, str] | None = None) -> Artifact:
        """Turn what a plan names (handle, attachment name, workspace path) into an artifact.

        Args:
            reference: an artifact handle, the file name of one of the request's
                attachments, or a path relative to the workspace.
            attachments: the request's attachments, file name -> handle.

        Raises:
            WorkspaceError: the path is absolute, climbs out with ``..`` or is a
                symlink that leads outside the workspace.
            UnknownArtifactError: nothing by that name.
        """
        if is_handle(reference):
            return self.get(reference)
        attachments = attachments or {}
        if reference in attachments:
            return self.get(attachments[reference])
        candidate = Path(reference)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise WorkspaceError(
                f"{reference!r} is outside the workspace; only artifact handles, the request's "
                "attachments and paths inside the workspace can be used"
            )
        full = (self.workspace / candidate).resolve()
        if not full.is_relative_to(self.workspace):
            raise WorkspaceError(f"{reference!r} leads outside the workspace (a symlink?)")
        if not full.is_file():
            raise UnknownArtifactError(
                f"{reference!r} is neither an artifact handle, an attachment of this request, "
                "nor a file in the workspace"
            )
        return self.put_file(full, Provenance("workspace", filename=str(candidate)))

    # -- internals ---------------------------------------------------------------
    def _meta_path(self, handle: str) -> Path:
        digest = handle[len(HANDLE_PREFIX) :]
        return self.root / digest[:2] / f"{handle}.json"

    def _read_meta(self, handle: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._meta_path(handle).read_text())
        except FileNotFoundError:
            return None

    def _artifact_from_meta(self, meta: dict[str, Any]) -> Artifact:
        handle = meta["id"]
        return Artifact(
            id=handle,
            mime=meta["mime"],
            size=meta["size"],
            path=self._meta_path(handle).with_name(meta["file"]),
            provenance=tuple(Provenance(**p) for p in meta["provenance"]),
            name=meta.get("name"),
        )


def read_checked(path: Path) -> tuple[bytes, str]:
    """A file's bytes and real MIME type.

    Raises:
        InputError: the file is missing, unreadable, empty or not what its name claims.
    """
    if not path.is_file():
        raise InputError(f"attachment {path} does not exist or is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read attachment {path}: {exc.strerror}") from exc
    return data, verified_mime(data, path.name)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
