"""What an upload is, from its first bytes (never from the client's header): our own table of what Gemini reads.

`media_type(kind, name, head, hint=..., complete=...)` returns the MIME type to store, or raises
`UnsupportedMedia` (the form answers 415) when the bytes are of a type the field does not take.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

SNIFF_BYTES = 8192
"""How many leading bytes of a file are looked at (fewer if the file is shorter)."""

BOM = b"\xef\xbb\xbf"
TEXT_TYPES = frozenset(
    {"text/plain", "text/markdown", "text/csv", "text/html", "text/xml", "application/xml", "application/json"}
    | {"text/css", "text/javascript", "application/javascript", "text/x-python", "text/rtf", "application/rtf"}
)
ACCEPTED = {
    "image": "png, jpeg, webp, heic, heif",
    "video": "mp4, mov, webm, avi, mpeg, 3gp, flv, wmv",
    "audio": "wav, mp3, aiff, aac, ogg, flac, m4a/mp4, webm",
    "document": "pdf, or UTF-8 text (plain, markdown, csv, html, json, xml, code)",
}
_HEIC = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF = {b"mif1", b"msf1", b"heif"}
_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_BOTH_MP4 = {"video": "video/mp4", "audio": "audio/mp4"}


class UnsupportedMedia(Exception):
    """`str(error)` names the file and what is wrong with it, fit for the client."""


def _iso_bmff(head: bytes) -> tuple[str, dict[str, str]]:
    """MP4 family (`....ftyp<brand>`): told apart by the major brand, then the compatible ones."""
    size = int.from_bytes(head[:4], "big")
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(size, len(head), 64), 4)]
    if b"avif" in brands or b"avis" in brands:
        return "image/avif", {}
    for brand in brands:
        if brand in _HEIC:
            return "image/heic", {"image": "image/heic"}
        if brand in _HEIF:
            return "image/heif", {"image": "image/heif"}
        if brand == b"qt  ":
            return "video/quicktime", {"video": "video/quicktime"}
        if brand.startswith((b"3gp", b"3g2")):
            return "video/3gpp", {"video": "video/3gpp"}
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "audio/mp4", {"audio": "audio/mp4"}
    return "video/mp4", _BOTH_MP4


def _mpeg_audio(head: bytes) -> tuple[str, dict[str, str]] | None:
    if head.startswith(b"ID3"):
        return "audio/mpeg", {"audio": "audio/mpeg"}
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0x06 == 0:  # layer bits 00: ADTS
        return ("audio/aac", {"audio": "audio/aac"}) if head[1] & 0x10 else None
    return ("audio/mpeg", {"audio": "audio/mpeg"}) if head[2] >> 4 not in (0, 15) else None


def _riff(form: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _starts(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(magics)


_TABLE: list[tuple[Callable[[bytes], bool], str, dict[str, str]]] = [
    (_starts(b"\x89PNG\r\n\x1a\n"), "image/png", {"image": "image/png"}),
    (_starts(b"\xff\xd8\xff"), "image/jpeg", {"image": "image/jpeg"}),
    (_riff(b"WEBP"), "image/webp", {"image": "image/webp"}),
    (_starts(b"GIF87a", b"GIF89a"), "image/gif", {}),
    (_starts(b"II*\x00", b"MM\x00*"), "image/tiff", {}),
    (_riff(b"WAVE"), "audio/wav", {"audio": "audio/wav"}),
    (_riff(b"AVI "), "video/x-msvideo", {"video": "video/x-msvideo"}),
    (lambda h: h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"), "audio/aiff", {"audio": "audio/aiff"}),
    (_starts(b"fLaC"), "audio/flac", {"audio": "audio/flac"}),
    (_starts(b"OggS"), "audio/ogg", {"audio": "audio/ogg"}),
    (_starts(b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"), "video/mpeg", {"video": "video/mpeg"}),
    (_starts(b"FLV\x01"), "video/x-flv", {"video": "video/x-flv"}),
    (_starts(_ASF), "video/x-ms-wmv", {"video": "video/x-ms-wmv"}),
    (_starts(b"%PDF-"), "application/pdf", {"document": "application/pdf"}),
    (_starts(b"PK\x03\x04"), "application/zip", {}),
    (_starts(b"MZ", b"\x7fELF"), "an executable", {}),
]


def identify(head: bytes) -> tuple[str, dict[str, str]] | None:
    """(type, {field kind: MIME type to store}) for a known binary signature; None if none matches."""
    if head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        webm = b"webm" in head[:64]
        return ("video/webm", {"video": "video/webm", "audio": "audio/webm"}) if webm else ("video/x-matroska", {})
    for test, label, mimes in _TABLE:
        if test(head):
            return label, mimes
    return _mpeg_audio(head)


def is_text(head: bytes, *, complete: bool) -> bool:
    """Valid UTF-8 (a character cut at the end of `head` is fine unless it is the whole file), no NUL,
    and at most 1% other control characters."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head.removeprefix(BOM), final=complete)
    except UnicodeDecodeError:
        return False
    controls = sum(1 for c in text if (c < " " and c not in "\t\n\r\f\v\x1b") or c == "\x7f")
    return bool(text) and "\x00" not in text and controls * 100 <= len(text)


def text_type(head: bytes, hint: str) -> str:
    """The client's type (or the name's) if it is a text type; else html or xml when it looks so; else plain."""
    if hint in TEXT_TYPES:
        return hint
    start = head.removeprefix(BOM).lstrip()[:64].lower()
    if start.startswith(b"<?xml"):
        return "application/xml"
    if start.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    return "text/plain"


def media_type(kind: str, name: str, head: bytes, *, hint: str = "", complete: bool = True) -> str:
    """The MIME type to store for a `kind` file called `name` whose first bytes are `head`."""
    field = f"{kind}s"
    complete, head = complete and len(head) <= SNIFF_BYTES, head[:SNIFF_BYTES]
    if not head:
        raise UnsupportedMedia(f"{name} is empty")
    found = identify(head)
    if found is None and is_text(head, complete=complete):
        found = text_type(head, hint), {"document": text_type(head, hint)}
    sent = f" (sent as {hint})" if hint else ""
    if found is None:
        raise UnsupportedMedia(f"{name}: unrecognised file type{sent}; {field} takes {ACCEPTED[kind]}")
    label, mimes = found
    if kind not in mimes:
        sent = sent if hint != label else ""
        raise UnsupportedMedia(f"{name} is {label}{sent}, which {field} does not take ({ACCEPTED[kind]})")
    return mimes[kind]
