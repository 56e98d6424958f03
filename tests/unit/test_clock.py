"""Identifiers: unique, well-formed, and never shared with a forked child."""

from __future__ import annotations

import os
import re
import select
import signal
import warnings

from application import clock
from application.clock import new_id, new_run_id, random_bytes


def test_ids_are_unique_and_well_formed_across_many_pool_refills() -> None:
    ids = [new_id() for _ in range(3_000)]  # 30 KB of random bytes: several 4 KiB pools
    runs = [new_run_id() for _ in range(3_000)]
    assert len(set(ids)) == len(ids) and len(set(runs)) == len(runs)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)  # time-ordered to the millisecond
    assert all(re.fullmatch(r"[0-9a-f]{12}", r) for r in runs)


def test_a_draw_larger_than_the_pool_is_served_whole() -> None:
    big = random_bytes(10_000)
    assert len(big) == 10_000 and len(set(big)) > 200
    assert random_bytes(4) != random_bytes(4)


def test_a_forked_child_draws_bytes_of_its_own_even_if_the_pool_was_locked_at_the_fork() -> None:
    random_bytes(1)  # the pool is filled before the fork
    read, write = os.pipe()
    with warnings.catch_warnings(), clock._pool_lock:  # as if another thread were drawing at that moment
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+): the child only draws
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, random_bytes(32))
            finally:
                os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 10)
    child = os.read(read, 64) if ready else b""
    os.close(read)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != random_bytes(32)
