"""Plots draw each interval as an error bar, so a single size per class still shows its CI."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from matplotlib.axes import Axes

from augment.experiment import load_experiment, run_experiment, summarize
from augment.experiment.plots import write_plots
from augment.experiment.results import ResultsLog
from tests.experiment.helpers import baseline_config, write_yaml

matplotlib.use("Agg")


def test_single_size_intervals_are_error_bars(tmp_path: Path, data_csv: Path, monkeypatch: pytest.MonkeyPatch):
    config = load_experiment(write_yaml(tmp_path / "e.yaml", baseline_config(
        data_csv, examples_per_class=[5], seeds=[0, 1, 2], ratios=[1])))
    run_experiment(config, tmp_path / "out")
    groups = summarize(ResultsLog(tmp_path / "out" / "results.jsonl").read())
    bars: list[tuple[list[float], list[float], list[list[float]]]] = []
    real = Axes.errorbar

    def spy(self, x, y, yerr=None, **kwargs):
        bars.append((list(x), list(y), [list(e) for e in yerr]))
        return real(self, x, y, yerr=yerr, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", spy)
    paths = write_plots(groups, tmp_path / "out")
    assert [p.name for p in paths] == ["lift-tiny-tfidf-lr.png", "scores-tiny-tfidf-lr.png"]
    lifts = [g.lift_macro_f1 for g in groups if g.lift_macro_f1 is not None]
    scores = [g.macro_f1 for g in groups]
    assert len(bars) == len(lifts) + len(scores)            # every interval drawn: none has a score bar only
    drawn = sorted((round(b[1][0], 6), round(b[2][0][0], 6), round(b[2][1][0], 6)) for b in bars[:len(lifts)])
    expected = sorted((round(100 * iv.mean, 6), round(100 * (iv.mean - iv.low), 6), round(100 * (iv.high - iv.mean), 6))
                      for iv in lifts)
    assert drawn == expected
    xs = [b[0][0] for b in bars[:len(lifts)]]
    assert len(set(xs)) == len(xs) and all(4.5 < x < 5.5 for x in xs)   # side by side around 5/class
