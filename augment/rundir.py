"""The run directory: one HF model dir per label plus a typed manifest that says what is done.

Layout::

    RUN_DIR/run.json          manifest (``Manifest``): format, mode, labels, configs, separator, status per model
    RUN_DIR/train.jsonl       the exact rows each model was trained on
    RUN_DIR/<label>/          a plain Hugging Face model dir (per-label mode), or a peft adapter dir
                              (``adapter: lora``: adapter weights, adapter_config.json, tokenizer; the base
                              is named in the manifest with its hash)
    RUN_DIR/_conditioned/     the single model (label-conditioned mode)
    (instruct mode)           no model dir: ``models._instruct.base`` names the untouched base model
    RUN_DIR/.work/<label>/    Trainer checkpoints and loss log, for --resume
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from augment.errors import ConfigError, RunDirError
from augment.files import slug, write_json_atomic
from augment.precision import PrecisionChoice
from augment.prompts import CONDITIONED, INSTRUCT

MANIFEST = "run.json"
FORMAT = 1


class Record(BaseModel):
    """Keys a newer augment wrote are kept when an older one rewrites the file."""

    model_config = ConfigDict(extra="allow")


class Separator(Record):
    """The token rows are packed and prompted with, and the evidence it was chosen on:
    mean NLL of the first tokens of real rows after each candidate."""

    token: str
    id: int
    nll: dict[str, float] = {}
    source: str = "measured"


class BaseModelRef(Record):
    """The model an adapter run's adapters sit on: the name the config gave (short name, path or hub id),
    where it was found, and the hash of its files (None for a hub id), checked before generation."""

    model: str
    path: str
    hash: str | None = None


class AdapterRecord(Record):
    """What an adapter was trained as; ``target_modules`` are the resolved module names, not 'auto'."""

    kind: Literal["lora"] = "lora"
    rank: int
    alpha: float
    dropout: float
    target_modules: list[str]
    base: BaseModelRef
    peft: str | None = None   # the peft version that trained it

    def describe(self) -> str:
        return (f"LoRA r={self.rank}, alpha={self.alpha:g}, dropout={self.dropout:g} on "
                f"{', '.join(self.target_modules)}")


ADAPTER_CONFIG = "adapter_config.json"


class LabelEntry(Record):
    model: str
    rows: int


class ModelEntry(Record):
    labels: list[str]
    rows: int
    status: Literal["pending", "done"] = "pending"
    steps: int | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    wall_s: float | None = None
    resumed_from_step: int | None = None
    hash: str | None = None
    processes: int | None = None
    eval_rows: int = 0
    eval_loss: float | None = None
    best_step: int | None = None
    eval_losses: list[tuple[int, float]] = []
    precision: PrecisionChoice | None = None   # runs written before the choice was recorded: fp32
    base: str | None = None   # instruct mode: the base model's directory (its hash is ``hash``), used as it is


class Manifest(Record):
    """``run.json``. Runs written by 0.1.0 read as they are: later fields have defaults."""

    format: int = FORMAT
    mode: Literal["per-label", "conditioned", "instruct"]
    finetune: dict[str, Any]
    data: dict[str, Any]
    data_hash: str
    labels: dict[str, LabelEntry]
    models: dict[str, ModelEntry]
    separator: Separator | None = None
    adapted_from: dict[str, Any] | None = None
    adapter: AdapterRecord | None = None   # None: full fine-tuning (one model dir per model key)
    provenance: dict[str, Any] = {}

    def model_key(self, label: str, root: Path) -> str:
        """The key of the model that generates ``label``, or an error listing the labels that exist."""
        if label not in self.labels:
            raise ConfigError(f"{root}: no label '{label}'; labels are {', '.join(sorted(self.labels))}")
        return self.labels[label].model

    def model_for(self, label: str, root: Path) -> ModelEntry:
        return self.models[self.model_key(label, root)]

    def separator_id(self, tokenizer: Any) -> int:
        """The chosen separator; EOS for runs made before the choice existed."""
        return tokenizer.eos_token_id if self.separator is None else self.separator.id


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def model_key(self, label: str, mode: str) -> str:
        return {"conditioned": CONDITIONED, "instruct": INSTRUCT}.get(mode) or slug(label)

    def model_dir(self, key: str, manifest: Manifest | None = None) -> Path:
        """Where the model of ``key`` lives: in the run, or (instruct mode) the base model's own directory."""
        base = manifest.models[key].base if manifest is not None and key in manifest.models else None
        return Path(base) if base is not None else self.root / key

    def work_dir(self, key: str) -> Path:
        return self.root / ".work" / key

    def is_finished(self, manifest: Manifest, key: str) -> bool:
        """Marked done and its model (or adapter) dir in place (a dir appears only by atomic rename)."""
        marker = ADAPTER_CONFIG if manifest.adapter is not None else "config.json"
        return manifest.models[key].status == "done" and (self.model_dir(key, manifest) / marker).exists()

    def all_finished(self, manifest: Manifest) -> bool:
        return all(self.is_finished(manifest, key) for key in manifest.models)

    def write_manifest(self, manifest: Manifest) -> None:
        write_json_atomic(self.manifest_path, manifest.model_dump(mode="json"))

    def read_manifest(self) -> Manifest:
        if not self.root.exists():
            raise RunDirError(f"{self.root}: run directory not found")
        if not self.manifest_path.exists():
            raise RunDirError(f"{self.root}: not an augment run directory (no {MANIFEST}); "
                              "create one with `augment finetune --out DIR`")
        try:
            raw = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{self.manifest_path}: corrupt manifest ({exc})") from None
        version = raw.get("format") if isinstance(raw, dict) else None
        if version != FORMAT:
            raise RunDirError(f"{self.manifest_path}: run format {version!r}, this augment reads format "
                              f"{FORMAT}; re-run `augment finetune` with this version")
        try:
            return Manifest(**raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RunDirError(f"{self.manifest_path}: corrupt manifest ('{where}': {first['msg'].lower()})") from None

    def finished_model(self, label: str, manifest: Manifest | None = None) -> Path:
        """The model dir that generates ``label``, or an error saying what exists."""
        manifest = manifest or self.read_manifest()
        key = manifest.model_key(label, self.root)
        if manifest.models[key].base is not None and not self.is_finished(manifest, key):
            raise RunDirError(f"{self.root}: the base model {manifest.models[key].base} is gone; run "
                              f"`augment fetch {manifest.finetune.get('model')}` or `augment finetune --mode instruct "
                              "... --overwrite` again")
        if not self.is_finished(manifest, key):
            raise RunDirError(f"{self.root}: the model for '{label}' is not finished; "
                              "run `augment finetune ... --resume` to complete it")
        return self.model_dir(key, manifest)
