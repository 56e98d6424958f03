from __future__ import annotations

import pytest

from adapters.memory_runs import InMemoryRunRegistry
from entrypoints.bootstrap import compose
from entrypoints.settings import Settings
from tests.fakes import FakeBlobStore, FakeTaskStore, ScriptedLLM
from tests.unit.conftest import World, request


@pytest.mark.parametrize("redis_url", ["", "redis://replicas:6379/0"])
async def test_with_replicas_no_model_starts_before_a_task_it_has_not_seen_is_read(redis_url: str) -> None:
    store, llm = FakeTaskStore(), ScriptedLLM()
    await World(store=store).tasks.create(id_team_agent="agent", id_team="team", text="first", id_task="t1")
    services = compose(
        settings=Settings(_env_file=None, redis_url=redis_url),
        store=store,
        llm=llm,
        blobs=FakeBlobStore(),
        registry=InMemoryRunRegistry(),
    )

    run, _ = await services.conversation.start(request("second"))
    await run.done.wait()

    histories = [[t.request.text for t in history] for history, _ in llm.calls]
    assert histories == ([["first"]] if redis_url else [[], ["first"]])
