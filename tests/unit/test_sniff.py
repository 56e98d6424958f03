"""MIME sniffing: the type comes from the bytes, per field, from our own signature table."""

from __future__ import annotations

import pytest

from adapters.gemini.mime import supported_mime
from entrypoints.sniff import SNIFF_BYTES, UnsupportedMedia, identify, is_text, media_type


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


SAMPLES: dict[str, bytes] = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "heic": ftyp(b"heic", b"mif1", b"heic"),
    "heif": ftyp(b"mif1", b"heic"[:0] + b"mif1"),
    "avif": ftyp(b"avif", b"mif1"),
    "gif": b"GIF89a\x01\x00\x01\x00",
    "mp4": ftyp(b"isom", b"iso2", b"avc1", b"mp41"),
    "m4a": ftyp(b"M4A ", b"isom"),
    "mov": ftyp(b"qt  "),
    "3gp": ftyp(b"3gp4", b"isom"),
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm",
    "mkv": b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska",
    "avi": b"RIFF\x24\x00\x00\x00AVI LIST",
    "mpeg": b"\x00\x00\x01\xba\x44\x00\x04\x00",
    "flv": b"FLV\x01\x05\x00\x00\x00\x09",
    "wmv": bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + b"\x00" * 8,
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "mp3-id3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "mp3-frame": b"\xff\xfb\x90\x64\x00\x00",
    "aac": b"\xff\xf1\x50\x80\x00\x1f\xfc",
    "aiff": b"FORM\x00\x00\x00\x00AIFFCOMM",
    "ogg": b"OggS\x00\x02\x00\x00",
    "flac": b"fLaC\x00\x00\x00\x22",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "exe": b"MZ\x90\x00\x03\x00",
    "text": "Hello, wörld — ünïcode ✓\nline two\n".encode(),
    "html": b"  <!DOCTYPE html><html><body>hi</body></html>",
    "xml": b'<?xml version="1.0"?><a/>',
    "binary": bytes(range(256)),
}

# (sample, field kind) -> MIME type stored; anything not listed must be refused
ACCEPTED = {
    ("png", "image"): "image/png",
    ("jpeg", "image"): "image/jpeg",
    ("webp", "image"): "image/webp",
    ("heic", "image"): "image/heic",
    ("heif", "image"): "image/heif",
    ("mp4", "video"): "video/mp4",
    ("mp4", "audio"): "audio/mp4",
    ("m4a", "audio"): "audio/mp4",
    ("mov", "video"): "video/quicktime",
    ("3gp", "video"): "video/3gpp",
    ("webm", "video"): "video/webm",
    ("webm", "audio"): "audio/webm",
    ("avi", "video"): "video/x-msvideo",
    ("mpeg", "video"): "video/mpeg",
    ("flv", "video"): "video/x-flv",
    ("wmv", "video"): "video/x-ms-wmv",
    ("wav", "audio"): "audio/wav",
    ("mp3-id3", "audio"): "audio/mpeg",
    ("mp3-frame", "audio"): "audio/mpeg",
    ("aac", "audio"): "audio/aac",
    ("aiff", "audio"): "audio/aiff",
    ("ogg", "audio"): "audio/ogg",
    ("flac", "audio"): "audio/flac",
    ("pdf", "document"): "application/pdf",
    ("text", "document"): "text/plain",
    ("html", "document"): "text/html",
    ("xml", "document"): "application/xml",
}
KINDS = ("image", "video", "audio", "document")


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@pytest.mark.parametrize("kind", KINDS)
def test_every_sample_in_every_field(sample: str, kind: str) -> None:
    expected = ACCEPTED.get((sample, kind))
    if expected is None:
        with pytest.raises(UnsupportedMedia) as refused:
            media_type(kind, "upload.bin", SAMPLES[sample], hint="application/octet-stream")
        assert str(refused.value).startswith("upload.bin")
        assert f"{kind}s" in str(refused.value)
    else:
        assert media_type(kind, "upload.bin", SAMPLES[sample]) == expected
        assert supported_mime(kind, expected), "the Gemini adapter must read every type we let in"


def test_the_clients_header_and_the_name_do_not_change_the_verdict() -> None:
    assert media_type("image", "cat.png", SAMPLES["jpeg"], hint="image/png") == "image/jpeg"
    with pytest.raises(UnsupportedMedia, match=r"cat\.png is video/mp4 \(sent as image/png\), which images"):
        media_type("image", "cat.png", SAMPLES["mp4"], hint="image/png")
    with pytest.raises(UnsupportedMedia, match=r"notes\.txt: unrecognised file type"):
        media_type("document", "notes.txt", SAMPLES["binary"], hint="text/plain")


def test_a_text_documents_subtype_follows_the_hint_when_it_is_a_text_type() -> None:
    csv = b"a,b\n1,2\n"
    assert media_type("document", "t.csv", csv, hint="text/csv") == "text/csv"
    assert media_type("document", "t.md", b"# Title\n", hint="text/markdown") == "text/markdown"
    assert media_type("document", "t.json", b'{"a": 1}', hint="application/json") == "application/json"
    assert media_type("document", "t.pdf", csv, hint="application/pdf") == "text/plain"
    assert media_type("document", "t", b"\xef\xbb\xbf<?xml version='1.0'?><a/>") == "application/xml"


def test_empty_files_are_refused() -> None:
    with pytest.raises(UnsupportedMedia, match=r"empty\.png is empty"):
        media_type("image", "empty.png", b"")


@pytest.mark.parametrize(
    ("head", "complete", "text"),
    [
        (b"plain ascii", True, True),
        ("é".encode() * 10, True, True),
        ("é".encode() * 10 + "é".encode()[:1], False, True),  # a character cut by the sniff window
        ("é".encode() * 10 + "é".encode()[:1], True, False),  # ...but the whole file cannot end so
        (b"latin-1 caf\xe9 text", True, False),
        (b"has a \x00 NUL", True, False),
        (b"a" * 98 + b"\x07\x08", True, False),  # 2% control characters
        (b"a" * 200 + b"\x07", True, True),  # 0.5%
        (b"tabs\tand\r\nnewlines\x0c and \x1b[1mansi\x1b[0m", True, True),
        ("\u2028 line separators \u2029 and 𝄞 astral".encode(), True, True),
        (b"\xed\xa0\x80 surrogate", True, False),
    ],
)
def test_text_is_valid_utf8_without_binary_controls(head: bytes, complete: bool, text: bool) -> None:
    assert is_text(head, complete=complete) is text


def test_only_the_first_sniff_window_is_read() -> None:
    long_text = b"a" * SNIFF_BYTES + b"\x00" * 100  # binary after the window: not looked at
    assert media_type("document", "big.txt", long_text, complete=False) == "text/plain"
    cut = b"a" * (SNIFF_BYTES - 1) + "é".encode()  # the window cuts a character of a larger file
    assert media_type("document", "big.txt", cut + b"more", complete=True) == "text/plain"


def test_identify_knows_refused_types_by_name() -> None:
    assert identify(SAMPLES["gif"]) == ("image/gif", {})
    assert identify(SAMPLES["avif"]) == ("image/avif", {})
    assert identify(SAMPLES["mkv"]) == ("video/x-matroska", {})
    assert identify(b"just text") is None
