"""The multipart half of form parsing: python-multipart callbacks driven chunk by chunk, each file
sniffed from its first bytes, then streamed to the BlobStore (or spooled until its task is known)."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from application.clock import new_id
from domain.model import Attachment, is_valid_id
from domain.ports import BlobStore, BlobWriter
from entrypoints.form_rules import (
    FILE_FIELDS,
    MAX_FIELD_BYTES,
    FormError,
    FormLimits,
    check_field,
    check_team,
    clean_filename,
    declared_mime,
)
from entrypoints.plain_parts import SMALL_BODY_BYTES, plain_fields
from entrypoints.sniff import SNIFF_BYTES, UnsupportedMedia, media_type


class MultipartForm:
    def __init__(
        self, text_fields: set[str], with_files: bool, limits: FormLimits, blobs: BlobStore, team: str | None
    ) -> None:
        self._text_fields, self._with_files, self._limits, self._blobs = text_fields, with_files, limits, blobs
        self._team = team
        self.fields: dict[str, str] = {}
        self.files: list[Attachment] = []
        self._parked: list[tuple[Attachment, IO[bytes]]] = []
        self._ops: list[tuple[str, Any]] = []
        self._header: list[bytes] = [b"", b""]
        self._headers: dict[bytes, bytes] = {}
        self._part: _Part | None = None
        self._finished = False

    async def run(self, request: Request, boundary: bytes) -> None:
        parser: MultipartParser | None = None
        total, small = 0, bytearray()  # a small body is kept whole for the shortcut (see plain_parts.py)
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > self._limits.max_request_bytes:
                    raise FormError(413, None, f"the request is larger than {self._limits.max_request_bytes} bytes")
                if total <= SMALL_BODY_BYTES:
                    small += chunk
                    continue
                parser = parser or self._parser(boundary)
                if small:
                    parser.write(bytes(small))
                    small.clear()
                parser.write(chunk)
                await self._apply()
            rest = bytes(small)
            fields = plain_fields(rest, boundary) if parser is None else None
            if fields is not None:
                self._take(fields)
            else:
                parser = parser or self._parser(boundary)
                parser.write(rest)
                parser.finalize()
                await self._apply()
        except FormError:
            raise
        except Exception as error:
            raise FormError(400, None, "malformed multipart body") from error
        if not self._finished:
            raise FormError(400, None, "malformed multipart body: it ends before its closing boundary")
        if self._parked and not self.fields.get("id_task"):
            self.fields["id_task"] = new_id()  # so every stored file knows its task (see routes/files.py)
        await self._unpark()

    def _take(self, fields: list[tuple[bytes, bytes]]) -> None:
        """Plain fields read whole (see plain_parts.py), checked as the parser's events would check them."""
        for raw_name, value in fields:
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError:
                raise FormError(400, None, "a part name is not valid UTF-8") from None
            check_field(name, len(value), self._text_fields, self._limits, self.fields)
            try:
                self.fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise FormError(400, name, f"{name} is not valid UTF-8") from None
            if name == "id_team":
                check_team(self.fields[name], self._team)
        self._finished = True

    def _parser(self, boundary: bytes) -> MultipartParser:
        def op(kind: str) -> Callable[..., None]:
            return lambda *args: self._ops.append((kind, args))

        return MultipartParser(
            boundary,
            {
                "on_part_begin": op("begin"),
                "on_part_data": lambda data, start, end: self._ops.append(("data", data[start:end])),
                "on_part_end": op("end"),
                "on_header_field": lambda data, start, end: self._header.__setitem__(
                    0, self._header[0] + data[start:end]
                ),
                "on_header_value": lambda data, start, end: self._header.__setitem__(
                    1, self._header[1] + data[start:end]
                ),
                "on_header_end": self._header_end,
                "on_headers_finished": op("headers"),
                "on_end": op("done"),
            },
        )

    def _header_end(self) -> None:
        self._ops.append(("header", (self._header[0].lower(), self._header[1])))
        self._header = [b"", b""]

    async def _apply(self) -> None:
        ops, self._ops = self._ops, []
        for kind, args in ops:
            if kind == "begin":
                self._headers = {}
            elif kind == "header":
                self._headers[args[0]] = args[1]
            elif kind == "headers":
                self._part = await self._open_part()
            elif kind == "data" and self._part is not None:
                await self._part.write(args)
                if self._part.head is not None and len(self._part.head) >= SNIFF_BYTES:
                    await self._open_file(self._part, complete=False)
            elif kind == "end" and self._part is not None:
                if self._part.head is not None:
                    await self._open_file(self._part, complete=True)
                await self._close_part(self._part)
                self._part = None
            elif kind == "done":
                self._finished = True

    async def _open_part(self) -> _Part:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        try:
            name = options.get(b"name", b"").decode("utf-8")
            filename = options[b"filename"].decode("utf-8") if b"filename" in options else None
        except UnicodeDecodeError:
            raise FormError(400, None, "a part name is not valid UTF-8") from None
        base = name[:-2] if name.endswith("[]") else name
        if filename is None:
            check_field(name, 0, self._text_fields, self._limits, self.fields)
            return _Part(name, None, self._limits.max_text_bytes if name == "text" else MAX_FIELD_BYTES)
        if not self._with_files or base not in FILE_FIELDS:
            raise FormError(400, name[:64], f"unknown file field {name[:64]!r}")
        kind = FILE_FIELDS[base]
        if len(self.files) + len(self._parked) >= self._limits.max_files:
            raise FormError(413, base, f"more than {self._limits.max_files} files")
        shown = clean_filename(filename, f"{kind}-{len(self.files) + len(self._parked) + 1}")
        content_type = self._headers.get(b"content-type", b"").decode("latin-1")
        attachment = Attachment(
            name=shown, type=kind, mime_type=declared_mime(content_type, shown), size=0, id_file=new_id()
        )
        return _Part(base, attachment, self._limits.max_upload_bytes, empty_ok=not filename, head=bytearray())

    async def _open_file(self, part: _Part, *, complete: bool) -> None:
        """Sniff the type from the first bytes (415 if the field does not take it), then start storing."""
        head, part.head, attachment = bytes(cast(bytearray, part.head)), None, cast(Attachment, part.attachment)
        if not head and part.empty_ok:
            return
        try:
            mime = media_type(attachment.type, attachment.name, head, hint=attachment.mime_type, complete=complete)
        except UnsupportedMedia as error:
            raise FormError(415, part.name, str(error)) from None
        part.attachment = attachment = dataclasses.replace(attachment, mime_type=mime)
        if self._ids_known():
            part.writer = await self._writer(attachment)
        else:
            part.spool = await asyncio.to_thread(tempfile.TemporaryFile)
        await part.sink(head)

    async def _close_part(self, part: _Part) -> None:
        if part.attachment is None:
            try:
                self.fields[part.name] = bytes(part.buffer).decode("utf-8")
            except UnicodeDecodeError:
                raise FormError(400, part.name, f"{part.name} is not valid UTF-8") from None
            if part.name == "id_team":
                check_team(self.fields[part.name], self._team)
            return
        attachment = _sized(part.attachment, part.size)
        if part.size == 0 and part.empty_ok:
            await part.discard()
        elif part.writer is not None:
            info = await part.writer.commit()
            part.writer = None
            self.files.append(_sized(attachment, info.size))
        elif part.spool is not None:
            self._parked.append((attachment, part.spool))
            part.spool = None

    async def _writer(self, attachment: Attachment) -> BlobWriter:
        return await self._blobs.writer(
            id_team_agent=self.fields["id_team_agent"],
            id_file=cast(str, attachment.id_file),
            name=attachment.name,
            mime_type=attachment.mime_type,
            kind=attachment.type,
            id_task=self.fields.get("id_task"),
        )

    def _ids_known(self) -> bool:
        """Files are stored under valid ids only; with a bad id the route answers 400 and nothing is kept."""
        return is_valid_id(self.fields.get("id_team_agent", "")) and is_valid_id(self.fields.get("id_task", ""))

    async def _unpark(self) -> None:
        parked, self._parked = self._parked, []
        for attachment, spool in parked:
            try:
                if not self._ids_known():
                    continue
                writer = await self._writer(attachment)
                await asyncio.to_thread(spool.seek, 0)
                try:
                    while chunk := await asyncio.to_thread(spool.read, 1 << 20):
                        await writer.write(chunk)
                    info = await writer.commit()
                except BaseException:
                    await writer.abort()
                    raise
                self.files.append(_sized(attachment, info.size))
            finally:
                spool.close()

    async def discard(self) -> None:
        if self._part is not None:
            await self._part.discard()
        for _, spool in self._parked:
            spool.close()
        agent = self.fields.get("id_team_agent")
        for attachment in self.files:
            if agent and attachment.id_file:
                await self._blobs.delete(id_team_agent=agent, id_file=attachment.id_file)
        self.files = []


@dataclass(slots=True)
class _Part:
    name: str
    attachment: Attachment | None
    limit: int
    empty_ok: bool = False
    size: int = 0
    buffer: bytearray = field(default_factory=bytearray)
    writer: BlobWriter | None = None
    spool: IO[bytes] | None = None
    head: bytearray | None = None  # a file's first bytes, kept until its type is sniffed

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            if self.attachment is None:
                status = 413 if self.name == "text" else 400
                raise FormError(status, self.name, f"{self.name} is longer than {self.limit} bytes")
            raise FormError(413, self.name, f"{self.attachment.name} is larger than {self.limit} bytes")
        if self.head is not None:
            self.head += data
        else:
            await self.sink(data)

    async def sink(self, data: bytes) -> None:
        if self.writer is not None:
            await self.writer.write(data)
        elif self.spool is not None:
            await asyncio.to_thread(self.spool.write, data)
        else:
            self.buffer += data

    async def discard(self) -> None:
        if self.writer is not None:
            await self.writer.abort()
            self.writer = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None


def _sized(attachment: Attachment, size: int) -> Attachment:
    return Attachment(attachment.name, attachment.type, attachment.mime_type, size, attachment.id_file)
