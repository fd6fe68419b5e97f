"""Ranks as threads: a ``Comm`` for testing sharded code without a process group."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ThreadComm:
    """Exchanges objects through shared slots and a barrier."""

    rank: int
    world_size: int
    slots: list = field(repr=False, default_factory=list)
    barrier: threading.Barrier | None = None

    def all_gather(self, obj: Any) -> list[Any]:
        self.slots[self.rank] = obj
        self.barrier.wait()
        out = list(self.slots)
        self.barrier.wait()
        return out


def in_threads(world: int, work: Callable[[ThreadComm], Any]) -> list[Any]:
    """``work(comm)`` on ``world`` threads; every rank's result, or the first rank's exception."""
    slots: list = [None] * world
    barrier = threading.Barrier(world, timeout=60)
    results: list = [None] * world
    errors: list = []

    def run(rank: int) -> None:
        try:
            results[rank] = work(ThreadComm(rank, world, slots, barrier))
        except Exception as exc:  # surfaced below
            errors.append((rank, exc))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        real = [e for _, e in sorted(errors, key=lambda p: p[0]) if not isinstance(e, threading.BrokenBarrierError)]
        raise (real or [errors[0][1]])[0]
    return results
