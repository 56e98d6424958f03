"""The prompt of a conversation title and the cleaning of the model's answer."""

from __future__ import annotations

import re

MAX_TITLE_CHARS = 80
PROMPT_CHARS = 2000
_QUOTES = " \t\"'`*#_\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e"
_END = ".!?:;,\u3002\uff01\uff1f\u2026"


def title_prompt(text: str) -> str:
    return (
        "Write a short title, at most 6 words, for a conversation that starts with the message below. "
        "Write it in the language of the message. Answer with the title only: no quotes, no final "
        "punctuation.\n\nMessage:\n" + text[:PROMPT_CHARS]
    )


def clean_title(answer: str) -> str | None:
    """The first line of the answer without a "Title:" label, quotes or end punctuation, capped."""
    line = next((line for line in answer.splitlines() if line.strip()), "")
    line = re.sub(r"^\s*(title|titre|título|titel|titolo)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = " ".join(line.split()).strip(_QUOTES).rstrip(_END).strip(_QUOTES)
    if len(line) > MAX_TITLE_CHARS:
        line = line[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return line or None
