"""Vision plans through the real core: the scripted LLM plans, the Orchestrator runs tiny real models.

A caption flows into text_to_image by reference, and bad pictures or an empty prompt
fail their own task with a clear message while an independent task still succeeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from core.llm_script import RoleScript
from PIL import Image as PILImage
from test_blip_tools import save_tiny_blip

from patchbay import Orchestrator, Provenance, Registry, Settings
from patchbay.prompts import render
from patchbay.tools.builtin import controlnet, diffusion
from patchbay.tools.builtin.blip import ImageCaption
from patchbay.tools.builtin.controlnet import CannyEdges
from patchbay.tools.builtin.diffusion import TextToImage

transformers = pytest.importorskip("transformers")
pytest.importorskip("diffusers")
pytestmark = pytest.mark.usefixtures("torch_single_thread", "hub_offline")


@pytest.fixture(scope="module")
def tiny_caption_dir(tmp_path_factory):
    return save_tiny_blip(transformers.BlipForConditionalGeneration, tmp_path_factory.mktemp("tiny-blip"))


@pytest.fixture
def vision_registry(tiny_sd_dir, tiny_caption_dir, monkeypatch) -> Registry:
    """The tools under test, pointed at tiny models through the PATCHBAY_<TOOL>_MODEL overrides."""
    monkeypatch.setenv("PATCHBAY_IMAGE_CAPTION_MODEL", str(tiny_caption_dir))
    monkeypatch.setenv("PATCHBAY_TEXT_TO_IMAGE_MODEL", str(tiny_sd_dir))
    registry = Registry()
    registry.add(ImageCaption, TextToImage, CannyEdges)
    return registry


def settings_for(server, workspace) -> Settings:
    return Settings(base_url=server.base_url, api_key="test", model="scripted", workspace=workspace, max_replans=0)


def handle_of(data: bytes) -> str:
    return "art-" + hashlib.sha256(data).hexdigest()[:16]


def write_photo(path, size=(64, 48)) -> bytes:
    img = PILImage.new("RGB", size, (200, 30, 30))
    img.paste((20, 20, 220), (0, 0, size[0] // 2, size[1] // 2))
    img.save(path)
    return path.read_bytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height``: tiny on disk, enormous once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


async def test_a_caption_becomes_the_prompt_of_a_new_picture(scripted_llm, tmp_path, vision_registry):
    photo = tmp_path / "photo.png"
    photo_handle = handle_of(write_photo(photo))
    plan = {
        "tasks": [
            {"id": 1, "tool": "image_caption", "args": {"image": photo_handle}},
            {
                "id": 2,
                "tool": "text_to_image",
                "args": {"prompt": "<resource-1>", "width": 72, "height": 64, "steps": 2, "seed": 9},
            },
        ]
    }
    scripted_llm.respond_with(RoleScript().plan(plan).answer("Here is a new picture of it: <resource-2>"))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=vision_registry) as patchbay:
        answer = await patchbay.arun("describe photo.png, then draw a new picture of that", [photo], thread_id="t")
        store = patchbay.store

    caption_task, draw_task = answer.results
    assert [r.status for r in answer.results] == ["succeeded", "succeeded"], [r.error for r in answer.results]
    caption = caption_task.output["value"]
    assert caption_task.output["kind"] == "text" and caption
    assert answer.plan.tasks[1].args["prompt"] == "<resource-1>" and set(answer.plan.tasks[1].dependencies) == {1}
    assert draw_task.args["prompt"] == caption, "the caption reached text_to_image by reference"

    drawing = store.get(draw_task.output["value"])
    assert draw_task.output["kind"] == "image" and drawing.path.is_file() and drawing.mime == "image/png"
    assert Provenance("task", answer.request_id, 2, "text_to_image") in drawing.provenance
    with PILImage.open(drawing.path) as img:
        assert img.size == (72, 64)
        assert img.text["prompt"] == caption and img.text["seed"] == "9"
    assert [a.id for a in answer.artifacts] == [drawing.id]
    assert answer.text == f"Here is a new picture of it: {drawing.id}"


async def test_bad_pictures_and_an_empty_prompt_fail_only_their_own_tasks(scripted_llm, tmp_path, vision_registry):
    files = {
        "good.png": None,
        "truncated.png": None,
        "huge.png": png_header_only(9000, 7000),  # 63 megapixels: above our limit, below Pillow's
        "bomb.png": png_header_only(20000, 20000),  # 400 megapixels: Pillow itself refuses to open it
        "photo.heic": b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64,  # HEIC: no Pillow plugin for it here
    }
    write_photo(tmp_path / "good.png", size=(96, 64))
    full = (tmp_path / "good.png").read_bytes()
    files["good.png"] = full
    files["truncated.png"] = full[: len(full) // 2]
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    tasks = [
        {"id": i, "tool": "canny_edges", "args": {"image": handle_of(data)}}
        for i, data in enumerate(files.values(), start=1)
    ]
    tasks.append({"id": len(tasks) + 1, "tool": "text_to_image", "args": {"prompt": "   ", "width": 72, "height": 64}})
    scripted_llm.respond_with(RoleScript().plan({"tasks": tasks}).answer("Only the first one worked."))

    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=vision_registry) as patchbay:
        answer = await patchbay.arun("find the edges in all of these, and draw nothing", paths, thread_id="t")
        store = patchbay.store

    results = {r.task_id: r for r in answer.results}
    assert results[1].status == "succeeded"
    with PILImage.open(store.get(results[1].output["value"]).path) as edges:
        assert edges.size == (96, 64)
    expected = {
        2: "is corrupt or truncated",
        3: "is 9000x7000 (63 megapixels), above the limit of 50 megapixels; shrink it first",
        4: "is too large to decode safely",
        5: "is not a picture format these tools read; convert it to PNG or JPEG first",
        6: "the prompt is empty",
    }
    for task_id, message in expected.items():
        assert results[task_id].status == "failed" and message in results[task_id].error, results[task_id].error
        assert "Traceback" not in results[task_id].error
    assert results[4].error.startswith(handle_of(files["bomb.png"]))


# -- what the planner sees ------------------------------------------------------------------------
SNAPSHOT = Path(__file__).parent / "snapshots" / "vision_tools.txt"


def test_the_planner_sees_the_vision_tools_as_reviewed():
    """The catalog lines and argument schemas the planner gets; regenerate with PATCHBAY_UPDATE_SNAPSHOTS=1."""
    registry = Registry()
    registry.add(*diffusion.TOOLS, *controlnet.TOOLS)
    catalog = (
        render("plan_system", tools=list(registry), examples=[], plan_format="json", shown_names={})
        .split("# Tools", 1)[1]
        .strip()
    )
    schemas = json.dumps({spec.name: spec.input_schema() for spec in registry}, indent=1, sort_keys=True)
    text = f"{catalog}\n\n{schemas}\n"
    if os.environ.get("PATCHBAY_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), "no snapshot yet; run with PATCHBAY_UPDATE_SNAPSHOTS=1 to create it"
    assert text == SNAPSHOT.read_text(), "the vision tools' catalog changed; review the diff and update the snapshot"
