"""The six scenarios. Each drives a started Server from load-generator processes and returns a dict."""

from __future__ import annotations

import random
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import PYTHON, Sampler, Server, run_loadgens
from bench.stats import curve_ms, max_overlap, open_at, pct, summary_ms

HOST = "127.0.0.1"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Scale:
    name: str
    s1_chunks: int = 20_000
    s1_reps: int = 3
    s2_streams: int = 1000
    s2_chunks: int = 100
    s2_delay_ms: int = 50
    s2_ramp_s: float = 2.0
    s2_clients: int = 2
    s3_samples: int = 200
    s3_background: int = 100
    s3_gap_s: float = 0.01
    s4_tasks: int = 100_000
    s4_agents: int = 10
    s4_threads_per_task: int = 10
    s4_big_threads: int = 1000
    s4_samples: int = 200
    s4_big_samples: int = 50
    s4_appends: int = 100
    s4_big_appends: int = 10
    s5_bytes: int = 200 * MiB
    s5_chunk: int = 1 * MiB
    profile_rate_hz: int = 200


FULL = Scale("full")
QUICK = Scale(
    "quick",
    s1_chunks=2000,
    s1_reps=2,
    s2_streams=100,
    s2_chunks=20,
    s2_ramp_s=0.5,
    s2_clients=1,
    s3_samples=30,
    s3_background=20,
    s4_tasks=2000,
    s4_agents=2,
    s4_big_threads=200,
    s4_samples=30,
    s4_big_samples=10,
    s4_appends=20,
    s4_big_appends=3,
    s5_bytes=20 * MiB,
)


def _settle(server: Server, seconds: float = 0.5) -> int:
    """Median RSS over `seconds`, after letting the server go idle."""
    values = []
    for _ in range(5):
        time.sleep(seconds / 5)
        values.append(server.rss())
    return int(statistics.median(values))


def _warm(server: Server, workdir: Path, tag: str, *, streams: int = 5, words: int = 5) -> None:
    specs = [
        {"agent": "agent-warm", "team": "team-1", "task": f"{tag}-warm-{i}", "words": words, "offset": 0.0}
        for i in range(streams)
    ]
    job = {"mode": "streams", "host": HOST, "port": server.port, "start_at": 0, "timeout_s": 60, "streams": specs}
    run_loadgens([job], workdir, f"{tag}-warm", timeout_s=90)


def _streams_job(server: Server, specs: list[dict[str, Any]], start_at: float, timeout_s: float, **extra: Any) -> Any:
    return {
        "mode": "streams",
        "host": HOST,
        "port": server.port,
        "start_at": start_at,
        "timeout_s": timeout_s,
        "streams": specs,
        **extra,
    }


def _client_load(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "processes": len(results),
        "cpu_s": round(sum(r["client"]["cpu_s"] for r in results), 3),
        "busiest_cpu_share": round(max(r["client"]["cpu_s"] / max(r["client"]["wall_s"], 1e-9) for r in results), 3),
    }


# 1. single-stream throughput ------------------------------------------------------------------------


def single_stream(server: Server, scale: Scale, workdir: Path, tag: str) -> dict[str, Any]:
    _warm(server, workdir, tag, streams=1, words=200)
    words = scale.s1_chunks - 2  # "You", " said:" and one chunk per word
    reps = []
    for rep in range(scale.s1_reps):
        spec = {"agent": "agent-s1", "team": "team-1", "task": f"{tag}-s1-{rep}", "words": words, "offset": 0.0}
        cpu_before = server.cpu_s()
        job = _streams_job(server, [spec], time.monotonic() + 0.5, 300, check_body=True)
        result = run_loadgens([job], workdir, f"{tag}-s1-{rep}", timeout_s=360)[0]
        cpu = server.cpu_s() - cpu_before
        t_sent, _, t_done, status, frames, error, nbytes = result["rows"][0]
        events = frames - 1  # [DONE] is not an event
        seconds = t_done - t_sent if t_done else float("nan")
        reps.append(
            {
                "events": events,
                "bytes": nbytes,
                "seconds": round(seconds, 4),
                "events_per_s": round(events / seconds, 1) if t_done else 0.0,
                "server_cpu_us_per_event": round(cpu / max(events, 1) * 1e6, 2),
                "client_cpu_s": round(result["client"]["cpu_s"], 3),
                "error": error,
                "status": status,
            }
        )
    rates = [r["events_per_s"] for r in reps]
    return {
        "chunks": scale.s1_chunks,
        "reps": reps,
        "events_per_s": round(statistics.median(rates), 1),
        "server_cpu_us_per_event": statistics.median(r["server_cpu_us_per_event"] for r in reps),
        "errors": sum(1 for r in reps if r["error"]),
    }


