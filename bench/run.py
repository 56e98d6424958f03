"""`python -m bench.run [--quick] [--scenario N ...] [--db sqlite|postgres|both]` (what `make bench` runs).

Starts the floor and then the real service (echo model; SQLite, then PostgreSQL) as separate processes,
drives them from load-generator processes over loopback, and writes the raw results as JSON to
bench/results/<date>-<db>.json, the plot to docs/benchmarks.png and the tables to docs/benchmarks.md.
A --quick run (small scales, for checking the harness) writes all of that under bench/results/tmp/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench import scenarios as sc
from bench.report import render
from bench.seed import seed
from bench.servers import PG_URL, ROOT, Server, drop_pg_database, pg_available, reset_pg_database

RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import sqlite3

    from uvicorn.loops.auto import auto_loop_factory
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    factory = auto_loop_factory()
    versions = {}
    for name in (
        "uvicorn",
        "uvloop",
        "httptools",
        "fastapi",
        "starlette",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "orjson",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["sqlite"] = sqlite3.sqlite_version
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "uvicorn_loop": f"{factory.__module__}.{getattr(factory, '__qualname__', factory)}",
        "uvicorn_http": AutoHTTPProtocol.__name__,
        "versions": versions,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def load_snapshot() -> dict[str, Any]:
    """Load average and the busiest processes that are not ours (the machine may be shared)."""
    mine = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    procs = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            proc.cpu_percent(None)
            procs.append(proc)
        except psutil.Error:
            pass
    time.sleep(1.0)
    busy = []
    for proc in procs:
        try:
            share = proc.cpu_percent(None)
        except psutil.Error:
            continue
        if proc.pid not in mine and share >= 5:
            cmd = " ".join(" ".join(proc.info.get("cmdline") or [proc.info.get("name") or "?"]).split())[:100]
            busy.append([round(share, 1), cmd])
    busy.sort(reverse=True)
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy_pct": psutil.cpu_percent(interval=0.5),
        "other_busy_processes": busy[:8],
    }


class LoadWatch:
    """The 1-minute load average every 10 s during the run (the machine may be shared)."""

    def __init__(self) -> None:
        import threading

        self.samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(10.0):
            self.samples.append([round(time.monotonic() - started), round(os.getloadavg()[0], 2)])

    def stop(self) -> list[list[float]]:
        self._stop.set()
        self._thread.join(timeout=2)
        return self.samples


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by servers and load generators


def run_side(kind: str, db: str | None, scale: sc.Scale, wanted: set[int], work: Path) -> dict[str, Any]:
    """Every wanted scenario against the floor (kind=floor) or the real service on `db`."""
    out: dict[str, Any] = {}
    servers: dict[str, Any] = {}
    tag = kind if db is None else f"{kind}-{db}"
    real = kind == "real"

    def finish(server: Server) -> None:
        code = server.stop()
        servers[server.name] = {"exit_code": code, "log_problems": server.problems()}

    if wanted & {1, 5}:
        server = Server(f"{tag}-d0", kind, work, db=db, delay_ms=0).start()
        try:
            if 1 in wanted:
                log(f"{tag}: 1 single stream")
                out["s1"] = sc.single_stream(server, scale, work, f"{tag}-a")
            if 5 in wanted:
                log(f"{tag}: 5 upload")
                out["s5"] = sc.upload(server, scale, work, f"{tag}-a")
        finally:
            finish(server)
    if wanted & {2, 3}:
        server = Server(f"{tag}-d50", kind, work, db=db, delay_ms=scale.s2_delay_ms).start()
        try:
            if 2 in wanted:
                log(f"{tag}: 2 many users")
                out["s2"] = sc.many_users(server, scale, work, f"{tag}-b", verify=real)
            if 3 in wanted:
                log(f"{tag}: 3 time to first event")
                out["s3"] = sc.first_event(server, scale, work, f"{tag}-b")
        finally:
            finish(server)
    if 6 in wanted:
        log(f"{tag}: 6 event-loop lag under scenario 2")
        server = Server(f"{tag}-lag", kind, work, db=db, delay_ms=scale.s2_delay_ms, instrumented=True).start()
        try:
            load = sc.many_users(server, scale, work, f"{tag}-c", verify=False)
        finally:
            finish(server)
        out["s6"] = {"lag": sc.loop_lag(server.lag(), load["window"]), "load": load}
        if real:
            log(f"{tag}: 6 profile (py-spy) under scenario 2")
            server = Server(f"{tag}-prof", kind, work, db=db, delay_ms=scale.s2_delay_ms).start()
            try:
                during, raw = sc.start_profiler(server, work, tag, scale.profile_rate_hz)
                load = sc.many_users(server, scale, work, f"{tag}-d", verify=False, during=during)
            finally:
                finish(server)
            out["s6"]["profile"] = sc.top_frames(raw)
            out["s6"]["profile_load"] = {k: load[k] for k in ("completed", "errors", "lateness", "server_cpu_s")}
            if raw.exists():
                out["s6"]["profile_raw"] = raw
    if 4 in wanted and real:
        log(f"{tag}: 4 storage at size: seeding {scale.s4_tasks} tasks")
        data_dir = work / f"{tag}-s4-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        if db == "postgres":
            reset_pg_database()
            url = PG_URL
        else:
            url = f"sqlite+aiosqlite:///{data_dir / 'agent.db'}"
        seeded = seed(
            url,
            n_tasks=scale.s4_tasks,
            agents=scale.s4_agents,
            per_task=scale.s4_threads_per_task,
            big=scale.s4_big_threads,
        )
        log(f"{tag}: 4 seeded {seeded}")
        server = Server(f"{tag}-s4", kind, work, db=db, delay_ms=0, fresh_db=False)
        server.data_dir = data_dir
        server.start(timeout_s=300)
        try:
            out["s4"] = sc.storage(server, scale, work, f"{tag}-e", seeded)
            out["s4"]["db_size_mib"] = db_size_mib(db, data_dir)
        finally:
            finish(server)
    out["servers"] = servers
    return out


def db_size_mib(db: str | None, data_dir: Path) -> float:
    if db == "postgres":
        import asyncio

        import asyncpg

        async def size() -> int:
            conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
            try:
                return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
            finally:
                await conn.close()

        return round(asyncio.run(size()) / 2**20, 1)
    return round(sum(p.stat().st_size for p in data_dir.glob("agent.db*")) / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small scales, to check the harness (a minute or two)")
    parser.add_argument("--scenario", type=int, action="append", choices=range(1, 7), help="only these (repeatable)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, job files, databases)")
    args = parser.parse_args(argv)
    scale = sc.QUICK if args.quick else sc.FULL
    wanted = set(args.scenario or range(1, 7))
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in dbs and not pg_available():
        log("PostgreSQL does not answer on 127.0.0.1:5432: skipping it")
        dbs.remove("postgres")
    raise_fd_limit()
    out_dir = RESULTS / "tmp" if args.quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    log(f"scale {scale.name}, scenarios {sorted(wanted)}, databases {dbs}, work dir {work}")
    started = time.monotonic()
    info = machine()
    load_before = load_snapshot()
    log(f"load before: {load_before['loadavg']} (others busy: {load_before['other_busy_processes'][:3]})")
    watch = LoadWatch()
    ok = False
    try:
        floor = run_side("floor", None, scale, wanted, work)
        real = {db: run_side("real", db, scale, wanted, work) for db in dbs}
        ok = True
    finally:
        if "postgres" in dbs:
            drop_pg_database()
        if not ok:
            log(f"failed: logs kept in {work}")
    load_during = watch.stop()
    load_after = load_snapshot()
    log(f"load after: {load_after['loadavg']} (others busy: {load_after['other_busy_processes'][:3]})")
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    suffix = "-quick" if args.quick else ""
    docs = {}
    for db in dbs:
        for side in (real[db], floor):
            prof = side.get("s6", {}).pop("profile_raw", None)
            if prof is not None:
                target = out_dir / f"{date}-{db}{suffix}-pyspy.txt"
                shutil.copy(prof, target)
                side["s6"]["profile_file"] = str(target.relative_to(ROOT))
        doc = {
            "date": date,
            "scale": scale.name,
            "scale_params": scale.__dict__,
            "db": db,
            "machine": info,
            "load_before": load_before,
            "load_after": load_after,
            "load_during": load_during,
            "duration_s": round(time.monotonic() - started, 1),
            "floor": floor,
            "real": real[db],
        }
        path = out_dir / f"{date}-{db}{suffix}.json"
        path.write_text(json.dumps(doc, indent=1, default=str))
        docs[db] = doc
        log(f"wrote {path.relative_to(ROOT)}")
    md, png = (
        (out_dir / "benchmarks.md", out_dir / "benchmarks.png")
        if args.quick
        else (
            DOCS / "benchmarks.md",
            DOCS / "benchmarks.png",
        )
    )
    summary = render(docs, md, png)
    print(summary)
    log(f"wrote {md.relative_to(ROOT)} and {png.relative_to(ROOT)} in {time.monotonic() - started:.0f}s")
    if not args.keep and ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
