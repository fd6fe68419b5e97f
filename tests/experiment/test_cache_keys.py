"""The keys that decide whether a finished cell, a fine-tuned LM or a generated pool is reused: the same
settings give the same key in any process, any one changed setting gives a new one, and the committed
results' keys are what their configs give today."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from augment.experiment import artefacts, expand, load_experiment
from augment.experiment.config import ExperimentConfig, LMSpec
from augment.experiment.grid import pool_rows, sample_key
from augment.experiment.results import ResultsLog
from tests.experiment.helpers import baseline_config, lm_spec, write_yaml

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
# LM keys hash the whole FinetuneConfig: these configs' LMs were trained before settings it has gained
# since, so a re-run would train them again (their cells' keys, which leave such settings out, still match).
LM_KEYS_PREDATE_FINETUNE_SETTINGS = {"tweets-lowdata", "tweets-lowdata-v2", "tweets-lowdata-v3", "tweets-lowdata-v4"}


def config_with(tmp_path: Path, data_csv: Path, name: str = "a", **overrides: Any) -> ExperimentConfig:
    spec = {**lm_spec(Path("/models/tiny")), **overrides.pop("lm", {})}
    config = baseline_config(data_csv, augmenters=[{"type": "none"}, {"type": "eda"}, spec],
                             **{"filters": [False, True], **overrides})
    return load_experiment(write_yaml(tmp_path / f"{name}.yaml", config))


def lm(config: ExperimentConfig) -> LMSpec:
    return next(a for a in config.augmenters if isinstance(a, LMSpec))


def keys(config: ExperimentConfig) -> dict[str, Any]:
    """Every key one config makes, named by where it comes from."""
    spec, cell = lm(config), next(c for c in expand(config) if c.augmenter.type == "lm")
    lm_key = artefacts.lm_key(cell.sample_key, spec, cell.seed)
    return {"cells": [c.key for c in expand(config)], "sample": cell.sample_key, "lm": lm_key,
            "pool": artefacts.pool_key(lm_key, spec, cell.seed, pool_rows(config, spec, cell.examples_per_class))}


SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.experiment.test_cache_keys import keys
from augment.experiment import load_experiment
print(json.dumps(keys(load_experiment(Path(sys.argv[2])))))
"""


def test_the_same_settings_give_the_same_keys_in_another_process(tmp_path: Path, data_csv: Path):
    config = config_with(tmp_path, data_csv)
    here = keys(config)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}   # set and dict orders differ between processes
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO), str(tmp_path / "a.yaml")], env=env,
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == json.loads(json.dumps(here))
    assert len(set(here["cells"])) == len(here["cells"]) == 2 * 2 * (1 + 2 + 2 * 2)


@pytest.mark.parametrize(("change", "moves"), [
    ({"seeds": [3, 1]}, {"sample", "lm", "pool", "cells"}),
    ({"examples_per_class": [6, 10]}, {"sample", "lm", "pool", "cells"}),
    ({"test": {"size": 20, "seed": 1, "min_rows": 10}}, {"sample", "lm", "pool", "cells"}),
    ({"lm": {"finetune": {**lm_spec(Path("/models/tiny"))["finetune"], "learning_rate": 1e-3}}},
     {"lm", "pool", "cells"}),
    ({"lm": {"finetune": {**lm_spec(Path("/models/tiny"))["finetune"], "model": "/models/other"}}},
     {"lm", "pool", "cells"}),
    ({"lm": {"generate": {**lm_spec(Path("/models/tiny"))["generate"], "temperature": 0.7}}}, {"pool", "cells"}),
    ({"lm": {"pool_margin": 2.0}}, {"pool", "cells"}),
    ({"filter": {"min_words": 3}}, {"cells"}),
    ({"classifiers": ["minilm-lr"]}, {"cells"}),
    ({"ratios": [1, 3]}, {"pool", "cells"}),
])
def test_one_changed_setting_moves_exactly_the_keys_that_depend_on_it(tmp_path: Path, data_csv: Path,
                                                                       change: dict[str, Any], moves: set[str]):
    before = keys(config_with(tmp_path, data_csv))
    after = keys(config_with(tmp_path, data_csv, "b", **change))
    moved = {name for name in before if before[name] != after[name]}
    assert moved == moves


