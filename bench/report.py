"""docs/benchmarks.md and docs/benchmarks.png from the JSON results of one run (one document per database).

`python -m bench.report bench/results/<date>-sqlite.json bench/results/<date>-postgres.json` re-renders them.
Hand-written analysis (findings, profile reading) lives in bench/findings.md and is included as it is.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from bench.stats import ratio

FINDINGS = Path(__file__).with_name("findings.md")


def _get(doc: dict[str, Any], *path: Any) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return value


def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(value: Any, floor: Any) -> str:
    try:
        r = ratio(float(value), float(floor))
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(r) else f"{r:.2f}x"


def _verdict(ok: Any) -> str:
    if ok is None or (isinstance(ok, float) and math.isnan(ok)):
        return "-"
    return "pass" if ok else "**FAIL**"


def bars(doc: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(scenario, bar, measured, passed) for one database."""
    f, r = doc["floor"], doc["real"]
    out: list[tuple[str, str, str, Any]] = []
    if "s1" in r:
        rr = ratio(r["s1"]["events_per_s"], _get(f, "s1", "events_per_s"))
        out.append(("1", "events/s ≥ 50% of the floor's", f"{_fmt(r['s1']['events_per_s'])} ({rr:.0%})", rr >= 0.5))
    if "s2" in r:
        s2 = r["s2"]
        complete = s2["completed"] == s2["streams"] and s2["errors"] == 0
        out.append(
            (
                "2",
                "every stream completes, zero errors",
                f"{s2['completed']}/{s2['streams']}, {s2['errors']} errors",
                complete,
            )
        )
        p99, fp99 = s2["lateness"]["p99_ms"], _get(f, "s2", "lateness", "p99_ms")
        out.append(
            (
                "2",
                "p99 lateness ≤ 2x floor's and < 100 ms",
                f"{_fmt(p99)} ms (floor {_fmt(fp99)} ms)",
                p99 < 100 and not (isinstance(fp99, float) and math.isnan(fp99)) and p99 <= 2 * max(fp99, 0.0),
            )
        )
        stored = _get(s2, "stored", "all_stored")
        out.append(
            ("2", "every thread stored with its full text", _fmt(_get(s2, "stored", "checked")) + " checked", stored)
        )
        out.append(
            (
                "2",
                "memory per open stream < 64 KiB",
                f"{_fmt(s2['rss_per_stream_kib'])} KiB",
                s2["rss_per_stream_kib"] < 64,
            )
        )
    if "s3" in r:
        s3 = r["s3"]["loaded"]
        out.append(
            (
                "3",
                "`started` p50 ≤ 2 ms, p99 ≤ 10 ms under 100 streams",
                f"p50 {_fmt(s3['p50_ms'], 2)} ms, p99 {_fmt(s3['p99_ms'], 2)} ms",
                s3["p50_ms"] <= 2 and s3["p99_ms"] <= 10,
            )
        )
    if "s5" in r:
        g = r["s5"]["rss_peak_growth_mib"]
        out.append(("5", "upload peak RSS growth < 32 MB", f"{_fmt(g)} MiB in {_fmt(r['s5']['seconds'], 2)} s", g < 32))
    if "s6" in r:
        stall = _get(r, "s6", "lag", "max_stall_ms")
        out.append(("6", "longest event-loop stall < 20 ms", f"{_fmt(stall)} ms", stall < 20))
    return out


def _row(label: str, floor: Any, values: list[Any], digits: int = 1, with_ratio: bool = True) -> str:
    cells = [label, _fmt(floor, digits)]
    for value in values:
        cells.append(_fmt(value, digits))
        if with_ratio:
            cells.append(_ratio(value, floor))
    return "| " + " | ".join(cells) + " |"


def _table(dbs: list[str], docs: dict[str, dict[str, Any]], rows: list[tuple[str, tuple[Any, ...], int]]) -> list[str]:
    head = "| | floor | " + " | ".join(f"{db} | xfloor" for db in dbs) + " |"
    sep = "|---|---:|" + "---:|---:|" * len(dbs)
    lines = [head, sep]
    first = docs[dbs[0]]
    for label, path, digits in rows:
        floor = _get(first["floor"], *path)
        lines.append(_row(label, floor, [_get(docs[db]["real"], *path) for db in dbs], digits))
    return lines


