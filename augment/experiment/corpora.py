"""One table across corpora: does one recipe help on every dataset of a suite, for every classifier?

Rows are the suite's datasets, columns its classifiers, each cell one augmenter's test-split lift
(paired by seed, 95% CI) with the oracle's beside it, then the honest per-seed choice between no
augmentation and that augmenter (what ``augment run --check`` does). A forest plot shows the same
intervals. Both are regenerated from committed results, so the README cannot drift from them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.errors import ConfigError
from augment.experiment.config import ExperimentConfig
from augment.experiment.groups import Group
from augment.experiment.report import current_rows, fmt_lift, selected_per_seed, summarize
from augment.experiment.results import CellResult
from augment.experiment.stats import Interval
from augment.files import atomic_path

MARKERS = ("<!-- corpora: begin -->", "<!-- corpora: end -->")


@dataclass(frozen=True)
class CorpusCell:
    """One (corpus, classifier): the augmenter's lift, the oracle's, and the honest per-seed choice's."""

    lift: Interval | None
    oracle: Interval | None
    chosen: Interval | None
    chosen_seeds: int        # seeds on which the choice kept the augmenter
    seeds: int


@dataclass(frozen=True)
class CorporaTable:
    augmenter: str
    classifiers: list[str]
    corpora: list[str]
    classes: dict[str, int]
    cells: dict[tuple[str, str], CorpusCell]
    wall_hours: dict[str, float]   # the grid's compute per corpus, every cell counted once
    done: int
    total: int
    chosen: str | None             # the recipe validation picks across corpora (None: no augmentation)
    recipes: list[RecipeChoice]


TOLERANCE = 0.01   # a recipe may lose at most this much validation macro-F1 on any corpus


RECIPE_TYPES = ("lm", "pseudo-label")   # what `augment run` can make (--source generate / pseudo-label)


@dataclass(frozen=True)
class RecipeChoice:
    """A candidate recipe on the suite's validation rows: its lift per corpus (mean over classifiers)."""

    augmenter: str
    per_corpus: dict[str, float]

    @property
    def mean(self) -> float:
        return sum(self.per_corpus.values()) / len(self.per_corpus)

    @property
    def worst(self) -> float:
        return min(self.per_corpus.values())


def choose_recipe(rows: list[CellResult], candidates: list[str], corpora: list[str],
                  tolerance: float = TOLERANCE) -> tuple[str | None, list[RecipeChoice]]:
    """The candidate with the best mean validation lift that loses more than ``tolerance`` on no corpus,
    or None (no augmentation stays the default). Validation only: the test split never chooses. A
    candidate missing on some corpus is not scored, so a part-run grid cannot crown it."""
    from augment.experiment.report import validation_rows

    groups = summarize(validation_rows(rows))
    scored = []
    for name in candidates:
        per_corpus = {}
        for corpus in corpora:
            lifts = [g.lift_macro_f1.mean for g in groups
                     if g.key.augmenter == name and g.key.dataset == corpus and g.lift_macro_f1 is not None]
            if lifts:
                per_corpus[corpus] = sum(lifts) / len(lifts)
        if len(per_corpus) == len(corpora):
            scored.append(RecipeChoice(name, per_corpus))
    fit = [c for c in scored if c.worst >= -tolerance]
    return (max(fit, key=lambda c: c.mean).augmenter if fit else None), scored


def corpora_table(config: ExperimentConfig, out_dir: Path, augmenter: str) -> CorporaTable:
    """The table of a suite's committed results (only the cells of its current grid)."""
    names = [a.name for a in config.augmenters]
    if augmenter not in names:
        raise ConfigError(f"{config.name}: no augmenter '{augmenter}'; augmenters are {', '.join(names)}")
    rows, total, _ = current_rows(config, out_dir)
    if not rows:
        raise ConfigError(f"{out_dir}: no finished cells for this configuration yet; run the experiment first")
    recipes = [a.name for a in config.augmenters if a.type in RECIPE_TYPES]
    return table_of(rows, list(config.named_datasets()), list(config.classifiers), augmenter, total, recipes)


def table_of(rows: list[CellResult], corpora: list[str], classifiers: list[str], augmenter: str,
             total: int, recipes: list[str] = ()) -> CorporaTable:
    groups = summarize(rows)
    cells = {(corpus, classifier): _cell(rows, groups, corpus, classifier, augmenter)
             for corpus in corpora for classifier in classifiers}
    chosen, scored = choose_recipe(rows, list(recipes), corpora)
    return CorporaTable(augmenter=augmenter, classifiers=classifiers, corpora=corpora, classes=_classes(rows),
                        cells=cells, wall_hours=_wall_hours(rows), done=len(rows), total=total, chosen=chosen,
                        recipes=scored)


def _cell(rows: list[CellResult], groups: list[Group], corpus: str, classifier: str, augmenter: str) -> CorpusCell:
    mine = [g for g in groups if g.panel == (corpus, classifier)]
    lift = next((g.lift_macro_f1 for g in mine if g.key.augmenter == augmenter), None)
    oracle = next((g.lift_macro_f1 for g in mine if g.key.type == "oracle"), None)
    pair = [r for r in rows if r.dataset == corpus and r.classifier == classifier
            and (r.type == "none" or r.augmenter == augmenter)]
    choice = next(iter(selected_per_seed(pair, "any")), None)
    seeds = len({r.seed for r in rows if r.dataset == corpus and r.classifier == classifier and r.type == "none"})
    return CorpusCell(lift=lift, oracle=oracle, chosen=choice.lift_macro_f1 if choice else None,
                      chosen_seeds=sum(p != "none" for p in choice.picks.values()) if choice else 0, seeds=seeds)


