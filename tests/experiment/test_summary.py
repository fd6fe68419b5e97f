"""The README's "Does it help?" tables: the best variant of each kind is chosen on validation, never on test,
and the README's block is the one the committed results give."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.errors import ConfigError
from augment.experiment.report import selected_per_seed, summarize, validation_rows
from augment.experiment.results import CellResult
from augment.experiment.summary import BEGIN, END, _tables, readme_block, summary_markdown, update_readme
from tests.experiment.helpers import cell_result

REPO = Path(__file__).resolve().parents[2]


def row(augmenter: str, kind: str, seed: int, test: float, validation: float | None,
        filtered: bool = False) -> CellResult:
    scores = {} if validation is None else {"validation_metrics": {"accuracy": validation, "macro_f1": validation}}
    return cell_result(augmenter=augmenter, type=kind, mode=None if kind != "lm" else "per-label",
                       ratio=None if kind == "none" else 3.0, filter=filtered, seed=seed,
                       metrics={"accuracy": test, "macro_f1": test}, **scores)


def test_the_lm_row_is_the_variant_best_on_validation_not_on_test():
    rows = []
    for seed in range(3):
        rows += [row("none", "none", seed, 0.60 + seed / 100, 0.60),
                 row("lm-a", "lm", seed, 0.62 + seed / 100, 0.70),   # best on validation
                 row("lm-b", "lm", seed, 0.75 + seed / 100, 0.61)]   # best on test: must not be picked
    lines = _tables(summarize(rows), summarize(validation_rows(rows)))
    lm = next(line for line in lines if line.startswith("| best LM"))
    assert "(lm-a x3)" in lm and "+2.0" in lm
    assert next(line for line in lines if line.startswith("| none")).startswith("| none (macro-F1) | 0.610")


def test_without_validation_every_variant_is_listed():
    rows = [row(a, k, s, 0.6, None) for s in range(2) for a, k in (("none", "none"), ("lm-a", "lm"), ("lm-b", "lm"))]
    lines = _tables(summarize(rows), [])
    assert any(line.startswith("| LM: lm-a x3") for line in lines) and any(line.startswith("| LM: lm-b x3")
                                                                           for line in lines)


def test_update_replaces_only_the_block(tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    assert update_readme(readme, "new\n") and readme.read_text() == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    assert not update_readme(readme, "new\n")
    readme.write_text("no markers\n")
    with pytest.raises(ConfigError, match="no '<!-- does-it-help: begin -->'"):
        update_readme(readme, "x\n")


def test_the_readme_block_is_what_the_committed_results_give(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(REPO)  # the block names the results directories relative to the repository
    block = readme_block(REPO / "README.md")
    assert block is not None, "README.md has no does-it-help block"
    command = block.splitlines()[0]
    targets = command.split("`augment experiment summary ", 1)[1].split("`", 1)[0].split()
    assert block == summary_markdown([Path(t) for t in targets]), (
        "README's 'Does it help?' is stale: run augment experiment summary " + " ".join(targets) + " --readme README.md")


def test_each_seed_picks_on_its_own_validation_rows_and_ties_keep_no_augmentation():
    rows = [row("none", "none", 0, 0.60, 0.50), row("lm-a", "lm", 0, 0.55, 0.70),   # seed 0: lm-a, worse on test
            row("oracle", "oracle", 0, 0.90, 0.95),                                   # never a user's choice
            row("none", "none", 1, 0.60, 0.60), row("lm-a", "lm", 1, 0.80, 0.60),   # tie: no augmentation
            row("none", "none", 2, 0.60, 0.60), row("lm-a", "lm", 2, 0.64, 0.61)]
    [selection] = selected_per_seed(rows, "lm")
    assert selection.picks == {0: "lm-a x3", 1: "none", 2: "lm-a x3"}
    assert selection.lift_macro_f1.mean == pytest.approx((-0.05 + 0.0 + 0.04) / 3)
    assert selection.lift_macro_f1.n == 3
    lines = _tables(summarize(rows), summarize(validation_rows(rows)), [selection])
    chosen = next(line for line in lines if line.startswith("| none or LM, chosen per seed"))
    assert "-0.3 [" in chosen and "(LM on 2 of 3 seeds)" in chosen
    assert selected_per_seed([r.model_copy(update={"seed": 9}) for r in rows if r.type != "none"], "lm") == []   # no baseline
