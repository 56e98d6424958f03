"""Upload one large file to a real server process and report how much its memory grows (psutil RSS).

    python -m bench.upload_memory              # 1 GiB, accepted (limits raised to fit), then one past the limit
    python -m bench.upload_memory --size 256M  # any size: K, M, G suffixes

The body is produced by a generator (the same 1 MiB block again and again), so the client holds no file;
the server is `python -m entrypoints.main` with the echo model and its own data directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

MIB = 1 << 20
BLOCK = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomavc1" + os.urandom(MIB - 24)
BOUNDARY = "bench-upload-boundary"


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The service in a subprocess, and a thread sampling its resident memory every 10 ms."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        variables = {**os.environ, "AI_PROVIDER": "echo", "AI_ECHO_DELAY_MS": "0", "LOG_LEVEL": "WARNING"}
        variables |= {"DATA_DIR": str(data_dir), "WEB_SERVER_HOST": "127.0.0.1", "WEB_SERVER_PORT": str(self.port)}
        self.process = subprocess.Popen([sys.executable, "-m", "entrypoints.main"], env=variables | env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()

    def wait_ready(self) -> None:
        for _ in range(300):
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def sample(self) -> None:
        self.peak = self.rss()
        threading.Thread(target=self._sampler, daemon=True).start()

    def _sampler(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.rss())
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self.process.terminate()
        self.process.wait(timeout=60)


def body(size: int, id_task: str, sent: list[int]) -> Iterator[bytes]:
    fields = {"id_team_agent": "bench", "id_team": "bench", "id_task": id_task, "text": "Describe the video"}
    for name, value in fields.items():
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="videos"; filename="big.mp4"\r\n\r\n'.encode()
    left = size
    while left > 0:
        block = BLOCK if left >= len(BLOCK) else BLOCK[:left]
        left -= len(block)
        sent[0] += len(block)
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def envelope(id_task: str) -> int:
    return sum(len(part) for part in body(0, id_task, [0]))


def upload(server: Server, size: int, id_task: str) -> dict[str, Any]:
    sent = [0]
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(size + envelope(id_task)),
    }
    started = time.perf_counter()
    try:
        response = httpx.post(server.url + "/messages", content=body(size, id_task, sent), headers=headers, timeout=600)
        status, answer = response.status_code, response.text[-200:]
    except httpx.TransportError as error:  # the server may answer 413 and close while we still write
        status, answer = 0, repr(error)
    return {"status": status, "answer": answer, "sent": sent[0], "seconds": time.perf_counter() - started}


def run(size: int, *, limit: int | None) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    limits = {"MAX_UPLOAD_BYTES": str(limit or size + MIB), "MAX_REQUEST_BYTES": str(size + 2 * MIB)}
    server = Server(data_dir, **limits)
    try:
        server.wait_ready()
        upload(server, MIB, "warm-up")  # imports, database, first-request paths
        baseline = server.rss()
        server.sample()
        result = upload(server, size, "big")
        files = [p.stat().st_size for p in (data_dir / "files").rglob("*") if p.is_file() and p.suffix != ".json"]
        result |= {"baseline_rss": baseline, "peak_rss": server.peak, "growth": server.peak - baseline}
        result |= {"samples": server.samples}
        result |= {"stored_bytes": max(files, default=0) if limit is None else sum(files) - MIB}
        return result
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def report(title: str, size: int, result: dict[str, Any]) -> None:
    mib = {k: int(v) / MIB for k, v in result.items() if k in ("baseline_rss", "peak_rss", "growth", "sent")}
    seconds = float(result["seconds"])
    print(f"{title}: {size / MIB:.0f} MiB file -> HTTP {result['status']} in {seconds:.1f} s")
    print(f"  sent {mib['sent']:.0f} MiB ({mib['sent'] / seconds:.0f} MiB/s), stored {result['stored_bytes']} bytes")
    print(f"  server RSS: {mib['baseline_rss']:.1f} MiB before, {mib['peak_rss']:.1f} MiB peak", end="")
    print(f" ({result['samples']} samples, every 10 ms)")
    print(f"  growth: {mib['growth']:.2f} MiB ({int(result['growth']) // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="file size, e.g. 1G, 300M (default 1G)")
    parser.add_argument("--limit", default="512M", help="MAX_UPLOAD_BYTES for the over-limit run (0 skips it)")
    args = parser.parse_args()
    size, limit = parse_size(args.size), parse_size(args.limit)
    report("accepted", size, run(size, limit=None))
    if 0 < limit < size:
        report(f"over a {limit / MIB:.0f} MiB limit", size, run(size, limit=limit))


if __name__ == "__main__":
    main()
