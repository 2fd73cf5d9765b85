"""Settings, read once from the environment (and overridden by CLI flags or code)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from .errors import ConfigError

StructuredOutput = Literal["auto", "json_schema", "llama", "prefill", "json_object", "none"]
_STRUCTURED = ("auto", "json_schema", "llama", "prefill", "json_object", "none")
_PLAN_FORMATS = ("json", "lines")
BackendName = Literal["in-process", "ray"]
_BACKENDS = ("in-process", "ray")


@dataclass(frozen=True)
class Settings:
    """Where the LLM is, which model, where files go, and the planner's budgets.

    Environment variables:
        OPENAI_BASE_URL, OPENAI_API_KEY: the OpenAI-compatible endpoint. With
            neither set, patchbay starts its embedded llama.cpp server.
        PATCHBAY_MODEL: the model name sent to the endpoint.
        PATCHBAY_EMBEDDED_MODEL: which bundled model the embedded server runs
            (``qwen2.5-coder-1.5b`` or ``smollm2-135m``).
        PATCHBAY_WORKSPACE: the artifact store and conversation database.
        PATCHBAY_STRUCTURED_OUTPUT: auto | json_schema | llama | prefill | json_object | none.
        PATCHBAY_PLAN_FORMAT: lines | json: how the LLM writes plans; lines applies
            only where patchbay begins the reply (prefill), other endpoints get JSON.
        PATCHBAY_LLM_THREADS: CPU threads for the embedded server.
        PATCHBAY_BACKEND: where tools run: ``in-process`` or ``ray``.
        PATCHBAY_RAY_ADDRESS: the Ray cluster for the ray backend (``host:6379``,
            ``ray://host:10001`` or ``auto``); unset: ``$RAY_ADDRESS``, else a
            local Ray is started.
    """

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    embedded_model: str = "qwen2.5-coder-1.5b"
    llm_threads: int | None = None
    workspace: Path = field(default_factory=lambda: Path("patchbay-workspace"))
    structured_output: StructuredOutput = "auto"
    plan_format: Literal["json", "lines"] = "lines"
    temperature: float = 0.0
    llm_timeout_s: float = 300.0
    max_plan_attempts: int = 3
    max_replans: int = 1
    task_timeout_s: float = 600.0
    backend: BackendName = "in-process"
    ray_address: str | None = None

    @property
    def uses_embedded(self) -> bool:
        """True when no endpoint is configured and the bundled model must be served locally."""
        return self.base_url is None and self.api_key is None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from environment variables, then ``overrides`` (None values are ignored).

        Raises:
            ConfigError: a variable has a value patchbay cannot use.
        """
        env = os.environ
        threads = env.get("PATCHBAY_LLM_THREADS")
        structured = env.get("PATCHBAY_STRUCTURED_OUTPUT", "auto")
        if structured not in _STRUCTURED:
            raise ConfigError(f"PATCHBAY_STRUCTURED_OUTPUT={structured!r}; use one of {', '.join(_STRUCTURED)}")
        plan_format = env.get("PATCHBAY_PLAN_FORMAT", "lines")
        if plan_format not in _PLAN_FORMATS:
            raise ConfigError(f"PATCHBAY_PLAN_FORMAT={plan_format!r}; use one of {', '.join(_PLAN_FORMATS)}")
        backend = env.get("PATCHBAY_BACKEND", "in-process")
        if backend not in _BACKENDS:
            raise ConfigError(f"PATCHBAY_BACKEND={backend!r}; use one of {', '.join(_BACKENDS)}")
        if threads is not None and not threads.isdigit():
            raise ConfigError(f"PATCHBAY_LLM_THREADS={threads!r}; use a whole number of threads")
        settings = cls(
            base_url=env.get("OPENAI_BASE_URL") or None,
            api_key=env.get("OPENAI_API_KEY") or None,
            model=env.get("PATCHBAY_MODEL") or None,
            embedded_model=env.get("PATCHBAY_EMBEDDED_MODEL", "qwen2.5-coder-1.5b"),
            llm_threads=int(threads) if threads else None,
            workspace=Path(env.get("PATCHBAY_WORKSPACE", "patchbay-workspace")),
            structured_output=structured,  # type: ignore[arg-type]
            plan_format=plan_format,  # type: ignore[arg-type]
            backend=backend,  # type: ignore[arg-type]
            ray_address=env.get("PATCHBAY_RAY_ADDRESS") or None,
        )
        return settings.with_overrides(**overrides)

    def with_overrides(self, **overrides: object) -> Settings:
        given = {k: v for k, v in overrides.items() if v is not None}
        if "workspace" in given:
            given["workspace"] = Path(str(given["workspace"]))
        return replace(self, **given)  # type: ignore[arg-type]
