"""Shared fixtures: a tiny random GPT-2 with the real tokenizer, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

from augment.models import build_tiny_gpt2

# transformers binds its stderr handler to sys.stderr on first use; make that the session's
# stream, not one test's captured stream, which is closed (and then fails) once the test ends.
hf_logging.get_logger("transformers")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or write the user's cache, except the slow SmolLM2 conversion."""
    os.environ.setdefault("AUGMENT_TEST_REAL_CACHE", os.environ.get("AUGMENT_CACHE", ""))
    os.environ["AUGMENT_CACHE"] = str(tmp_path_factory.mktemp("augment-cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    # `precision: auto` would measure each machine and may pick bf16: the suite's rows and losses must not
    # depend on the machine; tests/test_precision.py exercises auto with this unset.
    os.environ["AUGMENT_PRECISION"] = "fp32"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 layers, width 64, GPT-2 vocabulary: 3.4M parameters."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


POS = [f"so happy today {w}" for w in ("yay", "wow", "love it", "great", "nice")] * 4
NEG = [f"awful day {w}" for w in ("ugh", "no", "hate it", "bad", "sad")] * 4


@pytest.fixture(scope="session")
def tweets() -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame({"text": POS + NEG, "label": ["pos"] * len(POS) + ["neg"] * len(NEG)})


def train_run(model_dir: Path, frame, out: Path, **overrides) -> Path:
    from augment.config import FinetuneConfig
    from augment.finetune import finetune_run

    settings = {**dict(model=str(model_dir), max_steps=30, batch_size=8, block_size=32, learning_rate=5e-3,
                       save_steps=10), **overrides}
    finetune_run(frame, out, FinetuneConfig(**settings), data_info={"path": "tweets"})
    return out


@pytest.fixture(scope="session")
def trained_run(tiny_model_dir: Path, tweets, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-label run on short tweets: the models learn to end rows with EOS."""
    return train_run(tiny_model_dir, tweets, tmp_path_factory.mktemp("runs") / "per-label")


@pytest.fixture(scope="session")
def conditioned_run(tiny_model_dir: Path, tweets, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tiny_model_dir, tweets, tmp_path_factory.mktemp("runs") / "conditioned", mode="conditioned")
