"""Task titles: an instant fallback from the first words, refined by the LLM in the background."""

from __future__ import annotations

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
