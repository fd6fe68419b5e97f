"""Load every dataset, hold out the test split, and check everything that can fail cheaply.

The test split is made once per dataset (stratified, seeded) and never seen by
anything but ``evaluate``: training samples, LMs, filters and the quality judge
all draw from the remaining rows (the "pool").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from augment.config import DataConfig
from augment.data import LABEL, TEXT, hold_out_per_class, load_dataset, sample_per_class, split_train_test
from augment.data import label_counts as _counts
from augment.errors import ConfigError, DataError
from augment.experiment.config import ExperimentConfig, LabelNameSpec, LMSpec, ValidationSplit

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    name: str
    config: DataConfig
    pool: pd.DataFrame
    test: pd.DataFrame
    judge_name: str
    judge_rows: int
    judge_seed: int
    validation_split: ValidationSplit | None = None
    _judge: Any = field(default=None, repr=False)
    # frozen-encoder embeddings (minilm-lr) shared by every cell of this dataset in one run:
    # the test and validation rows, and each sample's real rows, are encoded once
    embeddings: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.embeddings is None:
            from classifiers import EmbeddingCache

            self.embeddings = EmbeddingCache()

    @property
    def labels(self) -> list[str]:
        return sorted(self.pool[LABEL].unique())

    def sample(self, examples: int, seed: int) -> pd.DataFrame:
        return sample_per_class(self.pool, examples, seed, source=f"dataset '{self.name}'")

    def labelled(self, examples: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """A cell's training rows and validation rows. Honest selection: both come out of the
        ``examples`` rows per class; otherwise the sample trains and the pool draw validates."""
        sample = self.sample(examples, seed)
        split = self.validation_split
        if split is None or not split.honest:
            return sample, self.validation(sample)
        return hold_out_per_class(sample, split.honest_per_class, _seed(split.seed, seed), f"dataset '{self.name}'")

    def validation(self, train: pd.DataFrame) -> pd.DataFrame | None:
        """The validation draw minus this sample's own rows (the same draw for every sample, so
        training samples, and the LMs cached for them, do not depend on it)."""
        drawn = self._validation_draw()
        if drawn is None:
            return None
        return drawn[~drawn[TEXT].isin(set(train[TEXT]))].reset_index(drop=True)

    def _validation_draw(self) -> pd.DataFrame | None:
        if self.validation_split is None or self.validation_split.honest:
            return None
        return self.pool.sample(n=min(self.validation_split.size, len(self.pool)),
                                random_state=self.validation_split.seed)

    def unlabelled(self) -> list[str]:
        """Pool texts without their labels, for prompts: never a test row, never a validation row."""
        texts = self.pool[TEXT]
        drawn = self._validation_draw()
        if drawn is not None:
            texts = texts[~texts.isin(set(drawn[TEXT]))]
        return texts.tolist()

    def outside(self, *frames: pd.DataFrame) -> pd.DataFrame:
        """Pool rows that are in none of ``frames`` (a cell's sample and validation rows) and not in the
        validation draw: what an oracle or a pseudo-labeller may add without leaking evaluation rows."""
        taken = set().union(*(set(f[TEXT]) for f in frames))
        drawn = self._validation_draw()
        if drawn is not None:
            taken |= set(drawn[TEXT])
        return self.pool[~self.pool[TEXT].isin(taken)].reset_index(drop=True)

    def judge(self) -> Any:
        """The quality judge: trained once on real pool rows (never test rows, never the filter's model)."""
        if self._judge is None:
            from classifiers import make_classifier

            rows = pd.concat([g.sample(n=min(len(g), self.judge_rows), random_state=self.judge_seed)
                              for _, g in self.pool.groupby(LABEL, sort=True)])
            log.info("%s: training the quality judge (%s) on %d pool rows", self.name, self.judge_name, len(rows))
            judge = make_classifier(self.judge_name, self.judge_seed, embedding_cache=self.embeddings)
            self._judge = judge.fit(rows[TEXT].tolist(), rows[LABEL].tolist())
        return self._judge

    def stats(self) -> dict[str, Any]:
        return {"pool_rows": _counts(self.pool), "test_rows": _counts(self.test), "test_total": len(self.test)}


def _seed(split_seed: int, sample_seed: int) -> int:
    """One seed per (split seed, sample seed) for the honest split, never the global RNG."""
    return (split_seed * 1_000_003 + sample_seed) % (2 ** 32)


def prepare(config: ExperimentConfig) -> dict[str, PreparedData]:
    """All datasets split and checked; raises before any model is loaded."""
    _check_models(config)
    prepared = {}
    for name, data in config.named_datasets().items():
        pool, test = _split(config, name, data)
        _check(config, name, pool, test)
        prepared[name] = PreparedData(name, data, pool, test, config.quality.judge,
                                      config.quality.judge_rows_per_class, config.quality.seed, config.validation)
        _check_references(config, prepared[name])
    _check_descriptions(config, {label for data in prepared.values() for label in data.labels})
    return prepared


def _check_descriptions(config: ExperimentConfig, labels: set[str]) -> None:
    """Label descriptions (label-name rows, instruct prompts) may cover several datasets, but each must name
    a label of at least one of them."""
    from augment.instruct import check_descriptions

    for spec in config.augmenters:
        if isinstance(spec, LabelNameSpec):
            check_descriptions(spec.descriptions, sorted(labels), f"augmenter '{spec.name}': descriptions")
        elif isinstance(spec, LMSpec) and spec.finetune.mode == "instruct":
            check_descriptions(spec.finetune.instruct.descriptions, sorted(labels),
                               f"augmenter '{spec.name}': finetune.instruct.descriptions")


def _check_references(config: ExperimentConfig, data: PreparedData) -> None:
    """Oracle rows beyond the pool, or a pseudo-labeller with too few texts: one error, before any model."""
    from augment.experiment.references import check_reference_rows

    specs = [s for s in config.augmenters if s.type in ("oracle", "pseudo-label")]
    if specs:
        available = data.outside()
        for spec in specs:
            check_reference_rows(data.name, spec, config.examples_per_class, spec.ratio_axis(config.ratios), available,
                                 data.labels)


def _split(config: ExperimentConfig, name: str, data: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    source = f"dataset '{name}' ({data.path})"
    frame = load_dataset(data.path, data)
    if config.test.data is None:
        return split_train_test(frame, config.test.size, config.test.seed, source=source)
    test = load_dataset(config.test.data.path, config.test.data)
    pool = frame[~frame[TEXT].isin(set(test[TEXT]))].reset_index(drop=True)
    if len(pool) < len(frame):
        log.info("%s: %d rows also in the test file were removed from training", name, len(frame) - len(pool))
    return pool, test


def _check(config: ExperimentConfig, name: str, pool: pd.DataFrame, test: pd.DataFrame) -> None:
    if len(test) < config.test.min_rows:
        raise ConfigError(f"dataset '{name}': the test split has {len(test)} rows, fewer than "
                          f"test.min_rows={config.test.min_rows}; raise test.size or lower test.min_rows")
    missing = sorted(set(pool[LABEL]) - set(test[LABEL]))
    if missing:
        raise DataError(f"dataset '{name}': label(s) {', '.join(missing)} missing from the test split "
                        f"(test labels: {', '.join(sorted(set(test[LABEL])))})")
    extra = sorted(set(test[LABEL]) - set(pool[LABEL]))
    if extra:
        raise DataError(f"dataset '{name}': test label(s) {', '.join(extra)} have no training rows")
    need = max(config.examples_per_class)
    counts = pool[LABEL].value_counts()
    short = {str(k): int(v) for k, v in counts.items() if v < need}
    if short:
        detail = ", ".join(f"'{k}' has {v}" for k, v in sorted(short.items()))
        raise DataError(f"dataset '{name}': examples_per_class {need} needs {need} rows of each label "
                        f"outside the test split, but {detail}")


def _check_wordnet(config: ExperimentConfig) -> None:
    from augment import wordnet

    for spec in config.augmenters:
        if spec.type == "eda" and spec.synonyms == "wordnet" and not wordnet.available():
            raise ConfigError(f"augmenter '{spec.name}': synonyms 'wordnet' needs the offline WordNet at "
                              f"{wordnet.wordnet_dir()} and nltk: run `augment fetch wordnet` "
                              "(or use synonyms: auto, which runs without it)")


def _check_models(config: ExperimentConfig) -> None:
    from augment.models import SHORT_NAMES, check_model_dir
    from classifiers.base import member_names

    _check_wordnet(config)
    for spec in config.augmenters:
        if not isinstance(spec, LMSpec):
            continue
        ft = spec.finetune
        low, honest = min(config.examples_per_class), config.honest_validation()
        if low - honest < ft.min_rows:
            rows = f"examples_per_class {low}" + (f" less {honest} honest validation rows" if honest else "")
            raise ConfigError(f"augmenter '{spec.name}': {rows} is below finetune.min_rows={ft.min_rows}; "
                              "the LM would refuse to train")
        if ft.model in SHORT_NAMES:
            _check_fetched(ft.model, f"augmenter '{spec.name}'")
            continue
        path = Path(ft.model).expanduser()
        if path.exists():
            check_model_dir(path, ft.trust_pickle)
        elif ft.model.startswith((".", "/", "~")):
            raise ConfigError(f"augmenter '{spec.name}': model directory {ft.model} not found")
    names = {*config.classifiers, config.quality.judge,
             *(s.classifier for s in config.augmenters if s.type == "pseudo-label")}
    for spec in config.augmenters:
        filter_ = config.filter_for(spec)
        if spec.type == "lm" and ((True in config.filters and filter_.fidelity != "off")
                                  or spec.prompts == "pool-by-label"):
            names.add(filter_.fidelity_classifier)
    names = member_names(names)
    if names & {"minilm-lr", "setfit"}:
        from classifiers import minilm_path

        minilm_path()
    if "setfit" in names:
        from classifiers.setfit import _import_setfit

        _import_setfit()
    _check_judges(names)


def _check_fetched(model: str, where: str) -> None:
    """A grid never stops mid-run for a download of gigabytes: the fetch command comes before any work."""
    from augment.models import unfetched

    if (command := unfetched(model)) is not None:
        raise ConfigError(f"{where}: model {model} is not fetched; run {command} first")


def _check_judges(names: set[str]) -> None:
    """A judge's model that is not there, or is no instruct model, fails now, not after hours of other cells."""
    from augment.models import SHORT_NAMES, check_model_dir
    from classifiers.base import judge_name
    from classifiers.judge import check_judge_model

    for name in sorted(names):
        judge = judge_name(name)
        if judge is None:
            continue
        path = Path(judge.model).expanduser()
        if judge.model in SHORT_NAMES:
            _check_fetched(judge.model, f"classifier '{name}'")
        elif path.exists():
            check_model_dir(path, trust_pickle=False)
        elif judge.model.startswith((".", "/", "~")):
            raise ConfigError(f"classifier '{name}': model directory {judge.model} not found")
        check_judge_model(judge.model)
