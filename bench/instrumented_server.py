"""Run the real service (or the floor) under uvicorn with an event-loop lag monitor inside the process.

`python -m bench.instrumented_server [--app real|floor]` runs the very server `python -m entrypoints.main`
runs (`entrypoints.main.build_server`; the floor gets the same uvicorn settings: uvicorn's "auto" loop and
HTTP parser, i.e. uvloop and httptools when installed), starts a monitor task on the
server's own loop that sleeps 1 ms in a loop and records by how much each sleep overshoots, then serves.
At exit (SIGTERM/SIGINT) it writes every overshoot above 0.25 ms with its CLOCK_MONOTONIC time, and the
sample count, as JSON to $BENCH_LAG_FILE, so the caller can cut out the window of its scenario.

The service code is not changed: only the process it runs in is. BENCH_UVICORN_LOOP / BENCH_UVICORN_HTTP
(e.g. `asyncio`, `h11`) replace uvicorn's `auto` choices, to measure what uvloop and httptools gain.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import uvicorn

TICK_S = 0.001
KEEP_ABOVE_S = 0.00025


def uvicorn_config(app: str, *, factory: bool) -> uvicorn.Config:
    """The same settings `entrypoints.main.main()` passes to `uvicorn.run`."""
    from entrypoints.settings import Settings

    settings = Settings()
    return uvicorn.Config(
        app,
        factory=factory,
        host=settings.web_server_host,
        port=settings.web_server_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 10,
    )


class LagMonitor:
    def __init__(self, config: uvicorn.Config) -> None:
        self.config = config
        self.count = 0
        self.times: list[float] = []
        self.lags: list[float] = []
        self.started = time.monotonic()
        self.gc_pauses: list[list[Any]] = []
        self.objects_after_startup = 0
        self.frozen = 0
        self._gc_started = 0.0
        gc.callbacks.append(self.on_gc)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """gc.callbacks hook: keeps every collection that took over 1 ms (they stop the loop too)."""
        if phase == "start":
            self._gc_started = time.monotonic()
        elif self._gc_started:
            took = time.monotonic() - self._gc_started
            self._gc_started = 0.0
            if took > 0.001:
                self.gc_pauses.append([round(time.monotonic(), 6), round(took, 6), info.get("generation")])

    async def run(self) -> None:
        clock = time.monotonic
        while True:
            before = clock()
            await asyncio.sleep(TICK_S)
            now = clock()
            lag = now - before - TICK_S
            self.count += 1
            if lag > KEEP_ABOVE_S:
                self.times.append(now)
                self.lags.append(lag)

    def dump(self) -> dict[str, Any]:
        return {
            "tick_s": TICK_S,
            "kept_above_s": KEEP_ABOVE_S,
            "started": self.started,
            "ended": time.monotonic(),
            "count": self.count,
            "loop": f"{type(asyncio.get_running_loop()).__module__}.{type(asyncio.get_running_loop()).__name__}",
            "http": getattr(getattr(self.config, "http_protocol_class", None), "__name__", None),
            "gc_pauses": self.gc_pauses,
            "objects_after_startup": self.objects_after_startup,
            "frozen": self.frozen,
            "samples": [[round(t, 6), round(lag, 6)] for t, lag in zip(self.times, self.lags, strict=True)],
        }


async def after_startup(server: uvicorn.Server, monitor: LagMonitor) -> None:
    """Once the app has started: count the objects the collector tracks, and those frozen out of its reach."""
    while not server.started:  # noqa: ASYNC110 (a plain flag of uvicorn.Server)
        await asyncio.sleep(0.01)
    monitor.objects_after_startup = len(gc.get_objects())
    monitor.frozen = gc.get_freeze_count()


async def serve(server: uvicorn.Server, lag_file: Path | None) -> None:
    monitor = LagMonitor(server.config)
    task = asyncio.create_task(monitor.run())
    startup = asyncio.create_task(after_startup(server, monitor))
    try:
        await server.serve()
    finally:
        task.cancel()
        startup.cancel()
        if lag_file is not None:  # the server has stopped: blocking here holds up nothing
            lag_file.write_text(json.dumps(monitor.dump()))  # noqa: ASYNC240


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", choices=["real", "floor"], default="real")
    args = parser.parse_args()
    if args.app == "real":
        from entrypoints.main import build_server

        server: uvicorn.Server = build_server()
    else:
        server = uvicorn.Server(uvicorn_config("bench.floor:app", factory=False))
    config = server.config
    config.loop = os.environ.get("BENCH_UVICORN_LOOP") or config.loop  # type: ignore[assignment]
    config.http = os.environ.get("BENCH_UVICORN_HTTP") or config.http  # type: ignore[assignment]
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default handler that
    # would kill the process before the lag file is written, so the re-raised signal lands here instead.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    lag_file = Path(os.environ["BENCH_LAG_FILE"]) if os.environ.get("BENCH_LAG_FILE") else None
    from uvicorn._compat import asyncio_run  # what uvicorn.Server.run uses

    asyncio_run(serve(server, lag_file), loop_factory=config.get_loop_factory())


if __name__ == "__main__":
    main()
