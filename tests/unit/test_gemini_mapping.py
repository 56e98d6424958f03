"""Pure pieces of the Gemini adapter: MIME rules, mapping, errors, retries, history, titles, config."""

from __future__ import annotations

import base64
import random
import struct
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.genai import errors, types

from adapters.gemini import GeminiConfig, supported_mime
from adapters.gemini.attachments import encoded_size
from adapters.gemini.config import generate_config, thinking_config
from adapters.gemini.errors import is_retryable, retry_after, to_llm_error
from adapters.gemini.history import build_contents
from adapters.gemini.mapping import ReplyMapper, finish_error, step_line
from adapters.gemini.mime import extension, kind_of, playable
from adapters.gemini.replay import merge_part, replay_data, replay_parts
from adapters.gemini.retry import MAX_RETRY_AFTER_S, backoff_delay
from adapters.gemini.titles import clean_title
from domain.errors import LLMError
from domain.events import Finished, MediaChunk, ModelTurn, ReasoningChunk, Step, TextChunk, UsageReport
from domain.model import MessageRequest, MessageResponse, Thread

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def chunk(*parts: dict[str, Any], finish: str | None = None, **extra: Any) -> types.GenerateContentResponse:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, **extra}
    if finish:
        candidate["finish_reason"] = finish
    return types.GenerateContentResponse.model_validate({"candidates": [candidate]})


def api_error(code: int, status: str, **extra: Any) -> errors.APIError:
    return errors.APIError(code, {"error": {"code": code, "status": status, "message": "vendor", **extra}})


@pytest.mark.parametrize(
    ("kind", "mime", "ok"),
    [
        ("image", "image/png", True),
        ("image", "image/JPEG", True),
        ("image", "image/gif", False),
        ("video", "video/mp4", True),
        ("video", "video/quicktime", True),
        ("audio", "audio/mpeg", True),
        ("document", "application/pdf", True),
        ("document", "text/plain; charset=utf-8", True),
        ("document", "application/zip", False),
        ("document", "image/png", False),
        ("spreadsheet", "text/csv", False),
    ],
)
def test_supported_mime(kind: str, mime: str, ok: bool) -> None:
    assert supported_mime(kind, mime) is ok


def test_kinds_and_extensions() -> None:
    assert [kind_of(m) for m in ("image/png", "audio/wav", "video/mp4", "application/pdf")] == [
        "image",
        "audio",
        "video",
        "document",
    ]
    assert extension("image/png") == ".png"
    assert extension("image/jpeg") == ".jpg"
    assert extension("application/x-unknown-thing") == ".bin"


def test_pcm_audio_is_wrapped_as_wav() -> None:
    mime, data = playable("audio/L16;codec=pcm;rate=16000", b"\x00\x01" * 10)
    assert mime == "audio/wav"
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[24:28])[0] == 16000
    assert data[44:] == b"\x00\x01" * 10
    assert playable("image/png", b"x") == ("image/png", b"x")


def test_reply_mapper_maps_every_part_kind() -> None:
    mapper = ReplyMapper()
    image = base64.b64encode(b"png").decode()
    events = [
        *mapper.events(chunk({"text": "hm", "thought": True})),
        *mapper.events(chunk({"text": "Hi"}, {"inline_data": {"mime_type": "image/png", "data": image}})),
        *mapper.events(chunk({"function_call": {"name": "f", "args": {}}}, finish="STOP")),
    ]
    assert events == [
        ReasoningChunk("hm"),
        TextChunk("Hi"),
        MediaChunk(kind="image", name="image-1.png", mime_type="image/png", content=image),
        Step(1, "Calling f({})"),
    ]
    closing = list(mapper.close())
    assert isinstance(closing[0], ModelTurn)
    assert closing[1] == Finished()


def test_reply_mapper_reports_usage_then_raises_on_safety() -> None:
    mapper = ReplyMapper()
    response = types.GenerateContentResponse.model_validate(
        {
            "candidates": [{"finish_reason": "SAFETY"}],
            "usage_metadata": {"prompt_token_count": 2, "total_token_count": 2},
        }
    )
    assert list(mapper.events(response)) == []
    closing = mapper.close()
    assert isinstance(next(closing), UsageReport)
    with pytest.raises(LLMError, match=r"safety filters \(SAFETY\)"):
        next(closing)


