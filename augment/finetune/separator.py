"""Choose the token that separates rows, by measuring which one the base model expects a row after.

Rows are packed and prompted after a separator. The tokenizer's EOS is not
always the model's document boundary: SmolLM2-Instruct's EOS is the chat
turn end ``<|im_end|>``, its pre-training documents were split by
``<|endoftext|>``. A row that starts right after the boundary the model knows
starts like a document (a capital, a whole sentence) instead of mid-sentence.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from augment.prompts import encode_text
from augment.rundir import Separator

DOCUMENT_SEPARATORS = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<s>", "<|begin_of_text|>", "<|startoftext|>")
FIRST_TOKENS = 4
MAX_ROWS = 64


def candidates(tokenizer: Any) -> dict[str, int]:
    """EOS, BOS and any document-separator token the vocabulary holds as one token, each once."""
    found: dict[str, int] = {}
    named = [tokenizer.eos_token, tokenizer.bos_token, *DOCUMENT_SEPARATORS]
    vocab = tokenizer.get_vocab()
    for token in named:
        if token and token in vocab and vocab[token] not in found.values():
            found[token] = vocab[token]
    return found


@torch.inference_mode()
def first_token_nll(model: Any, tokenizer: Any, separator: int, rows: Sequence[Sequence[int]]) -> float:
    """Mean NLL of each row's first tokens when it follows ``separator``."""
    width = 1 + max(len(r) for r in rows)
    ids = torch.full((len(rows), width), separator, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, 1:1 + len(row)] = torch.tensor(row)
        labels[i, 1:1 + len(row)] = torch.tensor(row)
        mask[i, :1 + len(row)] = 1
    device = next(model.parameters()).device
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
    return float(out.loss)


def choose_separator(model: Any, tokenizer: Any, texts: Sequence[str], seed: int = 0) -> Separator:
    """The candidate after which real rows are least surprising (ties: the first, EOS)."""
    options = candidates(tokenizer)
    sample = list(texts)
    if len(sample) > MAX_ROWS:
        sample = random.Random(seed).sample(sample, MAX_ROWS)
    rows = [ids[:FIRST_TOKENS] for ids in (encode_text(tokenizer, t) for t in sample) if ids]
    if len(options) == 1 or not rows:
        token, token_id = next(iter(options.items()))
        return Separator(token=token, id=token_id, source="only candidate" if rows else "no rows to measure")
    nll = {token: round(first_token_nll(model, tokenizer, token_id, rows), 4) for token, token_id in options.items()}
    best = min(nll, key=lambda t: nll[t])
    return Separator(token=best, id=options[best], nll=nll)
