"""Earlier threads and the new request as Gemini contents: alternating user and model turns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from google.genai import types

from adapters.gemini.files_api import FileKey
from adapters.gemini.replay import replay_parts
from domain.model import MessageRequest, Thread


def model_parts(thread: Thread) -> list[types.Part]:
    replayed = replay_parts(thread.model_turn)
    if replayed is not None:
        return replayed
    text = thread.response.text if thread.response is not None else ""
    return [types.Part.from_text(text=text)] if text.strip() else []


def user_parts(request: MessageRequest, attachments: Mapping[FileKey, types.Part]) -> list[types.Part]:
    parts = [
        attachments[key]
        for attachment in request.attachments
        if (key := (request.id_team_agent, attachment.id_file or "")) in attachments
    ]
    if request.text:
        parts.append(types.Part.from_text(text=request.text))
    return parts


def build_contents(
    history: Sequence[Thread], request: MessageRequest, attachments: Mapping[FileKey, types.Part]
) -> list[types.Content]:
    """User/model turns, starting and ending with the user; consecutive turns of a role are merged
    (a thread without a usable reply adds only its user turn)."""
    contents: list[types.Content] = []
    for thread in history:
        _append(contents, "user", user_parts(thread.request, attachments))
        _append(contents, "model", model_parts(thread))
    _append(contents, "user", user_parts(request, attachments) or [types.Part.from_text(text=request.text)])
    return contents


def _append(contents: list[types.Content], role: str, parts: list[types.Part]) -> None:
    if not parts or (role == "model" and not contents):
        return
    if contents and contents[-1].role == role:
        contents[-1].parts = [*(contents[-1].parts or []), *parts]
    else:
        contents.append(types.Content(role=role, parts=parts))


def payload_bytes(history: Sequence[Thread], request: MessageRequest) -> int:
    """About how many bytes the request carries besides the attachments to resolve."""
    size = len(request.text.encode())
    for thread in history:
        size += len(thread.request.text.encode())
        if thread.model_turn is not None:
            size += len(json.dumps(thread.model_turn, default=str))
        elif thread.response is not None:
            size += len(thread.response.text.encode())
    return size
