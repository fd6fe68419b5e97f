"""Fine-tune one causal LM per label (or one label-conditioned LM) into a run directory."""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from augment.config import FinetuneConfig
from augment.data.readers import LABEL, TEXT
from augment.distributed import process_state
from augment.errors import AugmentError, DataError, OutputExistsError, RunDirError
from augment.finetune.base import Backend, TrainResult
from augment.finetune.adapted import read_record
from augment.finetune.packing import TrainingRow, held_out_count
from augment.files import atomic_dir, hash_dir, hash_json, holds_lock, provenance, write_jsonl_atomic
from augment.prompts import label_token
from augment.resume import refuse_changes
from augment.rundir import AdapterRecord, LabelEntry, Manifest, ModelEntry, RunDir, Separator

log = logging.getLogger(__name__)

__all__ = ["Backend", "TrainResult", "finetune_run", "get_backend"]


def get_backend(name: str) -> Backend:
    if name == "torch":
        from augment.finetune.torch_backend import TorchBackend

        return TorchBackend()
    if name == "gpt-2-simple":
        from augment.finetune.gpt2simple import GPT2SimpleBackend

        return GPT2SimpleBackend()
    raise AugmentError(f"unknown back-end '{name}'; expected torch or gpt-2-simple")


ModelRows = dict[str, tuple[list[str], list[TrainingRow], list[TrainingRow]]]


def model_rows(frame: pd.DataFrame, mode: str, eval_fraction: float = 0.0, seed: int = 0) -> ModelRows:
    """Model key -> (labels it serves, training rows, held-out rows); each label holds out its own share."""
    run = RunDir(Path("."))
    groups: ModelRows = {}
    for label, group in frame.groupby(LABEL, sort=True):
        key = run.model_key(str(label), mode)
        labels, train, held_out = groups.setdefault(key, ([], [], []))
        labels.append(str(label))
        conditioned = str(label) if mode == "conditioned" else None
        rows = [TrainingRow(t, conditioned) for t in group[TEXT]]
        n_eval = held_out_count(len(rows), eval_fraction)
        order = random.Random(f"{seed}:{label}").sample(range(len(rows)), len(rows))
        held_out.extend(rows[i] for i in sorted(order[:n_eval]))
        train.extend(rows[i] for i in sorted(order[n_eval:]))
    return groups


def validate(frame: pd.DataFrame, config: FinetuneConfig, source: str) -> None:
    """Every check that can fail, before any model is loaded."""
    counts = frame[LABEL].value_counts()
    short = {k: int(v) for k, v in counts.items() if v < config.min_rows}
    if short:
        detail = ", ".join(f"'{k}' has {v}" for k, v in sorted(short.items()))
        raise DataError(f"{source}: too few rows to train ({detail}; need at least {config.min_rows} "
                        "per label, see min_rows)")
    if config.mode == "conditioned" and config.backend != "torch":
        raise DataError(f"{source}: the conditioned mode needs the torch back-end (it adds label tokens)")
    if config.mode == "instruct" and config.backend != "torch":
        raise DataError(f"{source}: the instruct mode trains nothing and needs the torch back-end to generate")


def prepare_run_dir(run: RunDir, resume: bool, overwrite: bool) -> Manifest | None:
    """The manifest to continue from, or None for a fresh run."""
    if not run.root.exists():
        return None
    if resume:
        return run.read_manifest()
    if not overwrite:
        raise OutputExistsError(f"{run.root}: already exists; pass --resume to continue it or "
                                "--overwrite to start again")
    if run.root.is_dir() and any(run.root.iterdir()) and not run.manifest_path.exists():
        raise RunDirError(f"{run.root}: exists and is not an augment run directory; refusing to overwrite it")
    shutil.rmtree(run.root) if run.root.is_dir() else run.root.unlink()
    return None