def _real_table(
    dbs: list[str], docs: dict[str, dict[str, Any]], rows: list[tuple[str, tuple[Any, ...], int]]
) -> list[str]:
    lines = ["| | " + " | ".join(dbs) + " |", "|---|" + "---:|" * len(dbs)]
    for label, path, digits in rows:
        lines.append(
            "| " + label + " | " + " | ".join(_fmt(_get(docs[db]["real"], *path), digits) for db in dbs) + " |"
        )
    return lines


def _pieces(path: Path) -> list[str]:
    """What uvloop, httptools and orjson gain (`python -m bench.pieces`), if it was run that day."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    lines = [
        "",
        "## What the fast pieces gain",
        "",
        "The real service on SQLite, once per stack (`python -m bench.pieces`, one run each, raw results in"
        f" `bench/results/{path.name}`): uvicorn's `auto` choice, then the stock asyncio loop, then the h11 parser.",
        "",
        "| stack | 1. events/s | 1. CPU/event (µs) | 2. CPU/event (µs) | 2. p99 lateness (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in data["stacks"].items():
        lines.append(
            f"| {name} | {_fmt(row['s1_events_per_s'], 0)} | {_fmt(row['s1_cpu_us_per_event'])} |"
            f" {_fmt(row['s2_cpu_us_per_event'])} | {_fmt(row['s2_lateness_p99_ms'])} |"
        )
    coders = "; ".join(f"{name} {row['us_per_event']} µs" for name, row in data["encoders"].items())
    lines += ["", f"Encoding one event's contract JSON (mean over text, `started` and `finished` events): {coders}."]
    return lines


def _repeats(path: Path) -> list[str]:
    """Scenario 2 run again and again (`python -m bench.repeat_s2`), if it was run that day."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    rounds, summary = data["rounds"], data["summary"]
    sides = list(summary)
    lines = [
        "",
        f"The p99 lateness of one run moves by tens of milliseconds between runs on this machine (the floor's too),"
        f" so scenario 2 was also run {len(rounds)} more times, the floor and each database in turn"
        f" (`python -m bench.repeat_s2`, raw rounds in `bench/results/{path.name}`):",
        "",
        "| round | " + " | ".join(f"{side} p99 lateness (ms)" for side in sides) + " |",
        "|---|" + "---:|" * len(sides),
    ]
    for i, row in enumerate(rounds, 1):
        lines.append(f"| {i} | " + " | ".join(_fmt(row[side]["lateness_p99_ms"]) for side in sides) + " |")
    lines.append("| median | " + " | ".join(_fmt(summary[side]["median_lateness_p99_ms"]) for side in sides) + " |")
    met = "; ".join(
        f"{side}: {summary[side]['rounds_meeting_the_bar']} of {len(rounds)}" for side in sides if side != "floor"
    )
    lines += ["", f"Rounds meeting the bar (p99 ≤ 2x that round's floor and < 100 ms): {met}."]
    return lines


