"""Fixtures for conversion tests: a gpt-2-simple model dir written without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.convert import hf_to_gpt2simple


@pytest.fixture(scope="session")
def g2s_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny HF GPT-2 as a gpt-2-simple model dir (hparams.json, encoder.json, vocab.bpe, model.ckpt.*)."""
    return hf_to_gpt2simple(tiny_model_dir, tmp_path_factory.mktemp("g2s") / "tiny")
