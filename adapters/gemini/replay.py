"""The model's parts kept from one reply and sent back with the next (thought signatures included)."""

from __future__ import annotations

from google.genai import types
from pydantic import ValidationError


def merge_part(parts: list[types.Part], part: types.Part) -> None:
    """Append a streamed part, joining text fragments into the part they continue (as a non-streamed
    reply would hold them); a thought signature ends the part it lands on."""
    last = parts[-1] if parts else None
    if (
        last is not None
        and part.text is not None
        and last.text is not None
        and bool(last.thought) == bool(part.thought)
        and last.thought_signature is None
    ):
        parts[-1] = last.model_copy(update={"text": last.text + part.text, "thought_signature": part.thought_signature})
    else:
        parts.append(part)


def replay_data(parts: list[types.Part]) -> list[dict[str, object]]:
    """JSON-ready parts to send back next turn; unsigned thoughts are dropped (the reasoning is kept
    elsewhere and Gemini needs only their signatures)."""
    return [
        part.model_dump(mode="json", exclude_none=True)
        for part in parts
        if not (part.thought and part.thought_signature is None)
    ]


def replay_parts(model_turn: object) -> list[types.Part] | None:
    """The model's parts stored by an earlier reply (with thought signatures), None if unusable.

    Function calls are left out: nothing here answers them, and Gemini rejects an unanswered call.
    """
    if not isinstance(model_turn, list) or not model_turn:
        return None
    parts: list[types.Part] = []
    for item in model_turn:
        if not isinstance(item, dict):
            return None
        try:
            part = types.Part.model_validate(item)
        except ValidationError:
            return None
        if part.function_call is None and part.function_response is None:
            parts.append(part)
    return parts or None
