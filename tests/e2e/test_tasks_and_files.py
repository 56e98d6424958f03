"""Task routes, files and interrupts over real HTTP."""

from __future__ import annotations

import asyncio

import httpx

from tests.e2e.conftest import post_stream, serve
from tests.sse import parse

FORM = {"id_team_agent": "agent-1", "id_team": "team-1", "text": "hello"}


async def test_create_then_message_answers_the_first_request(client: httpx.AsyncClient) -> None:
    created = await client.post("/tasks/agent-1", data={"id_team": "team-1", "text": "plan my trip", "id_task": "trip"})

    assert created.status_code == 201
    body = created.json()
    assert body["id_task"] == "trip" and body["title"] == "plan my trip"
    assert body["content"][0]["request"]["text"] == "plan my trip"
    assert body["content"][0]["response"] is None

    _, stream = await post_stream(client, data={**FORM, "id_task": "trip", "text": "plan my trip"})
    task = (await client.get("/tasks/agent-1/trip")).json()

    assert stream.text == "You said: plan my trip"
    [thread] = task["content"]
    assert thread["response"]["text"] == "You said: plan my trip"


async def test_create_validates_and_refuses_a_taken_id(client: httpx.AsyncClient) -> None:
    assert (await client.post("/tasks/agent-1", data={"id_team": "t", "text": ""})).status_code == 400
    assert (await client.post("/tasks/agent-1", data={"text": "x"})).json()["field"] == "id_team"
    assert (await client.post("/tasks/agent-1", data={"id_team": "t", "text": "x", "id_task": "k"})).status_code == 201
    taken = await client.post("/tasks/agent-1", data={"id_team": "t", "text": "x", "id_task": "k"})
    assert taken.status_code == 409


async def test_patch_renames_and_redrives(client: httpx.AsyncClient) -> None:
    await client.post("/tasks/agent-1", data={"id_team": "t", "text": "x", "id_task": "p"})

    renamed = await client.patch("/tasks/agent-1/p", json={"title": "  New name  ", "driver": "user"})
    bad_driver = await client.patch("/tasks/agent-1/p", json={"driver": "robot"})
    empty = await client.patch("/tasks/agent-1/p", json={})
    missing = await client.patch("/tasks/agent-1/nope", json={"title": "x"})

    assert renamed.status_code == 200
    assert (renamed.json()["title"], renamed.json()["driver"]) == ("New name", "user")
    assert bad_driver.status_code == 400 and bad_driver.json()["field"] == "driver"
    assert empty.status_code == 400
    assert missing.status_code == 404


async def test_list_pages_with_a_link_header(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await client.post("/tasks/agent-1", data={"id_team": "t", "text": f"task {i}", "id_task": f"k{i}"})

    first = await client.get("/tasks/agent-1", params={"limit": 2, "include_content": "false"})
    assert [t["id_task"] for t in first.json()] == ["k4", "k3"]
    assert all(t["content"] == [] for t in first.json())
    seen = [t["id_task"] for t in first.json()]
    url = first.links["next"]["url"]
    while url:
        page = await client.get(url)
        seen += [t["id_task"] for t in page.json()]
        url = page.links.get("next", {}).get("url")
    assert seen == ["k4", "k3", "k2", "k1", "k0"]
    assert (await client.get("/tasks/agent-1", params={"cursor": "garbage!"})).status_code == 400


async def test_uploads_are_stored_listed_and_served(client: httpx.AsyncClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    files = [("images", ("../../etc/cat.png", png, "image/png")), ("documents[]", ("notes.txt", b"hi", "text/plain"))]
    _, stream = await post_stream(client, data={**FORM, "id_task": "files"}, files=files)

    assert stream.text == "You said: hello Attachments: cat.png (image), notes.txt (document)"
    request = (await client.get("/tasks/agent-1/files")).json()["content"][0]["request"]
    [image] = request["images"]
    assert (image["name"], image["type"], image["size"], image["mime_type"]) == (
        "cat.png",
        "image",
        len(png),
        "image/png",
    )
    assert image["base64"] is None
    served = await client.get(image["url"])
    assert served.status_code == 200 and served.content == png
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert 'filename="cat.png"' in served.headers["content-disposition"]
    file_id = image["url"].rsplit("/", 1)[1]
    assert (await client.get(f"/files/agent-2/{file_id}")).status_code == 404
    assert (await client.get(f"/api/v1/files/agent-1/{file_id}")).status_code == 200

    deleted = await client.delete("/tasks/agent-1/files")
    assert deleted.status_code == 200
    assert (await client.get("/tasks/agent-1/files")).status_code == 404
    assert (await client.get(image["url"])).status_code == 404
    assert (await client.delete("/tasks/agent-1/files")).status_code == 404


async def test_a_failed_message_leaves_no_file_behind(client: httpx.AsyncClient, live) -> None:  # type: ignore[no-untyped-def]
    await post_stream(client, data={**FORM, "id_task": "owned"})
    files = [("images", ("a.png", b"\x89PNG\r\n\x1a\n....", "image/png"))]

    response = await client.post("/messages", data={**FORM, "id_task": "owned", "id_team": "thief"}, files=files)

    assert response.status_code == 404
    stored = [p for p in (live.settings.data_dir / "files").rglob("*") if p.is_file()]
    assert stored == []


async def test_interrupt_stops_the_reply_for_every_listener(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with serve(settings_factory(ai_echo_delay_ms=100)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            text = " ".join(f"w{i}" for i in range(100))
            async with http.stream("POST", "/messages", data={**FORM, "id_task": "stop", "text": text}) as response:
                chunks = response.aiter_raw()
                first = await chunks.__anext__()
                assert b"started" in first
                busy = await http.post("/messages", data={**FORM, "id_task": "stop"})
                stopped = await http.post("/tasks/agent-1/stop/interrupt")
                again = await http.post("/tasks/agent-1/stop/interrupt")
                stream = await parse(chunks)
            await asyncio.sleep(0.05)
            idle = await http.post("/tasks/agent-1/stop/interrupt")
            task = (await http.get("/tasks/agent-1/stop")).json()

    assert busy.status_code == 409 and busy.json()["error"] == "task_busy"
    assert stopped.status_code == 202
    assert again.status_code in (202, 409)
    assert stream.events[-1] == {"event": "interrupted", "reason": "interrupted by the user"}
    assert stream.frames[-1].data == "[DONE]"
    assert idle.status_code == 409
    response_json = task["content"][0]["response"]
    assert response_json["is_interrupted"] is True and response_json["reason"] == "interrupted by the user"
    assert len(task["content"]) == 1


async def test_docs_are_served_and_document_each_route_once(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/messages" in paths and "/tasks/{id_team_agent}/{id_task}" in paths
    assert not any(p.startswith("/api/v1") for p in paths)


async def test_a_bad_id_after_the_files_is_a_400_and_keeps_nothing(client: httpx.AsyncClient, live) -> None:  # type: ignore[no-untyped-def]
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    body = (
        b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        + png
        + b'\r\n--b\r\nContent-Disposition: form-data; name="id_team_agent"\r\n\r\nbad/agent'
        + b'\r\n--b\r\nContent-Disposition: form-data; name="id_team"\r\n\r\nteam-1'
        + b'\r\n--b\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello\r\n--b--\r\n'
    )

    response = await client.post("/messages", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})

    assert response.status_code == 400
    assert response.json()["field"] == "id_team_agent"
    assert [p for p in (live.settings.data_dir / "files").rglob("*") if p.is_file()] == []
