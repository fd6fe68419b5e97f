"""Fine-tuning through gpt-2-simple (TensorFlow), the book's route, ending in a Hugging Face model dir.

gpt-2-simple runs in a child process (``augment.tf_child``): importing
it turns off eager execution for the whole process, and one session holds one
model. The parent prepares everything that can fail first (base model, token
file), and afterwards converts the newest checkpoint with the TensorFlow-free
reader, so the run directory holds the same kind of model as the torch back-end.

Base models: a local gpt-2-simple model dir, a local Hugging Face GPT-2 dir
(reverse-converted first, no TensorFlow needed), ``tiny-gpt2``, or an OpenAI
size (``124M``...; HF ids ``gpt2``... map to them), which gpt-2-simple downloads.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from augment.cache import cache_root
from augment.config import FinetuneConfig
from augment.convert import hf_to_gpt2simple, is_gpt2simple_dir, write_hf_model
from augment.convert.gpt2_tf import HParams
from augment.tf_child import require_tf, run_task
from augment.errors import AugmentError
from augment.finetune.base import TrainResult
from augment.finetune.packing import TrainingRow
from augment.finetune.separator import Separator
from augment.files import atomic_dir
from augment.prompts import encode_text

log = logging.getLogger(__name__)

OPENAI_SIZES = ("124M", "355M", "774M", "1558M", "117M", "345M")
HF_IDS = {"gpt2": "124M", "gpt2-medium": "355M", "gpt2-large": "774M", "gpt2-xl": "1558M",
          "openai-community/gpt2": "124M", "openai-community/gpt2-medium": "355M",
          "openai-community/gpt2-large": "774M", "openai-community/gpt2-xl": "1558M"}
RUN_NAME = "run1"
EOS_ID = 50256
FIX = ("give `model:` a local gpt-2-simple model dir (hparams.json + model.ckpt.*) or a Hugging Face GPT-2 dir "
       "(`augment convert --to gpt-2-simple HF_DIR --out DIR` makes the former)")


def resolve_base(name: str, work_dir: Path, log_path: Path) -> Path:
    """A local gpt-2-simple model dir for ``config.model``."""
    from augment.models import SHORT_NAMES, resolve_model

    if name in SHORT_NAMES:
        return _from_hf(Path(resolve_model(name)), work_dir)
    path = Path(name).expanduser()
    if path.exists():
        if is_gpt2simple_dir(path):
            return path
        if (path / "config.json").is_file():
            return _from_hf(path, work_dir)
        raise AugmentError(f"{path}: neither a gpt-2-simple model dir (hparams.json + model.ckpt.*) nor a Hugging "
                           "Face GPT-2 dir (config.json)")
    size = HF_IDS.get(name, name)
    if size in OPENAI_SIZES:
        return _download(size, log_path)
    raise AugmentError(f"model {name!r}: not found for the gpt-2-simple back-end; {FIX}, or name an OpenAI size "
                       f"({', '.join(OPENAI_SIZES[:4])})")


def _from_hf(path: Path, work_dir: Path) -> Path:
    """Reverse-convert once per run; the copy lives in work_dir so resumes see the same base."""
    dest = work_dir / "base" / path.name
    if not is_gpt2simple_dir(dest):
        log.info("converting %s to a gpt-2-simple model dir", path)
        hf_to_gpt2simple(path, dest, overwrite=True)
    return dest


def _download(size: str, log_path: Path) -> Path:
    dest = cache_root() / "gpt-2-simple" / size
    if is_gpt2simple_dir(dest):
        return dest
    log.info("downloading GPT-2 %s with gpt-2-simple's download_gpt2", size)
    try:
        with atomic_dir(dest, overwrite=True) as tmp:
            run_task("download", {"model_dir": str(tmp), "model_name": size}, log_path=log_path)
            for file in (tmp / size).iterdir():
                file.rename(tmp / file.name)
            (tmp / size).rmdir()
    except AugmentError as exc:
        raise AugmentError(f"cannot download GPT-2 {size} ({exc}); offline, {FIX}") from None
    return dest


def token_file(rows: list[str], base: Path, hp: HParams, dest: Path) -> int:
    """Rows tokenized with the base model's BPE, each ended by <|endoftext|> (id 50256), as an .npz.

    gpt-2-simple would encode a literal "<|endoftext|>" string as five ordinary
    tokens; writing ids keeps the real EOS, so generation stops at row ends.
    gpt-2-simple samples n_ctx-token windows, so a shorter text is repeated.
    """
    from transformers import GPT2TokenizerFast

    if hp.n_vocab <= EOS_ID:
        raise AugmentError(f"{base}: n_vocab={hp.n_vocab} has no <|endoftext|> token ({EOS_ID})")
    tokenizer = GPT2TokenizerFast(vocab=str(base / "encoder.json"), merges=str(base / "vocab.bpe"))
    ids = [t for row in rows for t in (*encode_text(tokenizer, row), EOS_ID)]
    if not ids:
        raise AugmentError("no training rows")
    if len(ids) < hp.n_ctx + 2:
        repeats = -(-(hp.n_ctx + 2) // len(ids))
        log.warning("training text is %d tokens; gpt-2-simple samples %d-token windows, so it is repeated %d times",
                    len(ids), hp.n_ctx, repeats)
        ids = ids * repeats
    np.savez(dest, tokens=np.asarray(ids, dtype=np.int32))
    return len(ids)


def read_counter(run_dir: Path) -> int | None:
    """The step of the newest checkpoint gpt-2-simple saved, from its ``counter`` file."""
    try:
        return int((run_dir / "counter").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def finetune_spec(config: FinetuneConfig, base: Path, work_dir: Path, dataset: Path, steps: int,
                  progress: bool) -> dict[str, Any]:
    """Our config in gpt-2-simple's terms (its own defaults differ: batch 1, accumulate 5, lr 1e-4)."""
    return {"dataset": str(dataset), "steps": steps, "model_name": base.name, "model_dir": str(base.parent),
            "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "accumulate_gradients": config.grad_accum, "restore_from": "latest", "run_name": RUN_NAME,
            "checkpoint_dir": str(work_dir / "checkpoint"), "save_every": config.save_steps,
            "max_checkpoints": config.save_total_limit, "seed": config.seed, "progress": progress}


