"""Built-in text recognition (OCR) with the Tesseract command-line program.

Tesseract is a system program, not a Python package: on Debian and Ubuntu install
``tesseract-ocr`` and one ``tesseract-ocr-<lang>`` package per language
(``tesseract-ocr-eng`` for English). The tool runs it once per call with the
image piped in as PNG; no weights stay in memory between calls.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess

from PIL import Image as PILImage
from PIL import ImageOps

from ...errors import InputError, ToolError
from ...media import Image
from .._registry import tool
from .._spec import Availability, Resources

DEFAULT_LANGUAGE = "eng"
OCR_TIMEOUT_S = 120.0
"""How long one page may take before the call fails."""

_LANGUAGES = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z][A-Za-z0-9_]*)*$")


def _tesseract() -> str | None:
    return shutil.which("tesseract")


@functools.cache
def _installed_languages(binary: str, tessdata: str | None) -> frozenset[str]:
    """The language packs ``binary`` can load (``tessdata`` keys the cache on TESSDATA_PREFIX).

    Raises:
        OSError, subprocess.SubprocessError: tesseract cannot list them (not cached, so asked again next time).
    """
    listing = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=10, check=True)
    # The first line is 'List of available languages in "<dir>" (N):', then one code a line.
    return frozenset(line.strip() for line in listing.stdout.splitlines()[1:] if line.strip())


def _languages(binary: str) -> frozenset[str]:
    try:
        return _installed_languages(binary, os.environ.get("TESSDATA_PREFIX"))
    except (OSError, subprocess.SubprocessError):
        return frozenset()


def _debian_package(language: str) -> str:
    return f"tesseract-ocr-{language.lower().replace('_', '-')}"


def ocr_availability() -> Availability:
    """Whether the tesseract program is on PATH with English language data installed."""
    binary = _tesseract()
    if binary is None:
        return Availability(
            False,
            "the tesseract program is not installed: on Debian/Ubuntu run "
            "'apt-get install tesseract-ocr tesseract-ocr-eng' (macOS: 'brew install tesseract')",
        )
    if DEFAULT_LANGUAGE not in _languages(binary):
        return Availability(
            False,
            f"tesseract has no {DEFAULT_LANGUAGE} language data: on Debian/Ubuntu run "
            f"'apt-get install {_debian_package(DEFAULT_LANGUAGE)}', or point TESSDATA_PREFIX at a tessdata folder",
        )
    return Availability(True)


@tool(resources=Resources(cpus=1, memory_mb=300), timeout_s=OCR_TIMEOUT_S + 10, available=ocr_availability)
def ocr(image: Image, language: str = DEFAULT_LANGUAGE) -> str:
    """Read the printed or typed text in an image: a photo of a sign, a scan, a screenshot or a receipt.

    Returns the words with their line breaks, top to bottom. It works best on clear,
    upright, printed text; handwriting and tiny or heavily skewed text come out
    poorly. To describe what a picture shows rather than read it, use image_caption.

    Args:
        image: the picture containing the text.
        language: Tesseract language code(s) of the text, e.g. "eng", "deu", "fra",
            or several joined with "+", e.g. "eng+deu".

    Returns:
        The recognised text, lines separated by newlines; an empty string when no text is found.

    Raises:
        InputError: the image is corrupt, or a language is not installed.
        ToolError: tesseract is missing, fails or runs past its time limit.
    """
    binary = _tesseract()
    if binary is None:
        raise ToolError(ocr_availability().reason)
    if not _LANGUAGES.match(language):
        raise InputError(f"language must be Tesseract codes such as 'eng' or 'eng+deu', got {language!r}")
    installed = _languages(binary)
    missing = [code for code in language.split("+") if code not in installed]
    if missing:  # ask again: a language pack may have been installed since the listing was cached
        _installed_languages.cache_clear()
        installed = _languages(binary)
        missing = [code for code in language.split("+") if code not in installed]
    if missing:
        raise InputError(
            f"tesseract has no language data for {', '.join(missing)}; installed: "
            f"{', '.join(sorted(installed)) or 'none'}. On Debian/Ubuntu run "
            f"'apt-get install {' '.join(_debian_package(code) for code in missing)}'"
        )
    # Always re-encode: given bytes that are not an image, tesseract reads stdin as a list of file paths.
    png = _png_for_ocr(image.to_pil())
    # One thread per call: tesseract's OpenMP threads only contend when calls run in parallel.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        result = subprocess.run(
            [binary, "stdin", "stdout", "-l", language],
            input=png,
            capture_output=True,
            timeout=OCR_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"tesseract took longer than {OCR_TIMEOUT_S:g} s on this image") from exc
    except OSError as exc:
        raise ToolError(f"cannot run tesseract ({binary}): {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ToolError(f"tesseract failed with exit status {result.returncode}: {' / '.join(detail)}")
    text = result.stdout.decode("utf-8", errors="replace").replace("\f", "")
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _png_for_ocr(img: PILImage.Image) -> bytes:
    """Upright (EXIF orientation applied), transparency flattened onto white, encoded as PNG."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        # Transparent pixels often hold black; flatten here rather than rely on how the installed Leptonica reads alpha.
        canvas = PILImage.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        img = canvas
    elif img.mode not in ("1", "L", "RGB"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


TOOLS = [ocr]
