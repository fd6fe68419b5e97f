"""Continuous batching: exactly the jobs' rows, the same for any slot count, refill or not, any world size."""

from __future__ import annotations

import pytest

from augment.config import GenerateConfig
from augment.distributed import LocalComm
from augment.errors import AugmentError
from augment.generate.loop import auto_batch_size, collect_rows, decode_rows, owned
from augment.generate import LabelGenerator
from augment.rundir import RunDir
from tests.threadcomm import in_threads

CONFIG = GenerateConfig(n=12, max_new_tokens=10, seed=3, min_chars=0)


@pytest.fixture(scope="module")
def gen(trained_run) -> LabelGenerator:
    """A model that learnt to end rows, so rows have different lengths and slots refill."""
    return LabelGenerator.load(RunDir(trained_run), "pos")


@pytest.fixture(scope="module")
def jobs(gen: LabelGenerator) -> list[tuple[int, list[int]]]:
    return [(i, gen.prompt(["", "so", "awful day"][i % 3])) for i in range(15)]


def rows(gen: LabelGenerator, jobs, slots: int, refill: bool = True) -> dict[int, list[int]]:
    out = list(decode_rows(gen, CONFIG, jobs, slots, refill))
    assert len(out) == len(jobs) and {i for i, _ in out} == {i for i, _ in jobs}
    return dict(out)


def test_every_row_ends_at_the_separator_or_the_cap(gen: LabelGenerator, jobs) -> None:
    finished = rows(gen, jobs, 4)
    assert all(len(t) <= CONFIG.max_new_tokens and gen.separator_id not in t for t in finished.values())
    assert any(len(t) < CONFIG.max_new_tokens for t in finished.values())  # some stopped early: refill ran


def test_refill_gives_the_rows_of_the_plain_batched_loop(gen: LabelGenerator, jobs) -> None:
    assert rows(gen, jobs, 4) == rows(gen, jobs, 4, refill=False)


@pytest.mark.parametrize("slots", [1, 3, 8, 15])
def test_rows_do_not_depend_on_the_slot_count(gen: LabelGenerator, jobs, slots: int) -> None:
    assert rows(gen, jobs, slots) == rows(gen, jobs, 4)


def test_idle_slots_are_dropped_once_nothing_is_left_to_start(gen: LabelGenerator, jobs, monkeypatch) -> None:
    """The tail of a job runs on a shrinking batch, and shrinking does not change a row."""
    from augment.generate import loop

    sizes: list[int] = []
    real = loop.keep_rows
    monkeypatch.setattr(loop, "keep_rows", lambda cache, rows: (sizes.append(len(rows)), real(cache, rows)))
    shrunk = rows(gen, jobs, 8)
    assert sizes and sizes == sorted(sizes, reverse=True) and sizes[0] <= 6, sizes
    monkeypatch.setattr(loop, "SHRINK_AT", 0.0)
    sizes.clear()
    assert rows(gen, jobs, 8) == shrunk and sizes == []


def test_stopping_at_a_separator_other_than_eos(gen: LabelGenerator, jobs) -> None:
    other = LabelGenerator(gen.model, gen.tokenizer, gen.place, "pos", False, ["pos"], "t", separator=13)
    finished = rows(other, [(i, other.prompt("")) for i in range(6)], 3)
    assert all(13 not in t for t in finished.values())
    assert all(other.prompt("x")[0] == 13 for _ in range(1))


def test_owned_indices_are_disjoint_and_cover() -> None:
    class C:
        def __init__(self, rank: int, world: int):
            self.rank, self.world_size = rank, world

    for lo, hi in ((0, 10), (7, 23), (5, 6)):
        got = sorted(i for r in range(3) for i in owned(C(r, 3), lo, hi))
        assert got == list(range(lo, hi))


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_collect_the_single_process_rows(gen: LabelGenerator, world: int) -> None:
    config = CONFIG.model_copy(update={"min_chars": 12})  # drops some rows: a second round runs
    expected = collect_rows(gen, config, [], LocalComm(), size=4)
    assert len(expected) == config.n and all(len(r["text"]) >= 12 for r in expected)
    assert in_threads(world, lambda comm: collect_rows(gen, config, [], comm, size=5)) == [expected] * world


def test_cached_rows_are_reused_and_new_ones_saved(gen: LabelGenerator) -> None:
    store: dict[int, str] = {}
    expected = collect_rows(gen, CONFIG, [], LocalComm(), size=4, saved=store.update)
    assert set(range(CONFIG.n)) <= set(store)
    partial = {i: t for i, t in store.items() if i % 2}
    calls: list[int] = []
    again = collect_rows(gen, CONFIG, [], LocalComm(), size=3, cached=partial, on_rows=calls.append)
    assert again == expected and len(calls) == len(store) - len(partial)


def test_gives_up_after_max_attempts(gen: LabelGenerator) -> None:
    config = CONFIG.model_copy(update={"n": 3, "min_chars": 10**6, "max_attempts": 2})
    with pytest.raises(AugmentError, match="only 0 of 3 rows after 6 tries"):
        collect_rows(gen, config, [], LocalComm(), size=2)


def test_auto_batch_size_cpu_is_bounded(gen: LabelGenerator) -> None:
    assert 1 <= auto_batch_size(gen, CONFIG) <= 256