def _warn_ignored(config: FinetuneConfig) -> None:
    if config.weight_decay:
        log.warning("gpt-2-simple uses Adam without weight decay; weight_decay=%s is ignored", config.weight_decay)
    log.info("gpt-2-simple trains on n_ctx-token windows at a constant learning rate; block_size, precision "
             "and compile do not apply")


class GPT2SimpleBackend:
    name = "gpt-2-simple"

    def choose_separator(self, config: FinetuneConfig, texts: list[str]) -> Separator:
        """gpt-2-simple's vocabulary has one boundary token, and its sampler stops only there."""
        return Separator(token="<|endoftext|>", id=EOS_ID, source="fixed by gpt-2-simple")

    def train(self, rows: list[TrainingRow], work_dir: Path, out_dir: Path, config: FinetuneConfig,
              resume: bool, progress: bool, special_tokens: tuple[str, ...] = (), separator: int | None = None,
              eval_rows: list[TrainingRow] | None = None) -> TrainResult:
        if eval_rows:
            log.warning("gpt-2-simple has no held-out evaluation; %d held-out rows are not used", len(eval_rows))
        if special_tokens:
            raise AugmentError(f"the gpt-2-simple back-end cannot add tokens ({', '.join(special_tokens)}): its "
                               "vocabulary is fixed by encoder.json; use mode per-label or backend torch")
        require_tf()
        work_dir.mkdir(parents=True, exist_ok=True)
        log_path = work_dir / "gpt2simple.log"
        run_dir = work_dir / "checkpoint" / RUN_NAME
        if not resume:
            shutil.rmtree(work_dir / "checkpoint", ignore_errors=True)
        base = resolve_base(config.model, work_dir, log_path)
        hp = HParams.from_json(base / "hparams.json")
        done = read_counter(run_dir)
        _warn_ignored(config)
        token_file([r.text for r in rows], base, hp, work_dir / "train.npz")
        start, losses = time.perf_counter(), []
        if config.max_steps > (done or 0):
            spec = finetune_spec(config, base, work_dir, work_dir / "train.npz", config.max_steps - (done or 0),
                                 progress)
            result = run_task("finetune", spec, log_path=None if progress else log_path, cwd=work_dir)
            losses = [(int(step), float(loss)) for step, loss in result["losses"]]
        else:
            log.info("%s: already at step %s of %d; converting only", run_dir, done, config.max_steps)
        write_hf_model(run_dir, out_dir, source=str(run_dir))
        steps = read_counter(run_dir) or 0
        return TrainResult(steps, losses, time.perf_counter() - start, done if resume else None)
