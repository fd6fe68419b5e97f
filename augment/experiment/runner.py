"""Run the grid: skip finished cells, share artefacts, append one results row per cell.

Every check that can fail runs before any model is loaded (``prepare``). A
cell's row is appended the moment it finishes, so an interrupt costs at most
the cell in flight (plus, for an LM cell, the part of its fine-tuning since
the last checkpoint, or the generation in progress).
"""

from __future__ import annotations

import itertools
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from augment.data import LABEL, TEXT
from augment.data import label_counts as _counts
from augment.errors import AugmentError, ConfigError
from augment.experiment import artefacts
from augment.experiment.config import ExperimentConfig, LMSpec
from augment.experiment.data import PreparedData, prepare
from augment.experiment.grid import Cell, expand, pool_rows, resolved
from augment.experiment.results import (EXPERIMENT_JSON, RESULTS, AdaptInfo, CellResult, DatasetStats, EdaInfo,
                                        ExperimentManifest, LMInfo, PoolInfo, Quality, ReferenceInfo, ResultsLog,
                                        RowCounts, Scores, WallTime)
from augment.files import hash_json, write_json_atomic

log = logging.getLogger(__name__)

OnCell = Callable[[Cell, CellResult], None]


@dataclass(frozen=True)
class PoolMade:
    """What a sample's synthetic pool took: its LM, the pool itself, and the adapted start model if any."""

    lm: LMInfo
    pool: PoolInfo
    adapt: AdaptInfo | None


@dataclass(frozen=True)
class RunSummary:
    cells: int
    skipped: int
    ran: int
    wall_s: float