def test_max_tokens_without_output_is_a_finish_not_an_empty_reply() -> None:
    mapper = ReplyMapper()
    list(mapper.events(types.GenerateContentResponse.model_validate({"candidates": [{"finish_reason": "MAX_TOKENS"}]})))
    assert list(mapper.close())[-1] == Finished(reason="max_tokens")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", None),
        ("MAX_TOKENS", None),
        ("RECITATION", "repeated protected material (RECITATION)"),
        ("PROHIBITED_CONTENT", "content policy (PROHIBITED_CONTENT)"),
        ("SPII", "content policy (SPII)"),
        ("MALFORMED_FUNCTION_CALL", "stopped unexpectedly (MALFORMED_FUNCTION_CALL)"),
    ],
)
def test_finish_errors(reason: str, expected: str | None) -> None:
    error = finish_error(reason)
    assert (error is None) if expected is None else (error is not None and expected in str(error))


def test_step_lines() -> None:
    code = types.Part(executable_code=types.ExecutableCode(language=types.Language.PYTHON, code="x = 1\nprint(x)"))
    failed = types.Part(
        code_execution_result=types.CodeExecutionResult(outcome=types.Outcome.OUTCOME_FAILED, output="Traceback")
    )
    long_call = types.Part(function_call=types.FunctionCall(name="f", args={"q": "x" * 500}))
    assert step_line(code) == "Running Python code: x = 1 print(x)"
    assert step_line(failed) == "Code failed: Traceback"
    assert len(step_line(long_call) or "") == 200
    assert step_line(types.Part(text="hi")) is None


def test_merge_part_joins_fragments_and_keeps_signatures() -> None:
    parts: list[types.Part] = []
    for part in (
        types.Part(text="think", thought=True),
        types.Part(text="ing", thought=True),
        types.Part(text="An"),
        types.Part(text="swer", thought_signature=b"sig"),
        types.Part(text="!"),
    ):
        merge_part(parts, part)
    assert [(p.text, p.thought, p.thought_signature) for p in parts] == [
        ("thinking", True, None),
        ("Answer", None, b"sig"),
        ("!", None, None),
    ]
    data = replay_data(parts)
    assert [item["text"] for item in data] == ["Answer", "!"]
    assert base64.urlsafe_b64decode(str(data[0]["thought_signature"])) == b"sig"


def test_grounding_is_deduplicated_across_chunks() -> None:
    mapper = ReplyMapper()
    meta = {"web_search_queries": ["q"], "grounding_chunks": [{"web": {"uri": "https://x", "title": "X"}}]}
    first = list(mapper.events(chunk({"text": "a"}, grounding_metadata=meta)))
    again = list(mapper.events(chunk({"text": "b"}, grounding_metadata=meta)))
    assert [e for e in first if isinstance(e, Step)] == [
        Step(1, "Searching the web for “q”"),
        Step(2, "Source: X (https://x)"),
    ]
    assert [e for e in again if isinstance(e, Step)] == []


@pytest.mark.parametrize(
    ("error", "message", "retryable"),
    [
        (api_error(429, "RESOURCE_EXHAUSTED"), "overloaded or rate-limited", True),
        (api_error(503, "UNAVAILABLE"), "unavailable", True),
        (api_error(500, "INTERNAL"), "unavailable", True),
        (api_error(504, "DEADLINE_EXCEEDED"), "took too long", True),
        (api_error(400, "INVALID_ARGUMENT"), "rejected the request", False),
        (api_error(401, "UNAUTHENTICATED"), "refused the API key", False),
        (api_error(403, "PERMISSION_DENIED"), "refused the API key", False),
        (httpx.ReadTimeout("t"), "took too long", True),
        (httpx.ConnectError("c"), "could not be reached", True),
        (ValueError("boom"), "The model call failed", False),
    ],
)
def test_error_translation(error: Exception, message: str, retryable: bool) -> None:
    translated = to_llm_error(error)
    assert message in str(translated)
    assert "vendor" not in str(translated)
    assert translated.retryable is retryable
    assert is_retryable(error) is retryable


