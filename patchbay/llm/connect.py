"""From settings to a working ChatClient: the configured endpoint, or the embedded server started for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..config import Settings
from .client import ChatClient


@contextlib.asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[ChatClient]:
    """A client for ``settings``; with no endpoint configured, serves the embedded model meanwhile.

    Raises:
        ConfigError: the embedded model or server is not installed.
        LLMError: the embedded server did not come up.
    """
    base_url, model, structured = settings.base_url, settings.model, settings.structured_output
    server = None
    if settings.uses_embedded:
        from .embedded import start_embedded

        server = await asyncio.to_thread(start_embedded, settings.embedded_model, n_threads=settings.llm_threads)
        base_url, model = server.base_url, server.model_alias
        if structured == "auto":
            structured = "llama"  # llama.cpp's server rejects OpenAI's json_schema form
    try:
        yield ChatClient(
            base_url,
            settings.api_key,
            model or "gpt-4o-mini",
            structured=structured,
            temperature=settings.temperature,
            timeout_s=settings.llm_timeout_s,
        )
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
