"""The grid: every (dataset, examples per class, seed, augmenter, ratio, filter, classifier) cell.

A cell's key is a hash of its full resolved configuration, so a finished cell
is recognised on a re-run whatever else changed in the YAML, and a cell whose
settings changed is a new cell. Axes that do not apply collapse: ``none`` has
no ratio and no filter; the filter applies to the ``lm`` augmenters only
(oversampled rows are all copies, and EDA rows near-copies, of training rows,
which the train-copy filter exists to drop).

Cells are ordered so that every cell of one training sample is adjacent: the
runner then holds one sample's LM and synthetic pool at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from augment.experiment.config import ExperimentConfig, LMSpec
from augment.files import hash_json

GRID_FORMAT = 1   # bump when a cell's meaning changes, so old results are not mistaken for new ones


@dataclass(frozen=True)
class Cell:
    dataset: str
    examples_per_class: int
    seed: int
    augmenter: Any          # one of the augmenter specs
    ratio: float | None
    filtered: bool
    classifier: str
    key: str
    sample_key: str

    @property
    def mode(self) -> str | None:
        return self.augmenter.finetune.mode if isinstance(self.augmenter, LMSpec) else None

    def rows_per_label(self) -> int:
        """Synthetic rows added per label."""
        return 0 if self.ratio is None else rows_per_label(self.ratio, self.examples_per_class)

    def describe(self) -> dict[str, Any]:
        """The fields a results row and the report group by."""
        return {"key": self.key, "dataset": self.dataset, "examples_per_class": self.examples_per_class,
                "seed": self.seed, "augmenter": self.augmenter.name, "type": self.augmenter.type,
                "mode": self.mode, "ratio": self.ratio, "filter": self.filtered, "classifier": self.classifier}


def rows_per_label(ratio: float, examples: int) -> int:
    """Rows an augmenter adds per label at ``ratio`` (at least one); prepare-time checks use it too."""
    return max(1, round(ratio * examples))


def sample_key(config: ExperimentConfig, dataset: str, examples: int, seed: int) -> str:
    """Identifies one training sample: the data, the test split it avoids, its size and seed."""
    data = config.named_datasets()[dataset]
    key = {"format": GRID_FORMAT, "data": data.model_dump(), "test": config.test.model_dump(),
           "examples_per_class": examples, "seed": seed}
    if config.honest_validation():   # the training rows are fewer: LMs cached for the full sample do not apply
        key["honest_validation"] = config.validation.key()
    return hash_json(key)[:16]


def resolved(config: ExperimentConfig, cell: Cell) -> dict[str, Any]:
    """Everything that decides a cell's result."""
    key = {
        "format": GRID_FORMAT,
        "sample": cell.sample_key,
        "augmenter": _augmenter_key(cell.augmenter),
        "ratio": cell.ratio,
        "pool": pool_rows(config, cell.augmenter, cell.examples_per_class),
        "filter": config.filter_for(cell.augmenter).model_dump() if cell.filtered else None,
        "classifier": cell.classifier,
    }
    if config.validation is not None:  # absent from the key otherwise: earlier results stay valid
        key["validation"] = config.validation.key()
    return key


def _augmenter_key(augmenter: Any) -> dict[str, Any]:
    """The augmenter's settings, less those at the default they had before they existed,
    so that adding a setting never orphans finished results."""
    dumped = augmenter.model_dump()
    dumped.pop("filter", None)   # the cell's "filter" key holds what runs
    for key, historical in LATER_SETTINGS.items():
        if key in dumped and dumped[key] == historical:
            del dumped[key]
    for key, historical in LATER_FINETUNE_SETTINGS.items():
        if "finetune" in dumped and dumped["finetune"].get(key) == historical:
            del dumped["finetune"][key]
    if "synonyms" in dumped:   # EDA: what runs, not what was asked ('auto' depends on the machine)
        dumped["synonyms"] = augmenter.resolved_synonyms()
        if dumped["synonyms"] == "off":
            del dumped["synonyms"]
    return dumped


LATER_SETTINGS: dict[str, Any] = {"prompts": "labelled", "adapt": None, "adapt_texts": 5000, "candidates": None}
LATER_FINETUNE_SETTINGS: dict[str, Any] = {"eval_fraction": 0.0, "eval_steps": 5, "early_stopping": None}


def pool_rows(config: ExperimentConfig, augmenter: Any, examples: int) -> int | None:
    """Rows per label the LM generates once per sample; every ratio takes a prefix of it."""
    if not isinstance(augmenter, LMSpec):
        return None
    return math.ceil(max(augmenter.ratio_axis(config.ratios)) * examples * augmenter.pool_margin)


def expand(config: ExperimentConfig) -> list[Cell]:
    """Seeds outermost, so a grid over several datasets stopped part-way has every dataset at the same seeds."""
    cells = []
    for seed in config.seeds:
        for dataset in config.named_datasets():
            for examples in config.examples_per_class:
                skey = sample_key(config, dataset, examples, seed)
                for augmenter in config.augmenters:
                    for ratio, filtered in _variants(config, augmenter):
                        for classifier in config.classifiers:
                            cell = Cell(dataset, examples, seed, augmenter, ratio, filtered, classifier, "", skey)
                            key = hash_json(resolved(config, cell))[:16]
                            cells.append(Cell(dataset, examples, seed, augmenter, ratio, filtered, classifier,
                                              key, skey))
    return cells


def _variants(config: ExperimentConfig, augmenter: Any) -> list[tuple[float | None, bool]]:
    if augmenter.type == "none":
        return [(None, False)]
    filters = config.filters if augmenter.type == "lm" else [False]
    return [(ratio, filtered) for ratio in augmenter.ratio_axis(config.ratios) for filtered in filters]