def render(docs: dict[str, dict[str, Any]], md_path: Path, png_path: Path) -> str:
    dbs = list(docs)
    first = docs[dbs[0]]
    m = first["machine"]
    scale = first["scale_params"]
    lines = [
        "# Benchmarks",
        "",
        "How much the service itself costs next to a *floor*: a minimal ASGI app (`bench/floor.py`) on the same",
        "uvicorn stack that streams the same SSE bytes on the same schedule with no form parsing, storage, run",
        "registry or model. Every figure is given absolute and as a ratio to the floor (x floor: for rates,",
        "higher is better; for times and memory, lower is better). The model is the echo model (`AI_PROVIDER=echo`),",
        "so what is measured is the service's own cost.",
        "",
        f"Run of {first['date']} ({first['scale']} scale, {first['duration_s']:.0f} s in all).",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['platform']}",
        f"- Python {m['python']}; uvicorn {m['versions'].get('uvicorn')} with loop `{m['uvicorn_loop']}` and "
        f"HTTP parser `{m['uvicorn_http']}` (uvicorn's `auto` picks, confirmed from inside the server: "
        f"`{_get(first['real'], 's6', 'lag', 'loop')}`)",
        "- " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if k != "uvicorn"),
        "- One server process (no workers); the load generators are separate processes on the same machine, over "
        "loopback (127.0.0.1); PostgreSQL 15 on the same machine.",
        f"- Load average before the run {first['load_before']['loadavg']}, after {first['load_after']['loadavg']}.",
    ]
    during = [v for _, v in first.get("load_during", [])]
    if during:
        lines.append(
            f"- 1-minute load average every 10 s during the run: min {min(during)}, median"
            f" {sorted(during)[len(during) // 2]}, max {max(during)} (this run alone keeps about 1-2 cores busy:"
            " one server process plus the load generators and, in scenario 4, PostgreSQL)."
        )
    others = first["load_before"]["other_busy_processes"] + first["load_after"]["other_busy_processes"]
    if others:
        lines.append(
            "  **The machine was shared**: other work ran during the run (busiest at the snapshots: "
            + "; ".join(f"{cmd[:60]} {pct}%" for pct, cmd in others[:4])
            + "), so absolute figures are noisy; the floor ran in the same conditions."
        )
    else:
        lines.append(
            "  No other busy process was seen at either snapshot (the 1-minute load average includes this run's"
            " own server and load generators; the 5- and 15-minute ones show earlier work of others on this"
            " shared machine, so small differences between runs are noise)."
        )
    lines += ["", "## The bars", "", "| scenario | bar | " + " | ".join(dbs) + " |", "|---|---|" + "---|" * len(dbs)]
    per_db = {db: bars(docs[db]) for db in dbs}
    for i, (num, bar, _, _) in enumerate(per_db[dbs[0]]):
        cells = []
        for db in dbs:
            item = per_db[db][i] if i < len(per_db[db]) else None
            cells.append(f"{item[2]}: {_verdict(item[3])}" if item else "-")
        lines.append(f"| {num} | {bar} | " + " | ".join(cells) + " |")
    repeats = md_path.parent.parent / "bench" / "results" / f"{first['date']}-s2-repeats.json"
    if repeats.exists():
        repeated = json.loads(repeats.read_text())
        summary, rounds = repeated["summary"], len(repeated["rounds"])
        floor_p99 = _fmt(summary["floor"]["median_lateness_p99_ms"])
        cells = [
            f"{summary[db]['rounds_meeting_the_bar']} of {rounds} met it (median p99"
            f" {_fmt(summary[db]['median_lateness_p99_ms'])} ms, floor's {floor_p99})"
            if db in summary
            else "-"
            for db in dbs
        ]
        lines.append("| 2 | the same lateness bar in the repeated rounds (below) | " + " | ".join(cells) + " |")

    r0 = first["real"]
    if "s1" in r0:
        lines += [
            "",
            f"## 1. Single-stream throughput ({scale['s1_chunks']:,} chunks, no delay)",
            "",
            f"One message whose echo reply is {scale['s1_chunks']:,} text chunks with `AI_ECHO_DELAY_MS=0`, read to the"
            f" end; events/s = SSE events delivered / (request → `[DONE]`), median of {scale['s1_reps']} runs, each",
            "checked event by event (ids 1..n, full text).",
            "",
            *_table(
                dbs,
                docs,
                [
                    ("events/s", ("s1", "events_per_s"), 0),
                    ("server CPU per event (µs)", ("s1", "server_cpu_us_per_event"), 1),
                ],
            ),
        ]
    if "s2" in r0:
        lines += [
            "",
            f"## 2. Many users ({scale['s2_streams']:,} concurrent streams x {scale['s2_chunks']} chunks, "
            f"{scale['s2_delay_ms']} ms apart)",
            "",
            f"Streams start spread evenly over {scale['s2_ramp_s']} s (so that all are open at once for most of the"
            f" run), from {scale['s2_clients']} load-generator process(es). *Lateness* = time from the request to"
            f" `[DONE]` minus the schedule ({scale['s2_chunks']} x {scale['s2_delay_ms']} ms). The echo model and the"
            " floor keep their own clock, as a model's stream does (chunk i is due i x the delay after the first,"
            " however late the server took the one before), so lateness is how late the server delivers, not"
            " drift it added to the model's pace (runs before 2026-11-25 17:00 slept the delay after each chunk,"
            " which added every late wake-up to the schedule). *Stream lateness* starts the clock at `started`.",
            "",
            *_table(
                dbs,
                docs,
                [
                    ("streams completed", ("s2", "completed"), 0),
                    ("errors", ("s2", "errors"), 0),
                    ("lateness p50 (ms)", ("s2", "lateness", "p50_ms"), 1),
                    ("lateness p99 (ms)", ("s2", "lateness", "p99_ms"), 1),
                    ("lateness max (ms)", ("s2", "lateness", "max_ms"), 1),
                    ("stream lateness p99 (ms)", ("s2", "stream_lateness", "p99_ms"), 1),
                    ("`started` p50 during the ramp (ms)", ("s2", "ttfe", "p50_ms"), 2),
                    ("`started` p99 during the ramp (ms)", ("s2", "ttfe", "p99_ms"), 2),
                    ("most streams open at once", ("s2", "max_open_streams"), 0),
                    ("server RSS before (MiB)", ("s2", "rss_before_mib"), 1),
                    ("server RSS peak (MiB)", ("s2", "rss_peak_mib"), 1),
                    ("RSS per open stream (KiB)", ("s2", "rss_per_stream_kib"), 1),
                    ("server CPU per event (µs)", ("s2", "server_cpu_us_per_event"), 1),
                    ("load generators' busiest CPU share", ("s2", "client", "busiest_cpu_share"), 2),
                ],
            ),
            "",
            "Stored threads, read back through `GET /tasks/{agent}/{task}` after the run: "
            + "; ".join(
                f"{db}: {_fmt(_get(docs[db]['real'], 's2', 'stored', 'checked'))} checked, "
                f"{_fmt(_get(docs[db]['real'], 's2', 'stored', 'problem_count'))} problems"
                for db in dbs
            )
            + ".",
            *_repeats(md_path.parent.parent / "bench" / "results" / f"{first['date']}-s2-repeats.json"),
        ]
    if "s3" in r0:
        lines += [
            "",
            f"## 3. Time to first event ({scale['s3_samples']} sequential samples)",
            "",
            "From the request's last byte written to the `started` frame received, for a new task each time (so it"
            " includes the form parsing and the write-ahead insert of the task and its thread), with no other load"
            f" and then under a background of {scale['s3_background']} streams ({scale['s2_chunks']} chunks,"
            f" {scale['s2_delay_ms']} ms apart, restarted as they end).",
            "",
            *_table(
                dbs,
                docs,
                [
                    ("idle p50 (ms)", ("s3", "idle", "p50_ms"), 2),
                    ("idle p99 (ms)", ("s3", "idle", "p99_ms"), 2),
                    ("under load p50 (ms)", ("s3", "loaded", "p50_ms"), 2),
                    ("under load p99 (ms)", ("s3", "loaded", "p99_ms"), 2),
                    ("under load max (ms)", ("s3", "loaded", "max_ms"), 2),
                ],
            ),
        ]
    if "s4" in r0:
        seeded = r0["s4"]["seeded"]
        lines += [
            "",
            f"## 4. Storage at size ({seeded['tasks']:,} tasks, {seeded['threads']:,} threads)",
            "",
            f"A throwaway database, migrated, then filled by bulk inserts (SQLAlchemy Core): {seeded['agents']} team"
            f" agents, {seeded['threads_per_task']} small threads per task, and one task (`task-big`) with"
            f" {seeded['big_task_threads']:,} threads. Then through the HTTP API, sequentially, on one keep-alive"
            " connection (appends: one connection each, read to `[DONE]`, echo delay 0). No floor here: the floor"
            " stores nothing.",
            "",
            *_real_table(
                dbs,
                docs,
                [
                    ("seeding: insert time (s)", ("s4", "seeded", "insert_s"), 1),
                    ("database size (MiB)", ("s4", "db_size_mib"), 0),
                    ("list a page, 50 tasks with threads: p50 (ms)", ("s4", "list_page", "p50_ms"), 2),
                    ("list a page, 50 tasks with threads: p99 (ms)", ("s4", "list_page", "p99_ms"), 2),
                    ("list a page, `include_content=false`: p50 (ms)", ("s4", "list_page_no_content", "p50_ms"), 2),
                    ("list a page, `include_content=false`: p99 (ms)", ("s4", "list_page_no_content", "p99_ms"), 2),
                    ("read a small task: p50 (ms)", ("s4", "read_small", "p50_ms"), 2),
                    ("read a small task: p99 (ms)", ("s4", "read_small", "p99_ms"), 2),
                    ("read `task-big`: p50 (ms)", ("s4", "read_big", "p50_ms"), 1),
                    ("read `task-big`: p99 (ms)", ("s4", "read_big", "p99_ms"), 1),
                    ("append to a small task, `started`: p50 (ms)", ("s4", "append_small", "first_event", "p50_ms"), 2),
                    ("append to a small task, `started`: p99 (ms)", ("s4", "append_small", "first_event", "p99_ms"), 2),
                    ("append to a small task, `[DONE]`: p50 (ms)", ("s4", "append_small", "complete", "p50_ms"), 2),
                    ("append to a small task, `[DONE]`: p99 (ms)", ("s4", "append_small", "complete", "p99_ms"), 2),
                    ("append to `task-big`, `started`: p50 (ms)", ("s4", "append_big", "first_event", "p50_ms"), 1),
                    ("append to `task-big`, `[DONE]`: p50 (ms)", ("s4", "append_big", "complete", "p50_ms"), 1),
                ],
            ),
        ]
    if "s5" in r0:
        lines += [
            "",
            f"## 5. Upload ({scale['s5_bytes'] / 2**20:.0f} MiB video)",
            "",
            "One multipart message with a video part streamed from a generator in"
            f" {scale['s5_chunk'] / 2**20:.0f} MiB pieces; time from the first byte sent to `[DONE]`; server RSS"
            " sampled every 10 ms (psutil), growth = peak - idle RSS before. The floor drains the body and stores"
            " nothing.",
            "",
            *_table(
                dbs,
                docs,
                [
                    ("time (s)", ("s5", "seconds"), 2),
                    ("MiB/s", ("s5", "mib_per_s"), 0),
                    ("peak RSS growth (MiB)", ("s5", "rss_peak_growth_mib"), 2),
                ],
            ),
            "",
            "File stored at its full size: "
            + ", ".join(f"{db}: {_fmt(_get(docs[db]['real'], 's5', 'stored_file_ok'))}" for db in dbs)
            + ".",
        ]
    if "s6" in r0:
        lines += [
            "",
            "## 6. Event-loop health under scenario 2",
            "",
            "The server runs through `bench/instrumented_server.py`: the same uvicorn Config and app factory, plus a"
            " task on the server's loop that sleeps 1 ms in a loop and records the overshoot; stalls are taken over"
            " the window of the scenario-2 load.",
            "",
            *_table(
                dbs,
                docs,
                [
                    ("longest stall (ms)", ("s6", "lag", "max_stall_ms"), 1),
                    ("p99 overshoot of a 1 ms tick (ms)", ("s6", "lag", "p99_stall_ms"), 2),
                    ("p99.9 overshoot (ms)", ("s6", "lag", "p999_stall_ms"), 2),
                    ("stalls > 10 ms", ("s6", "lag", "stalls_over_10ms"), 0),
                    ("stalls > 20 ms", ("s6", "lag", "stalls_over_20ms"), 0),
                    ("GC collections > 1 ms", ("s6", "lag", "gc_pauses_over_1ms"), 0),
                    ("gen 2 collections", ("s6", "lag", "gc_gen2"), 0),
                    ("longest GC collection (ms)", ("s6", "lag", "gc_longest_ms"), 1),
                    ("stalls > 10 ms that a GC collection explains", ("s6", "lag", "stalls_over_10ms_during_gc"), 0),
                    ("scenario-2 lateness p99 meanwhile (ms)", ("s6", "load", "lateness", "p99_ms"), 1),
                    ("objects tracked by the GC after startup", ("s6", "lag", "gc_objects_after_startup"), 0),
                    ("objects frozen out of the GC's reach at startup", ("s6", "lag", "gc_frozen"), 0),
                    ("GC time in the window (ms)", ("s6", "lag", "gc_total_ms"), 0),
                ],
            ),
        ]
        for db in dbs:
            prof = _get(docs[db]["real"], "s6", "profile")
            if not isinstance(prof, dict) or "self_pct" not in prof:
                continue
            raw = Path(__file__).resolve().parents[1] / str(docs[db]["real"]["s6"].get("profile_file", "-"))
            if raw.is_file():
                from bench.scenarios import self_by_area

                prof["self_by_area_pct"] = self_by_area(raw)
            lines += [
                "",
                f"### Profile, {db} (py-spy, {prof['samples']:,} samples of the busy server under scenario 2)",
                "",
                "Self time of the event-loop thread (exact; py-spy cuts stacks at coroutine boundaries on"
                " Python 3.11, so inclusive shares of coroutines are not given; garbage collection is counted"
                " where the allocation that set it off happened).",
                "",
                "| busiest frames (self %) | | by area (self %) | |",
                "|---|---:|---|---:|",
            ]
            own, service = prof["self_pct"][:12], prof.get("self_by_area_pct", [])[:12]
            for i in range(max(len(own), len(service))):
                a = own[i] if i < len(own) else ["", ""]
                b = service[i] if i < len(service) else ["", ""]
                cell_a = f"`{a[0]}`" if a[0] else ""
                cell_b = b[0] if b[0] else ""
                lines.append(f"| {cell_a} | {a[1]} | {cell_b} | {b[1]} |")
            others = ", ".join(f"{name} {share}%" for name, share in prof.get("other_threads_pct_of_all", []))
            lines += [
                "",
                f"Shares are of the event-loop thread's {prof.get('main_thread_samples', 0):,} busy samples; other"
                f" threads' share of all busy samples: {others or 'none'}.",
            ]
            if "profile_file" in docs[db]["real"]["s6"]:
                lines.append("")
                lines.append(f"Raw collapsed stacks: `{docs[db]['real']['s6']['profile_file']}`.")
    lines += _pieces(md_path.parent.parent / "bench" / "results" / f"{first['date']}-pieces.json")
    if FINDINGS.exists():
        lines += ["", FINDINGS.read_text().strip()]
    lines += [
        "",
        "## Plot",
        "",
        f"![benchmarks]({png_path.name})",
        "",
        "## Reproduce",
        "",
        "```bash",
        "make bench                      # full scale, SQLite then PostgreSQL (about 7 minutes here)",
        "make bench ARGS=--quick         # small scales: checks the harness in a couple of minutes",
        "make bench ARGS='--scenario 2 --db sqlite'",
        "```",
        "",
        "`make bench` installs `requirements-bench.lock` (the `bench` extra: matplotlib, psutil, py-spy,",
        "pyinstrument), then runs `python -m bench.run`. PostgreSQL is expected on 127.0.0.1:5432 (user",
        "`postgres`, no password); the runner creates and drops a database named `bench` (it is skipped if no",
        "server answers). Raw results:",
        "`bench/results/<date>-<db>.json`; `python -m bench.report <json files>` renders this page again;",
        "`python -m bench.micro_store` times the store calls of one message on every store adapter;",
        "`python -m bench.repeat_s2 [N]` runs scenario 2 N more times (floor, SQLite, PostgreSQL in turn);",
        "`python -m bench.pieces` measures what uvloop, httptools and orjson gain;",
        "`python -m bench.thread_hops` times a call handed to a thread (SQLite's writer) on an idle and a busy loop;",
        "`python -m bench.unloaded` runs scenario 2's streams at 20 streams (the latency of the path, no load);",
        "`python -m bench.timeline` times each step of one message on an idle server;",
        "`python -m bench.timeline_loaded [N]` splits each stream's lateness into its parts under scenario 2's load;",
        "`python -m bench.interleaved N ROUNDS ROOT_A ROOT_B` runs scenario 2 at N streams on two checkouts in turn;",
        "`python -m bench.ab ROOT_A ROOT_B` compares two checkouts side by side.",
        "",
    ]
    md_path.write_text("\n".join(lines))
    plot(docs, png_path)
    summary = ["", "bars:"] + [
        f"  {db}: " + "; ".join(f"{n} {b}: {_verdict(p)}" for n, b, _, p in per_db[db]) for db in dbs
    ]
    return "\n".join(summary)