# 2. many users -------------------------------------------------------------------------------------


def many_users(
    server: Server, scale: Scale, workdir: Path, tag: str, *, verify: bool, during: Any = None
) -> dict[str, Any]:
    """`during(start_at, max_seconds)` is called as the load starts (to attach a profiler); it returns a process
    that is sent SIGINT when the load is over."""
    _warm(server, workdir, tag, streams=10)
    rss_before = _settle(server)
    n, words, delay = scale.s2_streams, scale.s2_chunks - 2, scale.s2_delay_ms / 1000
    schedule_s = scale.s2_chunks * delay
    specs = [
        {
            "agent": "agent-s2",
            "team": "team-1",
            "task": f"{tag}-s2-{i}",
            "words": words,
            "offset": i * scale.s2_ramp_s / n,
        }
        for i in range(n)
    ]
    start_at = time.monotonic() + 1.5
    timeout = scale.s2_ramp_s + schedule_s + 120
    jobs = [_streams_job(server, specs[c :: scale.s2_clients], start_at, timeout) for c in range(scale.s2_clients)]
    cpu_before = server.cpu_s()
    helper = None
    with Sampler(server, 0.02) as sampler:
        if during is not None:
            helper = during(start_at, timeout)  # bounded; stopped when the load ends
        results = run_loadgens(jobs, workdir, f"{tag}-s2", timeout_s=timeout + 60)
    if helper is not None:  # a profiler: stop it now that the load is over (py-spy writes its file on SIGINT)
        helper.send_signal(signal.SIGINT)
        helper.wait(timeout=120)
    cpu = server.cpu_s() - cpu_before
    rows = [row for r in results for row in r["rows"]]
    expected_frames = scale.s2_chunks + 3  # started, the text chunks, finished, [DONE]
    errors = Counter(
        row[5] or (f"HTTP {row[3]}" if row[3] != 200 else f"{row[4]} frames")
        for row in rows
        if not _ok(row, expected_frames)
    )
    good = [row for row in rows if _ok(row, expected_frames)]
    lateness = [row[2] - row[0] - schedule_s for row in good]
    stream_lateness = [row[2] - row[1] - schedule_s for row in good]
    ttfe = [row[1] - row[0] for row in good]
    intervals = [(row[0], row[2] or row[0]) for row in rows]
    peak_t, peak_rss = sampler.peak()
    open_streams = max_overlap(intervals)
    delta = peak_rss - rss_before
    events = sum(row[4] - 1 for row in good)
    out: dict[str, Any] = {
        "streams": n,
        "chunks": scale.s2_chunks,
        "delay_ms": scale.s2_delay_ms,
        "ramp_s": scale.s2_ramp_s,
        "completed": len(good),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(5)),
        "lateness": summary_ms(lateness),
        "lateness_curve": curve_ms(lateness),
        "stream_lateness": summary_ms(stream_lateness),
        "ttfe": summary_ms(ttfe),
        "max_open_streams": open_streams,
        "open_at_peak_rss": open_at(intervals, peak_t),
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_peak_mib": round(peak_rss / 2**20, 1),
        "rss_per_stream_kib": round(delta / max(open_streams, 1) / 1024, 1),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_event": round(cpu / max(events, 1) * 1e6, 2),
        "events": events,
        "client": _client_load(results),
        "late_start_s": max(r["late_start_s"] for r in results),
        "window": [min(row[0] for row in rows), max((row[2] or row[0]) for row in rows)],
    }
    if verify:
        out["stored"] = verify_stored(server, [(s["agent"], s["task"], s["words"]) for s in specs], workdir, tag)
    return out


