"""The expensive artefacts, cached under ``RESULTS_DIR/cache`` (or ``--cache DIR``) and shared between
cells, and between configs that point at one cache.

* ``cache/lm/<key>/``: a run directory (``augment finetune`` layout) per
  (training sample, LM config). A run killed mid-training resumes from its
  checkpoints; once it finishes they are deleted (with the optimizer state,
  about 1.5 GB per SmolLM2 model).
* ``cache/pool/<key>.jsonl``: the synthetic pool generated once per (LM,
  generation config, pool size); every ratio and filter setting takes rows
  from it. Written atomically, with a ``.json`` provenance file beside it.

Keys hash the full configuration, so a changed setting never reuses a stale
artefact, and an unchanged one is never paid for twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from augment.data import LABEL, TEXT
from augment.experiment.config import LMSpec
from augment.experiment.results import AdaptInfo, LMInfo, PoolInfo
from augment.generate.sampler import SAMPLER_VERSION
from augment.precision import keyed
from augment.files import hash_json, provenance, read_jsonl, write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def lm_precision(spec: LMSpec, experiment: str) -> str:
    """The one format an LM of this experiment trains and generates in: the spec's own, else the
    experiment's (fp32 unless it says otherwise); ``auto`` is resolved here, on this machine."""
    from augment.models import placement, resolve_model

    asked = spec.finetune.precision if spec.finetune.precision != "auto" else experiment
    if asked != "auto":
        return asked
    return placement("auto", model=resolve_model(spec.finetune.model, spec.finetune.trust_pickle)).choice.precision


def lm_key(sample_key: str, spec: LMSpec, seed: int, adapted: str | None = None, precision: str = "fp32") -> str:
    """``adapted``: the key of the adapted start model, when there is one."""
    finetune = spec.finetune.model_copy(update={"seed": seed})
    key = {"format": CACHE_FORMAT, "sample": sample_key, "finetune": finetune.model_dump()}
    if adapted is not None:
        key["adapted"] = adapted
    return hash_json(keyed(key, precision))[:16]


def adapt_key(data_key: dict[str, Any], spec: LMSpec, texts: list[str], precision: str = "fp32") -> str:
    config = spec.adapt_config()
    assert config is not None
    return hash_json(keyed({"format": CACHE_FORMAT, "data": data_key, "adapt": config.model_dump(),
                                      "texts": hash_json(texts)}, precision))[:16]


def adapted_model(cache: Path, key: str, spec: LMSpec, texts: list[str], source: str,
                  precision: str = "fp32") -> tuple[Path, AdaptInfo]:
    """The model adapted on the dataset's unlabelled pool texts, trained once (or resumed) for every sample."""
    from augment.finetune.adapt import adapted_once

    out = cache / "adapt" / key
    config = spec.adapt_config()
    assert config is not None
    config = config.model_copy(update={"precision": precision})
    record, cached = adapted_once(texts, out, config, source=source)
    return out, AdaptInfo(key=key, cached=cached, texts=record.texts, tokens=record.tokens, steps=record.steps,
                          eval_loss=record.eval_loss, best_step=record.best_step, separator=record.separator.token,
                          wall_s=0.0 if cached else record.wall_s, built_wall_s=record.wall_s)


def pool_key(lm: str, spec: LMSpec, seed: int, rows: int, prompts: str | None = None, precision: str = "fp32") -> str:
    """``prompts``: a hash of the unlabelled prompt texts, when the pool is prompted with them."""
    generate = spec.generate.model_copy(update={"seed": seed, "n": rows})
    key = {"format": CACHE_FORMAT, "lm": lm, "generate": generate.model_dump(), "sampler": SAMPLER_VERSION}
    if prompts is not None:
        key["prompts"] = prompts
    return hash_json(keyed(key, precision))[:16]


def trained_lm(cache: Path, key: str, spec: LMSpec, train: pd.DataFrame, seed: int,
               data_info: dict[str, Any], start: Path | None = None,
               precision: str = "fp32") -> tuple[Path, LMInfo]:
    """The fine-tuned run directory for this sample, training (or resuming) it if needed."""
    from augment.finetune import finetuned_once

    run_dir = cache / "lm" / key
    began = time.perf_counter()
    config = spec.finetune.model_copy(update={"seed": seed, "precision": precision,
                                              **({"model": str(start)} if start else {})})
    manifest, cached = finetuned_once(train, run_dir, config, data_info=data_info)
    if cached:
        return run_dir, LMInfo(key=key, cached=True, wall_s=0.0)
    log.info("fine-tuned %s (%s, up to %d steps) on %d rows", spec.name, spec.finetune.mode,
             spec.finetune.max_steps, len(train))
    losses = {k: [m.first_loss, m.final_loss] for k, m in manifest.models.items()}
    held_out = {k: [m.eval_loss, m.best_step] for k, m in manifest.models.items()}
    return run_dir, LMInfo(key=key, cached=False, wall_s=round(time.perf_counter() - began, 2), loss_first_last=losses,
                           held_out_loss_step=held_out,
                           separator=manifest.separator.token if manifest.separator else None)


def synthetic_pool(cache: Path, key: str, spec: LMSpec, run_dir: Path, labels: list[str], rows: int,
                   seed: int, prefix_texts: Mapping[str, list[str]] | None = None,
                   precision: str = "fp32") -> tuple[pd.DataFrame, PoolInfo]:
    """``rows`` generated rows per label, in generation order (so prefixes are valid subsets);
    ``prefix_texts``: each label's prompt texts."""
    path = cache / "pool" / f"{key}.jsonl"
    if path.exists():
        return pd.DataFrame(read_jsonl(path), columns=[TEXT, LABEL]), PoolInfo(key=key, cached=True, wall_s=0.0)
    from augment.generate import Generators, generate_rows
    from augment.rundir import RunDir

    start = time.perf_counter()
    config = spec.generate.model_copy(update={"seed": seed, "n": rows})
    log.info("generating %d rows per label with %s", rows, spec.name)
    frame = generate_rows(Generators.open(RunDir(run_dir), labels, precision), labels, config,
                          prefix_texts=prefix_texts).rows
    frame = frame[[TEXT, LABEL]].astype(str)
    write_jsonl_atomic(path, frame.to_dict("records"))
    wall = time.perf_counter() - start
    write_json_atomic(path.with_suffix(".json"), provenance(
        {"generate": config.model_dump(), "run_dir": str(run_dir)}, rows=len(frame), wall_s=wall,
        sampler=SAMPLER_VERSION, precision=precision))
    return frame, PoolInfo(key=key, cached=False, wall_s=round(wall, 2))
