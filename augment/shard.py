"""Generation sharded across processes (``torchrun`` / ``accelerate launch``), merged without loss or duplicates.

A batch's rows depend only on (seed, label, batch index, batch size) (see
``augment.generate``), so rank ``r`` of ``W`` simply generates batch indices
``r, r + W, r + 2W, ...``. After each round the ranks exchange how many rows
each batch kept; once the batches ``0..m`` hold ``config.n`` rows, every rank
stops and the rows of batches ``0..m`` are merged in index order and cut to
``n``. The result is exactly what one process would have produced.

Run it as::

    torchrun --nproc-per-node 2 -m augment.shard RUN_DIR --out rows.jsonl [--config c.yaml]

Each rank uses ``cuda:LOCAL_RANK`` on a GPU machine and the CPU elsewhere
(``gloo``). Only rank 0 writes the output file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch

from augment.config import GenerateConfig, build, load_yaml
from augment.errors import AugmentError
from augment.generate import (COLUMNS, LabelGenerator, attempt_limit, prefix_source, resolve_batch_size,
                              sample_batch, sampling_params, too_few_rows, train_texts)
from augment.run import RunDir

log = logging.getLogger(__name__)

Shard = dict[int, list[dict[str, Any]]]


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


def sharded_rows(gen: LabelGenerator, config: GenerateConfig, train_rows: list[str], comm: Comm,
                 on_rows: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """``config.n`` rows for ``gen.label``, the same rows one process would make; every rank gets them."""
    size = comm.all_gather(resolve_batch_size(gen, config))[0]  # rank 0 decides: free memory differs per GPU
    prefixes = prefix_source(train_rows, config.prefix_words, config.seed)
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
            mine[index] = sample_batch(gen, config, index, prefixes(index, size), params)
            if on_rows:
                on_rows(len(mine[index]))
        kept.update(pair for pair in comm.all_gather((index, len(mine.get(index, [])))) if pair[0] < limit)
        last = batches_needed(kept, config.n)
        round_ += 1
    shards = comm.all_gather({i: rows for i, rows in mine.items() if i <= last})
    return merge_shards(shards, config.n)


def generate_label_sharded(run: RunDir, label: str, config: GenerateConfig, comm: Comm,
                           precision: str = "auto") -> pd.DataFrame:
    """``config.n`` rows for one label, as one process makes them, with the batches spread over ``comm``'s ranks."""
    gen = LabelGenerator.load(run, label, precision)
    rows = sharded_rows(gen, config, train_texts(run, label), comm)
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``torchrun ... -m augment.shard``: every label of a run, rank 0 writes JSONL."""
    parser = argparse.ArgumentParser(prog="python -m augment.shard", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output file (.csv/.tsv/.jsonl/.parquet), written by rank 0")
    parser.add_argument("--config", type=Path, help="YAML file; its 'generate' section is used")
    parser.add_argument("--label", action="append", help="label to generate (repeatable; default: all)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    args = parser.parse_args(argv)
    values = load_yaml(args.config)["generate"] if args.config else {}
    config = build(GenerateConfig, str(args.config or "defaults"), **values)
    run = RunDir(args.run_dir)
    labels = args.label or sorted(run.read_manifest()["labels"])
    comm = comm_from_env()
    frames = [generate_label_sharded(run, label, config, comm, args.precision) for label in labels]
    if comm.rank == 0:
        from augment.io import provenance, write_json_atomic
        from augment.output import write_table

        frame = pd.concat(frames, ignore_index=True)
        write_table(frame, args.out)
        write_json_atomic(args.out.with_name(args.out.name + ".provenance.json"), provenance(
            config.model_dump(), run_dir=str(run.root), labels=labels, rows=len(frame), world_size=comm.world_size))
    if isinstance(comm, TorchComm):
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
