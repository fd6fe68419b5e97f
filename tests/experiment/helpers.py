"""Tiny hand-made data and experiment YAMLs for the runner tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

POS_WORDS = ["love", "great", "happy", "lovely", "wonderful", "thanks", "amazing", "best", "smile", "fun"]
NEG_WORDS = ["hate", "awful", "sad", "terrible", "worst", "delay", "rude", "broken", "angry", "lost"]
FILLER = ["the", "flight", "today", "my", "bag", "crew", "seat", "so", "again", "this", "trip", "morning"]


def tiny_frame(per_label: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for label, vocab in (("pos", POS_WORDS), ("neg", NEG_WORDS)):
        for i in range(per_label):
            words = rng.sample(FILLER, 4) + rng.sample(vocab, 2)
            rng.shuffle(words)
            rows.append({"text": " ".join(words) + f" {i}", "label": label})
    return pd.DataFrame(rows)


def baseline_config(data_path: Path, **overrides: Any) -> dict[str, Any]:
    """No LM: every cell takes well under a second."""
    config = {
        "data": {"path": str(data_path)},
        "test": {"size": 20, "seed": 0, "min_rows": 10},
        "examples_per_class": [5, 10],
        "seeds": [0, 1],
        "augmenters": [{"type": "none"}, {"type": "oversample"}, {"type": "eda"}],
        "ratios": [1, 2],
        "quality": {"judge_rows_per_class": 20},
    }
    config.update(overrides)
    return config


def lm_spec(model_dir: Path, **finetune: Any) -> dict[str, Any]:
    return {"type": "lm", "name": "lm", "pool_margin": 1.2,
            "finetune": {"model": str(model_dir), "max_steps": 2, "batch_size": 4, "block_size": 32,
                         "learning_rate": 5e-3, "save_steps": 100, **finetune},
            "generate": {"batch_size": 16, "max_new_tokens": 6, "prefix_words": 2}}


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def cell_result(**fields: Any) -> Any:
    """A valid results row with only what a test cares about given; scores may be given as
    ``{"accuracy": ..., "macro_f1": ...}`` alone."""
    from augment.experiment.results import CellResult

    row: dict[str, Any] = {
        "dataset": "d", "classifier": "c", "examples_per_class": 10, "augmenter": "none", "type": "none",
        "mode": None, "ratio": None, "filter": False, "seed": 0, "config": {},
        "metrics": {"accuracy": 0.5, "macro_f1": 0.5},
        "rows": {"real": 20, "synthetic": 0, "requested_per_label": 0, "synthetic_by_label": {}},
        "quality": None, "wall_s": {"augment": 0.0, "total": 0.0}, "created": "2026-01-01T00:00:00+0000"}
    row.update(fields)
    row.setdefault("key", f"{row['augmenter']}-{row['ratio']}-{row['filter']}-{row['seed']}-{row['classifier']}-"
                          f"{row['examples_per_class']}")
    for split in ("metrics", "validation_metrics"):
        if split in row:
            row[split] = {"n": 100, "per_class": {}, **row[split]}
    return CellResult.model_validate(row)
