"""A report line: the cells of one setting pooled over seeds, shared by the report and its plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from augment.experiment.stats import Interval


@dataclass(frozen=True)
class Group:
    key: dict[str, Any]
    rows: list[dict[str, Any]]
    accuracy: Interval
    macro_f1: Interval
    lift_accuracy: Interval | None
    lift_macro_f1: Interval | None

    @property
    def variant(self) -> str:
        return variant_name(self.key)

    @property
    def panel(self) -> tuple[str, str]:
        return self.key["dataset"], self.key["classifier"]


def variant_name(key: dict[str, Any]) -> str:
    if key["type"] == "none":
        return key["augmenter"]
    return f"{key['augmenter']} x{key['ratio']:g}" + (" +filter" if key["filter"] else "")
