from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.main import GC_THRESHOLDS, build_server
from entrypoints.settings import Settings


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
async def test_the_server_tunes_the_collector_as_it_starts(tmp_path: Path) -> None:
    server = build_server(Settings(_env_file=None, ai_provider="echo", data_dir=tmp_path))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.01)
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0  # what startup built is out of the collector's way
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
