"""Which rank am I, who writes: one layer for fine-tuning and generation.

accelerate's ``PartialState`` sets up the process group (gloo on CPU, nccl on
GPU), the device and the backend from whatever launcher started us (torchrun,
``accelerate launch``, or nothing: one process). ``Comm`` is the one collective
generation needs on top; tests pass a thread-based ``Comm`` (tests/threadcomm.py)
to run several ranks cheaply in one process.

    torchrun --nproc-per-node 2 -m augment generate -r RUN_DIR --out rows.csv
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from augment.errors import AugmentError

T = TypeVar("T")


class Comm(Protocol):
    """Every rank gets every rank's object, in rank order."""

    rank: int
    world_size: int

    def all_gather(self, obj: Any) -> list[Any]: ...


@dataclass(frozen=True)
class LocalComm:
    """A single process: every collective is the identity."""

    rank: int = 0
    world_size: int = 1

    def all_gather(self, obj: Any) -> list[Any]:
        return [obj]


@dataclass(frozen=True)
class StateComm:
    """``torch.distributed`` as accelerate's ``PartialState`` set it up."""

    state: Any

    @property
    def rank(self) -> int:
        return self.state.process_index

    @property
    def world_size(self) -> int:
        return self.state.num_processes

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def launched() -> bool:
    """Did a launcher describe several processes (WORLD_SIZE > 1)?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def partial_state() -> Any:
    """accelerate's view of the launch (the CPU when no GPU is visible)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def process_state(distributed: bool = True) -> Any:
    """``is_main_process`` / ``num_processes`` / ``wait_for_everyone`` for a stage; one process
    without accelerate when the stage cannot run distributed (the gpt-2-simple back-end)."""
    return partial_state() if distributed else _OneProcess()


class _OneProcess:
    is_main_process = True
    num_processes = 1
    process_index = 0

    def wait_for_everyone(self) -> None:
        pass


def comm_from_env() -> Comm:
    """The launch's ranks as a ``Comm``: ``LocalComm`` for one process."""
    return StateComm(partial_state()) if launched() else LocalComm()


def on_rank0(comm: Comm, work: Callable[[], T]) -> T:
    """``work()`` on rank 0 only (the checks and files all ranks share); its result or its
    ``AugmentError`` reaches every rank, so no rank is left waiting in a collective."""
    result, error = None, None
    if comm.rank == 0:
        try:
            result = work()
        except AugmentError as exc:
            error = exc
    result, error = comm.all_gather((result, error))[0]
    if error is not None:
        raise error
    return result


def close(comm: Comm) -> None:
    """Leave the process group (a no-op for one process)."""
    import torch.distributed as dist

    if isinstance(comm, StateComm) and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
