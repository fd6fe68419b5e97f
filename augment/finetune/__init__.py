"""Fine-tune one causal LM per label (or one label-conditioned LM) into a run directory."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from augment.config import FinetuneConfig
from augment.data.readers import LABEL, TEXT
from augment.errors import AugmentError, DataError, OutputExistsError, RunDirError
from augment.finetune.base import Backend, TrainResult
from augment.io import atomic_dir, hash_dir, holds_lock, hash_json, provenance, write_jsonl_atomic
from augment.prompts import label_token, training_row
from augment.run import FORMAT, RunDir

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


def model_rows(frame: pd.DataFrame, mode: str) -> dict[str, tuple[list[str], list[str]]]:
    """Model key -> (labels it serves, formatted training rows)."""
    run = RunDir(Path("."))
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for label, group in frame.groupby(LABEL, sort=True):
        key = run.model_key(str(label), mode)
        labels, rows = groups.setdefault(key, ([], []))
        labels.append(str(label))
        conditioned = str(label) if mode == "conditioned" else None
        rows.extend(training_row(t, conditioned) for t in group[TEXT])
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


def prepare_run_dir(run: RunDir, resume: bool, overwrite: bool) -> dict[str, Any] | None:
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
                 on_model: Callable[[str, TrainResult | None], None] | None = None) -> dict[str, Any]:
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
    state = _process_state(config)
    groups = model_rows(frame, config.mode)
    if state.is_main_process:
        manifest = _open_run(run, frame, config, data_info, groups, resume, overwrite)
    state.wait_for_everyone()
    if not state.is_main_process:
        manifest = run.read_manifest()
    backend = get_backend(config.backend)
    for key, (labels, rows) in groups.items():
        entry = manifest["models"][key]
        if entry["status"] == "done" and (run.model_dir(key) / "config.json").exists():
            log.info("%s: already trained, skipping", key)
            if on_model:
                on_model(key, None)
            continue
        markers = tuple(label_token(l) for l in labels) if config.mode == "conditioned" else ()
        result = _train_one(backend, run, key, rows, config, resume, progress, markers, state.is_main_process)
        if state.is_main_process:
            entry.update(status="done", steps=result.steps, first_loss=result.first_loss,
                         final_loss=result.final_loss, wall_s=round(result.wall_s, 2),
                         resumed_from_step=result.resumed_from_step, hash=hash_dir(run.model_dir(key)),
                         processes=state.num_processes)
            run.write_manifest(manifest)
        state.wait_for_everyone()
        if on_model:
            on_model(key, result)
    return manifest if state.is_main_process else run.read_manifest()


def _process_state(config: FinetuneConfig) -> Any:
    """accelerate's view of the launch: one process, or one rank of torchrun / accelerate launch."""
    if config.backend != "torch":
        return _SingleProcess()
    from accelerate import PartialState

    return PartialState(cpu=not _cuda_available())


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class _SingleProcess:
    is_main_process = True
    num_processes = 1

    def wait_for_everyone(self) -> None:
        pass


def _open_run(run: RunDir, frame: pd.DataFrame, config: FinetuneConfig, data_info: dict[str, Any],
              groups: dict[str, tuple[list[str], list[str]]], resume: bool, overwrite: bool) -> dict[str, Any]:
    previous = prepare_run_dir(run, resume, overwrite)
    manifest = _new_manifest(frame, config, data_info, groups)
    if previous is not None:
        _check_compatible(previous, manifest, run)
        manifest["models"] = previous["models"]
    try:
        run.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{run.root}: cannot create the run directory ({exc.strerror or exc})") from None
    _write_train_rows(run, frame)
    run.write_manifest(manifest)
    return manifest


def _train_one(backend: Backend, run: RunDir, key: str, rows: list[str], config: FinetuneConfig,
               resume: bool, progress: bool, markers: tuple[str, ...], main: bool = True) -> TrainResult:
    work = run.work_dir(key)
    work.mkdir(parents=True, exist_ok=True)
    log.info("fine-tuning %s on %d rows (%s back-end, %d steps)", key, len(rows), backend.name, config.max_steps)
    with _model_output(run.model_dir(key), main) as out:
        if markers:
            return backend.train(rows, work, out, config, resume, progress, special_tokens=markers)
        return backend.train(rows, work, out, config, resume, progress)


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
                  groups: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    labels = {label: {"model": key, "rows": int((frame[LABEL] == label).sum())}
              for key, (members, _) in groups.items() for label in members}
    models = {key: {"labels": members, "rows": len(rows), "status": "pending"}
              for key, (members, rows) in groups.items()}
    return {"format": FORMAT, "mode": config.mode, "finetune": config.model_dump(), "data": data_info,
            "data_hash": hash_json(frame[[TEXT, LABEL]].values.tolist()), "labels": labels,
            "models": models, "provenance": provenance(None)}


def _check_compatible(previous: dict[str, Any], manifest: dict[str, Any], run: RunDir) -> None:
    for key in ("mode", "data_hash"):
        if previous.get(key) != manifest[key]:
            raise RunDirError(f"{run.root}: cannot resume: {key} differs from the original run "
                              "(different data or mode); use --overwrite to start again")
    old, new = dict(previous["finetune"]), dict(manifest["finetune"])
    changed = sorted(k for k in new if old.get(k) != new[k] and k not in ("max_steps", "save_steps"))
    if changed:
        raise RunDirError(f"{run.root}: cannot resume with different settings ({', '.join(changed)})")


def _write_train_rows(run: RunDir, frame: pd.DataFrame) -> None:
    write_jsonl_atomic(run.root / "train.jsonl", frame[[TEXT, LABEL]].to_dict("records"))
