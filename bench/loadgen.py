"""The load generator: a separate process (`python -m bench.loadgen JOB.json OUT.json`) on uvloop.

A job is a JSON object with a "mode" (streams, background, samples, appends, gets, verify, upload), the
server's host and port, and its parameters; every loop is bounded in count and in time. Times are
CLOCK_MONOTONIC (`time.monotonic()`), shared by every process of the machine, so the runner can line
them up with its own samples of the server. The result goes to OUT.json with this process's CPU time,
so the report can show the client was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.client import BOUNDARY, KeepAlive, check_stream, expected_reply, message_request, stream_once


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def streams(job: dict[str, Any]) -> dict[str, Any]:
    """Many concurrent streams, each started at start_at + its offset; one row per stream."""
    host, port, timeout, keep = job["host"], job["port"], job["timeout_s"], job.get("check_body", False)
    late = time.monotonic() - job["start_at"]

    async def one(spec: dict[str, Any]) -> list[Any]:
        request = message_request(
            host, port, agent=spec["agent"], team=spec["team"], task=spec["task"], words=spec["words"]
        )
        await sleep_until(job["start_at"] + spec["offset"])
        result = await stream_once(host, port, request, timeout=timeout, keep=keep)
        if keep and result.error is None and result.body is not None:
            result.error = check_stream(bytes(result.body), spec["words"])
        return [*result.as_row(), result.nbytes]

    rows = await asyncio.gather(*(one(spec) for spec in job["streams"]))
    return {"rows": rows, "late_start_s": late}


async def background(job: dict[str, Any]) -> dict[str, Any]:
    """Keep `count` streams open until `until` (or `max_total` streams): the load behind scenario 3."""
    host, port, words, prefix = job["host"], job["port"], job["words"], job["prefix"]
    until, budget = job["until"], job["max_total"]
    counter = {"started": 0, "ok": 0, "errors": 0}

    async def lane(lane_id: int) -> None:
        await sleep_until(job["start_at"] + lane_id * job.get("spread_s", 0.0) / max(job["count"], 1))
        while time.monotonic() < until and counter["started"] < budget:
            n = counter["started"]
            counter["started"] += 1
            request = message_request(host, port, agent=job["agent"], team="team-1", task=f"{prefix}{n}", words=words)
            result = await stream_once(host, port, request, timeout=job["timeout_s"])
            counter["ok" if result.error is None else "errors"] += 1

    await asyncio.gather(*(lane(i) for i in range(job["count"])))
    return counter


async def samples(job: dict[str, Any]) -> dict[str, Any]:
    """Sequential messages: time from the request's last byte to the first SSE frame (`started`)."""
    host, port = job["host"], job["port"]
    await sleep_until(job["start_at"])
    rows = []
    for i in range(job["n"]):
        request = message_request(
            host, port, agent=job["agent"], team="team-1", task=f"{job['prefix']}{i}", words=job["words"]
        )
        result = await stream_once(host, port, request, timeout=job["timeout_s"], close_after_first=True)
        rows.append([result.t_sent, result.t_first, result.status, result.error])
        await asyncio.sleep(job["gap_s"])
    return {"rows": rows}


async def appends(job: dict[str, Any]) -> dict[str, Any]:
    """Sequential messages to existing tasks, read to the end: first frame and [DONE] times."""
    host, port = job["host"], job["port"]
    rows = []
    for spec in job["targets"]:
        request = message_request(
            host, port, agent=spec["agent"], team=spec["team"], task=spec["task"], words=spec["words"]
        )
        result = await stream_once(host, port, request, timeout=job["timeout_s"])
        rows.append([result.t_sent, result.t_first, result.t_done, result.status, result.error])
    return {"rows": rows}