def plot(docs: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dbs = list(docs)
    first = docs[dbs[0]]
    names = ["floor", *dbs]
    sides = [first["floor"]] + [docs[db]["real"] for db in dbs]
    colors = ["#999999", "#1f77b4", "#ff7f0e"][: len(names)]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle(
        f"agent-stream vs floor — {first['machine']['cpu']}, {first['machine']['cores']} cores ({first['scale']} scale)"
    )

    ax = axes[0][0]
    values = [_get(s, "s1", "events_per_s") for s in sides]
    ax.bar(names, [0 if _nan(v) else v for v in values], color=colors)
    ax.axhline(0.5 * (values[0] if not _nan(values[0]) else 0), color="red", ls="--", lw=1, label="bar: 50% of floor")
    ax.bar_label(ax.containers[0], fmt="%.0f", fontsize=8)
    ax.set_title("1. single stream: events/s (higher is better)")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    for name, side, color in zip(names, sides, colors, strict=True):
        curve = _get(side, "s2", "lateness_curve")
        if isinstance(curve, list) and curve:
            ax.plot([p for p, _ in curve], [v for _, v in curve], marker=".", label=name, color=color)
    ax.axhline(100, color="red", ls="--", lw=1, label="bar: p99 < 100 ms")
    ax.set_yscale("log")
    ax.set_title("2. many users: lateness of the last event (ms, log) by percentile")
    ax.set_xlabel("percentile")
    ax.legend(fontsize=8)

    ax = axes[0][2]
    _grouped(
        ax,
        names,
        colors,
        ["idle p50", "idle p99", "loaded p50", "loaded p99"],
        [
            [
                _get(s, "s3", k, q)
                for k, q in (("idle", "p50_ms"), ("idle", "p99_ms"), ("loaded", "p50_ms"), ("loaded", "p99_ms"))
            ]
            for s in sides
        ],
    )
    ax.axhline(10, color="red", ls="--", lw=1)
    ax.axhline(2, color="red", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_title("3. request -> `started` (ms, log); bars 2 / 10 ms")

    ax = axes[1][0]
    ops = [
        ("list p50", ("list_page", "p50_ms")),
        ("list p99", ("list_page", "p99_ms")),
        ("small p50", ("read_small", "p50_ms")),
        ("big p50", ("read_big", "p50_ms")),
        ("append p50", ("append_small", "complete", "p50_ms")),
        ("append p99", ("append_small", "complete", "p99_ms")),
    ]
    _grouped(
        ax, dbs, colors[1:], [o for o, _ in ops], [[_get(docs[db]["real"], "s4", *p) for _, p in ops] for db in dbs]
    )
    ax.set_yscale("log")
    ax.set_title("4. storage at size: HTTP latency (ms, log)")

    ax = axes[1][1]
    values = [_get(s, "s5", "rss_peak_growth_mib") for s in sides]
    ax.bar(names, [0 if _nan(v) else v for v in values], color=colors)
    ax.axhline(32, color="red", ls="--", lw=1, label="bar: 32 MB")
    ax.bar_label(ax.containers[0], fmt="%.2f", fontsize=8)
    ax.set_title("5. upload: server peak RSS growth (MiB)")
    ax.legend(fontsize=8)

    ax = axes[1][2]
    values = [_get(s, "s6", "lag", "max_stall_ms") for s in sides]
    p99s = [_get(s, "s6", "lag", "p99_stall_ms") for s in sides]
    _grouped(
        ax, names, colors, ["longest stall", "p99 tick overshoot"], [[a, b] for a, b in zip(values, p99s, strict=True)]
    )
    ax.axhline(20, color="red", ls="--", lw=1, label="bar: 20 ms")
    ax.set_title("6. event-loop stalls under scenario 2 (ms)")
    ax.legend(fontsize=8)

    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _grouped(ax: Any, names: list[str], colors: list[str], groups: list[str], values: list[list[Any]]) -> None:
    width = 0.8 / max(len(names), 1)
    for i, (name, row, color) in enumerate(zip(names, values, colors, strict=True)):
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, [0 if _nan(v) else v for v in row], width=width, label=name, color=color)
    ax.set_xticks([g + width * (len(names) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, fontsize=8)
    ax.legend(fontsize=8)


def main() -> None:
    docs = {}
    for name in sys.argv[1:]:
        doc = json.loads(Path(name).read_text())
        docs[doc["db"]] = doc
    root = Path(__file__).resolve().parents[1] / "docs"
    print(render(docs, root / "benchmarks.md", root / "benchmarks.png"))


if __name__ == "__main__":
    main()
