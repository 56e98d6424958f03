"""Which files Gemini reads, and how the media it returns is named."""

from __future__ import annotations

import mimetypes
import struct

from domain.model import AttachmentKind

SUPPORTED: dict[str, frozenset[str]] = {
    "image": frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}),
    "audio": frozenset(
        {
            "audio/wav",
            "audio/x-wav",
            "audio/wave",
            "audio/mp3",
            "audio/mpeg",
            "audio/aiff",
            "audio/x-aiff",
            "audio/aac",
            "audio/ogg",
            "audio/flac",
            "audio/x-flac",
            "audio/webm",
            "audio/mp4",
            "audio/m4a",
        }
    ),
    "video": frozenset(
        {
            "video/mp4",
            "video/mpeg",
            "video/mpg",
            "video/mov",
            "video/quicktime",
            "video/avi",
            "video/x-msvideo",
            "video/x-flv",
            "video/webm",
            "video/wmv",
            "video/x-ms-wmv",
            "video/3gpp",
        }
    ),
    "document": frozenset(
        {
            "application/pdf",
            "text/plain",
            "text/markdown",
            "text/csv",
            "text/html",
            "text/css",
            "text/xml",
            "application/xml",
            "application/json",
            "text/rtf",
            "application/rtf",
            "text/javascript",
            "application/javascript",
            "application/x-javascript",
            "text/x-python",
            "application/x-python-code",
            "text/x-typescript",
            "application/x-typescript",
        }
    ),
}

_EXTENSIONS = {"image/jpeg": ".jpg", "audio/wav": ".wav", "audio/mpeg": ".mp3", "text/plain": ".txt"}


def base_mime(mime_type: str) -> str:
    """`mime_type` without parameters, lower-cased: "Text/Plain; charset=utf-8" -> "text/plain"."""
    return mime_type.split(";", 1)[0].strip().lower()


def supported_mime(kind: str, mime_type: str) -> bool:
    """Whether Gemini accepts a `kind` attachment ("image", "audio", "video", "document") of this type."""
    return base_mime(mime_type) in SUPPORTED.get(kind, frozenset())


def kind_of(mime_type: str) -> AttachmentKind:
    major = base_mime(mime_type).split("/", 1)[0]
    if major == "image":
        return "image"
    if major == "audio":
        return "audio"
    if major == "video":
        return "video"
    return "document"


def extension(mime_type: str) -> str:
    mime = base_mime(mime_type)
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"


def playable(mime_type: str, data: bytes) -> tuple[str, bytes]:
    """Raw PCM audio (what Gemini's speech models return) wrapped as WAV; other media unchanged."""
    mime = base_mime(mime_type)
    if mime not in ("audio/l16", "audio/pcm"):
        return mime_type, data
    params = dict(part.strip().lower().partition("=")[::2] for part in mime_type.split(";")[1:])
    rate = int(params["rate"]) if params.get("rate", "").isdigit() else 24000
    channels = int(params["channels"]) if params.get("channels", "").isdigit() else 1
    return "audio/wav", _wav_header(len(data), rate, channels) + data


def _wav_header(size: int, rate: int, channels: int, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data"
        + struct.pack("<I", size)
    )
