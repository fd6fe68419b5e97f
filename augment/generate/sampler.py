"""One model step and the fused sampling that turns its logits into tokens.

Randomness is counter-based: the noise for token ``t`` at step ``s`` of row
``i`` of label ``L`` is a hash of ``(seed, L, i, s, t)``, and a token is drawn by
Gumbel-max over the candidates that temperature, top-k and top-p keep. The same
logits therefore give the same token whatever batch, process or resume point
the row was sampled in; the global RNG is never touched.

``SAMPLER_VERSION`` names this rule. It goes into the cache keys of generated
pools, the resume key of a job and provenance, so no output mixes two samplers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.instruct import PARSER_VERSION
from augment.models import cache_kwarg

SAMPLER_VERSION = "counter-gumbel-1"
COLUMNS = ["text", "label", "model", "seed", "params"]

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_C1, _C2 = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)
_GOLDEN, _ODD = _signed(0x9E3779B97F4A7C15), _signed(0xD6E8FEB86659FD93)


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 tensors (multiplication wraps, as on every torch device)."""
    x = (x ^ _shr(x, 30)) * _C1
    x = (x ^ _shr(x, 27)) * _C2
    return x ^ _shr(x, 31)


def mix_int(x: int) -> int:
    """``mix`` on one Python int: the reference the tensor version is tested against."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return _signed(x ^ (x >> 31))


def row_key(seed: int, label: str, index: int) -> int:
    """The stream of row ``index`` of ``label``: every draw of the row hashes this with (step, token)."""
    label_hash = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "little")
    return mix_int(mix_int(mix_int(seed) ^ label_hash) ^ (index & _MASK64))


def uniforms(keys: torch.Tensor, steps: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Uniform (0, 1) float64 noise for each (row key, step) of ``keys``/``steps`` [B] and token of ``tokens`` [B, k]."""
    step_key = mix(keys ^ (steps * _GOLDEN))
    bits = mix(step_key[:, None] ^ (tokens * _ODD + 1))
    return (_shr(bits, 11).double() + 0.5) * 2.0 ** -53


