"""The built-in tools reach the registry through patchbay's own entry point, like any plugin's."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from patchbay import Registry
from patchbay.errors import DuplicateToolError
from patchbay.tools import ENTRY_POINT_GROUP
from patchbay.tools.builtin import register

BUILTIN_TOOLS = {
    "image_resize": "image",
    "image_crop": "image",
    "image_rotate": "image",
    "image_grayscale": "image",
    "image_flip": "image",
    "image_convert": "image",
    "image_info": "text",
    "audio_trim": "audio",
    "audio_concatenate": "audio",
    "audio_convert": "audio",
    "audio_resample": "audio",
    "audio_duration": "number",
    "audio_mix": "audio",
    "audio_spectrogram": "image",
    "text_summarize": "text",
    "text_translate": "text",
}
MODEL_TOOLS = {
    "image_caption": "text",
    "visual_question_answering": "text",
    "image_search": "list[image]",
    "classify": "text",
    "ocr": "text",
    "speech_to_text": "text",
    "text_to_speech": "audio",
    "voice_clone": "audio",
    "text_to_image": "image",
    "image_edit": "image",
    "controlnet_generate": "image",
    "canny_edges": "image",
    "pose_map": "image",
    "depth_map": "image",
    "line_art": "image",
    "scribble_map": "image",
}


def test_patchbay_declares_the_builtin_entry_point():
    values = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert values.get("builtin") == "patchbay.tools.builtin:register", (
        "patchbay is not installed; run `pip install -e .`"
    )


def test_discover_finds_every_builtin_tool_from_patchbay():
    registry = Registry.discover()
    expected = {**BUILTIN_TOOLS, **MODEL_TOOLS}
    found = {name: registry.get(name) for name in expected if name in registry}
    assert set(found) == set(expected)
    for name, spec in found.items():
        assert spec.source == "patchbay", name
        assert spec.output_kind == expected[name], name
    for name in BUILTIN_TOOLS:  # the cheap tools run anywhere, on one core
        assert found[name].availability().ok, name
        assert found[name].resources.gpu == 0 and found[name].resources.cpus <= 1, name


def test_every_planned_parameter_is_described():
    registry = Registry()
    register(registry)
    assert set(registry.names()) == set(BUILTIN_TOOLS) | set(MODEL_TOOLS)
    for spec in registry:
        assert spec.description and spec.output_description, spec.name
        for param in spec.params:
            assert param.description, f"{spec.name}.{param.name}"
    assert registry.get("text_summarize").context_param == "ctx"
    assert [p.name for p in registry.get("text_translate").params] == ["text", "target_language"]


def test_registering_twice_names_both_sources():
    registry = Registry()
    with registry.loading_from("patchbay"):
        register(registry)
    with registry.loading_from("someone-else"), pytest.raises(DuplicateToolError, match="patchbay"):
        register(registry)
