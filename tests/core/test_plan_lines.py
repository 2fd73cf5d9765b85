"""The line notation of plans: what small models write in it, read into the raw task form."""

from __future__ import annotations

import pytest

from patchbay.errors import PlanParseError
from patchbay.orchestrator.plan_lines import format_plan_lines, in_line_notation, line_name, parse_plan_lines


def test_each_line_is_a_task_and_its_action_a_step():
    tasks, steps = parse_plan_lines(
        '1. transcribe lecture.wav -> Audio-to-Text(audio="lecture.wav")\n'
        "2. summarize the transcript -> Text Summarizer(text=#1)\n"
        "3. read it aloud -> speak(text=#2, rate=1.5, slow=false)"
    )
    assert tasks == [
        {"id": 1, "tool": "Audio-to-Text", "args": {"audio": "lecture.wav"}},
        {"id": 2, "tool": "Text Summarizer", "args": {"text": "<resource-1>"}},
        {"id": 3, "tool": "speak", "args": {"text": "<resource-2>", "rate": 1.5, "slow": False}},
    ]
    assert steps == ["transcribe lecture.wav", "summarize the transcript", "read it aloud"]


def test_what_small_models_write_around_the_notation_is_read_as_they_mean_it():
    tasks, steps = parse_plan_lines(
        "Plan:\n"
        '1) find similar pictures -> Image Search (by Image)(image="a.jpg")\n'
        '2. Image Colorizer(image="#1") -> image\n'
        "3: add reverb -> Audio Effects(audio=x.wav, text=reverb)\n"
        "4. tag it -> tag(text=\"#greenliving is not a reference\", labels=[#1, 'cat'])\n"
        '5. flip it -> image_flip(image=#2, direction="vertical") -> art-20116f51d36c48b3\n'
        "6. crop it -> image_crop(image=#2, left=0)  #2 is the handle of art-20116f51d36c48b3\n"
        '7. draw -> controlnet_generate(image="#1", condition="pose" -> image'
    )
    assert [t["tool"] for t in tasks][:4] == ["Image Search (by Image)", "Image Colorizer", "Audio Effects", "tag"]
    assert tasks[4]["args"] == {"image": "<resource-2>", "direction": "vertical"}  # a guessed result handle is dropped
    assert tasks[5]["args"] == {"image": "<resource-2>", "left": 0}  # so is a comment after the call
    assert tasks[6]["args"] == {"image": "<resource-1>", "condition": "pose"}  # a forgotten ")" before "-> image"
    assert tasks[1]["args"] == {"image": "<resource-1>"}  # a quoted "#1" is still a reference
    assert tasks[2]["args"] == {"audio": "x.wav", "text": "reverb"}  # bare words are the words
    assert tasks[3]["args"] == {"text": "#greenliving is not a reference", "labels": ["<resource-1>", "cat"]}
    assert steps == ["find similar pictures", "", "add reverb", "tag it", "flip it", "crop it", "draw"]


def test_arguments_written_name_colon_value_like_the_catalog_are_read_as_assignments():
    tasks, _ = parse_plan_lines(
        '1. rephrase -> Text Paraphraser(text: "Ideas: cut waste, reuse", style: plain)\n'
        '2. fetch -> Text Downloader(url: "https://example.com/a", extra: #1)'
    )
    assert tasks[0]["args"] == {"text": "Ideas: cut waste, reuse", "style": "plain"}  # quoted colons stay
    assert tasks[1]["args"] == {"url": "https://example.com/a", "extra": "<resource-1>"}


def test_a_call_nested_in_an_argument_becomes_the_step_before_and_references_are_renumbered():
    tasks, steps = parse_plan_lines(
        '1. translate -> Text Translator(text="Hola")\n'
        "2. transcribe -> Video-to-Text(video=VideoVoiceover(video='example.mp4', text=#1))\n"
        '3. sum up -> Text Summarizer(text=#2, note="#2 stays in quotes")'
    )
    assert tasks == [
        {"id": 1, "tool": "Text Translator", "args": {"text": "Hola"}},
        {"id": 2, "tool": "VideoVoiceover", "args": {"video": "example.mp4", "text": "<resource-1>"}},
        {"id": 3, "tool": "Video-to-Text", "args": {"video": "<resource-2>"}},
        {"id": 4, "tool": "Text Summarizer", "args": {"text": "<resource-3>", "note": "#2 stays in quotes"}},
    ]
    assert steps == ["translate", "", "transcribe", "sum up"]


