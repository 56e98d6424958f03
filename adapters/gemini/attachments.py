"""The attachments of a conversation as Gemini parts: inline while the request stays small, else by URI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from google.genai import types

from adapters.gemini.files_api import FileCache, FileKey, FileRef, FileUploader
from adapters.gemini.mime import supported_mime
from domain.errors import FileNotFound, LLMError
from domain.events import Loading
from domain.model import Attachment, MessageRequest
from domain.ports import BlobStore

TOO_LARGE = "The attachments are too large to send to the model"


def encoded_size(size: int) -> int:
    """Bytes of `size` raw bytes once base64-encoded in the JSON request."""
    return (size + 2) // 3 * 4


def check_supported(request: MessageRequest) -> None:
    """Raise LLMError naming the first attachment Gemini cannot read."""
    for attachment in request.attachments:
        if not supported_mime(attachment.type, attachment.mime_type):
            raise LLMError(f"The model cannot read {attachment.name}: {attachment.mime_type} files are not supported")


@dataclass(slots=True)
class _Item:
    key: FileKey
    attachment: Attachment
    size: int
    current: bool


class AttachmentParts:
    """Resolves every attachment of the history and the request to a Part (`parts`), uploading the
    largest ones through the Files API when the inline payload would exceed `limit` bytes."""

    def __init__(self, *, blobs: BlobStore, cache: FileCache, uploader: FileUploader | None, limit: int) -> None:
        self._blobs = blobs
        self._cache = cache
        self._uploader = uploader
        self._limit = limit
        self.parts: dict[FileKey, types.Part] = {}

    async def resolve(
        self, history: Sequence[MessageRequest], request: MessageRequest, *, reserved: int = 0
    ) -> AsyncGenerator[Loading, None]:
        items = [item async for item in self._items(history, request)]
        inline: list[_Item] = []
        for item in items:
            ref = self._cache.get(item.key)
            if ref is not None:
                self.parts[item.key] = _uri_part(ref)
            else:
                inline.append(item)
        total = reserved + sum(encoded_size(item.size) for item in inline)
        uploads: list[_Item] = []
        for item in sorted(inline, key=lambda item: item.size, reverse=True):
            if total <= self._limit:
                break
            uploads.append(item)
            total -= encoded_size(item.size)
        if uploads and (self._uploader is None or total > self._limit):
            raise LLMError(TOO_LARGE)
        uploading = {item.key for item in uploads}
        for item in inline:
            if item.key not in uploading:
                await self._read_inline(item)
        if uploads:
            async with contextlib.aclosing(self._upload(uploads)) as loadings:
                async for loading in loadings:
                    yield loading

    async def _items(self, history: Sequence[MessageRequest], request: MessageRequest) -> AsyncIterator[_Item]:
        seen: set[FileKey] = set()
        for message in [*history, request]:
            current = message is request
            for attachment in message.attachments:
                key = (message.id_team_agent, attachment.id_file or "")
                if not attachment.id_file or key in seen:
                    continue
                if not supported_mime(attachment.type, attachment.mime_type):
                    continue
                size = attachment.size
                if size is None:
                    info = await self._blobs.info(id_team_agent=key[0], id_file=key[1])
                    if info is None:
                        _missing(attachment, current)
                        continue
                    size = info.size
                seen.add(key)
                yield _Item(key, attachment, size, current)

    async def _read_inline(self, item: _Item) -> None:
        try:
            chunks = [c async for c in self._blobs.read(id_team_agent=item.key[0], id_file=item.key[1])]
        except FileNotFound:
            _missing(item.attachment, item.current)
            return
        data = b"".join(chunks)
        self.parts[item.key] = types.Part.from_bytes(data=data, mime_type=item.attachment.mime_type)

    async def _upload(self, uploads: list[_Item]) -> AsyncGenerator[Loading, None]:
        assert self._uploader is not None
        total = sum(item.size for item in uploads) or 1
        done = 0
        for item in uploads:
            yield Loading(progress=round(done / total, 3))
            try:
                async with contextlib.aclosing(self._uploader.upload(item.key[0], item.attachment)) as steps:
                    async for step in steps:
                        if isinstance(step, FileRef):
                            self._cache.put(item.key, step)
                            self.parts[item.key] = _uri_part(step)
                        else:
                            yield step
            except FileNotFound:
                _missing(item.attachment, item.current)
            done += item.size
        yield Loading(progress=1.0)


def _uri_part(ref: FileRef) -> types.Part:
    return types.Part.from_uri(file_uri=ref.uri, mime_type=ref.mime_type)


def _missing(attachment: Attachment, current: bool) -> None:
    if current:
        raise LLMError(f"The attached file {attachment.name} is no longer available")
