"""`python -m bench.ab ROOT_A ROOT_B [--db sqlite|postgres] [--mode messages|streams] ...`: two versions side by side.

On a shared machine one run's CPU figures move by 10-30% from minute to minute, more than most changes gain.
This runs two checkouts of the service at once (e.g. `git worktree add /tmp/before <rev>` and this one), each
its own server process, and drives both in the same minute: in `messages` mode sequential clients send each
message to A and B in turn (server CPU per message, all threads and the event-loop thread alone); in `streams`
mode half of a scenario-2 load goes to each (CPU per event, lateness, time to `started`). Repeat with A and B
swapped: a difference that flips with the order is noise.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench import scenarios as sc
from bench.client import message_request, stream_once
from bench.servers import Server, reset_pg_database, run_loadgens
from bench.stats import pct


def thread_cpu_s(server: Server) -> float:
    """CPU seconds of the server's main (event-loop) thread."""
    assert server.proc is not None
    pid = server.proc.pid
    return next(t.user_time + t.system_time for t in psutil.Process(pid).threads() if t.id == pid)


async def _clients(servers: list[Server], messages: int, words: int, tag: str) -> None:
    async def client(c: int) -> None:
        for i in range(messages // 4):
            for server in servers if (i + c) % 2 else servers[::-1]:
                request = message_request(
                    "127.0.0.1", server.port, agent="ab", team="t", task=f"{tag}-{server.name}-{c}-{i}", words=words
                )
                result = await stream_once("127.0.0.1", server.port, request, timeout=60)
                if result.error is not None or result.status != 200:
                    raise RuntimeError(f"{server.name}: {result.status} {result.error}")

    await asyncio.gather(*(client(c) for c in range(4)))


def messages_mode(servers: list[Server], messages: int, words: int) -> dict[str, Any]:
    asyncio.run(_clients(servers, 200, words, "warm"))
    before = {s.name: (s.cpu_s(), thread_cpu_s(s)) for s in servers}
    asyncio.run(_clients(servers, messages, words, "m"))
    return {
        s.name: {
            "cpu_ms_per_message": round((s.cpu_s() - before[s.name][0]) * 1000 / messages, 3),
            "loop_thread_cpu_ms_per_message": round((thread_cpu_s(s) - before[s.name][1]) * 1000 / messages, 3),
        }
        for s in servers
    }


def streams_mode(servers: list[Server], streams: int, work: Path) -> dict[str, Any]:
    scale = sc.Scale("full")
    words, ramp, schedule_s = scale.s2_chunks - 2, scale.s2_ramp_s, scale.s2_chunks * scale.s2_delay_ms / 1000
    start_at = time.monotonic() + 1.5
    jobs = []
    for k, server in enumerate(servers):
        specs = [
            {
                "agent": "ab",
                "team": "t",
                "task": f"{server.name}-{i}",
                "words": words,
                "offset": (2 * i + k) * ramp / (2 * streams),
            }
            for i in range(streams)
        ]
        jobs += [sc._streams_job(server, specs[c::2], start_at, 120) for c in range(2)]
    before = {s.name: s.cpu_s() for s in servers}
    results = run_loadgens(jobs, work, "ab", timeout_s=240)
    out = {}
    for k, server in enumerate(servers):
        rows = [row for r in results[2 * k : 2 * k + 2] for row in r["rows"]]
        good = [row for row in rows if row[2] and not row[5]]
        events = sum(row[4] - 1 for row in good)
        late = [(row[2] - row[0] - schedule_s) * 1000 for row in good]
        first = [(row[1] - row[0]) * 1000 for row in good]
        out[server.name] = {
            "completed": f"{len(good)}/{len(rows)}",
            "cpu_us_per_event": round((server.cpu_s() - before[server.name]) * 1e6 / max(events, 1), 1),
            "lateness_p50_p99_ms": [round(pct(late, 50), 1), round(pct(late, 99), 1)],
            "started_p50_p99_ms": [round(pct(first, 50), 1), round(pct(first, 99), 1)],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root_a")
    parser.add_argument("root_b")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--mode", choices=["messages", "streams"], default="messages")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--words", type=int, default=1, help="words per message (its reply is words + 2 chunks)")
    parser.add_argument("--streams", type=int, default=500, help="streams per server in `streams` mode")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    db = None if args.db == "sqlite" else args.db
    if db:
        reset_pg_database()  # once: both servers share the database, each with its own task ids
    delay = 50 if args.mode == "streams" else 0
    servers = [
        Server(
            name,
            "real",
            work,
            db=db,
            delay_ms=delay,
            fresh_db=False,
            extra_env={"PYTHONPATH": str(Path(root).resolve())},
        )
        for name, root in (("a", args.root_a), ("b", args.root_b))
    ]
    try:
        for server in servers:
            server.start()
        if args.mode == "messages":
            out = messages_mode(servers, args.messages, args.words)
            ratio = out["b"]["loop_thread_cpu_ms_per_message"] / out["a"]["loop_thread_cpu_ms_per_message"]
            out["b/a event-loop thread"] = round(ratio, 3)
        else:
            for server in servers:
                sc._warm(server, work, server.name, streams=10)
            out = streams_mode(servers, args.streams, work)
    finally:
        for server in servers:
            server.stop()
    print(out)


if __name__ == "__main__":
    main()
