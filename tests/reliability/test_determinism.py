"""Same run, config, seed and batch size: byte-identical output from two separate processes.

The provenance file written beside the output holds what a third run needs to
reproduce it: the resolved generation config (with the batch size 'auto'
resolved to), the fine-tuning config, package versions and a hash of each model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main
from augment.files import hash_dir
from augment.rundir import RunDir
from tests.reliability.procs import cli_many


def _args(run: Path, out: Path, batch_size: str) -> list[str]:
    return ["generate", "--run", str(run), "--out", str(out), "-n", "6", "--batch-size", batch_size,
            "--max-new-tokens", "6", "--seed", "3", "--temperature", "0.9", "--no-progress"]


CASES = [("synthetic.csv", "3"), ("synthetic.jsonl", "auto"), ("b8.csv", "8"), ("b64.csv", "64"), ("auto.csv", "auto")]


@pytest.fixture(scope="module")
def outputs(small_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Each case generated once in this process and once in a fresh interpreter."""
    here, there = tmp_path_factory.mktemp("here"), tmp_path_factory.mktemp("there")
    for name, batch in CASES:
        assert main(_args(small_run, here / name, batch)) == 0
    log = there / "child.log"
    assert cli_many([_args(small_run, there / name, batch) for name, batch in CASES], log) == 0, log.read_text()
    return here, there


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, _ in CASES])
def test_two_processes_write_identical_bytes(outputs: tuple[Path, Path], name: str) -> None:
    here, there = outputs
    assert (here / name).read_bytes() == (there / name).read_bytes()
    assert (here / name).stat().st_size > 100


@pytest.mark.slow
def test_batch_size_does_not_change_a_byte(outputs: tuple[Path, Path]) -> None:
    here, _ = outputs
    files = [(here / name).read_bytes() for name in ("synthetic.csv", "b8.csv", "b64.csv", "auto.csv")]
    assert files[0] == files[1] == files[2] == files[3]


@pytest.mark.slow
@pytest.mark.parametrize("name, batch", CASES)
def test_provenance_is_enough_to_reproduce(outputs: tuple[Path, Path], small_run: Path, name: str,
                                           batch: str) -> None:
    here, _ = outputs
    prov = json.loads((here / f"{name}.provenance.json").read_text())
    assert {"config", "versions", "python", "platform", "run_dir", "labels", "models", "finetune", "data",
            "batch_sizes", "sampler", "rows", "created"} <= prov.keys()
    assert {"n", "seed", "batch_size", "max_new_tokens", "temperature", "top_k", "top_p", "prefix_words",
            "min_chars"} <= prov["config"].keys()
    assert (prov["config"]["seed"], prov["config"]["n"], prov["config"]["temperature"]) == (3, 6, 0.9)
    assert {"augment", "torch", "transformers"} <= prov["versions"].keys()
    manifest = RunDir(small_run).read_manifest()
    assert prov["finetune"] == manifest.finetune and prov["data"] == manifest.data
    for label in ("neg", "pos"):
        model = manifest.labels[label].model
        assert prov["models"][label] == manifest.models[model].hash == hash_dir(small_run / model)
    # rows depend on the sampler, not on the batch size; 'auto' is recorded as the size it resolved to
    frame = pd.read_json(here / name, lines=True) if name.endswith(".jsonl") else pd.read_csv(here / name)
    assert {json.loads(p)["sampler"] for p in frame["params"]} == {prov["sampler"]}
    assert all(isinstance(v, int) for v in prov["batch_sizes"].values())
    if batch != "auto":
        assert set(prov["batch_sizes"].values()) == {int(batch)}