def _ok(row: list[Any], expected_frames: int) -> bool:
    return row[5] is None and row[3] == 200 and row[4] == expected_frames and bool(row[2])


def verify_stored(server: Server, items: list[tuple[str, str, int]], workdir: Path, tag: str) -> dict[str, Any]:
    job = {
        "mode": "verify",
        "host": HOST,
        "port": server.port,
        "timeout_s": 300,
        "concurrency": 8,
        "tasks": [{"agent": a, "task": t, "words": w} for a, t, w in items],
    }
    result = run_loadgens([job], workdir, f"{tag}-verify", timeout_s=330)[0]
    result.pop("client", None)
    result["all_stored"] = result["checked"] == len(items) and result["problem_count"] == 0
    return result


# 3. time to first event under load ---------------------------------------------------------------------


def first_event(server: Server, scale: Scale, workdir: Path, tag: str) -> dict[str, Any]:
    _warm(server, workdir, tag)
    base = {"host": HOST, "port": server.port, "timeout_s": 60, "agent": "agent-s3"}
    idle_job = {**base, "mode": "samples", "n": scale.s3_samples, "words": 3, "gap_s": scale.s3_gap_s}
    idle_job.update(prefix=f"{tag}-s3-idle-", start_at=0)
    idle = run_loadgens([idle_job], workdir, f"{tag}-s3idle", timeout_s=120)[0]

    start_at = time.monotonic() + 1.5
    spread = 1.0
    sampling_s = scale.s3_samples * (scale.s3_gap_s + 0.05) + 5.0  # generous: the background outlasts the samples
    background = {
        **base,
        "mode": "background",
        "agent": "agent-s3bg",
        "count": scale.s3_background,
        "words": scale.s2_chunks - 2,
        "prefix": f"{tag}-s3-bg-",
        "start_at": start_at,
        "spread_s": spread,
        "until": start_at + spread + 1.0 + sampling_s,
        "max_total": scale.s3_background * 50,
        "timeout_s": 120,
    }
    loaded_job = {**idle_job, "prefix": f"{tag}-s3-load-", "start_at": start_at + spread + 1.0}
    bg, loaded = run_loadgens([background, loaded_job], workdir, f"{tag}-s3", timeout_s=sampling_s + 200)

    def summarize(rows: list[list[Any]]) -> dict[str, Any]:
        good = [r[1] - r[0] for r in rows if r[2] == 200 and r[1] and r[3] is None]
        return {**summary_ms(good), "errors": len(rows) - len(good)}

    return {
        "samples": scale.s3_samples,
        "background_streams": scale.s3_background,
        "idle": summarize(idle["rows"]),
        "loaded": summarize(loaded["rows"]),
        "background": {k: bg[k] for k in ("started", "ok", "errors")},
        "sampling_window_s": round(loaded["rows"][-1][0] - loaded["rows"][0][0], 2) if loaded["rows"] else 0,
        "background_until_s": round(background["until"] - loaded_job["start_at"], 2),
    }


# 4. storage at size ----------------------------------------------------------------------------------


