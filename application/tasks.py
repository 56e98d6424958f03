"""Task use cases: create, read (with live replies), list, rename, delete."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from application.clock import new_id, utcnow
from application.conversation import Conversation
from application.titles import clean_title, fallback_title
from domain.errors import InvalidInput, NoActiveRun, TaskNotFound
from domain.model import Driver, MessageRequest, Task, TaskKey, Thread
from domain.ports import BlobStore, TaskPage, TaskStore

log = logging.getLogger(__name__)


class Tasks:
    """CRUD over tasks. Reads show a running reply as it is now; team mismatches read as not found."""

    def __init__(
        self,
        *,
        store: TaskStore,
        blobs: BlobStore,
        conversation: Conversation,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._conversation = conversation
        self._now = now

    async def create(self, *, id_team_agent: str, id_team: str, text: str, id_task: str | None = None) -> Task:
        """A task whose first thread is `text`, unanswered until a message with the same text comes."""
        now = self._now()
        id_task = id_task or new_id()
        request = MessageRequest(
            id_team_agent=id_team_agent, id_team=id_team, id_task=id_task, text=text, created_at=now
        )
        task = Task(
            id_team_agent=id_team_agent,
            id_task=id_task,
            id_team=id_team,
            title=fallback_title(text),
            driver=Driver.AUTO,
            created_at=now,
            updated_at=now,
            threads=[Thread(id_thread=new_id(), request=request)],
        )
        await self._store.add_task(task=task)
        self._conversation.remember(task.key)
        self._conversation.spawn_title(task.key, text, task.title)
        return task

    async def get(self, *, key: TaskKey, id_team: str | None = None, include_content: bool = True) -> Task:
        task = await self._store.get_task(key=key, include_content=include_content)
        if task is None or (id_team is not None and task.id_team != id_team):
            raise TaskNotFound()
        return self._with_live_reply(task)

    async def list(self, *, id_team_agent: str, page: TaskPage, id_team: str | None = None) -> list[Task]:
        tasks = await self._store.list_tasks(id_team_agent=id_team_agent, page=page)
        if id_team is not None:
            tasks = [t for t in tasks if t.id_team == id_team]
        return [self._with_live_reply(t) for t in tasks]

    async def update(
        self,
        *,
        key: TaskKey,
        id_team: str | None = None,
        title: str | None = None,
        driver: Driver | None = None,
    ) -> Task:
        if title is not None:
            title = clean_title(title)
            if not title:
                raise InvalidInput("title", "must not be empty")
        await self.get(key=key, id_team=id_team, include_content=False)
        task = await self._store.update_task(key=key, title=title, driver=driver)
        if task is None:
            raise TaskNotFound()
        return self._with_live_reply(task)

    async def delete(self, *, key: TaskKey, id_team: str | None = None) -> None:
        """Stop a running reply, delete the task with its threads, then its files."""
        await self.get(key=key, id_team=id_team, include_content=False)
        run = self._conversation.live(key)
        with contextlib.suppress(NoActiveRun):  # the run may live on another replica
            await self._conversation.interrupt(key=key, reason="task deleted")
        if run is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.done.wait(), timeout=10)
        deleted = await self._store.delete_task(key=key)
        if deleted is None:
            raise TaskNotFound()
        for thread in deleted.threads:
            attachments = thread.request.attachments + (thread.response.attachments if thread.response else ())
            for attachment in attachments:
                if attachment.id_file:
                    try:
                        await self._blobs.delete(id_team_agent=key.id_team_agent, id_file=attachment.id_file)
                    except Exception:
                        log.warning("could not delete file %s", attachment.id_file, exc_info=True)

    def _with_live_reply(self, task: Task) -> Task:
        run = self._conversation.live(task.key)
        if run is None or not task.threads:
            return task
        for thread in reversed(task.threads):
            if thread.id_thread == run.id_thread:
                thread.response = run.builder.snapshot()
                break
        return task
