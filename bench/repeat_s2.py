"""`python -m bench.repeat_s2 [N]`: scenario 2 (1,000 streams) N times on the floor, SQLite and PostgreSQL.

One full run gives one sample of each figure, and on this shared 2-core machine the p99 lateness of one
run moves by tens of milliseconds from run to run (the floor's too). This runs the three servers in turn,
N rounds, and writes every round to bench/results/<date>-s2-repeats.json with the median and the number of
rounds that met the bar (p99 lateness at most 2x that round's floor and under 100 ms).
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

KEYS = ("server_cpu_us_per_event", "rss_per_stream_kib")


def one(kind: str, db: str | None, work: Path, tag: str) -> dict[str, Any]:
    server = Server(tag, kind, work, db=db, delay_ms=50).start()
    try:
        load = sc.many_users(server, sc.Scale("full"), work, tag, verify=False)
    finally:
        server.stop()
    return {
        "completed": load["completed"],
        "errors": load["errors"],
        "lateness_p99_ms": load["lateness"]["p99_ms"],
        "ttfe_p99_ms": load["ttfe"]["p99_ms"],
        **{key: load[key] for key in KEYS},
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    dbs = ["sqlite", "postgres"] if pg_available() else ["sqlite"]
    work = Path(tempfile.mkdtemp(prefix="bench-s2-"))
    rows: list[dict[str, Any]] = []
    for i in range(rounds):
        row: dict[str, Any] = {"floor": one("floor", None, work, f"f{i}")}
        for db in dbs:
            row[db] = one("real", None if db == "sqlite" else db, work, f"{db[0]}{i}")
            floor, late = row["floor"]["lateness_p99_ms"], row[db]["lateness_p99_ms"]
            row[db]["bar_met"] = row[db]["completed"] == 1000 and late <= 2 * floor and late < 100
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        side: {
            "median_lateness_p99_ms": statistics.median(r[side]["lateness_p99_ms"] for r in rows),
            "median_cpu_us_per_event": statistics.median(r[side]["server_cpu_us_per_event"] for r in rows),
            "median_rss_per_stream_kib": statistics.median(r[side]["rss_per_stream_kib"] for r in rows),
            **({"rounds_meeting_the_bar": sum(r[side]["bar_met"] for r in rows)} if side != "floor" else {}),
        }
        for side in ["floor", *dbs]
    }
    out = ROOT / "bench" / "results" / f"{date.today().isoformat()}-s2-repeats.json"
    out.write_text(json.dumps({"rounds": rows, "summary": summary}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
