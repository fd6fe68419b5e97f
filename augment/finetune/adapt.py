"""Domain adaptation: continue pre-training the base LM on unlabelled in-domain texts, once.

Users with 10-100 labelled rows nearly always have thousands of unlabelled
ones. A model that has read them knows what a row of this domain looks like
before the per-label stage sees its few rows; every per-label or conditioned
model then starts from the adapted weights (``augment finetune --model DIR``).

The output is a plain Hugging Face model directory plus ``adapt.json`` (what
it read, for how long, the held-out loss and the row separator it was
trained with, which the per-label stage then inherits). Checkpoints live in a
hidden sibling folder until the model is finished, so ``--resume`` continues a
killed run and a finished directory never holds half a model.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from pathlib import Path

from pydantic import Field

from augment.config import FinetuneConfig
from augment.errors import DataError, OutputExistsError, RunDirError
from augment.finetune.adapted import RECORD, AdaptRecord, read_record
from augment.finetune.packing import TrainingRow, held_out_count
from augment.files import atomic_dir, hash_json, provenance, write_json_atomic
from augment.resume import open_work_folder
from augment.rundir import AdapterRecord

log = logging.getLogger(__name__)


class AdaptConfig(FinetuneConfig):
    """Fine-tuning settings with adaptation's defaults: many rows, so a held-out share is cheap."""

    max_steps: int = Field(200, gt=0, description="Optimizer steps over the unlabelled texts.")
    block_size: int = Field(64, ge=8, description="Tokens per packed block.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate (linear decay, warm-up ratio 0.05).")
    eval_fraction: float = Field(0.02, ge=0, lt=0.5, description="Share of the texts held out to measure loss.")
    eval_steps: int = Field(50, gt=0, description="Evaluate the held-out texts every N steps.")
    save_steps: int = Field(50, gt=0, description="Checkpoint every N steps (without held-out texts).")


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.adapt-work"


def adapt_model(texts: list[str], out: Path, config: AdaptConfig, *, source: str, resume: bool = False,
                overwrite: bool = False, progress: bool = False) -> AdaptRecord:
    """Train ``config.model`` on ``texts`` (labels never used) into the model dir ``out``."""
    from augment.finetune.torch_backend import TorchBackend
    from augment.models import resolve_model

    out = Path(out)
    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        raise DataError(f"{source}: adaptation needs at least 2 non-empty texts, got {len(texts)}")
    resolve_model(config.model, config.trust_pickle)
    finished = _check_output(out, resume, overwrite)
    if finished is not None:
        return finished
    work = work_dir(out)
    key = {"config": config.model_dump(), "texts_hash": hash_json(texts)}
    open_work_folder(work, key, record="adapt-key.json", what="adaptation", resume=resume, overwrite=True)
    backend = TorchBackend()
    separator = backend.choose_separator(config, texts)
    train, held_out = split_held_out(texts, config.eval_fraction, config.seed)
    log.info("adapting %s on %d texts (%d held out), up to %d steps; separator %s", config.model, len(train),
             len(held_out), config.max_steps, separator.token)
    start = time.perf_counter()
    with atomic_dir(out, overwrite=True) as tmp:
        result = backend.train(train, work, tmp, config, resume, progress, separator=separator.id,
                               eval_rows=held_out, merge_adapter=True)
        record = AdaptRecord(
            base_model=config.model, source=source, texts=len(texts), texts_hash=key["texts_hash"],
            eval_rows=len(held_out), separator=separator, steps=result.steps, tokens=result.tokens,
            first_loss=result.first_loss, final_loss=result.final_loss, eval_loss=result.eval_loss,
            best_step=result.best_step, wall_s=round(time.perf_counter() - start, 2), precision=result.precision,
            config=config.model_dump(), provenance=provenance(None), adapter=_adapter(config))
        write_json_atomic(tmp / RECORD, record.model_dump())
    shutil.rmtree(work, ignore_errors=True)
    return record


def _adapter(config: AdaptConfig) -> AdapterRecord | None:
    """A LoRA adaptation is merged into its base once, here, so the adapted folder is a plain model that
    every later stage starts from (full, LoRA, conditioned) and per-label adapters record its hash."""
    if config.adapter == "full":
        return None
    from augment.adapters import adapter_record

    return adapter_record(config)


def adapted_once(texts: list[str], out: Path, config: AdaptConfig, *, source: str,
                 progress: bool = False) -> tuple[AdaptRecord, bool]:
    """The model adapted once at ``out``: reused when finished (True), else adapted or resumed now."""
    cached = read_record(out) if Path(out).is_dir() else None
    if cached is not None:
        return cached, True
    return adapt_model(texts, out, config, source=source, resume=True, progress=progress), False


def split_held_out(texts: list[str], fraction: float, seed: int) -> tuple[list[TrainingRow], list[TrainingRow]]:
    n_eval = held_out_count(len(texts), fraction)
    order = random.Random(f"adapt:{seed}").sample(range(len(texts)), len(texts))
    held = set(order[:n_eval])
    return ([TrainingRow(t) for i, t in enumerate(texts) if i not in held],
            [TrainingRow(t) for i, t in enumerate(texts) if i in held])


def _check_output(out: Path, resume: bool, overwrite: bool) -> AdaptRecord | None:
    """A finished output is returned on ``resume``, replaced on ``overwrite``, else an error."""
    if not out.exists():
        return None
    record = read_record(out) if out.is_dir() else None
    if resume and record is not None:
        log.info("%s: already adapted, nothing to do", out)
        return record
    if not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite to replace it"
                                + ("" if record else " (it is not an adapted model)"))
    if out.is_dir() and record is None and any(out.iterdir()):
        raise RunDirError(f"{out}: exists and is not an adapted model directory; refusing to overwrite it")
    return None

