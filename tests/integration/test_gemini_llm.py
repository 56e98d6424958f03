"""GeminiLLM against hand-written Gemini REST responses (respx), through the real google-genai SDK."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from adapters.gemini import GeminiConfig, GeminiLLM
from domain.errors import LLMError, LLMNotConfigured
from domain.events import (
    Finished,
    Loading,
    MediaChunk,
    ModelTurn,
    ReasoningChunk,
    Step,
    TextChunk,
    UsageReport,
)
from domain.model import Attachment, MessageRequest, MessageResponse, Thread, Usage
from tests.fakes import FakeBlobStore

HOST = "https://generativelanguage.googleapis.com"
STREAM_URL = f"{HOST}/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
TITLE_URL = f"{HOST}/v1/models/gemini-2.5-flash:generateContent"
AGENT = "agent-1"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
VENDOR_TEXT = "internal vendor detail 1234"


class EndlessStream(httpx.AsyncByteStream):
    """An SSE body that sends one chunk and then never ends; records whether it was closed."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def sse(*chunks: dict[str, Any]) -> bytes:
    return "".join(f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in chunks).encode()


def sse_response(*chunks: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=sse(*chunks), headers={"content-type": "text/event-stream"})


def candidate(*parts: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, **extra}
    if finish:
        body["finishReason"] = finish
    return {"candidates": [body]}


