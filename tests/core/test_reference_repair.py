"""Reading the user's own text out of a request, for a task that referenced itself."""

from __future__ import annotations

import pytest
from plan_tools import raw_tasks as tasks
from plan_tools import spec_tools, typed_tools

from patchbay.orchestrator.reference_repair import user_text


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ('Summarize "The cat sat on the mat all day long."', "The cat sat on the mat all day long."),
        ("Translate ‘bonjour tout le monde’ to English", "bonjour tout le monde"),
        ("Check the grammar of 'me and him goes to school' please", "me and him goes to school"),
        ('Say "hi" then read "a much longer sentence here"', "a much longer sentence here"),
        (
            "Simplify this: The committee deliberated at length before adjourning.",
            "The committee deliberated at length before adjourning.",
        ),
        ("Read the text at https://example.com/a aloud", "Read the text at https://example.com/a aloud"),
        ("What's the user's mood in I'm fine thanks", "What's the user's mood in I'm fine thanks"),
        ("Note: hi", "Note: hi"),
    ],
)
def test_user_text(request_text, expected):
    assert user_text(request_text) == expected


# --- references that cannot be right ------------------------------------------------

TOOLS = [
    ("Text Expander", ["text"], "text"),
    ("Text-to-Image", ["text"], "image"),
    ("Image-to-Text", ["image"], "text"),
    ("Image Colorizer", ["image"], "image"),
    ("Video Voiceover", ["video", "text"], "video"),
    ("Video-to-Image", ["video"], "image"),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return typed_tools(tmp_path_factory.mktemp("tools"), TOOLS)


def test_a_reference_to_the_wrong_kind_or_to_itself_points_at_the_nearest_earlier_maker(registry):
    from patchbay.orchestrator.reference_repair import repoint_mistyped_references

    request = "Expand 'sunset at the beach', draw it, read the text back, and voice it over example.mp4."
    raw = tasks(
        ("Text Expander", {"text": "sunset at the beach"}),
        ("Text-to-Image", {"text": "<resource-1>"}),
        ("Image-to-Text", {"image": "<resource-3>"}),  # itself: means the picture of task 2
        ("Video Voiceover", {"video": "<resource-4>", "text": "<resource-3>"}),  # no earlier video: the user's file
    )
    fixed = repoint_mistyped_references(raw, request, registry)
    assert [t["args"] for t in fixed] == [
        {"text": "sunset at the beach"},
        {"text": "<resource-1>"},
        {"image": "<resource-2>"},
        {"video": "example.mp4", "text": "<resource-3>"},
    ]


def test_a_right_reference_an_unfixable_one_and_a_zero_based_plan_are_left_alone(registry):
    from patchbay.orchestrator.reference_repair import repoint_mistyped_references

    right = tasks(("Text-to-Image", {"text": "a cat"}), ("Image Colorizer", {"image": "<resource-1>"}))
    assert repoint_mistyped_references(right, "draw a cat, colour it", registry) == right
    # An image is wanted, nothing earlier makes one, and the request names two pictures: no guess.
    unfixable = tasks(("Image Colorizer", {"image": "<resource-1>"}))
    request = "colour a.png or b.png"
    assert repoint_mistyped_references(unfixable, request, registry)[0]["args"] == {"image": "<resource-1>"}
    zero_based = tasks(("Text-to-Image", {"text": "a cat"}), ("Image Colorizer", {"image": "<resource-0>"}))
    assert repoint_mistyped_references(zero_based, "draw a cat, colour it", registry)[1]["args"] == {
        "image": "<resource-0>"
    }


def test_in_a_follow_up_a_reference_no_task_of_the_plan_can_be_means_the_latest_result(registry):
    from patchbay.orchestrator.reference_repair import point_dangling_references_at

    latest = {"image": "art-20116f51d36c48b3"}
    # Step 1 names "#2" for the earlier turn's picture: a forward reference, so not task 2.
    raw = tasks(("Image Colorizer", {"image": "<resource-2>"}), ("Image-to-Text", {"image": "<resource-1>"}))
    fixed = point_dangling_references_at(raw, latest, registry)
    assert [t["args"] for t in fixed] == [{"image": "art-20116f51d36c48b3"}, {"image": "<resource-1>"}]
    # A task the plan lacks; a kind with no latest result stays for the validator to report.
    raw = tasks(("Image Colorizer", {"image": "<resource-7>"}), ("Text Expander", {"text": "<resource-3>"}))
    fixed = point_dangling_references_at(raw, latest, registry)
    assert [t["args"] for t in fixed] == [{"image": "art-20116f51d36c48b3"}, {"text": "<resource-3>"}]
    # Without an earlier turn nothing changes.
    raw = tasks(("Image Colorizer", {"image": "<resource-2>"}))
    assert point_dangling_references_at(raw, {}, registry)[0]["args"] == {"image": "<resource-2>"}


def test_allowed_links_decide_which_earlier_task_is_meant(registry):
    from patchbay.orchestrator.reference_repair import repoint_mistyped_references

    raw = tasks(
        ("Text-to-Image", {"text": "a cat"}),
        ("Video-to-Image", {"video": "clip.mp4"}),
        ("Image-to-Text", {"image": "<resource-3>"}),
    )
    links = {("Text-to-Image", "Image-to-Text")}
    assert repoint_mistyped_references(raw, "x", registry, links)[2]["args"] == {"image": "<resource-1>"}
    raw[2]["args"] = {"image": "<resource-3>"}
    assert repoint_mistyped_references(raw, "x", registry)[2]["args"] == {"image": "<resource-2>"}


def _download_registry(tmp_path):

    nodes = [
        {"id": "Video Downloader", "desc": "Downloads a video.", "input-type": ["url"], "output-type": ["video"]},
        {"id": "Image Downloader", "desc": "Downloads an image.", "input-type": ["url"], "output-type": ["image"]},
        {"id": "Video Search", "desc": "Finds a video.", "input-type": ["text"], "output-type": ["video"]},
        {"id": "Video-to-Audio", "desc": "Its sound.", "input-type": ["video"], "output-type": ["audio"]},
        {"id": "Image Colorizer", "desc": "Colours it.", "input-type": ["image"], "output-type": ["image"]},
    ]
    return spec_tools(tmp_path, nodes)


def test_a_download_of_a_file_the_user_has_is_dropped_and_its_consumers_take_the_file(tmp_path):
    from patchbay.orchestrator.reference_repair import drop_needless_downloads

    reg = _download_registry(tmp_path)
    raw = tasks(("Video Downloader", {"url": "example.mp4"}), ("Video-to-Audio", {"video": "<resource-1>"}))
    assert drop_needless_downloads(raw, reg) == [{"id": 2, "tool": "Video-to-Audio", "args": {"video": "example.mp4"}}]
    web = tasks(("Video Downloader", {"url": "https://x.org/a.mp4"}), ("Video-to-Audio", {"video": "<resource-1>"}))
    assert drop_needless_downloads(web, reg) == web
    alone = tasks(("Video Downloader", {"url": "example.mp4"}))
    assert drop_needless_downloads(alone, reg) == alone  # nothing else to do: the validator explains


def test_a_download_of_an_earlier_result_is_dropped_when_it_would_give_the_same_kind_or_nothing_uses_it(tmp_path):
    from patchbay.orchestrator.reference_repair import drop_needless_downloads

    reg = _download_registry(tmp_path)
    search = ("Video Search", {"text": "cooking pasta"})
    # "search a video, then download it": the search already gives the video.
    raw = tasks(search, ("Video Downloader", {"url": "<resource-1>"}), ("Video-to-Audio", {"video": "<resource-2>"}))
    assert drop_needless_downloads(raw, reg) == [
        {"id": 1, "tool": "Video Search", "args": {"text": "cooking pasta"}},
        {"id": 3, "tool": "Video-to-Audio", "args": {"video": "<resource-1>"}},
    ]
    # A closing "save it" step of another kind does nothing either.
    closing = tasks(search, ("Image Downloader", {"url": "<resource-1>"}))
    assert drop_needless_downloads(closing, reg) == tasks(search)
    # But an image "download" of a video that a later step uses as an image is a misnamed
    # tool (meant: a frame of it), left for tool resolution.
    frame = tasks(search, ("Image Downloader", {"url": "<resource-1>"}), ("Image Colorizer", {"image": "<resource-2>"}))
    assert drop_needless_downloads(frame, reg) == frame


# --- salvage: consumers of a dropped pass-through step ------------------------------


def test_a_consumer_of_a_dropped_step_takes_that_steps_input_of_the_kind_it_needs(registry):
    from patchbay.orchestrator.reference_repair import bypass_dropped_tasks

    raw = tasks(
        ("Video Mixer", {"video": "clip.mp4", "audio": "script.json"}),  # invented, and a text file as audio
        ("Video Voiceover", {"video": "<resource-1>", "text": "hello"}),
    )
    kept, notes = bypass_dropped_tasks(raw, {1}, registry)
    assert kept == [{"id": 2, "tool": "Video Voiceover", "args": {"video": "clip.mp4", "text": "hello"}}]
    assert notes == ["task 2 takes clip.mp4 in place of dropped task 1's result"]
    assert raw[1]["args"]["video"] == "<resource-1>"  # the plan as written is not changed


def test_a_run_of_dropped_steps_is_bypassed_to_the_input_before_it(registry):
    from patchbay.orchestrator.reference_repair import bypass_dropped_tasks

    raw = tasks(
        ("Video-to-Image", {"video": "clip.mp4"}),
        ("Sharpen", {"image": "<resource-1>"}),
        ("Denoise", {"image": "<resource-2>"}),
        ("Image-to-Text", {"image": "<resource-3>"}),
    )
    kept, _ = bypass_dropped_tasks(raw, {2, 3}, registry)
    assert [(t["id"], t["args"]) for t in kept] == [(1, {"video": "clip.mp4"}), (4, {"image": "<resource-1>"})]


def test_no_bypass_when_the_dropped_step_had_two_inputs_of_that_kind_or_none(registry):
    from patchbay.orchestrator.reference_repair import bypass_dropped_tasks

    raw = tasks(
        ("Merge", {"image": "a.png", "image_2": "b.png"}),
        ("Image-to-Text", {"image": "<resource-1>"}),
        ("Transcribe", {"audio": "talk.wav"}),
        ("Image Colorizer", {"image": "<resource-3>"}),
    )
    kept, notes = bypass_dropped_tasks(raw, {1, 3}, registry)
    assert [t["args"]["image"] for t in kept] == ["<resource-1>", "<resource-3>"]  # left for the caller to drop
    assert notes == []


def test_a_web_address_without_its_scheme_is_read_as_https(tmp_path):

    from patchbay.orchestrator.reference_repair import complete_web_addresses

    nodes = [{"id": "Text Downloader", "desc": "Downloads a page.", "input-type": ["url"], "output-type": ["text"]}]
    reg = spec_tools(tmp_path, nodes)
    values = ["example.com/article", "www.example.org", "https://a.io/x", "song.mp3", "notes", "example.com"]
    raw = tasks(*[("Text Downloader", {"url": v}) for v in values])
    assert [t["args"]["url"] for t in complete_web_addresses(raw, reg)] == [
        "https://example.com/article",
        "https://www.example.org",
        "https://a.io/x",
        "song.mp3",  # a file the user has: drop_needless_downloads deals with it
        "notes",
        "example.com",  # a bare name with a dot could be a file: left for the validator
    ]