@holds_lock("run_dir")  # one writer per run directory
def finetune_run(frame: pd.DataFrame, run_dir: Path, config: FinetuneConfig, *, data_info: dict[str, Any],
                 resume: bool = False, overwrite: bool = False, progress: bool = False,
                 on_model: Callable[[str, TrainResult | None], None] | None = None) -> Manifest:
    """Train every model of the run, skipping finished ones on resume; returns the manifest.

    Under ``torchrun``/``accelerate launch`` every rank calls this: the Trainer
    runs data-parallel, and only the main process writes the run directory.
    """
    source = str(data_info.get("path", "data"))
    validate(frame, config, source)
    if config.backend == "torch":
        from augment.models import resolve_model

        resolve_model(config.model, config.trust_pickle)  # a missing or refused model fails before RUN_DIR exists
    run = RunDir(Path(run_dir))
    if config.mode == "instruct":
        return _instruct_run(frame, run, config, data_info, resume, overwrite)
    state = process_state(distributed=config.backend == "torch")  # accelerate's ranks; gpt-2-simple: one
    groups = model_rows(frame, config.mode, config.eval_fraction, config.seed)
    backend = get_backend(config.backend)
    if state.is_main_process:
        manifest = _open_run(run, frame, config, data_info, groups, resume, overwrite, backend)
    state.wait_for_everyone()
    if not state.is_main_process:
        manifest = run.read_manifest()
    assert manifest.separator is not None
    separator = manifest.separator.id
    for key, (labels, rows, held_out) in groups.items():
        if run.is_finished(manifest, key):
            log.info("%s: already trained, skipping", key)
            if on_model:
                on_model(key, None)
            continue
        markers = tuple(label_token(l) for l in labels) if config.mode == "conditioned" else ()
        result = _train_one(backend, run, key, (rows, held_out), config, resume, progress, markers, separator,
                            state.is_main_process)
        if state.is_main_process:
            manifest.models[key] = finished_entry(manifest.models[key], result, run.model_dir(key),
                                                  state.num_processes, len(held_out))
            run.write_manifest(manifest)
        state.wait_for_everyone()
        if on_model:
            on_model(key, result)
    return manifest if state.is_main_process else run.read_manifest()


def finetuned_once(frame: pd.DataFrame, run_dir: Path, config: FinetuneConfig, *, data_info: dict[str, Any],
                   progress: bool = False) -> tuple[Manifest, bool]:
    """The run at ``run_dir`` trained once: reused when finished (True), else trained or resumed now.

    For callers that own the directory (experiment caches, ``augment run``'s work folder): a folder
    killed before its manifest was written holds nothing to resume and starts again, and the resume
    checkpoints (GBs of optimizer state) go once every model is done.
    """
    run = RunDir(Path(run_dir))
    try:
        if run.manifest_path.exists() and run.all_finished(manifest := run.read_manifest()):
            return manifest, True
    except AugmentError:
        pass  # unreadable manifest: finetune_run's resume reports it
    if run.root.exists() and not run.manifest_path.exists():
        shutil.rmtree(run.root)
    manifest = finetune_run(frame, run.root, config, data_info=data_info, resume=run.root.exists(), progress=progress)
    shutil.rmtree(run.root / ".work", ignore_errors=True)
    return manifest, False


def _instruct_run(frame: pd.DataFrame, run: RunDir, config: FinetuneConfig, data_info: dict[str, Any],
                  resume: bool, overwrite: bool) -> Manifest:
    """Instruct mode trains nothing: the run records the base model (its directory and hash), the
    label's real rows (``train.jsonl``, the prompts' examples) and the prompt settings."""
    from augment.instruct import check_chat_model, check_descriptions, end_of_turn
    from augment.models import load_tokenizer

    check_descriptions(config.instruct.descriptions, frame[LABEL].unique().tolist(), "instruct.descriptions")
    base = _local_base(config)
    tokenizer = load_tokenizer(str(base))
    check_chat_model(tokenizer, config.model)
    previous = prepare_run_dir(run, resume, overwrite)
    groups = model_rows(frame, config.mode)
    manifest = _new_manifest(frame, config, data_info, groups)
    if previous is not None:
        refuse_changes(run.root, _resume_key(previous), _resume_key(manifest), "fine-tune")
    turn_end = end_of_turn(tokenizer)
    manifest.separator = Separator(token=tokenizer.convert_ids_to_tokens(turn_end), id=turn_end,
                                   source="chat template")
    manifest.models = {key: entry.model_copy(update=dict(
        status="done", steps=0, base=str(base), hash=hash_dir(base, INSTRUCT_HASHED), processes=1))
        for key, entry in manifest.models.items()}
    return _write_run(run, frame, manifest)


def _write_run(run: RunDir, frame: pd.DataFrame, manifest: Manifest) -> Manifest:
    try:
        run.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{run.root}: cannot create the run directory ({exc.strerror or exc})") from None
    _write_train_rows(run, frame)
    run.write_manifest(manifest)
    return manifest


INSTRUCT_HASHED = ("*.json", "*.safetensors", "*.txt", "*.jinja", "*.model")   # weights, configs, template


def _local_base(config: FinetuneConfig) -> Path:
    """The base model's directory: a short name or path as resolved, a hub id as downloaded (once)."""
    from augment.models import resolve_model

    name = resolve_model(config.model, config.trust_pickle)
    if Path(name).is_dir():
        return Path(name).resolve()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=list(INSTRUCT_HASHED)))
    except Exception as exc:  # offline, unknown id, gated model
        raise AugmentError(f"{name}: cannot download the model ({str(exc).splitlines()[0]})") from None


