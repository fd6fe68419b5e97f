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
from augment.data import LABEL, TEXT, load_dataset, sample_per_class, split_train_test
from augment.data import label_counts as _counts
from augment.errors import ConfigError, DataError
from augment.experiment.config import ExperimentConfig, LMSpec, ValidationSplit

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

    @property
    def labels(self) -> list[str]:
        return sorted(self.pool[LABEL].unique())

    def sample(self, examples: int, seed: int) -> pd.DataFrame:
        return sample_per_class(self.pool, examples, seed, source=f"dataset '{self.name}'")

    def validation(self, train: pd.DataFrame) -> pd.DataFrame | None:
        """The validation draw minus this sample's own rows (the same draw for every sample, so
        training samples, and the LMs cached for them, do not depend on it)."""
        drawn = self._validation_draw()
        if drawn is None:
            return None
        return drawn[~drawn[TEXT].isin(set(train[TEXT]))].reset_index(drop=True)

    def _validation_draw(self) -> pd.DataFrame | None:
        if self.validation_split is None:
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

    def judge(self) -> Any:
        """The quality judge: trained once on real pool rows (never test rows, never the filter's model)."""
        if self._judge is None:
            from classifiers import make_classifier

            rows = pd.concat([g.sample(n=min(len(g), self.judge_rows), random_state=self.judge_seed)
                              for _, g in self.pool.groupby(LABEL, sort=True)])
            log.info("%s: training the quality judge (%s) on %d pool rows", self.name, self.judge_name, len(rows))
            self._judge = make_classifier(self.judge_name, self.judge_seed).fit(rows[TEXT].tolist(),
                                                                                 rows[LABEL].tolist())
        return self._judge

    def stats(self) -> dict[str, Any]:
        return {"pool_rows": _counts(self.pool), "test_rows": _counts(self.test), "test_total": len(self.test)}


def prepare(config: ExperimentConfig) -> dict[str, PreparedData]:
    """All datasets split and checked; raises before any model is loaded."""
    _check_models(config)
    prepared = {}
    for name, data in config.named_datasets().items():
        pool, test = _split(config, name, data)
        _check(config, name, pool, test)
        prepared[name] = PreparedData(name, data, pool, test, config.quality.judge,
                                      config.quality.judge_rows_per_class, config.quality.seed, config.validation)
    return prepared


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


def _check_models(config: ExperimentConfig) -> None:
    from augment.models import SHORT_NAMES, check_model_dir

    for spec in config.augmenters:
        if not isinstance(spec, LMSpec):
            continue
        ft = spec.finetune
        low = min(config.examples_per_class)
        if low < ft.min_rows:
            raise ConfigError(f"augmenter '{spec.name}': examples_per_class {low} is below finetune.min_rows="
                              f"{ft.min_rows}; the LM would refuse to train")
        if ft.model in SHORT_NAMES:
            continue
        path = Path(ft.model).expanduser()
        if path.exists():
            check_model_dir(path, ft.trust_pickle)
        elif ft.model.startswith((".", "/", "~")):
            raise ConfigError(f"augmenter '{spec.name}': model directory {ft.model} not found")
    names = {*config.classifiers, config.quality.judge}
    if True in config.filters and config.filter.fidelity != "off":
        names.add(config.filter.fidelity_classifier)
    if "minilm-lr" in names:
        from classifiers import minilm_path

        minilm_path()
