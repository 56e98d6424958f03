"""FilesystemBlobStore: files under `<root>/<id_team_agent>/<id_file>` with a JSON sidecar of metadata."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, cast

from domain.errors import FileNotFound
from domain.model import AttachmentKind, BlobInfo, is_valid_id


class FilesystemBlobWriter:
    def __init__(self, store: FilesystemBlobStore, info: BlobInfo, tmp: Path, handle: IO[bytes]) -> None:
        self._store = store
        self._info = info
        self._tmp = tmp
        self._handle = handle
        self._size = 0

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._handle.write, data)
        self._size += len(data)

    async def commit(self) -> BlobInfo:
        info = dataclasses.replace(self._info, size=self._size)
        await asyncio.to_thread(self._commit, info)
        return info

    def _commit(self, info: BlobInfo) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        path = self._store.path(info.id_team_agent, info.id_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = path.with_name(path.name + ".json")
        meta.write_text(json.dumps(_as_dict(info)))
        os.replace(self._tmp, path)

    async def abort(self) -> None:
        await asyncio.to_thread(self._abort)

    def _abort(self) -> None:
        self._handle.close()
        self._tmp.unlink(missing_ok=True)


class FilesystemBlobStore:
    """Local files: the default for a single replica. Writes land in `.tmp` first, then move in place."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, id_team_agent: str, id_file: str) -> Path:
        if not (is_valid_id(id_team_agent) and is_valid_id(id_file)):
            raise FileNotFound()
        return self._root / id_team_agent / id_file

    async def writer(
        self,
        *,
        id_team_agent: str,
        id_file: str,
        name: str,
        mime_type: str,
        kind: str,
        id_task: str | None = None,
    ) -> FilesystemBlobWriter:
        self.path(id_team_agent, id_file)
        tmp = self._root / ".tmp" / uuid.uuid4().hex
        handle = await asyncio.to_thread(_open_tmp, tmp)
        info = BlobInfo(
            id_team_agent=id_team_agent,
            id_file=id_file,
            name=name,
            mime_type=mime_type,
            size=0,
            kind=cast(AttachmentKind, kind),
            id_task=id_task,
        )
        return FilesystemBlobWriter(self, info, tmp, handle)

    async def info(self, *, id_team_agent: str, id_file: str) -> BlobInfo | None:
        try:
            meta = self.path(id_team_agent, id_file).with_name(id_file + ".json")
            raw = await asyncio.to_thread(meta.read_text)
        except (FileNotFound, FileNotFoundError):
            return None
        return BlobInfo(**json.loads(raw))

    async def read(self, *, id_team_agent: str, id_file: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        path = self.path(id_team_agent, id_file)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise FileNotFound() from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def delete(self, *, id_team_agent: str, id_file: str) -> None:
        path = self.path(id_team_agent, id_file)
        await asyncio.to_thread(_unlink_both, path)


def _open_tmp(tmp: Path) -> IO[bytes]:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp.open("wb")


def _unlink_both(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".json").unlink(missing_ok=True)


def _as_dict(info: BlobInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in info.__dataclass_fields__}
