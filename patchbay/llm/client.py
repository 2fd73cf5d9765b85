"""The one way patchbay talks to an LLM: the ``openai`` client, with structured output when it can."""

from __future__ import annotations

import logging
from typing import Any

import openai

from ..config import StructuredOutput
from ..errors import LLMError

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]


class ChatClient:
    """Chat completions against any OpenAI-compatible endpoint.

    Structured output modes (``structured``):
        json_schema: OpenAI's ``{"type": "json_schema", ...}``.
        llama: llama.cpp's server form ``{"type": "json_object", "schema": ...}``
            (its grammar enforces the schema; it rejects the OpenAI form).
        prefill: no grammar; a caller's ``prefix`` starts the reply instead. The
            messages are written out in ChatML (Qwen's and SmolLM2's format) and
            sent to the text-completions endpoint with the prefix appended, so the
            model continues a reply already begun in the right shape; the caller
            validates the rest. For llama-cpp-python on CPU, where the grammar
            sampler checks the whole vocabulary at every token (40-60 ms a token
            for a plan, as long as the decoding itself), this halves a plan's time.
        json_object: JSON mode without a schema.
        none: plain text; the plan parser copes.
        auto: json_schema, falling back to none (once, remembered) if the server
            rejects it.

    Example:
        >>> client = ChatClient("http://127.0.0.1:8080/v1", "none", "qwen")
        >>> client.complete([{"role": "user", "content": "Say hi"}])
        'Hi!'
    """

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str,
        *,
        structured: StructuredOutput = "auto",
        temperature: float = 0.0,
        timeout_s: float = 300.0,
        max_retries: int = 1,
    ):
        self.base_url = base_url
        self.model = model
        self.structured: StructuredOutput = structured
        self.temperature = temperature
        options: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key or "not-needed",
            "timeout": timeout_s,
            "max_retries": max_retries,
        }
        self._sync = openai.OpenAI(**options)
        self._async = openai.AsyncOpenAI(**options)

    def _text_request(
        self, messages: Messages, prefix: str, max_tokens: int | None, stop: tuple[str, ...]
    ) -> dict[str, Any]:
        """A text-completion request that continues ``messages`` with an assistant reply begun by ``prefix``."""
        request: dict[str, Any] = {
            "model": self.model,
            "prompt": chatml(messages) + prefix,
            "temperature": self.temperature,
            "stop": [*CHATML_STOPS, *stop],
        }
        if max_tokens:
            request["max_tokens"] = max_tokens
        return request

    def _request(
        self, messages: Messages, schema: dict[str, Any] | None, max_tokens: int | None, stop: tuple[str, ...]
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
        }
        if stop:
            request["stop"] = list(stop)
        if max_tokens:
            request["max_tokens"] = max_tokens
        if schema is not None:
            mode = "json_schema" if self.structured == "auto" else self.structured
            if mode == "json_schema":
                request["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "plan", "schema": schema, "strict": False},
                }
            elif mode == "llama":
                request["response_format"] = {"type": "json_object", "schema": schema}
            elif mode == "json_object":
                request["response_format"] = {"type": "json_object"}
        return request

    def complete(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        prefix: str | None = None,
        stop: tuple[str, ...] = (),
    ) -> str:
        """The assistant's reply text.

        ``schema`` constrains the reply where the mode allows; in ``prefill`` mode
        ``prefix`` begins the reply instead (and is part of the returned text).
        Other modes ignore ``prefix``. The reply ends before any of ``stop``.

        Raises:
            LLMError: the endpoint is unreachable or answered with an error.
        """
        if prefix is not None and self.structured == "prefill":
            try:
                response = self._sync.completions.create(**self._text_request(messages, prefix, max_tokens, stop))
            except openai.OpenAIError as exc:
                raise self._error(exc) from exc
            return prefix + _text(response)
        request = self._request(messages, schema, max_tokens, stop)
        try:
            response = self._sync.chat.completions.create(**request)
        except openai.BadRequestError as exc:
            if self._fall_back(request, exc):
                return self.complete(messages, schema=schema, max_tokens=max_tokens, stop=stop)
            raise self._error(exc) from exc
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        return _content(response)

    async def acomplete(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        prefix: str | None = None,
        stop: tuple[str, ...] = (),
    ) -> str:
        """Async :meth:`complete`."""
        if prefix is not None and self.structured == "prefill":
            try:
                response = await self._async.completions.create(
                    **self._text_request(messages, prefix, max_tokens, stop)
                )
            except openai.OpenAIError as exc:
                raise self._error(exc) from exc
            return prefix + _text(response)
        request = self._request(messages, schema, max_tokens, stop)
        try:
            response = await self._async.chat.completions.create(**request)
        except openai.BadRequestError as exc:
            if self._fall_back(request, exc):
                return await self.acomplete(messages, schema=schema, max_tokens=max_tokens, stop=stop)
            raise self._error(exc) from exc
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        return _content(response)

    def generate(self, prompt: str) -> str:
        """One user prompt in, text out: what text tools receive as ``ToolContext.generate``."""
        return self.complete([{"role": "user", "content": prompt}])

    def _fall_back(self, request: dict[str, Any], exc: openai.BadRequestError) -> bool:
        if self.structured == "auto" and "response_format" in request:
            log.info("the endpoint rejected json_schema output (%s); using plain output", exc)
            self.structured = "none"
            return True
        return False

    def _error(self, exc: openai.OpenAIError) -> LLMError:
        where = self.base_url or "the OpenAI API"
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"cannot reach the LLM at {where}: {exc.__cause__ or exc}")
        if isinstance(exc, openai.APIStatusError):
            message = exc.message if hasattr(exc, "message") else str(exc)
            return LLMError(f"the LLM at {where} answered HTTP {exc.status_code}: {message}")
        return LLMError(f"the LLM at {where} failed: {exc}")


def _content(response: Any) -> str:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError) as exc:
        raise LLMError(f"the LLM returned no message: {response!r:.200}") from exc
    if content is None:
        raise LLMError("the LLM returned an empty message")
    return content


CHATML_STOPS = ("<|im_end|>", "<|endoftext|>")


def chatml(messages: Messages) -> str:
    """``messages`` in ChatML, ending with an open assistant turn (what Qwen's and SmolLM2's templates make)."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def _text(response: Any) -> str:
    try:
        text = response.choices[0].text
    except (AttributeError, IndexError) as exc:
        raise LLMError(f"the LLM returned no text: {response!r:.200}") from exc
    return text or ""
