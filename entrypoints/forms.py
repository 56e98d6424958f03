"""Streaming form parsing: fields are checked as UTF-8, files go to the BlobStore chunk by chunk."""

from __future__ import annotations

from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from domain.ports import BlobStore
from entrypoints.form_rules import (
    FILE_FIELDS,
    MAX_FIELD_BYTES,
    MAX_NAME_CHARS,
    FormError,
    FormLimits,
    ParsedForm,
    check_field,
    check_team,
    clean_filename,
)
from entrypoints.multipart import MultipartForm
from entrypoints.principal import key_team

__all__ = ["FILE_FIELDS", "MAX_NAME_CHARS", "FormError", "FormLimits", "ParsedForm", "clean_filename", "parse_form"]


async def parse_form(
    request: Request,
    *,
    text_fields: set[str],
    with_files: bool,
    limits: FormLimits,
    blobs: BlobStore,
) -> ParsedForm:
    """Parse a multipart or urlencoded body. Raise FormError (400/413) and leave no blob behind."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limits.max_request_bytes:
        raise FormError(413, None, f"the request is larger than {limits.max_request_bytes} bytes")
    team = key_team(request)
    if content_type == b"application/x-www-form-urlencoded":
        form = await _parse_urlencoded(request, text_fields, limits)
        check_team(form.fields.get("id_team"), team)
        return form
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise FormError(400, None, "send multipart/form-data (or application/x-www-form-urlencoded)")
    parser = MultipartForm(text_fields, with_files, limits, blobs, team)
    try:
        await parser.run(request, options[b"boundary"])
    except BaseException:
        await parser.discard()
        raise
    return ParsedForm(parser.fields, parser.files)


async def _parse_urlencoded(request: Request, text_fields: set[str], limits: FormLimits) -> ParsedForm:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_text_bytes * 3 + 4 * MAX_FIELD_BYTES:
            raise FormError(413, "text", f"text is longer than {limits.max_text_bytes} bytes")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise FormError(400, None, "the form is not valid UTF-8") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        check_field(name, len(value.encode()), text_fields, limits, fields)
        fields[name] = value
    return ParsedForm(fields)
