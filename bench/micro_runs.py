"""`python -m bench.micro_runs [floor|reads] [N]`: CPU per event of a follower's read path, in-process.

N runs (1,000 by default) of 100 events 50 ms apart on uvloop, no sockets and no HTTP: `reads` publishes each
event to the in-memory run registry and has a follower read it back and frame it the way an SSE stream does
when it is not pushed to; `floor` is one task per stream that sleeps and frames, as bench/floor.py does. Sends
go nowhere. On a noisy machine, run each several times, interleaved, and compare medians.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import uvloop

from adapters.memory_runs import InMemoryRunRegistry
from application.resume import LiveSource
from domain.events import TextChunk
from domain.model import TaskKey
from entrypoints.chunks import DONE, frames

EVENTS, DELAY_S = 100, 0.05
FRAME = b'{"event":"text-chunk","content":" w1"}'


async def _nowhere(body: bytes) -> None:
    return None


async def _on_schedule() -> AsyncIterator[int]:
    """Seqs 1..EVENTS, each due DELAY_S after the one before on a clock of its own (as the echo model)."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    for seq in range(1, EVENTS + 1):
        due += DELAY_S
        await asyncio.sleep(due - loop.time())
        yield seq


async def _floor_stream() -> None:
    async for seq in _on_schedule():
        await _nowhere(frames("r", [(seq, FRAME)]))


async def _followed_run(registry: InMemoryRunRegistry, i: int) -> None:
    key, id_run = TaskKey("agent", f"task-{i}"), f"r{i}"
    await registry.open(key=key, id_run=id_run, on_interrupt=lambda reason: None)
    source = LiveSource(registry, key, id_run)

    async def run() -> None:
        async for seq in _on_schedule():
            await registry.publish(key=key, id_run=id_run, seq=seq, event=TextChunk(" w1"))
        await registry.close(key=key, id_run=id_run)

    async def follow() -> None:
        cursor, ended = 0, False
        while not ended:
            events, ended = await source.read(after=cursor, timeout=15)
            if events:
                cursor = events[-1][0]
            await _nowhere(frames(id_run, events) + (DONE if ended else b""))

    await asyncio.gather(run(), follow())


async def _main(kind: str, n: int) -> float:
    started = time.process_time()
    if kind == "floor":
        await asyncio.gather(*(_floor_stream() for _ in range(n)))
    else:
        registry = InMemoryRunRegistry()
        await asyncio.gather(*(_followed_run(registry, i) for i in range(n)))
    return (time.process_time() - started) * 1e6 / (n * EVENTS)


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "reads"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    print(f"{kind}: {uvloop.run(_main(kind, n)):.2f} µs of CPU per event")


if __name__ == "__main__":
    main()
