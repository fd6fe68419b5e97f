"""The across-corpora table: one row per corpus, the augmenter's lift and the oracle's per classifier, the honest
per-seed choice, and a forest plot; the README block is what the committed suite results give."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.experiment.corpora import MARKERS, corpora_markdown, table_of, write_forest_plot
from augment.experiment.results import CellResult
from augment.experiment.summary import readme_block
from tests.experiment.helpers import cell_result

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def row(dataset: str, classifier: str, augmenter: str, kind: str, seed: int, test: float, validation: float,
        hours: float = 0.0) -> CellResult:
    return cell_result(dataset=dataset, classifier=classifier, augmenter=augmenter, type=kind, seed=seed,
                       mode="per-label" if kind == "lm" else None, ratio=None if kind == "none" else 1.5,
                       filter=kind == "lm", metrics={"accuracy": test, "macro_f1": test,
                                                     "per_class": {"a": {"precision": 1, "recall": 1, "f1": 1,
                                                                         "support": 1}}},
                       validation_metrics={"accuracy": validation, "macro_f1": validation},
                       wall_s={"augment": 0.0, "total": hours * 3600})


def rows() -> list[CellResult]:
    out = []
    for seed in range(3):
        # corpus "a": the LM adds 5 points on test and wins validation on seeds 0 and 1 only
        out += [row("a", "tfidf-lr", "none", "none", seed, 0.60, 0.60, hours=0.5),
                row("a", "tfidf-lr", "lm-default", "lm", seed, 0.65, 0.70 if seed < 2 else 0.50, hours=1.0),
                row("a", "tfidf-lr", "oracle", "oracle", seed, 0.70 + seed / 100, 0.9),
                row("a", "tfidf-lr", "eda", "eda", seed, 0.99, 0.99)]   # not the augmenter asked about
    return out


def test_each_corpus_row_shows_the_lift_the_oracle_and_the_honest_choice():
    table = table_of(rows(), ["a", "b"], ["tfidf-lr"], "lm-default", total=20)
    cell = table.cells[("a", "tfidf-lr")]
    assert round(100 * cell.lift.mean, 6) == 5.0 and cell.lift.low == cell.lift.high   # no spread: a point
    assert round(100 * cell.oracle.mean, 6) == 11.0
    assert cell.chosen_seeds == 2 and round(100 * cell.chosen.mean, 6) == round(100 * 0.10 / 3, 6)
    assert table.wall_hours == {"a": pytest.approx(4.5)} and table.classes == {"a": 1}
    text = corpora_markdown(table, "augment experiment corpora s.yaml --augmenter lm-default", "plot.png")
    lines = text.splitlines()
    assert "(12 of 20 cells)" in lines[0]
    assert "| a (1 classes, 3 seeds) | **+5.0 [+5.0, +5.0]** · oracle **+11.0 [+8.5, +13.5]** | 4.5 h |" in lines
    assert "| b (? classes, 0 seeds) | not run yet | 0.0 h |" in lines
    assert "| a (1 classes, 3 seeds) | +3.3 [-3.8, +10.5] (kept on 2 of 3) |" in lines
    assert "+99" not in text and lines[-1].endswith("(plot.png)")


def test_forest_plot_is_a_png(tmp_path: Path):
    table = table_of(rows(), ["a", "b"], ["tfidf-lr", "setfit"], "lm-default", total=20)
    path = write_forest_plot(table, tmp_path / "forest.png")
    assert path.read_bytes().startswith(PNG)


def test_the_readme_table_and_plot_are_what_the_committed_suite_gives(tmp_path: Path, monkeypatch):
    from augment.experiment import load_target
    from augment.experiment.corpora import corpora_table

    monkeypatch.chdir(REPO)
    block = readme_block(REPO / "README.md", MARKERS)
    assert block is not None, "README.md has no corpora block"
    command = block.split("`", 2)[1]
    args = command.split()
    target, augmenter = Path(args[3]), args[args.index("--augmenter") + 1]
    plot = Path(args[args.index("--plot") + 1])
    table = corpora_table(*load_target(target), augmenter)
    stale = f"README's table across corpora is stale: run {command}"
    assert block == corpora_markdown(table, command, str(plot)), stale
    assert write_forest_plot(table, tmp_path / "forest.png").read_bytes() == plot.read_bytes(), stale


def test_the_default_is_the_best_mean_validation_lift_that_loses_on_no_corpus():
    out = []
    for corpus in ("a", "b"):
        for seed in range(2):
            out += [row(corpus, "tfidf-lr", "none", "none", seed, 0.6, 0.60),
                    # steady: +1 on both corpora; bold: +8 on a, -2 on b (mean +3, but loses on b)
                    row(corpus, "tfidf-lr", "steady", "lm", seed, 0.1, 0.61),
                    row(corpus, "tfidf-lr", "bold", "lm", seed, 0.9, 0.68 if corpus == "a" else 0.58)]
    table = table_of(out, ["a", "b"], ["tfidf-lr"], "steady", total=12, recipes=["steady", "bold"])
    assert table.chosen == "steady"   # test scores (0.1 vs 0.9) never choose
    assert {r.augmenter: round(100 * r.mean, 6) for r in table.recipes} == {"steady": 1.0, "bold": 3.0}
    text = corpora_markdown(table, "c", None)
    assert "Chosen: `steady`." in text and "| bold | +3.0 | -2.0 | +8.0 | -2.0 |" in text
    only_bold = table_of(out, ["a", "b"], ["tfidf-lr"], "bold", total=12, recipes=["bold"])
    assert only_bold.chosen is None and "Chosen: none" in corpora_markdown(only_bold, "c", None)
    part = table_of([r for r in out if not (r.dataset == "b" and r.augmenter == "bold")], ["a", "b"], ["tfidf-lr"],
                    "bold", total=12, recipes=["bold"])
    assert part.recipes == [] and part.chosen is None   # a recipe not yet run on every corpus is not crowned
