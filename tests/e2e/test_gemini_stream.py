"""POST /messages with the real Gemini adapter pointed (AI_GOOGLE_GEMINI_BASE_URL) at a fake Gemini REST server:
every part kind streams through, every failure ends with a terminal event, [DONE] and a stored thread saying so."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.gemini import supported_mime
from entrypoints.bootstrap import build
from entrypoints.settings import Settings
from tests.e2e.conftest import LiveServer, serve
from tests.fake_gemini import FakeGemini, Script, candidate, error_body, running_fake_gemini
from tests.sse import Stream, parse

KEY = "test-key"
AGENT, TEAM = "agent-1", "team-1"
SYSTEM = "You are a terse assistant."
INLINE_LIMIT = 8192
TERMINALS = {"finished", "error", "interrupted"}
PNG_IN = b"\x89PNG\r\n\x1a\n" + b"cat-pixels" * 8
PNG_OUT = b"\x89PNG\r\n\x1a\n" + b"drawn-cat" * 8
SIGNATURE = b"\x01sig\xff"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Api:
    """Our app over real HTTP; keeps every response body it got, to check that no secret ever leaks."""

    def __init__(self, http: httpx.AsyncClient, server: LiveServer) -> None:
        self.http = http
        self.server = server
        self.bodies: list[bytes] = []

    async def tee(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.bodies.append(chunk)
            yield chunk

    def form(self, text: str, id_task: str) -> dict[str, str]:
        return {"id_team_agent": AGENT, "id_team": TEAM, "id_task": id_task, "text": text}

    async def message(self, text: str, id_task: str, files: list[tuple[str, Any]] | None = None) -> Stream:
        form, headers = self.form(text, id_task), {"Accept": "text/event-stream"}
        async with self.http.stream("POST", "/messages", data=form, files=files, headers=headers) as r:
            assert r.status_code == 200, await r.aread()
            return await parse(self.tee(r.aiter_raw()))

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        self.bodies.append(response.content)
        return response

    async def task(self, id_task: str) -> dict[str, Any]:
        response = await self.call("GET", f"/tasks/{AGENT}/{id_task}")
        assert response.status_code == 200
        task: dict[str, Any] = response.json()
        return task

    async def stored(self, id_task: str, index: int = -1) -> dict[str, Any]:
        thread: dict[str, Any] = (await self.task(id_task))["content"][index]
        return thread

    def assert_no_secret(self) -> None:
        everything = b"".join(self.bodies)
        assert everything, "nothing was read"
        assert KEY.encode() not in everything


def ended(stream: Stream) -> dict[str, Any]:
    """The terminal event, after checking the stream is started ... one terminal event, then [DONE]."""
    assert stream.frames[-1].data == "[DONE]"
    assert all(frame.data != "[DONE]" for frame in stream.frames[:-1])
    events = stream.events
    assert events[0]["event"] == "started"
    assert [e["event"] in TERMINALS for e in events].count(True) == 1
    assert events[-1]["event"] in TERMINALS
    return events[-1]


def body(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events between `started` and the terminal one."""
    return events[1:-1]


def media(part: dict[str, Any]) -> tuple[str, str, str]:
    """(inline | file, mime type, base64 data | URI) of a media part sent to Gemini. The SDK writes nested
    keys in either spelling (Gemini reads both): mimeType or mime_type, fileUri or file_uri."""
    for key, kind, value in (("inlineData", "inline", "data"), ("fileData", "file", "fileUri")):
        if key in part:
            blob = part[key]
            snake = "file_uri" if value == "fileUri" else value
            return kind, blob.get("mimeType") or blob["mime_type"], blob.get(value) or blob[snake]
    raise AssertionError(f"not a media part: {part}")


async def until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with running_fake_gemini(api_key=KEY) as server:
        yield server


@pytest.fixture
def gemini_settings(settings_factory: Callable[..., Settings], fake: FakeGemini) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "ai_provider": "gemini",
            "ai_google_gemini_api_key": KEY,
            "ai_google_gemini_base_url": fake.url,
            "ai_google_gemini_max_retries": 2,
            "ai_google_gemini_inline_limit_bytes": INLINE_LIMIT,
            "ai_google_gemini_search": True,
            "ai_google_gemini_code_execution": True,
            "ai_system_instruction": SYSTEM,
        }
        return settings_factory(**{**values, **overrides})

    return make


