"""The ocr tool against the real tesseract program, on text rendered with Pillow."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from patchbay import InputError, Registry
from patchbay.errors import ToolError
from patchbay.tools._invoke import ToolCall, invoke
from patchbay.tools.builtin.ocr import TOOLS, ocr, ocr_availability

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="needs Debian tesseract-ocr and tesseract-ocr-eng"
)


def text_image(lines=("PATCHBAY RECEIPT", "TOTAL 42"), mode="RGB", background="white") -> PILImage.Image:
    """Black text, 48 px type, one line per entry."""
    font = ImageFont.load_default(size=48)  # Pillow >= 10.1 with FreeType: a scalable built-in font
    img = PILImage.new(mode, (40 + 32 * max(map(len, lines)), 40 + 72 * len(lines)), background)
    draw = ImageDraw.Draw(img)
    for row, line in enumerate(lines):
        draw.text((20, 20 + 72 * row), line, font=font, fill="black")
    return img


def words(text: str) -> list[str]:
    return text.upper().split()


@needs_tesseract
def test_reads_the_text_line_by_line(stored_image):
    text = ocr(stored_image(text_image()))
    assert isinstance(text, str)
    assert text.upper().splitlines() == ["PATCHBAY RECEIPT", "TOTAL 42"]


@needs_tesseract
def test_reads_a_jpeg_photo_and_an_explicit_language(stored_image):
    text = ocr(stored_image(text_image(("SALE", "ONLY 7 DAYS")), "JPEG"), language="eng")
    assert words(text) == ["SALE", "ONLY", "7", "DAYS"]


@needs_tesseract
def test_turns_a_photo_upright_from_its_exif_orientation(stored_bytes):
    upright = text_image()
    sideways = upright.rotate(90, expand=True)  # as a phone held sideways stores it
    exif = PILImage.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    sideways.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    assert words(ocr(stored_bytes(buf.getvalue(), "image/jpeg"))) == [
        "PATCHBAY", "RECEIPT", "TOTAL", "42",
    ]  # fmt: skip


@needs_tesseract
def test_flattens_transparency_onto_white(stored_image):
    # Black text on fully transparent black, as screenshots and logos often come.
    img = text_image(mode="RGBA", background=(0, 0, 0, 0))
    assert words(ocr(stored_image(img))) == ["PATCHBAY", "RECEIPT", "TOTAL", "42"]


@needs_tesseract
def test_a_blank_page_gives_empty_text(stored_image):
    assert ocr(stored_image(PILImage.new("L", (300, 200), 255))) == ""


@needs_tesseract
def test_a_truncated_png_is_an_input_error(stored_image, stored_bytes):
    data = stored_image(text_image()).read_bytes()
    with pytest.raises(InputError, match="corrupt or truncated"):
        ocr(stored_bytes(data[: len(data) // 2], "image/png"))


@needs_tesseract
def test_bytes_that_are_no_image_are_an_input_error(stored_bytes):
    with pytest.raises(InputError, match="not an image"):
        ocr(stored_bytes(b"/etc/passwd\n", "image/png"))


@needs_tesseract
def test_a_language_that_is_not_installed_names_the_debian_package(stored_image):
    with pytest.raises(InputError, match=r"no language data for xyz.*apt-get install tesseract-ocr-xyz"):
        ocr(stored_image(text_image()), language="eng+xyz")


@pytest.mark.parametrize("language", ["", "eng deu", "eng;ls", "-l", "eng+"])
def test_a_malformed_language_is_an_input_error(stored_image, language, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/tesseract")
    with pytest.raises(InputError, match="Tesseract codes"):
        ocr(stored_image(text_image()), language=language)


@needs_tesseract
def test_is_available_with_english_installed():
    assert ocr_availability().ok


def test_is_unavailable_without_the_program(monkeypatch, tmp_path, stored_image):
    monkeypatch.setenv("PATH", str(tmp_path))
    availability = ocr_availability()
    assert not availability.ok
    assert "apt-get install tesseract-ocr tesseract-ocr-eng" in availability.reason
    with pytest.raises(ToolError, match="tesseract program is not installed"):
        ocr(stored_image(text_image()))


@needs_tesseract
def test_is_unavailable_without_english_data(monkeypatch, tmp_path):
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # a tessdata folder with no languages
    availability = ocr_availability()
    assert not availability.ok
    assert "tesseract-ocr-eng" in availability.reason


@needs_tesseract
def test_registers_and_runs_through_the_tool_boundary(store, stored_image):
    registry = Registry()
    (spec,) = registry.add(*TOOLS)
    assert spec.name == "ocr" and spec.output_kind == "text"
    assert [(p.name, p.required, p.default) for p in spec.params] == [("image", True, None), ("language", False, "eng")]
    assert "receipt" in spec.description and spec.output_description
    assert spec.resources.gpu == 0 and spec.availability().ok
    handle = stored_image(text_image()).handle
    output = invoke(spec, ToolCall("ocr", {"image": handle}, request_id="r", task_id=1), store)
    assert output.kind == "text"
    assert words(output.value) == ["PATCHBAY", "RECEIPT", "TOTAL", "42"]
