"""A report line: the cells of one setting pooled over seeds, shared by the report and its plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from augment.experiment.results import CellResult
from augment.experiment.stats import Interval


class GroupKey(NamedTuple):
    """The cells one report line pools over seeds."""

    dataset: str
    classifier: str
    examples_per_class: int
    augmenter: str
    type: str
    mode: str | None
    ratio: float | None
    filter: bool

    @classmethod
    def of(cls, row: CellResult) -> GroupKey:
        return cls(row.dataset, row.classifier, row.examples_per_class, row.augmenter, row.type, row.mode, row.ratio,
                   row.filter)


@dataclass(frozen=True)
class Group:
    key: GroupKey
    rows: list[CellResult]
    accuracy: Interval
    macro_f1: Interval
    lift_accuracy: Interval | None
    lift_macro_f1: Interval | None

    @property
    def variant(self) -> str:
        return variant_name(self.key)

    @property
    def panel(self) -> tuple[str, str]:
        return self.key.dataset, self.key.classifier


def variant_name(key: GroupKey | CellResult) -> str:
    if key.type == "none":
        return key.augmenter
    return f"{key.augmenter} x{key.ratio:g}" + (" +filter" if key.filter else "")