@pytest.fixture
async def api(gemini_settings: Callable[..., Settings]) -> AsyncIterator[Api]:
    with serve(gemini_settings()) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            client = Api(http, server)
            yield client
    client.assert_no_secret()


async def test_text_thoughts_image_and_usage_stream_and_the_next_turn_replays_them(api: Api, fake: FakeGemini) -> None:
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 7, "thoughtsTokenCount": 30, "totalTokenCount": 49}
    fake.script(
        Script(
            chunks=[
                candidate({"text": "Looking at", "thought": True}),
                candidate({"text": " the picture.", "thought": True}),
                candidate({"text": "A cat", "thoughtSignature": b64(SIGNATURE)}),
                candidate({"inlineData": {"mimeType": "image/png", "data": b64(PNG_OUT)}}),
                candidate({"text": ", drawn for you."}, finish="STOP", usageMetadata=usage),
            ]
        ),
        Script(chunks=[candidate({"text": "Done."}, finish="STOP")]),
    )

    first = await api.message("What is in this picture?", "pics", files=[("images", ("cat.png", PNG_IN, "image/png"))])

    assert ended(first) == {"event": "finished"}
    assert body(first.events) == [
        {"event": "reasoning-chunk", "content": "Looking at"},
        {"event": "reasoning-chunk", "content": " the picture."},
        {"event": "text-chunk", "content": "A cat"},
        {
            "event": "image-chunk",
            "name": "image-1.png",
            "is_base64": True,
            "is_url": False,
            "mime_type": "image/png",
            "content": b64(PNG_OUT),
        },
        {"event": "text-chunk", "content": ", drawn for you."},
    ]
    thread = await api.stored("pics")
    response = thread["response"]
    assert (response["text"], response["reasoning"]) == ("A cat, drawn for you.", "Looking at the picture.")
    assert (response["is_finished"], response["is_error"], response["event"]) == (True, False, "finished")
    assert response["usage"] == {"prompt_tokens": 12, "output_tokens": 7, "thoughts_tokens": 30, "total_tokens": 49}
    [image] = response["images"]
    assert (image["name"], image["type"], image["mime_type"], image["size"]) == (
        "image-1.png",
        "image",
        "image/png",
        len(PNG_OUT),
    )
    served = await api.call("GET", image["url"])
    assert served.status_code == 200
    assert served.content == PNG_OUT
    assert served.headers["content-type"] == "image/png"
    [upload] = thread["request"]["images"]
    assert (await api.call("GET", upload["url"])).content == PNG_IN

    sent = fake.calls("stream")[0]
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.path == "/v1/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.json["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    assert sent.json["generationConfig"]["thinkingConfig"] == {"include_thoughts": True}
    [user] = sent.json["contents"]
    assert user["role"] == "user"
    assert media(user["parts"][0]) == ("inline", "image/png", b64(PNG_IN))
    assert user["parts"][1:] == [{"text": "What is in this picture?"}]

    second = await api.message("Make it blue", "pics")

    assert ended(second) == {"event": "finished"}
    assert second.text == "Done."
    history = fake.calls("stream")[1].json
    assert history["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    assert SYSTEM not in json.dumps(history["contents"])
    assert [content["role"] for content in history["contents"]] == ["user", "model", "user"]
    earlier, model, now = history["contents"]
    assert media(earlier["parts"][0]) == ("inline", "image/png", b64(PNG_IN))
    assert earlier["parts"][1:] == [{"text": "What is in this picture?"}]
    signed, drawn, tail = model["parts"]
    assert signed["text"] == "A cat"
    assert base64.urlsafe_b64decode(signed["thoughtSignature"]) == SIGNATURE
    assert media(drawn) == ("inline", "image/png", b64(PNG_OUT))
    assert tail == {"text": ", drawn for you."}
    assert not any(part.get("thought") for part in model["parts"])
    assert now["parts"] == [{"text": "Make it blue"}]
    stored = await api.task("pics")
    assert [t["response"]["text"] for t in stored["content"]] == ["A cat, drawn for you.", "Done."]
    assert fake.unused_scripts == 0


async def test_function_calls_code_execution_and_grounding_are_numbered_steps(api: Api, fake: FakeGemini) -> None:
    grounding = {
        "webSearchQueries": ["weather paris"],
        "groundingChunks": [{"web": {"uri": "https://weather.example/paris", "title": "weather.example"}}],
    }
    fake.script(
        Script(
            chunks=[
                candidate({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}),
                candidate({"executableCode": {"language": "PYTHON", "code": "print(2 + 2)"}}),
                candidate({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "4"}}),
                candidate({"text": "Sunny; and 2 + 2 = 4."}, finish="STOP", groundingMetadata=grounding),
            ]
        )
    )

    stream = await api.message("Weather in Paris, and 2 + 2?", "tools")

    assert ended(stream) == {"event": "finished"}
    assert body(stream.events) == [
        {"event": "step", "step": 1, "content": 'Calling get_weather({"city": "Paris"})'},
        {"event": "step", "step": 2, "content": "Running Python code: print(2 + 2)"},
        {"event": "step", "step": 3, "content": "Code result: 4"},
        {"event": "text-chunk", "content": "Sunny; and 2 + 2 = 4."},
        {"event": "step", "step": 4, "content": "Searching the web for “weather paris”"},
        {"event": "step", "step": 5, "content": "Source: weather.example (https://weather.example/paris)"},
    ]
    assert fake.calls("stream")[0].json["tools"] == [{"googleSearch": {}}, {"codeExecution": {}}]
    response = (await api.stored("tools"))["response"]
    assert (response["text"], response["is_finished"]) == ("Sunny; and 2 + 2 = 4.", True)


