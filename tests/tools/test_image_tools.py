"""The built-in image tools, called directly on real images stored as artifacts."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from tool_samples import decode_image

from patchbay import ArtifactStore, Image, InputError, Provenance
from patchbay.tools.builtin.image import (
    MAX_SIDE,
    image_convert,
    image_crop,
    image_flip,
    image_grayscale,
    image_info,
    image_resize,
    image_rotate,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(width: int = 80, height: int = 60, mode: str = "RGB") -> PILImage.Image:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = PILImage.new("RGB", (width, height), WHITE)
    img.paste(RED, (0, 0, width // 2, height // 2))
    img.paste(GREEN, (width // 2, 0, width, height // 2))
    img.paste(BLUE, (0, height // 2, width // 2, height))
    return img.convert(mode)


# -- resize ----------------------------------------------------------------------
def test_resize_width_only_keeps_aspect_ratio(stored_image):
    out = decode_image(image_resize(stored_image(quadrants(200, 100)), width=50))
    assert out.size == (50, 25)
    assert out.format == "PNG"
    assert out.getpixel((5, 5)) == RED


def test_resize_height_only_keeps_aspect_ratio(stored_image):
    out = decode_image(image_resize(stored_image(quadrants(200, 100)), height=300))
    assert out.size == (600, 300)


def test_resize_both_sides_forces_exact_size(stored_image):
    out = decode_image(image_resize(stored_image(quadrants(200, 100)), width=30, height=90))
    assert out.size == (30, 90)


def test_resize_needs_a_side(stored_image):
    with pytest.raises(InputError, match="needs a width, a height, or both"):
        image_resize(stored_image(quadrants()))


@pytest.mark.parametrize("width", [0, -5, MAX_SIDE + 1])
def test_resize_rejects_sizes_out_of_range(stored_image, width):
    with pytest.raises(InputError, match=f"width must be between 1 and {MAX_SIDE} pixels"):
        image_resize(stored_image(quadrants()), width=width)


def test_resize_refuses_an_aspect_ratio_that_overflows_the_limit(stored_image):
    with pytest.raises(InputError, match=r"gives 8000x80000, above the limit"):
        image_resize(stored_image(quadrants(10, 100)), width=8000)


def test_resize_turns_a_cmyk_jpeg_into_a_png(stored_image):
    out = decode_image(image_resize(stored_image(quadrants(mode="CMYK"), "JPEG"), width=40))
    assert (out.format, out.mode, out.size) == ("PNG", "RGB", (40, 30))


# -- crop ------------------------------------------------------------------------
def test_crop_cuts_out_the_box(stored_image):
    out = decode_image(image_crop(stored_image(quadrants(80, 60)), left=40, top=30, right=80, bottom=60))
    assert out.size == (40, 30)
    assert out.getpixel((0, 0)) == WHITE and out.getpixel((39, 29)) == WHITE


def test_crop_outside_the_image_names_the_size(stored_image):
    with pytest.raises(InputError, match=r"does not fit the 80x60 image: need 0 <= left < right <= 80"):
        image_crop(stored_image(quadrants(80, 60)), left=10, top=10, right=81, bottom=20)


def test_crop_with_right_before_left_is_refused(stored_image):
    with pytest.raises(InputError, match="left=50, top=0, right=20, bottom=10 does not fit"):
        image_crop(stored_image(quadrants()), left=50, top=0, right=20, bottom=10)


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> Image:
    buf = io.BytesIO()
    quadrants(12, 9).save(buf, format="PNG")
    store = ArtifactStore(tmp_path_factory.mktemp("crop"))
    return Image(store.put_bytes(buf.getvalue(), "image/png", Provenance("attachment")))


@settings(max_examples=40, deadline=None)
@given(box=st.tuples(*[st.integers(-3, 15)] * 4))
def test_crop_either_fits_exactly_or_explains(small_image, box):
    left, top, right, bottom = box
    inside = 0 <= left < right <= 12 and 0 <= top < bottom <= 9
    if inside:
        out = decode_image(image_crop(small_image, left, top, right, bottom))
        assert out.size == (right - left, bottom - top)
    else:
        with pytest.raises(InputError, match="does not fit the 12x9 image"):
            image_crop(small_image, left, top, right, bottom)


# -- rotate ----------------------------------------------------------------------
def test_rotate_quarter_turn_counter_clockwise_swaps_the_sides(stored_image):
    out = decode_image(image_rotate(stored_image(quadrants(80, 60)), degrees=90))
    assert out.size == (60, 80)
    # Counter-clockwise: the red top-left corner ends up bottom-left.
    assert out.getpixel((2, 77)) == RED
    assert out.getpixel((2, 2)) == GREEN


def test_rotate_without_expand_keeps_the_size_and_blackens_corners(stored_image):
    out = decode_image(image_rotate(stored_image(quadrants(80, 60)), degrees=45, expand=False))
    assert out.size == (80, 60)
    assert out.getpixel((0, 0)) == (0, 0, 0)


def test_rotate_with_expand_grows_the_canvas_and_keeps_corners_transparent(stored_image):
    out = decode_image(image_rotate(stored_image(quadrants(80, 60, mode="RGBA")), degrees=30))
    assert out.width > 80 and out.height > 60
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0


def test_rotate_refuses_a_non_finite_angle(stored_image):
    with pytest.raises(InputError, match="degrees must be a finite number"):
        image_rotate(stored_image(quadrants()), degrees=float("nan"))


# -- grayscale and flip ------------------------------------------------------------
def test_grayscale_makes_luminance(stored_image):
    out = decode_image(image_grayscale(stored_image(quadrants())))
    assert out.mode == "L"
    assert out.getpixel((1, 1)) == 76  # ITU-R 601 luma of pure red
    assert out.getpixel((79, 59)) == 255


def test_grayscale_keeps_transparency(stored_image):
    img = quadrants(mode="RGBA")
    img.putpixel((0, 0), (255, 0, 0, 0))
    out = decode_image(image_grayscale(stored_image(img)))
    assert out.mode == "LA"
    assert out.getpixel((0, 0))[1] == 0 and out.getpixel((5, 5))[1] == 255


@pytest.mark.parametrize(("direction", "top_left"), [("horizontal", GREEN), ("vertical", BLUE)])
def test_flip(stored_image, direction, top_left):
    out = decode_image(image_flip(stored_image(quadrants()), direction=direction))
    assert out.size == (80, 60)
    assert out.getpixel((1, 1)) == top_left


def test_flip_refuses_an_unknown_direction(stored_image):
    with pytest.raises(InputError, match="direction must be 'horizontal' or 'vertical'"):
        image_flip(stored_image(quadrants()), direction="diagonal")


# -- convert -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("format", "pil_format", "mime"),
    [
        ("png", "PNG", "image/png"),
        ("jpeg", "JPEG", "image/jpeg"),
        ("webp", "WEBP", "image/webp"),
        ("bmp", "BMP", "image/bmp"),
        ("gif", "GIF", "image/gif"),
        ("tiff", "TIFF", "image/tiff"),
    ],
)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_convert_writes_the_requested_format(stored_image, format, pil_format, mime, mode):
    result = image_convert(stored_image(quadrants(mode=mode)), format=format)
    out = decode_image(result)
    assert result.mime == mime
    assert out.format == pil_format
    assert out.size == (80, 60)


def test_convert_rgba_to_jpeg_flattens_onto_white(stored_image):
    img = quadrants(mode="RGBA")
    img.paste((0, 0, 0, 0), (0, 0, 40, 30))  # the red quadrant becomes fully transparent
    out = decode_image(image_convert(stored_image(img), format="jpeg"))
    assert out.mode == "RGB"
    assert all(channel > 245 for channel in out.getpixel((10, 10)))
    assert out.getpixel((70, 50)) == pytest.approx(WHITE, abs=6)


def test_convert_quality_changes_the_jpeg_size(stored_image):
    noisy = PILImage.effect_noise((128, 128), 80).convert("RGB")
    image = stored_image(noisy)
    low = image_convert(image, format="jpeg", quality=10).read_bytes()
    high = image_convert(image, format="jpeg", quality=95).read_bytes()
    assert len(low) < len(high)


def test_convert_refuses_quality_out_of_range(stored_image):
    with pytest.raises(InputError, match="quality must be between 1 and 100"):
        image_convert(stored_image(quadrants()), format="jpeg", quality=0)


# -- info and bad input ------------------------------------------------------------------
def test_info_describes_size_mode_and_format(stored_image):
    text = image_info(stored_image(quadrants(80, 60, mode="RGBA")))
    assert text == "width 80 px, height 60 px, mode RGBA, format png, has transparency"


def test_info_of_a_jpeg(stored_image):
    text = image_info(stored_image(quadrants(33, 21), "JPEG"))
    assert text == "width 33 px, height 21 px, mode RGB, format jpeg, no transparency"


def test_a_truncated_png_is_an_input_error(stored_bytes):
    buf = io.BytesIO()
    PILImage.effect_noise((200, 200), 60).save(buf, format="PNG")
    truncated = stored_bytes(buf.getvalue()[: len(buf.getvalue()) // 2], "image/png")
    with pytest.raises(InputError, match="is corrupt or truncated"):
        image_grayscale(truncated)


def test_a_text_file_is_not_an_image(stored_bytes):
    fake = stored_bytes(b"this is a note, not a picture\n", "image/png")
    with pytest.raises(InputError, match=r"is not an image Pillow can read \(image/png\)"):
        image_resize(fake, width=10)