def error_body(code: int, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": VENDOR_TEXT, "status": status}}


def request(text: str = "Hello", attachments: Sequence[Attachment] = ()) -> MessageRequest:
    return MessageRequest(AGENT, "team", "task", text, NOW, tuple(attachments))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock() -> Any:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def blobs() -> FakeBlobStore:
    return FakeBlobStore()


@pytest.fixture
def make(http: httpx.AsyncClient, blobs: FakeBlobStore) -> Any:
    def build(**overrides: Any) -> GeminiLLM:
        settings: dict[str, Any] = {
            "api_key": "test-key",
            "retry_base_delay_s": 0.001,
            "file_poll_interval_s": 0.001,
            **overrides,
        }
        return GeminiLLM(GeminiConfig(**settings), blobs=blobs, http_client=http)

    return build


async def collect(llm: GeminiLLM, req: MessageRequest | None = None, history: Sequence[Thread] = ()) -> list[Any]:
    return [event async for event in llm.stream(history=history, request=req or request())]


async def collect_error(llm: GeminiLLM, req: MessageRequest | None = None) -> tuple[list[Any], LLMError]:
    events: list[Any] = []

    async def run() -> None:
        async for event in llm.stream(history=(), request=req or request()):
            events.append(event)

    with pytest.raises(LLMError) as raised:
        await run()
    return events, raised.value


def body(route: Any, index: int = -1) -> dict[str, Any]:
    sent: dict[str, Any] = json.loads(route.calls[index].request.content)
    return sent


def media(part: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, mime type, data or uri) of an inlineData / fileData part, whichever key style the SDK used."""
    for key, kind, value in (("inlineData", "inline", "data"), ("fileData", "file", "fileUri")):
        if key in part:
            blob = part[key]
            mime = blob.get("mimeType") or blob.get("mime_type")
            return kind, mime, blob.get(value) or blob.get("file_uri")
    raise AssertionError(f"not a media part: {part}")


async def test_text_stream_with_usage_and_replay(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(
        return_value=sse_response(
            candidate({"text": "Hel"}),
            {
                **candidate({"text": "lo"}, finish="STOP"),
                "usageMetadata": {
                    "promptTokenCount": 5,
                    "candidatesTokenCount": 2,
                    "thoughtsTokenCount": 7,
                    "totalTokenCount": 14,
                },
            },
        )
    )
    events = await collect(make())
    assert events == [
        TextChunk("Hel"),
        TextChunk("lo"),
        UsageReport(Usage(prompt_tokens=5, output_tokens=2, thoughts_tokens=7, total_tokens=14)),
        ModelTurn([{"text": "Hello"}]),
        Finished(reason=None),
    ]
    sent = route.calls[0].request
    assert sent.headers["x-goog-api-key"] == "test-key"
    assert sent.extensions["timeout"]["read"] == 120.0
    assert body(route)["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert "systemInstruction" not in body(route)


async def test_thoughts_become_reasoning_and_signatures_are_kept(mock: Any, make: Any) -> None:
    signature = base64.b64encode(b"\x01sig\xff").decode()
    route = mock.post(STREAM_URL).mock(
        return_value=sse_response(
            candidate({"text": "Let me think", "thought": True}),
            candidate({"text": " more.", "thought": True}),
            candidate({"text": "Answer", "thoughtSignature": signature}, finish="STOP"),
        )
    )
    events = await collect(make())
    assert events[:3] == [ReasoningChunk("Let me think"), ReasoningChunk(" more."), TextChunk("Answer")]
    turn = next(event for event in events if isinstance(event, ModelTurn))
    assert [part["text"] for part in turn.data] == ["Answer"]
    assert base64.urlsafe_b64decode(turn.data[0]["thought_signature"]) == b"\x01sig\xff"
    assert json.loads(json.dumps(turn.data)) == turn.data
    assert body(route)["generationConfig"]["thinkingConfig"] == {"include_thoughts": True}
    earlier = Thread("t1", request(), MessageResponse(AGENT, "team", "task", NOW, text="Answer"), model_turn=turn.data)
    await collect(make(), request("Next"), history=[earlier])
    replayed = body(route)["contents"][1]
    assert replayed["role"] == "model"
    assert base64.urlsafe_b64decode(replayed["parts"][0]["thoughtSignature"]) == b"\x01sig\xff"


async def test_inline_image_output_is_a_media_chunk(mock: Any, make: Any) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
    mock.post(STREAM_URL).mock(
        return_value=sse_response(candidate({"text": "Here:"}), candidate(image), candidate(image, finish="STOP"))
    )
    events = await collect(make())
    media = [event for event in events if isinstance(event, MediaChunk)]
    assert [(m.kind, m.name, m.mime_type, m.is_base64) for m in media] == [
        ("image", "image-1.png", "image/png", True),
        ("image", "image-2.png", "image/png", True),
    ]
    assert base64.b64decode(media[0].content) == png
    assert media[0].event == "image-chunk"


async def test_function_call_and_code_execution_are_steps(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(
        return_value=sse_response(
            candidate({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}),
            candidate({"executableCode": {"language": "PYTHON", "code": "print(2 + 2)\n"}}),
            candidate({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "4\n"}}),
            candidate({"text": "It is 4."}, finish="STOP"),
        )
    )
    events = await collect(make(code_execution=True, google_search=True))
    steps = [event for event in events if isinstance(event, Step)]
    assert steps == [
        Step(1, 'Calling get_weather({"city": "Paris"})'),
        Step(2, "Running Python code: print(2 + 2)"),
        Step(3, "Code result: 4"),
    ]
    assert body(route)["tools"] == [{"googleSearch": {}}, {"codeExecution": {}}]


async def test_grounding_steps_are_deduplicated(mock: Any, make: Any) -> None:
    grounding: dict[str, Any] = {
        "groundingMetadata": {
            "webSearchQueries": ["weather paris"],
            "groundingChunks": [{"web": {"uri": "https://a.example/1", "title": "a.example"}}],
        }
    }
    more: dict[str, Any] = {
        "groundingMetadata": {
            "webSearchQueries": ["weather paris", "paris forecast"],
            "groundingChunks": [
                {"web": {"uri": "https://a.example/1", "title": "a.example"}},
                {"web": {"uri": "https://b.example/2", "title": "b.example"}},
            ],
        }
    }
    mock.post(STREAM_URL).mock(
        return_value=sse_response(
            candidate({"text": "Sunny"}, **grounding), candidate({"text": "."}, finish="STOP", **more)
        )
    )
    steps = [event for event in await collect(make()) if isinstance(event, Step)]
    assert [(s.step, s.content) for s in steps] == [
        (1, "Searching the web for “weather paris”"),
        (2, "Source: a.example (https://a.example/1)"),
        (3, "Searching the web for “paris forecast”"),
        (4, "Source: b.example (https://b.example/2)"),
    ]


async def test_blocked_prompt_raises(mock: Any, make: Any) -> None:
    mock.post(STREAM_URL).mock(
        return_value=sse_response(
            {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
        )
    )
    events, error = await collect_error(make())
    assert str(error) == "The request was blocked by the model's safety filters (SAFETY)"
    assert events == [UsageReport(Usage(prompt_tokens=3))]


async def test_finish_safety_raises_after_the_partial_text(mock: Any, make: Any) -> None:
    mock.post(STREAM_URL).mock(
        return_value=sse_response(candidate({"text": "Well"}), {"candidates": [{"finishReason": "SAFETY"}]})
    )
    events, error = await collect_error(make())
    assert events == [TextChunk("Well")]
    assert str(error) == "The reply was blocked by the model's safety filters (SAFETY)"
    assert not error.retryable


async def test_max_tokens_finishes_with_a_reason(mock: Any, make: Any) -> None:
    mock.post(STREAM_URL).mock(return_value=sse_response(candidate({"text": "Long"}, finish="MAX_TOKENS")))
    assert (await collect(make()))[-1] == Finished(reason="max_tokens")


async def test_empty_reply_raises(mock: Any, make: Any) -> None:
    mock.post(STREAM_URL).mock(return_value=sse_response({"candidates": [{"finishReason": "STOP"}]}))
    _, error = await collect_error(make())
    assert str(error) == "The model returned an empty reply"


async def test_429_then_success_is_retried_with_loading(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(
        side_effect=[
            httpx.Response(429, json=error_body(429, "RESOURCE_EXHAUSTED"), headers={"retry-after": "0"}),
            sse_response(candidate({"text": "ok"}, finish="STOP")),
        ]
    )
    events = await collect(make())
    assert events[0] == Loading()
    assert events[1] == TextChunk("ok")
    assert route.call_count == 2


async def test_connection_error_is_retried(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(
        side_effect=[httpx.ConnectError("refused"), sse_response(candidate({"text": "ok"}, finish="STOP"))]
    )
    assert (await collect(make()))[:2] == [Loading(), TextChunk("ok")]
    assert route.call_count == 2


async def test_rate_limit_gives_up_after_max_retries_with_a_safe_message(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(return_value=httpx.Response(429, json=error_body(429, "RESOURCE_EXHAUSTED")))
    events, error = await collect_error(make(max_retries=2))
    assert route.call_count == 3
    assert events == [Loading(), Loading()]
    assert str(error) == "The model is overloaded or rate-limited, try again in a moment"
    assert error.retryable
    assert VENDOR_TEXT not in str(error)


@pytest.mark.parametrize(
    ("status", "name", "message"),
    [
        (400, "INVALID_ARGUMENT", "The model rejected the request"),
        (403, "PERMISSION_DENIED", "The model service refused the API key"),
    ],
)
async def test_client_errors_are_not_retried(mock: Any, make: Any, status: int, name: str, message: str) -> None:
    route = mock.post(STREAM_URL).mock(return_value=httpx.Response(status, json=error_body(status, name)))
    events, error = await collect_error(make())
    assert (events, str(error), error.retryable, route.call_count) == ([], message, False, 1)


async def test_503_mid_stream_after_a_chunk_is_not_retried(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(
        return_value=sse_response(candidate({"text": "Partial"}), error_body(503, "UNAVAILABLE"))
    )
    events, error = await collect_error(make())
    assert events == [TextChunk("Partial")]
    assert str(error) == "The model service is unavailable, try again"
    assert VENDOR_TEXT not in str(error)
    assert route.call_count == 1


async def test_timeout_is_retried_then_reported(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    events, error = await collect_error(make(max_retries=1, timeout_s=5))
    assert route.call_count == 2
    assert route.calls[0].request.extensions["timeout"]["read"] == 5.0
    assert events == [Loading()]
    assert str(error) == "The model took too long to answer"
    assert error.retryable


async def test_multi_turn_history_request_body(mock: Any, make: Any, blobs: FakeBlobStore) -> None:
    photo = blobs.add("f-photo", b"JPEGDATA", name="cat.jpg", mime_type="image/jpeg", kind="image", agent=AGENT)
    pdf = blobs.add("f-pdf", b"%PDF-1.7", name="doc.pdf", mime_type="application/pdf", kind="document", agent=AGENT)
    signature = base64.b64encode(b"\xfbsig\xff").decode()
    answered = Thread(
        "t1",
        request("What is this?", [photo]),
        MessageResponse(AGENT, "team", "task", NOW, text="A cat.", is_finished=True),
        model_turn=[{"text": "A cat.", "thought_signature": signature}],
    )
    plain = Thread("t2", request("And its name?"), MessageResponse(AGENT, "team", "task", NOW, text="Tom."))
    unanswered = Thread("t3", request("Hello?"), None)
    route = mock.post(STREAM_URL).mock(return_value=sse_response(candidate({"text": "Sure"}, finish="STOP")))
    llm = make(system_instruction="Be brief.")
    await collect(llm, request("Summarise", [pdf]), history=[answered, plain, unanswered])
    sent = body(route)
    assert sent["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert [content["role"] for content in sent["contents"]] == ["user", "model", "user", "model", "user"]
    first, model, _, _, last = sent["contents"]
    assert media(first["parts"][0]) == ("inline", "image/jpeg", base64.b64encode(b"JPEGDATA").decode())
    assert first["parts"][1:] == [{"text": "What is this?"}]
    assert [part["text"] for part in model["parts"]] == ["A cat."]
    assert base64.urlsafe_b64decode(model["parts"][0]["thoughtSignature"]) == b"\xfbsig\xff"
    assert sent["contents"][3]["parts"] == [{"text": "Tom."}]
    assert last["parts"][0] == {"text": "Hello?"}
    assert media(last["parts"][1]) == ("inline", "application/pdf", base64.b64encode(b"%PDF-1.7").decode())
    assert last["parts"][2] == {"text": "Summarise"}
    assert "Be brief." not in json.dumps(sent["contents"])


async def test_large_video_goes_through_the_files_api(mock: Any, make: Any, blobs: FakeBlobStore) -> None:
    video_bytes = b"\x00\x01video" * 300
    video = blobs.add("f-video", video_bytes, name="clip.mp4", mime_type="video/mp4", kind="video", agent=AGENT)
    upload_url = f"{HOST}/upload/session/xyz"
    file_json = {"name": "files/abc", "uri": f"{HOST}/v1beta/files/abc", "mimeType": "video/mp4"}
    start = mock.post(f"{HOST}/upload/v1/files").mock(
        return_value=httpx.Response(200, json={}, headers={"x-goog-upload-url": upload_url})
    )
    upload = mock.post(upload_url).mock(
        return_value=httpx.Response(
            200, json={"file": {**file_json, "state": "PROCESSING"}}, headers={"x-goog-upload-status": "final"}
        )
    )
    poll = mock.get(f"{HOST}/v1/files/abc").mock(
        side_effect=[
            httpx.Response(200, json={**file_json, "state": "PROCESSING"}),
            httpx.Response(200, json={**file_json, "state": "ACTIVE", "expirationTime": "2099-01-01T00:00:00Z"}),
        ]
    )
    route = mock.post(STREAM_URL).mock(return_value=sse_response(candidate({"text": "A clip"}, finish="STOP")))
    llm = make(inline_limit_bytes=1000)
    events = await collect(llm, request("Describe", [video]))
    assert start.call_count == 1
    assert start.calls[0].request.headers["x-goog-upload-header-content-type"] == "video/mp4"
    assert upload.calls[0].request.content == video_bytes
    assert poll.call_count == 2
    assert poll.calls[0].request.headers["x-goog-api-key"] == "test-key"
    assert poll.calls[0].request.extensions["timeout"]["read"] == 10.0
    loading = events[: events.index(TextChunk("A clip"))]
    assert loading
    assert all(isinstance(event, Loading) for event in loading)
    assert loading[0] == Loading(progress=0.0)
    assert loading[-1] == Loading(progress=1.0)
    parts = body(route)["contents"][0]["parts"]
    assert media(parts[0]) == ("file", "video/mp4", f"{HOST}/v1beta/files/abc")
    assert parts[1] == {"text": "Describe"}
    await collect(llm, request("Again", [video]))
    assert start.call_count == 1
    assert media(body(route)["contents"][0]["parts"][0])[2] == f"{HOST}/v1beta/files/abc"


async def test_failed_file_processing_raises(mock: Any, make: Any, blobs: FakeBlobStore) -> None:
    video = blobs.add("f-v", b"v" * 2000, name="bad.mp4", mime_type="video/mp4", kind="video", agent=AGENT)
    upload_url = f"{HOST}/upload/session/1"
    mock.post(f"{HOST}/upload/v1/files").mock(
        return_value=httpx.Response(200, json={}, headers={"x-goog-upload-url": upload_url})
    )
    mock.post(upload_url).mock(
        return_value=httpx.Response(
            200,
            json={"file": {"name": "files/f", "uri": "u", "state": "FAILED"}},
            headers={"x-goog-upload-status": "final"},
        )
    )
    route = mock.post(STREAM_URL)
    _, error = await collect_error(make(inline_limit_bytes=1000), request("x", [video]))
    assert str(error) == "The model service could not process bad.mp4"
    assert route.call_count == 0


async def test_unsupported_mime_is_rejected_before_any_request(mock: Any, make: Any, blobs: FakeBlobStore) -> None:
    archive = blobs.add("f-zip", b"PK", name="a.zip", mime_type="application/zip", kind="document", agent=AGENT)
    route = mock.post(STREAM_URL)
    events, error = await collect_error(make(), request("Open", [archive]))
    assert events == []
    assert "a.zip" in str(error)
    assert "application/zip" in str(error)
    assert route.call_count == 0


async def test_missing_current_attachment_raises(mock: Any, make: Any) -> None:
    ghost = Attachment(name="gone.png", type="image", mime_type="image/png", size=3, id_file="nope")
    _, error = await collect_error(make(), request("See", [ghost]))
    assert str(error) == "The attached file gone.png is no longer available"


async def test_cancelling_the_consumer_closes_the_response(mock: Any, make: Any) -> None:
    stream = EndlessStream(sse(candidate({"text": "Start"})))
    mock.post(STREAM_URL).mock(
        return_value=httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})
    )
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in make().stream(history=(), request=request()):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    assert not stream.closed
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert stream.closed


async def test_aclose_after_the_first_event_closes_the_response(mock: Any, make: Any) -> None:
    stream = EndlessStream(sse(candidate({"text": "Start"})))
    mock.post(STREAM_URL).mock(
        return_value=httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})
    )
    events = make().stream(history=(), request=request())
    assert await asyncio.wait_for(anext(events), 2) == TextChunk("Start")
    await events.aclose()
    assert stream.closed


async def test_missing_key_raises_not_configured(mock: Any, make: Any) -> None:
    route = mock.post(STREAM_URL)
    with pytest.raises(LLMNotConfigured, match="AI_GOOGLE_GEMINI_API_KEY"):
        await collect(make(api_key=None))
    assert route.call_count == 0


async def test_base_url_and_api_version_override(mock: Any, make: Any) -> None:
    url = "http://gateway.test/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    route = mock.post(url).mock(return_value=sse_response(candidate({"text": "via gateway"}, finish="STOP")))
    events = await collect(make(base_url="http://gateway.test/gemini/", api_version="v1beta"))
    assert route.call_count == 1
    assert TextChunk("via gateway") in events


async def test_title_success(mock: Any, make: Any) -> None:
    route = mock.post(TITLE_URL).mock(
        return_value=httpx.Response(200, json=candidate({"text": '"Voyage à Paris."'}, finish="STOP"))
    )
    assert await make().title(text="Je veux organiser un voyage à Paris") == "Voyage à Paris"
    sent = body(route)
    assert "voyage à Paris" in sent["contents"][0]["parts"][0]["text"]
    assert sent["generationConfig"]["thinkingConfig"] == {"thinking_budget": 0}


async def test_title_failure_returns_none(mock: Any, make: Any) -> None:
    mock.post(TITLE_URL).mock(return_value=httpx.Response(500, json=error_body(500, "INTERNAL")))
    assert await make().title(text="Hello") is None
    assert await make(api_key=None).title(text="Hello") is None
