"""Root fixtures: the scripted OpenAI-compatible server that stands in for the LLM.

Every planner/composer test reaches the LLM through the real ``openai`` client
over HTTP against this server; see ``support/scripted_openai.py`` for the API.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.scripted_openai import ScriptedLLM


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    """A started :class:`ScriptedLLM`, stopped after the test.

    Example::

        def test_answer(scripted_llm):
            scripted_llm.reply("hello")
            client = openai.OpenAI(base_url=scripted_llm.base_url, api_key="test", max_retries=0)
    """
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def scripted_llm_env(scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch) -> ScriptedLLM:
    """``scripted_llm`` with ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` pointing at it, for code that reads the env."""
    for name, value in scripted_llm.env.items():
        monkeypatch.setenv(name, value)
    return scripted_llm
