"""OpenAPI fragments for routes that parse their own bodies."""

from __future__ import annotations

from typing import Any

from domain.model import ID_PATTERN
from entrypoints.chunks import CHUNK_MODELS
from entrypoints.schemas import ErrorModel

ID = {"type": "string", "pattern": ID_PATTERN}
FILES = {"type": "array", "items": {"type": "string", "format": "binary"}}


def form_body(required: list[str], fields: dict[str, Any], *, files: bool = False) -> dict[str, Any]:
    properties = dict(fields)
    if files:
        properties |= {"images": FILES, "videos": FILES, "audios": FILES, "documents": FILES}
    schema = {"type": "object", "required": required, "properties": properties, "additionalProperties": False}
    content = {
        "multipart/form-data": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": {**schema, "properties": fields}},
    }
    return {"requestBody": {"required": True, "content": content}}


SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "`<run>:<seq>`: send it back as Last-Event-ID to resume"},
        "event": {"type": "string", "description": "Never sent, so `message`"},
        "data": {"type": "string", "description": "A MessageChunk as compact JSON, or `[DONE]` last"},
        "retry": {"type": "integer"},
    },
}


def event_stream_response(description: str) -> dict[int | str, dict[str, Any]]:
    one_of = [{"$ref": f"#/components/schemas/{model.__name__}"} for model in CHUNK_MODELS]
    return {
        200: {
            "description": description,
            "content": {
                "text/event-stream": {
                    "schema": SSE_EVENT
                    | {
                        "description": (
                            "Each event (OpenAPI 3.1 style: `schema` describes one event): `id: <run>:<seq>` + "
                            "`data: <MessageChunk JSON>`, then `data: [DONE]`. Each data is one of: "
                            + ", ".join(m.__name__ for m in CHUNK_MODELS)
                        ),
                    },
                    "x-chunk-schemas": one_of,
                }
            },
        }
    }


def error_responses() -> dict[int | str, dict[str, Any]]:
    """The JSON errors any route may answer (a route's own entries take precedence)."""
    described = {
        400: "Invalid input: the `field` and `detail` name the problem",
        401: "AUTH_API_KEYS is set and no valid key came (`Authorization: Bearer` or `X-API-Key`)",
        403: "A team-scoped API key tried to act for another team",
        404: "No such task or file (also: one of another team)",
        406: "`Accept` rules out text/event-stream",
        409: "A reply is running in the task (or none is, for interrupt)",
        413: "A size limit was passed (MAX_UPLOAD_BYTES, MAX_REQUEST_BYTES, MAX_FILES, MAX_TEXT_BYTES)",
        415: "An uploaded file's bytes are of a type its field does not take",
        429: "A rate limit was passed: see Retry-After",
        503: "The server is shutting down: see Retry-After",
    }
    return {status: {"model": ErrorModel, "description": text} for status, text in described.items()}
