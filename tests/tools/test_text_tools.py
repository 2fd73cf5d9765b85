"""The built-in text tools, with ``ctx.generate`` standing in for the planner's LLM.

The stand-ins below are small real functions that read the prompt the tool sends;
the HTTP path to a real LLM is covered by the orchestrator's tests.
"""

from __future__ import annotations

import re

import pytest

from patchbay import InputError, ToolContext, ToolError
from patchbay.tools.builtin.text import text_summarize, text_translate

ARTICLE = (
    "The river flooded the lower town after three days of rain. "
    "Volunteers moved families to the school on the hill, and the water fell by Sunday."
)
WORDS_EN_FR = {"good": "bon", "morning": "matin", "friends": "amis"}


def quoted_text(prompt: str) -> str:
    match = re.search(r"<text>\n(.*)\n</text>", prompt, re.S)
    assert match, f"the prompt does not delimit the text: {prompt!r}"
    return match.group(1)


def first_words_summarizer(prompts: list[str]):
    """Summarize by keeping the first N words, N read from the prompt; chatty like a small model."""

    def generate(prompt: str) -> str:
        prompts.append(prompt)
        limit = re.search(r"in at most (\d+) words", prompt)
        words = quoted_text(prompt).split()[: int(limit.group(1)) if limit else 8]
        return f'\n  "{" ".join(words)}"  \n'

    return generate


def word_translator(prompt: str) -> str:
    """Translate word by word into French, the way a tiny dictionary would."""
    language = re.search(r"into (\w+)\.", prompt).group(1)
    assert language == "French"
    return "<text>" + " ".join(WORDS_EN_FR[w] for w in quoted_text(prompt).lower().split()) + "</text>"


def context(generate=None) -> ToolContext:
    return ToolContext(request_id="r1", task_id=1, generate=generate)


def test_summarize_asks_for_the_word_limit_and_cleans_the_answer():
    prompts: list[str] = []
    summary = text_summarize(ARTICLE, context(first_words_summarizer(prompts)), max_words=5)
    assert summary == "The river flooded the lower"
    (prompt,) = prompts
    assert "in at most 5 words" in prompt
    assert "Output only the summary" in prompt
    assert quoted_text(prompt) == ARTICLE


def test_summarize_without_a_limit_does_not_mention_one():
    prompts: list[str] = []
    summary = text_summarize(f"  {ARTICLE}\n", context(first_words_summarizer(prompts)))
    assert summary == "The river flooded the lower town after three"
    assert "at most" not in prompts[0]
    assert quoted_text(prompts[0]) == ARTICLE


def test_translate_names_the_language_and_strips_echoed_tags():
    assert text_translate("Good morning friends", "French", context(word_translator)) == "bon matin amis"


def test_quotes_inside_the_answer_are_kept():
    answer = '"Stay," she said, "the water is rising."'
    assert text_translate("Stay", "French", context(lambda prompt: answer)) == answer


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda ctx: text_summarize(ARTICLE, ctx), "text_summarize"),
        (lambda ctx: text_translate(ARTICLE, "German", ctx), "text_translate"),
    ],
)
def test_without_an_llm_the_tool_says_so(call, name):
    with pytest.raises(ToolError, match=f"{name} needs an LLM, but none is configured"):
        call(context(None))


def test_an_empty_answer_is_a_tool_error():
    with pytest.raises(ToolError, match="the LLM returned an empty answer"):
        text_summarize(ARTICLE, context(lambda prompt: ' "" \n'))


def test_empty_text_is_an_input_error_and_the_llm_is_not_called():
    prompts: list[str] = []
    with pytest.raises(InputError, match="got an empty text: there is nothing to summarize"):
        text_summarize("   \n", context(first_words_summarizer(prompts)))
    assert prompts == []


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="max_words must be at least 1"):
        text_summarize(ARTICLE, context(word_translator), max_words=0)
    with pytest.raises(InputError, match="needs a target_language"):
        text_translate(ARTICLE, "  ", context(word_translator))
