"""`python -m bench.thread_hops [N] [SWITCH_INTERVAL_S]`: how long a call handed to a thread takes on a busy loop.

On uvloop, N sequential calls of each kind, first on an idle loop, then while one task keeps the loop busy
(100 µs of Python, then `await asyncio.sleep(0)`, again and again: the state of the server's loop at the end
of scenario 2's ramp). Kinds: a no-op through `asyncio.to_thread`, and a one-row SQLite insert through the
store's own writer thread (`SqliteConnections.write`). Both threads need the GIL back from the loop's thread
each time they run Python again, which is what a busy loop makes slow. Repeat a few times: the busy figures
move a lot from run to run. SWITCH_INTERVAL_S sets `sys.setswitchinterval` (Python's default is 0.005).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

from adapters.sqlite_store import SqliteConnections
from bench.stats import pct


def _spin(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


async def _timed(n: int, call: Callable[[], Awaitable[object]], busy: bool) -> str:
    stop = False

    async def keep_busy() -> None:
        while not stop:
            _spin(100)
            await asyncio.sleep(0)

    spinner = asyncio.create_task(keep_busy()) if busy else None
    walls = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        walls.append((time.perf_counter() - t0) * 1000)
    stop = True
    if spinner is not None:
        await spinner
    return f"p50 {pct(walls, 50):8.2f} ms   p99 {pct(walls, 99):8.2f} ms   max {max(walls):8.2f} ms"


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        connections = SqliteConnections(str(Path(work) / "hops.db"))
        await connections.write(lambda conn: conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
        rows = iter(range(10**9))

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?, ?)", (next(rows), "x" * 200))

        kinds: dict[str, Callable[[], Awaitable[object]]] = {
            "asyncio.to_thread(no-op)": lambda: asyncio.to_thread(lambda: None),
            "SqliteConnections.write(insert)": lambda: connections.write(insert),
        }
        try:
            for busy in (False, True):
                for name, call in kinds.items():
                    print(f"{'busy' if busy else 'idle'} loop, {name:32} {await _timed(n, call, busy)}", flush=True)
        finally:
            await connections.close()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.setswitchinterval(float(sys.argv[2]))
    print(f"switch interval {sys.getswitchinterval() * 1000:g} ms")
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
