"""Two (then three) replicas as real processes sharing PostgreSQL, Redis and database blobs (issue 6).

A stream started on A is resumed and interrupted through B, double-texting is refused through B, a file
uploaded to A is served by B, and when a replica is killed a survivor ends its run for followers and stores
it as interrupted.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from application.reaper import REAPED
from tests.conftest import POSTGRES_URL, REDIS_URL, need
from tests.e2e.process import ServerProcess
from tests.integration.test_run_registry_contract import redis_cleanup
from tests.sse import Stream, parse

pytestmark = pytest.mark.slow

DATABASE = "test_replicas"
FORM = {"id_team_agent": "agent-1", "id_team": "team-1"}
WORDS = " ".join(f"word{i}" for i in range(60))
LEASE_S, REAP_INTERVAL_S = 1.0, 0.2
START_TIMEOUT_S = 120  # a loaded 2-core machine takes a while to import and migrate


async def recreate_database() -> str:
    url = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return url.set(database=DATABASE).render_as_string(hide_password=False)


class Cluster:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.servers: list[ServerProcess] = []

    def replica(self, name: str) -> ServerProcess:
        server = ServerProcess(self.root / name, **self.env)
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need(POSTGRES_URL, "PostgreSQL")
    need(REDIS_URL, "Redis")
    prefix = f"replicas-{uuid.uuid4().hex[:8]}"
    env = {
        "DATABASE_URL": asyncio.run(recreate_database()),
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "BLOB_STORE": "database",
        "MIGRATE_ON_START": "true",
        "AI_ECHO_DELAY_MS": "50",
        "STREAM_PERSIST_INTERVAL_MS": "100",
        "RUN_LEASE_S": str(LEASE_S),
        "RUN_REAP_INTERVAL_S": str(REAP_INTERVAL_S),
    }
    cluster = Cluster(tmp_path_factory.mktemp("replicas"), env)
    try:
        yield cluster
    finally:
        cluster.stop()
        asyncio.run(redis_cleanup(prefix))


@pytest.fixture(scope="module")
def pair(cluster: Cluster) -> tuple[ServerProcess, ServerProcess]:
    a, b = cluster.replica("a"), cluster.replica("b")
    asyncio.run(_start_together(a, b))  # both migrate at once: the advisory lock serializes them
    return a, b


async def _start_together(*servers: ServerProcess) -> None:
    await asyncio.gather(*(asyncio.to_thread(server.start, START_TIMEOUT_S) for server in servers))


@pytest.fixture
async def clients(pair: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async with (
        httpx.AsyncClient(base_url=pair[0].url, timeout=30) as a,
        httpx.AsyncClient(base_url=pair[1].url, timeout=30) as b,
    ):
        yield a, b


async def until(stream: Stream, frames: int, reader: asyncio.Task[Stream]) -> None:
    deadline = time.monotonic() + 10
    while len(stream.frames) < frames:
        assert not reader.done(), f"the stream ended early: {stream.events}"
        assert time.monotonic() < deadline, "no frames"
        await asyncio.sleep(0.01)


async def follow(http: httpx.AsyncClient, id_task: str, last_event_id: str | None) -> Stream:
    headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    async with http.stream("GET", f"/tasks/agent-1/{id_task}/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        return await parse(response.aiter_raw())


def frames(stream: Stream) -> list[tuple[str | None, str]]:
    return [(f.id, f.data) for f in stream.frames]


async def test_a_stream_started_on_a_resumes_through_b(clients: tuple[httpx.AsyncClient, ...]) -> None:
    a, b = clients
    original = Stream()
    async with a.stream("POST", "/messages", data={**FORM, "id_task": "resume", "text": WORDS}) as response:
        reader = asyncio.create_task(parse(response.aiter_raw(), original))
        await until(original, 6, reader)
        cut = original.frames[4].id
        live = await follow(b, "resume", cut)
        await reader
    after_the_end = await follow(b, "resume", original.frames[10].id)

    full = frames(original)
    assert full[-2:] == [(full[-2][0], '{"event":"finished"}'), (None, "[DONE]")]
    assert frames(live) == full[5:]
    assert frames(after_the_end) == full[11:]
    stored = (await b.get("/tasks/agent-1/resume")).json()["content"][0]["response"]
    assert stored["is_finished"] is True and stored["text"] == original.text


async def test_double_text_and_interrupt_through_b_stop_a_run_on_a(clients: tuple[httpx.AsyncClient, ...]) -> None:
    a, b = clients
    original = Stream()
    async with a.stream("POST", "/messages", data={**FORM, "id_task": "stop", "text": WORDS}) as response:
        reader = asyncio.create_task(parse(response.aiter_raw(), original))
        await until(original, 4, reader)

        second = await b.post("/messages", data={**FORM, "id_task": "stop", "text": "me again"})
        interrupted = await b.post("/tasks/agent-1/stop/interrupt")
        started = time.monotonic()
        await asyncio.wait_for(reader, 5)
        stopped_in = time.monotonic() - started

    assert second.status_code == 409, second.text
    assert interrupted.status_code == 202, interrupted.text
    assert original.events[-1] == {"event": "interrupted", "reason": "interrupted by the user"}
    assert original.frames[-1].data == "[DONE]"
    assert stopped_in < 2.0
    stored = (await b.get("/tasks/agent-1/stop")).json()["content"]
    assert len(stored) == 1, "the refused message left no thread"
    assert stored[0]["response"]["is_interrupted"] is True
    assert stored[0]["response"]["text"] == original.text
    assert (await b.post("/tasks/agent-1/stop/interrupt")).status_code == 409


async def test_one_new_id_sent_to_both_at_once_makes_one_task_and_no_stray_thread(
    clients: tuple[httpx.AsyncClient, ...],
) -> None:
    a, b = clients
    ids = [f"twice-{i}" for i in range(10)]

    async def send(http: httpx.AsyncClient, id_task: str) -> int:
        async with http.stream("POST", "/messages", data={**FORM, "id_task": id_task, "text": "hi there"}) as response:
            if response.status_code == 200:
                await parse(response.aiter_raw())
            else:
                await response.aread()
            return response.status_code

    statuses = await asyncio.gather(*(send(http, id_task) for id_task in ids for http in (a, b)))

    for i, id_task in enumerate(ids):
        pair = sorted(statuses[2 * i : 2 * i + 2])
        assert pair in ([200, 200], [200, 409]), pair  # refused while the other runs, or answered after it
        stored = (await b.get(f"/tasks/agent-1/{id_task}")).json()["content"]
        assert len(stored) == pair.count(200), "a refused message left no thread"
        assert all(thread["response"]["is_finished"] for thread in stored), stored


async def test_deleting_through_b_stops_the_run_on_a(clients: tuple[httpx.AsyncClient, ...]) -> None:
    a, b = clients
    original = Stream()
    async with a.stream("POST", "/messages", data={**FORM, "id_task": "gone", "text": WORDS}) as response:
        reader = asyncio.create_task(parse(response.aiter_raw(), original))
        await until(original, 4, reader)

        deleted = await b.delete("/tasks/agent-1/gone")
        await asyncio.wait_for(reader, 5)

    assert deleted.status_code == 200, deleted.text
    assert original.events[-1] == {"event": "interrupted", "reason": "task deleted"}
    assert original.frames[-1].data == "[DONE]"
    assert (await b.get("/tasks/agent-1/gone")).status_code == 404


async def test_a_file_uploaded_to_a_is_served_by_b(clients: tuple[httpx.AsyncClient, ...]) -> None:
    a, b = clients
    data = "".join(f"line {i}: é\n" for i in range(80_000)).encode()  # about 1 MB: several database chunks
    async with a.stream(
        "POST",
        "/messages",
        data={**FORM, "id_task": "file", "text": "see"},
        files={"documents": ("notes.txt", data, "text/plain")},
    ) as response:
        await response.aread()

    task = (await b.get("/tasks/agent-1/file")).json()
    [attachment] = task["content"][0]["request"]["documents"]
    served = await b.get(attachment["url"])

    assert served.status_code == 200
    assert served.content == data


async def test_a_killed_replica_is_reaped_by_a_survivor(
    cluster: Cluster, clients: tuple[httpx.AsyncClient, ...]
) -> None:
    _, b = clients
    doomed = cluster.replica("c")
    await asyncio.to_thread(doomed.start, START_TIMEOUT_S)
    original = Stream()
    async with (
        httpx.AsyncClient(base_url=doomed.url, timeout=30) as c,
        c.stream("POST", "/messages", data={**FORM, "id_task": "crash", "text": WORDS}) as response,
    ):
        reader = asyncio.create_task(parse(response.aiter_raw(), original))
        await until(original, 8, reader)
        follower = asyncio.create_task(follow(b, "crash", original.frames[2].id))
        await asyncio.sleep(0.3)
        doomed.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.to_thread(doomed.wait)
        reader.cancel()
    followed = await asyncio.wait_for(follower, 10)
    ended_in = time.monotonic() - killed_at

    assert followed.events[-1] == {"event": "interrupted", "reason": REAPED}
    assert followed.frames[-1].data == "[DONE]"
    assert ended_in < LEASE_S + REAP_INTERVAL_S + 1.5
    stored = (await b.get("/tasks/agent-1/crash")).json()["content"][0]["response"]
    assert stored["is_interrupted"] is True and stored["reason"] == REAPED
    assert stored["text"].startswith("You said: word0")
    print(f"kill -9 to interrupted on the survivor: {ended_in:.2f} s (lease {LEASE_S} s)")
