"""Built-in vision-language tools on BLIP: describe a picture, answer a question about one.

Both are class tools: ``setup()`` loads the processor and weights once per process
(CUDA float16 where a GPU is present, else CPU float32) and every call after that
only runs inference. torch and transformers are imported in ``setup()``, never when
patchbay is imported. The model is ``PATCHBAY_<TOOL>_MODEL`` (a hub id or a local
directory written by ``save_pretrained``) or the Salesforce BLIP base checkpoint.

Decoding is greedy, so the same picture and text always give the same answer.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, ClassVar

from PIL import ImageOps

from ...errors import ConfigError, InputError
from ...media import Image
from .._define import Tool
from .._spec import Availability, Resources
from ._models import best_device, configured_model, model_availability

CAPTION_MODEL = "Salesforce/blip-image-captioning-base"
VQA_MODEL = "Salesforce/blip-vqa-base"
MAX_NEW_TOKENS = 100
"""The longest caption image_caption will generate, in tokens (about 0.75 words each)."""
MAX_TEXT_CHARS = 500
"""The longest prompt or question accepted, in characters."""
ANSWER_TOKENS = 20
"""visual_question_answering's answer length cap: BLIP answers in a few words."""


class _BlipTool(Tool):
    """Loading, availability and greedy generation shared by the BLIP tools."""

    model_class: ClassVar[str] = ""
    default_model: ClassVar[str] = ""

    @classmethod
    def model_id(cls) -> str:
        """The configured model: ``PATCHBAY_<TOOL>_MODEL`` or the default checkpoint."""
        return configured_model(cls.name, cls.default_model)

    @classmethod
    def available(cls) -> Availability:
        """Whether torch and transformers are installed and the weights are on disk or downloadable."""
        missing = [pkg for pkg in ("torch", "transformers") if importlib.util.find_spec(pkg) is None]
        if missing:
            return Availability(
                False, f"{cls.name} needs the Python package(s) {', '.join(missing)}: pip install {' '.join(missing)}"
            )
        return model_availability(cls.model_id(), cls.name)

    def setup(self) -> None:
        """Load the processor and the model once, in eval mode, on the best device.

        Raises:
            ConfigError: the weights cannot be found or read, with the fix in the message.
        """
        import transformers

        model_id = self.model_id()
        self.device, self.dtype = best_device()
        try:
            self.processor = transformers.BlipProcessor.from_pretrained(model_id)
            model = getattr(transformers, self.model_class).from_pretrained(model_id, dtype=self.dtype)
        except (OSError, ValueError) as exc:  # ValueError: a path that does not exist is not a valid hub id either
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"{self.name} cannot load {model_id} ({reason}); download it on a machine with internet "
                f"('hf download {model_id}') or set PATCHBAY_{self.name.upper()}_MODEL "
                "to a local copy"
            ) from exc
        self.model = model.to(self.device).eval()
        # The in-process backend calls run() from several threads; one model serves one call at a time.
        self._lock = threading.Lock()

    def _generate(self, image: Image, text: str | None, max_new_tokens: int) -> str:
        """Greedy-decode BLIP's text for ``image`` (and ``text``: a prompt or a question)."""
        import torch

        picture = ImageOps.exif_transpose(image.to_pil()).convert("RGB")
        inputs: Any = self.processor(images=picture, text=text, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with self._lock, torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        return self.processor.decode(ids[0], skip_special_tokens=True).strip()


def _check_text(label: str, text: str) -> str:
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the {label} is {len(text)} characters long; keep it under {MAX_TEXT_CHARS}")
    return text


class ImageCaption(_BlipTool):
    """Describe a picture in one short English sentence (BLIP captioning)."""

    name = "image_caption"
    model_class = "BlipForConditionalGeneration"
    default_model = CAPTION_MODEL
    # BLIP base: ~247M parameters, ~990 MB in float32 (half that on a GPU in float16).
    resources = Resources(gpu=0.25, cpus=1, memory_mb=1000)

    def run(self, image: Image, prompt: str = "", max_new_tokens: int = 30) -> str:
        """Describe what a picture shows in one short English sentence, e.g. "a dog running on a beach".

        Use it to learn what is in a photo or drawing, to write alt text, or to feed
        a picture's content to a text tool. It names objects and scenes; it does not
        read text in the picture (use ocr) or answer questions (use visual_question_answering).

        Args:
            image: the picture to describe.
            prompt: optional start of the caption for the model to continue, e.g.
                "a painting of"; leave empty for a plain caption.
            max_new_tokens: the most tokens to generate after the prompt, 1 to 100
                (a token is about three quarters of a word).

        Returns:
            The caption in lower case; when a prompt is given the caption begins with it.

        Raises:
            InputError: the image is corrupt, the prompt is too long, or max_new_tokens is out of range.
        """
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
            raise InputError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}, got {max_new_tokens}")
        prompt = _check_text("prompt", prompt)
        return self._generate(image, prompt or None, max_new_tokens)


class VisualQuestionAnswering(_BlipTool):
    """Answer a question about a picture in a few words (BLIP VQA)."""

    name = "visual_question_answering"
    model_class = "BlipForQuestionAnswering"
    default_model = VQA_MODEL
    # BLIP VQA base: ~385M parameters (vision encoder, text encoder, answer decoder), ~1.5 GB in float32.
    resources = Resources(gpu=0.25, cpus=1, memory_mb=1600)

    def run(self, image: Image, question: str) -> str:
        """Answer a question about what a picture shows, in a word or a few words.

        Use it for yes/no questions ("is there a dog?"), counting ("how many people
        are there?"), colours, objects, places and activities. Answers are short and
        in lower case; for a full description use image_caption, and for written
        text in the picture use ocr.

        Args:
            image: the picture the question is about.
            question: the question in English, e.g. "what colour is the car?".

        Returns:
            The answer, usually one to three words, e.g. "yes", "2" or "red".

        Raises:
            InputError: the image is corrupt, or the question is empty or too long.
        """
        question = _check_text("question", question)
        if not question:
            raise InputError("visual_question_answering needs a question about the image")
        return self._generate(image, question, ANSWER_TOKENS)


TOOLS = [ImageCaption, VisualQuestionAnswering]
