"""Folds the events of a run into the MessageResponse that gets stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.events import (
    Error,
    Finished,
    Interrupted,
    Loading,
    MediaChunk,
    MessageChunk,
    ReasoningChunk,
    Step,
    Terminal,
    TextChunk,
)
from domain.model import Attachment, MessageRequest, MessageResponse, Usage


class ReplyBuilder:
    """Accumulates text, reasoning and media in order; `snapshot()` is the response so far.

    The outline records every content event compactly so the exact stream can be rebuilt later:
    an int n is a text chunk of n characters, ["r", n] a reasoning chunk, ["m", i] the media of
    attachment i, ["u", ...] a media chunk given by URL, ["s", step, content] a step, ["l", progress] a loading.
    """

    def __init__(self, request: MessageRequest, created_at: datetime) -> None:
        self._base = MessageResponse(
            id_team_agent=request.id_team_agent,
            id_team=request.id_team,
            id_task=request.id_task,
            created_at=created_at,
        )
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._attachments: list[Attachment] = []
        self._outline: list[Any] = []
        self.usage: Usage | None = None
        self.terminal: Terminal | None = None
        self.created_at = created_at

    def add_text(self, content: str) -> None:
        self._text.append(content)
        self._outline.append(len(content))

    def add(self, event: MessageChunk, attachment: Attachment | None = None) -> None:
        if isinstance(event, TextChunk):
            self.add_text(event.content)
        elif isinstance(event, ReasoningChunk):
            self._reasoning.append(event.content)
            self._outline.append(["r", len(event.content)])
        elif isinstance(event, MediaChunk):
            if attachment is not None:
                self._attachments.append(attachment)
                self._outline.append(["m", len(self._attachments) - 1])
            else:
                self._outline.append(["u", event.kind, event.name, event.mime_type, event.content, event.is_base64])
        elif isinstance(event, Step):
            self._outline.append(["s", event.step, event.content])
        elif isinstance(event, Loading):
            self._outline.append(["l", event.progress])
        elif isinstance(event, Finished | Error | Interrupted):
            self.terminal = event

    def snapshot(self) -> MessageResponse:
        base = self._base
        response = MessageResponse(  # not dataclasses.replace, which looks up the fields on every call
            id_team_agent=base.id_team_agent,
            id_team=base.id_team,
            id_task=base.id_task,
            created_at=base.created_at,
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            attachments=tuple(self._attachments),
            usage=self.usage,
            outline=tuple(self._outline),
        )
        self._text[:] = [response.text]
        self._reasoning[:] = [response.reasoning] if response.reasoning else []
        terminal = self.terminal
        if terminal is not None:
            response.event = terminal.event
            if isinstance(terminal, Finished):
                response.is_finished = True
                response.reason = terminal.reason
            elif isinstance(terminal, Error):
                response.is_error = True
                response.error = terminal.error
            else:
                response.is_interrupted = True
                response.reason = terminal.reason
        return response
