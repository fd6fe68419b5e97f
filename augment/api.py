"""The Python API: fit generators on a labelled dataset, then ask for rows.

    from augment import Augmenter
    aug = Augmenter.fit(df, text="text", label="label", model="gpt2", run_dir="runs/tweets")
    synth = aug.generate("pos", n=500)           # DataFrame: text, label, model, seed, params

    from augment import augment_rows              # the whole recipe, as `augment run` does it
    rows = augment_rows(df, "train_augmented.csv", unlabelled=texts)   # text, label, synthetic
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from augment.config import DataConfig, FinetuneConfig, GenerateConfig, build
from augment.data import load_dataset
from augment.finetune import finetune_run
from augment.generate import Generators, generate_rows
from augment.recipe import RecipeConfig, run_recipe
from augment.rundir import RunDir

log = logging.getLogger(__name__)


class Augmenter:
    """A finished run directory with its generators loaded lazily and kept for reuse."""

    def __init__(self, run_dir: str | Path, precision: str = "auto"):
        self.run = RunDir(Path(run_dir))
        self.manifest = self.run.read_manifest()
        self.precision = precision
        self._generators: Generators | None = None   # opened at the first call, kept: a base loads once
        self.answers_dropped: dict[str, dict[str, int]] = {}   # instruct mode: the last call's refusals, empties

    @classmethod
    def fit(cls, data: Any, *, text: str | None = None, label: str | None = None, model: str | None = None,
            run_dir: str | Path | None = None, config: FinetuneConfig | None = None,
            data_config: DataConfig | None = None, resume: bool = False, overwrite: bool = False,
            progress: bool = False) -> "Augmenter":
        """Fine-tune on ``data`` (path, DataFrame or ``datasets.Dataset``) and return the augmenter."""
        source = str(data) if isinstance(data, (str, Path)) else "<memory>"
        data_config = data_config or DataConfig(path=source)
        data_config = build(DataConfig, "data", **{**data_config.model_dump(), **_given(
            text_col=text, label_col=label)})
        config = config or FinetuneConfig()
        if model is not None:
            config = build(FinetuneConfig, "finetune", **{**config.model_dump(), "model": model})
        if run_dir is None:
            run_dir = Path(tempfile.mkdtemp(prefix="augment-run-")) / "run"
            log.info("run directory: %s", run_dir)
        frame = load_dataset(data, data_config)
        finetune_run(frame, Path(run_dir), config, data_info=data_config.model_dump(), resume=resume,
                     overwrite=overwrite, progress=progress)
        return cls(run_dir)

    @classmethod
    def load(cls, run_dir: str | Path, precision: str = "auto") -> "Augmenter":
        return cls(run_dir, precision)

    @property
    def labels(self) -> list[str]:
        return sorted(self.manifest.labels)

    def generate(self, label: str | None = None, n: int = 100, config: GenerateConfig | None = None,
                 prefix_texts: Sequence[str] | None = None, **sampling: Any) -> pd.DataFrame:
        """``n`` rows per label (all labels when ``label`` is None); ``sampling`` overrides ``config``.

        With ``prefix_words`` set, prompts start with the first words of the label's training
        rows, or of ``prefix_texts`` (unlabelled rows of the domain) when given.
        """
        base = (config or GenerateConfig()).model_dump()
        config = build(GenerateConfig, "generate", **{**base, "n": n, **sampling})
        labels = self.labels if label is None else [label]
        for name in labels:
            self.manifest.model_key(name, self.run.root)  # an unknown label fails before any model loads
        if self._generators is None:
            self._generators = Generators.open(self.run, labels, self.precision, self.manifest)
        given = None if prefix_texts is None else {name: list(prefix_texts) for name in labels}
        made = generate_rows(self._generators, labels, config, prefix_texts=given)
        for name, counts in (made.answers_dropped or {}).items():
            self.answers_dropped[name] = counts
            if counts:
                log.info("'%s': %s answers dropped", name, ", ".join(f"{n} {r}" for r, n in sorted(counts.items())))
        return made.rows


def augment_rows(data: Any, out: str | Path, *, unlabelled: Sequence[str] | None = None, text: str | None = None,
                 label: str | None = None, config: RecipeConfig | None = None,
                 data_config: DataConfig | None = None, work: str | Path | None = None, resume: bool = False,
                 overwrite: bool = False, progress: bool = False) -> pd.DataFrame:
    """``augment run`` from Python: ``data`` (path, DataFrame or ``datasets.Dataset``) plus the recipe's
    synthetic rows, written to ``out`` and returned (columns text, label, synthetic)."""
    source = str(data) if isinstance(data, (str, Path)) else "<memory>"
    data_config = data_config or DataConfig(path=source)
    data_config = build(DataConfig, "data", **{**data_config.model_dump(), **_given(text_col=text, label_col=label)})
    frame = load_dataset(data, data_config)
    result = run_recipe(frame, Path(out), config or RecipeConfig(), data_info=data_config.model_dump(),
                        unlabelled=None if unlabelled is None else list(unlabelled),
                        work=None if work is None else Path(work), resume=resume, overwrite=overwrite,
                        progress=progress)
    return result.rows


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
