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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.models import Placement, load_model, load_tokenizer, placement
from augment.prompts import label_token, prompt_ids, scrub, separator_id
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
    separator: int | None = None   # None: the tokenizer's EOS (runs made before the separator was chosen)

    @property
    def separator_id(self) -> int:
        return self.tokenizer.eos_token_id if self.separator is None else self.separator

    @classmethod
    def load(cls, run: RunDir, label: str, precision: str = "auto") -> "LabelGenerator":
        manifest = run.read_manifest()
        path = run.finished_model(label)
        place = placement(precision)
        tokenizer = load_tokenizer(str(path))
        tokenizer.padding_side = "left"
        model = load_model(str(path), dtype=place.dtype).to(place.device).eval()
        return cls(model, tokenizer, place, label, manifest["mode"] == "conditioned",
                   sorted(manifest["labels"]), f"{run.root.name}/{path.name}", separator_id(manifest, tokenizer))

    def prompt_ids(self, prefixes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompts; each starts with EOS, as every training row did."""
        label = self.label if self.conditioned else None
        rows = [prompt_ids(self.tokenizer, self.separator_id, label, p) for p in prefixes]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
        return ids.to(self.place.device), mask.to(self.place.device)

    def suppressed(self) -> list[int] | None:
        """Label markers may only ever appear in the prompt."""
        if not self.conditioned:
            return None
        return [self.tokenizer.convert_tokens_to_ids(label_token(l)) for l in self.all_labels]

    @torch.inference_mode()
    def sample(self, prefixes: list[str], config: GenerateConfig, seed: int) -> list[str]:
        ids, mask = self.prompt_ids(prefixes)
        devices = [self.place.device] if self.place.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.place.device.type):
            torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=config.max_new_tokens,
                **sampling_kwargs(config), **cache_kwargs(self.place, config),
                suppress_tokens=self.suppressed(),
                eos_token_id=self.separator_id, pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
        return [scrub(p + t, self.all_labels) for p, t in zip(prefixes, texts)]


def auto_batch_size(model: Any, place: Placement, total_tokens: int) -> int:
    """Rows per batch that fit comfortably: KV cache dominates, weights are already resident.

    On a GPU the bound is free memory. On a CPU memory is rarely the limit;
    throughput still grows up to 64 rows on 2 cores (GPT-2 124M: 5.6 / 9.1 /
    12.6 / 14.8 rows/s at 8 / 16 / 32 / 64, benchmarks/RESULTS.md) while the
    wasted tail of a job grows with the batch, so cap at 64 and shrink only
    when available RAM is short.
    """
    per_row = _row_bytes(model, place, total_tokens)
    if place.device.type != "cuda":
        return max(1, min(CPU_BATCH_CAP, int(_available_ram() * 0.25 // per_row)))
    free, _ = torch.cuda.mem_get_info(place.device)
    return max(1, min(4096, int(free * 0.5 // per_row)))


CPU_BATCH_CAP = 64


def _row_bytes(model: Any, place: Placement, total_tokens: int) -> int:
    """KV cache for one row plus a few full-vocabulary fp32 buffers (logits, probabilities, mask)."""
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 12)
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 12)
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 768)
    itemsize = torch.tensor([], dtype=place.dtype).element_size()
    kv_width = hidden * kv_heads // heads
    return 2 * layers * kv_width * total_tokens * itemsize + cfg.vocab_size * 4 * 4


def _available_ram() -> int:
    """MemAvailable from /proc/meminfo (Linux); 8 GiB where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def prefix_source(train_rows: list[str], words: int, seed: int) -> Callable[[int, int], list[str]]:
    """Batch index -> prefixes: the first ``words`` words of seeded real rows (or empty prompts)."""
    def prefixes(index: int, size: int) -> list[str]:
        if words == 0 or not train_rows:
            return [""] * size
        rng = random.Random(f"{seed}:{index}")
        return [" ".join(rng.choice(train_rows).split()[:words]) for _ in range(size)]
    return prefixes


def attempt_limit(config: GenerateConfig, size: int) -> int:
    """Batches tried before giving up: ``max_attempts`` times the batches ``n`` rows need."""
    return config.max_attempts * max(1, -(-config.n // size))


def too_few_rows(label: str, kept: int, batches: int, config: GenerateConfig) -> AugmentError:
    return AugmentError(f"label '{label}': only {kept} of {config.n} rows after {batches} batches "
                        f"(rows shorter than min_chars={config.min_chars} are dropped); "
                        "train longer or lower min_chars")


def resolve_batch_size(gen: LabelGenerator, config: GenerateConfig) -> int:
    """The configured batch size, or the automatic one (never more than ``config.n``)."""
    if isinstance(config.batch_size, int):
        return config.batch_size
    return min(auto_batch_size(gen.model, gen.place, config.max_new_tokens + 32), config.n)


def sample_batch(gen: LabelGenerator, config: GenerateConfig, index: int, prefixes: list[str],
                 params: str) -> list[dict]:
    """Batch ``index`` as records; its rows depend only on (seed, label, index, batch size)."""
    seed = batch_seed(config.seed, gen.label, index)
    texts = gen.sample(prefixes, config, seed)
    return [{"text": t, "label": gen.label, "model": gen.model_name, "seed": seed, "params": params}
            for t in texts if len(t) >= max(1, config.min_chars)]


def sampling_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """``generate`` arguments that sample like HF's temperature -> top-k -> top-p chain.

    With top-k set, one fused processor does all three on the k candidates
    instead of HF's full-vocabulary sort for top-p; the kept set and the
    logits are the same, and HF's own softmax + multinomial draw the token, so
    a seed gives the same rows either way.
    """
    top_p = config.top_p if config.top_p and config.top_p < 1 else None
    if config.top_k:
        from transformers import LogitsProcessorList

        warper = TopKTopP(config.top_k, top_p, config.temperature)
        return {"logits_processor": LogitsProcessorList([warper]), "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    return {"temperature": config.temperature, "top_k": 0, "top_p": top_p}


class TopKTopP:
    """Temperature, top-k, then top-p, computed on the k best logits only (no vocabulary sort).

    Matches ``TemperatureLogitsWarper`` -> ``TopKLogitsWarper`` -> ``TopPLogitsWarper``:
    ties at the k-th logit (which HF keeps) fall back to a mask over the full row.
    """

    def __init__(self, top_k: int, top_p: float | None, temperature: float):
        self.top_k, self.top_p, self.temperature = top_k, top_p, temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.temperature != 1.0:
            scores = scores / self.temperature
        k = min(self.top_k, scores.shape[-1])
        values, indices = torch.topk(scores, k, dim=-1)
        if bool(((scores >= values[..., -1:]).sum(-1) > k).any()):
            return self._with_ties(scores, values[..., -1:])
        if self.top_p is not None:
            ascending = values.flip(-1)
            cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= (1 - self.top_p)
            drop[..., -1] = False
            values = values.masked_fill(drop.flip(-1), -float("inf"))
        return torch.full_like(scores, -float("inf")).scatter_(-1, indices, values)

    def _with_ties(self, scores: torch.Tensor, kth: torch.Tensor) -> torch.Tensor:
        """HF's own path, for the rare row whose k-th logit is tied."""
        from transformers import TopPLogitsWarper

        masked = scores.masked_fill(scores < kth, -float("inf"))
        return masked if self.top_p is None else TopPLogitsWarper(self.top_p)(None, masked)


def cache_kwargs(place: Placement, config: GenerateConfig) -> dict[str, Any]:
    """On a GPU, a static KV cache (which HF compiles the decode step for) once a job is long enough.

    Compiling costs tens of seconds per batch shape; every batch of a job has
    the same shape, so it pays back after roughly ``STATIC_CACHE_MIN_TOKENS``
    generated tokens. On CPU HF never compiles and the dynamic cache is faster.
    """
    if place.device.type == "cuda" and config.n * config.max_new_tokens >= STATIC_CACHE_MIN_TOKENS:
        return {"cache_implementation": "static"}
    return {}


STATIC_CACHE_MIN_TOKENS = 500_000


def sampling_params(config: GenerateConfig, batch_size: int) -> dict[str, Any]:
    keys = ("temperature", "top_k", "top_p", "max_new_tokens", "prefix_words", "min_chars")
    return {**{k: getattr(config, k) for k in keys}, "batch_size": batch_size}


def prompt_texts(run: RunDir, label: str, given: Sequence[str] | None = None) -> list[str]:
    """The texts whose first words start the prompts: ``given`` (e.g. unlabelled rows),
    else the label's training rows."""
    return list(given) if given is not None else train_texts(run, label)


def train_texts(run: RunDir, label: str) -> list[str]:
    path = run.root / "train.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [r["text"] for r in map(json.loads, fh) if r["label"] == label]
