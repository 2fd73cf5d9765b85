"""Built-in image tools on Pillow: resize, crop, rotate, flip, grayscale, convert and describe.

Every tool decodes its input with :meth:`Image.to_pil` (a corrupt or truncated file
is an InputError there) and returns a lossless PNG unless it converts on purpose.
"""

from __future__ import annotations

import io
import math
from typing import Literal

from PIL import Image as PILImage
from PIL import ImageOps

from ...errors import InputError, ToolError
from ...media import Image
from .._registry import tool
from .._spec import Resources

MAX_SIDE = 8192
"""The largest width or height a tool will produce, in pixels."""

_LIGHT = Resources(cpus=1, memory_mb=512)
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


@tool(resources=_LIGHT)
def image_resize(image: Image, width: int | None = None, height: int | None = None) -> Image:
    """Resize an image to a width and/or height in pixels.

    Give only one of width and height to keep the aspect ratio; give both to force
    that exact size (which may stretch the picture). Neither side may exceed 8192 px.

    Args:
        image: the picture to resize.
        width: the new width in pixels; omit it to derive it from height and the aspect ratio.
        height: the new height in pixels; omit it to derive it from width and the aspect ratio.

    Returns:
        The resized image as PNG.
    """
    if width is None and height is None:
        raise InputError("image_resize needs a width, a height, or both")
    for label, value in (("width", width), ("height", height)):
        if value is not None and not 1 <= value <= MAX_SIDE:
            raise InputError(f"{label} must be between 1 and {MAX_SIDE} pixels, got {value}")
    img = image.to_pil()
    if width is None:
        width = max(1, round(img.width * height / img.height))
    elif height is None:
        height = max(1, round(img.height * width / img.width))
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InputError(
            f"keeping the aspect ratio of the {img.width}x{img.height} image gives "
            f"{width}x{height}, above the limit of {MAX_SIDE} pixels a side; give both sides"
        )
    return _png(img.resize((width, height), PILImage.Resampling.LANCZOS))


@tool(resources=_LIGHT)
def image_crop(image: Image, left: int, top: int, right: int, bottom: int) -> Image:
    """Cut out a rectangle of an image, given in pixels from its top-left corner.

    The box must lie inside the image: 0 <= left < right <= width and
    0 <= top < bottom <= height (use image_info to learn the size first).

    Args:
        image: the picture to crop.
        left: x of the box's left edge, in pixels from the image's left side.
        top: y of the box's top edge, in pixels from the image's top.
        right: x of the box's right edge (exclusive); at most the image width.
        bottom: y of the box's bottom edge (exclusive); at most the image height.

    Returns:
        The cropped region, (right - left) x (bottom - top) pixels, as PNG.
    """
    img = image.to_pil()
    if not (0 <= left < right <= img.width and 0 <= top < bottom <= img.height):
        raise InputError(
            f"crop box left={left}, top={top}, right={right}, bottom={bottom} does not fit "
            f"the {img.width}x{img.height} image: need 0 <= left < right <= {img.width} "
            f"and 0 <= top < bottom <= {img.height}"
        )
    return _png(img.crop((left, top, right, bottom)))


@tool(resources=_LIGHT)
def image_rotate(image: Image, degrees: float, expand: bool = True) -> Image:
    """Rotate an image counter-clockwise by a number of degrees (negative turns clockwise).

    Multiples of 90 degrees are exact. Corners the rotation uncovers are transparent
    when the image has an alpha channel and black otherwise.

    Args:
        image: the picture to rotate.
        degrees: the angle, counter-clockwise; use -90 for a quarter turn clockwise.
        expand: enlarge the canvas so nothing is cut off (true), or keep the original
            size and clip the corners (false).

    Returns:
        The rotated image as PNG.
    """
    if not math.isfinite(degrees):
        raise InputError(f"degrees must be a finite number, got {degrees}")
    img = image.to_pil()
    rotated = img.rotate(degrees, resample=PILImage.Resampling.BICUBIC, expand=expand)
    if max(rotated.size) > MAX_SIDE:
        raise InputError(
            f"rotating the {img.width}x{img.height} image with expand gives "
            f"{rotated.width}x{rotated.height}, above {MAX_SIDE} pixels a side; use expand=false"
        )
    return _png(rotated)


