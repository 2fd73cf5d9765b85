"""Batch attachments: paths, ``file://`` and ``http(s)://`` URIs become local files to attach.

Paths are relative to the requests file (inside a Ray job, its copy in the
job's working directory). A URI is downloaded once per item into the output
folder, keeping its file name so the file's type can be checked against it.
"""

from __future__ import annotations

import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import InputError

MAX_DOWNLOAD_BYTES = 1 << 30
DOWNLOAD_TIMEOUT_S = 60.0


def local_attachments(refs: list[str], base: Path, downloads: Path) -> list[Path]:
    """The local files for an item's attachment references (downloading URIs into ``downloads``).

    Raises:
        InputError: an unsupported scheme, or a download that failed; the message names the reference.
    """
    return [_local(ref, base, downloads / str(index)) for index, ref in enumerate(refs)]


def _local(ref: str, base: Path, folder: Path) -> Path:
    parsed = urlparse(ref)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return _download(ref, folder)
    if scheme == "file":
        return Path(unquote(parsed.path))
    if scheme and len(scheme) > 1:  # "C:" style drive letters are paths, not schemes
        raise InputError(
            f"attachment {ref!r}: {scheme}:// is not supported; use a path on storage every node sees, "
            "a file:// URI or an http(s):// URL"
        )
    path = Path(ref).expanduser()
    return path if path.is_absolute() else base / path


def _download(url: str, folder: Path) -> Path:
    name = Path(unquote(urlparse(url).path)).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "attachment"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    partial = folder / f".{name}.part"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            copied = 0
            while chunk := response.read(1 << 20):
                copied += len(chunk)
                if copied > MAX_DOWNLOAD_BYTES:
                    raise InputError(f"attachment {url} is larger than {MAX_DOWNLOAD_BYTES >> 20} MiB")
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        plain = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
        reason = exc.reason if plain else exc
        raise InputError(f"cannot download attachment {url}: {reason}") from exc
    except InputError:
        partial.unlink(missing_ok=True)
        raise
    shutil.move(partial, target)
    return target
