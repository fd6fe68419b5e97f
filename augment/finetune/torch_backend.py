"""Fine-tuning with Hugging Face ``Trainer``: checkpoints, resume, mixed precision, DDP."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import logging
import re
import shutil
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from augment.adapters import load_base, merged, quiet_peft, save_adapter, with_lora
from augment.config import FinetuneConfig
from augment.finetune.adapted import read_record
from augment.finetune.base import TrainResult
from augment.finetune.packing import BlockDataset, PadCollator, TrainingRow, pack, tokenize_rows
from augment.finetune.separator import Separator, choose_separator
from augment.files import atomic_path
from augment.models import Placement, load_model, load_tokenizer, placement, resolve_model
from augment.precision import PrecisionChoice, describe

log = logging.getLogger(__name__)


class LossLog(TrainerCallback):
    """Appends every logged loss to a JSONL file as training runs, so a crash keeps the curve."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """A resumed run redoes the steps after its checkpoint: forget their old losses."""
        if not state.is_world_process_zero or not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            kept = [line for line in fh if _logged_step(line) <= state.global_step]
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text("".join(kept), encoding="utf-8")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and ("loss" in logs or "eval_loss" in logs) and state.is_world_process_zero:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, **logs}) + "\n")


def _logged_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")  # a line torn by a kill


def training_arguments(config: FinetuneConfig, checkpoints: Path, progress: bool, place: Placement,
                       evaluate: bool = False) -> TrainingArguments:
    """With held-out rows, evaluate every ``eval_steps`` and checkpoint only on a new best, so the
    best model is what is kept (and what a resume restarts from). bf16 is autocast over fp32 weights:
    the master weights, gradients' accumulation and AdamW state stay fp32 on CPU as on GPU."""
    held_out = dict(eval_strategy="steps", eval_steps=config.eval_steps, save_strategy="best",
                    load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
                    per_device_eval_batch_size=config.batch_size) if evaluate else dict(save_strategy="steps")
    return TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=0.05,
        lr_scheduler_type="linear",
        logging_steps=max(1, min(10, config.max_steps // 10)),
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        bf16=place.train_bf16,
        fp16=place.train_fp16,
        use_cpu=place.device.type == "cpu",
        torch_compile=config.compile,
        seed=config.seed,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        **held_out,
    )


class TiedWeightsNotMissing(logging.Filter):
    """Drops Trainer's "missing keys" warning when every key is a tied weight: reloading the best
    checkpoint, transformers 5 checks them against ``_keys_to_ignore_on_save``, not the tie map, and
    tells every user of a tied model (GPT-2, SmolLM2) that weights are missing when none are."""

    PREFIX = "There were missing keys in the checkpoint model loaded: "

    def __init__(self, tied: Collection[str]):
        super().__init__()
        self.tied = set(tied)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(self.PREFIX):
            return True
        try:
            missing = ast.literal_eval(message[len(self.PREFIX):].rstrip("."))
        except (ValueError, SyntaxError):
            return True
        return not (self.tied and set(missing) <= self.tied)


@contextlib.contextmanager
def tied_weights_not_missing(tied: Collection[str]) -> Iterator[None]:
    trainer_log = logging.getLogger("transformers.trainer")
    quiet = TiedWeightsNotMissing(tied)
    trainer_log.addFilter(quiet)
    try:
        yield
    finally:
        trainer_log.removeFilter(quiet)


class TorchBackend:
    name = "torch"

    def choose_separator(self, config: FinetuneConfig, texts: list[str]) -> Separator:
        """The start model's own recorded separator (an adapted model was trained with it), else measured."""
        path = resolve_model(config.model, config.trust_pickle)
        inherited = inherited_separator(Path(path))
        if inherited is not None:
            return inherited
        model = load_model(path, trust_pickle=config.trust_pickle).eval()
        return choose_separator(model, load_tokenizer(path), texts, seed=config.seed)

    def train(self, rows: list[TrainingRow], work_dir: Path, out_dir: Path, config: FinetuneConfig,
              resume: bool, progress: bool, special_tokens: tuple[str, ...] = (), separator: int | None = None,
              eval_rows: list[TrainingRow] | None = None, merge_adapter: bool = False) -> TrainResult:
        """With ``adapter: lora`` ``out_dir`` receives the adapter only, or with ``merge_adapter`` (adapt) the
        base with the adapter merged in, a plain model dir."""
        path = resolve_model(config.model, config.trust_pickle)
        tokenizer = load_tokenizer(path)
        if special_tokens:
            tokenizer.add_tokens(list(special_tokens), special_tokens=True)
        sep = tokenizer.eos_token_id if separator is None else separator
        checkpoints = work_dir / "checkpoints"
        last = last_complete_checkpoint(checkpoints) if resume else None
        place = placement(config.precision, model=path)
        lora = config.adapter == "lora"
        if last and int(Path(last).name.split("-")[-1]) >= config.max_steps:
            if lora:
                _save_lora(None, Path(last), path, tokenizer, out_dir, merge_adapter)
            result = finish_from_checkpoint(Path(last), tokenizer, out_dir, copy_weights=not lora)
            return dataclasses.replace(result, precision=place.choice)
        log.info("training in %s", describe(place.choice))
        # LoRA freezes the base: holding it in bf16 saves the per-step cast; full training keeps fp32 masters
        model = load_model(path, dtype=torch.bfloat16 if lora and place.train_bf16 else torch.float32,
                           trust_pickle=config.trust_pickle)
        if lora:
            model = with_lora(model, config, tokenizer.convert_tokens_to_ids(list(special_tokens)), len(tokenizer))
        elif special_tokens:
            model.resize_token_embeddings(len(tokenizer))
        block = min(config.block_size, _max_positions(model.config))
        blocks = pack(tokenize_rows(tokenizer, rows), sep, block)
        held_out = pack(tokenize_rows(tokenizer, eval_rows), sep, block) if eval_rows else []
        callbacks: list[TrainerCallback] = [LossLog(work_dir / "train_log.jsonl")]
        if held_out and config.early_stopping:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping))
        trainer = Trainer(model=model, args=training_arguments(config, checkpoints, progress, place, bool(held_out)),
                          data_collator=PadCollator(tokenizer.pad_token_id), train_dataset=BlockDataset(blocks),
                          eval_dataset=BlockDataset(held_out) if held_out else None, callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)
        if last:
            log.info("resuming from %s", last)
        start = time.perf_counter()
        with tied_weights_not_missing(getattr(model, "all_tied_weights_keys", None) or {}):
            trainer.train(resume_from_checkpoint=last)
        if lora:
            _save_lora(trainer.model, work_dir / "adapter", path, tokenizer, out_dir, merge_adapter)
        else:
            trainer.save_model(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
        (out_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle; the manifest has the config
        resumed = int(Path(last).name.split("-")[-1]) if last else None
        return _result(trainer.state, time.perf_counter() - start, resumed, config, place.choice)


def _result(state: Any, wall_s: float, resumed: int | None, config: FinetuneConfig,
            precision: PrecisionChoice) -> TrainResult:
    history = state.log_history
    losses = [(e["step"], float(e["loss"])) for e in history if "loss" in e]
    evals = [(e["step"], float(e["eval_loss"])) for e in history if "eval_loss" in e]
    best_step = state.best_global_step if evals else None
    best = dict(evals).get(best_step) if best_step is not None else None
    return TrainResult(state.global_step, losses, wall_s, resumed, eval_losses=evals, best_step=best_step,
                       eval_loss=best, tokens=state.global_step * config.batch_size * config.grad_accum
                       * config.block_size, precision=precision)


def inherited_separator(model_dir: Path) -> Separator | None:
    """The separator an adapted model was trained with (``adapt.json``), if the dir holds one."""
    record = read_record(model_dir)
    if record is None:
        return None
    return record.separator.model_copy(update={"source": f"inherited from {model_dir.name}"})


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The newest checkpoint whose ``trainer_state.json`` (which Trainer writes last) parses.

    A process killed while saving leaves a newer ``checkpoint-N`` holding only
    some files; ``get_last_checkpoint`` would pick it and every resume would fail.
    """
    found = [(int(m[1]), p) for p in checkpoints.glob("checkpoint-*")
             if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
            return str(path)
        except (OSError, ValueError):
            log.warning("%s is incomplete (interrupted while saving); using an earlier checkpoint", path)
    return None


def _save_lora(model: Any, adapter: Path, base: str, tokenizer: Any, out_dir: Path, merge: bool) -> None:
    """The adapter into ``out_dir``; with ``merge``, the base with it merged in. ``model`` None: the adapter
    is the checkpoint at ``adapter`` (a run that stopped right after its last step)."""
    if model is not None:
        save_adapter(model, adapter if merge else out_dir)
    elif not merge:
        from peft import PeftModel

        with quiet_peft():
            loaded = PeftModel.from_pretrained(load_base(base, len(tokenizer)), str(adapter))
        save_adapter(loaded, out_dir)
    if merge:
        merged(base, adapter, len(tokenizer)).save_pretrained(str(out_dir))


def finish_from_checkpoint(checkpoint: Path, tokenizer: Any, out_dir: Path, copy_weights: bool = True) -> TrainResult:
    """A run stopped after its checkpoint at ``max_steps``: that checkpoint's weights are the model.

    (``Trainer.train(resume_from_checkpoint=...)`` would take one step past ``max_steps``.)
    """
    log.info("%s is the final step; saving its weights", checkpoint)
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    for file in checkpoint.iterdir() if copy_weights else ():
        if file.suffix == ".safetensors" or (file.suffix == ".json" and file.name != "trainer_state.json"):
            shutil.copyfile(file, out_dir / file.name)
    tokenizer.save_pretrained(str(out_dir))
    losses = [(e["step"], float(e["loss"])) for e in state["log_history"] if "loss" in e]
    evals = [(e["step"], float(e["eval_loss"])) for e in state["log_history"] if "eval_loss" in e]
    best = state.get("best_global_step") if evals else None
    return TrainResult(state["global_step"], losses, 0.0, state["global_step"], eval_losses=evals,
                       best_step=best, eval_loss=dict(evals).get(best) if best is not None else None)


def _max_positions(config: Any) -> int:
    for attr in ("n_positions", "max_position_embeddings"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    return 1024
