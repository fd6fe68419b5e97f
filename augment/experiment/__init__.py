"""The experiment runner: does augmentation help a classifier, and by how much?

A grid of datasets x examples per class x seeds x augmenters x ratios x filter
x classifiers, each cell keyed by a hash of its full configuration and written
as one line of ``results.jsonl``; ``report.md`` and plots are rebuilt from it.

    config = load_experiment(Path("experiments/tweets-lowdata.yaml"))
    run_experiment(config, Path("experiments/results/tweets-lowdata"))
    write_report(config, Path("experiments/results/tweets-lowdata"))
"""

from augment.experiment.config import ExperimentConfig, load_experiment
from augment.experiment.grid import Cell, expand
from augment.experiment.report import default_out_dir, load_target, summarize, write_report
from augment.experiment.results import ResultsLog
from augment.experiment.runner import run_experiment
from augment.experiment.stats import Interval, paired_differences, t_interval

__all__ = ["Cell", "ExperimentConfig", "Interval", "ResultsLog", "default_out_dir", "expand", "load_experiment",
           "load_target", "paired_differences", "run_experiment", "summarize", "t_interval", "write_report"]
