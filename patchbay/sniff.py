"""Find a file's real MIME type from its bytes, and refuse files that lie about it."""

from __future__ import annotations

import mimetypes
from pathlib import PurePath

import filetype

from .errors import InputError

# filetype misses a few formats users send; these signatures are checked first.
_EXTRA_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"fLaC", "audio/flac"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"%PDF-", "application/pdf"),
)

_KIND_BY_TOP = {"image": "image", "audio": "audio", "video": "video", "text": "text"}


def sniff_mime(data: bytes) -> str:
    """The MIME type the content really has; text/plain for UTF-8 text, octet-stream otherwise."""
    head = data[:8192]
    for offset, magic, mime in _EXTRA_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    guess = filetype.guess(head)
    if guess is not None:
        if guess.mime == "audio/x-wav":
            return "audio/wav"
        return guess.mime
    if _looks_like_text(head):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 8 KiB boundary is still text.
        return exc.start >= len(head) - 3
    return True


def kind_of_mime(mime: str) -> str:
    """The media kind (image, audio, video, text or file) of a MIME type."""
    top = mime.split("/", 1)[0]
    if mime in ("application/json", "application/xml"):
        return "text"
    return _KIND_BY_TOP.get(top, "file")


def claimed_mime(filename: str) -> str | None:
    """The MIME type a file's extension claims, if any."""
    guess, _ = mimetypes.guess_type(PurePath(filename).name)
    return guess


def verified_mime(data: bytes, filename: str) -> str:
    """The content's MIME type, after checking it agrees with what the name claims.

    Raises:
        InputError: the extension names one kind of media and the bytes are another
            (a text file named ``photo.png``), or the file is empty.
    """
    if not data:
        raise InputError(f"{filename} is empty")
    actual = sniff_mime(data)
    claimed = claimed_mime(filename)
    if claimed is None:
        return actual
    claimed_kind, actual_kind = kind_of_mime(claimed), kind_of_mime(actual)
    # Containers blur audio and video (an .mp4 with only sound, a .webm voice note).
    av = {"audio", "video"}
    if claimed_kind in av and actual_kind in av:
        return actual
    if claimed_kind in ("image", "audio", "video") and claimed_kind != actual_kind:
        raise InputError(
            f"{filename} claims to be {claimed} but its content is {actual}; attach the real file or rename it"
        )
    return actual
