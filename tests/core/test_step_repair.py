"""Steps wired wrong by a small planner: crossed arguments, web addresses as content, conversions already done."""

from __future__ import annotations

import pytest
from plan_tools import raw_tasks as tasks
from plan_tools import typed_tools

from patchbay.orchestrator.step_repair import drop_done_conversions, fetch_web_addresses, uncross_arguments
from patchbay.orchestrator.validate import validate_plan

TOOLS = [
    ("Audio Splicer", ["audio", "audio"], "audio"),
    ("Video Synchronization", ["video", "audio"], "video"),
    ("Video Voiceover", ["video", "text"], "video"),
    ("Audio-to-Text", ["audio"], "text"),
    ("Image Search", ["text"], "image"),
    ("Image Colorizer", ["image"], "image"),
    ("Image Stitcher", ["image", "image"], "image"),
    ("Text Summarizer", ["text"], "text"),
    ("URL Extractor", ["text"], "url"),
    ("Text Downloader", ["url"], "text"),
    ("Image Downloader", ["url"], "image"),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return typed_tools(tmp_path_factory.mktemp("tools"), TOOLS)


# --- crossed arguments -----------------------------------------------------------------


def test_two_arguments_holding_each_others_kinds_are_swapped(registry):
    splice = ("Audio Splicer", {"audio": "a.wav", "audio_2": "b.wav"})
    raw = tasks(splice, ("Video Synchronization", {"video": "<resource-1>", "audio": "clip.mp4"}))
    fixed = uncross_arguments(raw, registry)
    assert fixed[1]["args"] == {"video": "clip.mp4", "audio": "<resource-1>"}
    validate_plan(fixed, registry)
    # A text reference and a video file change places the same way.
    voiced = tasks(
        ("Audio-to-Text", {"audio": "talk.wav"}), ("Video Voiceover", {"video": "<resource-1>", "text": "clip.mp4"})
    )
    assert uncross_arguments(voiced, registry)[1]["args"] == {"video": "clip.mp4", "text": "<resource-1>"}


def test_no_swap_when_only_one_argument_is_wrong_or_free_text_is_involved(registry):
    one_wrong = tasks(("Video Synchronization", {"video": "photo.jpg", "audio": "song.wav"}))
    assert uncross_arguments(one_wrong, registry) == tasks(
        ("Video Synchronization", {"video": "photo.jpg", "audio": "song.wav"})
    )
    # "a calm voice" is free text: it could be what the user meant for either argument.
    free = tasks(("Video Voiceover", {"video": "a calm voice", "text": "clip.mp4"}))
    assert uncross_arguments(free, registry)[0]["args"] == {"video": "a calm voice", "text": "clip.mp4"}


# --- web addresses given as content ----------------------------------------------------


def catalog(registry):
    return registry.plannable(include_spec_only=True)


def test_a_web_address_handed_to_a_media_or_text_argument_is_downloaded_first(registry):
    raw = tasks(
        ("Image Colorizer", {"image": "https://example.com/old.jpg"}),
        ("Text Summarizer", {"text": "www.example.com/article"}),
    )
    fixed = fetch_web_addresses(raw, registry, catalog(registry))
    assert fixed == [
        {"id": 3, "tool": "Image Downloader", "args": {"url": "https://example.com/old.jpg"}},
        {"id": 1, "tool": "Image Colorizer", "args": {"image": "<resource-3>"}},
        {"id": 4, "tool": "Text Downloader", "args": {"url": "https://www.example.com/article"}},
        {"id": 2, "tool": "Text Summarizer", "args": {"text": "<resource-4>"}},
    ]
    validate_plan(fixed, registry)


def test_one_address_is_downloaded_once_and_an_existing_download_is_reused(registry):
    address = "https://example.com/a.jpg"
    raw = tasks(
        ("Image Downloader", {"url": address}),
        ("Image Colorizer", {"image": address}),
        ("Image Stitcher", {"image": address, "image_2": "<resource-2>"}),
    )
    fixed = fetch_web_addresses(raw, registry, catalog(registry))
    assert [t["tool"] for t in fixed] == ["Image Downloader", "Image Colorizer", "Image Stitcher"]
    assert fixed[1]["args"] == {"image": "<resource-1>"}
    assert fixed[2]["args"] == {"image": "<resource-1>", "image_2": "<resource-2>"}


def test_addresses_are_left_alone_where_the_address_itself_is_meant(registry):
    kept = [
        tasks(("URL Extractor", {"text": "https://example.com/a"})),  # it makes addresses itself
        tasks(("Text Summarizer", {"text": "https://example.com/photo.jpg"})),  # a picture is no text to summarize
        tasks(("Text Summarizer", {"text": "Read https://example.com/a and sum it up"})),  # not a whole address
    ]
    for raw in kept:
        assert fetch_web_addresses(raw, registry, catalog(registry)) == raw
    without_downloader = [spec for spec in catalog(registry) if spec.name != "Image Downloader"]
    raw = tasks(("Image Colorizer", {"image": "https://example.com/old.jpg"}))
    assert fetch_web_addresses(raw, registry, without_downloader) == raw  # the validator explains


# --- conversions already done ----------------------------------------------------------


def test_a_conversion_handed_what_it_would_make_is_dropped_and_its_consumers_take_its_input(registry):
    raw = tasks(
        ("Text Downloader", {"url": "https://example.com/article"}),
        ("Audio-to-Text", {"audio": "<resource-1>"}),  # "transcribe the article": it is text already
        ("Video Voiceover", {"video": "clip.mp4", "text": "<resource-2>"}),
    )
    fixed = drop_done_conversions(raw, registry)
    assert fixed == [
        {"id": 1, "tool": "Text Downloader", "args": {"url": "https://example.com/article"}},
        {"id": 3, "tool": "Video Voiceover", "args": {"video": "clip.mp4", "text": "<resource-1>"}},
    ]
    validate_plan(fixed, registry)


def test_a_step_that_fits_or_would_make_another_kind_is_kept(registry):
    fits = tasks(("Audio-to-Text", {"audio": "talk.wav"}), ("Text Summarizer", {"text": "<resource-1>"}))
    assert drop_done_conversions(fits, registry) == fits
    # Transcribing a picture would make text, not a picture: a wrong step, not a done one (the validator says so).
    other = tasks(("Image Colorizer", {"image": "a.jpg"}), ("Audio-to-Text", {"audio": "<resource-1>"}))
    assert drop_done_conversions(other, registry) == other
