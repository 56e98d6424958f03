"""`python -m bench.unloaded [STREAMS] [ROUNDS]`: scenario 2's streams with (almost) no load: the fixed latency.

Scenario 2 at 1,000 streams measures latency under load. This runs the same streams (100 chunks 50 ms apart,
started over 2 s) at 20 streams, where the server's loop is idle most of the time, on the floor, SQLite and
PostgreSQL in turn, ROUNDS rounds. What remains is the latency of the path itself: the request's own work,
the write-ahead insert before `started`, and the final save before the terminal event (the floor does
neither). Reported: time to `started`, lateness of `[DONE]` against its schedule, and the lateness after
`started` (the part the model's stream and the final save add), p50 and p99, median over the rounds; raw
rounds in bench/results/<date>-unloaded.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from bench import scenarios as sc
from bench.servers import ROOT, Server, pg_available

FIGURES = {"started": "ttfe", "lateness": "lateness", "after started": "stream_lateness"}


def one(kind: str, db: str | None, streams: int, work: Path, tag: str) -> dict[str, Any]:
    server = Server(tag, kind, work, db=db, delay_ms=50).start()
    try:
        load = sc.many_users(server, sc.Scale("unloaded", s2_streams=streams), work, tag, verify=False)
    finally:
        server.stop()
    row = {name: [load[key]["p50_ms"], load[key]["p99_ms"]] for name, key in FIGURES.items()}
    return {"completed": load["completed"], "errors": load["errors"], **row}


def main() -> None:
    streams = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    sides = ["floor", "sqlite", "postgres"] if pg_available() else ["floor", "sqlite"]
    work = Path(tempfile.mkdtemp(prefix="bench-unloaded-"))
    rows = []
    for i in range(rounds):
        row = {
            side: one(
                "floor" if side == "floor" else "real",
                "postgres" if side == "postgres" else None,
                streams,
                work,
                f"{side[0]}{i}",
            )
            for side in sides
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        side: {name: [round(statistics.median(r[side][name][k] for r in rows), 2) for k in (0, 1)] for name in FIGURES}
        for side in sides
    }
    out = ROOT / "bench" / "results" / f"{date.today().isoformat()}-unloaded.json"
    out.write_text(json.dumps({"streams": streams, "rounds": rows, "summary": summary}, indent=1) + "\n")
    print(f"median over {rounds} rounds, p50 / p99 ms ({streams} streams):")
    for side in sides:
        print(
            f"  {side:9}" + "".join(f"  {name}: {p50:6.2f} / {p99:6.2f}" for name, (p50, p99) in summary[side].items())
        )


if __name__ == "__main__":
    main()
