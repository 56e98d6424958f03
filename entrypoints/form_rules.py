"""What a form may hold: its errors, limits, fields and file fields, and how file names are cleaned."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from domain.model import Attachment, AttachmentKind

FILE_FIELDS: dict[str, AttachmentKind] = {
    "images": "image",
    "videos": "video",
    "audios": "audio",
    "documents": "document",
}
MAX_FIELD_BYTES = 4096
MAX_NAME_CHARS = 200


class FormError(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


@dataclass(frozen=True, slots=True)
class FormLimits:
    max_upload_bytes: int
    max_request_bytes: int
    max_files: int
    max_text_bytes: int


@dataclass(slots=True)
class ParsedForm:
    fields: dict[str, str]
    files: list[Attachment] = field(default_factory=list)


def clean_filename(raw: str, fallback: str) -> str:
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C")
    name = name.strip().lstrip(". ")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16].strip() if dot else ""
        name = (stem if dot else name)[: MAX_NAME_CHARS - len(ext) - 1].rstrip() + ("." + ext if ext else "")
    return name or fallback


def declared_mime(declared: str | None, name: str) -> str:
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and re.fullmatch(r"[\w.+-]+/[\w.+-]+", declared):
        return declared
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def check_team(id_team: str | None, team: str | None) -> None:
    """A team-scoped API key sends only as its own team (403, before any file is stored)."""
    if team is not None and id_team is not None and id_team != team:
        raise FormError(403, "id_team", "this API key cannot act for that team")


def check_field(name: str, size: int, text_fields: set[str], limits: FormLimits, seen: dict[str, Any]) -> None:
    if name not in text_fields:
        raise FormError(400, name[:64], f"unknown field {name[:64]!r}")
    if name in seen:
        raise FormError(400, name, f"{name} is given more than once")
    limit = limits.max_text_bytes if name == "text" else MAX_FIELD_BYTES
    if size > limit:
        raise FormError(413 if name == "text" else 400, name, f"{name} is longer than {limit} bytes")