BLOCKED = "The request was blocked by the model's safety filters (SAFETY)"
UNSAFE = "The reply was blocked by the model's safety filters (SAFETY)"


@pytest.mark.parametrize(
    ("script", "partial", "terminal"),
    [
        pytest.param(
            Script(chunks=[{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}]),
            "",
            {"event": "error", "error": BLOCKED},
            id="prompt-blocked",
        ),
        pytest.param(
            Script(chunks=[candidate({"text": "Well, "}), {"candidates": [{"finishReason": "SAFETY"}]}]),
            "Well, ",
            {"event": "error", "error": UNSAFE},
            id="finish-safety",
        ),
        pytest.param(
            Script(chunks=[candidate({"text": "A very long"}, finish="MAX_TOKENS")]),
            "A very long",
            {"event": "finished", "reason": "max_tokens"},
            id="max-tokens",
        ),
        pytest.param(
            Script(chunks=[{"candidates": [{"finishReason": "STOP"}]}]),
            "",
            {"event": "error", "error": "The model returned an empty reply"},
            id="empty-reply",
        ),
        pytest.param(
            Script(status=400, error=error_body(400, "vendor detail: bad field")),
            "",
            {"event": "error", "error": "The model rejected the request"},
            id="rejected-400",
        ),
    ],
)
async def test_each_way_a_reply_can_end_is_streamed_and_stored(
    api: Api, fake: FakeGemini, script: Script, partial: str, terminal: dict[str, Any]
) -> None:
    fake.script(script)

    stream = await api.message("Tell me something", "ends")

    assert ended(stream) == terminal
    assert stream.text == partial
    assert [e["event"] for e in body(stream.events)] == ["text-chunk"] * bool(partial)
    response = (await api.stored("ends"))["response"]
    assert response["text"] == partial
    assert response["event"] == terminal["event"]
    assert response["is_error"] is (terminal["event"] == "error")
    assert response["is_finished"] is (terminal["event"] == "finished")
    assert response["error"] == terminal.get("error")
    assert response["reason"] == terminal.get("reason")
    assert len(fake.calls("stream")) == 1
    assert b"vendor detail" not in b"".join(api.bodies)


async def test_rate_limited_then_answered_shows_loading_then_the_reply(api: Api, fake: FakeGemini) -> None:
    fake.script(
        Script(status=429, headers={"retry-after": "0"}),
        Script(chunks=[candidate({"text": "Back again."}, finish="STOP")]),
    )

    stream = await api.message("Are you there?", "busy")

    assert ended(stream) == {"event": "finished"}
    assert body(stream.events) == [{"event": "loading"}, {"event": "text-chunk", "content": "Back again."}]
    assert len(fake.calls("stream")) == 2
    response = (await api.stored("busy"))["response"]
    assert (response["text"], response["is_finished"]) == ("Back again.", True)


