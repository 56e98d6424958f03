"""Large attachments through the Gemini Files API: spool, upload, wait until ACTIVE, remember the URI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from google import genai
from google.genai import types

from adapters.gemini.errors import to_llm_error
from adapters.gemini.mime import extension
from domain.errors import LLMError
from domain.events import Loading
from domain.model import Attachment
from domain.ports import BlobStore

MAX_PROCESSING_S = 600.0
EXPIRY_MARGIN_S = 3600.0
DEFAULT_LIFETIME_S = 47 * 3600.0
SPOOL_CHUNK = 1024 * 1024
FileKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FileRef:
    uri: str
    mime_type: str
    expires_at: float


class FileCache:
    """URIs of uploaded files by (id_team_agent, id_file), while they are valid (Gemini keeps 48 h)."""

    def __init__(self, *, capacity: int = 1024) -> None:
        self._refs: OrderedDict[FileKey, FileRef] = OrderedDict()
        self._capacity = capacity

    def get(self, key: FileKey) -> FileRef | None:
        ref = self._refs.get(key)
        if ref is not None and ref.expires_at - EXPIRY_MARGIN_S < time.time():
            del self._refs[key]
            return None
        return ref

    def put(self, key: FileKey, ref: FileRef) -> None:
        self._refs[key] = ref
        self._refs.move_to_end(key)
        while len(self._refs) > self._capacity:
            self._refs.popitem(last=False)


class FileUploader:
    """Uploads one blob and waits until Gemini can use it, yielding `Loading` meanwhile."""

    def __init__(
        self, *, client: genai.Client, blobs: BlobStore, poll_interval_s: float, request_timeout_s: float
    ) -> None:
        self._client = client
        self._blobs = blobs
        self._poll = poll_interval_s
        self._get_options = types.HttpOptions(timeout=int(request_timeout_s * 1000))

    async def upload(self, id_team_agent: str, attachment: Attachment) -> AsyncGenerator[Loading | FileRef, None]:
        path = await self._spool(id_team_agent, attachment)
        try:
            file = await self._client.aio.files.upload(
                file=path,
                config=types.UploadFileConfig(mime_type=attachment.mime_type, display_name=attachment.name),
            )
        except Exception as error:
            raise to_llm_error(error) from error
        finally:
            await asyncio.to_thread(_unlink, path)
        deadline = time.monotonic() + MAX_PROCESSING_S
        while file.state == types.FileState.PROCESSING:
            if time.monotonic() > deadline:
                raise LLMError(f"The model took too long to process {attachment.name}", retryable=True)
            yield Loading()
            await asyncio.sleep(self._poll)
            try:
                file = await self._client.aio.files.get(
                    name=file.name or "", config=types.GetFileConfig(http_options=self._get_options)
                )
            except Exception as error:
                raise to_llm_error(error) from error
        if file.state == types.FileState.FAILED or not file.uri:
            raise LLMError(f"The model service could not process {attachment.name}")
        expiry = file.expiration_time
        expires = expiry.timestamp() if expiry is not None else time.time() + DEFAULT_LIFETIME_S
        yield FileRef(uri=file.uri, mime_type=file.mime_type or attachment.mime_type, expires_at=expires)

    async def _spool(self, id_team_agent: str, attachment: Attachment) -> str:
        suffix = extension(attachment.mime_type)
        fd, path = await asyncio.to_thread(tempfile.mkstemp, prefix="gemini-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as sink:
                async for chunk in self._blobs.read(
                    id_team_agent=id_team_agent, id_file=attachment.id_file or "", chunk_size=SPOOL_CHUNK
                ):
                    await asyncio.to_thread(sink.write, chunk)
        except BaseException:
            await asyncio.to_thread(_unlink, path)
            raise
        return path


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