def storage(server: Server, scale: Scale, workdir: Path, tag: str, seeded: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(4)
    agents = scale.s4_agents
    per_agent = scale.s4_tasks // agents
    # task i belongs to agent-(i % agents): agent-0 holds tasks 0, agents, 2*agents, ... (task 0 is the big one)
    small = [f"task-{rng.randrange(1, per_agent) * agents:07d}" for _ in range(scale.s4_samples)]
    base = {"mode": "gets", "host": HOST, "port": server.port, "timeout_s": 600}

    def gets(paths: list[str], name: str) -> dict[str, Any]:
        result = run_loadgens([{**base, "paths": paths}], workdir, f"{tag}-s4-{name}", timeout_s=660)[0]
        statuses = Counter(row[1] for row in result["rows"])
        return {
            **summary_ms([row[0] for row in result["rows"]]),
            "statuses": dict(statuses),
            "body_bytes": int(statistics.median(row[2] for row in result["rows"])),
        }

    run_loadgens([{**base, "paths": ["/tasks/agent-0?limit=50"] * 5}], workdir, f"{tag}-s4-warm", timeout_s=120)
    n, nb = scale.s4_samples, scale.s4_big_samples
    out: dict[str, Any] = {"seeded": seeded}
    out["list_page"] = gets(["/tasks/agent-0?limit=50"] * n, "list")
    out["list_page_no_content"] = gets(["/tasks/agent-0?limit=50&include_content=false"] * n, "listnc")
    out["read_small"] = gets([f"/tasks/agent-0/{t}" for t in small], "small")
    out["read_big"] = gets(["/tasks/agent-0/task-big"] * nb, "big")

    def appends(tasks: list[str], name: str) -> dict[str, Any]:
        targets = [{"agent": "agent-0", "team": "team-1", "task": t, "words": 8} for t in tasks]
        job = {"mode": "appends", "host": HOST, "port": server.port, "timeout_s": 60, "targets": targets}
        rows = run_loadgens([job], workdir, f"{tag}-s4-{name}", timeout_s=600)[0]["rows"]
        good = [r for r in rows if r[3] == 200 and r[2] and r[4] is None]
        return {
            "first_event": summary_ms([r[1] - r[0] for r in good]),
            "complete": summary_ms([r[2] - r[0] for r in good]),
            "errors": len(rows) - len(good),
        }

    append_small = [f"task-{rng.randrange(1, per_agent) * agents:07d}" for _ in range(scale.s4_appends)]
    out["append_small"] = appends(list(dict.fromkeys(append_small)), "appsmall")
    out["append_big"] = appends(["task-big"] * scale.s4_big_appends, "appbig")
    return out


# 5. upload ---------------------------------------------------------------------------------------------


def upload(server: Server, scale: Scale, workdir: Path, tag: str) -> dict[str, Any]:
    _warm(server, workdir, tag, streams=2)
    rss_before = _settle(server)
    job = {
        "mode": "upload",
        "host": HOST,
        "port": server.port,
        "size": scale.s5_bytes,
        "chunk": scale.s5_chunk,
        "agent": "agent-s5",
        "task": f"{tag}-s5",
        "timeout_s": 600,
    }
    with Sampler(server, 0.01) as sampler:
        result = run_loadgens([job], workdir, f"{tag}-s5", timeout_s=660)[0]
    _, peak = sampler.peak()
    seconds = result["t_done"] - result["t_start"]
    out = {
        "bytes": scale.s5_bytes,
        "seconds": round(seconds, 3),
        "mib_per_s": round(scale.s5_bytes / MiB / seconds, 1),
        "rss_before_mib": round(rss_before / MiB, 1),
        "rss_peak_growth_mib": round((peak - rss_before) / MiB, 2),
        "status": result["status"],
        "stream_done": result["done"] and result["finished"],
        "rss_samples": len(sampler.samples),
        "write_error": result.get("write_error"),
        "response_head": result.get("response_head"),
    }
    if server.kind == "real" and server.data_dir is not None:
        sizes = [p.stat().st_size for p in (server.data_dir / "files").rglob("*") if p.is_file()]
        out["stored_file_ok"] = scale.s5_bytes in sizes  # BLOB_STORE=filesystem, the default
    return out


# 6. event-loop health and profile ------------------------------------------------------------------------


def loop_lag(lag: dict[str, Any] | None, window: list[float]) -> dict[str, Any]:
    """Stall figures from the monitor's samples inside the load window."""
    if lag is None:
        return {"error": "no lag file"}
    start, end = window
    inside = [value for t, value in lag["samples"] if start <= t <= end]
    ticks = int(lag["count"] * (end - start) / max(lag["ended"] - lag["started"], 1e-9))
    padded = inside + [0.0] * max(ticks - len(inside), 0)  # ticks under 0.25 ms were not kept
    gcs = [(t, took, gen) for t, took, gen in lag.get("gc_pauses", []) if start <= t <= end]
    stalls = [(t, value) for t, value in lag["samples"] if start <= t <= end and value > 0.010]
    # a stall sample is stamped when the late tick runs, just after the pause that delayed it
    by_gc = sum(1 for t, value in stalls if any(0 <= t - g <= value + 0.002 for g, _, _ in gcs))
    return {
        "gc_pauses_over_1ms": len(gcs),
        "gc_longest_ms": round(max((took for _, took, _ in gcs), default=0.0) * 1000, 2),
        "gc_total_ms": round(sum(took for _, took, _ in gcs) * 1000, 1),
        "gc_gen2": sum(1 for _, _, gen in gcs if gen == 2),
        "stalls_over_10ms_during_gc": by_gc,
        "max_stall_ms": round(max(inside, default=0.0) * 1000, 2),
        "p99_stall_ms": round(pct(padded, 99) * 1000, 3),
        "p999_stall_ms": round(pct(padded, 99.9) * 1000, 3),
        "stalls_over_10ms": sum(1 for v in inside if v > 0.010),
        "stalls_over_20ms": sum(1 for v in inside if v > 0.020),
        "ticks": ticks,
        "loop": lag.get("loop"),
        "gc_objects_after_startup": lag.get("objects_after_startup"),
        "gc_frozen": lag.get("frozen"),
    }


def start_profiler(server: Server, workdir: Path, tag: str, rate_hz: int) -> Any:
    """py-spy on the running server, sampling without pausing it; returns a starter for many_users."""
    out = workdir / f"{tag}-pyspy.txt"

    def during(start_at: float, seconds: float) -> subprocess.Popen[bytes]:
        delay = max(start_at - time.monotonic(), 0)
        pyspy = str(Path(PYTHON).with_name("py-spy"))
        pid = server.proc.pid if server.proc else 0
        script = (
            f"sleep {delay:.2f}; exec {pyspy} record --pid {pid} --nonblocking --threads --gil --full-filenames"
            f" --rate {rate_hz} --duration {max(int(seconds), 1)} --format raw -o {out}"  # stopped by SIGINT
        )
        log = (workdir / f"{tag}-pyspy.log").open("wb")
        return subprocess.Popen(["sh", "-c", script], stdout=log, stderr=log)

    return during, out


def _samples(raw: Path) -> Iterator[tuple[list[str], int]]:
    """py-spy's raw lines as (frames, count); split on newlines only: a torn sample may hold a form feed."""
    for line in raw.read_text(errors="replace").split("\n"):
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack.split(";"), int(count_text)


def top_frames(raw: Path, limit: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of the busiest frames of the event-loop (main) thread, from py-spy's
    collapsed stacks (`--threads`: each stack starts with its thread); worker threads (aiosqlite's, the
    to_thread pool) are summed apart, since they do not hold up the loop except through the GIL."""
    if not raw.exists():
        return {"error": "no profile"}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = main = 0
    for frames, count in _samples(raw):
        total += count
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread ") else "?"
        if thread != "MainThread":
            threads[_worker_name(thread, frames)] += count
            continue
        main += count
        frames = frames[1:] or ["(native code) (?)"]
        own[_short(frames[-1])] += count
        for name in {_short(f) for f in frames}:
            inclusive[name] += count

    def share(counter: Counter[str], of: int) -> list[list[Any]]:
        return [[name, round(100 * c / max(of, 1), 1)] for name, c in counter.most_common(limit)]

    service = Counter({k: v for k, v in inclusive.items() if _is_service(k)})
    return {
        "self_by_area_pct": self_by_area(raw),
        "samples": total,
        "main_thread_samples": main,
        "note": "percentages of the main (event-loop) thread's busy samples",
        "self_pct": share(own, main),
        "inclusive_pct": share(inclusive, main),
        "service_inclusive_pct": share(service, main),
        "other_threads_pct_of_all": share(threads, total),
    }


AREAS = [
    ("uvloop's C code: timers, socket I/O, callbacks (self time of Runner.run)", ["Runner.run (runners.py"]),
    ("uvicorn's send (httptools_impl.py)", ["httptools_impl.py"]),
    ("run registry (adapters/memory_runs.py)", ["memory_runs.py"]),
    ("SSE framing and response (entrypoints/sse.py, chunks.py)", ["entrypoints/sse.py", "entrypoints/chunks.py"]),
    ("run execution (application/)", ["(application/"]),
    ("echo model and asyncio.sleep", ["echo_llm.py", "sleep (tasks.py"]),
    ("asyncio futures, shield, timeouts", ["(tasks.py", "(timeouts.py", "(futures.py", "(queues.py"]),
    (
        "service middlewares (entrypoints/)",
        ["entrypoints/middleware.py", "entrypoints/failsafe.py", "entrypoints/auth"],
    ),
    ("Starlette / FastAPI / anyio (incl. their send wrappers)", ["starlette/", "fastapi/", "anyio/"]),
    ("form parsing", ["entrypoints/multipart.py", "entrypoints/forms.py", "multipart/"]),
    ("SQLAlchemy", ["sqlalchemy/"]),
    ("asyncpg", ["asyncpg/"]),
    ("aiosqlite", ["aiosqlite/"]),
    (
        "store adapter (adapters/sqlite_store/, postgres_store.py, sqlalchemy_store/)",
        ["sqlite_store/", "postgres_store.py", "sqlalchemy_store/"],
    ),
    ("other service code", ["(entrypoints/", "(adapters/", "(domain/"]),
]


def self_by_area(raw: Path) -> list[list[Any]]:
    """Self time of the event-loop thread by area, from py-spy's collapsed stacks (`--threads`).

    Self time is exact; inclusive time is not, on Python 3.11: py-spy cuts a stack at each coroutine
    boundary, so a caller coroutine does not always appear above the frames it awaits. Garbage
    collection shows up as self time of whatever line allocated when a collection was due.
    """
    counts: Counter[str] = Counter()
    total = 0
    for frames, count in _samples(raw):
        if "MainThread" not in frames[0]:
            continue
        total += count
        leaf = _short(frames[-1]) if len(frames) > 1 else "(native code)"
        area = next((name for name, marks in AREAS if any(m in leaf for m in marks)), "other")
        counts[area] += count
    return [[name, round(100 * c / max(total, 1), 1)] for name, c in counts.most_common()]


def _worker_name(thread: str, frames: list[str]) -> str:
    if any("aiosqlite" in f or "_connection_worker_thread" in f for f in frames):
        return "aiosqlite connection threads"
    if any("sqlite_store/" in f for f in frames):
        return "SQLite store threads"
    if any("concurrent/futures/thread.py" in f or "(thread.py:" in f for f in frames):
        return "to_thread pool"
    return thread.split(" (")[0]


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py:123)" keeping the package dir for the service's code
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = where.split("/")
    for marker in ("entrypoints", "adapters", "application", "domain", "bench"):
        if marker in parts:
            return f"{name} ({'/'.join(parts[parts.index(marker) :])})"
    if "site-packages" in parts:
        return f"{name} ({'/'.join(parts[parts.index('site-packages') + 1 :])})"
    return f"{name} ({parts[-1]})"


def _is_service(name: str) -> bool:
    return any(f"({p}/" in name for p in ("entrypoints", "adapters", "application", "domain"))
