"""Shared fixtures: a tiny random GPT-2 with the real tokenizer, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from augment.models import build_tiny_gpt2


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or write the user's cache, except the slow SmolLM2 conversion."""
    os.environ.setdefault("AUGMENT_TEST_REAL_CACHE", os.environ.get("AUGMENT_CACHE", ""))
    os.environ["AUGMENT_CACHE"] = str(tmp_path_factory.mktemp("augment-cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 layers, width 64, GPT-2 vocabulary: 3.4M parameters."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))
