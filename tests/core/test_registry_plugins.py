"""Plugins register through the real entry-point path; provenance and duplicates are tracked."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from patchbay.errors import ConfigError, DuplicateToolError
from patchbay.tools import Registry, tool

TASKBENCH_TOOLS = Path(__file__).resolve().parents[3] / "shared" / "taskbench" / "tool_desc.json"


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A third-party distribution on sys.path: a module with a hook and its dist-info entry point."""
    (tmp_path / "acme_tools.py").write_text(
        textwrap.dedent(
            '''
            from patchbay import tool, Image

            @tool
            def acme_invert(image: Image) -> Image:
                """Invert an image's colours.

                Args:
                    image: the picture.
                """
                from PIL import ImageOps
                return ImageOps.invert(image.to_pil().convert("RGB"))

            def register(registry):
                registry.add(acme_invert)
            '''
        )
    )
    dist = tmp_path / "acme_tools-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tools\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[patchbay.tools]\nacme = acme_tools:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "acme-tools"
    sys.modules.pop("acme_tools", None)


def test_builtin_and_third_party_tools_come_through_entry_points(installed_plugin):
    registry = Registry.discover()
    try:
        assert registry.get("acme_invert").source == installed_plugin
        assert registry.get("image_grayscale").source == "patchbay"
    finally:
        registry.remove("acme_invert")
    assert "acme_invert" not in registry


def test_two_tools_with_one_name_is_an_error_naming_both():
    @tool
    def echo(text: str) -> str:
        """Echo.

        Args:
            text: what to echo.
        """
        return text

    registry = Registry()
    with registry.loading_from("pkg-one"):
        registry.add(echo)
    other = tool(echo.implementation)
    with registry.loading_from("pkg-two"), pytest.raises(DuplicateToolError) as caught:
        registry.add(other)
    assert "pkg-one" in str(caught.value) and "pkg-two" in str(caught.value)


def test_a_plugin_hook_that_is_not_callable_is_a_config_error(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("register = 42\n")
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[patchbay.tools]\nbroken = broken_plugin:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConfigError, match="broken-plugin"):
            Registry.discover()
    finally:
        sys.modules.pop("broken_plugin", None)


def test_taskbench_tool_descriptions_load_as_spec_only_tools():
    registry = Registry()
    specs = registry.load_spec_file(TASKBENCH_TOOLS)
    assert len(specs) == 40
    stitcher = registry.get("Image Stitcher")
    assert [p.name for p in stitcher.params] == ["image", "image_2"]
    assert stitcher.output_kind == "image"
    assert registry.get("Image Search").output_kind == "image"  # "Image" normalised
    assert registry.get("URL Extractor").output_kind == "url"
    assert stitcher.spec_only and not stitcher.availability().ok
    assert registry.plannable() == []
    assert len(registry.plannable(include_spec_only=True)) == 40


def test_spec_file_errors_are_config_errors(tmp_path):
    bad = tmp_path / "tools.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read tool specs"):
        Registry().load_spec_file(bad)
    bad.write_text('[{"description": "no name"}]')
    with pytest.raises(ConfigError, match="needs a 'name'"):
        Registry().load_spec_file(bad)
