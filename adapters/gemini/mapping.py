"""Gemini's streamed responses turned into the events of the LLM port."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

from google.genai import types

from adapters.gemini.mime import extension, kind_of, playable
from adapters.gemini.replay import merge_part, replay_data
from domain.errors import LLMError
from domain.events import (
    Finished,
    LLMEvent,
    MediaChunk,
    ModelTurn,
    ReasoningChunk,
    Step,
    TextChunk,
    UsageReport,
)
from domain.model import Usage

EMPTY_REPLY = "The model returned an empty reply"
STEP_CHARS = 200
_POLICY = {"PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "MODEL_ARMOR"}


def one_line(text: str, limit: int = STEP_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def finish_error(reason: str) -> LLMError | None:
    """The error a finish reason stands for; None for a normal end (STOP, MAX_TOKENS, unset)."""
    if reason in ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED", ""):
        return None
    if reason in ("SAFETY", "IMAGE_SAFETY"):
        return LLMError(f"The reply was blocked by the model's safety filters ({reason})")
    if reason in _POLICY:
        return LLMError(f"The reply was blocked by the model's content policy ({reason})")
    if reason in ("RECITATION", "IMAGE_RECITATION"):
        return LLMError(f"The reply was stopped because it repeated protected material ({reason})")
    if reason == "LANGUAGE":
        return LLMError("The model does not support the language of this request (LANGUAGE)")
    if reason in ("NO_IMAGE", "IMAGE_OTHER"):
        return LLMError(f"The model could not produce the image ({reason})")
    return LLMError(f"The model stopped unexpectedly ({reason})")


def to_usage(meta: types.GenerateContentResponseUsageMetadata) -> Usage:
    return Usage(
        prompt_tokens=meta.prompt_token_count or 0,
        output_tokens=meta.candidates_token_count or 0,
        thoughts_tokens=meta.thoughts_token_count or 0,
        total_tokens=meta.total_token_count or 0,
    )


def step_line(part: types.Part) -> str | None:
    """The readable line of a tool part (function call, code and its result), None for other parts."""
    if (call := part.function_call) is not None:
        args = json.dumps(call.args or {}, ensure_ascii=False, default=str)
        return one_line(f"Calling {call.name or 'a function'}({args})")
    if (code := part.executable_code) is not None:
        language = (code.language.value if code.language else "").replace("LANGUAGE_UNSPECIFIED", "")
        return one_line(f"Running {language.capitalize() or 'some'} code: {code.code or ''}")
    if (result := part.code_execution_result) is not None:
        outcome = result.outcome.value if result.outcome else "OUTCOME_OK"
        label = {"OUTCOME_FAILED": "Code failed", "OUTCOME_DEADLINE_EXCEEDED": "Code timed out"}
        return one_line(f"{label.get(outcome, 'Code result')}: {result.output or '(no output)'}")
    if (tool := part.tool_call) is not None:
        return one_line(f"Using {tool.tool_type.value if tool.tool_type else 'a tool'}")
    return None


class ReplyMapper:
    """Maps the chunks of one reply to events and remembers what its end needs."""

    def __init__(self) -> None:
        self.parts: list[types.Part] = []
        self._step = 0
        self._media: dict[str, int] = {}
        self._seen: set[str] = set()
        self._usage: Usage | None = None
        self._finish = ""
        self._blocked: str | None = None

    def events(self, chunk: types.GenerateContentResponse) -> Iterator[LLMEvent]:
        if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason is not None:
            self._blocked = chunk.prompt_feedback.block_reason.value
        if chunk.usage_metadata is not None:
            self._usage = to_usage(chunk.usage_metadata)
        if not chunk.candidates:
            return
        candidate = chunk.candidates[0]
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        for part in parts:
            merge_part(self.parts, part)
            yield from self._part_events(part)
        if candidate.grounding_metadata is not None:
            yield from self._grounding(candidate.grounding_metadata)
        if candidate.finish_reason is not None:
            self._finish = candidate.finish_reason.value

    def _part_events(self, part: types.Part) -> Iterator[LLMEvent]:
        if part.text:
            yield ReasoningChunk(content=part.text) if part.thought else TextChunk(content=part.text)
        elif part.inline_data is not None and part.inline_data.data:
            yield self._media_chunk(part.inline_data.mime_type or "application/octet-stream", part.inline_data.data)
        elif (line := step_line(part)) is not None:
            yield self._new_step(line)

    def _media_chunk(self, mime_type: str, data: bytes) -> MediaChunk:
        mime_type, data = playable(mime_type, data)
        kind = kind_of(mime_type)
        self._media[kind] = self._media.get(kind, 0) + 1
        name = f"{kind}-{self._media[kind]}{extension(mime_type)}"
        content = base64.b64encode(data).decode("ascii")
        return MediaChunk(kind=kind, name=name, mime_type=mime_type, content=content, is_base64=True)

    def _grounding(self, meta: types.GroundingMetadata) -> Iterator[LLMEvent]:
        for query in meta.web_search_queries or []:
            if query and f"q:{query}" not in self._seen:
                self._seen.add(f"q:{query}")
                yield self._new_step(one_line(f"Searching the web for “{query}”"))
        for source in meta.grounding_chunks or []:
            web = source.web
            if web is not None and web.uri and f"s:{web.uri}" not in self._seen:
                self._seen.add(f"s:{web.uri}")
                yield self._new_step(one_line(f"Source: {web.title or web.domain or web.uri} ({web.uri})"))

    def _new_step(self, line: str) -> Step:
        self._step += 1
        return Step(step=self._step, content=line)

    def close(self) -> Iterator[LLMEvent]:
        """The closing events: usage, then the replay data and `Finished`; or raise the LLMError."""
        if self._usage is not None:
            yield UsageReport(self._usage)
        if self._blocked is not None:
            raise LLMError(f"The request was blocked by the model's safety filters ({self._blocked})")
        if (error := finish_error(self._finish)) is not None:
            raise error
        if self._finish != "MAX_TOKENS" and all(part.text == "" for part in self.parts):
            raise LLMError(EMPTY_REPLY)
        yield ModelTurn(data=replay_data(self.parts))
        yield Finished(reason="max_tokens" if self._finish == "MAX_TOKENS" else None)
