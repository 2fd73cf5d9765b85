"""Shared by the Stable Diffusion tools: load a diffusers pipeline once, on the best device, and run it reproducibly.

A pipeline loads in ``setup()`` (once per process or Ray actor) in float16 on CUDA
and float32 on CPU, with the progress bars off. Memory savers are opt-in through
``PATCHBAY_DIFFUSION_MEMORY``, a comma-separated list:

* ``attention-slicing``: compute attention in slices (less peak memory, a little slower);
* ``vae-tiling``: decode the picture tile by tile (large sizes on small GPUs);
* ``model-offload``: keep each sub-model on the CPU until it runs (CUDA only; needs accelerate);
* ``sequential-offload``: the same per layer (least GPU memory, slowest).

Offloading only means something with a GPU; on a CPU-only machine it is skipped
with a log line rather than failing, so one configuration serves a whole cluster.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import ConfigError, InputError, ToolError
from .._define import Tool
from .._spec import Availability
from ._models import best_device, configured_model, model_availability

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from ...media import Image

log = logging.getLogger(__name__)

MEMORY_ENV = "PATCHBAY_DIFFUSION_MEMORY"
MAX_PROMPT_CHARS = 1000
"""The longest prompt accepted; CLIP reads only the first 77 tokens (about 50 words) of it anyway."""
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
DIFFUSION_PACKAGES = ("torch", "diffusers", "transformers")


@dataclass(frozen=True)
class MemorySavers:
    """Which of diffusers' memory savers to turn on (see the module docstring)."""

    attention_slicing: bool = False
    vae_tiling: bool = False
    offload: str = "none"  # "none" | "model" | "sequential"

    @classmethod
    def from_env(cls) -> MemorySavers:
        """Read ``PATCHBAY_DIFFUSION_MEMORY``.

        Raises:
            ConfigError: an unknown option, or both kinds of offload.
        """
        known = {"attention-slicing", "vae-tiling", "model-offload", "sequential-offload"}
        chosen = {part.strip().lower() for part in os.environ.get(MEMORY_ENV, "").split(",") if part.strip()}
        unknown = chosen - known
        if unknown:
            raise ConfigError(
                f"{MEMORY_ENV} has unknown option(s) {', '.join(sorted(unknown))}; use a comma-separated "
                f"list of {', '.join(sorted(known))}"
            )
        if {"model-offload", "sequential-offload"} <= chosen:
            raise ConfigError(f"{MEMORY_ENV}: choose one of model-offload and sequential-offload, not both")
        offload = "model" if "model-offload" in chosen else "sequential" if "sequential-offload" in chosen else "none"
        return cls("attention-slicing" in chosen, "vae-tiling" in chosen, offload)


def missing_packages(packages: tuple[str, ...] = DIFFUSION_PACKAGES) -> list[str]:
    return [pkg for pkg in packages if importlib.util.find_spec(pkg) is None]


def models_availability(tool_name: str, models: list[tuple[str, str]]) -> Availability:
    """Whether the packages are installed and every ``(model id, key)`` is here or downloadable.

    ``key`` names the variable that points at a local copy, ``PATCHBAY_<KEY>_MODEL``;
    the reason of an unavailable tool gives each missing model's ``hf download`` fix.
    """
    missing = missing_packages()
    if missing:
        return Availability(
            False, f"{tool_name} needs the Python package(s) {', '.join(missing)}: pip install {' '.join(missing)}"
        )
    results = [model_availability(model_id, key) for model_id, key in models]
    problems = [r.reason for r in results if not r.ok]
    if problems:
        return Availability(False, "; ".join(problems))
    return Availability(True, "; ".join(r.reason for r in results if r.reason))


