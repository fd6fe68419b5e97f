"""The run directory: one HF model dir per label plus a manifest that says what is done.

Layout::

    RUN_DIR/run.json          manifest: format, mode, labels, configs, status per model
    RUN_DIR/train.jsonl       the exact rows each model was trained on
    RUN_DIR/<label>/          a plain Hugging Face model dir (per-label mode)
    RUN_DIR/_conditioned/     the single model (label-conditioned mode)
    RUN_DIR/.work/<label>/    Trainer checkpoints and loss log, for --resume
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.errors import RunDirError
from augment.io import write_json_atomic
from augment.prompts import CONDITIONED

MANIFEST = "run.json"
FORMAT = 1


def slug(label: str) -> str:
    """A directory name for any label; unsafe names get a short hash suffix to stay unique."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip(".-")
    if safe == label and safe and not safe.startswith("_"):
        return safe
    return f"{safe or 'label'}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def model_key(self, label: str, mode: str) -> str:
        return CONDITIONED if mode == "conditioned" else slug(label)

    def model_dir(self, key: str) -> Path:
        return self.root / key

    def work_dir(self, key: str) -> Path:
        return self.root / ".work" / key

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def read_manifest(self) -> dict[str, Any]:
        if not self.root.exists():
            raise RunDirError(f"{self.root}: run directory not found")
        if not self.manifest_path.exists():
            raise RunDirError(f"{self.root}: not an augment run directory (no {MANIFEST}); "
                              "create one with `augment finetune --out DIR`")
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{self.manifest_path}: corrupt manifest ({exc})") from None
        version = manifest.get("format") if isinstance(manifest, dict) else None
        if version != FORMAT:
            raise RunDirError(f"{self.manifest_path}: run format {version!r}, this augment reads format "
                              f"{FORMAT}; re-run `augment finetune` with this version")
        return manifest

    def finished_model(self, label: str) -> Path:
        """The model dir that generates ``label``, or an error saying what exists."""
        manifest = self.read_manifest()
        labels = manifest["labels"]
        if label not in labels:
            raise RunDirError(f"{self.root}: no label '{label}'; labels are {', '.join(sorted(labels))}")
        key = labels[label]["model"]
        entry = manifest["models"][key]
        path = self.model_dir(key)
        if entry.get("status") != "done" or not (path / "config.json").exists():
            raise RunDirError(f"{self.root}: the model for '{label}' is not finished; "
                              "run `augment finetune ... --resume` to complete it")
        return path