async def test_rate_limited_past_the_retries_ends_with_an_error(api: Api, fake: FakeGemini) -> None:
    fake.script(*(Script(status=429, error=error_body(429, f"quota of {KEY} exceeded")) for _ in range(3)))

    stream = await api.message("Are you there?", "saturated")

    overloaded = "The model is overloaded or rate-limited, try again in a moment"
    assert ended(stream) == {"event": "error", "error": overloaded}
    assert body(stream.events) == [{"event": "loading"}, {"event": "loading"}]
    assert len(fake.calls("stream")) == 3
    response = (await api.stored("saturated"))["response"]
    assert (response["is_error"], response["error"], response["text"]) == (True, overloaded, "")


async def test_503_mid_stream_keeps_the_partial_reply_and_says_so(api: Api, fake: FakeGemini) -> None:
    fake.script(
        Script(
            chunks=[candidate({"text": "Partial "}), candidate({"text": "answer"})],
            error=error_body(503, f"backend node-7 overloaded (key {KEY})"),
        )
    )

    stream = await api.message("Tell me a story", "cut")

    unavailable = "The model service is unavailable, try again"
    assert ended(stream) == {"event": "error", "error": unavailable}
    assert stream.text == "Partial answer"
    response = (await api.stored("cut"))["response"]
    assert (response["text"], response["is_error"], response["error"]) == ("Partial answer", True, unavailable)
    assert response["is_finished"] is False
    assert len(fake.calls("stream")) == 1, "no retry once the reply has started"
    assert b"node-7" not in b"".join(api.bodies)


async def test_a_large_video_goes_through_the_files_api_while_loading_shows(api: Api, fake: FakeGemini) -> None:
    fake.file_states = ["PROCESSING", "ACTIVE"]
    fake.script(Script(chunks=[candidate({"text": "A short clip."}, finish="STOP")]))

    stream = await api.message("Describe the clip", "video", files=[("videos", ("clip.mp4", VIDEO, "video/mp4"))])

    assert ended(stream) == {"event": "finished"}
    assert body(stream.events) == [
        {"event": "loading", "progress": 0.0},
        {"event": "loading"},
        {"event": "loading", "progress": 1.0},
        {"event": "text-chunk", "content": "A short clip."},
    ]
    [start] = fake.calls("upload-start")
    assert start.headers["x-goog-api-key"] == KEY
    assert start.headers["x-goog-upload-header-content-type"] == "video/mp4"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(VIDEO))
    assert fake.files["files/fake1"].data == VIDEO
    assert len(fake.calls("file-get")) == 1
    sent = fake.calls("stream")[0].json
    [user] = sent["contents"]
    assert media(user["parts"][0]) == ("file", "video/mp4", f"{fake.url}/v1beta/files/fake1")
    assert user["parts"][1:] == [{"text": "Describe the clip"}]
    assert "inlineData" not in json.dumps(sent)
    thread = await api.stored("video")
    assert [(v["name"], v["mime_type"], v["size"]) for v in thread["request"]["videos"]] == [
        ("clip.mp4", "video/mp4", len(VIDEO))
    ]
    assert (thread["response"]["text"], thread["response"]["is_finished"]) == ("A short clip.", True)


async def test_interrupt_closes_the_upstream_response_and_is_stored(api: Api, fake: FakeGemini) -> None:
    fake.script(Script(chunks=[candidate({"text": "Let me think about"})], hang=True))
    stream = Stream()
    headers = {"Accept": "text/event-stream"}

    async with api.http.stream("POST", "/messages", data=api.form("A long question", "stop"), headers=headers) as r:
        reader = asyncio.create_task(parse(api.tee(r.aiter_raw()), into=stream))
        assert await until(lambda: any(f.data.startswith('{"event":"text-chunk"') for f in stream.frames))
        assert not fake.disconnected.is_set()
        interrupt = await api.call("POST", f"/tasks/{AGENT}/stop/interrupt")
        await asyncio.wait_for(reader, 10)

    assert interrupt.status_code == 202
    assert ended(stream) == {"event": "interrupted", "reason": "interrupted by the user"}
    assert stream.text == "Let me think about"
    assert await asyncio.to_thread(fake.disconnected.wait, 5), "the response from Gemini was not closed"
    assert fake.calls("stream")[0].disconnected
    response = (await api.stored("stop"))["response"]
    assert (response["is_interrupted"], response["text"], response["event"]) == (
        True,
        "Let me think about",
        "interrupted",
    )


