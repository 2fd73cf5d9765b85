"""The BLIP tools on a tiny random BLIP saved to disk and loaded through the real ``from_pretrained`` path."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

from patchbay import InputError, Registry
from patchbay.errors import ConfigError
from patchbay.orchestrator import InProcessBackend
from patchbay.tools._invoke import ToolCall
from patchbay.tools.builtin._models import best_device
from patchbay.tools.builtin.blip import MAX_NEW_TOKENS, ImageCaption, VisualQuestionAnswering

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]",
    "a", "photo", "of", "cat", "dog", "on", "the", "sofa", "red", "blue",
    "what", "is", "this", "colour", "how", "many", "yes", "no", "two",
]  # fmt: skip
WORDS = set(VOCAB[6:])


def save_tiny_blip(model_class: type, directory: Path) -> Path:
    """A random BLIP small enough to run in milliseconds, with a processor, written by save_pretrained."""
    from transformers import BertTokenizer, BlipConfig, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    # transformers 5's BertTokenizer takes the vocabulary as `vocab`; a `vocab_file=` is silently ignored.
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(VOCAB)}, bos_token="[DEC]")
    processor = BlipProcessor(BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer)
    ids = {"bos_token_id": VOCAB.index("[DEC]"), "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3}
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(VOCAB), hidden_size=32, encoder_hidden_size=32, intermediate_size=64,
            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64, **ids,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=32, patch_size=8,
        ),
        projection_dim=32,
        image_text_hidden_size=32,
    )  # fmt: skip
    torch.manual_seed(0)
    model_class(config).save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def caption_dir(tmp_path_factory) -> Path:
    return save_tiny_blip(transformers.BlipForConditionalGeneration, tmp_path_factory.mktemp("tiny-blip-caption"))


@pytest.fixture(scope="module")
def vqa_dir(tmp_path_factory) -> Path:
    return save_tiny_blip(transformers.BlipForQuestionAnswering, tmp_path_factory.mktemp("tiny-blip-vqa"))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch's default of one thread per core crawls (~20x) when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def captioner(caption_dir, monkeypatch) -> ImageCaption:
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", str(caption_dir))
    tool = ImageCaption()
    tool.setup()
    return tool


@pytest.fixture
def answerer(vqa_dir, monkeypatch) -> VisualQuestionAnswering:
    monkeypatch.setenv("PATCHBAY_VISUAL_QUESTION_ANSWERING_MODEL", str(vqa_dir))
    tool = VisualQuestionAnswering()
    tool.setup()
    return tool


def picture(colour=(200, 30, 30), size=(64, 48)) -> PILImage.Image:
    img = PILImage.new("RGB", size, colour)
    img.paste((20, 20, 220), (0, 0, size[0] // 2, size[1] // 2))
    return img


def spy_on_setup(monkeypatch, cls) -> list[object]:
    """Record each instance whose setup() runs, keeping the real setup."""
    calls: list[object] = []
    real = cls.setup

    def counting(self):
        calls.append(self)
        real(self)

    monkeypatch.setattr(cls, "setup", counting)
    return calls


# -- image_caption -----------------------------------------------------------------
def test_caption_is_text_from_the_models_vocabulary_and_deterministic(captioner, stored_image):
    image = stored_image(picture())
    first, second = captioner.run(image), captioner.run(image)
    assert isinstance(first, str) and first
    assert first == second
    assert set(first.split()) <= WORDS, "the caption was decoded with the saved tokenizer"


def test_a_fresh_load_gives_the_same_caption(captioner, stored_image):
    image = stored_image(picture())
    again = ImageCaption()
    again.setup()
    assert again.run(image) == captioner.run(image)
    device, dtype = best_device()
    assert captioner.model.training is False and captioner.device == device
    assert next(captioner.model.parameters()).dtype == dtype


def test_caption_continues_the_prompt(captioner, stored_image):
    caption = captioner.run(stored_image(picture()), prompt="a photo of", max_new_tokens=5)
    assert caption.startswith("a photo of")
    assert len(caption.split()) <= 3 + 5


@pytest.mark.parametrize("limit", [1, 3])
def test_max_new_tokens_caps_the_caption(captioner, stored_image, limit):
    # Every word of the tiny vocabulary is one token.
    assert len(captioner.run(stored_image(picture()), max_new_tokens=limit).split()) <= limit


@pytest.mark.parametrize("limit", [0, -1, MAX_NEW_TOKENS + 1])
def test_max_new_tokens_out_of_range_is_an_input_error(captioner, stored_image, limit):
    with pytest.raises(InputError, match=f"between 1 and {MAX_NEW_TOKENS}"):
        captioner.run(stored_image(picture()), max_new_tokens=limit)


def test_caption_accepts_transparent_and_grey_images(captioner, stored_image):
    for img in (picture().convert("RGBA"), picture().convert("L"), picture().convert("P")):
        assert isinstance(captioner.run(stored_image(img)), str)


def test_caption_of_a_truncated_png_is_an_input_error(captioner, stored_image, stored_bytes):
    data = stored_image(picture()).read_bytes()
    with pytest.raises(InputError, match="corrupt or truncated|not an image"):
        captioner.run(stored_bytes(data[: len(data) // 2], "image/png"))


async def test_setup_runs_once_across_calls_through_the_backend(caption_dir, monkeypatch, stored_image, store):
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", str(caption_dir))
    setups = spy_on_setup(monkeypatch, ImageCaption)
    registry = Registry()
    (spec,) = registry.add(ImageCaption)
    handle = stored_image(picture()).handle
    backend = InProcessBackend(store)
    try:
        outputs = [
            await backend.run(spec, ToolCall("image_caption", {"image": handle}, request_id="r", task_id=i))
            for i in range(3)
        ]
    finally:
        await backend.close()
    assert len(setups) == 1
    assert {o.kind for o in outputs} == {"text"}
    assert len({o.value for o in outputs}) == 1


def test_caption_is_available_from_a_local_directory(caption_dir, monkeypatch):
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", str(caption_dir))
    assert ImageCaption.available().ok


def test_caption_is_unavailable_offline_for_a_model_that_is_not_cached(monkeypatch):
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", "nobody-here/no-such-blip")

    def no_network(*args, **kwargs):
        raise AssertionError("the availability check must not touch the network when offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    availability = ImageCaption.available()
    assert not availability.ok
    assert "nobody-here/no-such-blip" in availability.reason
    assert "PATCHBAY_IMAGE_CAPTION_MODEL" in availability.reason


def test_setup_without_weights_is_a_config_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", str(tmp_path))  # a directory with no model in it
    with pytest.raises(ConfigError, match="PATCHBAY_IMAGE_CAPTION_MODEL") as info:
        ImageCaption().setup()
    assert str(tmp_path) in str(info.value)


# -- visual_question_answering -------------------------------------------------------
def test_answer_is_text_from_the_models_vocabulary_and_deterministic(answerer, stored_image):
    image = stored_image(picture())
    first = answerer.run(image, question="what colour is the sofa?")
    assert isinstance(first, str) and first
    assert first == answerer.run(image, question="what colour is the sofa?")
    assert set(first.split()) <= WORDS


@pytest.mark.parametrize("question", ["", "   \n"])
def test_an_empty_question_is_an_input_error(answerer, stored_image, question):
    with pytest.raises(InputError, match="needs a question"):
        answerer.run(stored_image(picture()), question=question)


def test_an_overlong_question_is_an_input_error(answerer, stored_image):
    with pytest.raises(InputError, match="characters long"):
        answerer.run(stored_image(picture()), question="what " * 200)


async def test_vqa_sets_up_once_through_the_backend(vqa_dir, monkeypatch, stored_image, store):
    monkeypatch.setenv("PATCHBAY_VISUAL_QUESTION_ANSWERING_MODEL", str(vqa_dir))
    setups = spy_on_setup(monkeypatch, VisualQuestionAnswering)
    (spec,) = Registry().add(VisualQuestionAnswering)
    handle = stored_image(picture()).handle
    backend = InProcessBackend(store)
    try:
        for i, question in enumerate(["is this a cat?", "how many dogs?"]):
            args = {"image": handle, "question": question}
            output = await backend.run(spec, ToolCall(spec.name, args, request_id="r", task_id=i))
            assert output.kind == "text" and isinstance(output.value, str)
    finally:
        await backend.close()
    assert len(setups) == 1


def test_vqa_availability(vqa_dir, monkeypatch):
    monkeypatch.setenv("PATCHBAY_VISUAL_QUESTION_ANSWERING_MODEL", str(vqa_dir))
    assert VisualQuestionAnswering.available().ok
    monkeypatch.setenv("PATCHBAY_VISUAL_QUESTION_ANSWERING_MODEL", "nobody-here/no-such-vqa")
    availability = VisualQuestionAnswering.available()
    assert not availability.ok
    assert "nobody-here/no-such-vqa" in availability.reason
    assert "PATCHBAY_VISUAL_QUESTION_ANSWERING_MODEL" in availability.reason


def test_default_models_are_the_salesforce_checkpoints(monkeypatch):
    monkeypatch.delenv("PATCHBAY_IMAGE_CAPTION_MODEL", raising=False)
    monkeypatch.delenv("PATCHBAY_VISUAL_QUESTION_ANSWERING_MODEL", raising=False)
    assert ImageCaption.model_id() == "Salesforce/blip-image-captioning-base"
    assert VisualQuestionAnswering.model_id() == "Salesforce/blip-vqa-base"


# -- registration ----------------------------------------------------------------------
def test_both_register_as_documented_text_tools_with_gpu_resources():
    registry = Registry()
    registry.add(ImageCaption, VisualQuestionAnswering)
    caption, vqa = registry.get("image_caption"), registry.get("visual_question_answering")
    assert [p.name for p in caption.params] == ["image", "prompt", "max_new_tokens"]
    assert [(p.name, p.required) for p in vqa.params] == [("image", True), ("question", True)]
    for spec in (caption, vqa):
        assert spec.is_class and spec.output_kind == "text"
        assert spec.description and spec.output_description
        assert all(p.description for p in spec.params)
        assert 0 < spec.resources.gpu < 1 and spec.resources.memory_mb >= 1000


def test_importing_the_module_does_not_import_torch():
    code = "import sys, patchbay.tools.builtin.blip; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
