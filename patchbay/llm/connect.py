"""From settings to a working ChatClient: the configured endpoint, or the embedded server started for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..config import Settings
from .client import ChatClient


@contextlib.asynccontextmanager
async def connect(settings: Settings, *, role: str | None = None) -> AsyncIterator[ChatClient]:
    """A client for ``settings``; with no endpoint configured, serves the embedded model meanwhile.

    ``role`` names a caller that gets an embedded server of its own (its log:
    ``embedded-<model>-<role>.log``). A llama.cpp server keeps one prompt cached, so
    the planner, whose ~3k-token catalog prefix is the same every time, runs on
    its own server: an answer or a text tool on a shared one would evict that
    prefix and make the next turn's plan re-read it (minutes on a CPU). The
    weights are memory-mapped, so a second server costs only its context.

    Raises:
        ConfigError: the embedded model or server is not installed.
        LLMError: the embedded server did not come up.
    """
    base_url, model, structured = settings.base_url, settings.model, settings.structured_output
    server = None
    if settings.uses_embedded:
        from .assets import EMBEDDED_MODELS
        from .embedded import start_embedded

        server = await asyncio.to_thread(
            start_embedded, settings.embedded_model, n_threads=settings.llm_threads, role=role
        )
        base_url, model = server.base_url, server.model_alias
        if structured == "auto":
            # Begin the reply rather than constrain it: llama-cpp-python's grammar costs as much as decoding.
            known = EMBEDDED_MODELS.get(settings.embedded_model)
            structured = "prefill" if known is not None and known.chatml else "llama"
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
