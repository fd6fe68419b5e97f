"""Fixtures for the reliability suite: a labelled CSV and a cheap finished run on the tiny GPT-2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import train_run

# Distinct rows (load_dataset drops duplicate texts), enough for several optimizer steps per epoch.
FAULT_ROWS = [(f"so happy today number {i} yay", "pos") for i in range(60)] + \
             [(f"awful day number {i} ugh", "neg") for i in range(60)]


@pytest.fixture(scope="session")
def fault_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fault-data") / "tweets.csv"
    pd.DataFrame(FAULT_ROWS, columns=["text", "label"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two per-label models trained for 2 steps: near-random, so every row runs to max_new_tokens.

    Cheap to build (seconds), and its rows are random GPT-2 tokens, which include the
    quotes, newlines and carriage returns the writers must survive.
    """
    frame = pd.DataFrame(FAULT_ROWS[:10] + FAULT_ROWS[60:70], columns=["text", "label"])
    return train_run(tiny_model_dir, frame, tmp_path_factory.mktemp("small-run") / "run", max_steps=2,
                     batch_size=2, block_size=16, save_steps=2)

