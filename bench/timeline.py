"""`python -m bench.timeline [N] [DATABASE_URL]`: where one message's time goes, on an idle server.

Serves the real app in this process (`entrypoints.main.build_server`: uvloop, httptools, echo model with
50 ms between chunks, SQLite in a temporary directory unless a DATABASE_URL is given), sends N one-word
messages one after another from a client thread, and notes the moment each step is reached, by wrapping
the functions that mark it. Prints the median time from the request's arrival to each mark, and between
the marks after the model's last chunk. The wrappers cost a few microseconds each; the server is idle, so
this is the latency of the path itself, what no load adds to.
"""

from __future__ import annotations

import http.client
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time

from bench.servers import free_port

BODY = '--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'  # one part per field


def form(task: str) -> bytes:
    fields = {"id_team_agent": "agent", "id_team": "team", "id_task": task, "text": "hello"}
    return ("".join(BODY.format(name=k, value=v) for k, v in fields.items()) + "--b--\r\n").encode()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    port = free_port()
    os.environ.update(
        AI_PROVIDER="echo",
        AI_ECHO_DELAY_MS="50",
        DATA_DIR=tempfile.mkdtemp(prefix="bench-timeline-"),
        LOG_LEVEL="warning",
        WEB_SERVER_HOST="127.0.0.1",
        WEB_SERVER_PORT=str(port),
    )
    if len(sys.argv) > 2:
        os.environ["DATABASE_URL"] = sys.argv[2]

    from bench.marks import Marks, install
    from entrypoints import main as entry

    marks: Marks = {}
    install(marks)
    server = entry.build_server()

    def client() -> None:
        time.sleep(2)
        try:
            for i in range(n):
                conn = http.client.HTTPConnection("127.0.0.1", port)
                headers = {"content-type": "multipart/form-data; boundary=b", "accept": "text/event-stream"}
                conn.request("POST", "/messages", form(f"timeline-{i}"), headers)
                conn.getresponse().read()
                conn.close()
                time.sleep(0.02)
        finally:
            server.should_exit = True

    threading.Thread(target=client, daemon=True).start()
    server.run()
    kept = [marks[f"timeline-{i}"] for i in range(n // 5, n)]  # the first ones warm up
    print(f"median ms from the request's arrival ({len(kept)} messages):")
    first = ["ASGI task runs", "endpoint reached", "form parsed", "stored and claimed", "started written"]
    for label in [*first, "model starts"]:
        print(f"  {label:22} {statistics.median(r[label] - r['arrived'] for r in kept) * 1000:8.3f}")
    print("after the model's last chunk, ms between marks:")
    last = ["last chunk out of the model", "run ends", "final save done", "finished written", "[DONE] written"]
    for a, b in itertools.pairwise(last):
        print(f"  {a} -> {b:18} {statistics.median(r[b] - r[a] for r in kept) * 1000:8.3f}")


if __name__ == "__main__":
    main()
