"""Uploads are typed by their bytes (415 naming the file otherwise) and served back inert."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import LiveServer, post_stream
from tests.e2e.shared import files_of, module_client, module_server, new_agent

server = module_server("media")
client = module_client()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomavc1" + b"\x00" * 64
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" * 16
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"0" * 64


@pytest.fixture
def agent() -> str:
    return new_agent()


def form(agent: str, **more: str) -> dict[str, str]:
    return {"id_team_agent": agent, "id_team": "team-1", "text": "look", **more}


@pytest.mark.parametrize(
    ("field", "name", "data", "declared", "stored_as"),
    [
        ("images", "photo.png", JPEG, "image/png", "image/jpeg"),
        ("images", "photo", PNG, "application/octet-stream", "image/png"),
        ("videos", "clip.bin", MP4, "application/octet-stream", "video/mp4"),
        ("audios", "voice.mp4", MP4, "video/mp4", "audio/mp4"),
        ("audios", "song.mp3", MP3, "audio/mpeg", "audio/mpeg"),
        ("audios", "memo.webm", WEBM, "video/webm", "audio/webm"),
        ("documents", "paper.pdf", PDF, "application/pdf", "application/pdf"),
        ("documents", "notes.md", "# Notes\n— ünïcode\n".encode(), "text/markdown", "text/markdown"),
        ("documents", "table.csv", b"a,b\n1,2\n", "text/csv", "text/csv"),
        ("documents", "page.html", b"<!doctype html><p>hi", "application/octet-stream", "text/html"),
    ],
)
async def test_the_stored_type_is_the_sniffed_one(
    client: httpx.AsyncClient, agent: str, field: str, name: str, data: bytes, declared: str, stored_as: str
) -> None:
    response, stream = await post_stream(
        client, data=form(agent, id_task="typed"), files=[(field, (name, data, declared))]
    )

    assert response.status_code == 200 and stream.events[-1] == {"event": "finished"}
    request = (await client.get(f"/tasks/{agent}/typed")).json()["content"][0]["request"]
    [upload] = request[field]
    assert upload["mime_type"] == stored_as
    served = await client.get(upload["url"])
    assert served.content == data
    assert served.headers["content-type"].split(";")[0] == stored_as
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in served.headers["content-security-policy"]


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
@pytest.mark.parametrize(
    ("field", "name", "data", "declared", "says"),
    [
        ("images", "cat.png", MP4, "image/png", "cat.png is video/mp4 (sent as image/png), which images does not"),
        ("images", "anim.gif", b"GIF89a" + b"\x00" * 20, "image/gif", "anim.gif is image/gif, which images"),
        ("images", "notes.png", b"just some text", "image/png", "notes.png is text/plain"),
        ("videos", "song.mp4", MP3, "video/mp4", "song.mp4 is audio/mpeg"),
        ("audios", "photo.wav", PNG, "audio/wav", "photo.wav is image/png"),
        ("documents", "blob.txt", bytes(range(256)), "text/plain", "blob.txt: unrecognised file type"),
        ("documents", "book.docx", b"PK\x03\x04" + b"\x00" * 30, "application/msword", "book.docx is application/zip"),
        ("documents", "latin1.txt", b"caf\xe9 cr\xe8me", "text/plain", "latin1.txt: unrecognised file type"),
        ("documents", "empty.txt", b"", "text/plain", "empty.txt is empty"),
    ],
)
async def test_a_type_the_field_does_not_take_gets_415_naming_the_file(
    client: httpx.AsyncClient,
    server: LiveServer,
    agent: str,
    prefix: str,
    field: str,
    name: str,
    data: bytes,
    declared: str,
    says: str,
) -> None:
    files = [("images", ("fine.png", PNG, "image/png")), (field, (name, data, declared))]

    response = await client.post(f"{prefix}/messages", data=form(agent, id_task="refused"), files=files)

    assert response.status_code == 415
    body = response.json()
    assert (body["error"], body["field"]) == ("unsupported_media_type", field)
    assert says in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert files_of(server.settings, agent) == [], "the file accepted before the refused one is removed too"
    assert (await client.get(f"/tasks/{agent}/refused")).status_code == 404


async def test_a_file_sent_before_the_ids_is_sniffed_too(client: httpx.AsyncClient) -> None:
    body = (
        b'--B\r\nContent-Disposition: form-data; name="images"; filename="early.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + MP4 + b"\r\n"
        b'--B\r\nContent-Disposition: form-data; name="id_team_agent"\r\n\r\nagent-1\r\n'
        b'--B\r\nContent-Disposition: form-data; name="id_team"\r\n\r\nteam-1\r\n'
        b'--B\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--B--\r\n'
    )
    headers = {"Content-Type": "multipart/form-data; boundary=B"}

    refused = await client.post("/messages", content=body, headers=headers)
    accepted = await client.post("/messages", content=body.replace(MP4, PNG), headers=headers)

    assert refused.status_code == 415 and "early.png is video/mp4" in refused.json()["detail"]
    assert accepted.status_code == 200


async def test_files_of_a_message_without_id_task_know_their_task(
    client: httpx.AsyncClient, server: LiveServer, agent: str
) -> None:
    _, stream = await post_stream(client, data=form(agent), files=[("images", ("a.png", PNG, "image/png"))])
    id_task = stream.events[0]["id_task"]

    request = (await client.get(f"/tasks/{agent}/{id_task}")).json()["content"][0]["request"]
    id_file = request["images"][0]["url"].rsplit("/", 1)[1]
    info = await server.services.blobs.info(id_team_agent=agent, id_file=id_file)
    assert info is not None and info.id_task == id_task