def _classes(rows: list[CellResult]) -> dict[str, int]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r.type == "none":
            out[r.dataset].update(r.metrics.per_class or {})
    return {k: len(v) for k, v in out.items()}


def _wall_hours(rows: list[CellResult]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in rows:
        out[r.dataset] += r.wall_s.total / 3600
    return dict(out)


def corpora_markdown(table: CorporaTable, command: str, plot: str | None) -> str:
    head = " | ".join(table.classifiers)
    lines = [f"Generated by `{command}` from the committed results ({table.done} of {table.total} cells). "
             f"Test-split lift in macro-F1 points of `{table.augmenter}` over no augmentation, paired by seed, "
             "95% CI (**bold**: the interval excludes zero); beside it the oracle's (real labelled rows in the "
             "same counts).", "",
             f"| corpus | {head} | grid wall time |", "|---|" + "---|" * len(table.classifiers) + "---:|"]
    for corpus in table.corpora:
        cells = [table.cells[(corpus, c)] for c in table.classifiers]
        text = [f"{fmt_lift(c.lift)} · oracle {fmt_lift(c.oracle)}" if c.seeds else "not run yet" for c in cells]
        lines.append(f"| {_corpus(table, corpus, cells)} | " + " | ".join(text)
                     + f" | {table.wall_hours.get(corpus, 0):.1f} h |")
    lines += ["", f"Honest choice (`augment run --check`): each seed keeps `{table.augmenter}`'s rows only where "
                  "they score higher on its own held-out labelled rows; test-split lift of that choice, and on "
                  "how many seeds it kept the rows.", "",
              f"| corpus | {head} |", "|---|" + "---|" * len(table.classifiers)]
    for corpus in table.corpora:
        cells = [table.cells[(corpus, c)] for c in table.classifiers]
        text = [f"{fmt_lift(c.chosen)} (kept on {c.chosen_seeds} of {c.seeds})" if c.chosen else "-" for c in cells]
        lines.append(f"| {_corpus(table, corpus, cells)} | " + " | ".join(text) + " |")
    lines += _choice_lines(table)
    if plot:
        lines += ["", f"![Lift of {table.augmenter} and of the oracle per corpus and classifier]({plot})"]
    return "\n".join(lines) + "\n"


def _choice_lines(table: CorporaTable) -> list[str]:
    lines = ["", f"The default across corpora, chosen on validation rows only: the `augment run` recipe (an LM "
                 f"recipe, or a teacher's pseudo-labels) with the best mean "
                 f"validation lift (over corpora, each the mean over classifiers) that loses more than "
                 f"{100 * TOLERANCE:g} point on no corpus. "]
    if not table.recipes:
        lines[-1] += "No recipe has validation scores on every corpus yet."
        return lines
    lines[-1] += (f"Chosen: `{table.chosen}`." if table.chosen else
                  "Chosen: none (every recipe loses more than that on some corpus; no augmentation stays the default).")
    lines += ["", "| recipe | mean | worst | " + " | ".join(table.corpora) + " |",
              "|---|---:|---:|" + "---:|" * len(table.corpora)]
    for r in table.recipes:
        lines.append(f"| {r.augmenter} | {100 * r.mean:+.1f} | {100 * r.worst:+.1f} | "
                     + " | ".join(f"{100 * r.per_corpus[c]:+.1f}" for c in table.corpora) + " |")
    return lines


def _corpus(table: CorporaTable, corpus: str, cells: list[CorpusCell]) -> str:
    seeds = max((c.seeds for c in cells), default=0)
    return f"{corpus} ({table.classes.get(corpus, '?')} classes, {seeds} seeds)"


def write_forest_plot(table: CorporaTable, path: Path) -> Path:
    """One panel per classifier: each corpus's lift with its interval, the augmenter's and the oracle's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table.classifiers), figsize=(3.6 * len(table.classifiers), 0.5 * len(
        table.corpora) + 1.6), dpi=110, sharey=True, squeeze=False)
    ys = list(range(len(table.corpora)))[::-1]
    for ax, classifier in zip(axes[0], table.classifiers):
        for offset, what, style in ((0.15, "lift", dict(fmt="o", color="tab:blue")),
                                    (-0.15, "oracle", dict(fmt="s", color="tab:gray", mfc="white"))):
            for y, corpus in zip(ys, table.corpora):
                iv = getattr(table.cells[(corpus, classifier)], what)
                if iv is not None:
                    _point(ax, iv, y + offset, style, label=None)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(classifier, fontsize=10)
        ax.set_xlabel("lift in macro-F1 (points, 95% CI)", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(ys, table.corpora)
    handles = [plt.Line2D([], [], marker="o", color="tab:blue", linestyle="", label=table.augmenter),
               plt.Line2D([], [], marker="s", color="tab:gray", mfc="white", linestyle="", label="oracle")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _point(ax: Any, iv: Interval, y: float, style: dict[str, Any], label: str | None) -> None:
    mean = 100 * iv.mean
    err = None if iv.low is None else [[mean - 100 * iv.low], [100 * iv.high - mean]]
    ax.errorbar([mean], [y], xerr=err, capsize=3, markersize=5, label=label, **style)
