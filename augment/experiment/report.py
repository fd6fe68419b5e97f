"""``report.md`` and PNG plots from ``results.jsonl``; rebuildable at any time.

Per (dataset, classifier, examples per class, augmenter, mode, ratio, filter):
mean and 95% t-interval over seeds of accuracy and macro-F1, and the lift over
no augmentation paired by seed (the same seed means the same real training
sample, so the pairing removes the sample's luck from the comparison).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from augment.errors import ConfigError
from pydantic import ValidationError

from augment.experiment.config import ExperimentConfig, describe, load_experiment
from augment.experiment.grid import expand
from augment.experiment.groups import Group, GroupKey, variant_name
from augment.experiment.plots import write_plots
from augment.experiment.results import (EXPERIMENT_JSON, RESULTS, AdaptInfo, CellResult, ExperimentManifest,
                                        Quality, ResultsLog)
from augment.experiment.stats import Interval, paired_differences, t_interval
from augment.filter import FilterReport
from augment.files import write_text_atomic

log = logging.getLogger(__name__)

REPORT = "report.md"
PLOT_PREFIXES = ("lift-", "scores-")
QUALITY_KEYS = ("distinct_1", "distinct_2", "real_distinct_2", "self_bleu", "novelty", "label_agreement",
                "label_agreement_min", "fragment_rate", "real_fragment_rate", "mean_words", "real_mean_words")


Metric = Literal["accuracy", "macro_f1"]


# --- loading ---------------------------------------------------------------------------------------

def load_target(target: Path) -> tuple[ExperimentConfig, Path]:
    """A YAML config (results in its default directory) or a results directory."""
    target = Path(target)
    if target.is_dir():
        saved = target / EXPERIMENT_JSON
        manifest = ExperimentManifest.read(saved)
        if manifest is None:
            raise ConfigError(f"{target}: not an experiment results directory (no {EXPERIMENT_JSON})")
        try:
            config = ExperimentConfig.model_validate(manifest.config)
        except ValidationError as exc:
            raise ConfigError(f"{saved}: cannot read the saved configuration ({describe(exc)})") from None
        return config, target
    config = load_experiment(target)
    return config, default_out_dir(target, config)


def default_out_dir(config_path: Path, config: ExperimentConfig) -> Path:
    return Path(config_path).parent / "results" / str(config.name)


def current_rows(config: ExperimentConfig, out_dir: Path) -> tuple[list[CellResult], int, int]:
    """Rows of this config's grid, how many cells the grid has, and how many rows are from other configs."""
    keys = {c.key for c in expand(config)}
    rows = ResultsLog(out_dir / RESULTS).read()
    current = [r for r in rows if r.key in keys]
    return current, len(keys), len(rows) - len(current)


# --- aggregation -----------------------------------------------------------------------------------

def summarize(rows: Iterable[CellResult]) -> list[Group]:
    groups: dict[GroupKey, list[CellResult]] = defaultdict(list)
    for row in rows:
        groups[GroupKey.of(row)].append(row)
    baselines = {_sample(k): v for k, v in groups.items() if k.type == "none"}
    out = []
    for key in sorted(groups, key=_order):
        members = groups[key]
        base = baselines.get(_sample(key))
        out.append(Group(key, members, _interval(members, "accuracy"), _interval(members, "macro_f1"),
                         _lift(members, base, "accuracy"), _lift(members, base, "macro_f1")))
    return out


def _sample(key: GroupKey) -> tuple[str, str, int]:
    """What a variant's baseline shares with it: the training samples and the classifier."""
    return key.dataset, key.classifier, key.examples_per_class


KINDS = ("none", "oversample", "eda", "label-name", "lm")  # the one order of augmenters in every table: baseline first


