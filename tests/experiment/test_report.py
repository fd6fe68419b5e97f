"""report.md's tables from a small fixed results file: the numbers, their order and their formatting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from augment.experiment import load_experiment
from augment.experiment.report import (build_markdown, cost_lines, efficiency_rows, filter_rows, lift_rows, main_rows,
                                       quality_rows, selection_section, summarize, validation_rows)
from augment.experiment.results import ResultsLog
from tests.experiment.helpers import baseline_config, cell_result, write_yaml

NONE = {0: 0.60, 1: 0.70, 2: 0.65}                      # macro-F1 without augmentation, per seed
GAIN = {"eda": {0: 0.02, 1: 0.02, 2: 0.02}, "lm": {0: -0.01, 1: 0.03, 2: 0.01}, "oracle": {0: 0.04, 1: 0.04, 2: 0.04}}
VALIDATION = {"none": 0.50, "eda": 0.55, "lm": 0.52, "oracle": 0.90}
PER_CLASS = {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 10} for label in ("neg", "pos")}


def scores(f1: float) -> dict[str, Any]:
    return {"accuracy": round(f1 + 0.1, 4), "macro_f1": round(f1, 4), "per_class": PER_CLASS}


def quality(distinct_1: float) -> dict[str, Any]:
    """An older row's quality: no real_distinct_2, label_agreement_min or fragment rates."""
    return {"rows": 20, "rows_by_label": {"neg": 10, "pos": 10}, "distinct_1": distinct_1, "distinct_2": 0.9,
            "self_bleu": 0.1, "self_bleu_rows": 20, "novelty": 0.2, "mean_max_overlap": 0.5, "novelty_ngram": 3,
            "novelty_threshold": 0.5, "label_agreement": 0.8, "label_agreement_by_label": {"neg": 0.8, "pos": 0.8},
            "mean_words": 12.0, "real_mean_words": 14.0}


def rows_of(kind: str, seed: int) -> dict[str, Any]:
    f1 = NONE[seed] + GAIN.get(kind, {}).get(seed, 0.0)
    row: dict[str, Any] = {"augmenter": kind, "type": kind, "seed": seed, "metrics": scores(f1),
                           "validation_metrics": scores(VALIDATION[kind]), "wall_s": {"augment": 1.0, "total": 10.0}}
    if kind == "none":
        return row
    row.update(ratio=1.0, rows={"real": 20, "synthetic": 20, "requested_per_label": 10,
                                "synthetic_by_label": {"neg": 10, "pos": 10}})
    if kind == "eda":
        row.update(quality=quality({0: 0.5, 1: 0.6, 2: 0.7}[seed]), eda={"synonyms": "off"})
    if kind == "oracle":
        row.update(reference={"candidates": 100})
    if kind == "lm":
        trained = {0: 60.0, 1: 120.0}
        row.update(mode="per-label", filter=True, pool_rows={"neg": 12, "pos": 12},
                   lm={"key": f"lm{seed}", "cached": seed not in trained, "wall_s": trained.get(seed, 0.0)},
                   pool={"key": f"pool{seed}", "cached": False, "wall_s": 30.0},
                   filter_report={"rows_in": 24, "rows_kept": 20, "config": {"min_words": 1},
                                  "steps": [{"filter": "exact-dedup", "rows_in": 24, "dropped": 4, "kept": 20,
                                             "dropped_by_label": {"neg": 1, "pos": 3}}]})
    return row


@pytest.fixture
def rows(tmp_path: Path) -> list:
    """Three seeds of none, EDA, a filtered LM and the oracle, written to results.jsonl and read back."""
    log = ResultsLog(tmp_path / "results.jsonl")
    for seed in NONE:
        for kind in ("none", "eda", "lm", "oracle"):
            log.append(cell_result(**rows_of(kind, seed)))
    return log.read()


def test_the_lift_table_pairs_by_seed_with_no_augmentation_first_and_the_oracle_last(rows):
    header, table = lift_rows(summarize(rows))
    assert header == ["dataset", "classifier", "augmenter", "mode", "10/class"]
    assert table == [["d", "c", "none", "-", "macro-F1 0.650 ± 0.124"],
                     ["d", "c", "eda x1", "-", "**+2.0 [+2.0, +2.0]**"],
                     ["d", "c", "lm x1 +filter", "per-label", "+1.0 [-4.0, +6.0]"],
                     ["d", "c", "oracle x1", "-", "**+4.0 [+4.0, +4.0]**"]]


