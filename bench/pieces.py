"""`python -m bench.pieces`: what the fast pieces gain, each swapped for the stock one.

- uvicorn's event loop and HTTP parser: the real service (SQLite) under scenarios 1 and 2 with uvloop +
  httptools (uvicorn's `auto` choice, what the service runs), then the asyncio loop, then the h11 parser;
- the JSON encoder of the events: `adapters.event_codec.dumps` (orjson) against the same bytes made with
  the standard library's json, per event, in-process.

Writes bench/results/<date>-pieces.json and prints a table.
"""

from __future__ import annotations

import json
import tempfile
import timeit
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from adapters import event_codec
from bench import scenarios as sc
from bench.servers import ROOT, Server
from domain.event_dicts import to_dict
from domain.events import Finished, MessageChunk, Started, TextChunk

STACKS = {
    "uvloop + httptools (shipped)": {},
    "asyncio loop + httptools": {"BENCH_UVICORN_LOOP": "asyncio"},
    "uvloop + h11": {"BENCH_UVICORN_HTTP": "h11"},
}


def stdlib_dumps(event: MessageChunk) -> bytes:
    return json.dumps(to_dict(event), ensure_ascii=False, separators=(",", ":")).encode()


def encoders() -> dict[str, Any]:
    events: list[MessageChunk] = [
        TextChunk(" word"),
        TextChunk("a longer chunk of text, as a model streams it, with ünïcödé " * 4),
        Started("agent-1", "team-1", "task-1", datetime.now(UTC)),
        Finished(),
    ]
    out: dict[str, Any] = {}
    for name, encode in (("orjson (shipped)", event_codec.dumps), ("json (stdlib)", stdlib_dumps)):
        n = 200_000
        seconds = timeit.timeit(lambda encode=encode: [encode(e) for e in events], number=n // len(events))
        out[name] = {"us_per_event": round(seconds / n * 1e6, 3)}
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-pieces-"))
    scale = sc.Scale("full")
    stacks: dict[str, Any] = {}
    for name, env in STACKS.items():
        server = Server(f"p{len(stacks)}", "real", work, db=None, delay_ms=0, instrumented=True, extra_env=env)
        server.start()
        try:
            s1 = sc.single_stream(server, scale, work, f"p{len(stacks)}a")
        finally:
            server.stop()
        server = Server(f"q{len(stacks)}", "real", work, db=None, delay_ms=50, instrumented=True, extra_env=env)
        server.start()
        try:
            s2 = sc.many_users(server, scale, work, f"p{len(stacks)}b", verify=False)
        finally:
            server.stop()
        lag = server.lag() or {}
        stacks[name] = {
            "loop": lag.get("loop"),
            "http": lag.get("http"),
            "s1_events_per_s": s1["events_per_s"],
            "s1_cpu_us_per_event": s1["server_cpu_us_per_event"],
            "s2_cpu_us_per_event": s2["server_cpu_us_per_event"],
            "s2_lateness_p99_ms": s2["lateness"]["p99_ms"],
            "s2_errors": s2["errors"],
        }
        print(name, stacks[name], flush=True)
    result = {"stacks": stacks, "encoders": encoders()}
    print(json.dumps(result["encoders"]))
    out = ROOT / "bench" / "results" / f"{date.today().isoformat()}-pieces.json"
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
