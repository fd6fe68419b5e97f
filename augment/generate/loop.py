"""Generation sharded across processes (``torchrun`` / ``accelerate launch``), merged without loss or duplicates.

A batch's rows depend only on (seed, label, batch index, batch size) (see
``augment.generate``), so rank ``r`` of ``W`` simply generates batch indices
``r, r + W, r + 2W, ...``. After each round the ranks exchange how many rows
each batch kept; once the batches ``0..m`` hold ``config.n`` rows, every rank
stops and the rows of batches ``0..m`` are merged in index order and cut to
``n``. The result is exactly what one process would have produced.

``augment generate`` shards itself when a launcher started it::

    torchrun --nproc-per-node 2 -m augment generate -r RUN_DIR --out rows.csv

Each rank uses ``cuda:LOCAL_RANK`` on a GPU machine and the CPU elsewhere
(``gloo``). Every rank saves its finished batches under ``OUT.parts/`` (so
``--resume`` works, with any number of processes); rank 0 alone filters and
writes the output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.generate import (LabelGenerator, attempt_limit, prefix_source, resolve_batch_size, sample_batch,
                              sampling_params, too_few_rows)

Shard = dict[int, list[dict[str, Any]]]
T = TypeVar("T")


class Comm(Protocol):
    """The one collective sharding needs: every rank gets every rank's object, in rank order."""

    rank: int
    world_size: int

    def all_gather(self, obj: Any) -> list[Any]: ...


@dataclass(frozen=True)
class LocalComm:
    """A single process: sharding degenerates to plain sequential generation."""

    rank: int = 0
    world_size: int = 1

    def all_gather(self, obj: Any) -> list[Any]:
        return [obj]


@dataclass(frozen=True)
class TorchComm:
    """``torch.distributed`` (gloo on CPU, nccl on GPU), as set up by torchrun or accelerate."""

    rank: int
    world_size: int

    def all_gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out


def comm_from_env() -> Comm:
    """Join the process group the launcher described (WORLD_SIZE, RANK, MASTER_ADDR...), if any."""
    dist = torch.distributed
    if not dist.is_available() or (int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not dist.is_initialized()):
        return LocalComm()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return TorchComm(dist.get_rank(), dist.get_world_size())


def owned_indices(rank: int, world_size: int, rounds: int) -> list[int]:
    """The batch indices rank ``rank`` generates in the first ``rounds`` rounds: disjoint across ranks."""
    return [r * world_size + rank for r in range(rounds)]


def batches_needed(kept: dict[int, int], n: int) -> int | None:
    """The last batch index of the shortest prefix ``0..m`` of batches holding ``n`` rows, if known."""
    total = 0
    for index in range(len(kept)):
        if index not in kept:
            return None
        total += kept[index]
        if total >= n:
            return index
    return None


def merge_shards(shards: Sequence[Shard], n: int) -> list[dict[str, Any]]:
    """Batches from all ranks in index order, cut to ``n`` rows; a batch seen twice or missing is an error."""
    merged: Shard = {}
    for shard in shards:
        for index, rows in shard.items():
            if index in merged:
                raise AugmentError(f"sharded generation: batch {index} produced by two ranks")
            merged[index] = rows
    if sorted(merged) != list(range(len(merged))):
        missing = sorted(set(range(max(merged, default=-1) + 1)) - set(merged))
        raise AugmentError(f"sharded generation: batches {missing} missing from the merge")
    rows = [row for index in sorted(merged) for row in merged[index]]
    if len(rows) < n:
        raise AugmentError(f"sharded generation: {len(rows)} rows merged, expected {n}")
    return rows[:n]


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


def sharded_rows(gen: LabelGenerator, config: GenerateConfig, prompt_texts: list[str], comm: Comm, *,
                 size: int | None = None, cached: Callable[[int], list[dict] | None] | None = None,
                 saved: Callable[[int, list[dict]], None] | None = None,
                 on_rows: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """``config.n`` rows for ``gen.label``, the same rows one process would make; every rank gets them.

    ``size`` is the batch size every rank uses (default: rank 0 resolves it, as free memory
    differs per GPU); ``cached(index)`` returns a batch finished by an earlier job, ``saved``
    stores a new one, and ``on_rows`` hears how many rows each round kept over all ranks.
    """
    if size is None:
        size = comm.all_gather(resolve_batch_size(gen, config))[0]
    prefixes = prefix_source(prompt_texts, config.prefix_words, config.seed)
    params = json.dumps(sampling_params(config, size), sort_keys=True)
    limit = attempt_limit(config, size)
    mine: Shard = {}
    kept: dict[int, int] = {}
    last: int | None = None
    round_ = 0
    while last is None:
        if round_ * comm.world_size >= limit:
            raise too_few_rows(gen.label, sum(kept.values()), len(kept), config)
        index = round_ * comm.world_size + comm.rank
        if index < limit:  # past the limit one process would have given up: leave a gap
            rows = cached(index) if cached else None
            if rows is None:
                rows = sample_batch(gen, config, index, prefixes(index, size), params)
                if saved:
                    saved(index, rows)
            mine[index] = rows
        counts = [pair for pair in comm.all_gather((index, len(mine.get(index, [])))) if pair[0] < limit]
        kept.update(counts)
        if on_rows:
            on_rows(sum(count for _, count in counts))
        last = batches_needed(kept, config.n)
        round_ += 1
    shards = comm.all_gather({i: rows for i, rows in mine.items() if i <= last})
    return merge_shards(shards, config.n)


def close(comm: Comm) -> None:
    """Leave the process group ``comm_from_env`` joined (a no-op for a single process)."""
    if isinstance(comm, TorchComm) and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
