"""Experiment options of issue 11: adaptation once per dataset, label-aware pool prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import augment.experiment.runner as runner
from augment.errors import ConfigError
from augment.experiment import expand, load_experiment, run_experiment, write_report
from augment.rundir import RunDir
from tests.experiment.helpers import NEG_WORDS, POS_WORDS, baseline_config, lm_spec, write_yaml

ADAPT = {"max_steps": 3, "batch_size": 4, "block_size": 32, "learning_rate": 5e-3, "eval_fraction": 0.1,
         "eval_steps": 3}


def test_adapt_runs_once_per_dataset_and_every_lm_starts_from_it(tmp_path: Path, data_csv: Path,
                                                                 tiny_model_dir: Path):
    spec = {**lm_spec(tiny_model_dir), "adapt": ADAPT, "adapt_texts": 30}
    config = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(
        data_csv, seeds=[0, 1], examples_per_class=[5], augmenters=[{"type": "none"}, spec], ratios=[1],
        validation={"size": 10, "seed": 2})))
    out = tmp_path / "out"
    run_experiment(config, out)
    adapted = list((out / "cache" / "adapt").iterdir())
    assert len(adapted) == 1, "one adapted model for every seed and size"
    record = json.loads((adapted[0] / "adapt.json").read_text())
    assert record["texts"] == 30 and record["base_model"] == str(tiny_model_dir)
    data = next(iter(runner.prepare(config).values()))
    lms = list((out / "cache" / "lm").iterdir())
    assert len(lms) == 2
    for lm in lms:
        manifest = RunDir(lm).read_manifest()
        assert manifest.finetune["model"] == str(adapted[0]) and manifest.adapted_from["texts"] == 30
    rows = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    lm_rows = [r for r in rows if r["augmenter"] == "lm"]
    assert lm_rows and all(r["adapt"]["key"] == adapted[0].name for r in lm_rows)
    assert {r["quality"]["real_fragment_rate"] is not None for r in lm_rows} == {True}
    again = tmp_path / "again"
    run_experiment(config, again, cache=out / "cache")
    report, _ = write_report(config, again)
    trained_in = f"cached (trained in {record['wall_s'] / 60:.1f} min)"
    assert trained_in in report.read_text(), "a model adapted by another run still shows its cost"
    held_out = set(data.test["text"])
    assert not held_out & set(data.unlabelled())
    plain = load_experiment(write_yaml(tmp_path / "b.yaml", baseline_config(
        data_csv, seeds=[0, 1], examples_per_class=[5], augmenters=[{"type": "none"}, lm_spec(tiny_model_dir)],
        ratios=[1], validation={"size": 10, "seed": 2})))
    assert {c.key for c in expand(plain)} != {c.key for c in expand(config)}


def test_adapt_takes_its_model_from_finetune(tmp_path: Path, data_csv: Path, tiny_model_dir: Path):
    spec = {**lm_spec(tiny_model_dir), "adapt": {**ADAPT, "model": "gpt2"}}
    with pytest.raises(ConfigError, match="'model' is finetune.model"):
        load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, augmenters=[{"type": "none"},
                                                                                              spec])))


def test_pool_by_label_prompts_give_each_label_its_own_openings(tmp_path: Path, data_csv: Path,
                                                                tiny_model_dir: Path):
    spec = {**lm_spec(tiny_model_dir), "prompts": "pool-by-label"}
    config = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(
        data_csv, seeds=[0], examples_per_class=[10], augmenters=[{"type": "none"}, spec], ratios=[1],
        validation={"size": 10, "seed": 2}, filter={"fidelity": "top-k", "fidelity_top_k": 100, "fidelity_classifier": "tfidf-lr"})))
    data = next(iter(runner.prepare(config).values()))
    work = runner.SampleWork(config, data, 10, 0, "k", tmp_path / "cache")
    prompts = work._prompts(config.augmenters[1], 12)
    assert set(prompts) == {"pos", "neg"} and not set(prompts["pos"]) & set(prompts["neg"])
    assert set(prompts["pos"]) | set(prompts["neg"]) <= set(data.unlabelled())

    def share(texts: list[str], vocab: list[str]) -> float:
        return sum(any(w in t.split() for w in vocab) for t in texts) / len(texts)

    assert share(prompts["pos"][:10], POS_WORDS) > share(prompts["pos"][:10], NEG_WORDS)
    assert share(prompts["neg"][:10], NEG_WORDS) > share(prompts["neg"][:10], POS_WORDS)
    out = tmp_path / "out"
    run_experiment(config, out)
    pool = pd.read_json(next((out / "cache" / "pool").glob("*.jsonl")), lines=True)
    for label in ("pos", "neg"):
        starts = tuple({" ".join(t.split()[:2]) for t in prompts[label]})
        assert all(t.startswith(starts) for t in pool[pool.label == label]["text"])
