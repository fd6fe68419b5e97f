"""Batched generation from a finished run: load once, generate many.

Every batch gets its own seed derived from (seed, label, batch index), so a
batch's rows depend only on those and the batch size: generation is
reproducible, and an interrupted job resumes by skipping finished batches.
The global RNG is untouched (sampling runs inside ``torch.random.fork_rng``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.models import Placement, load_model, load_tokenizer, placement
from augment.prompts import prompt as make_prompt
from augment.prompts import scrub
from augment.run import RunDir

log = logging.getLogger(__name__)

COLUMNS = ["text", "label", "model", "seed", "params"]


def batch_seed(seed: int, label: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{label}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


@dataclass
class LabelGenerator:
    """One loaded model, ready to sample rows for one label."""

    model: Any
    tokenizer: Any
    place: Placement
    label: str
    conditioned: bool
    all_labels: list[str]
    model_name: str

    @classmethod
    def load(cls, run: RunDir, label: str, precision: str = "auto") -> "LabelGenerator":
        manifest = run.read_manifest()
        path = run.finished_model(label)
        place = placement(precision)
        tokenizer = load_tokenizer(str(path))
        tokenizer.padding_side = "left"
        model = load_model(str(path), dtype=place.dtype).to(place.device).eval()
        return cls(model, tokenizer, place, label, manifest["mode"] == "conditioned",
                   sorted(manifest["labels"]), f"{run.root.name}/{path.name}")

    def prompt_ids(self, prefixes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompts; each starts with EOS, as every training row did."""
        label = self.label if self.conditioned else None
        eos = self.tokenizer.eos_token_id
        rows = [[eos] + self.tokenizer.encode(make_prompt(label, p), add_special_tokens=False) for p in prefixes]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
        return ids.to(self.place.device), mask.to(self.place.device)

    @torch.inference_mode()
    def sample(self, prefixes: list[str], config: GenerateConfig, seed: int) -> list[str]:
        ids, mask = self.prompt_ids(prefixes)
        devices = [self.place.device] if self.place.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.place.device.type):
            torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=config.max_new_tokens,
                temperature=config.temperature, top_k=config.top_k or None,
                top_p=config.top_p if config.top_p and config.top_p < 1 else None,
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
        return [scrub(p + t, self.all_labels) for p, t in zip(prefixes, texts)]


def auto_batch_size(model: Any, place: Placement, total_tokens: int) -> int:
    """Rows per batch that fit comfortably: KV cache dominates, weights are already resident."""
    if place.device.type != "cuda":
        return 32
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 12)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 768)
    itemsize = torch.tensor([], dtype=place.dtype).element_size()
    per_row = 2 * layers * hidden * total_tokens * itemsize + cfg.vocab_size * 4 * 4
    free, _ = torch.cuda.mem_get_info(place.device)
    return max(1, min(4096, int(free * 0.5 // per_row)))


def prefix_source(train_rows: list[str], words: int, seed: int) -> Callable[[int, int], list[str]]:
    """Batch index -> prefixes: the first ``words`` words of seeded real rows (or empty prompts)."""
    def prefixes(index: int, size: int) -> list[str]:
        if words == 0 or not train_rows:
            return [""] * size
        rng = random.Random(f"{seed}:{index}")
        return [" ".join(rng.choice(train_rows).split()[:words]) for _ in range(size)]
    return prefixes


def iter_batches(gen: LabelGenerator, config: GenerateConfig, train_rows: list[str],
                 done: Callable[[int], list[dict] | None] | None = None) -> Iterator[tuple[int, list[dict]]]:
    """Yield (batch index, rows) until ``config.n`` rows are kept; ``done`` returns cached batches."""
    size = config.batch_size if isinstance(config.batch_size, int) else auto_batch_size(
        gen.model, gen.place, config.max_new_tokens + 32)
    size = min(size, config.n) if isinstance(config.batch_size, str) else size
    prefixes = prefix_source(train_rows, config.prefix_words, config.seed)
    params = json.dumps(sampling_params(config, size), sort_keys=True)
    kept, index = 0, 0
    limit = config.max_attempts * max(1, -(-config.n // size))
    while kept < config.n:
        if index >= limit:
            raise AugmentError(f"label '{gen.label}': only {kept} of {config.n} rows after {index} batches "
                               f"(rows shorter than min_chars={config.min_chars} are dropped); "
                               "train longer or lower min_chars")
        rows = done(index) if done else None
        if rows is None:
            seed = batch_seed(config.seed, gen.label, index)
            texts = gen.sample(prefixes(index, size), config, seed)
            rows = [{"text": t, "label": gen.label, "model": gen.model_name, "seed": seed, "params": params}
                    for t in texts if len(t) >= max(1, config.min_chars)]
        kept += len(rows)
        yield index, rows
        index += 1


def sampling_params(config: GenerateConfig, batch_size: int) -> dict[str, Any]:
    keys = ("temperature", "top_k", "top_p", "max_new_tokens", "prefix_words", "min_chars")
    return {**{k: getattr(config, k) for k in keys}, "batch_size": batch_size}


def generate_label(run: RunDir, label: str, config: GenerateConfig, precision: str = "auto",
                   on_rows: Callable[[int], None] | None = None) -> pd.DataFrame:
    """``config.n`` rows for one label as a DataFrame with columns text, label, model, seed, params."""
    gen = LabelGenerator.load(run, label, precision)
    rows: list[dict] = []
    for _, batch in iter_batches(gen, config, train_texts(run, label)):
        rows.extend(batch)
        if on_rows:
            on_rows(len(batch))
    return pd.DataFrame(rows[: config.n], columns=COLUMNS)


def train_texts(run: RunDir, label: str) -> list[str]:
    path = run.root / "train.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [r["text"] for r in map(json.loads, fh) if r["label"] == label]
