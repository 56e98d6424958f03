"""Task titles: an instant fallback from the first words, refined by the LLM in the background."""

from __future__ import annotations

import logging

from domain.model import TaskKey
from domain.ports import LLM, TaskStore

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 80
FALLBACK_WORDS = 8


def fallback_title(text: str) -> str:
    words = text.split()
    if not words:
        return "New task"
    title = " ".join(words[:FALLBACK_WORDS])
    if len(words) > FALLBACK_WORDS:
        title += "…"
    return clean_title(title) or "New task"


def clean_title(title: str) -> str:
    title = " ".join(title.split()).strip(" \"'`*#.")
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title


async def refine_title(*, store: TaskStore, llm: LLM, key: TaskKey, text: str, fallback: str) -> None:
    """Ask the LLM for a title and store it, unless the task was renamed (or deleted) meanwhile; never raises."""
    try:
        title = await llm.title(text=text)
        if not title:
            return
        task = await store.get_task(key=key, include_content=False)
        if task is not None and task.title == fallback:
            await store.update_task(key=key, title=title)
    except Exception:
        log.warning("could not make a title for task %s", key, exc_info=True)
