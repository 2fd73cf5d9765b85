"""Built-in text tools that ask the planner's own LLM: summarize and translate.

They need no weights of their own: :attr:`ToolContext.generate` reaches the LLM
patchbay already talks to. Without one configured they fail with a ToolError.
"""

from __future__ import annotations

from ...errors import InputError, ToolError
from ...prompts import render
from .._registry import tool
from .._spec import Resources, ToolContext

# The work happens in the LLM server; the tool itself only waits on it.
_WAITING = Resources(cpus=0.1, memory_mb=32)
_TIMEOUT_S = 300.0

_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u00ab": "\u00bb", "`": "`"}


@tool(resources=_WAITING, timeout_s=_TIMEOUT_S)
def text_summarize(text: str, ctx: ToolContext, max_words: int | None = None) -> str:
    """Summarize a text in its own language, optionally within a number of words.

    Args:
        text: the text to summarize.
        max_words: the longest the summary may be, in words; omit it to let the summary
            be as long as the text needs.

    Returns:
        The summary, as plain text.
    """
    if not text.strip():
        raise InputError("text_summarize got an empty text: there is nothing to summarize")
    if max_words is not None and max_words < 1:
        raise InputError(f"max_words must be at least 1, got {max_words}")
    return _ask(ctx, "text_summarize", render("text_summarize", max_words=max_words, text=text.strip()))


@tool(resources=_WAITING, timeout_s=_TIMEOUT_S)
def text_translate(text: str, target_language: str, ctx: ToolContext) -> str:
    """Translate a text into another language; the source language is detected.

    Args:
        text: the text to translate.
        target_language: the language to translate into, by name, e.g. "French" or "Japanese".

    Returns:
        The translated text.
    """
    if not text.strip():
        raise InputError("text_translate got an empty text: there is nothing to translate")
    language = target_language.strip()
    if not language:
        raise InputError("text_translate needs a target_language, e.g. 'French'")
    return _ask(ctx, "text_translate", render("text_translate", language=language, text=text.strip()))


TOOLS = [text_summarize, text_translate]


def _ask(ctx: ToolContext, tool_name: str, prompt: str) -> str:
    """Send a prompt to the planner's LLM and clean the answer; ToolError without an LLM."""
    if ctx.generate is None:
        raise ToolError(
            f"{tool_name} needs an LLM, but none is configured for this run; "
            "start patchbay with an LLM endpoint to use text tools"
        )
    answer = _clean(ctx.generate(prompt))
    if not answer:
        raise ToolError(f"{tool_name}: the LLM returned an empty answer")
    return answer


def _clean(answer: str) -> str:
    """Strip whitespace, echoed <text> tags and one pair of quotes wrapping the whole answer."""
    answer = answer.strip()
    if answer.startswith("<text>") and answer.endswith("</text>"):
        answer = answer[len("<text>") : -len("</text>")].strip()
    closing = _QUOTES.get(answer[:1])
    # '"Hi," she said, "bye"' starts and ends with quotes that are not one pair.
    if closing and len(answer) >= 2 and answer[-1] == closing and closing not in answer[1:-1]:
        answer = answer[1:-1].strip()
    return answer