async def test_the_title_comes_from_the_model_in_the_background(api: Api, fake: FakeGemini) -> None:
    fake.title = "Weather in Paris"
    fake.script(Script(chunks=[candidate({"text": "Sunny."}, finish="STOP")]))

    stream = await api.message("What is the weather like in Paris today?", "titled")

    assert ended(stream) == {"event": "finished"}
    titles: list[str] = []

    async def titled() -> bool:
        titles.append((await api.task("titled"))["title"])
        return titles[-1] == "Weather in Paris"

    for _ in range(100):
        if await titled():
            break
        await asyncio.sleep(0.05)
    assert titles[-1] == "Weather in Paris"
    [call] = fake.calls("generate")
    assert call.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert "What is the weather like in Paris today?" in json.dumps(call.json["contents"])


@pytest.mark.parametrize(
    ("field", "name", "data", "mime"),
    [
        ("documents", "archive.zip", b"PK\x03\x04 a zip archive", "application/zip"),
        ("videos", "still.png", PNG_IN, "image/png"),
    ],
)
async def test_a_file_type_gemini_cannot_read_gets_415_before_anything_is_stored(
    api: Api, fake: FakeGemini, field: str, name: str, data: bytes, mime: str
) -> None:
    files = [("images", ("cat.png", PNG_IN, "image/png")), (field, (name, data, mime))]

    response = await api.call("POST", "/messages", data=api.form("Open this", "rejected"), files=files)

    assert response.status_code == 415
    error = response.json()
    assert (error["error"], error["field"]) == ("unsupported_media_type", field)
    assert name in error["detail"] and mime in error["detail"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert (await api.call("GET", f"/tasks/{AGENT}/rejected")).status_code == 404
    assert stored_files(api.server) == []
    assert fake.received == []


def stored_files(server: LiveServer) -> list[Path]:
    return [path for path in (server.settings.data_dir / "files").rglob("*") if path.is_file()]


def test_bootstrap_gives_the_route_geminis_mime_check(gemini_settings: Callable[..., Settings]) -> None:
    assert build(gemini_settings()).accepts is supported_mime
    assert build(gemini_settings(ai_provider="echo")).accepts is None


async def test_the_route_answers_415_for_what_the_model_does_not_accept_and_deletes_the_stored_files(
    gemini_settings: Callable[..., Settings], fake: FakeGemini
) -> None:
    """The route's own check (Services.accepts) runs once the form is parsed and its files stored; here a
    model that reads no documents, so that a file the upload sniffing accepts reaches the check."""
    settings = gemini_settings()
    services = build(settings)
    services.accepts = lambda kind, mime: kind != "document" and supported_mime(kind, mime)
    files = [("images", ("cat.png", PNG_IN, "image/png")), ("documents", ("notes.md", b"# Notes\n", "text/markdown"))]

    with serve(settings, services) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            client = Api(http, server)
            response = await client.call("POST", "/messages", data=client.form("Read this", "md"), files=files)
            missing = await client.call("GET", f"/tasks/{AGENT}/md")

    assert response.status_code == 415
    error = response.json()
    assert (error["error"], error["field"]) == ("unsupported_media_type", "documents")
    assert "notes.md" in error["detail"] and "text/markdown" in error["detail"]
    assert missing.status_code == 404
    assert stored_files(server) == []
    assert fake.received == []
    client.assert_no_secret()


async def test_a_gateway_base_url_with_a_path_and_api_version_is_used(
    gemini_settings: Callable[..., Settings], fake: FakeGemini
) -> None:
    fake.script(Script(chunks=[candidate({"text": "Via the gateway."}, finish="STOP")]))
    settings = gemini_settings(ai_google_gemini_base_url=f"{fake.url}/gemini/", ai_google_gemini_api_version="v1beta")

    with serve(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            client = Api(http, server)
            stream = await client.message("Hello through the gateway", "gw")

    assert ended(stream) == {"event": "finished"}
    assert stream.text == "Via the gateway."
    [call] = fake.calls("stream")
    assert (call.path, call.query) == ("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent", "alt=sse")
    client.assert_no_secret()
