"""OpenAPI fragments for routes that parse their own bodies."""

from __future__ import annotations

from typing import Any

from domain.model import ID_PATTERN
from entrypoints.chunks import CHUNK_MODELS

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


def event_stream_response(description: str) -> dict[int | str, dict[str, Any]]:
    one_of = [{"$ref": f"#/components/schemas/{model.__name__}"} for model in CHUNK_MODELS]
    return {
        200: {
            "description": description,
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": (
                            "Frames `id: <run>:<seq>` + `data: <MessageChunk JSON>`, then `data: [DONE]`. "
                            "Each data line is one of: " + ", ".join(m.__name__ for m in CHUNK_MODELS)
                        ),
                    },
                    "x-chunk-schemas": one_of,
                }
            },
        }
    }
