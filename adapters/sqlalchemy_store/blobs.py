"""SqlAlchemyBlobStore: file bytes in the database, so every replica reads every file without a shared volume.

An upload inserts a `blobs` row in state "writing", then its bytes as `blob_chunks` rows, one short
transaction per chunk (never the whole file in memory, never a long transaction holding the SQLite writer);
`commit` flips the row to "ready", which is the only state `info` and `read` see. `abort` deletes both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, cast

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters import store_codec as codec
from adapters.sqlalchemy_store.engine import Database
from adapters.sqlalchemy_store.tables import blob_chunks, blobs
from domain.errors import FileNotFound, InvalidInput
from domain.model import AttachmentKind, BlobInfo, is_valid_id

CHUNK_BYTES = 256 * 1024
CHUNKS_PER_QUERY = 4
WRITING, READY = "writing", "ready"


def _blob_pk(id_team_agent: str, id_file: str) -> Any:
    return and_(blobs.c.id_team_agent == id_team_agent, blobs.c.id_file == id_file)


def _chunk_fk(id_team_agent: str, id_file: str) -> Any:
    return and_(blob_chunks.c.id_team_agent == id_team_agent, blob_chunks.c.id_file == id_file)


class SqlAlchemyBlobWriter:
    def __init__(self, db: Database, info: BlobInfo, chunk_bytes: int) -> None:
        self._db = db
        self._info = info
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        self._seq = 0
        self._size = 0

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        if self._buffer:
            take = self._chunk - len(self._buffer)
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) < self._chunk:
                return
            await self._store_chunk(bytes(self._buffer))
            self._buffer.clear()
        while len(view) >= self._chunk:
            await self._store_chunk(bytes(view[: self._chunk]))
            view = view[self._chunk :]
        self._buffer += view

    async def _store_chunk(self, piece: bytes) -> None:
        try:
            async with self._db.writer.begin() as conn:
                await conn.execute(
                    insert(blob_chunks).values(
                        id_team_agent=self._info.id_team_agent, id_file=self._info.id_file, seq=self._seq, data=piece
                    )
                )
        except IntegrityError:
            raise FileNotFound() from None  # the upload was aborted or purged meanwhile (foreign key)
        self._seq += 1
        self._size += len(piece)

    async def commit(self) -> BlobInfo:
        if self._buffer:
            await self._store_chunk(bytes(self._buffer))
            self._buffer.clear()
        info = dataclasses.replace(self._info, size=self._size)
        async with self._db.writer.begin() as conn:
            done = await conn.execute(
                update(blobs)
                .where(_blob_pk(info.id_team_agent, info.id_file), blobs.c.state == WRITING)
                .values(state=READY, size=info.size)
            )
        if done.rowcount == 0:
            raise FileNotFound()  # aborted or purged meanwhile
        return info

    async def abort(self) -> None:
        self._buffer.clear()
        agent, id_file = self._info.id_team_agent, self._info.id_file
        async with self._db.writer.begin() as conn:
            await conn.execute(delete(blob_chunks).where(_chunk_fk(agent, id_file)))
            await conn.execute(delete(blobs).where(_blob_pk(agent, id_file), blobs.c.state == WRITING))


class SqlAlchemyBlobStore:
    """Files in SQLite or PostgreSQL: the choice for several replicas without a shared volume."""

    def __init__(self, db: Database, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._db = db
        self._chunk = chunk_bytes

    async def writer(
        self,
        *,
        id_team_agent: str,
        id_file: str,
        name: str,
        mime_type: str,
        kind: str,
        id_task: str | None = None,
    ) -> SqlAlchemyBlobWriter:
        if not (is_valid_id(id_team_agent) and is_valid_id(id_file)):
            raise FileNotFound()
        info = BlobInfo(id_team_agent, id_file, name, mime_type, 0, cast(AttachmentKind, kind), id_task)
        async with self._db.writer.begin() as conn:
            try:
                await conn.execute(
                    insert(blobs).values(
                        id_team_agent=id_team_agent,
                        id_file=id_file,
                        name=name,
                        mime_type=mime_type,
                        kind=kind,
                        id_task=id_task,
                        size=0,
                        state=WRITING,
                        created_us=codec.now_us(),
                    )
                )
            except IntegrityError:
                raise InvalidInput("id_file", "is taken") from None
        return SqlAlchemyBlobWriter(self._db, info, self._chunk)

    async def info(self, *, id_team_agent: str, id_file: str) -> BlobInfo | None:
        query = select(blobs).where(_blob_pk(id_team_agent, id_file), blobs.c.state == READY)
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        kind = cast(AttachmentKind, row.kind)
        return BlobInfo(row.id_team_agent, row.id_file, row.name, row.mime_type, row.size, kind, row.id_task)

    async def read(self, *, id_team_agent: str, id_file: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        if await self.info(id_team_agent=id_team_agent, id_file=id_file) is None:
            raise FileNotFound()
        seq = 0
        while True:
            query = (
                select(blob_chunks.c.seq, blob_chunks.c.data)
                .where(_chunk_fk(id_team_agent, id_file), blob_chunks.c.seq >= seq)
                .order_by(blob_chunks.c.seq)
                .limit(CHUNKS_PER_QUERY)
            )
            async with self._db.reader.connect() as conn:
                rows = (await conn.execute(query)).all()
            for row in rows:
                data = bytes(row.data)
                for start in range(0, len(data), chunk_size):
                    yield data[start : start + chunk_size]
            if len(rows) < CHUNKS_PER_QUERY:
                return
            seq = rows[-1].seq + 1

    async def delete(self, *, id_team_agent: str, id_file: str) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(delete(blob_chunks).where(_chunk_fk(id_team_agent, id_file)))
            await conn.execute(delete(blobs).where(_blob_pk(id_team_agent, id_file)))

    async def purge_abandoned(self, *, older_than_s: float) -> int:
        """Delete uploads left "writing" (their process died) for longer than `older_than_s`; return how many."""
        cutoff = codec.now_us() - int(older_than_s * 1_000_000)
        query = select(blobs.c.id_team_agent, blobs.c.id_file).where(
            blobs.c.state == WRITING, blobs.c.created_us < cutoff
        )
        async with self._db.reader.connect() as conn:
            stale = (await conn.execute(query)).all()
        for row in stale:
            async with self._db.writer.begin() as conn:
                await conn.execute(delete(blob_chunks).where(_chunk_fk(row.id_team_agent, row.id_file)))
                await conn.execute(
                    delete(blobs).where(_blob_pk(row.id_team_agent, row.id_file), blobs.c.state == WRITING)
                )
        return len(stale)
