"""Whole turns through the LangGraph flow: grounding, replanning, follow-ups that survive a restart."""

from __future__ import annotations

import json

import pytest
from llm_script import RoleScript, handles_in_prompt, last_user
from PIL import Image as PILImage
from plan_tools import registry

from patchbay import Orchestrator, Settings
from patchbay.errors import InputError
from patchbay.orchestrator.events import AnswerReady, PlanReady, TaskFailed


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    PILImage.new("RGB", (40, 30), "orange").save(path)
    return path


def settings_for(server, workspace) -> Settings:
    return Settings(base_url=server.base_url, api_key="test", model="scripted", workspace=workspace, max_replans=1)


def caption_then_speak(request):
    handle = handles_in_prompt(request)[-1]
    return json.dumps(
        {
            "tasks": [
                {"id": 1, "tool": "caption", "args": {"image": handle}},
                {"id": 2, "tool": "speak", "args": {"text": "<resource-1>"}},
            ]
        }
    )


async def test_a_turn_plans_runs_and_answers_with_real_files(scripted_llm, tmp_path, photo):
    scripted_llm.respond_with(RoleScript().plan(caption_then_speak).answer("It shows a picture; listen: <resource-2>"))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        events = [e async for e in patchbay.astream("describe photo.png aloud", [photo], thread_id="t")]
        answer = await patchbay.last_answer("t")
    assert isinstance(events[0], PlanReady) and isinstance(events[-1], AnswerReady)
    speech = answer.artifacts[0]
    assert speech.mime == "audio/wav" and speech.path.is_file()
    assert answer.text == f"It shows a picture; listen: {speech.id}"
    composer_prompt = last_user(scripted_llm.requests[-1])
    assert "task 1 caption: succeeded -> a 40x30 picture" in composer_prompt
    assert f"task 2 speak: succeeded -> audio {speech.id}" in composer_prompt


async def test_invented_files_are_struck_and_real_outputs_still_delivered(scripted_llm, tmp_path, photo):
    scripted_llm.respond_with(RoleScript().plan(caption_then_speak).answer("Done: art-ffffffffffffffff and art-12ab"))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        answer = await patchbay.arun("describe photo.png aloud", [photo], thread_id="t")
    assert answer.text == "Done: [no such file] and [no such file]"
    assert [a.mime for a in answer.artifacts] == ["audio/wav"]


async def test_no_tool_needed_means_a_direct_answer(scripted_llm, tmp_path):
    scripted_llm.respond_with(RoleScript().plan({"tasks": []}).answer("Hello! How can I help?"))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        answer = await patchbay.arun("hi there")
    assert answer.text == "Hello! How can I help?" and answer.results == [] and answer.artifacts == []
    assert len(scripted_llm.requests) == 2


async def test_failed_results_send_the_flow_back_to_planning_once(scripted_llm, tmp_path):
    script = RoleScript().plan(
        {"tasks": [{"id": 1, "tool": "explode", "args": {"text": "x"}}]},
        {"tasks": [{"id": 1, "tool": "shout", "args": {"text": "x"}}]},
    )
    scripted_llm.respond_with(script.answer("X"))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        events = [e async for e in patchbay.astream("shout x", thread_id="t")]
        answer = await patchbay.last_answer("t")
    assert [e.attempt for e in events if isinstance(e, PlanReady)] == [1, 2]
    assert any(isinstance(e, TaskFailed) for e in events)
    replan_prompt = last_user(scripted_llm.requests[1])
    assert "The previous plan did not work" in replan_prompt and "cannot handle 'x'" in replan_prompt
    assert [r.tool for r in answer.results] == ["shout"] and answer.failed_tasks == []


