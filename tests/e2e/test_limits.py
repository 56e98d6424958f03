"""Size limits answer 413 as soon as they are passed, on both mounts, leaving no blob and no task behind."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from entrypoints.settings import Settings
from tests.e2e.conftest import LiveServer
from tests.e2e.shared import files_of, module_client, module_server, new_agent

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000
KIB = 1024
FORM = {"id_team_agent": "agent-1", "id_team": "team-1", "id_task": "t1", "text": "hello"}
LIMITS = {"max_upload_bytes": 64 * KIB, "max_request_bytes": 256 * KIB, "max_files": 3, "max_text_bytes": KIB}

server = module_server("limits", **LIMITS)
client = module_client()


@pytest.fixture
def agent() -> str:
    return new_agent()


async def assert_nothing_kept(http: httpx.AsyncClient, server: LiveServer, agent: str) -> None:
    assert files_of(server.settings, agent) == []
    assert (await http.get(f"/tasks/{agent}")).json() == []


def png(size: int) -> bytes:
    return PNG[:8] + b"\x00" * (size - 8)


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
@pytest.mark.parametrize(
    ("files", "data", "field", "detail"),
    [
        ([("images", ("big.png", png(64 * KIB + 1), "image/png"))], FORM, "images", "big.png is larger than 65536"),
        (
            [
                ("images", ("ok.png", png(1000), "image/png")),
                ("documents", ("big.txt", b"a" * (65 * KIB), "text/plain")),
            ],
            FORM,
            "documents",
            "big.txt is larger than 65536",
        ),
        ([("images", (f"{i}.png", png(100), "image/png")) for i in range(4)], FORM, "images", "more than 3 files"),
        ([("images", (f"{i}.png", png(60 * KIB), "image/png")) for i in range(5)], FORM, None, "larger than 262144"),
        ([], {**FORM, "text": "x" * (KIB + 1)}, "text", "text is longer than 1024"),
        ([("images", ("ok.png", png(100), "image/png"))], {**FORM, "text": "é" * 513}, "text", "longer than 1024"),
    ],
)
async def test_each_limit_answers_413_and_keeps_nothing(
    client: httpx.AsyncClient,
    server: LiveServer,
    agent: str,
    prefix: str,
    files: list[tuple[str, tuple[str, bytes, str]]],
    data: dict[str, str],
    field: str | None,
    detail: str,
) -> None:
    response = await client.post(f"{prefix}/messages", data={**data, "id_team_agent": agent}, files=files)

    body = response.json()
    assert response.status_code == 413, body
    assert body["error"] == "payload_too_large" and detail in body["detail"]
    assert body.get("field") == field
    assert body["request_id"] == response.headers["x-request-id"]
    await assert_nothing_kept(client, server, agent)


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
async def test_the_text_limit_holds_for_urlencoded_forms_and_task_creation(
    client: httpx.AsyncClient, agent: str, prefix: str
) -> None:
    encoded = await client.post(f"{prefix}/messages", data={**FORM, "id_team_agent": agent, "text": "x" * (KIB + 1)})
    created = await client.post(f"{prefix}/tasks/{agent}", data={"id_team": "team-1", "text": "y" * (KIB + 1)})
    at_limit = await client.post(f"{prefix}/tasks/{agent}", data={"id_team": "team-1", "text": "y" * KIB})

    assert (encoded.status_code, encoded.json()["field"]) == (413, "text")
    assert (created.status_code, created.json()["field"]) == (413, "text")
    assert at_limit.status_code == 201


def test_the_default_text_limit_is_at_least_one_mib() -> None:
    assert Settings(_env_file=None).max_text_bytes >= 1024 * 1024


async def chunked_upload(url: str, agent: str, *, total: int, path: str = "/messages") -> tuple[bytes, int]:
    """POST a chunked multipart upload of `total` file bytes; stop sending once the answer comes.

    Returns the answer's head and how many bytes had been sent by then."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n"
    ).encode()
    writer.write(head)
    answer = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    sent = 0

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    values = {**FORM, "id_team_agent": agent}
    fields = "".join(f'--XyZ\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in values.items())
    writer.write(chunk(fields.encode()))
    writer.write(chunk(b'--XyZ\r\nContent-Disposition: form-data; name="videos"; filename="huge.mp4"\r\n\r\n'))
    block = b"\x00\x00\x00\x18ftypisom" + b"\x00" * (64 * KIB - 12)
    try:
        while sent < total and not answer.done():
            writer.write(chunk(block))
            await writer.drain()
            sent += len(block)
            await asyncio.sleep(0)
        result = await asyncio.wait_for(answer, timeout=10)
    finally:
        writer.close()
        answer.cancel()
    return result, sent


@pytest.mark.parametrize("path", ["/messages", "/api/v1/messages"])
async def test_a_huge_chunked_upload_is_cut_off_right_after_the_limit(
    client: httpx.AsyncClient, server: LiveServer, agent: str, path: str
) -> None:
    head, sent = await chunked_upload(server.url, agent, total=200 * 1024 * KIB, path=path)

    assert head.startswith(b"HTTP/1.1 413 ")
    assert sent < 16 * 1024 * KIB, f"the server read {sent} bytes before answering"
    await assert_nothing_kept(client, server, agent)


async def test_a_declared_content_length_over_the_request_limit_is_refused_unread(server: LiveServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /api/v1/messages HTTP/1.1\r\nHost: {host}\r\nContent-Length: {1024 * KIB}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)  # no body byte was sent
    finally:
        writer.close()

    assert head.startswith(b"HTTP/1.1 413 ")
