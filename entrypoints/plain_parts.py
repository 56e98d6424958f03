"""A shortcut for the common small form: every part a plain field, in canonical multipart framing.

python-multipart calls back a dozen times per part, which made parsing a chat message's four fields about a
tenth of the service's CPU per message. For a body already in memory whose framing is exactly canonical
(`--boundary CRLF`, one `Content-Disposition` header, `CRLF CRLF`, the value, ..., `--boundary--`), this yields
the very events the parser would; anything else (a file, another header, a preamble, an epilogue, transport
padding, a header line or boundary near the parser's limits) returns None and goes to the parser.
"""

from __future__ import annotations

from typing import Any

from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE, MAX_BOUNDARY_LENGTH

SMALL_BODY_BYTES = 64 * 1024
"""Bodies up to this size are read whole before parsing, to try the shortcut."""

Event = tuple[str, Any]


def plain_part_events(body: bytes, boundary: bytes) -> list[Event] | None:
    """The events MultipartForm gets from the parser's callbacks for `body`, or None if it is not canonical."""
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        return None
    delimiter = b"--" + boundary
    separator = b"\r\n" + delimiter
    closing = body.rfind(separator + b"--")
    if not body.startswith(delimiter + b"\r\n") or closing < 0:
        return None
    if body[closing + len(separator) + 2 :] not in (b"", b"\r\n"):
        return None
    events: list[Event] = []
    for part in body[len(delimiter) + 2 : closing].split(separator + b"\r\n"):
        head, blank, value = part.partition(b"\r\n\r\n")
        name, colon, header = head.partition(b":")
        if not blank or not colon or b"\r" in head or b"\n" in head or name.lower() != b"content-disposition":
            return None
        if len(head) > DEFAULT_MAX_HEADER_SIZE // 2:  # well inside the parser's own limit on a header line
            return None
        header = header.lstrip(b" ")
        if b"filename" in header or separator in value or not header:
            return None
        events += [("begin", ()), ("header", (b"content-disposition", header)), ("headers", ())]
        if value:
            events.append(("data", value))
        events.append(("end", ()))
    events.append(("done", ()))
    return events
