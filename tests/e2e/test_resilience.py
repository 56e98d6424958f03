"""Streams that survive: resume, disconnects, double-texting, kill -9, SIGTERM (issue 4)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import post_stream, serve
from tests.e2e.process import ServerProcess
from tests.sse import Frame, Stream, parse

FORM = {"id_team_agent": "agent-1", "id_team": "team-1"}
WORDS = " ".join(f"word{i}" for i in range(40))


def frames(stream: Stream) -> list[tuple[str | None, str]]:
    return [(f.id, f.data) for f in stream.frames]


async def resume(http: httpx.AsyncClient, task: str, last: str | None, *, query: bool = False) -> Stream:
    headers = {"Accept": "text/event-stream"}
    params = {}
    if last is not None and query:
        params["last_event_id"] = last
    elif last is not None:
        headers["Last-Event-ID"] = last
    async with http.stream("GET", f"/tasks/agent-1/{task}/stream", headers=headers, params=params) as response:
        assert response.status_code == 200, await response.aread()
        return await parse(response.aiter_raw())


async def test_resume_at_several_ids_while_live_and_after_the_end(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with serve(settings_factory(ai_echo_delay_ms=20)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            original = Stream()
            async with http.stream("POST", "/messages", data={**FORM, "id_task": "r", "text": WORDS}) as response:
                reader = asyncio.create_task(parse(response.aiter_raw(), original))
                while len(original.frames) < 5:
                    await asyncio.sleep(0.01)
                live = [await resume(http, "r", original.frames[i].id) for i in (0, 3)]
                await reader
            ended = [await resume(http, "r", original.frames[i].id) for i in (0, 10, len(original.frames) - 2)]
            from_query = await resume(http, "r", original.frames[20].id, query=True)
            whole = await resume(http, "r", None)

    full = frames(original)
    assert full[-1] == (None, "[DONE]")
    assert frames(live[0]) == full[1:]
    assert frames(live[1]) == full[4:]
    assert frames(ended[0]) == full[1:]
    assert frames(ended[1]) == full[11:]
    assert frames(ended[2]) == [(None, "[DONE]")]
    assert frames(from_query) == full[21:]
    assert frames(whole) == full


async def test_resume_after_a_restart_rebuilds_the_same_frames(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(ai_echo_delay_ms=0)
    with serve(settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            _, original = await post_stream(http, data={**FORM, "id_task": "kept", "text": "one two three"})
            _, later = await post_stream(http, data={**FORM, "id_task": "kept", "text": "four five"})
    with serve(settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            whole = await resume(http, "kept", None)
            tail = await resume(http, "kept", later.frames[2].id)
            older_run = await resume(http, "kept", original.frames[3].id)

    assert frames(whole) == frames(later)
    assert frames(tail) == frames(later)[3:]
    assert frames(older_run) == frames(later), "an id of an earlier run replays the latest run whole"


async def test_resume_errors(client: httpx.AsyncClient) -> None:
    await client.post("/tasks/agent-1", data={"id_team": "team-1", "text": "x", "id_task": "fresh"})
    await post_stream(client, data={**FORM, "id_task": "done", "text": "hi"})
    sse = {"Accept": "text/event-stream"}

    no_run = await client.get("/tasks/agent-1/fresh/stream", headers=sse)
    malformed = await client.get("/tasks/agent-1/done/stream", headers={**sse, "Last-Event-ID": "nonsense"})
    unknown = await client.get("/tasks/agent-1/done/stream", headers={**sse, "Last-Event-ID": "abcdef:3"})
    missing = await client.get("/tasks/agent-1/nope/stream", headers=sse)
    other_team = await client.get("/tasks/agent-1/done/stream", headers=sse, params={"id_team": "team-2"})
    json_only = await client.get("/tasks/agent-1/done/stream", headers={"Accept": "application/json"})

    assert (no_run.status_code, no_run.json()["error"]) == (409, "no_active_run")
    assert (malformed.status_code, malformed.json()["field"]) == (400, "Last-Event-ID")
    assert (unknown.status_code, unknown.json()["error"]) == (409, "unknown_event_id")
    assert missing.status_code == 404
    assert other_team.status_code == 404
    assert json_only.status_code == 406


@pytest.mark.parametrize("policy", ["continue", "interrupt"])
async def test_a_client_that_goes_away(settings_factory, policy: str) -> None:  # type: ignore[no-untyped-def]
    with serve(settings_factory(ai_echo_delay_ms=30, stream_on_disconnect=policy)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            async with http.stream("POST", "/messages", data={**FORM, "id_task": "gone", "text": WORDS}) as response:
                got = 0
                async for chunk in response.aiter_raw():
                    got += chunk.count(b"data: ")
                    if got >= 4:
                        break
            for _ in range(200):
                task = (await http.get("/tasks/agent-1/gone")).json()
                response_json = task["content"][0]["response"]
                if response_json["event"] is not None:
                    break
                await asyncio.sleep(0.05)

    if policy == "continue":
        assert response_json["is_finished"] is True
        assert response_json["text"] == "You said: " + WORDS
    else:
        assert response_json["is_interrupted"] is True
        assert response_json["reason"] == "client disconnected"
        assert 0 < len(response_json["text"]) < len("You said: " + WORDS)


async def test_double_texting_interrupt_policy_replaces_the_running_reply(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with serve(settings_factory(ai_echo_delay_ms=30, stream_double_text="interrupt")) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            first = Stream()
            async with http.stream("POST", "/messages", data={**FORM, "id_task": "dt", "text": WORDS}) as response:
                reader = asyncio.create_task(parse(response.aiter_raw(), first))
                while len(first.frames) < 3:
                    await asyncio.sleep(0.01)
                _, second = await post_stream(http, data={**FORM, "id_task": "dt", "text": "newer"})
                await reader
            task = (await http.get("/tasks/agent-1/dt")).json()

    assert first.events[-1] == {"event": "interrupted", "reason": "replaced by a newer message"}
    assert second.text == "You said: newer"
    assert [t["response"]["event"] for t in task["content"]] == ["interrupted", "finished"]
    interrupted_text = task["content"][0]["response"]["text"]
    assert interrupted_text.startswith("You said:")
    assert interrupted_text == first.text


async def test_fifty_concurrent_streams_are_all_stored(client: httpx.AsyncClient) -> None:
    async def one(i: int) -> str:
        _, stream = await post_stream(client, data={**FORM, "id_task": f"c{i}", "text": f"message number {i}"})
        assert stream.frames[-1] == Frame(None, "[DONE]")
        return stream.text

    texts = await asyncio.gather(*(one(i) for i in range(50)))

    assert texts == [f"You said: message number {i}" for i in range(50)]
    listed = (await client.get("/tasks/agent-1", params={"limit": 100})).json()
    assert {t["id_task"]: t["content"][0]["response"]["text"] for t in listed} == {
        f"c{i}": f"You said: message number {i}" for i in range(50)
    }


@pytest.fixture
def process_factory(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.slow
async def test_kill_9_mid_stream_then_restart(tmp_path: Path, process_factory: list[ServerProcess]) -> None:
    env = {"AI_ECHO_DELAY_MS": "40", "STREAM_PERSIST_INTERVAL_MS": "100"}
    server = ServerProcess(tmp_path, **env).start()
    process_factory.append(server)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        http.stream("POST", "/messages", data={**FORM, "id_task": "crash", "text": WORDS}) as response,
    ):
        seen = 0
        async for chunk in response.aiter_raw():
            seen += chunk.count(b"text-chunk")
            if seen >= 8:
                break
        await asyncio.sleep(0.3)
        server.signal(signal.SIGKILL)
        server.wait()
    again = ServerProcess(tmp_path, **env)
    again.port, again.url = server.port, server.url
    again.env["WEB_SERVER_PORT"] = str(server.port)
    process_factory.append(again.start())
    async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
        task = (await http.get("/tasks/agent-1/crash")).json()
        replay = await resume(http, "crash", None)

    [thread] = task["content"]
    assert thread["request"]["text"] == WORDS
    response_json = thread["response"]
    assert response_json["is_interrupted"] is True
    assert response_json["reason"] == "server restarted"
    assert response_json["text"].startswith("You said: word0")
    assert replay.events[-1] == {"event": "interrupted", "reason": "server restarted"}


@pytest.mark.slow
async def test_sigterm_lets_short_replies_finish_and_interrupts_long_ones(
    tmp_path: Path, process_factory: list[ServerProcess]
) -> None:
    server = ServerProcess(tmp_path, AI_ECHO_DELAY_MS="100", SHUTDOWN_GRACE_S="2").start()
    process_factory.append(server)
    long_text = " ".join(f"w{i}" for i in range(200))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        long_result, short_result = Stream(), Stream()

        async def stream(id_task: str, text: str, into: Stream) -> None:
            async with http.stream("POST", "/messages", data={**FORM, "id_task": id_task, "text": text}) as response:
                await parse(response.aiter_raw(), into)

        streams = [
            asyncio.create_task(stream("long", long_text, long_result)),
            asyncio.create_task(stream("short", "a b c", short_result)),
        ]
        while len(long_result.frames) < 2 or len(short_result.frames) < 2:
            await asyncio.sleep(0.01)
        server.signal(signal.SIGTERM)
        await asyncio.gather(*streams)
        assert server.wait() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    again = ServerProcess(tmp_path)
    again.env["WEB_SERVER_PORT"] = str(again.port)
    process_factory.append(again.start())
    async with httpx.AsyncClient(base_url=again.url) as http:
        stored = (await http.get("/tasks/agent-1/long")).json()["content"][0]["response"]

    assert short_result.events[-1] == {"event": "finished"}
    assert short_result.frames[-1].data == "[DONE]"
    assert long_result.events[-1] == {"event": "interrupted", "reason": "server shutting down"}
    assert long_result.frames[-1].data == "[DONE]"
    assert stored["is_interrupted"] is True
    assert stored["text"] == long_result.text
