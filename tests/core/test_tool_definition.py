"""The tool API: schemas come from hints and docstrings, and bad definitions fail at registration."""

from __future__ import annotations

from typing import Literal

import pytest

from patchbay import Audio, Image, Resources, Tool, ToolContext, tool
from patchbay.errors import ToolDefinitionError
from patchbay.tools import define_tool


def test_function_tool_schema_is_derived_from_hints_and_docstring():
    @tool(resources=Resources(gpu=0.5, memory_mb=2048, batchable=True, max_batch_size=8))
    def blend(first: Image, second: Image, alpha: float = 0.5, mode: Literal["add", "mix"] = "mix") -> Image:
        """Blend two images.

        Args:
            first: the base image.
            second: the image laid over it.
            alpha: opacity of the second image,
                from 0 to 1.
            mode: how pixels combine.

        Returns:
            The blended image.
        """
        raise NotImplementedError

    assert blend.name == "blend"
    assert blend.description == "Blend two images."
    assert blend.output_kind == "image"
    assert blend.output_description == "The blended image."
    assert [p.name for p in blend.params] == ["first", "second", "alpha", "mode"]
    assert [p.kind for p in blend.params] == ["image", "image", "number", "text"]
    assert blend.param("alpha").description == "opacity of the second image, from 0 to 1."
    schema = blend.input_schema()
    assert schema["required"] == ["first", "second"]
    assert schema["properties"]["first"] == {"type": "string", "x-media": "image", "description": "the base image."}
    assert schema["properties"]["mode"]["enum"] == ["add", "mix"]
    assert schema["properties"]["alpha"]["default"] == 0.5
    assert blend.resources.gpu == 0.5 and blend.resources.batchable


def test_every_problem_of_a_bad_definition_is_listed_at_once():
    def bad(x, *rest, y: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError) as caught:
        define_tool(bad)
    problems = "\n".join(caught.value.problems)
    assert "has no docstring" in problems
    assert "parameter 'x' has no type hint" in problems
    assert "*args and **kwargs" in problems
    assert "parameter 'y' is not described" in problems
    assert len(caught.value.problems) == 4


def test_missing_return_hint_and_bad_name_are_reported():
    def f(text: str):
        """Echo.

        Args:
            text: what to echo.
        """

    with pytest.raises(ToolDefinitionError) as caught:
        define_tool(f, name="bad name!")
    assert any("return type hint" in p for p in caught.value.problems)
    assert any("letters, digits and underscores" in p for p in caught.value.problems)


def test_context_parameter_is_injected_not_planned():
    @tool
    def summarize(text: str, ctx: ToolContext) -> str:
        """Summarize text.

        Args:
            text: the text.
        """
        return text

    assert [p.name for p in summarize.params] == ["text"]
    assert summarize.context_param == "ctx"


def test_class_tool_loads_once_and_declares_resources():
    class Transcriber(Tool):
        """Speech to text."""

        resources = Resources(gpu=0.25, memory_mb=1000)
        timeout_s = 30

        def setup(self) -> None:
            self.model = "loaded"

        def run(self, audio: Audio, language: str | None = None) -> str:
            """Transcribe speech.

            Args:
                audio: the recording.
                language: ISO code, detected when omitted.
            """
            return self.model

    spec = define_tool(Transcriber)
    assert spec.name == "transcriber"
    assert spec.is_class and spec.timeout_s == 30
    assert spec.resources.memory_mb == 1000
    assert [(p.name, p.kind, p.required) for p in spec.params] == [
        ("audio", "audio", True),
        ("language", "text", False),
    ]


def test_a_class_without_run_is_rejected():
    class Empty(Tool):
        """Nothing."""

    with pytest.raises(ToolDefinitionError, match="must define run"):
        define_tool(Empty)


def test_list_of_media_output():
    @tool
    def search(query: str, k: int = 4) -> list[Image]:
        """Find images.

        Args:
            query: what to look for.
            k: how many.
        """
        return []

    assert search.output_kind == "list[image]"


def test_docstring_args_continue_by_indent_even_when_a_line_starts_like_an_argument():
    from patchbay.tools._docstring import parse_docstring

    doc = parse_docstring(
        """Read a text aloud.

        Args:
            text: the words to say.
                voice: a word at the start of a continuation line is not a new argument.
            voice: the voice to speak with.
        """
    )
    assert doc.args == {
        "text": "the words to say. voice: a word at the start of a continuation line is not a new argument.",
        "voice": "the voice to speak with.",
    }
