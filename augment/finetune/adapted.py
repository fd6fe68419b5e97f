"""What an adapted model directory records (``adapt.json``): written by ``augment adapt``, read by the
fine-tune that starts from it (its separator, ``adapted_from``) and by ``augment info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from augment.finetune.separator import Separator
from augment.precision import PrecisionChoice
from augment.rundir import AdapterRecord

RECORD = "adapt.json"


class AdaptRecord(BaseModel):
    """``adapt.json``: the adapted model's provenance, read by ``finetune`` and ``augment info``."""

    base_model: str
    source: str
    texts: int
    texts_hash: str
    eval_rows: int
    separator: Separator
    steps: int
    tokens: int | None
    first_loss: float | None
    final_loss: float | None
    eval_loss: float | None
    best_step: int | None
    wall_s: float
    config: dict[str, Any]
    provenance: dict[str, Any]
    precision: PrecisionChoice | None = None   # records written before the choice was recorded: fp32
    adapter: AdapterRecord | None = None   # trained as a LoRA adapter (then merged into this folder)


def read_record(model_dir: Path) -> AdaptRecord | None:
    path = Path(model_dir) / RECORD
    if not path.is_file():
        return None
    return AdaptRecord(**json.loads(path.read_text(encoding="utf-8")))
