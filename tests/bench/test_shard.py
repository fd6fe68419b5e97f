"""Sharded generation: disjoint batch indices per rank, merged to exactly the single-process rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.generate import sample_batch, sampling_params
from augment.shard import LocalComm, batches_needed, merge_shards, on_rank0, owned_indices, sharded_rows
from tests.threadcomm import in_threads


@dataclass
class FakeGen:
    """Deterministic rows per seed; roughly a third come back empty and are dropped (min_chars)."""

    label: str = "pos"
    model_name: str = "fake"
    model: Any = None
    place: Any = None

    def sample(self, prefixes: list[str], config: GenerateConfig, seed: int) -> list[str]:
        return ["" if (seed + i) % 3 == 0 else f"row {seed} {i}" for i in range(len(prefixes))]


def run_ranks(world: int, config: GenerateConfig) -> list[list[dict]]:
    return in_threads(world, lambda comm: sharded_rows(FakeGen(), config, [], comm))


def single_process(config: GenerateConfig) -> list[dict]:
    """The specification: batches 0, 1, 2... in order until ``n`` rows are kept."""
    rows: list[dict] = []
    params = json.dumps(sampling_params(config, config.batch_size), sort_keys=True)
    index = 0
    while len(rows) < config.n:
        rows += sample_batch(FakeGen(), config, index, [""] * config.batch_size, params)
        index += 1
    return rows[: config.n]


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("n,batch", [(10, 4), (7, 3), (1, 5), (23, 2)])
def test_sharded_equals_single_process(world: int, n: int, batch: int) -> None:
    config = GenerateConfig(n=n, batch_size=batch, min_chars=1, seed=11)
    expected = single_process(config)
    for rows in run_ranks(world, config):
        assert rows == expected
        assert len(rows) == n
        assert len({(r["seed"], r["text"]) for r in rows}) == n  # no duplicates


def test_gives_up_like_single_process() -> None:
    config = GenerateConfig(n=50, batch_size=2, min_chars=10**6, max_attempts=2)
    with pytest.raises(AugmentError, match="only 0 of 50"):
        run_ranks(3, config)


def test_owned_indices_are_disjoint_and_cover() -> None:
    owned = [owned_indices(r, 3, 4) for r in range(3)]
    flat = sorted(i for o in owned for i in o)
    assert flat == list(range(12))


def test_batches_needed_waits_for_a_contiguous_prefix() -> None:
    assert batches_needed({0: 2, 2: 5}, 4) is None
    assert batches_needed({0: 2, 1: 0, 2: 5}, 4) == 2
    assert batches_needed({0: 4, 1: 4}, 4) == 0


def test_merge_rejects_duplicates_and_gaps() -> None:
    row = {"text": "x"}
    with pytest.raises(AugmentError, match="two ranks"):
        merge_shards([{0: [row]}, {0: [row]}], 1)
    with pytest.raises(AugmentError, match="missing"):
        merge_shards([{0: [row]}, {2: [row]}], 2)
    assert merge_shards([{1: [{"text": "b"}]}, {0: [{"text": "a"}]}], 2) == [{"text": "a"}, {"text": "b"}]


def _gloo_rank(rank: int, world: int, port: int, model_dir: str, queue: Any) -> None:
    import os

    from augment.generate import LabelGenerator
    from augment.models import load_model, load_tokenizer, placement
    from augment.shard import TorchComm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    tokenizer = load_tokenizer(model_dir)
    tokenizer.padding_side = "left"
    gen = LabelGenerator(load_model(model_dir).eval(), tokenizer, placement("fp32"), "pos", False, ["pos"], "t")
    config = GenerateConfig(n=5, batch_size=2, max_new_tokens=4, min_chars=0, seed=5)
    rows = sharded_rows(gen, config, [], TorchComm(rank, world))
    torch.distributed.destroy_process_group()
    if rank == 0:
        queue.put(rows)


@pytest.mark.slow
def test_two_gloo_processes_match_single_process(tiny_model_dir) -> None:
    import socket

    import torch.multiprocessing as mp

    from augment.generate import LabelGenerator
    from augment.models import load_model, load_tokenizer, placement

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_gloo_rank, args=(r, 2, port, str(tiny_model_dir), queue)) for r in range(2)]
    for p in procs:
        p.start()
    rows = queue.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.padding_side = "left"
    gen = LabelGenerator(load_model(str(tiny_model_dir)).eval(), tokenizer, placement("fp32"), "pos", False,
                         ["pos"], "t")
    config = GenerateConfig(n=5, batch_size=2, max_new_tokens=4, min_chars=0, seed=5)
    expected = sharded_rows(gen, config, [], LocalComm())
    assert [r["text"] for r in rows] == [r["text"] for r in expected]
    assert len(rows) == 5


def test_local_comm_is_plain_generation() -> None:
    config = GenerateConfig(n=9, batch_size=4, min_chars=1)
    assert sharded_rows(FakeGen(), config, [], LocalComm()) == single_process(config)


def test_on_rank0_runs_once_and_gives_every_rank_its_result_or_error() -> None:
    calls: list[int] = []
    assert in_threads(3, lambda comm: on_rank0(comm, lambda: calls.append(comm.rank) or "ok")) == ["ok"] * 3
    assert calls == [0]

    def refuse() -> None:
        raise AugmentError("out.csv: already exists")

    def catch(comm: Any) -> str:
        try:
            on_rank0(comm, refuse)
        except AugmentError as exc:
            return str(exc)
        return "no error"

    assert in_threads(3, catch) == ["out.csv: already exists"] * 3


def test_cached_batches_are_reused_and_new_ones_saved() -> None:
    config = GenerateConfig(n=9, batch_size=2, min_chars=1, seed=3)
    expected = single_process(config)
    store: dict[int, list[dict]] = {}
    in_threads(2, lambda comm: sharded_rows(FakeGen(), config, [], comm, cached=store.get,
                                            saved=store.__setitem__))
    assert store and all(isinstance(i, int) for i in store)
    sampled: list[int] = []

    class Counting(FakeGen):
        def sample(self, prefixes, config, seed):  # type: ignore[override]
            sampled.append(seed)
            return super().sample(prefixes, config, seed)

    again = in_threads(3, lambda comm: sharded_rows(Counting(), config, [], comm, cached=store.get))
    assert sampled == [] and again == [expected] * 3
