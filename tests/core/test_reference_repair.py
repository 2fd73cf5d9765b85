"""Reading the user's own text out of a request, for a task that referenced itself."""

from __future__ import annotations

import pytest

from patchbay.orchestrator.reference_repair import user_text


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ('Summarize "The cat sat on the mat all day long."', "The cat sat on the mat all day long."),
        ("Translate ‘bonjour tout le monde’ to English", "bonjour tout le monde"),
        ("Check the grammar of 'me and him goes to school' please", "me and him goes to school"),
        ('Say "hi" then read "a much longer sentence here"', "a much longer sentence here"),
        (
            "Simplify this: The committee deliberated at length before adjourning.",
            "The committee deliberated at length before adjourning.",
        ),
        ("Read the text at https://example.com/a aloud", "Read the text at https://example.com/a aloud"),
        ("What's the user's mood in I'm fine thanks", "What's the user's mood in I'm fine thanks"),
        ("Note: hi", "Note: hi"),
    ],
)
def test_user_text(request_text, expected):
    assert user_text(request_text) == expected