def test_nested_calls_to_tools_named_with_spaces_or_hyphens_become_steps_too():
    tasks, _ = parse_plan_lines(
        '1. stitch -> Image Stitcher(image="a.jpg", image_2="b.jpg")\n'
        '2. steady it -> Video Stabilizer(video=Image - to - Video(image="#1", image_2=\'c.jpg\'), note="f(x) stays")'
    )
    assert tasks == [
        {"id": 1, "tool": "Image Stitcher", "args": {"image": "a.jpg", "image_2": "b.jpg"}},
        {"id": 2, "tool": "Image-to-Video", "args": {"image": "<resource-1>", "image_2": "c.jpg"}},
        {"id": 3, "tool": "Video Stabilizer", "args": {"video": "<resource-2>", "note": "f(x) stays"}},
    ]
    nested_twice, _ = parse_plan_lines('1. hear -> Audio-to-Text(audio=Video-to-Audio(video=Video Search(text="x")))')
    assert [t["tool"] for t in nested_twice] == ["Video Search", "Video-to-Audio", "Audio-to-Text"]


def test_an_argument_named_twice_keeps_the_first_name():
    tasks, _ = parse_plan_lines('4. join -> Audio Splicer(audio=video="#3", audio_2="x.wav", note="a=b=c")')
    assert tasks[0]["args"] == {"audio": "<resource-3>", "audio_2": "x.wav", "note": "a=b=c"}


def test_positional_arguments_stay_positional_for_the_validator_to_map():
    tasks, _ = parse_plan_lines(
        '1. blend -> Image Stitcher("a.jpg", #1)\n2. find similar -> Image Search (by Image)="#1"'
    )
    assert tasks[0]["args"] == ["a.jpg", "<resource-1>"]
    assert tasks[1] == {"id": 2, "tool": "Image Search (by Image)", "args": ["<resource-1>"]}


def test_an_action_the_model_maps_to_no_tool_is_not_a_step():
    tasks, steps = parse_plan_lines('1. colorize it -> Image Colorizer(image="a.jpg")\n2. save it as b.jpg -> none')
    assert [t["tool"] for t in tasks] == ["Image Colorizer"] and steps == ["colorize it"]


@pytest.mark.parametrize("reply", ["none", "Plan:\nnone", "  None.  ", ""])
def test_a_reply_of_none_is_an_empty_plan(reply):
    assert parse_plan_lines(reply) == ([], [])


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("Sure! I would use the captioning tool.", "no plan line found"),
        ("1. caption the photo", "step 1 has no tool call"),
        ('1. blend -> Image Stitcher("a.jpg", second=#1)', "mixes positional and named arguments"),
        ('1. blend -> Image Stitcher(image="a.jpg",, #1)', "step 1: cannot read the arguments"),
        ("1. blend -> Image Stitcher(image=photos[0])", "is not a value"),
    ],
)
def test_an_unreadable_reply_gets_one_clear_error(reply, message):
    with pytest.raises(PlanParseError, match=message):
        parse_plan_lines(reply)


def test_formatting_then_parsing_gives_the_plan_back():
    tasks = [
        {"id": 1, "tool": "Image Search (by Image)", "args": {"image": "a b.jpg", "n": 3}},
        {"id": 2, "tool": "caption", "args": {"image": "<resource-1>", "labels": ["<resource-1>", 'say "hi"']}},
        {"id": 3, "tool": "join", "args": ["<resource-2>", None, True]},
    ]
    text = format_plan_lines(tasks, ["find", "describe"])
    assert text.splitlines()[1] == '2. describe -> caption(image=#1, labels=[#1, "say \\"hi\\""])'
    assert parse_plan_lines(text) == (tasks, ["find", "describe", ""])
    assert format_plan_lines([]) == "none"


def test_validator_messages_are_shown_in_the_notation_the_model_writes():
    message = "task 2 (caption): argument 'image' refers to <resource-3>; <resource-N> names an earlier task"
    assert in_line_notation(message) == "task 2 (caption): argument 'image' refers to #3; #N names an earlier task"


def test_brackets_in_a_tool_name_are_dropped_where_the_calls_own_follow():
    assert line_name("Image Search (by Image)") == "Image Search by Image"
    assert line_name("image_caption") == "image_caption"
