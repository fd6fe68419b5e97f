"""Confidence intervals and paired lifts against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from augment.experiment.report import fmt_lift, fmt_score, summarize
from augment.experiment.results import CellResult
from tests.experiment.helpers import cell_result
from augment.experiment.stats import paired_differences, t_interval


def test_t_interval_matches_hand_computation():
    # mean 3, sample sd sqrt(2.5) = 1.5811; t(0.975, df=4) = 2.7764451; half = 2.7764451 * 1.5811 / sqrt(5)
    iv = t_interval([1, 2, 3, 4, 5])
    assert iv.mean == 3 and iv.n == 5
    assert iv.half_width == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert iv.half_width == pytest.approx(1.9632432, rel=1e-6)
    assert (iv.low, iv.high) == pytest.approx((3 - 1.9632432, 3 + 1.9632432), rel=1e-6)


def test_t_interval_two_values_and_other_confidence():
    # n=2: t(0.975, 1) = 12.7062047; sd of (0, 1) = 0.70710678; half = 12.706 * 0.7071 / 1.4142 = 6.3531
    assert t_interval([0.0, 1.0]).half_width == pytest.approx(6.3531024, rel=1e-6)
    # 90%: t(0.95, 4) = 2.1318468
    assert t_interval([1, 2, 3, 4, 5], 0.90).half_width == pytest.approx(2.1318468 * 0.7071068, rel=1e-6)


def test_degenerate_intervals():
    single = t_interval([0.7])
    assert single.mean == 0.7 and single.low is None and single.half_width is None and not single.excludes_zero
    flat = t_interval([0.2, 0.2, 0.2])
    assert flat.low == flat.high == 0.2 and flat.half_width == 0 and flat.excludes_zero
    with pytest.raises(ValueError):
        t_interval([])


def test_paired_differences_pair_by_seed_only():
    assert paired_differences({0: 0.7, 1: 0.8, 2: 0.9}, {2: 0.5, 0: 0.6, 3: 0.1}) == pytest.approx([0.1, 0.4])


def _row(seed: int, augmenter: str, f1: float, acc: float) -> CellResult:
    return cell_result(augmenter=augmenter, type=augmenter, ratio=None if augmenter == "none" else 1.0, seed=seed,
                       metrics={"macro_f1": f1, "accuracy": acc})


def test_summary_lift_is_paired_not_a_difference_of_means():
    # baseline varies a lot by seed, the augmenter adds exactly +0.02 (f1) on each seed
    base = [0.50, 0.70, 0.60]
    rows = [_row(s, "none", f, f) for s, f in enumerate(base)]
    rows += [_row(s, "eda", f + 0.02, f - 0.01) for s, f in enumerate(base)]
    none, eda = summarize(rows)
    assert none.lift_macro_f1 is None and none.macro_f1.mean == pytest.approx(0.6)
    assert eda.lift_macro_f1.mean == pytest.approx(0.02) and eda.lift_macro_f1.half_width == pytest.approx(0)
    assert eda.lift_accuracy.mean == pytest.approx(-0.01)
    # an unpaired comparison would have a CI of about +-0.25 here
    assert eda.macro_f1.half_width == pytest.approx(4.3026527 * 0.1 / math.sqrt(3), rel=1e-6)
    assert fmt_lift(eda.lift_macro_f1) == "**+2.0 [+2.0, +2.0]**"
    assert fmt_score(none.macro_f1) == "0.600 ± 0.248"
    assert fmt_lift(None) == "-"