def test_retry_after_from_header_and_retry_info() -> None:
    with_header = errors.APIError(429, {"error": {"code": 429}}, httpx.Response(429, headers={"Retry-After": "3"}))
    assert retry_after(with_header) == 3.0
    info = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]
    assert retry_after(api_error(429, "RESOURCE_EXHAUSTED", details=info)) == 12.0
    assert retry_after(api_error(503, "UNAVAILABLE")) is None
    assert retry_after(httpx.ReadTimeout("t")) is None


def test_backoff_delay() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, 0.5, rng=rng) or 0.0 for attempt in range(3)]
    assert 0.5 <= delays[0] <= 0.75
    assert 1.0 <= delays[1] <= 1.5
    assert 2.0 <= delays[2] <= 3.0
    assert backoff_delay(0, 0.5, 7.0) == 7.0
    assert backoff_delay(0, 0.5, MAX_RETRY_AFTER_S + 1) is None
    assert (backoff_delay(20, 0.5) or 0) <= 30.0


def test_thinking_config() -> None:
    assert thinking_config("gemini-2.5-flash", "off") == types.ThinkingConfig(thinking_budget=0)
    assert thinking_config("gemini-2.5-pro", "off") is None
    assert thinking_config("gemini-3-pro-preview", "off") is None
    assert thinking_config("gemini-2.5-flash-image", "auto") is None
    assert thinking_config("gemini-2.5-flash", "auto") == types.ThinkingConfig(include_thoughts=True)
    assert thinking_config("gemini-2.5-flash", "2048") == types.ThinkingConfig(
        include_thoughts=True, thinking_budget=2048
    )
    high = thinking_config("gemini-3-pro-preview", "High")
    assert high is not None
    assert high.thinking_level == types.ThinkingLevel.HIGH
    assert high.thinking_budget is None


def test_config_validation_and_generate_config() -> None:
    with pytest.raises(ValueError, match="thinking"):
        GeminiConfig(thinking="lots")
    with pytest.raises(ValueError, match="timeouts"):
        GeminiConfig(timeout_s=0)
    assert not GeminiConfig().configured
    assert GeminiConfig(vertexai=True).configured
    options = generate_config(GeminiConfig(system_instruction="Be kind", code_execution=True))
    assert options.system_instruction == "Be kind"
    assert options.tools == [types.Tool(code_execution=types.ToolCodeExecution())]
    assert generate_config(GeminiConfig()).tools is None


def _request(text: str) -> MessageRequest:
    return MessageRequest("a", "team", "task", text, NOW)


def test_history_alternates_and_merges_user_turns() -> None:
    answered = Thread("1", _request("one"), MessageResponse("a", "team", "task", NOW, text="uno"))
    failed = Thread("2", _request("two"), MessageResponse("a", "team", "task", NOW, text="", is_error=True))
    contents = build_contents([answered, failed], _request("three"), {})
    assert [(c.role, [p.text for p in c.parts or []]) for c in contents] == [
        ("user", ["one"]),
        ("model", ["uno"]),
        ("user", ["two", "three"]),
    ]


def test_replay_parts_skips_function_calls_and_rejects_garbage() -> None:
    data = [{"text": "a", "thought_signature": base64.b64encode(b"s").decode()}, {"function_call": {"name": "f"}}]
    parts = replay_parts(data)
    assert parts is not None
    assert [(p.text, p.thought_signature) for p in parts] == [("a", b"s")]
    assert replay_parts("nope") is None
    assert replay_parts([{"text": 3, "thought": "maybe?"}]) is None


def test_encoded_size() -> None:
    assert [encoded_size(n) for n in (0, 1, 3, 4)] == [0, 4, 4, 8]


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Trip to Paris."', "Trip to Paris"),
        ("Title: **Budget planning**\nmore text", "Budget planning"),
        ("« Voyage à Rome »", "Voyage à Rome"),
        ("   ", None),
        ("word " * 40, ("word " * 40)[:79].rstrip() + "…"),
    ],
)
def test_clean_title(answer: str, title: str | None) -> None:
    assert clean_title(answer) == title