async def test_replanning_is_bounded_and_the_answer_reports_the_failure(scripted_llm, tmp_path):
    failing = {"tasks": [{"id": 1, "tool": "explode", "args": {"text": "x"}}]}
    scripted_llm.respond_with(RoleScript().plan(failing, failing).answer("I could not do that: the tool failed."))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        answer = await patchbay.arun("shout x", thread_id="t")
    assert len(scripted_llm.requests) == 3  # plan, replan, compose
    assert [r.status for r in answer.failed_tasks] == ["failed"]
    assert "task 1 explode: failed -> cannot handle 'x'" in last_user(scripted_llm.requests[-1])


async def test_a_follow_up_uses_the_first_turns_artifact_even_after_a_restart(scripted_llm, tmp_path, photo):
    workspace = tmp_path / "ws"
    first = RoleScript().plan(caption_then_speak).answer("Here: <resource-2>")
    scripted_llm.respond_with(first)
    async with Orchestrator(settings_for(scripted_llm, workspace), registry=registry()) as patchbay:
        turn1 = await patchbay.arun("describe photo.png aloud", [photo], thread_id="chat-1")
    speech = turn1.artifacts[0].id

    def follow_up(request):
        prompt = last_user(request)
        assert (
            "Earlier in this conversation" in prompt
            and speech in prompt
            and "by speak)  <- the latest result" in prompt
        )
        return {"tasks": [{"id": 1, "tool": "caption", "args": {"image": handles_in_prompt(request)[0]}}]}

    def follow_up_plan(request):
        import json

        return json.dumps(follow_up(request))

    scripted_llm.respond_with(RoleScript().plan(follow_up_plan).answer("Again: <resource-1>"))
    async with Orchestrator(settings_for(scripted_llm, workspace), registry=registry()) as patchbay:
        turn2 = await patchbay.arun("caption the photo again", thread_id="chat-1")
    assert turn2.text == "Again: a 40x30 picture"
    assert turn2.results[0].args["image"] == handles_in_prompt(scripted_llm.requests[-2])[0]


async def test_a_file_that_lies_about_its_type_stops_the_request_before_the_llm(scripted_llm, tmp_path):
    liar = tmp_path / "photo.png"
    liar.write_text("not an image")
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        with pytest.raises(InputError, match="claims to be image/png"):
            await patchbay.arun("describe photo.png", [liar])
    assert scripted_llm.requests == []


async def test_the_plan_may_only_name_files_of_this_conversation(scripted_llm, tmp_path):
    outside = {"tasks": [{"id": 1, "tool": "caption", "args": {"image": "../../etc/passwd"}}]}
    scripted_llm.respond_with(RoleScript().plan(outside, outside, outside))
    from patchbay.errors import PlanningFailed

    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=registry()) as patchbay:
        with pytest.raises(PlanningFailed, match="is not a file of this conversation"):
            await patchbay.arun("caption /etc/passwd")


async def test_a_follow_up_that_calls_the_last_result_a_resource_gets_that_file(scripted_llm, tmp_path, photo):
    from patchbay.tools.builtin.image import image_grayscale

    reg = registry()
    reg.add(image_grayscale)

    def gray(request):
        handle = handles_in_prompt(request)[-1]
        return json.dumps({"tasks": [{"id": 1, "tool": "image_grayscale", "args": {"image": handle}}]})

    scripted_llm.respond_with(RoleScript().plan(gray).answer("Done: <resource-1>"))
    async with Orchestrator(settings_for(scripted_llm, tmp_path / "ws"), registry=reg) as patchbay:
        turn1 = await patchbay.arun("make photo.png gray", [photo], thread_id="t")
        # Small models number earlier files as if they were tasks of the new plan.
        dangling = {"tasks": [{"id": 1, "tool": "caption", "args": {"image": "<resource-2>"}}]}
        scripted_llm.respond_with(RoleScript().plan(dangling).answer("It is <resource-1>"))
        turn2 = await patchbay.arun("caption it", thread_id="t")
    grayed = turn1.artifacts[0].id
    assert turn2.results[0].args == {"image": grayed}
    assert turn2.text == "It is a 40x30 picture"
