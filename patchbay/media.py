"""Media types a tool takes and returns: Image, Audio, Video, File, and Text.

A media argument reaches a tool as an object wrapping a stored
:class:`~patchbay.artifacts.Artifact`; conversion to PIL or numpy happens here,
at the tool boundary, and nowhere earlier. A tool returns media by building one
of these from data (``Image.from_pil``, ``Audio.from_array``, ``File.from_bytes``)
or by returning the raw value its annotation implies (a PIL image for ``Image``);
the executor stores it and hands the next task a handle.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import InputError, ToolError
from .sniff import kind_of_mime, sniff_mime

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image as PILImage

    from .artifacts import Artifact


class Text(str):
    """Text content. Plain ``str`` annotations mean the same; this name reads better in signatures."""

    kind: ClassVar[str] = "text"


class Media:
    """A stored artifact (a tool's input) or bytes waiting to be stored (a tool's output)."""

    kind: ClassVar[str] = "file"

    def __init__(
        self,
        artifact: Artifact | None = None,
        *,
        data: bytes | None = None,
        mime: str | None = None,
        name: str | None = None,
    ):
        if (artifact is None) == (data is None):
            raise ValueError("a media value holds either an artifact or data, not both or neither")
        self.artifact = artifact
        self._data = data
        self._mime = mime
        self.name = name

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, mime: str | None = None, name: str | None = None) -> Media:
        mime = mime or sniff_mime(data)
        if cls.kind != "file" and kind_of_mime(mime) != cls.kind:
            raise ToolError(f"cannot make {cls.__name__} from {mime} data")
        return cls(data=data, mime=mime, name=name)

    @classmethod
    def from_path(cls, path: Path | str) -> Media:
        path = Path(path)
        return cls.from_bytes(path.read_bytes(), name=path.name)

    @classmethod
    def coerce(cls, value: Any) -> Media:
        """Accept what a tool returned for this media type; raise ToolError otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, Media) and cls.kind == "file":
            return value
        if isinstance(value, (bytes, bytearray)):
            return cls.from_bytes(bytes(value))
        if isinstance(value, Path):
            return cls.from_path(value)
        raise ToolError(f"tool returned {type(value).__name__} where {cls.__name__} was declared")

    # -- access --------------------------------------------------------------------
    @property
    def mime(self) -> str:
        return self.artifact.mime if self.artifact is not None else str(self._mime)

    @property
    def path(self) -> Path:
        """The stored file (inputs only)."""
        if self.artifact is None:
            raise ValueError("this media value has not been stored yet")
        return self.artifact.path

    @property
    def handle(self) -> str | None:
        return self.artifact.id if self.artifact is not None else None

    def read_bytes(self) -> bytes:
        if self._data is not None:
            return self._data
        return self.path.read_bytes()

    def __repr__(self) -> str:
        where = self.artifact.id if self.artifact is not None else f"{len(self._data or b'')} bytes"
        return f"{type(self).__name__}({where}, {self.mime})"


class File(Media):
    """Any file; a ``File`` parameter accepts every kind of media."""

    kind = "file"


class Image(Media):
    """An image artifact."""

    kind = "image"

    @classmethod
    def from_pil(cls, image: PILImage, format: str = "PNG") -> Image:
        buf = io.BytesIO()
        image.save(buf, format=format)
        mime = f"image/{format.lower().replace('jpg', 'jpeg')}"
        return cls(data=buf.getvalue(), mime=mime)

    @classmethod
    def coerce(cls, value: Any) -> Media:
        from PIL import Image as PILImageModule

        if isinstance(value, PILImageModule.Image):
            return cls.from_pil(value)
        return super().coerce(value)

    def to_pil(self, max_pixels: int = 100_000_000) -> PILImage:
        """Decode the image fully; a corrupt, truncated or oversized file is an InputError."""
        from PIL import Image as PILImageModule
        from PIL import UnidentifiedImageError

        label = self.artifact.id if self.artifact is not None else "image"
        try:
            with warnings.catch_warnings():
                # Pillow's own bomb guard warns, then raises, at sizes our limit handles below.
                warnings.simplefilter("ignore", PILImageModule.DecompressionBombWarning)
                with PILImageModule.open(io.BytesIO(self.read_bytes())) as img:
                    if img.width * img.height > max_pixels:
                        raise InputError(f"{label} is {img.width}x{img.height}, above the limit of {max_pixels} pixels")
                    img.load()
                    return img.copy()
        except PILImageModule.DecompressionBombError as exc:
            raise InputError(f"{label} is too large to decode safely (above {max_pixels} pixels): {exc}") from exc
        except UnidentifiedImageError as exc:
            raise InputError(f"{label} is not an image Pillow can read ({self.mime})") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{label} is corrupt or truncated: {exc}") from exc


class Audio(Media):
    """An audio artifact."""

    kind = "audio"

    @classmethod
    def from_array(cls, samples: np.ndarray, sample_rate: int, format: str = "WAV") -> Audio:
        """Encode float samples in [-1, 1] (frames x channels, or mono) as WAV, FLAC or OGG."""
        import soundfile

        buf = io.BytesIO()
        subtype = "PCM_16" if format.upper() in ("WAV", "FLAC") else None
        soundfile.write(buf, samples, sample_rate, format=format.upper(), subtype=subtype)
        mime = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg", "MP3": "audio/mpeg"}
        return cls(data=buf.getvalue(), mime=mime[format.upper()])

    def to_array(self) -> tuple[np.ndarray, int]:
        """Decode to float32 samples (frames x channels) and the sample rate."""
        import soundfile

        label = self.artifact.id if self.artifact is not None else "audio"
        try:
            samples, rate = soundfile.read(io.BytesIO(self.read_bytes()), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
            raise InputError(f"{label} is not audio that can be decoded ({self.mime}): {exc}") from exc
        return samples, int(rate)


class Video(Media):
    """A video artifact."""

    kind = "video"


MEDIA_TYPES: dict[str, type[Media]] = {cls.kind: cls for cls in (File, Image, Audio, Video)}
