from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory_runs import InMemoryRunRegistry
from application.claims import CLAIM_AFTER_INSERT_S
from application.conversation import Conversation
from application.tasks import Tasks
from domain.model import MessageRequest
from tests.fakes import FakeBlobStore, FakeTaskStore, ScriptedLLM


class World:
    def __init__(
        self,
        persist_interval_s: float = 0.05,
        persist_max_per_s: float = 100.0,
        double_text: str = "reject",
        store: FakeTaskStore | None = None,
        registry: InMemoryRunRegistry | None = None,
        clock_skew: timedelta = timedelta(0),
        claim_wait_s: float = CLAIM_AFTER_INSERT_S,
        early_model_start: bool = True,
    ) -> None:
        self.store = store or FakeTaskStore()
        self.blobs = FakeBlobStore()
        self.llm = ScriptedLLM()
        self.registry = registry or InMemoryRunRegistry()
        self.conversation = Conversation(
            store=self.store,
            llm=self.llm,
            blobs=self.blobs,
            registry=self.registry,
            persist_interval_s=persist_interval_s,
            persist_max_per_s=persist_max_per_s,
            double_text=double_text,
            now=lambda: datetime.now(UTC) + clock_skew,
            claim_wait_s=claim_wait_s,
            early_model_start=early_model_start,
        )
        self.tasks = Tasks(store=self.store, blobs=self.blobs, conversation=self.conversation)


@pytest.fixture
def world() -> World:
    return World()


def request(
    text: str = "hello world", *, id_task: str = "t1", id_team: str = "team", agent: str = "agent"
) -> MessageRequest:
    return MessageRequest(
        id_team_agent=agent, id_team=id_team, id_task=id_task, text=text, created_at=datetime.now(UTC)
    )
