"""`python -m bench.interleaved N ROUNDS ROOT_BEFORE ROOT_AFTER`: scenario 2 at N streams, two builds in turn.

`bench.ab --mode streams` drives two builds at once, each with half the load. This runs the whole load on one
server at a time, in the order floor, SQLite before, SQLite after, PostgreSQL before, PostgreSQL after, ROUNDS
times, so each build sees the same load at nearly the same moment. Use it on a machine too slow for 1,000
streams (the floor itself saturates) with N scaled down. Prints one JSON line per round (lateness and time
to `started`, p50 and p99 in ms, server CPU per event in µs) and writes them to
bench/results/<date>-interleaved-<N>.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from bench import scenarios as sc
from bench.servers import ROOT, Server

SIDES = ["floor", "sqlite-before", "sqlite-after", "postgres-before", "postgres-after"]


def one(side: str, streams: int, roots: dict[str, str], work: Path, tag: str) -> dict[str, Any]:
    kind = "floor" if side == "floor" else "real"
    db = "postgres" if side.startswith("postgres") else None
    env = {"PYTHONPATH": roots[side.rsplit("-", 1)[1]]} if kind == "real" else {}
    server = Server(tag, kind, work, db=db, delay_ms=50, extra_env=env).start()
    try:
        load = sc.many_users(server, sc.Scale("interleaved", s2_streams=streams), work, tag, verify=False)
    finally:
        server.stop()
    return {
        "completed": load["completed"],
        "lateness_p50_p99_ms": [load["lateness"]["p50_ms"], load["lateness"]["p99_ms"]],
        "started_p50_p99_ms": [load["ttfe"]["p50_ms"], load["ttfe"]["p99_ms"]],
        "server_cpu_us_per_event": load["server_cpu_us_per_event"],
    }


def main() -> None:
    streams, rounds = int(sys.argv[1]), int(sys.argv[2])
    roots = {"before": str(Path(sys.argv[3]).resolve()), "after": str(Path(sys.argv[4]).resolve())}
    work = Path(tempfile.mkdtemp(prefix="bench-interleaved-"))
    rows = []
    for i in range(rounds):
        row = {side: one(side, streams, roots, work, f"{side[0]}{side[-1]}{i}") for side in SIDES}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = ROOT / "bench" / "results" / f"{date.today().isoformat()}-interleaved-{streams}.json"
    out.write_text(json.dumps({"streams": streams, "roots": roots, "rounds": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