def load_weights(model_class: Any, model_id: str, env: str, tool_name: str, **kwargs: Any) -> Any:
    """``model_class.from_pretrained(model_id)`` in the best device's dtype (a pipeline or a single model).

    Raises:
        ConfigError: the weights cannot be found or read; the message says how to get them.
    """
    _, dtype = best_device()
    try:
        return model_class.from_pretrained(model_id, dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: a missing local path is not a valid hub id either
        raise ConfigError(
            f"{tool_name} cannot load {model_id} ({_first_line(exc)}); download it on a machine with internet "
            f"('hf download {model_id}') or set {env} to a local copy"
        ) from exc


def load_pipeline(pipeline_class: Any, model_id: str, env: str, tool_name: str) -> Any:
    """A pipeline loaded by :func:`load_weights` and moved to the best device by :func:`place`."""
    return place(load_weights(pipeline_class, model_id, env, tool_name), best_device()[0])


def place(pipeline: Any, device: str) -> Any:
    """Move a pipeline to ``device`` (or set up offloading), apply the memory savers, silence its progress bars."""
    savers = MemorySavers.from_env()
    if savers.offload != "none" and device != "cuda":
        log.info("%s=%s: no GPU here, so nothing to offload; running on %s", MEMORY_ENV, savers.offload, device)
    if savers.offload == "model" and device == "cuda":
        pipeline.enable_model_cpu_offload()
    elif savers.offload == "sequential" and device == "cuda":
        pipeline.enable_sequential_cpu_offload()
    else:
        pipeline.to(device)
    if savers.attention_slicing:
        pipeline.enable_attention_slicing()
    if savers.vae_tiling:
        pipeline.vae.enable_tiling()
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def check_prompt(label: str, text: str, required: bool = True) -> str:
    """The stripped prompt.

    Raises:
        InputError: empty when required, or longer than :data:`MAX_PROMPT_CHARS`.
    """
    text = text.strip()
    if required and not text:
        raise InputError(f"the {label} is empty; describe what the picture should show, e.g. 'a red fox in snow'")
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(
            f"the {label} is {len(text)} characters long; keep it under {MAX_PROMPT_CHARS} "
            "(the model reads only about the first 50 words)"
        )
    return text


def check_sampling(steps: int, guidance_scale: float, seed: int | None) -> int:
    """Validate the sampling settings; returns the seed to use (a fresh random one when None).

    Raises:
        InputError: steps, guidance or seed out of range.
    """
    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    if not 0 <= guidance_scale <= MAX_GUIDANCE:
        raise InputError(f"guidance_scale must be between 0 and {MAX_GUIDANCE:g}, got {guidance_scale}")
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DiffusionTool(Tool):
    """A tool that holds one Stable Diffusion pipeline (or family of them) and runs it one call at a time.

    Subclasses set ``default_model`` and ``pipeline_class`` (a diffusers class name)
    and call :meth:`_generate`. The model is ``PATCHBAY_<TOOL>_MODEL`` or the default.
    """

    default_model: ClassVar[str] = ""
    pipeline_class: ClassVar[str] = ""

    @classmethod
    def model_id(cls) -> str:
        """The configured model: ``PATCHBAY_<TOOL>_MODEL`` or the default checkpoint."""
        return configured_model(cls.name, cls.default_model)

    @classmethod
    def model_env(cls) -> str:
        return f"PATCHBAY_{cls.name.upper()}_MODEL"

    @classmethod
    def available(cls) -> Availability:
        """Whether torch, diffusers and transformers are installed and the weights are here or downloadable."""
        return models_availability(cls.name, [(cls.model_id(), cls.name)])

    def setup(self) -> None:
        """Load the pipeline once on the best device.

        Raises:
            ConfigError: the weights cannot be found or read, with the fix in the message.
        """
        import diffusers

        self.device, self.dtype = best_device()
        self.loaded_model = self.model_id()
        self.pipeline = load_pipeline(
            getattr(diffusers, self.pipeline_class), self.loaded_model, self.model_env(), self.name
        )
        # The in-process backend calls run() from several threads; a pipeline serves one call at a time.
        self._lock = threading.Lock()

    def _generate(self, pipeline: Any, seed: int, **arguments: Any) -> PILImage:
        """Run ``pipeline`` with a CPU generator seeded by ``seed`` (the same start noise on any device); the picture.

        Raises:
            ToolError: the model's safety checker blanked the picture.
        """
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        with self._lock, torch.inference_mode():
            result = pipeline(generator=generator, num_images_per_prompt=1, output_type="pil", **arguments)
        flagged = getattr(result, "nsfw_content_detected", None)
        if flagged and any(flagged):
            raise ToolError(
                f"{self.name}: the model's safety checker flagged the picture as not safe for work and blanked it; "
                "change the prompt"
            )
        return result.images[0]

    def _parameters(self, seed: int, **settings: Any) -> dict[str, object]:
        """What goes into the PNG's text chunks: everything needed to make the same picture again."""
        return {"tool": self.name, "model": self.loaded_model, "seed": seed, **settings}


def seed_name(tool_name: str, seed: int) -> str:
    """The artifact name that shows the seed wherever the artifact is listed."""
    return f"{tool_name}-seed{seed}.png"


def source_picture(image: Image, longest: int) -> PILImage:
    """An input picture decoded for generation (JPEGs at reduced scale when much bigger than ``longest``)."""
    from ._pictures import decode_picture

    return decode_picture(image, draft_size=(longest, longest))