def test_efficiency_is_the_lift_over_the_oracles_at_the_same_ratio(rows):
    header, table = efficiency_rows(summarize(rows))
    assert header[-1] == "efficiency"
    assert [(r[3], r[7]) for r in table] == [("eda x1", "0.50"), ("lm x1 +filter", "0.25")]
    assert table[0] == ["d", "c", "10", "eda x1", "1", "**+2.0 [+2.0, +2.0]**", "**+4.0 [+4.0, +4.0]**", "0.50"]


def test_all_cells_lists_scores_seeds_and_synthetic_rows_per_label(rows):
    _, table = main_rows(summarize(rows))
    assert table[0] == ["d", "c", "10", "none", "-", "-", "off", "3", "0.0", "0.750 ± 0.124", "0.650 ± 0.124",
                        "-", "-"]
    assert table[2][:9] == ["d", "c", "10", "lm", "per-label", "1", "on", "3", "10.0"]
    assert table[2][11:] == ["+1.0 [-4.0, +6.0]", "+1.0 [-4.0, +6.0]"]


def test_filter_table_means_each_filters_drops_over_pools(rows):
    header, table = filter_rows(rows)
    assert header == ["dataset", "examples/class", "augmenter", "pools", "rows in", "exact-dedup", "kept",
                      "dropped by label"]
    assert table == [["d", "10", "lm", "3", "24.0", "4.0", "20.0", "neg: 1.0, pos: 3.0"]]


def test_quality_table_means_over_seeds_and_shows_a_dash_where_older_rows_lack_a_metric(rows):
    header, table = quality_rows(rows)
    assert header[8:11] == ["distinct-1", "distinct-2", "real distinct-2"]
    assert table == [["d", "10", "eda", "-", "1", "off", "3", "20", "0.600", "0.900", "-", "0.100", "0.200",
                      "0.800", "-", "-", "-", "12.0", "14.0"]]


def test_cost_counts_only_what_this_run_trained(rows):
    assert cost_lines(rows) == [
        "- cells: 12, summed cell wall time 2.0 min (includes the artefacts each cell was first to need)",
        "- LM fine-tuning: 2 runs, 3.0 min; pool generation: 3 pools, 1.5 min (artefacts reused from an earlier "
        "run's cache are not counted)"]


def test_each_seed_picks_on_validation_and_is_scored_on_test(rows):
    text = "\n".join(selection_section(rows, "30 rows"))
    assert "| d | c | 10 | none, EDA, pseudo-label or an LM recipe | 3 | **+2.0 [+2.0, +2.0]** | eda x1 3 |" in text
    assert "| d | c | 10 | none or an LM recipe | 3 | +1.0 [-4.0, +6.0] | lm x1 +filter 3 |" in text
    validated = lift_rows(summarize(validation_rows(rows)))[1]
    assert [r[4] for r in validated] == ["macro-F1 0.500 ± 0.000", "**+5.0 [+5.0, +5.0]**", "**+2.0 [+2.0, +2.0]**",
                                         "**+40.0 [+40.0, +40.0]**"]


def test_the_markdown_holds_each_table(rows, tmp_path: Path, data_csv: Path):
    config = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, validation={"size": 30})))
    text = build_markdown(config, tmp_path, rows, total=20, stale=2, plots=[])
    assert text.startswith("# Experiment: a\n\n- cells finished: 12 of 20 (**partial**)\n")
    assert "- 2 rows in results.jsonl belong to other configurations and are not shown" in text
    assert "- first run started" not in text   # no experiment.json here
    for line in ("| d | c | eda x1 | - | **+2.0 [+2.0, +2.0]** |",
                 "| d | 10 | lm | 3 | 24.0 | 4.0 | 20.0 | neg: 1.0, pos: 3.0 |",
                 "## Synthetic efficiency (lift / oracle lift at the same ratio)",
                 "## Chosen per seed on its own validation rows",
                 "- `eda`: EDA, alpha 0.1, without synonym replacement"):
        assert line in text
    assert text.endswith("run's cache are not counted)\n")
