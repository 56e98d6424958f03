"""Internal failures reach the log with the request id, never the client: no exception text, SQL, paths or keys."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from adapters.memory_runs import InMemoryRunRegistry
from domain.events import TextChunk
from domain.model import Task, TaskKey
from entrypoints.bootstrap import compose
from entrypoints.settings import Settings
from tests.e2e.conftest import post_stream, serve
from tests.fakes import FakeBlobStore, FakeTaskStore, ScriptedLLM

SECRET = "SELECT api_key FROM tasks WHERE path = '/var/lib/agent/data/agent.db' -- sk-live-123"
LEAKS = ("SELECT", "/var/lib", "agent.db", "sk-live", "Traceback", "RuntimeError")


class BrokenStore(FakeTaskStore):
    async def get_task(self, *, key: TaskKey, include_content: bool = True) -> Task | None:
        if key.id_task.startswith("boom"):
            raise RuntimeError(SECRET)
        return await super().get_task(key=key, include_content=include_content)

    async def add_task_or_get(self, *, task: Task) -> Task | None:
        if task.id_task.startswith("boom"):
            raise RuntimeError(SECRET)
        return await super().add_task_or_get(task=task)


def assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text


@pytest.fixture
def services_factory(settings_factory: Callable[..., Settings]) -> Callable[..., object]:
    def make(llm: ScriptedLLM | None = None) -> object:
        settings = settings_factory()
        return settings, compose(
            settings=settings,
            store=BrokenStore(),
            llm=llm or ScriptedLLM([TextChunk("fine")]),
            blobs=FakeBlobStore(),
            registry=InMemoryRunRegistry(),
        )

    return make


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
async def test_an_internal_error_is_a_bare_500_with_the_request_id(
    services_factory, caplog: pytest.LogCaptureFixture, prefix: str
) -> None:  # type: ignore[no-untyped-def]
    settings, services = services_factory()
    with serve(settings, services) as server, caplog.at_level(logging.ERROR, logger="agent.http"):
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.get(f"{prefix}/tasks/agent-1/boom", headers={"X-Request-ID": "trace-me-1"})
            streamed = await http.post(
                f"{prefix}/messages", data={"id_team_agent": "a", "id_team": "t", "id_task": "boom2", "text": "hi"}
            )

    for answer in (response, streamed):
        assert answer.status_code == 500
        assert answer.json() == {
            "error": "internal_error",
            "detail": "internal server error",
            "request_id": answer.headers["x-request-id"],
        }
        assert_clean(answer.text)
        assert_clean(str(answer.headers))
    assert response.headers["x-request-id"] == "trace-me-1"
    logged = [r for r in caplog.records if "trace-me-1" in r.getMessage()]
    assert logged and logged[0].exc_info is not None and SECRET in str(logged[0].exc_info[1])


async def test_a_failure_inside_a_stream_is_a_generic_error_event(services_factory) -> None:  # type: ignore[no-untyped-def]
    settings, services = services_factory(ScriptedLLM([TextChunk("partial "), RuntimeError(SECRET)]))
    with serve(settings, services) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response, stream = await post_stream(
                http, data={"id_team_agent": "a", "id_team": "t", "id_task": "k", "text": "hi"}
            )
            stored = (await http.get("/tasks/a/k")).json()

    assert response.status_code == 200
    assert [e["event"] for e in stream.events] == ["started", "text-chunk", "error"]
    assert stream.events[-1]["error"] == "The reply failed because of an internal error"
    assert stream.frames[-1].data == "[DONE]"
    assert stored["content"][0]["response"]["error"] == "The reply failed because of an internal error"
    assert_clean(str(stream.frames))
    assert_clean(str(stored))
