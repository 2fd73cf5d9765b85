"""The scripted LLM server, exercised through the real ``openai`` client over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest

from support.scripted_openai import ScriptedError, ScriptedLLM, ScriptedReply

USER = [{"role": "user", "content": "hello"}]
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "plan", "schema": {"type": "object", "properties": {"tasks": {"type": "array"}}}},
}


def _client(llm: ScriptedLLM, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0, **kwargs)


def test_queued_replies_come_back_in_order(scripted_llm):
    scripted_llm.reply("first")
    scripted_llm.reply('{"tasks": []}')
    client = _client(scripted_llm)

    one = client.chat.completions.create(model="planner-x", messages=USER)
    two = client.chat.completions.create(model="planner-x", messages=USER)

    assert one.choices[0].message.content == "first"
    assert one.choices[0].message.role == "assistant"
    assert one.choices[0].finish_reason == "stop"
    assert one.model == "planner-x"
    assert one.object == "chat.completion"
    assert one.id.startswith("chatcmpl-")
    assert one.usage.total_tokens == one.usage.prompt_tokens + one.usage.completion_tokens > 0
    assert json.loads(two.choices[0].message.content) == {"tasks": []}
    assert scripted_llm.pending == 0


def test_requests_are_recorded(scripted_llm):
    scripted_llm.reply("ok")
    _client(scripted_llm).chat.completions.create(
        model="m", messages=USER, temperature=0.0, response_format={"type": "json_object"}
    )

    [request] = scripted_llm.requests
    assert request["model"] == "m"
    assert request["messages"] == USER
    assert request["temperature"] == 0.0
    assert request["response_format"] == {"type": "json_object"}


def test_respond_with_answers_by_inspecting_the_request(scripted_llm):
    def answer(request: dict) -> str | ScriptedError:
        system = request["messages"][0]["content"]
        if "planner" in system:
            return '{"tasks": []}'
        if "composer" in system:
            return "the answer"
        return ScriptedError(422, "unexpected request")

    scripted_llm.respond_with(answer)
    scripted_llm.reply("queued wins")
    client = _client(scripted_llm)

    def ask(role: str) -> str:
        messages = [{"role": "system", "content": f"you are the {role}"}, *USER]
        return client.chat.completions.create(model="m", messages=messages).choices[0].message.content

    assert ask("planner") == "queued wins"
    assert ask("planner") == '{"tasks": []}'
    assert ask("composer") == "the answer"
    with pytest.raises(openai.UnprocessableEntityError, match="unexpected request"):
        ask("stranger")


def test_respond_with_failure_is_reported_as_500(scripted_llm):
    scripted_llm.respond_with(lambda request: 1 / 0)
    with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
        _client(scripted_llm).chat.completions.create(model="m", messages=USER)


@pytest.mark.parametrize(
    ("status", "exception", "kind"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "authentication_error"),
        (429, openai.RateLimitError, "rate_limit_error"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_error_status_maps_to_openai_exception(scripted_llm, status, exception, kind):
    scripted_llm.reply_error(status, "scripted failure", code="boom")
    with pytest.raises(exception, match="scripted failure") as caught:
        _client(scripted_llm).chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == status
    assert caught.value.type == kind
    assert caught.value.code == "boom"


def test_no_reply_queued_is_a_loud_500(scripted_llm):
    with pytest.raises(openai.InternalServerError, match="scripted LLM: no reply queued for this request"):
        _client(scripted_llm).chat.completions.create(model="m", messages=USER)
    assert len(scripted_llm.requests) == 1


def test_streaming_yields_the_content_in_chunks(scripted_llm):
    scripted_llm.reply("a picture of two cats")
    stream = _client(scripted_llm).chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == "a picture of two cats"
    assert len([d for d in deltas if d]) == 5
    assert all(c.object == "chat.completion.chunk" and c.model == "m" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0
    assert scripted_llm.requests[0]["stream"] is True


def test_streaming_error_raises_before_any_chunk(scripted_llm):
    scripted_llm.reply_error(400, "bad stream")
    with pytest.raises(openai.BadRequestError, match="bad stream"):
        _client(scripted_llm).chat.completions.create(model="m", messages=USER, stream=True)


async def test_async_client_and_async_streaming(scripted_llm):
    scripted_llm.reply("async hello")
    scripted_llm.reply("async stream")
    client = scripted_llm.async_client()

    done = await client.chat.completions.create(model="m", messages=USER)
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])

    assert done.choices[0].message.content == "async hello"
    assert text == "async stream"
    await client.close()


def test_reject_json_schema_only_rejects_json_schema():
    with ScriptedLLM(reject_json_schema=True) as llm:
        llm.reply('{"tasks": []}')
        llm.reply('{"tasks": [1]}')
        client = _client(llm)

        with pytest.raises(openai.BadRequestError, match="json_schema") as caught:
            client.chat.completions.create(model="m", messages=USER, response_format=SCHEMA_FORMAT)
        assert caught.value.status_code == 400
        assert llm.pending == 2, "a rejected request must not consume a scripted reply"

        fallback = client.chat.completions.create(model="m", messages=USER, response_format={"type": "json_object"})
        plain = client.chat.completions.create(model="m", messages=USER)

    assert fallback.choices[0].message.content == '{"tasks": []}'
    assert plain.choices[0].message.content == '{"tasks": [1]}'
    assert [r.get("response_format", {}).get("type") for r in llm.requests] == ["json_schema", "json_object", None]


def test_json_schema_is_accepted_by_default(scripted_llm):
    scripted_llm.reply("{}")
    out = _client(scripted_llm).chat.completions.create(model="m", messages=USER, response_format=SCHEMA_FORMAT)
    assert out.choices[0].message.content == "{}"


def test_delay_lets_a_client_time_out(scripted_llm):
    scripted_llm.reply("too late", delay_s=2.0)
    scripted_llm.respond_with(lambda request: ScriptedReply("on time"))
    client = _client(scripted_llm, timeout=0.2)

    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=USER)
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "on time"


def test_models_lists_the_configured_id():
    with ScriptedLLM(model_id="tiny-planner") as llm:
        models = _client(llm).models.list()
    assert [m.id for m in models.data] == ["tiny-planner"]


def test_unknown_path_is_404_and_bad_json_is_400(scripted_llm):
    with pytest.raises(openai.NotFoundError, match="no route"):
        _client(scripted_llm).embeddings.create(model="m", input="x")

    request = urllib.request.Request(
        scripted_llm.base_url + "/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert "not valid JSON" in json.loads(caught.value.read())["error"]["message"]
    assert scripted_llm.requests == []


def test_env_fixture_points_the_default_client_here(scripted_llm_env):
    scripted_llm_env.reply("from env")
    client = openai.OpenAI(max_retries=0)
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "from env"


def test_lifecycle():
    llm = ScriptedLLM()
    with pytest.raises(RuntimeError, match="not started"):
        _ = llm.base_url
    llm.start()
    with pytest.raises(RuntimeError, match="already started"):
        llm.start()
    llm.reply("x", delay_s=30)
    client = _client(llm, timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=USER)
    llm.stop()  # returns promptly although a 30 s reply is still being delayed
    llm.stop()
    with pytest.raises(TypeError, match="json.dumps"):
        llm.reply({"tasks": []})