class SampleWork:
    """One training sample and everything derived from it, computed at most once."""

    def __init__(self, config: ExperimentConfig, data: PreparedData, examples: int, seed: int,
                 sample_key: str, cache: Path):
        self.config, self.data, self.examples, self.seed = config, data, examples, seed
        self.sample_key, self.cache = sample_key, cache
        self.train, self.validation = data.labelled(examples, seed)
        self._pools: dict[str, tuple[pd.DataFrame, PoolMade]] = {}
        self._filtered: dict[tuple[str, int | None], Any] = {}
        self._fidelity: dict[str, Any] = {}
        self._quality: dict[tuple[str, float | None, bool], Quality | None] = {}
        self._references: dict[str, pd.DataFrame] = {}
        self._labellers: dict[str, Any] = {}

    def synthetic(self, cell: Cell) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The synthetic rows of a cell and what it took to make them (``CellResult`` fields)."""
        spec, k = cell.augmenter, cell.rows_per_label()
        if spec.type == "none":
            return pd.DataFrame(columns=[TEXT, LABEL]), {}
        if spec.type in ("oversample", "label-name"):
            return self._baseline(spec, k), {}
        if spec.type == "eda":
            return self._baseline(spec, k), {"eda": EdaInfo(synonyms=spec.resolved_synonyms())}
        if spec.type in ("oracle", "pseudo-label"):
            return self._reference(spec, k)
        pool, made = self.pool(spec)
        extra: dict[str, Any] = {"lm": made.lm, "pool": made.pool, "pool_rows": _counts(pool),
                                 **({"adapt": made.adapt} if made.adapt else {})}
        if cell.filtered:
            result = self.filtered(spec, k)
            extra["filter_report"] = result.report
            pool = result.kept
        return pool.groupby(LABEL, sort=True).head(k).reset_index(drop=True)[[TEXT, LABEL]], extra

    def _baseline(self, spec: Any, k: int) -> pd.DataFrame:
        from augment.baselines import EDAAugmenter, LabelNameAugmenter, OversampleAugmenter

        if spec.type == "eda":
            aug = EDAAugmenter(self.train, alpha=spec.alpha, synonyms=_synonyms(spec))
        elif spec.type == "label-name":
            aug = LabelNameAugmenter(self.train, templates=spec.templates, descriptions=spec.descriptions)
        else:
            aug = OversampleAugmenter(self.train)
        return pd.concat([aug.generate(label=l, n=k, seed=self.seed) for l in self.data.labels], ignore_index=True)

    def _reference(self, spec: Any, k: int) -> tuple[pd.DataFrame, dict[str, ReferenceInfo]]:
        """Real rows in the cell's counts: the oracle's true labels, or the pseudo-labeller's surest."""
        from augment.experiment import references

        if spec.name not in self._references:
            frames = [self.train] if self.validation is None else [self.train, self.validation]
            candidates = self.data.outside(*frames)
            if spec.type == "pseudo-label" and spec.candidates and len(candidates) > spec.candidates:
                candidates = candidates.sample(n=spec.candidates, random_state=self.seed).reset_index(drop=True)
            if spec.type == "oracle":
                self._references[spec.name] = references.oracle_order(candidates, self.seed)
            else:
                self._references[spec.name] = self._pseudo_labels(spec, candidates[TEXT].tolist())
        ordered = self._references[spec.name]
        rows = references.first_per_label(ordered, k)
        if spec.type == "oracle":
            return rows, {"reference": ReferenceInfo(candidates=len(ordered))}
        accuracy = references.pseudo_label_accuracy(rows, self.data.pool)
        return rows, {"reference": ReferenceInfo(candidates=len(ordered), classifier=spec.classifier,
                                                 pseudo_label_accuracy=accuracy,
                                                 **({"rounds": spec.rounds} if spec.rounds > 1 else {}))}

    def _pseudo_labels(self, spec: Any, texts: list[str]) -> pd.DataFrame:
        """The texts labelled surest first; a second round retrains the labeller on the real rows plus, per
        label, as many round-1 pseudo-labels as the sample has real rows (so every ratio shares one order)."""
        from augment.filter import pseudo_labelled
        from classifiers import make_classifier

        ordered = pseudo_labelled(texts, self._labeller(spec.classifier))
        if spec.rounds == 1:
            return ordered
        real = self.train[LABEL].value_counts()
        added = pd.concat([ordered[ordered[LABEL] == label].head(int(n)) for label, n in sorted(real.items())])
        rows = pd.concat([self.train[[TEXT, LABEL]], added[[TEXT, LABEL]]], ignore_index=True)
        model = make_classifier(spec.classifier, self.seed, embedding_cache=self.data.embeddings)
        return pseudo_labelled(texts, model.fit(rows[TEXT].tolist(), rows[LABEL].tolist()))

    def _labeller(self, name: str) -> Any:
        """The pseudo-labeller: ``name`` trained on this sample's real rows, once per sample."""
        from classifiers import make_classifier

        if name not in self._labellers:
            model = make_classifier(name, self.seed, embedding_cache=self.data.embeddings)
            self._labellers[name] = model.fit(self.train[TEXT].tolist(), self.train[LABEL].tolist())
        return self._labellers[name]

    def pool(self, spec: LMSpec) -> tuple[pd.DataFrame, PoolMade]:
        if spec.name not in self._pools:
            precision = artefacts.lm_precision(spec, self.config.precision)
            start, adapted = self._adapted(spec, precision)
            key = artefacts.lm_key(self.sample_key, spec, self.seed, None if adapted is None else adapted.key,
                                   precision)
            info = {"dataset": self.data.name, "examples_per_class": self.examples, "seed": self.seed,
                    "data": self.data.config.model_dump()}
            run_dir, lm = artefacts.trained_lm(self.cache, key, spec, self.train, self.seed, info, start, precision)
            rows = pool_rows(self.config, spec, self.examples)
            prompts = self._prompts(spec, rows)
            pkey = artefacts.pool_key(key, spec, self.seed, rows, None if prompts is None else _prompts_hash(prompts),
                                      precision)
            frame, pool = artefacts.synthetic_pool(self.cache, pkey, spec, run_dir, self.data.labels, rows, self.seed,
                                                   prompts, precision)
            self._pools[spec.name] = frame, PoolMade(lm, pool, adapted)
        return self._pools[spec.name]

    def _adapted(self, spec: LMSpec, precision: str) -> tuple[Path | None, AdaptInfo | None]:
        """The dataset's adapted start model (one for every sample and size), if the spec asks for one."""
        if spec.adapt is None:
            return None, None
        texts = self.data.unlabelled()
        if len(texts) > spec.adapt_texts:
            texts = random.Random(spec.adapt.seed).sample(texts, spec.adapt_texts)
        data_key = {"dataset": self.data.name, "data": self.data.config.model_dump(),
                    "test": self.config.test.model_dump()}
        key = artefacts.adapt_key(data_key, spec, texts, precision)
        path, info = artefacts.adapted_model(self.cache, key, spec, texts, f"dataset '{self.data.name}' pool",
                                             precision)
        return path, info

    def _prompts(self, spec: LMSpec, rows: int) -> dict[str, list[str]] | None:
        """Each label's prompt texts: the same pool texts for all, or those the fidelity classifier gives it."""
        if spec.prompts == "labelled":
            return None
        texts = self.data.unlabelled()
        if spec.prompts == "pool":
            return {label: texts for label in self.data.labels}
        from augment.recipe import prompts_by_label

        classifier = self.fidelity_classifier(self.config.filter_for(spec).fidelity_classifier)
        return prompts_by_label(texts, classifier, dict.fromkeys(self.data.labels, rows), self.seed)

    def fidelity_classifier(self, name: str) -> Any:
        """A filter's classifier, trained on this sample's labelled rows only (once per name)."""
        from classifiers import fitted_classifier

        if name not in self._fidelity:
            self._fidelity[name] = fitted_classifier(name, self.train[TEXT].tolist(), self.train[LABEL].tolist(),
                                                     self.seed)
        return self._fidelity[name]

    def filtered(self, spec: LMSpec, need: int) -> Any:
        """The pool through the augmenter's filters. With top-k fidelity a cell keeps the ``need`` rows
        per label the classifier is surest of (at most ``fidelity_top_k``), as LAMBADA does; with
        sample, ``need`` rows drawn from those it agrees with."""
        from augment.filter import filter_synthetic

        config = self.config.filter_for(spec)
        config = config.keeping(min(need, config.fidelity_top_k or need))
        key = (spec.name, config.fidelity_top_k)
        if key not in self._filtered:
            pool, _ = self.pool(spec)
            classifier = self.fidelity_classifier(config.fidelity_classifier) if config.fidelity != "off" else None
            self._filtered[key] = filter_synthetic(pool, self.train, config, seed=self.seed, classifier=classifier)
        return self._filtered[key]

    def _real_reference(self, rows: int) -> list[str]:
        """As many real pool texts as the synthetic set has rows, so set-size-dependent metrics compare."""
        texts = self.data.unlabelled()
        return random.Random(f"reference:{self.seed}").sample(texts, min(rows, len(texts)))

    def quality(self, cell: Cell, synthetic: pd.DataFrame) -> Quality | None:
        """Quality of the rows a cell trains on; the same for every classifier."""
        from augment.metrics import quality_report

        key = (cell.augmenter.name, cell.ratio, cell.filtered)
        if key not in self._quality:
            self._quality[key] = (None if synthetic.empty else Quality.model_validate(
                quality_report(synthetic, self.train, self.data.judge(), seed=self.seed,
                               reference=self._real_reference(len(synthetic)))))
        return self._quality[key]



