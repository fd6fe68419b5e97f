"""Turn training rows into packed blocks of token ids.

Every row ends with the separator and the stream starts with one, so the model
learns "after the separator a new row begins" and generation can start from a
bare separator. Rows are packed, not padded: a tweet is ~20 tokens, padding to
the longest row would waste most of every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from augment.prompts import encode_text, label_token


@dataclass(frozen=True)
class TrainingRow:
    """One row as the model sees it; ``label`` (conditioned mode) becomes its marker token, never text."""

    text: str
    label: str | None = None


def held_out_count(rows: int, fraction: float) -> int:
    """At least one held-out row when asked for, never the last training row."""
    if fraction <= 0 or rows < 2:
        return 0
    return min(rows - 1, max(1, round(rows * fraction)))


def pack(token_rows: Sequence[Sequence[int]], separator: int, block_size: int) -> list[list[int]]:
    stream: list[int] = [separator]
    for row in token_rows:
        stream.extend(row)
        stream.append(separator)
    blocks = [stream[i:i + block_size] for i in range(0, len(stream), block_size)]
    return [b for b in blocks if len(b) >= 2]


def tokenize_rows(tokenizer: Any, rows: Sequence[TrainingRow]) -> list[list[int]]:
    """Text through ``encode_text`` (special-token strings stay text); a label as its one marker id."""
    out = []
    for row in rows:
        marker = [] if row.label is None else [tokenizer.convert_tokens_to_ids(label_token(row.label))]
        out.append(marker + encode_text(tokenizer, row.text))
    return out


class BlockDataset(torch.utils.data.Dataset):
    def __init__(self, blocks: list[list[int]]):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.blocks[i]}


class PadCollator:
    """Pads only the short last block; padding never hides the separator labels.

    (HF's LM collator masks every ``pad_token_id`` label, and GPT-2's pad is
    its EOS, so the model would never learn to stop.)
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            row = torch.tensor(f["input_ids"], dtype=torch.long)
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
