"""Export one label's generator as a plain Hugging Face model folder (``augment export``).

An adapter run stores adapters, not models; users who want a folder that ``AutoModelForCausalLM`` loads
without peft get the base with the label's adapter merged in (fp32). A full run's model dir is already
such a folder and is copied. Either way the folder appears by atomic rename, with ``export.json`` saying
what it was made from.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from augment.errors import ConfigError
from augment.files import atomic_dir, hash_dir, holds_lock, write_json_atomic
from augment.provenance import Provenance
from augment.rundir import AdapterRecord, RunDir

log = logging.getLogger(__name__)

RECORD = "export.json"


class ExportRecord(Provenance):
    """``OUT/export.json``: the run, label and model (adapter) hash it came from; the base for adapters."""

    config: dict[str, Any]   # the run's fine-tuning settings
    run_dir: str
    label: str
    model: str
    model_hash: str | None
    adapter: AdapterRecord | None


def export_label(run: RunDir, label: str | None, out: Path, overwrite: bool = False) -> ExportRecord:
    """The model that generates ``label`` (may be omitted when the run has one model) as a model folder."""
    manifest = run.read_manifest()
    label = _one_label(run, label, manifest.labels, len(manifest.models))
    source = run.finished_model(label)
    record = ExportRecord.now(manifest.finetune, run_dir=str(run.root), label=label, model=source.name,
                              model_hash=manifest.model_for(label, run.root).hash, adapter=manifest.adapter)
    return _write(run, source, record, Path(out), overwrite)


@holds_lock("out")  # one writer per output folder
def _write(run: RunDir, source: Path, record: ExportRecord, out: Path, overwrite: bool) -> ExportRecord:
    with atomic_dir(out, overwrite=overwrite) as tmp:
        if record.adapter is None:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        else:
            _merge(run, source, record.adapter, tmp)
        write_json_atomic(tmp / RECORD, record.model_dump(mode="json"))
    log.info("exported %s (%s) to %s; hash %s", record.label, source, out, hash_dir(out)[:12])
    return record


def _merge(run: RunDir, adapter_dir: Path, adapter: AdapterRecord, out: Path) -> None:
    from augment.adapters import base_path, merged
    from augment.models import load_tokenizer

    tokenizer = load_tokenizer(str(adapter_dir))
    model = merged(base_path(adapter.base, run.root), adapter_dir, len(tokenizer))
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def _one_label(run: RunDir, label: str | None, labels: dict, models: int) -> str:
    if label is not None:
        return label
    if models == 1:
        return sorted(labels)[0]
    raise ConfigError(f"{run.root}: name the label to export with --label (one of {', '.join(sorted(labels))})")
