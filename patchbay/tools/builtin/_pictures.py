"""Pictures in and out of the generative image tools: safe decoding, sizes, PNGs that record how they were made.

Decoding is stricter than :meth:`Image.to_pil`: these tools never need more than a
few megapixels, so a picture above :data:`MAX_INPUT_PIXELS` is refused from its
header, before any pixel is decoded, and Pillow's own decompression-bomb error
(raised while *opening* a file above ~179 megapixels, so before ``to_pil`` can
check the size) becomes the same clear :class:`InputError`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ...errors import InputError
from ...media import Image

MAX_INPUT_PIXELS = 50_000_000
"""The largest input picture accepted, in pixels (a 50-megapixel photo); bigger ones are refused before decoding."""
SIZE_MULTIPLE = 8
"""Stable Diffusion's VAE shrinks a picture 8 times, so generated sides are multiples of 8."""
MIN_SIDE = 64
MAX_SIDE = 1024
"""Generated sides are 64 to 1024 px: SD 1.5 was trained at 512; far from it pictures fall apart or memory runs out."""


def decode_picture(image: Image, draft_size: tuple[int, int] | None = None) -> PILImage.Image:
    """Decode an input picture as upright RGB, transparent areas flattened onto white.

    Args:
        image: the input artifact.
        draft_size: the size the caller will shrink the picture to, if any; JPEGs are
            then decoded at a reduced scale no smaller than it, which is much faster.

    Raises:
        InputError: not a format Pillow reads, corrupt or truncated, or above
            :data:`MAX_INPUT_PIXELS`.
    """
    label = image.handle or "the image"
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 megapixels; the limit below is lower and says more.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(image.read_bytes())) as img:
                if img.width * img.height > MAX_INPUT_PIXELS:
                    raise InputError(_too_big(label, img.width, img.height))
                if draft_size is not None:
                    img.draft("RGB", draft_size)
                img.load()
                picture = ImageOps.exif_transpose(img)
    except PILImage.DecompressionBombError as exc:
        raise InputError(
            f"{label} is too large to decode safely ({exc}); send a picture of at most 50 megapixels"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{label} ({image.mime}) is not a picture format these tools read; convert it to PNG or JPEG first"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label} is corrupt or truncated: {exc}") from exc
    return _flatten_to_rgb(picture)


def _too_big(label: str, width: int, height: int) -> str:
    return (
        f"{label} is {width}x{height} ({width * height / 1e6:.0f} megapixels), above the limit of "
        f"{MAX_INPUT_PIXELS // 1_000_000} megapixels; shrink it first (image_resize)"
    )


def _flatten_to_rgb(picture: PILImage.Image) -> PILImage.Image:
    if picture.mode == "RGB":
        return picture
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        canvas = PILImage.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return picture.convert("RGB")


def check_size(width: int, height: int) -> None:
    """Refuse generation sizes Stable Diffusion cannot make.

    Raises:
        InputError: a side is not a multiple of 8 or lies outside 64..1024 px.
    """
    for label, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InputError(f"{label} must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {value}")
        if value % SIZE_MULTIPLE:
            lower = value - value % SIZE_MULTIPLE
            raise InputError(
                f"{label} must be a multiple of {SIZE_MULTIPLE} pixels, got {value}; "
                f"use {lower} or {lower + SIZE_MULTIPLE}"
            )


def fit_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """The size, in multiples of 8, that keeps a picture's aspect ratio with its longer side at ``longest``."""
    scale = longest / max(width, height)
    return (
        max(MIN_SIDE, round(width * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
        max(MIN_SIDE, round(height * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
    )


def png_with_parameters(picture: PILImage.Image, parameters: Mapping[str, object], name: str) -> Image:
    """Encode as PNG with every generation parameter in a text chunk, so the file says how to make it again.

    Each parameter is its own ``tEXt`` entry (``seed``, ``prompt``, ``model``, ...),
    readable with ``PIL.Image.open(path).text``.
    """
    info = PngInfo()
    for key, value in parameters.items():
        info.add_text(key, str(value))
    buf = io.BytesIO()
    picture.save(buf, format="PNG", pnginfo=info)
    return Image(data=buf.getvalue(), mime="image/png", name=name)


def png(picture: PILImage.Image, name: str | None = None) -> Image:
    """A plain lossless PNG, for condition maps."""
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return Image(data=buf.getvalue(), mime="image/png", name=name)
