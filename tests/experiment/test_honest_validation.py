"""Honest few-shot selection: validation rows come out of each sample's labelled budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.data import LABEL, TEXT
from augment.errors import ConfigError
from augment.experiment import expand, load_experiment, run_experiment, write_report
from augment.experiment.data import prepare
from augment.experiment.runner import SampleWork
from tests.experiment.helpers import baseline_config, lm_spec, write_yaml

HONEST = {"honest_per_class": 3, "seed": 5}


def _config(tmp_path: Path, data_csv: Path, **overrides):
    return load_experiment(write_yaml(tmp_path / "h.yaml", baseline_config(data_csv, **overrides)))


def test_validation_rows_come_out_of_the_labelled_budget(tmp_path: Path, data_csv: Path):
    config = _config(tmp_path, data_csv, validation=HONEST,
                     augmenters=[{"type": "none"}, {"type": "oracle"}, {"type": "eda"}], ratios=[1])
    data = prepare(config)["tiny"]
    cells = [c for c in expand(config) if c.examples_per_class == 10]
    work = SampleWork(config, data, 10, 0, cells[0].sample_key, tmp_path / "cache")
    assert work.train[LABEL].value_counts().to_dict() == {"neg": 7, "pos": 7}
    assert work.validation[LABEL].value_counts().to_dict() == {"neg": 3, "pos": 3}
    assert not set(work.train[TEXT]) & set(work.validation[TEXT])
    assert set(work.train[TEXT]) | set(work.validation[TEXT]) == set(data.sample(10, 0)[TEXT])   # the budget
    other = SampleWork(config, data, 10, 1, cells[0].sample_key, tmp_path / "cache")
    assert set(other.validation[TEXT]) != set(work.validation[TEXT])
    oracle, _ = work.synthetic(next(c for c in cells if c.augmenter.type == "oracle" and c.seed == 0))
    assert not set(oracle[TEXT]) & (set(work.validation[TEXT]) | set(work.train[TEXT]))

    out = tmp_path / "out"
    run_experiment(config, out)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["rows"]["real"] for r in rows if r["examples_per_class"] == 10} == {14}
    assert {r["validation_metrics"]["n"] for r in rows if r["examples_per_class"] == 5} == {6}
    text = write_report(config, out)[0].read_text()
    assert "- validation selection: honest few-shot: 3 of each class's examples_per_class labelled rows" in text
    assert "## Lift in macro-F1 on the validation split" in text
    chosen = text.split("## Chosen per seed on its own validation rows", 1)[1].split("## All cells")[0]
    picks = [line for line in chosen.splitlines() if line.startswith("| tiny")]
    assert len(picks) == 2 and all("| none, EDA, pseudo-label or an LM recipe | 2 |" in line for line in picks)
    assert not any("oracle" in line for line in picks)   # it needs labels the user lacks: never a choice


def test_honest_cells_and_samples_have_their_own_keys(tmp_path: Path, data_csv: Path):
    plain = expand(_config(tmp_path, data_csv))
    pooled = expand(_config(tmp_path, data_csv, validation={"size": 30}))
    honest = expand(_config(tmp_path, data_csv, validation=HONEST))
    assert {c.sample_key for c in plain} == {c.sample_key for c in pooled}          # pool draw: same samples
    assert not {c.sample_key for c in plain} & {c.sample_key for c in honest}      # fewer training rows: new
    assert not {c.key for c in pooled} & {c.key for c in honest}


def test_report_names_the_pool_selection_too(tmp_path: Path, data_csv: Path):
    config = _config(tmp_path, data_csv, validation={"size": 30, "seed": 4}, seeds=[0])
    run_experiment(config, tmp_path / "out")
    text = write_report(config, tmp_path / "out")[0].read_text()
    assert "- validation selection: 30 pool rows drawn once (seed 4), minus each sample's own rows: a research aid" \
        in text
    plain = _config(tmp_path, data_csv, seeds=[0])
    run_experiment(plain, tmp_path / "plain")
    assert "- validation selection: none" in write_report(plain, tmp_path / "plain")[0].read_text()


@pytest.mark.parametrize("validation, message", [
    ({"honest_per_class": 5}, r"validation\.honest_per_class 5 takes the whole labelled budget: it must be below "
                              r"every examples_per_class \(smallest 5\)"),
    ({"honest_per_class": 2, "size": 100}, r"'validation': give either 'size' .* or 'honest_per_class'"),
])
def test_bad_honest_budget_is_one_error(tmp_path: Path, data_csv: Path, validation, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, data_csv, validation=validation)


def test_lm_needs_enough_rows_after_the_honest_validation_rows(tmp_path: Path, data_csv: Path, tiny_model_dir):
    spec = lm_spec(tiny_model_dir, min_rows=4)
    config = _config(tmp_path, data_csv, validation={"honest_per_class": 2},
                     augmenters=[{"type": "none"}, spec])
    with pytest.raises(ConfigError, match=r"examples_per_class 5 less 2 honest validation rows is below "
                                          r"finetune\.min_rows=4"):
        run_experiment(config, tmp_path / "out")
