"""Data-parallel fine-tuning under torchrun: two CPU processes (gloo), one run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_two_processes_write_one_finished_run(tiny_model_dir: Path, tweets: pd.DataFrame, tmp_path: Path) -> None:
    data = tmp_path / "tweets.csv"
    tweets.assign(text=tweets["text"] + [f" #{i}" for i in range(len(tweets))]).to_csv(data, index=False)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "augment.cli", "finetune", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(out),
           "--max-steps", "4", "--batch-size", "2", "--block-size", "32", "--save-steps", "2", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "run.json").read_text())
    for key in ("pos", "neg"):
        entry = manifest["models"][key]
        assert entry["status"] == "done" and entry["steps"] == 4 and entry["processes"] == 2
        assert (out / key / "model.safetensors").exists()
    assert not list(out.glob(".*partial*"))
    rng_states = sorted(p.name for p in (out / ".work" / "pos" / "checkpoints" / "checkpoint-4").glob("rng_state*"))
    assert rng_states == ["rng_state_0.pth", "rng_state_1.pth"]
