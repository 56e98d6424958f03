"""Upload names are made safe to keep and to serve back (more cases than tests/unit/test_forms.py)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoints.forms import MAX_NAME_CHARS, clean_filename
from entrypoints.routes.files import content_disposition


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("..", "fallback"),
        ("../", "fallback"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/etc/passwd", "passwd"),
        ("a/b/../c.txt", "c.txt"),
        ("%2e%2e%2fsecret.txt", "%2e%2e%2fsecret.txt"),  # kept as text: never decoded, never a path
        ("report\u202egnp.exe", "reportgnp.exe"),  # right-to-left override (a format character) dropped
        ("zero\u200bwidth.txt", "zerowidth.txt"),
        ("nul\x00byte.png", "nulbyte.png"),
        ("tab\there.png", "tabhere.png"),
        ("del\x7f.png", "del.png"),
        ("c1\x85control.png", "c1control.png"),
        ("   spaced.png   ", "spaced.png"),
        ("    ", "fallback"),
        (". .hidden", "hidden"),
        ("x" * 198 + " " + "y" * 40, "x" * 198),
        ("cafe\u0301.txt", "café.txt"),  # NFD becomes NFC
        ("x" * 500, "x" * (MAX_NAME_CHARS - 1)),
        ("x" * 300 + "." + "y" * 40, "x" * (MAX_NAME_CHARS - 17) + "." + "y" * 16),
        ('quote"semi;colon.png', 'quote"semi;colon.png'),
        ("emoji 🐱.png", "emoji 🐱.png"),
    ],
)
def test_more_file_name_edge_cases(raw: str, clean: str) -> None:
    assert clean_filename(raw, "fallback") == clean


@given(st.text(max_size=600))
@settings(max_examples=100, deadline=None)
def test_any_name_comes_out_short_flat_and_printable(raw: str) -> None:
    name = clean_filename(raw, "fallback")

    assert 0 < len(name) <= MAX_NAME_CHARS
    assert "/" not in name and "\\" not in name
    assert not name.startswith(".")
    assert name == name.strip()
    assert all(unicodedata.category(c)[0] != "C" for c in name)
    header = content_disposition(name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    ascii_part = header.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in ascii_part and ";" not in ascii_part and "\\" not in ascii_part


def test_content_disposition_keeps_the_real_name_in_filename_star() -> None:
    header = content_disposition('ré"sumé;.pdf')

    assert header == "attachment; filename=\"r__sum__.pdf\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9%3B.pdf"
