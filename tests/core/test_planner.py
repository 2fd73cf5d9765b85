"""The planner over the real openai client: schema-constrained output, repair loop, endpoint errors."""

from __future__ import annotations

import json

import pytest
from llm_script import RoleScript
from plan_tools import registry, spec_tools

from patchbay.errors import LLMError, PlanningFailed
from patchbay.llm.client import ChatClient
from patchbay.orchestrator import Planner
from patchbay.orchestrator.events import PlanRejected


def planner_for(server, structured="auto", attempts=3, plan_format="json") -> Planner:
    client = ChatClient(server.base_url, "test", "scripted-model", structured=structured, max_retries=0)
    return Planner(client, registry(), max_attempts=attempts, plan_format=plan_format)


async def test_plan_request_uses_json_schema_with_tool_names_as_an_enum(scripted_llm):
    scripted_llm.respond_with(RoleScript().plan({"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}))
    plan = await planner_for(scripted_llm).aplan("shout hi", request_id="r")
    assert plan.to_json() == {"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}
    sent = scripted_llm.requests[0]
    assert sent["model"] == "scripted-model" and sent["temperature"] == 0
    schema = sent["response_format"]["json_schema"]["schema"]
    variants = schema["properties"]["tasks"]["items"]["anyOf"]
    assert {v["properties"]["tool"]["const"] for v in variants} == {
        "caption",
        "speak",
        "shout",
        "nap",
        "async_nap",
        "explode",
    }
    shout = next(v for v in variants if v["properties"]["tool"]["const"] == "shout")
    assert shout["properties"]["args"]["properties"]["times"] == {"type": "integer"}
    assert "- shout(text: text, times: integer = 1) -> text" in sent["messages"][0]["content"]


async def test_llama_server_form_of_the_schema(scripted_llm):
    scripted_llm.respond_with(RoleScript().plan({"tasks": []}))
    await planner_for(scripted_llm, structured="llama").aplan("hello", request_id="r")
    response_format = scripted_llm.requests[0]["response_format"]
    assert response_format["type"] == "json_object" and "tasks" in response_format["schema"]["properties"]


async def test_a_rejected_plan_goes_back_with_the_reasons(scripted_llm):
    scripted_llm.respond_with(
        RoleScript().plan(
            {"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi", "volume": 3}}]},
            'Sorry, here: ```json\n{"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}\n```',
        )
    )
    events = []
    plan = await planner_for(scripted_llm).aplan("shout hi", request_id="r", emit=events.append)
    assert [t.tool for t in plan.tasks] == ["shout"]
    repair = scripted_llm.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and '"volume"' in repair[-2]["content"]
    assert "unknown argument 'volume' (arguments: text, times)" in repair[-1]["content"]
    assert [type(e) for e in events] == [PlanRejected]


async def test_an_invented_tool_name_is_read_as_the_fitting_tool_without_a_repair(scripted_llm):
    reply = {"steps": ["shout it"], "tasks": [{"id": 1, "tool": "Shouter", "args": {"words": "hi"}}]}
    scripted_llm.respond_with(RoleScript().plan(reply))
    plan = await planner_for(scripted_llm).aplan("shout hi", request_id="r")
    assert plan.to_json() == {"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}
    assert len(scripted_llm.requests) == 1


async def test_the_repair_budget_is_bounded(scripted_llm):
    scripted_llm.respond_with(RoleScript().plan("no plan", "still none", "nothing"))
    with pytest.raises(PlanningFailed, match="no valid plan after 3 attempts; last problem: no JSON"):
        await planner_for(scripted_llm).aplan("shout hi", request_id="r")
    assert len(scripted_llm.requests) == 3


async def test_servers_without_json_schema_get_plain_prompting():
    from support.scripted_openai import ScriptedLLM

    with ScriptedLLM(reject_json_schema=True) as server:
        server.respond_with(RoleScript().plan({"tasks": [{"id": 1, "tool": "shout", "args": {"text": "a"}}]}))
        planner = planner_for(server)
        plan = await planner.aplan("shout a", request_id="r")
        assert [t.tool for t in plan.tasks] == ["shout"]
        assert server.requests[0]["response_format"]["type"] == "json_schema"
        assert "response_format" not in server.requests[1]
        assert planner.client.structured == "none"


async def test_an_unreachable_endpoint_is_one_clear_error():
    client = ChatClient("http://127.0.0.1:9/v1", "test", "m", max_retries=0, timeout_s=5)
    with pytest.raises(LLMError, match=r"cannot reach the LLM at http://127.0.0.1:9/v1"):
        await Planner(client, registry()).aplan("hi", request_id="r")


async def test_an_endpoint_error_is_reported_with_its_status(scripted_llm):
    scripted_llm.reply_error(503, "overloaded")
    with pytest.raises(LLMError, match="answered HTTP 503"):
        await planner_for(scripted_llm).aplan("hi", request_id="r")


def test_the_empty_catalog_still_makes_a_schema():
    from patchbay.orchestrator import plan_schema

    assert json.dumps(plan_schema([]))


async def test_when_repairs_run_out_the_valid_part_of_the_plan_is_kept(scripted_llm):
    bad = {
        "tasks": [
            {"id": 1, "tool": "shout", "args": {"text": "hi"}},
            {"id": 2, "tool": "teleport", "args": {"text": "<resource-1>"}},
            {"id": 3, "tool": "nap", "args": {"text": "<resource-2>"}},
            {"id": 4, "tool": "speak", "args": {"text": "<resource-1>"}},
        ]
    }
    scripted_llm.respond_with(RoleScript().plan(bad, bad, bad))
    events = []
    plan = await planner_for(scripted_llm).aplan("do it", request_id="r", emit=events.append)
    assert [t.tool for t in plan.tasks] == ["shout", "speak"]  # teleport is unknown; nap needed it
    assert "kept the valid part of the plan" in events[-1].reason and "teleport" in events[-1].reason


async def test_the_salvage_keeps_the_largest_valid_part_of_any_attempt(scripted_llm):
    first = {
        "tasks": [
            {"id": 1, "tool": "shout", "args": {"text": "hi"}},
            {"id": 2, "tool": "teleport", "args": {"text": "<resource-1>"}},
            {"id": 3, "tool": "speak", "args": {"text": "<resource-1>"}},
        ]
    }
    second = {"tasks": [{"id": 1, "tool": "teleport", "args": {"text": "hi"}}]}
    third = {
        "tasks": [
            {"id": 1, "tool": "shout", "args": {"text": "hi"}},
            {"id": 2, "tool": "fly", "args": {"text": "<resource-1>"}},
        ]
    }
    scripted_llm.respond_with(RoleScript().plan(first, second, third))
    plan = await planner_for(scripted_llm).aplan("shout then speak", request_id="r")
    assert [t.tool for t in plan.tasks] == ["shout", "speak"]  # the first attempt's, not the last one's


async def test_zero_based_references_are_read_as_the_tasks_they_mean(scripted_llm):
    scripted_llm.respond_with(
        RoleScript().plan(
            {
                "tasks": [
                    {"id": 1, "tool": "shout", "args": {"text": "a"}},
                    {"id": 2, "tool": "speak", "args": {"text": "<GENERATED>-0"}},
                ]
            }
        )
    )
    plan = await planner_for(scripted_llm).aplan("shout then speak", request_id="r")
    assert plan.task(2).args == {"text": "<resource-1>"}


async def test_a_text_argument_naming_its_own_task_gets_the_users_text_without_a_repair(scripted_llm):
    scripted_llm.respond_with(
        RoleScript().plan(
            {
                "tasks": [
                    {"id": 1, "tool": "shout", "args": {"text": "<resource-1>"}},
                    {"id": 2, "tool": "speak", "args": {"text": "<resource-1>"}},
                ]
            }
        )
    )
    plan = await planner_for(scripted_llm).aplan('Shout "good morning team" and say it', request_id="r")
    assert plan.task(1).args == {"text": "good morning team"}
    assert plan.task(2).args == {"text": "<resource-1>"}
    assert len(scripted_llm.requests) == 1


async def test_a_media_argument_naming_its_own_task_means_the_one_file_the_request_names(scripted_llm):
    scripted_llm.respond_with(
        RoleScript().plan({"tasks": [{"id": 1, "tool": "caption", "args": {"image": "<resource-1>"}}]})
    )
    plan = await planner_for(scripted_llm).aplan("describe photo.png", request_id="r")
    assert plan.task(1).args == {"image": "photo.png"}
    assert len(scripted_llm.requests) == 1


async def test_a_media_argument_naming_its_own_task_with_no_file_to_mean_goes_back_for_repair(scripted_llm):
    scripted_llm.respond_with(
        RoleScript().plan(
            {"tasks": [{"id": 1, "tool": "caption", "args": {"image": "<resource-1>"}}]},
            {"tasks": [{"id": 1, "tool": "caption", "args": {"image": "photo.png"}}]},
        )
    )
    plan = await planner_for(scripted_llm).aplan("describe photo.png or snap.png", request_id="r")
    assert plan.task(1).args == {"image": "photo.png"}
    assert "refers to its own output" in scripted_llm.requests[1]["messages"][-1]["content"]


async def test_a_text_argument_naming_a_later_task_the_plan_lacks_gets_the_users_text(scripted_llm):
    scripted_llm.respond_with(
        RoleScript().plan({"tasks": [{"id": 1, "tool": "shout", "args": {"text": "<resource-2>"}}]})
    )
    plan = await planner_for(scripted_llm).aplan("Shout: we are live in five minutes", request_id="r")
    assert plan.task(1).args == {"text": "we are live in five minutes"}
    assert len(scripted_llm.requests) == 1


async def test_prefill_output_asks_for_the_line_notation_and_reads_it(scripted_llm):
    scripted_llm.reply('1. shout it -> shout(text="hi")\n2. caption it -> caption(image="art-00000000000000aa")')
    planner = planner_for(scripted_llm, structured="prefill", plan_format="lines")
    plan = await planner.aplan("shout hi", request_id="r")
    assert plan.to_json()["tasks"][0] == {"id": 1, "tool": "shout", "args": {"text": "hi"}}
    sent = scripted_llm.requests[0]
    assert "response_format" not in sent and sent["max_tokens"] == 400
    assert sent["prompt"].endswith("\n# Request\nshout hi<|im_end|>\n<|im_start|>assistant\n")
    assert sent["stop"] == ["<|im_end|>", "<|endoftext|>", "\n\n", "\nRequest:"]
    assert "1. <action> -> <tool name>(<argument>=<value>, ...)" in sent["prompt"]


async def test_a_line_notation_repair_names_references_as_the_model_writes_them(scripted_llm):
    rejected = '1. say it -> speak(text="hi")\n2. caption it -> caption(image=#1)'
    scripted_llm.reply(rejected)
    scripted_llm.reply('1. say it -> speak(text="hi")')
    plan = await planner_for(scripted_llm, structured="prefill", plan_format="lines").aplan("say hi", request_id="r")
    assert [t.tool for t in plan.tasks] == ["speak"]
    repair = scripted_llm.requests[1]["prompt"]
    assert f"<|im_start|>assistant\n{rejected}<|im_end|>" in repair
    error = repair.split("That plan cannot be used")[1]
    assert "expects image but #1 (speak) produces audio" in error and "<resource-" not in error
    assert "one line a step: 1. <action> -> <tool name>" in repair


async def test_prefill_output_begins_a_json_reply_instead_of_constraining_it(scripted_llm):
    # The model's text continues the prefix; the planner reads prefix + text as the plan.
    scripted_llm.reply('"shout hi"], "tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}')
    plan = await planner_for(scripted_llm, structured="prefill", plan_format="json").aplan("shout hi", request_id="r")
    assert plan.to_json() == {"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}
    sent = scripted_llm.requests[0]
    assert "messages" not in sent and "response_format" not in sent
    prompt = sent["prompt"]
    assert prompt.startswith("<|im_start|>system\nYou are the planner of patchbay.")
    assert prompt.endswith('\n# Request\nshout hi<|im_end|>\n<|im_start|>assistant\n{"steps": [')
    assert sent["stop"] == ["<|im_end|>", "<|endoftext|>"] and sent["max_tokens"] == 1024


async def test_a_repair_in_prefill_mode_shows_the_whole_rejected_reply(scripted_llm):
    scripted_llm.reply('"shout"], "tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi", "volume": 3}}]}')
    scripted_llm.reply('"shout"], "tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi"}}]}')
    plan = await planner_for(scripted_llm, structured="prefill", plan_format="json").aplan("shout hi", request_id="r")
    assert [t.tool for t in plan.tasks] == ["shout"]
    repair = scripted_llm.requests[1]["prompt"]
    rejected = (
        '<|im_start|>assistant\n{"steps": ["shout"], '
        '"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi", "volume": 3}}]}'
    )
    assert rejected + "<|im_end|>\n<|im_start|>user\n" in repair
    assert "unknown argument 'volume'" in repair


async def test_a_rejected_plan_repeated_word_for_word_ends_the_repairs(scripted_llm):
    same = {"tasks": [{"id": 1, "tool": "shout", "args": {"text": "hi", "volume": 3}}]}
    scripted_llm.respond_with(RoleScript().plan(same, same, same))
    with pytest.raises(
        PlanningFailed, match="(?s)no valid plan after 2 attempts; last problem: .*unknown argument 'volume'"
    ):
        await planner_for(scripted_llm, attempts=3).aplan("shout hi", request_id="r")
    assert len(scripted_llm.requests) == 2


async def test_line_notation_shows_bracketed_tool_names_without_brackets_and_reads_them_back(scripted_llm, tmp_path):
    nodes = [
        {
            "id": "Image Search (by Image)",
            "desc": "Finds similar images.",
            "input-type": ["image"],
            "output-type": ["image"],
        }
    ]
    tools = spec_tools(tmp_path, nodes)
    client = ChatClient(scripted_llm.base_url, "test", "scripted-model", structured="prefill", max_retries=0)
    scripted_llm.reply('1. find similar images -> Image Search by Image(image="example.jpg")')
    planner = Planner(client, tools, include_spec_only=True, plan_format="lines")
    plan = await planner.aplan("images like example.jpg", request_id="r")
    assert [(t.tool, t.args) for t in plan.tasks] == [("Image Search (by Image)", {"image": "example.jpg"})]
    assert "- Image Search by Image(image: image) -> image" in scripted_llm.requests[0]["prompt"]


async def test_a_download_of_an_earlier_result_is_dropped_without_a_repair(scripted_llm, tmp_path):
    nodes = [
        {"id": "Video Search", "desc": "Finds a video.", "input-type": ["text"], "output-type": ["video"]},
        {"id": "Video Downloader", "desc": "Downloads a video.", "input-type": ["url"], "output-type": ["video"]},
    ]
    tools = spec_tools(tmp_path, nodes)
    client = ChatClient(scripted_llm.base_url, "test", "scripted-model", structured="prefill", max_retries=0)
    scripted_llm.reply(
        '1. search a pasta video -> Video Search(text="cooking pasta")\n2. get it -> Video Downloader(url=#1)'
    )
    plan = await Planner(client, tools, include_spec_only=True).aplan("find a video about pasta", request_id="r")
    assert [(t.tool, t.args) for t in plan.tasks] == [("Video Search", {"text": "cooking pasta"})]
    assert len(scripted_llm.requests) == 1


def test_one_step_examples_are_shown_before_longer_ones(tmp_path):
    nodes = [
        {"id": "Audio-to-Text", "desc": "Transcribes speech.", "input-type": ["audio"], "output-type": ["text"]},
        {"id": "Text Summarizer", "desc": "Summarizes.", "input-type": ["text"], "output-type": ["text"]},
        {
            "id": "visual_question_answering",
            "desc": "Answers a question about a picture.",
            "input-type": ["image", "text"],
            "output-type": ["text"],
        },
    ]
    tools = spec_tools(tmp_path, nodes)
    client = ChatClient("http://127.0.0.1:9/v1", "x", "m", structured="prefill")
    shown = Planner(client, tools, include_spec_only=True).examples()
    # In the pool the two-step transcription example comes first; a small model copies the
    # first plan's shape, so the one-step question is shown before it.
    assert [example["plan"].count("\n") + 1 for example in shown] == [1, 2]
    assert shown[0]["plan"].startswith("1. count the candles on the cake -> visual_question_answering(")


async def test_steps_wired_wrong_are_rewired_without_a_repair(scripted_llm, tmp_path):
    nodes = [
        {"id": "Image Downloader", "desc": "Downloads an image.", "input-type": ["url"], "output-type": ["image"]},
        {"id": "Image Colorizer", "desc": "Colours a picture.", "input-type": ["image"], "output-type": ["image"]},
        {"id": "Image-to-Video", "desc": "A slideshow.", "input-type": ["image", "image"], "output-type": ["video"]},
        {"id": "Video Synchronization", "desc": "Syncs.", "input-type": ["video", "audio"], "output-type": ["video"]},
    ]
    tools = spec_tools(tmp_path, nodes)
    client = ChatClient(scripted_llm.base_url, "test", "scripted-model", structured="prefill", max_retries=0)
    scripted_llm.reply(
        '1. colour the old photo -> Image Colorizer(image="https://example.com/old.jpg")\n'
        '2. make a slideshow -> Image-to-Video(image=#1, image_2="b.jpg")\n'
        '3. sync the song -> Video Synchronization(video="song.wav", audio=#2)'
    )
    request = "Colour https://example.com/old.jpg, make a slideshow with b.jpg and sync it to song.wav"
    plan = await Planner(client, tools, include_spec_only=True).aplan(request, request_id="r")
    assert [(t.tool, t.args) for t in plan.tasks] == [
        ("Image Downloader", {"url": "https://example.com/old.jpg"}),
        ("Image Colorizer", {"image": "<resource-4>"}),
        ("Image-to-Video", {"image": "<resource-1>", "image_2": "b.jpg"}),
        ("Video Synchronization", {"video": "<resource-2>", "audio": "song.wav"}),
    ]
    assert len(scripted_llm.requests) == 1
