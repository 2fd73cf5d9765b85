"""Unknown tool names read as the catalog tool the task needs: by input and output kinds, links, then meaning."""

from __future__ import annotations

import json

import pytest
from plan_tools import spec_tools

from patchbay.orchestrator.parse import parse_plan_steps, parse_plan_text
from patchbay.orchestrator.tool_resolution import resolve_unknown_tools, text_similarity
from patchbay.tools import Registry

TOOLS = [
    ("Text Sentiment Analysis", "Analyzes the sentiment of a given text.", ["text"], "text"),
    ("Text-to-Video", "Generates a video based on a given text description.", ["text"], "video"),
    ("Video Search", "Searches for videos on the internet based on a given query.", ["text"], "video"),
    ("Video-to-Audio", "Extracts the audio track from a given video file.", ["video"], "audio"),
    ("Video-to-Text", "Transcribes speech from a video file into text.", ["video"], "text"),
    ("Video-to-Image", "Extracts a still image from a given video.", ["video"], "image"),
    ("Audio Effects", "Applies audio effects such as reverb to a given audio file.", ["audio", "text"], "audio"),
    ("Image Stitcher", "Stitches together two input images into a collage.", ["image", "image"], "image"),
    ("Image Search", "Searches for images on the internet based on a given query.", ["text"], "image"),
    ("Image Search (by Image)", "Searches for similar images based on a given image.", ["image"], "image"),
    ("Audio Downloader", "Downloads an audio file from a given URL.", ["url"], "audio"),
    ("Audio Noise Reduction", "Reduces background noise in a given audio file.", ["audio"], "audio"),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    nodes = [
        {"id": name, "desc": desc, "input-type": inputs, "output-type": [output]}
        for name, desc, inputs, output in TOOLS
    ]
    return spec_tools(tmp_path_factory.mktemp("tools"), nodes)


def words_only(query, texts):
    """The fallback scorer, so these tests do not depend on the sentence model."""
    from patchbay.orchestrator import tool_resolution

    return [len(tool_resolution._stems(query) & tool_resolution._stems(t)) for t in texts]


def resolve(reply: str, registry: Registry, links=None, similarity=words_only, mistyped_references=False):
    catalog = registry.plannable(include_spec_only=True)
    raw = parse_plan_text(reply)
    return resolve_unknown_tools(
        raw,
        parse_plan_steps(reply),
        catalog,
        registry,
        allowed_links=links,
        similarity=similarity,
        mistyped_references=mistyped_references,
    )


def plan(steps: list[str], *tasks: tuple[str, dict]) -> str:
    return json.dumps(
        {"steps": steps, "tasks": [{"id": i, "tool": tool, "args": args} for i, (tool, args) in enumerate(tasks, 1)]}
    )


def test_input_and_output_kinds_pick_the_tool_and_the_arguments_follow_it(registry):
    reply = plan(
        ["analyze the sentiment", "create a video portraying it", "extract the audio from the video"],
        ("Text Sentiment Analysis", {"text": "I am happy"}),
        ("Video Creator", {"prompt": "<resource-1>", "style": "animated"}),
        ("Audio Extractor", {"clip": "<resource-2>"}),
    )
    tasks = resolve(reply, registry)
    assert [(t["tool"], t["args"]) for t in tasks] == [
        ("Text Sentiment Analysis", {"text": "I am happy"}),
        # text in, video out (task 3 takes a video): Text-to-Video or Video Search; "create a video" decides.
        ("Text-to-Video", {"text": "<resource-1>"}),
        # a video in, and the step says audio: Video-to-Audio, not Video-to-Text or Video-to-Image.
        ("Video-to-Audio", {"video": "<resource-2>"}),
    ]


def test_a_file_name_gives_its_kind_and_known_tools_are_never_touched(registry):
    reply = plan(
        ["add reverb to song.wav", "grab a frame of clip.mp4"],
        ("Reverb Adder", {"file": "song.wav", "effect": "reverb"}),
        ("Video-to-Image", {"video": "clip.mp4"}),
    )
    tasks = resolve(reply, registry)
    assert [(t["tool"], t["args"]) for t in tasks] == [
        ("Audio Effects", {"audio": "song.wav", "text": "reverb"}),
        ("Video-to-Image", {"video": "clip.mp4"}),
    ]


def test_allowed_links_rule_out_a_candidate(registry):
    reply = plan(
        ["make a video about cats", "get its sound"],
        ("Make Video", {"text": "cats"}),
        ("Video-to-Audio", {"video": "<resource-1>"}),
    )
    links = {("Video Search", "Video-to-Audio")}  # the graph only lets a searched video feed Video-to-Audio
    assert resolve(reply, registry, links)[0]["tool"] == "Video Search"
    assert resolve(reply, registry)[0]["tool"] == "Text-to-Video"


def test_a_name_spelled_with_other_punctuation_is_that_tool_whatever_the_step_says(registry):
    reply = plan(
        ["pull a still out of clip.mp4", "look up images like it"],
        ("video to image", {"video": "clip.mp4"}),
        ("ImageSearch by Image", {"image": "<resource-1>"}),
    )
    tasks = resolve(reply, registry, similarity=lambda query, texts: [0.0] * len(texts))
    assert [(t["tool"], t["args"]) for t in tasks] == [
        ("Video-to-Image", {"video": "clip.mp4"}),
        ("Image Search (by Image)", {"image": "<resource-1>"}),
    ]


def test_a_candidate_whose_inputs_the_written_values_cannot_fill_is_passed_over(registry):
    reply = plan(
        ["make a picture of a cat", "find ones like it"],
        ("Picture Maker", {"text": "a cat"}),
        ("Image Search (by Image)", {"image": "<resource-1>"}),
    )

    def stitcher_first(query, texts):
        return [1.0 if t.startswith("Image Stitcher") else 0.9 if t.startswith("Image Search:") else 0.0 for t in texts]

    # Image Stitcher reads closest but needs two images, and the step wrote only text.
    assert resolve(reply, registry, similarity=stitcher_first)[0] == {
        "id": 1,
        "tool": "Image Search",
        "args": {"text": "a cat"},
    }


def test_no_fitting_tool_leaves_the_name_for_the_validator(registry):
    reply = plan(["transcribe the podcast"], ("Speech Recognizer", {"audio": "podcast.mp3"}))
    assert resolve(reply, registry)[0]["tool"] == "Speech Recognizer"  # nothing here takes audio and gives text


def test_the_sentence_model_ranks_by_meaning():
    scores = text_similarity(
        "extract the audio from the video audio extractor",
        ["Video-to-Audio: Extracts the audio track from a given video file.",
         "Video-to-Image: Extracts a still image from a given video."],
    )  # fmt: skip
    assert scores[0] > scores[1]


def test_a_known_tool_handed_a_file_it_cannot_take_becomes_the_tool_that_takes_it(registry):
    for args in ({"text": "example.jpg"}, {"image": "example.jpg"}):  # a file of another kind; a missing parameter
        reply = plan(["find images similar to example.jpg"], ("Image Search", args))
        assert [(t["tool"], t["args"]) for t in resolve(reply, registry)] == [
            ("Image Search (by Image)", {"image": "example.jpg"})
        ]


def test_a_download_of_a_local_file_of_another_kind_becomes_the_conversion_meant(registry):
    reply = plan(
        ["extract the audio from example.mp4", "reduce its noise"],
        ("Audio Downloader", {"url": "example.mp4"}),
        ("Audio Noise Reduction", {"audio": "<resource-1>"}),
    )
    assert [t["tool"] for t in resolve(reply, registry)] == ["Video-to-Audio", "Audio Noise Reduction"]
    assert resolve(reply, registry)[0]["args"] == {"video": "example.mp4"}


def test_tools_that_fit_their_arguments_are_left_alone(registry):
    reply = plan(
        ["download the song", "search pictures of example.jpg", "find similar images"],
        ("Audio Downloader", {"url": "https://example.com/song.wav"}),  # a web address: a real download
        ("Image Search", {"text": "pictures like example.jpg"}),  # text that mentions a file is text
        ("Image Search (by Image)", {"image": "<resource-2>"}),
    )
    tasks = resolve(reply, registry)
    assert [t["tool"] for t in tasks] == ["Audio Downloader", "Image Search", "Image Search (by Image)"]


def test_a_reference_of_the_wrong_kind_changes_the_tool_only_when_asked(registry):
    reply = plan(
        ["analyze the sentiment", "create a video portraying it"],
        ("Text Sentiment Analysis", {"text": "I am happy"}),
        ("Video-to-Image", {"video": "<resource-1>"}),  # a video tool handed text
    )

    def scores(query, texts):  # the closest tool by meaning would still misfit; the next one takes text
        return [1.0 if t.startswith("Video-to-Image") else 0.9 if t.startswith("Text-to-Video") else 0.1 for t in texts]

    assert resolve(reply, registry, similarity=scores)[1]["tool"] == "Video-to-Image"  # repointing comes first
    changed = resolve(reply, registry, similarity=scores, mistyped_references=True)[1]
    assert (changed["tool"], changed["args"]) == ("Text-to-Video", {"text": "<resource-1>"})


def test_a_text_file_handed_to_an_image_tool_becomes_text_for_a_tool_that_reads_text(registry):
    reply = plan(["make an image of a lake"], ("Image Search (by Image)", {"image": "example.txt"}))
    task = resolve(reply, registry)[0]
    assert (task["tool"], task["args"]) == ("Image Search", {"text": "example.txt"})