async def gets(job: dict[str, Any]) -> dict[str, Any]:
    """Sequential GETs on one keep-alive connection: seconds per request, status, body size."""
    client = KeepAlive(job["host"], job["port"])
    rows = []
    deadline = time.monotonic() + job["timeout_s"]
    try:
        for path in job["paths"]:
            if time.monotonic() > deadline:
                break
            started = time.monotonic()
            status, body = await client.request("GET", path)
            rows.append([time.monotonic() - started, status, len(body)])
    finally:
        await client.close()
    return {"rows": rows}


async def verify(job: dict[str, Any]) -> dict[str, Any]:
    """Read back tasks and check each last reply is finished with the full echo text."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for spec in job["tasks"]:
        queue.put_nowait(spec)
    problems: list[str] = []
    checked = 0

    async def worker() -> None:
        nonlocal checked
        client = KeepAlive(job["host"], job["port"])
        try:
            while not queue.empty():
                spec = queue.get_nowait()
                status, body = await client.request("GET", f"/tasks/{spec['agent']}/{spec['task']}")
                checked += 1
                if status != 200:
                    problems.append(f"{spec['task']}: HTTP {status}")
                    continue
                content = orjson.loads(body)["content"]
                response = content[-1]["response"] if content else None
                if not response or not response.get("is_finished"):
                    problems.append(f"{spec['task']}: not finished")
                elif response.get("text") != expected_reply(spec["words"]):
                    problems.append(f"{spec['task']}: stored text differs")
        finally:
            await client.close()

    async with asyncio.timeout(job["timeout_s"]):
        await asyncio.gather(*(worker() for _ in range(job.get("concurrency", 8))))
    return {"checked": checked, "problems": problems[:20], "problem_count": len(problems)}


async def upload(job: dict[str, Any]) -> dict[str, Any]:
    """One multipart message with a big video streamed from a generator (Content-Length known upfront)."""
    host, port, size, chunk = job["host"], job["port"], job["size"], job["chunk"]
    fields = {"id_team_agent": job["agent"], "id_team": "team-1", "id_task": job["task"], "text": "describe this"}
    prefix = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    prefix += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="videos"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    suffix = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(prefix) + size + len(suffix)
    head = (
        f"POST /messages HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n"
        "Connection: close\r\nx-bench-words: 2\r\nx-bench-ids: a,t,x\r\n\r\n"
    ).encode()
    rng = random.Random(7)
    ftyp = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"  # an MP4's first box: services sniff
    block = ftyp + rng.randbytes(chunk - len(ftyp))

    def body() -> Any:
        yield head + prefix
        sent = 0
        while sent < size:
            piece = block if size - sent >= chunk else block[: size - sent]
            sent += len(piece)
            yield piece
        yield suffix

    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    write_error = None
    async with asyncio.timeout(job["timeout_s"]):
        try:
            for piece in body():
                writer.write(piece)
                await writer.drain()
        except ConnectionError as error:  # the server answered early (e.g. 413/415) and closed
            write_error = f"{type(error).__name__}: {error}"
        sent_at = time.monotonic()
        try:
            raw = await reader.read()  # Connection: close: read to EOF
        except ConnectionError:
            raw = b""
    done_at = time.monotonic()
    writer.close()
    text = raw.decode("latin-1")
    return {
        "t_start": started,
        "t_sent": sent_at,
        "t_done": done_at,
        "status": int(text.split(" ", 2)[1]) if text else 0,
        "done": "data: [DONE]" in text,
        "finished": '"event":"finished"' in text,
        "bytes": length,
        "write_error": write_error,
        "response_head": text[:300] if "data: [DONE]" not in text else "",
    }


MODES = {
    "streams": streams,
    "background": background,
    "samples": samples,
    "appends": appends,
    "gets": gets,
    "verify": verify,
    "upload": upload,
}


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    fds = raise_fd_limit()
    import uvloop

    started = time.monotonic()
    result = uvloop.run(MODES[job["mode"]](job))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["client"] = {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": time.monotonic() - started,
        "fd_limit": fds,
    }
    out.write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