def test_a_filter_change_moves_only_the_filtered_cells(tmp_path: Path, data_csv: Path):
    def by_variant(config: ExperimentConfig) -> dict[tuple, str]:
        return {(c.examples_per_class, c.seed, c.augmenter.name, c.ratio, c.filtered, c.classifier): c.key
                for c in expand(config)}

    before = by_variant(config_with(tmp_path, data_csv))
    after = by_variant(config_with(tmp_path, data_csv, "b", filter={"min_words": 3}))
    moved = {variant for variant in before if before[variant] != after[variant]}
    assert moved and all(variant[4] for variant in moved)
    assert moved == {variant for variant in before if variant[4]}


def test_the_pool_key_names_its_prompts(tmp_path: Path, data_csv: Path):
    config = config_with(tmp_path, data_csv)
    spec = lm(config)
    plain = artefacts.pool_key("lm", spec, 0, 12)
    assert plain == artefacts.pool_key("lm", spec, 0, 12, None)
    assert len({plain, artefacts.pool_key("lm", spec, 0, 12, "h1"), artefacts.pool_key("lm", spec, 0, 12, "h2"),
                artefacts.pool_key("lm", spec, 1, 12), artefacts.pool_key("lm", spec, 0, 13),
                artefacts.pool_key("other", spec, 0, 12)}) == 6


def test_the_lm_key_names_its_start_model_and_seed(tmp_path: Path, data_csv: Path):
    spec = lm(config_with(tmp_path, data_csv))
    plain = artefacts.lm_key("s", spec, 0)
    assert plain == artefacts.lm_key("s", spec, 0, None)
    assert len({plain, artefacts.lm_key("s", spec, 0, "adapted"), artefacts.lm_key("s", spec, 1),
                artefacts.lm_key("t", spec, 0)}) == 4


def test_the_sample_key_ignores_what_the_sample_does_not_depend_on(tmp_path: Path, data_csv: Path):
    one = config_with(tmp_path, data_csv)
    other = config_with(tmp_path, data_csv, "b", classifiers=["minilm-lr"], ratios=[3], filters=[True],
                        lm={"pool_margin": 3.0})
    assert sample_key(one, "tiny", 5, 0) == sample_key(other, "tiny", 5, 0)
    assert sample_key(one, "tiny", 5, 0) != sample_key(one, "tiny", 10, 0)


COMMITTED = sorted(p.parent.name for p in (EXPERIMENTS / "results").glob("*/results.jsonl"))


def test_committed_lm_keys_are_what_their_configs_give():
    """Recomputed for every committed LM cell whose key needs no data (no adapted start model, labelled prompts
    for the pool key); a config whose LM keys stop matching would train its LMs again on a re-run."""
    checked, drifted = 0, set()
    for name in COMMITTED:
        config = load_experiment(EXPERIMENTS / f"{name}.yaml")
        cells = {c.key: c for c in expand(config)}
        for row in ResultsLog(EXPERIMENTS / "results" / name / "results.jsonl").read():
            cell = cells.get(row.key)
            if row.lm is None or cell is None or cell.augmenter.adapt is not None:
                continue
            own = cell.augmenter.finetune.precision
            if (own if own != "auto" else config.precision) == "auto":
                continue   # the format, and so the key, is the one the running machine measured
            spec = cell.augmenter
            key = artefacts.lm_key(cell.sample_key, spec, cell.seed)
            if key != row.lm.key:
                drifted.add(name)
                continue
            checked += 1
            if spec.prompts == "labelled":
                assert artefacts.pool_key(key, spec, cell.seed, pool_rows(config, spec, cell.examples_per_class)) \
                    == row.pool.key, f"{name}: pool key of cell {row.key}"
    assert checked >= 20
    assert drifted == LM_KEYS_PREDATE_FINETUNE_SETTINGS


def test_the_adapt_key_names_its_data_texts_and_settings(tmp_path: Path, data_csv: Path):
    spec = lm(config_with(tmp_path, data_csv, lm={"adapt": {"max_steps": 5}}))
    steps = spec.model_copy(update={"adapt": spec.adapt.model_copy(update={"max_steps": 6})})
    data = {"dataset": "tiny", "data": {"path": "x.csv"}}
    key = artefacts.adapt_key(data, spec, ["a", "b"])
    assert key == artefacts.adapt_key(json.loads(json.dumps(data)), spec, ["a", "b"])
    assert len({key, artefacts.adapt_key(data, spec, ["a", "c"]), artefacts.adapt_key(data, spec, ["b", "a"]),
                artefacts.adapt_key({**data, "dataset": "other"}, spec, ["a", "b"]),
                artefacts.adapt_key(data, steps, ["a", "b"])}) == 5
