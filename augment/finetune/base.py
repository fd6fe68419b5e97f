"""The one interface every fine-tuning back-end answers.

The runner hands a back-end the rows of one model (already formatted, one
string per training row, without EOS) and two directories: ``work_dir`` for
checkpoints that must survive a crash, and ``out_dir``, an empty temporary
directory that must end up holding a Hugging Face model directory
(``config.json``, safetensors weights, tokenizer files). The runner renames
``out_dir`` into place, so a back-end never writes a finished model itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from augment.config import FinetuneConfig
from augment.finetune.packing import TrainingRow
from augment.finetune.separator import Separator
from augment.precision import PrecisionChoice


@dataclass(frozen=True)
class TrainResult:
    steps: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    wall_s: float = 0.0
    resumed_from_step: int | None = None
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None   # the step whose weights were kept (lowest held-out loss)
    eval_loss: float | None = None
    tokens: int | None = None      # training tokens seen (steps x batch x block, an upper bound)
    precision: PrecisionChoice | None = None   # None: the back-end does not choose (gpt-2-simple)

    @property
    def first_loss(self) -> float | None:
        return self.losses[0][1] if self.losses else None

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None


class Backend(Protocol):
    name: str

    def choose_separator(self, config: FinetuneConfig, texts: list[str]) -> Separator:
        """The token rows are packed and prompted with (measured on the start model, or fixed)."""
        ...

    def train(self, rows: list[TrainingRow], work_dir: Path, out_dir: Path, config: FinetuneConfig,
              resume: bool, progress: bool, special_tokens: tuple[str, ...] = (), separator: int | None = None,
              eval_rows: list[TrainingRow] | None = None) -> TrainResult:
        """Fine-tune ``config.model`` on ``rows`` and save a HF model dir into ``out_dir``.

        ``special_tokens`` (label markers of the conditioned mode) must become
        single added tokens of the saved tokenizer, with embeddings resized.
        ``eval_rows``, when given, measure held-out loss and pick the checkpoint kept.
        """
        ...