def candidates(logits: torch.Tensor, top_k: int | None, top_p: float | None,
               temperature: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(scaled logits of the kept candidates, their token ids or None for the whole vocabulary).

    Temperature, then top-k (``torch.topk``: no vocabulary sort), then top-p on the k
    candidates, as HF's warper chain does; dropped candidates become ``-inf``.
    """
    scores = logits.float() / temperature if temperature != 1.0 else logits.float()
    nucleus = top_p is not None and top_p < 1
    ids = None
    if top_k:
        scores, ids = torch.topk(scores, min(top_k, scores.shape[-1]), dim=-1)
    elif nucleus:
        scores, ids = torch.sort(scores, dim=-1, descending=True)
    if nucleus:
        cumulative = scores.flip(-1).softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= (1 - top_p)
        drop[..., -1] = False
        scores = scores.masked_fill(drop.flip(-1), -float("inf"))
    return scores, ids


def pick(logits: torch.Tensor, keys: torch.Tensor, steps: torch.Tensor, config: GenerateConfig) -> torch.Tensor:
    """One token per row of ``logits`` [B, V]: Gumbel-max with the rows' counter noise; exact sampling."""
    scores, ids = candidates(logits, config.top_k, config.top_p, config.temperature)
    tokens = ids if ids is not None else torch.arange(scores.shape[-1], device=scores.device).expand_as(scores)
    gumbel = -torch.log(-torch.log(uniforms(keys, steps, tokens)))
    choice = (scores.double() + gumbel).argmax(dim=-1, keepdim=True)
    return tokens.gather(-1, choice).squeeze(-1)


def sampling_params(config: GenerateConfig, instruct: bool = False) -> dict[str, Any]:
    """What a row's text depends on besides (seed, label, index); not the batch size, not the world size."""
    keys = ("temperature", "top_k", "top_p", "max_new_tokens", "prefix_words", "min_chars")
    return {**{k: getattr(config, k) for k in keys}, "sampler": SAMPLER_VERSION,
            **({"parser": PARSER_VERSION} if instruct else {})}


def ring_cache(layers: int, width: int, prefix: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> Any:
    """A preallocated KV window shared by all slots: step ``t`` writes column ``t % width``.

    A slot's row only ever reads the columns written since it started (the attention
    mask says which), so a finished slot starts a new row at once without copying or
    shrinking anything, and nothing grows with the length of the job. ``prefix`` (per
    layer keys and values ``[1, heads, P, dim]``, from ``prefix_cache``) fills ``P``
    columns in front of the window that every slot may read: a prompt start computed once.
    """
    from transformers.cache_utils import Cache

    return Cache(layers=[_ring_layer(width, None if prefix is None else prefix[i]) for i in range(layers)])


def _ring_layer(width: int, prefix: tuple[torch.Tensor, torch.Tensor] | None) -> Any:
    from transformers.cache_utils import CacheLayerMixin

    class RingLayer(CacheLayerMixin):
        is_sliding = False

        def __init__(self) -> None:
            super().__init__()
            self.width, self.column = width, 0
            self.offset = 0 if prefix is None else prefix[0].shape[2]

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            b, h, _, d = key_states.shape
            self.keys = key_states.new_zeros((b, h, self.offset + self.width, d))
            self.values = value_states.new_zeros((b, h, self.offset + self.width, value_states.shape[-1]))
            if prefix is not None:
                self.keys[:, :, : self.offset] = prefix[0].to(self.keys)
                self.values[:, :, : self.offset] = prefix[1].to(self.values)
            self.device, self.is_initialized = key_states.device, True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.keys[:, :, self.offset + self.column] = key_states[:, :, -1]
            self.values[:, :, self.offset + self.column] = value_states[:, :, -1]
            return self.keys, self.values

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.offset + self.width, 0

        def get_seq_length(self) -> int:
            return 0

        def get_max_length(self) -> int:
            return self.width

    return RingLayer()


def set_column(cache: Any, column: int) -> None:
    for layer in cache.layers:
        layer.column = column


def keep_rows(cache: Any, rows: torch.Tensor) -> None:
    """Keep only these slots' KV windows (the batch shrank)."""
    for layer in cache.layers:
        if layer.is_initialized:
            index = rows.to(layer.keys.device)
            layer.keys, layer.values = layer.keys.index_select(0, index), layer.values.index_select(0, index)


def num_layers(model: Any) -> int:
    cfg = model.config
    return getattr(cfg, "num_hidden_layers", None) or cfg.n_layer


Mask = torch.Tensor | dict[str, torch.Tensor]   # [B, width] per slot (True: may attend), or one per layer type


def has_sliding_layers(model: Any) -> bool:
    types = set(getattr(model.config, "layer_types", None) or ["full_attention"])
    unknown = types - {"full_attention", "sliding_attention"}
    if unknown:
        raise AugmentError(f"{model.config.model_type}: attention type {sorted(unknown)[0]} is not supported by "
                           "the generation loop (full and sliding-window attention are)")
    return "sliding_attention" in types


def slot_masks(model: Any, written: torch.Tensor, start: torch.Tensor, now: int,
               shared: torch.Tensor | None = None) -> Mask:
    """Which ring columns each slot may attend to: those written since its row started, and for
    sliding-window layers (Gemma 3, Mistral, Qwen2 with use_sliding_window) only the last
    ``sliding_window`` of them, which a ready-made mask must say itself. ``shared`` [B, P]: the
    columns of a prompt start computed once, in front of the ring (never with sliding layers)."""
    mask = written[None, :] >= start[:, None]
    if not has_sliding_layers(model):
        return mask if shared is None else torch.cat([shared, mask], dim=1)
    assert shared is None, "a shared prompt start is not used with sliding-window layers"
    window = model.config.sliding_window
    return {"full_attention": mask, "sliding_attention": mask & (written > now - window)[None, :]}


@torch.inference_mode()
def prefix_cache(model: Any, ids: list[int], device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values of ``ids`` at positions ``0..P-1``, per layer: one forward for a prompt start
    every row shares, instead of one step per token per row."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([ids], device=device), use_cache=True, **{cache_kwarg(model): cache})
    return [(layer.keys, layer.values) for layer in cache.layers]


@torch.inference_mode()
def step(model: Any, cache: Any, tokens: torch.Tensor, positions: torch.Tensor, mask: Mask) -> torch.Tensor:
    """One decode step for every slot: ``tokens``/``positions`` [B], ``mask`` from ``slot_masks``.

    Returns the next-token logits [B, V]. The mask is passed ready-made (4D, additive),
    so the model builds none of its own and every slot keeps its own positions.
    """
    dtype = next(model.parameters()).dtype

    def additive(allowed: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return out.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None, None, :]

    ready = {k: additive(v) for k, v in mask.items()} if isinstance(mask, dict) else additive(mask)
    out = model(input_ids=tokens[:, None], position_ids=positions[:, None], attention_mask=ready,
                use_cache=True, **{cache_kwarg(model): cache})
    return out.logits[:, -1]
