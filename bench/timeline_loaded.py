"""`python -m bench.timeline_loaded [N] [--db sqlite|postgres] [--rounds R] [--env K=V]... [--tag TAG]`: where a late
stream loses its time, under load.

Scenario 2 (N streams, default 1,000, started over 2 s, 100 chunks 50 ms apart) against the real server in a
process of its own (`entrypoints.main.build_server`, the path of each message marked by `bench.marks`),
driven by the usual load generators. For each stream, its lateness (request to `[DONE]`, minus the schedule)
is split into: the request's arrival to the model's start; the model's last chunk against its own clock;
that chunk to the run's end; the final save; the save to `[DONE]`; and how much of the late parts (before the
model starts, after its last chunk is due) the garbage collector ran. The time to `started` is shown beside them
(it overlaps them). Prints each part's p50 / p90 / p99 / max,
the median parts of the worst 1% of streams and when those arrived; writes every stream's parts to
bench/results/<date>-timeline-loaded-<db>[-TAG].json.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench import scenarios as sc
from bench.marks import Marks
from bench.servers import PYTHON, ROOT, Server, run_loadgens
from bench.stats import pct

CHUNKS, DELAY_S, RAMP_S = 100, 0.05, 2.0
QUANTILES = (50, 90, 99, 100)
PARTS = {
    "arrival -> model starts": ("arrived", "model starts"),
    "arrival -> `started` written": ("arrived", "started written"),
    "model's last chunk, late by": ("model starts", "last chunk out of the model"),
    "last chunk -> run ends": ("last chunk out of the model", "run ends"),
    "final save": ("run ends", "final save done"),
    "save -> `[DONE]` written": ("final save done", "[DONE] written"),
}


def parts(m: dict[str, float]) -> dict[str, float]:
    out = {name: (m[b] - m[a]) * 1000 for name, (a, b) in PARTS.items()}
    out["model's last chunk, late by"] -= CHUNKS * DELAY_S * 1000
    out["lateness"] = (m["[DONE] written"] - m["arrived"] - CHUNKS * DELAY_S) * 1000
    return {k: round(v, 2) for k, v in out.items()}


def serve(marks_file: str) -> None:
    from bench.marks import install
    from entrypoints.main import build_server

    marks: Marks = {}
    install(marks)
    pauses: list[tuple[float, float, int]] = []  # start, end, generation of each collection
    started = [0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((started[0], time.perf_counter(), info["generation"]))

    gc.callbacks.append(collected)
    server = build_server()
    signal.signal(signal.SIGUSR1, lambda *_: setattr(server, "should_exit", True))
    try:
        server.run()
    finally:
        Path(marks_file).write_text(json.dumps({"marks": marks, "collections": pauses}))


class MarkedServer(Server):
    """The real server, run by `serve` below; it writes its marks to `marks.json` in the work dir as it stops."""

    @property
    def marks_file(self) -> Path:
        return self.workdir / "marks.json"

    def command(self) -> list[str]:
        return [PYTHON, "-m", "bench.timeline_loaded", "--serve", str(self.marks_file)]

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # not SIGTERM: uvicorn raises that again once it has stopped
            self.proc.wait(timeout=timeout_s)
        return super().stop(timeout_s)


def one_round(n: int, db: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
    delay_ms = int(DELAY_S * 1000)
    postgres = db if db == "postgres" else None
    with MarkedServer("timeline", "real", work, db=postgres, delay_ms=delay_ms, extra_env=env) as server:
        words = CHUNKS - 2  # "You", " said:", then one chunk per word
        specs = [
            {"agent": "a", "team": "t", "task": f"s-{i}", "words": words, "offset": i * RAMP_S / n} for i in range(n)
        ]
        start_at = time.monotonic() + 1.5
        results = run_loadgens([sc._streams_job(server, specs[c::2], start_at, 120) for c in range(2)], work, "tl", 240)
    served = json.loads(server.marks_file.read_text())
    marks: Marks = served["marks"]
    failed = sum(1 for r in results for row in r["rows"] if not row[2] or row[5])  # no `[DONE]`, or an error
    needed = {label for pair in PARTS.values() for label in pair}
    rows = [m for i in range(n) if needed <= (m := marks.get(f"s-{i}", {})).keys()]
    if not rows:
        raise RuntimeError(f"no stream has every mark ({failed} failed): see {work}")
    t0 = min(m["arrived"] for m in rows)
    pauses = [(a, b) for a, b, _ in served["collections"] if a >= t0]
    streams = [
        {"arrived_s": round(m["arrived"] - t0, 3), **parts(m), "in collections": gc_overlap(m, pauses)} for m in rows
    ]
    longest = max((b - a for a, b in pauses), default=0.0) * 1000
    collections = {
        "count": len(pauses),
        "over_1ms": sum(b - a > 0.001 for a, b in pauses),
        "longest_ms": round(longest, 2),
    }
    return {"streams": n, "failed": failed, "marked": len(streams), "collections": collections, "rows": streams}


def gc_overlap(m: dict[str, float], pauses: list[tuple[float, float]]) -> float:
    """ms of collections while the stream was late: before its model started, and after its last chunk was due."""
    due = m["model starts"] + CHUNKS * DELAY_S
    windows = [(m["arrived"], m["model starts"]), (due, m["[DONE] written"])]
    overlap = sum(max(0.0, min(b, y) - max(a, x)) for a, b in pauses for x, y in windows)
    return round(overlap * 1000, 2)


def table(summary: dict[str, Any]) -> str:
    head = f"{'ms':30} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'worst 1%':>9}"
    lines = [f"streams marked: {summary['marked']}", head]
    for name, values in summary["parts_p50_p90_p99_max_ms"].items():
        cells = "".join(f"{v:8.2f}" for v in values)
        lines.append(f"{name:30}{cells} {summary['worst_1pct_median_ms'][name]:9.2f}")
    lines.append(f"the worst 1% arrived at (s): {summary['worst_1pct_arrived_s']}")
    lines.append(f"collections during the run: {summary['collections']}")
    return "\n".join(lines)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]
    names = ["lateness", *PARTS, "in collections"]
    worst = sorted(rows, key=lambda r: r["lateness"])[-max(len(rows) // 100, 1) :]
    return {
        "marked": f"{result['marked']}/{result['streams']} ({result['failed']} failed)",
        "collections": result["collections"],
        "parts_p50_p90_p99_max_ms": {k: [round(pct([r[k] for r in rows], q), 2) for q in QUANTILES] for k in names},
        "worst_1pct_median_ms": {k: round(pct([r[k] for r in worst], 50), 2) for k in names},
        "worst_1pct_arrived_s": sorted(r["arrived_s"] for r in worst),
    }


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("streams", type=int, nargs="?", default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], help="K=V for the server (repeatable)")
    parser.add_argument("--tag", default="", help="added to the results file's name")
    args = parser.parse_args()
    if bad := [pair for pair in args.env if "=" not in pair]:
        parser.error(f"--env takes K=V, not {bad[0]!r}")
    env = dict(pair.split("=", 1) for pair in args.env)
    results = []
    for _ in range(args.rounds):
        result = one_round(args.streams, args.db, Path(tempfile.mkdtemp(prefix="bench-timeline-loaded-")), env)
        results.append({**summary(result), "rows": result["rows"]})
        print(table(results[-1]))
    out = ROOT / "bench" / "results" / f"{date.today()}-timeline-loaded-{args.db}{args.tag and '-' + args.tag}.json"
    out.write_text(json.dumps({"streams": args.streams, "db": args.db, "env": env, "rounds": results}) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
