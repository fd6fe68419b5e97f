"""``generate_to_file`` spread over ranks: the same file as one process, resumable with any world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from augment.config import GenerateConfig
from augment.errors import OutputExistsError
from augment.filter import FilterConfig
from augment.generate import Generators, dropped_path, generate_to_file, parts_dir
from augment.rundir import RunDir
from tests.threadcomm import in_threads

CONFIG = GenerateConfig(n=10, batch_size=3, max_new_tokens=16, seed=7)


class Interrupt(Exception):
    pass


@pytest.fixture(autouse=True)
def _one_thread_in_torch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real ranks are processes; threads share transformers' loader state."""
    lock = threading.RLock()
    for name in ("generator", "tokenizer"):
        monkeypatch.setattr(Generators, name, _locked(getattr(Generators, name), lock))


def _locked(load, lock):
    def locked_load(self, *args, **kwargs):
        with lock:
            return load(self, *args, **kwargs)
    return locked_load


def sharded(run: Path, out: Path, world: int, **kwargs) -> list:
    return in_threads(world, lambda comm: generate_to_file(RunDir(run), ["pos", "neg"], CONFIG, out, comm=comm,
                                                           **kwargs))


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_write_the_single_process_file(trained_run: Path, tmp_path: Path, world: int) -> None:
    reference = tmp_path / "one.csv"
    generate_to_file(RunDir(trained_run), ["pos", "neg"], CONFIG, reference, filter_config=FilterConfig())
    out = tmp_path / "many.csv"
    results = sharded(trained_run, out, world, filter_config=FilterConfig())
    assert results[1:] == [None] * (world - 1)
    assert len(results[0].generated) == 20
    assert out.read_bytes() == reference.read_bytes()
    assert dropped_path(out).read_bytes() == dropped_path(reference).read_bytes()
    prov = json.loads(out.with_name("many.csv.provenance.json").read_text())
    assert prov["world_size"] == world and prov["rows_generated"] == 20
    assert not parts_dir(out).exists()


def test_interrupted_sharded_job_resumes_with_another_world_size(trained_run: Path, tmp_path: Path) -> None:
    reference = tmp_path / "one.jsonl"
    generate_to_file(RunDir(trained_run), ["pos", "neg"], CONFIG, reference)
    out = tmp_path / "rows.jsonl"
    rounds: list[int] = []

    def stop_in_neg(label: str, rows: int) -> None:  # a rank stops; the others wait, then fail
        rounds.append(rows)
        if label == "neg" and len(rounds) > 12:
            raise Interrupt

    with pytest.raises(Interrupt):
        sharded(trained_run, out, 3, on_rows=stop_in_neg)
    assert not out.exists()
    assert len(list(parts_dir(out).glob("pos-*.jsonl"))) >= 3

    with pytest.raises(OutputExistsError, match="--resume"):
        sharded(trained_run, out, 2)
    sharded(trained_run, out, 2, resume=True)
    assert out.read_bytes() == reference.read_bytes()
    assert not parts_dir(out).exists()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_generate_command_under_torchrun(trained_run: Path, tmp_path: Path, world: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # -r, not --run: torchrun's own parser takes --run for an abbreviation of its --run-path
    args = ["generate", "-r", str(trained_run), "-n", "10", "--batch-size", "3", "--max-new-tokens", "16",
            "--seed", "7", "--no-progress"]
    one = subprocess.run([sys.executable, "-m", "augment", *args, "--out", str(tmp_path / "one.csv")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world),
           "-m", "augment", *args, "--out", str(tmp_path / "two.csv")]
    two = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert two.stdout.count("rows →") == 1  # rank 0 alone reports
    prov = json.loads((tmp_path / "two.csv.provenance.json").read_text())
    assert prov["world_size"] == world