def finished_entry(entry: ModelEntry, result: TrainResult, model_dir: Path, processes: int,
                   eval_rows: int) -> ModelEntry:
    return entry.model_copy(update=dict(
        status="done", steps=result.steps, first_loss=result.first_loss, final_loss=result.final_loss,
        wall_s=round(result.wall_s, 2), resumed_from_step=result.resumed_from_step, hash=hash_dir(model_dir),
        processes=processes, eval_rows=eval_rows, eval_loss=result.eval_loss, best_step=result.best_step,
        eval_losses=result.eval_losses, precision=result.precision))


def _open_run(run: RunDir, frame: pd.DataFrame, config: FinetuneConfig, data_info: dict[str, Any],
              groups: ModelRows, resume: bool, overwrite: bool, backend: Backend) -> Manifest:
    previous = prepare_run_dir(run, resume, overwrite)
    manifest = _new_manifest(frame, config, data_info, groups)
    if previous is not None:
        refuse_changes(run.root, _resume_key(previous), _resume_key(manifest), "fine-tune")
        manifest.models = previous.models
    if previous is not None and previous.separator is not None:
        manifest.separator = previous.separator
    else:
        manifest.separator = backend.choose_separator(config, frame[TEXT].tolist())
    return _write_run(run, frame, manifest)


def _train_one(backend: Backend, run: RunDir, key: str, rows: tuple[list[TrainingRow], list[TrainingRow]],
               config: FinetuneConfig, resume: bool, progress: bool, markers: tuple[str, ...], separator: int,
               main: bool = True) -> TrainResult:
    work = run.work_dir(key)
    work.mkdir(parents=True, exist_ok=True)
    train, held_out = rows
    log.info("fine-tuning %s on %d rows, %d held out (%s back-end, up to %d steps)", key, len(train),
             len(held_out), backend.name, config.max_steps)
    with _model_output(run.model_dir(key), main) as out:
        return backend.train(train, work, out, config, resume, progress, special_tokens=markers,
                             separator=separator, eval_rows=held_out)


@contextlib.contextmanager
def _model_output(path: Path, main: bool) -> Iterator[Path]:
    """The main process saves into the real (atomic) model dir; other ranks into a scratch dir."""
    if main:
        with atomic_dir(path, overwrite=True) as tmp:
            yield tmp
    else:
        with tempfile.TemporaryDirectory(prefix="augment-rank-") as tmp:
            yield Path(tmp)


def _new_manifest(frame: pd.DataFrame, config: FinetuneConfig, data_info: dict[str, Any],
                  groups: ModelRows) -> Manifest:
    labels = {label: LabelEntry(model=key, rows=int((frame[LABEL] == label).sum()))
              for key, (members, _, _) in groups.items() for label in members}
    models = {key: ModelEntry(labels=members, rows=len(rows)) for key, (members, rows, _) in groups.items()}
    return Manifest(mode=config.mode, finetune=config.model_dump(), data=data_info,
                    data_hash=hash_json(frame[[TEXT, LABEL]].values.tolist()), labels=labels, models=models,
                    adapted_from=adapted_from(config), adapter=_adapter(config), provenance=provenance(None))


def _adapter(config: FinetuneConfig) -> AdapterRecord | None:
    if config.adapter == "full":
        return None
    from augment.adapters import adapter_record

    return adapter_record(config)


def adapted_from(config: FinetuneConfig) -> dict[str, Any] | None:
    """What the start model was adapted on, when it is an ``augment adapt`` output."""
    path = Path(config.model).expanduser()
    record = read_record(path) if config.backend == "torch" and path.is_dir() else None
    if record is None:
        return None
    return record.model_dump(include={"base_model", "source", "texts", "texts_hash", "steps", "tokens", "eval_loss"})


def _resume_key(manifest: Manifest) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: the data and every setting but how long it trains."""
    longer = ("max_steps", "save_steps")
    key = {"data_hash": manifest.data_hash, **{k: v for k, v in manifest.finetune.items() if k not in longer}}
    if manifest.adapter is not None:  # adapter checkpoints continue only on the base they were trained on
        key["base_hash"] = manifest.adapter.base.hash
    return key


def _write_train_rows(run: RunDir, frame: pd.DataFrame) -> None:
    write_jsonl_atomic(run.root / "train.jsonl", frame[[TEXT, LABEL]].to_dict("records"))