@tool(resources=_LIGHT)
def image_grayscale(image: Image) -> Image:
    """Turn a colour image into shades of grey, keeping its transparency if it has any.

    Args:
        image: the picture to turn grey.

    Returns:
        The grayscale image as PNG (mode L, or LA with transparency).
    """
    img = image.to_pil()
    return _png(img.convert("LA" if _has_alpha(img) else "L"))


@tool(resources=_LIGHT)
def image_flip(image: Image, direction: Literal["horizontal", "vertical"]) -> Image:
    """Mirror an image left-to-right (horizontal) or upside down (vertical).

    Args:
        image: the picture to flip.
        direction: "horizontal" swaps left and right; "vertical" swaps top and bottom.

    Returns:
        The flipped image as PNG.
    """
    img = image.to_pil()
    if direction == "horizontal":
        return _png(ImageOps.mirror(img))
    if direction == "vertical":
        return _png(ImageOps.flip(img))
    raise InputError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")


ImageFormat = Literal["png", "jpeg", "webp", "bmp", "gif", "tiff"]


@tool(resources=_LIGHT)
def image_convert(image: Image, format: ImageFormat, quality: int = 90) -> Image:
    """Save an image in another file format: png, jpeg, webp, bmp, gif or tiff.

    Formats without transparency (jpeg, bmp) get transparent areas flattened onto
    white. gif keeps at most 256 colours.

    Args:
        image: the picture to convert.
        format: the file format to write.
        quality: 1 (smallest file) to 100 (best picture); used by jpeg and webp only.

    Returns:
        The image encoded in the requested format.
    """
    if not 1 <= quality <= 100:
        raise InputError(f"quality must be between 1 and 100, got {quality}")
    img = image.to_pil()
    pil_format, mode = format.upper(), img.mode
    try:
        if pil_format in ("JPEG", "BMP") and img.mode not in ("1", "L", "RGB"):
            img = _flatten(img) if _has_alpha(img) else img.convert("RGB")
        elif pil_format == "PNG" and img.mode not in _PNG_MODES:
            img = img.convert("RGBA" if _has_alpha(img) else "RGB")
        if pil_format in ("JPEG", "WEBP"):
            return _save(img, pil_format, quality=quality)
        return _save(img, pil_format)
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot save a mode {mode} image as {format}: {exc}") from exc


@tool(resources=_LIGHT)
def image_info(image: Image) -> str:
    """Describe an image's size in pixels, colour mode, file format and transparency.

    Args:
        image: the picture to describe.

    Returns:
        One line of text, e.g. "width 640 px, height 480 px, mode RGB, format png, no transparency".
    """
    img = image.to_pil()
    fmt = image.mime.split("/", 1)[-1]
    alpha = "has transparency" if _has_alpha(img) else "no transparency"
    return f"width {img.width} px, height {img.height} px, mode {img.mode}, format {fmt}, {alpha}"


TOOLS = [image_resize, image_crop, image_rotate, image_grayscale, image_flip, image_convert, image_info]


def _has_alpha(img: PILImage.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info


def _flatten(img: PILImage.Image, background: tuple[int, int, int] = (255, 255, 255)) -> PILImage.Image:
    """Composite onto an opaque background, for formats without an alpha channel."""
    rgba = img.convert("RGBA")
    canvas = PILImage.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _png(img: PILImage.Image) -> Image:
    """Encode as PNG, first converting modes PNG cannot hold (CMYK, YCbCr, float)."""
    if img.mode not in _PNG_MODES:
        img = img.convert("RGBA" if _has_alpha(img) else "RGB")
    return _save(img, "PNG")


def _save(img: PILImage.Image, pil_format: str, **options: int) -> Image:
    buf = io.BytesIO()
    img.save(buf, format=pil_format, **options)
    mime = f"image/{pil_format.lower()}"
    return Image(data=buf.getvalue(), mime=mime)
