"""Oracle and pseudo-label cells: real pool rows in the cell's counts, never evaluation rows; efficiency reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.data import LABEL, TEXT
from augment.errors import ConfigError
from augment.experiment import expand, load_experiment, run_experiment, summarize, write_report
from augment.experiment.data import prepare
from augment.experiment.report import efficiency_rows
from augment.experiment.results import ResultsLog
from augment.experiment.runner import SampleWork
from tests.experiment.helpers import baseline_config, tiny_frame, write_yaml

REFERENCES = [{"type": "none"}, {"type": "eda"}, {"type": "oracle"}, {"type": "pseudo-label"}]


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    """60 rows per label: a pool of 50 per label, enough for ratio 2 at 10 per class beside a validation draw."""
    path = tmp_path / "tiny.csv"
    tiny_frame(per_label=60).to_csv(path, index=False)
    return path


def _config(tmp_path: Path, data_csv: Path, **overrides):
    settings = {"augmenters": REFERENCES, "seeds": [0, 1, 2], **overrides}
    return load_experiment(write_yaml(tmp_path / "refs.yaml", baseline_config(data_csv, **settings)))


def _work(config, tmp_path: Path, examples: int = 10, seed: int = 0) -> tuple[SampleWork, list]:
    data = prepare(config)["tiny"]
    cells = [c for c in expand(config) if c.examples_per_class == examples and c.seed == seed]
    return SampleWork(config, data, examples, seed, cells[0].sample_key, tmp_path / "cache"), cells


def _cell(cells: list, kind: str, ratio: float):
    return next(c for c in cells if c.augmenter.type == kind and c.ratio == ratio)


def test_oracle_adds_real_pool_rows_in_the_cells_counts(tmp_path: Path, big_csv: Path):
    config = _config(tmp_path, big_csv, validation={"size": 6, "seed": 3})
    work, cells = _work(config, tmp_path)
    small, _ = work.synthetic(_cell(cells, "oracle", 1))
    large, extra = work.synthetic(_cell(cells, "oracle", 2))
    assert small[LABEL].value_counts().to_dict() == {"neg": 10, "pos": 10}
    assert large[LABEL].value_counts().to_dict() == {"neg": 20, "pos": 20}
    truth = dict(zip(work.data.pool[TEXT], work.data.pool[LABEL]))
    assert all(truth[t] == label for t, label in zip(large[TEXT], large[LABEL]))      # real labels
    forbidden = set(work.data.test[TEXT]) | set(work.train[TEXT]) | set(work.data._validation_draw()[TEXT])
    assert not forbidden & set(large[TEXT])
    assert set(small[TEXT]) <= set(large[TEXT])                                       # ratios nest
    assert extra["reference"].candidates == len(work.data.pool) - 20 - 6 + len(
        set(work.train[TEXT]) & set(work.data._validation_draw()[TEXT]))


def test_pseudo_label_keeps_the_labellers_surest_pool_texts(tmp_path: Path, big_csv: Path):
    config = _config(tmp_path, big_csv)
    work, cells = _work(config, tmp_path)
    rows, extra = work.synthetic(_cell(cells, "pseudo-label", 1))
    assert rows[LABEL].value_counts().to_dict() == {"neg": 10, "pos": 10}
    assert not (set(work.data.test[TEXT]) | set(work.train[TEXT])) & set(rows[TEXT])
    labeller = work._labellers["tfidf-lr"]
    assert list(labeller.predict(rows[TEXT].tolist())) == rows[LABEL].tolist()        # the labeller's labels
    ranked = work._references["pseudo-label"]
    for label, group in rows.groupby(LABEL):
        kept = ranked[ranked[TEXT].isin(group[TEXT])]["score"]
        rest = ranked[(ranked[LABEL] == label) & ~ranked[TEXT].isin(group[TEXT])]["score"]
        assert kept.min() >= rest.max()                                                # top-k by confidence
    truth = dict(zip(work.data.pool[TEXT], work.data.pool[LABEL]))
    expected = sum(truth[t] == l for t, l in zip(rows[TEXT], rows[LABEL])) / len(rows)
    assert extra["reference"].pseudo_label_accuracy == pytest.approx(expected)
    assert extra["reference"].pseudo_label_accuracy > 0.8                         # separable toy data


def test_pseudo_label_can_label_a_sample_of_the_pool(tmp_path: Path, big_csv: Path):
    """``candidates: N`` labels a seeded N-text sample (same seed, same sample), and only from outside the sample."""
    references = [{"type": "none"}, {"type": "pseudo-label", "candidates": 30}]
    config = _config(tmp_path, big_csv, augmenters=references)
    work, cells = _work(config, tmp_path)
    rows, extra = work.synthetic(_cell(cells, "pseudo-label", 1))
    assert extra["reference"].candidates == 30 and len(work._references["pseudo-label"]) == 30
    assert not set(work.train[TEXT]) & set(rows[TEXT])
    again, _ = _work(config, tmp_path)
    assert again.synthetic(_cell(cells, "pseudo-label", 1))[0].equals(rows)
    unset = {c.augmenter.name: c.key for c in expand(_config(tmp_path, big_csv))}
    assert unset["pseudo-label"] != next(c.key for c in cells if c.augmenter.type == "pseudo-label")


def test_a_second_pseudo_label_round_retrains_the_labeller_on_its_surest_rows(tmp_path: Path, big_csv: Path,
                                                                              monkeypatch):
    from classifiers.tfidf import TfidfLogReg

    fits = []
    fit = TfidfLogReg.fit
    monkeypatch.setattr(TfidfLogReg, "fit", lambda self, X, y, **k: fits.append(list(y)) or fit(self, X, y, **k))
    references = [{"type": "none"}, {"type": "pseudo-label", "name": "twice", "rounds": 2}]
    config = _config(tmp_path, big_csv, augmenters=references)
    work, cells = _work(config, tmp_path)
    rows, extra = work.synthetic(_cell(cells, "pseudo-label", 1))
    assert [len(y) for y in fits] == [20, 40]    # round 2: 10 real + the 10 surest pseudo-labels, per label
    assert rows[LABEL].value_counts().to_dict() == {"neg": 10, "pos": 10} and extra["reference"].rounds == 2
    assert not set(work.train[TEXT]) & set(rows[TEXT])
    one = next(c.key for c in expand(_config(tmp_path, big_csv, augmenters=[
        {"type": "none"}, {"type": "pseudo-label", "name": "twice"}])) if c.augmenter.type == "pseudo-label")
    assert one != _cell(cells, "pseudo-label", 1).key


def test_report_shows_efficiency_against_the_oracle(tmp_path: Path, big_csv: Path):
    config = _config(tmp_path, big_csv)
    out = tmp_path / "out"
    run_experiment(config, out)
    groups = summarize(ResultsLog(out / "results.jsonl").read())
    header, rows = efficiency_rows(groups)
    assert {r[3] for r in rows} == {"eda x1", "eda x2", "pseudo-label x1", "pseudo-label x2"}
    by_key = {(g.key.examples_per_class, g.variant): g.lift_macro_f1 for g in groups if g.lift_macro_f1}
    for row in rows:
        lift, oracle = by_key[(int(row[2]), row[3])], by_key[(int(row[2]), f"oracle x{row[4]}")]
        if oracle.mean > 0:
            assert row[-1].split()[0] == f"{lift.mean / oracle.mean:.2f}"
        else:
            assert row[-1].startswith("n/a")
    text = write_report(config, out)[0].read_text()
    assert "## Synthetic efficiency (lift / oracle lift at the same ratio)" in text
    assert "## Pseudo-labels: share of kept rows whose label is right" in text
    assert "`oracle`: real labelled pool rows" in text and "`pseudo-label`: unlabelled pool texts" in text


@pytest.mark.parametrize("augmenter, ratios, message", [
    ({"type": "oracle"}, [1, 3], r"augmenter 'oracle': ratio 3 at examples_per_class 10 asks for 30 real rows per "
                                 r"label beyond the sample, but in dataset 'tiny' .* 'neg' has \d+, 'pos' has \d+"),
    ({"type": "pseudo-label", "name": "pl"}, [5], r"augmenter 'pl': ratio 5 at examples_per_class 5 needs 50 "
                                                  r"unlabelled pool texts to label, but dataset 'tiny' has 40 outside"),
])
def test_reference_rows_beyond_the_pool_fail_before_any_cell(tmp_path: Path, data_csv: Path, augmenter, ratios,
                                                             message):
    config = _config(tmp_path, data_csv, augmenters=[{"type": "none"}, augmenter], ratios=ratios,
                     validation={"size": 10, "seed": 0})
    with pytest.raises(ConfigError, match=message):
        run_experiment(config, tmp_path / "out")
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_pseudo_label_classifier_must_be_known(tmp_path: Path, data_csv: Path):
    with pytest.raises(ConfigError, match=r"'augmenters\.1\.pseudo-label\.classifier'.*unknown classifier 'bert'"):
        _config(tmp_path, data_csv, augmenters=[{"type": "none"}, {"type": "pseudo-label", "classifier": "bert"}])
