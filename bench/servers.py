"""Server processes (the real service or the floor), the databases behind them, and samplers of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "bench"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset_pg_database() -> None:
    """Drop and create the throwaway `bench` database (never another)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{PG_DB}"')
        finally:
            await conn.close()

    asyncio.run(run())


def drop_pg_database() -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


def pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Server:
    """One server process: `kind` real (python -m entrypoints.main) or floor (python -m bench.floor).

    `instrumented` runs either through bench.instrumented_server (loop-lag monitor inside).
    """

    name: str
    kind: str
    workdir: Path
    db: str | None = None
    delay_ms: int = 0
    instrumented: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    fresh_db: bool = True
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    ps: psutil.Process | None = None
    data_dir: Path | None = None

    @property
    def lag_file(self) -> Path:
        return self.workdir / f"{self.name}.lag.json"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        self.data_dir = self.data_dir or self.workdir / f"{self.name}-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_", "DATABASE_", "STREAM_", "WEB_"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "AI_PROVIDER": "echo",
                "AI_ECHO_DELAY_MS": str(self.delay_ms),
                "FLOOR_DELAY_MS": str(self.delay_ms),
                "DATA_DIR": str(self.data_dir),
                "LOG_LEVEL": "warning",
                "WEB_SERVER_HOST": "127.0.0.1",
                "WEB_SERVER_PORT": str(self.port),
                "BENCH_LAG_FILE": str(self.lag_file) if self.instrumented else "",
            }
        )
        if self.db == "postgres":
            env["DATABASE_URL"] = PG_URL
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        if self.instrumented:
            return [PYTHON, "-m", "bench.instrumented_server", "--app", self.kind]
        return [PYTHON, "-m", "entrypoints.main" if self.kind == "real" else "bench.floor"]

    def start(self, timeout_s: float = 90.0) -> Server:
        if self.kind == "real" and self.db == "postgres" and self.fresh_db:
            reset_pg_database()
        self.port = free_port()
        env = self.env()
        log = self.log_file.open("ab")
        # cwd is the work dir, so that no `.env` of the checkout leaks into the benchmark
        self.proc = subprocess.Popen(self.command(), env=env, cwd=self.workdir, stdout=log, stderr=log)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup: see {self.log_file}")
            if _health(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /health in {timeout_s}s")

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def cpu_s(self) -> float:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def problems(self) -> list[str]:
        """Log lines that show a failure (the server runs at LOG_LEVEL=warning)."""
        if not self.log_file.exists():
            return []
        lines = self.log_file.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or " ERROR " in line or "CRITICAL" in line][:20]

    def lag(self) -> dict[str, Any] | None:
        if not self.lag_file.exists():
            return None
        return dict(json.loads(self.lag_file.read_text()))

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _health(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Sampler:
    """Samples a process's RSS every `interval_s` in a thread: [(monotonic time, rss bytes)]."""

    def __init__(self, server: Server, interval_s: float = 0.02) -> None:
        self.server = server
        self.interval = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.monotonic(), self.server.rss()))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def peak(self) -> tuple[float, int]:
        return max(self.samples, key=lambda s: s[1]) if self.samples else (0.0, 0)


def run_loadgens(jobs: list[dict[str, Any]], workdir: Path, tag: str, timeout_s: float) -> list[dict[str, Any]]:
    """Run each job in its own load-generator process, all at once; return their results in order."""
    procs = []
    for i, job in enumerate(jobs):
        job_file = workdir / f"{tag}-{i}.job.json"
        out_file = workdir / f"{tag}-{i}.out.json"
        out_file.unlink(missing_ok=True)
        job_file.write_text(json.dumps(job))
        log = (workdir / f"{tag}-{i}.log").open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [PYTHON, "-m", "bench.loadgen", str(job_file), str(out_file)], env=env, stdout=log, stderr=log, cwd=ROOT
        )
        procs.append((proc, out_file))
    deadline = time.monotonic() + timeout_s
    results = []
    for proc, out_file in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode != 0 or not out_file.exists():
            raise RuntimeError(f"load generator {out_file.name} failed (exit {proc.returncode}): see {workdir}")
        results.append(json.loads(out_file.read_text()))
    return results