def _prompts_hash(prompts: dict[str, list[str]]) -> str:
    """Pool prompts shared by every label hash as before, so cached pools of earlier runs stay valid."""
    shared = list(prompts.values())
    if all(p is shared[0] for p in shared):
        return hash_json(shared[0])
    return hash_json(prompts)


def _synonyms(spec: Any) -> Any:
    """The offline WordNet for an EDA spec that resolves to it (loaded once per process), else None."""
    if spec.resolved_synonyms() == "off":
        return None
    from augment.wordnet import load_wordnet, wordnet_dir

    return load_wordnet(str(wordnet_dir()))


def run_cell(config: ExperimentConfig, cell: Cell, work: SampleWork) -> CellResult:
    from classifiers import evaluate, make_classifier

    start = time.perf_counter()
    synthetic, extra = work.synthetic(cell)
    made = time.perf_counter()
    train = pd.concat([work.train[[TEXT, LABEL]], synthetic], ignore_index=True)
    classifier = make_classifier(cell.classifier, cell.seed, embedding_cache=work.data.embeddings)
    weight = getattr(cell.augmenter, "weight", 1.0)
    weights = {} if weight == 1.0 else {"sample_weight": [1.0] * len(work.train) + [weight] * len(synthetic)}
    classifier.fit(train[TEXT].tolist(), train[LABEL].tolist(), **weights)
    scores = evaluate(classifier, work.data.test[TEXT].tolist(), work.data.test[LABEL].tolist())
    val = work.validation
    extra_scores = {} if val is None else {
        "validation_metrics": Scores.model_validate(evaluate(classifier, val[TEXT].tolist(), val[LABEL].tolist()))}
    return CellResult(
        **cell.describe(),
        config=resolved(config, cell),
        metrics=Scores.model_validate(scores),
        **extra_scores,
        rows=RowCounts(real=len(work.train), synthetic=len(synthetic), requested_per_label=cell.rows_per_label(),
                       synthetic_by_label=_counts(synthetic)),
        **extra,
        quality=work.quality(cell, synthetic),
        wall_s=WallTime(augment=round(made - start, 2), total=round(time.perf_counter() - start, 2)),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def run_experiment(config: ExperimentConfig, out_dir: Path, *, overwrite: bool = False,
                   on_plan: Callable[[int, int], None] | None = None, on_cell: OnCell | None = None,
                   source: Path | None = None, cache: Path | None = None,
                   only: Sequence[str] = ()) -> RunSummary:
    """Run every unfinished cell; returns counts and wall time. Validation comes first.

    ``cache``: where adapted and fine-tuned LMs and synthetic pools live (default ``out_dir/cache``);
    their keys hash everything they depend on, so configs may share one cache and pay for each once.
    ``only``: run just these augmenters' cells (the question a long grid must answer first); the rest
    stay unfinished for a later run.
    """
    names = [a.name for a in config.augmenters]
    if unknown := sorted(set(only) - set(names)):
        raise ConfigError(f"--only {unknown[0]}: no such augmenter (augmenters: {', '.join(names)})")
    prepared = prepare(config)
    out_dir = Path(out_dir)
    cache = Path(cache) if cache is not None else out_dir / "cache"
    results = ResultsLog(out_dir / RESULTS)
    with results.locked():
        if overwrite:
            clear_results(out_dir)
        results.repair()
        done = results.keys()
        cells = expand(config)
        todo = [c for c in cells if c.key not in done and (not only or c.augmenter.name in only)]
        _write_experiment(config, out_dir, prepared, source)
        _write_gitignore(out_dir)
        if on_plan:
            on_plan(len(cells), len(todo))
        start = time.perf_counter()
        for (dataset, examples, seed, skey), group in itertools.groupby(
                todo, key=lambda c: (c.dataset, c.examples_per_class, c.seed, c.sample_key)):
            work = SampleWork(config, prepared[dataset], examples, seed, skey, cache)
            for cell in group:
                row = run_cell(config, cell, work)
                results.append(row)
                if on_cell:
                    on_cell(cell, row)
    return RunSummary(cells=len(cells), skipped=len(cells) - len(todo), ran=len(todo),
                      wall_s=round(time.perf_counter() - start, 1))


def clear_results(out_dir: Path) -> None:
    """``--overwrite``: results and report go; cached LMs and pools stay (their keys hash their config)."""
    from augment.experiment.report import report_files

    (out_dir / RESULTS).unlink(missing_ok=True)
    (out_dir / EXPERIMENT_JSON).unlink(missing_ok=True)
    for path in report_files(out_dir):
        path.unlink(missing_ok=True)


def _write_experiment(config: ExperimentConfig, out_dir: Path, prepared: dict[str, PreparedData],
                      source: Path | None) -> None:
    copy = out_dir / "config.yaml"
    if source is not None and Path(source).resolve() != copy.resolve():
        shutil.copyfile(source, copy)
    record = ExperimentManifest.now(
        config.model_dump(mode="json", exclude_unset=True), resolved=config.model_dump(mode="json"),
        datasets={name: DatasetStats.model_validate(data.stats()) for name, data in prepared.items()},
        source=str(source) if source else None)
    record = record.model_copy(update={"first_run": _first_run(out_dir / EXPERIMENT_JSON) or record.created})
    write_json_atomic(out_dir / EXPERIMENT_JSON, record.model_dump(mode="json"))


def _first_run(path: Path) -> str | None:
    """When the first run of these results started; an unreadable record is replaced, as it always was."""
    try:
        previous = ExperimentManifest.read(path)
    except AugmentError:
        return None
    return previous.started() if previous else None


def _write_gitignore(out_dir: Path) -> None:
    path = out_dir / ".gitignore"
    if not path.exists():
        path.write_text("# cached fine-tuned LMs and synthetic pools: large, and rebuilt on demand\ncache/\n.lock\n",
                        encoding="utf-8")
