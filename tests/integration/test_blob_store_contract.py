"""One suite, every BlobStore: the filesystem, and the database on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.fs_blobs import FilesystemBlobStore
from adapters.sqlalchemy_store import Database, create_database
from adapters.sqlalchemy_store.blobs import SqlAlchemyBlobStore
from adapters.sqlalchemy_store.migrate import upgrade_async
from adapters.sqlalchemy_store.tables import blob_chunks, blobs
from domain.errors import FileNotFound
from domain.model import BlobInfo
from domain.ports import BlobStore
from tests.integration.conftest import clean_postgres, sqlite_url

CHUNK = 1000  # small database chunks, so every test crosses many of them


@dataclass
class Subject:
    store: BlobStore
    db: Database | None = None
    url: str = ""


@pytest.fixture(params=["filesystem", "sqlite", "postgres"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    if request.param == "filesystem":
        yield Subject(FilesystemBlobStore(tmp_path / "files"))
        return
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        await upgrade_async(url)
        db = create_database(url)
    else:
        url = request.getfixturevalue("postgres_url")
        db = await clean_postgres(url, "blob_chunks, blobs")
    yield Subject(SqlAlchemyBlobStore(db, chunk_bytes=CHUNK), db, url)
    await db.dispose()


async def put(store: BlobStore, id_file: str, pieces: list[bytes], agent: str = "agent") -> BlobInfo:
    writer = await store.writer(
        id_team_agent=agent, id_file=id_file, name="été.pdf", mime_type="application/pdf", kind="document", id_task="t1"
    )
    for piece in pieces:
        await writer.write(piece)
    return await writer.commit()


async def read_all(store: BlobStore, id_file: str, chunk_size: int = 65536, agent: str = "agent") -> list[bytes]:
    return [chunk async for chunk in store.read(id_team_agent=agent, id_file=id_file, chunk_size=chunk_size)]


async def test_a_file_round_trips_in_pieces_of_any_size(subject: Subject) -> None:
    data = os.urandom(10_500)
    pieces = [data[:1], data[1:999], data[999:1000], data[1000:4321], data[4321:]]

    info = await put(subject.store, "f1", pieces)

    expected = BlobInfo("agent", "f1", "été.pdf", "application/pdf", len(data), "document", "t1")
    assert info == expected
    assert await subject.store.info(id_team_agent="agent", id_file="f1") == expected
    chunks = await read_all(subject.store, "f1", chunk_size=700)
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 700


async def test_an_empty_file_is_a_file(subject: Subject) -> None:
    info = await put(subject.store, "empty", [])

    assert info.size == 0
    assert b"".join(await read_all(subject.store, "empty")) == b""


async def test_nothing_is_visible_before_commit(subject: Subject) -> None:
    writer = await subject.store.writer(id_team_agent="agent", id_file="f1", name="a", mime_type="x/y", kind="image")
    await writer.write(b"x" * 5000)

    assert await subject.store.info(id_team_agent="agent", id_file="f1") is None
    with pytest.raises(FileNotFound):
        await read_all(subject.store, "f1")

    await writer.commit()
    assert b"".join(await read_all(subject.store, "f1")) == b"x" * 5000


async def test_abort_leaves_nothing(subject: Subject, tmp_path: Path) -> None:
    writer = await subject.store.writer(id_team_agent="agent", id_file="f1", name="a", mime_type="x/y", kind="image")
    await writer.write(b"x" * 5000)

    await writer.abort()

    assert await subject.store.info(id_team_agent="agent", id_file="f1") is None
    with pytest.raises(FileNotFound):
        await read_all(subject.store, "f1")
    if subject.db is not None:
        async with subject.db.reader.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(blob_chunks)) == 0
            assert await conn.scalar(select(func.count()).select_from(blobs)) == 0
    else:
        assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []
    await put(subject.store, "f1", [b"again"])  # the id is free again
    assert b"".join(await read_all(subject.store, "f1")) == b"again"


async def test_delete_and_unknown_files(subject: Subject) -> None:
    await put(subject.store, "f1", [b"data"])

    await subject.store.delete(id_team_agent="agent", id_file="f1")
    await subject.store.delete(id_team_agent="agent", id_file="never-was")

    assert await subject.store.info(id_team_agent="agent", id_file="f1") is None
    with pytest.raises(FileNotFound):
        await read_all(subject.store, "f1")
    with pytest.raises(FileNotFound):
        await read_all(subject.store, "../etc")


async def test_files_are_scoped_by_team_agent(subject: Subject) -> None:
    await put(subject.store, "f1", [b"mine"], agent="agent")
    await put(subject.store, "f1", [b"theirs"], agent="other")

    assert b"".join(await read_all(subject.store, "f1", agent="agent")) == b"mine"
    assert b"".join(await read_all(subject.store, "f1", agent="other")) == b"theirs"
    assert await subject.store.info(id_team_agent="third", id_file="f1") is None


# --- database only -----------------------------------------------------------------------------------


DATABASES = pytest.mark.parametrize("subject", ["sqlite", "postgres"], indirect=True)


@DATABASES
async def test_uploads_reach_the_database_chunk_by_chunk(subject: Subject) -> None:
    assert subject.db is not None
    writer = await subject.store.writer(id_team_agent="agent", id_file="big", name="a", mime_type="x/y", kind="video")
    for _ in range(50):
        await writer.write(b"v" * 333)

    async with subject.db.reader.connect() as conn:
        stored = await conn.scalar(select(func.count()).select_from(blob_chunks))
    assert stored == 50 * 333 // CHUNK, "full chunks are written as they fill, not held until commit"
    await writer.commit()
    assert b"".join(await read_all(subject.store, "big")) == b"v" * 50 * 333


@DATABASES
async def test_another_replica_reads_what_one_wrote(subject: Subject) -> None:
    other = create_database(subject.url)
    try:
        await put(subject.store, "shared", [b"s" * 3500])

        replica = SqlAlchemyBlobStore(other)

        assert (await replica.info(id_team_agent="agent", id_file="shared")) is not None
        assert b"".join(await read_all(replica, "shared")) == b"s" * 3500
    finally:
        await other.dispose()


@DATABASES
async def test_abandoned_uploads_are_purged(subject: Subject) -> None:
    store = subject.store
    assert isinstance(store, SqlAlchemyBlobStore)
    writer = await store.writer(id_team_agent="agent", id_file="left", name="a", mime_type="x/y", kind="image")
    await writer.write(b"x" * 2500)
    await put(store, "kept", [b"k"])

    assert await store.purge_abandoned(older_than_s=3600) == 0
    assert await store.purge_abandoned(older_than_s=0) == 1

    with pytest.raises(FileNotFound):
        await writer.commit()
    assert b"".join(await read_all(store, "kept")) == b"k"
