"""Means with Student-t confidence intervals over seeds, and lifts paired by seed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None       # None with fewer than 2 values: no spread to estimate
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """mean ± t(1 - (1 - confidence) / 2, n - 1) · s / √n, with s the sample standard deviation (n - 1)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n)
    if len(set(values)) == 1:   # no spread; floating error must not invent some
        return Interval(values[0], values[0], values[0], n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_differences(treated: Mapping[int, float], baseline: Mapping[int, float]) -> list[float]:
    """treated - baseline for every seed both have (the pairing removes the sample's own luck)."""
    return [treated[s] - baseline[s] for s in sorted(treated) if s in baseline]