def kind_rank(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def _order(key: GroupKey) -> tuple:
    return (*_sample(key), kind_rank(key.type), key.augmenter, key.ratio or 0, key.filter)


def _by_seed(rows: list[CellResult], metric: Metric) -> dict[int, float]:
    return {r.seed: getattr(r.metrics, metric) for r in rows}


def _interval(rows: list[CellResult], metric: Metric) -> Interval:
    return t_interval(list(_by_seed(rows, metric).values()))


def _lift(rows: list[CellResult], base: list[CellResult] | None, metric: Metric) -> Interval | None:
    if base is None or rows[0].type == "none":
        return None
    diffs = paired_differences(_by_seed(rows, metric), _by_seed(base, metric))
    return t_interval(diffs) if diffs else None


# --- formatting ------------------------------------------------------------------------------------

def fmt_score(iv: Interval) -> str:
    return f"{iv.mean:.3f}" + ("" if iv.half_width is None else f" ± {iv.half_width:.3f}")


def fmt_lift(iv: Interval | None, bold: bool = True) -> str:
    """In points (x100): mean [low, high]; bold when the interval excludes zero."""
    if iv is None:
        return "-"
    text = f"{100 * iv.mean:+.1f}"
    if iv.low is not None:
        text += f" [{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]"
    return f"**{text}**" if bold and iv.excludes_zero else text


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" * len(header)
    marks = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|",
            *["| " + " | ".join(r) + " |" for r in rows]]


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def lift_rows(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    """The compact table: one row per variant, one column per examples-per-class."""
    sizes = sorted({g.key.examples_per_class for g in groups})
    panels = sorted({g.panel for g in groups})
    header = ["dataset", "classifier", "augmenter", "mode", *[f"{n}/class" for n in sizes]]
    cells: dict[tuple, dict[int, Group]] = defaultdict(dict)
    order: list[tuple] = []
    for g in groups:
        rk = (*g.panel, g.variant, g.key.mode or "-")
        if rk not in cells:
            order.append(rk)
        cells[rk][g.key.examples_per_class] = g
    rows = []
    for rk in sorted(order, key=lambda r: (panels.index(r[:2]), order.index(r))):
        by_size = cells[rk]
        none = next(iter(by_size.values())).key.type == "none"
        values = [(f"macro-F1 {fmt_score(by_size[n].macro_f1)}" if none else fmt_lift(by_size[n].lift_macro_f1))
                  if n in by_size else "" for n in sizes]
        rows.append([*rk, *values])
    return header, rows


def efficiency_rows(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    """Synthetic efficiency: an augmenter's mean lift over the oracle's at the same ratio (1 = as good
    as labelling that many real rows). A ratio of means, so no interval; it says n/a where the
    oracle's own lift is not above zero, because the ratio is then meaningless."""
    oracles = {_at_ratio(g): g for g in groups if g.key.type == "oracle" and g.lift_macro_f1 is not None}
    header = ["dataset", "classifier", "examples/class", "augmenter", "ratio", "lift (pts)", "oracle lift (pts)",
              "efficiency"]
    rows = []
    for g in groups:
        oracle = oracles.get(_at_ratio(g))
        if g.key.type in ("none", "oracle") or oracle is None or g.lift_macro_f1 is None:
            continue
        rows.append([*g.panel, str(g.key.examples_per_class), g.variant, f"{g.key.ratio:g}",
                     fmt_lift(g.lift_macro_f1), fmt_lift(oracle.lift_macro_f1),
                     fmt_efficiency(g.lift_macro_f1, oracle.lift_macro_f1)])
    return header, rows


def _at_ratio(g: Group) -> tuple:
    return (*_sample(g.key), g.key.ratio)


def fmt_efficiency(lift: Interval, oracle: Interval) -> str:
    if oracle.mean <= 0:
        return "n/a (oracle lift <= 0)"
    text = f"{lift.mean / oracle.mean:.2f}"
    return text if oracle.excludes_zero else f"{text} (oracle lift CI includes 0)"


def main_rows(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    header = ["dataset", "classifier", "examples/class", "augmenter", "mode", "ratio", "filter", "seeds",
              "synthetic/label", "accuracy", "macro-F1", "lift accuracy (pts)", "lift macro-F1 (pts)"]
    rows = []
    for g in groups:
        k = g.key
        synth = sum(r.rows.synthetic for r in g.rows) / len(g.rows) / max(1, _labels(g.rows))
        rows.append([k.dataset, k.classifier, str(k.examples_per_class), k.augmenter, k.mode or "-",
                     "-" if k.ratio is None else f"{k.ratio:g}", "on" if k.filter else "off",
                     str(g.macro_f1.n), f"{synth:.1f}", fmt_score(g.accuracy), fmt_score(g.macro_f1),
                     fmt_lift(g.lift_accuracy), fmt_lift(g.lift_macro_f1)])
    return header, rows


def _labels(rows: list[CellResult]) -> int:
    return len(rows[0].metrics.per_class)


def filter_rows(rows: list[CellResult]) -> tuple[list[str], list[list[str]]]:
    """Mean rows dropped by each filter per pool (one pool per sample and LM augmenter)."""
    pools: dict[tuple, dict[str, FilterReport]] = defaultdict(dict)
    for r in rows:
        if r.filter_report and r.pool:
            pools[(r.dataset, r.examples_per_class, r.augmenter)][r.pool.key] = r.filter_report
    steps = list(dict.fromkeys(s.filter for p in pools.values() for f in p.values() for s in f.steps))
    header = ["dataset", "examples/class", "augmenter", "pools", "rows in", *steps, "kept", "dropped by label"]
    out = []
    for (dataset, examples, aug), found in sorted(pools.items()):
        reports = list(found.values())
        n = len(reports)
        dropped = {s: sum(st.dropped for f in reports for st in f.steps if st.filter == s) / n for s in steps}
        by_label: dict[str, int] = defaultdict(int)
        for f in reports:
            for st in f.steps:
                for label, count in st.dropped_by_label.items():
                    by_label[label] += count
        out.append([dataset, str(examples), aug, str(n), f"{sum(f.rows_in for f in reports) / n:.1f}",
                    *[f"{dropped[s]:.1f}" for s in steps], f"{sum(f.rows_kept for f in reports) / n:.1f}",
                    ", ".join(f"{k}: {v / n:.1f}" for k, v in sorted(by_label.items())) or "-"])
    return header, out


def quality_rows(rows: list[CellResult]) -> tuple[list[str], list[list[str]]]:
    """Mean quality metrics over seeds of each synthetic set (the same set for every classifier)."""
    sets: dict[tuple, dict[int, Quality]] = defaultdict(dict)
    for r in rows:
        if r.quality:
            key = (r.dataset, r.examples_per_class, r.augmenter, r.mode or "-", r.ratio, r.filter)
            sets[key][r.seed] = r.quality
    header = ["dataset", "examples/class", "augmenter", "mode", "ratio", "filter", "seeds", "rows",
              "distinct-1", "distinct-2", "real distinct-2", "self-BLEU", "novelty", "label agreement",
              "worst label", "fragments", "real fragments", "words", "real words"]
    out = []
    for key, by_seed in sorted(sets.items(), key=lambda kv: (kv[0][:2], _kind(kv[0][2], rows), kv[0][2:])):
        qs = list(by_seed.values())
        mean = {m: _mean(getattr(q, m) for q in qs) for m in (*QUALITY_KEYS, "rows")}
        out.append([key[0], str(key[1]), key[2], key[3], f"{key[4]:g}", "on" if key[5] else "off", str(len(qs)),
                    f"{mean['rows']:.0f}", *[_num(mean[m], 1 if "words" in m else 3) for m in QUALITY_KEYS]])
    return header, out


def _kind(augmenter: str, rows: list[CellResult]) -> int:
    return kind_rank(next((r.type for r in rows if r.augmenter == augmenter), ""))


def _mean(values: Iterable[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def cost_lines(rows: list[CellResult]) -> list[str]:
    lms = {r.lm.key: r.lm for r in rows if r.lm and not r.lm.cached}
    pools = {r.pool.key: r.pool for r in rows if r.pool and not r.pool.cached}
    total = sum(r.wall_s.total for r in rows)
    return [f"- cells: {len(rows)}, summed cell wall time {total / 60:.1f} min "
            f"(includes the artefacts each cell was first to need)",
            f"- LM fine-tuning: {len(lms)} runs, {sum(v.wall_s for v in lms.values()) / 60:.1f} min; "
            f"pool generation: {len(pools)} pools, {sum(v.wall_s for v in pools.values()) / 60:.1f} min "
            "(artefacts reused from an earlier run's cache are not counted)", *adapt_lines(rows)]


def adapt_lines(rows: list[CellResult]) -> list[str]:
    """What each domain adaptation read and cost (the first cell that needed it trained it)."""
    seen: dict[str, AdaptInfo] = {}
    for r in rows:
        if r.adapt and (r.adapt.key not in seen or not r.adapt.cached):
            seen[r.adapt.key] = r.adapt
    return [f"- adaptation {a.key}: {a.texts} pool texts, {a.steps} steps, {a.tokens} training tokens, "
            f"held-out loss {_num(a.eval_loss)} (step {a.best_step}), separator `{a.separator}`, {_adapt_cost(a)}"
            for a in seen.values()]


def _adapt_cost(record: AdaptInfo) -> str:
    """A model another config's run adapted into a shared cache still shows what it cost to train."""
    if not record.cached:
        return f"{record.wall_s / 60:.1f} min"
    built = record.built_wall_s
    return "cached" if built is None else f"cached (trained in {built / 60:.1f} min)"


# --- the report ------------------------------------------------------------------------------------

def build_markdown(config: ExperimentConfig, out_dir: Path, rows: list[CellResult], total: int,
                   stale: int, plots: list[Path]) -> str:
    groups = summarize(rows)
    meta = ExperimentManifest.read(out_dir / EXPERIMENT_JSON)
    lines = [f"# Experiment: {config.name}", ""]
    lines += _header_lines(config, meta, rows, total, stale)
    if config.notes.strip():
        lines += ["", "## Notes (what was tried)", "", config.notes.strip()]
    lines += ["", "## Lift in macro-F1 over no augmentation", "",
              "Points (x100), paired by seed: mean [95% CI]; **bold** where the interval excludes zero. "
              "The `none` row shows its own macro-F1 (mean ± CI half-width).", ""]
    lines += _table(*lift_rows(groups))
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots]]
    lines += efficiency_section(groups)
    lines += pseudo_label_lines(rows)
    validated = validation_rows(rows)
    if validated:
        selection = config.validation.describe() if config.validation else "?"
        lines += ["", "## Lift in macro-F1 on the validation split", "",
                  f"The same cells scored on the validation rows ({selection}): choose settings here, so that "
                  "the test split above is read only for the final numbers.", ""]
        lines += _table(*lift_rows(summarize(validated)))
        lines += selection_section(rows, selection)
    lines += ["", "## All cells", "", "Mean ± 95% CI half-width over seeds (Student t); lifts in points with "
              "95% CI of the seed-paired differences.", ""]
    lines += _table(*main_rows(groups), align="lllllllrrrrrr")
    header, frows = filter_rows(rows)
    if frows:
        lines += ["", "## Filter: rows dropped per pool (mean over seeds)", ""]
        lines += _table(header, frows, align="lllr" + "r" * (len(header) - 5) + "l")
    header, qrows = quality_rows(rows)
    if qrows:
        lines += ["", "## Quality of the synthetic rows (mean over seeds)", "",
                  f"Label agreement: share of rows whose label the judge ({config.quality.judge}, trained on "
                  f"up to {config.quality.judge_rows_per_class} real non-test rows per label, independent of "
                  "the filter's classifier) predicts; `oversample` rows are real, so theirs is the judge's own "
                  "agreement with real labels. Novelty: share of rows sharing < 50% of their word 3-grams with "
                  "any one training row. Self-BLEU: lower is more varied.", ""]
        lines += _table(header, qrows, align="llllllr" + "r" * 8)
    lines += ["", "## Cost", "", *cost_lines(rows)]
    return "\n".join(lines) + "\n"


def efficiency_section(groups: list[Group]) -> list[str]:
    header, rows = efficiency_rows(groups)
    if not rows:
        return []
    return ["", "## Synthetic efficiency (lift / oracle lift at the same ratio)", "",
            "The oracle adds real labelled pool rows in exactly the counts the augmenter adds: its lift is the "
            "ceiling. Efficiency 1.0 means the added rows are worth as much as real labelled ones; macro-F1, "
            "test split.", "", *_table(header, rows, align="lllllrrr")]


def pseudo_label_lines(rows: list[CellResult]) -> list[str]:
    """How often the pseudo-labeller was right on the rows it kept (the pool's real labels are known)."""
    found: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in rows:
        accuracy = r.reference.pseudo_label_accuracy if r.reference else None
        if accuracy is not None:
            found[(r.dataset, r.examples_per_class, r.augmenter, r.ratio)][r.seed] = accuracy
    if not found:
        return []
    table = [[d, str(e), a, f"{ratio:g}", str(len(v)), f"{sum(v.values()) / len(v):.3f}"]
             for (d, e, a, ratio), v in sorted(found.items())]
    return ["", "## Pseudo-labels: share of kept rows whose label is right (mean over seeds)", "",
            *_table(["dataset", "examples/class", "augmenter", "ratio", "seeds", "accuracy"], table, "llllrr")]


@dataclass(frozen=True)
class Selection:
    """What each seed's user picks on their own validation rows, and what the pick is worth on test."""
    panel: tuple[str, str]
    examples_per_class: int
    choices: str                      # which augmenters were on offer, in words
    picks: dict[int, str]             # seed -> variant picked
    lift_macro_f1: Interval           # test lift of the picks over no augmentation, paired by seed


USER_CHOICES = {"any": ("none", "oversample", "eda", "label-name", "pseudo-label", "lm"), "lm": ("none", "lm")}
CHOICE_WORDS = {"any": "none, EDA, pseudo-label or an LM recipe", "lm": "none or an LM recipe"}


def _choice_words(choices: str, offered: set[str]) -> str:
    """The choice in words; label-name rows are named only where they were on offer."""
    words = CHOICE_WORDS[choices]
    return words.replace("EDA,", "EDA, label-name rows,") if "label-name" in offered else words


def selected_per_seed(rows: list[CellResult], choices: str = "any") -> list[Selection]:
    """Per seed (one user's labelled draw), the variant with the best validation macro-F1 among those a
    user could run (never the oracle: it needs labels they lack); ties go to no augmentation, which
    costs nothing. The mean of the seeds' pooled validation lifts would choose with every draw's
    validation rows at once, which no single user has."""
    kinds = USER_CHOICES[choices]
    draws: dict[tuple, dict[int, list[CellResult]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.validation_metrics is not None and r.type in kinds:
            draws[(r.dataset, r.classifier, r.examples_per_class)][r.seed].append(r)
    out = []
    for (dataset, classifier, size), by_seed in sorted(draws.items()):
        picks, lifts = {}, []
        for seed, draw in sorted(by_seed.items()):
            draw.sort(key=lambda r: r.type != "none")   # no augmentation first, so it wins ties
            if draw[0].type != "none" or len(draw) < 2:
                continue
            best = max(draw, key=_validation_macro_f1)   # max keeps the first of ties
            picks[seed] = variant_name(best)
            lifts.append(best.metrics.macro_f1 - draw[0].metrics.macro_f1)
        offered = {r.type for draw in by_seed.values() for r in draw}
        if lifts:
            out.append(Selection((dataset, classifier), size, _choice_words(choices, offered), picks,
                                 t_interval(lifts)))
    return out


def _validation_macro_f1(row: CellResult) -> float:
    assert row.validation_metrics is not None
    return row.validation_metrics.macro_f1


def fmt_picks(selection: Selection) -> str:
    counts = Counter(selection.picks.values())
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def selection_section(rows: list[CellResult], selection: str) -> list[str]:
    """``selection``: the validation split in words."""
    found = [s for choices in USER_CHOICES for s in selected_per_seed(rows, choices)]
    if not found:
        return []
    table = [[*s.panel, str(s.examples_per_class), s.choices, str(len(s.picks)), fmt_lift(s.lift_macro_f1),
              fmt_picks(s)] for s in found]
    return ["", "## Chosen per seed on its own validation rows", "",
            f"What a user holding one seed's labelled draw would get: the variant with the best validation "
            f"macro-F1 on that draw ({selection}; ties go to no augmentation), scored on test. Lift in points "
            "over no augmentation, paired by seed, with the picks (variant: seeds).", "",
            *_table(["dataset", "classifier", "examples/class", "chosen among", "seeds", "lift macro-F1 (pts)",
                     "picks"], table, "llllrrl")]


def validation_rows(rows: list[CellResult]) -> list[CellResult]:
    """The rows with their validation scores in place of the test scores (empty without a validation split)."""
    if not rows or not all(r.validation_metrics is not None for r in rows):
        return []
    return [r.scored_on_validation() for r in rows]


def _header_lines(config: ExperimentConfig, meta: ExperimentManifest | None, rows: list[CellResult], total: int,
                  stale: int) -> list[str]:
    lines = [f"- cells finished: {len(rows)} of {total}" + ("" if len(rows) == total else " (**partial**)"),
             f"- examples per class: {config.examples_per_class}; seeds: {config.seeds}; ratios: "
             f"{config.ratios}; filter: {config.filters}; classifiers: {', '.join(config.classifiers)}"]
    for name, stats in (meta.datasets if meta else {}).items():
        lines.append(f"- dataset `{name}`: test split {stats.test_total} rows {stats.test_rows} "
                     f"(stratified, seed {config.test.seed}; never used for training, LM fine-tuning, filtering "
                     f"or the quality judge); training pool {stats.pool_rows}")
    for spec in config.augmenters:
        if spec.type == "lm":
            ft, gen = spec.finetune, spec.generate
            training = (f"instruct, no training: {ft.instruct.examples} real rows per prompt" if ft.mode == "instruct"
                        else f"{ft.mode}{f', LoRA r{ft.lora_rank}' if ft.adapter == 'lora' else ''}, {ft.max_steps} "
                             f"steps x {ft.batch_size} blocks of {ft.block_size} tokens, lr {ft.learning_rate:g}")
            lines.append(f"- `{spec.name}`: {ft.model}, {training}; sampling T={gen.temperature:g}, "
                         f"top-k {gen.top_k}, top-p {gen.top_p}, prefix_words {gen.prefix_words}, max "
                         f"{gen.max_new_tokens} new tokens; pool margin {spec.pool_margin:g}")
    if True in config.filters:
        lines.append(f"- filter: {config.filter.describe()}")
        lines += [f"- `{name}` filter: {own.describe()}" for name, own in config.own_filters().items()]
    lines.append("- validation selection: " + (config.validation.describe() if config.validation else
                                                 "none (no validation rows; nothing was selected on held-out rows)"))
    lines += reference_lines(config)
    lines += [f"- `{spec.name}`: its own ratios {spec.ratios}" for spec in config.augmenters
              if getattr(spec, "ratios", None)]
    lines += eda_lines(config, rows)
    if len(config.seeds) < 5:
        lines.append(f"- only {len(config.seeds)} seeds: intervals are wide and the t-quantile large")
    if stale:
        lines.append(f"- {stale} rows in results.jsonl belong to other configurations and are not shown")
    if meta:
        versions = ", ".join(f"{k} {v}" for k, v in meta.versions.items())
        lines.append(f"- first run started {meta.started()}, last run {meta.created}; {versions}; {meta.platform}")
    return lines


def eda_lines(config: ExperimentConfig, rows: list[CellResult]) -> list[str]:
    """Whether EDA's synonym replacement ran, from the rows themselves (older rows had none)."""
    lines = []
    for spec in config.augmenters:
        if spec.type != "eda":
            continue
        used = {r.eda.synonyms if r.eda else "off" for r in rows if r.augmenter == spec.name}
        how = {"wordnet": "with synonym replacement and insertion from WordNet 3.0 (offline, Debian wordnet-base)",
               "off": "without synonym replacement (no offline WordNet; `augment fetch wordnet` adds it): swap, "
                      "delete, insert a word of the label's rows"}
        text = "; ".join(how[u] for u in sorted(used)) or "no cells yet"
        lines.append(f"- `{spec.name}`: EDA, alpha {spec.alpha:g}, {text}")
    return lines


def reference_lines(config: ExperimentConfig) -> list[str]:
    """What the real-row references are, so a reader knows what the ceiling and the floor mean."""
    lines = []
    for spec in config.augmenters:
        if spec.type == "oracle":
            lines.append(f"- `{spec.name}`: real labelled pool rows (never test, validation or sample rows) in "
                         "the counts the ratio asks for: the ceiling")
        elif spec.type == "pseudo-label":
            lines.append(f"- `{spec.name}`: unlabelled pool texts labelled by {spec.classifier} trained on the "
                         "cell's sample, the most confident per label: what generation adds over the text itself")
    return lines


def report_files(out_dir: Path) -> list[Path]:
    files = [out_dir / REPORT]
    for prefix in PLOT_PREFIXES:
        files.extend(sorted(out_dir.glob(f"{prefix}*.png")))
    return [f for f in files if f.exists()]


def write_report(config: ExperimentConfig, out_dir: Path) -> tuple[Path, list[Group]]:
    """Rebuild report.md and the plots from results.jsonl."""
    rows, total, stale = current_rows(config, out_dir)
    if not rows:
        raise ConfigError(f"{out_dir}: no finished cells for this configuration yet; run the experiment first")
    groups = summarize(rows)
    for old in report_files(out_dir):
        if old.suffix == ".png":
            old.unlink()
    plots = write_plots(groups, out_dir)
    write_text_atomic(out_dir / REPORT, build_markdown(config, out_dir, rows, total, stale, plots))
    return out_dir / REPORT, groups
