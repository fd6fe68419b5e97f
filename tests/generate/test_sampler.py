"""Counter-based sampling: exact top-k/top-p/temperature, noise from a hash, one model step."""

from __future__ import annotations

import pytest
import torch

from augment.config import GenerateConfig
from augment.generate import LabelGenerator
from augment.generate.sampler import (candidates, mix, mix_int, num_layers, pick, ring_cache,
                                      row_key, set_column, step, uniforms)
from augment.models import load_model, load_tokenizer, placement


@pytest.fixture(scope="module")
def gen(tiny_model_dir) -> LabelGenerator:
    model = load_model(str(tiny_model_dir)).eval()
    return LabelGenerator(model, load_tokenizer(str(tiny_model_dir)), placement("fp32"), "pos", False, ["pos"], "t")


def test_tensor_hash_matches_the_integer_reference() -> None:
    values = [0, 1, 2**62 + 12345, -1, -(2**63), 987654321987]
    assert mix(torch.tensor(values, dtype=torch.long)).tolist() == [mix_int(v) for v in values]


def test_noise_is_uniform_and_keyed_by_every_counter() -> None:
    keys = torch.tensor([row_key(0, "pos", i) for i in range(4000)])
    u = uniforms(keys, torch.zeros(4000, dtype=torch.long), torch.arange(3).expand(4000, 3))
    assert 0 < u.min() and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01
    assert len(set(u.flatten().tolist())) == u.numel()
    assert row_key(0, "pos", 1) != row_key(0, "neg", 1) != row_key(1, "neg", 1)


def hf_chain(scores: torch.Tensor, top_k: int, top_p: float | None, temperature: float) -> torch.Tensor:
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores = TemperatureLogitsWarper(temperature)(None, scores) if temperature != 1.0 else scores
    scores = TopKLogitsWarper(top_k)(None, scores) if top_k else scores
    return TopPLogitsWarper(top_p)(None, scores) if top_p is not None else scores


@pytest.mark.parametrize("top_k,top_p,temperature", [(50, 0.95, 1.0), (5, 0.5, 0.7), (40, None, 1.3),
                                                     (1, 0.9, 1.0), (0, 0.9, 1.0)])
def test_candidates_match_hf_warpers(top_k: int, top_p: float | None, temperature: float) -> None:
    scores = torch.randn(6, 1000, generator=torch.Generator().manual_seed(0)) * 3
    values, ids = candidates(scores.clone(), top_k, top_p, temperature)
    dense = torch.full_like(scores, -float("inf")).scatter_(-1, ids, values)
    assert torch.equal(dense, hf_chain(scores.clone(), top_k, top_p, temperature))


def expected_distribution(logits: torch.Tensor, top_k: int, top_p: float | None, temperature: float) -> torch.Tensor:
    return hf_chain(logits[None].clone(), top_k, top_p, temperature).softmax(-1)[0]


@pytest.mark.parametrize("top_k,top_p,temperature", [(4, 0.8, 0.7), (0, None, 1.0), (0, 0.9, 1.5), (3, None, 1.0)])
def test_draws_follow_the_requested_distribution(top_k: int, top_p: float | None, temperature: float) -> None:
    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, 0.7])
    rows = 40_000
    config = GenerateConfig(top_k=top_k, top_p=top_p, temperature=temperature)
    keys = torch.tensor([row_key(11, "pos", i) for i in range(rows)])
    tokens = pick(logits.expand(rows, -1), keys, torch.full((rows,), 3, dtype=torch.long), config)
    freq = torch.bincount(tokens, minlength=len(logits)).double() / rows
    want = expected_distribution(logits, top_k, top_p, temperature).double()
    assert (freq[want == 0] == 0).all()
    assert (freq - want).abs().max() < 0.012  # about 5 standard errors at 40k draws


def test_same_counters_same_token_other_step_other_token() -> None:
    logits = torch.zeros(1000, 50)
    keys = torch.tensor([row_key(0, "pos", i) for i in range(1000)])
    config = GenerateConfig(top_k=0, top_p=None)
    a = pick(logits, keys, torch.zeros(1000, dtype=torch.long), config)
    assert torch.equal(a, pick(logits, keys, torch.zeros(1000, dtype=torch.long), config))
    assert torch.equal(a[500:], pick(logits[500:], keys[500:], torch.zeros(500, dtype=torch.long), config))
    assert (a != pick(logits, keys, torch.ones(1000, dtype=torch.long), config)).float().mean() > 0.9


def test_ring_cache_step_gives_the_full_forward_logits(gen: LabelGenerator) -> None:
    """Two rows starting at different steps, each with its own positions, as refill makes them."""
    seqs = [[50256, 15496, 995, 11, 616], [50256, 3290, 318]]
    width, start = 6, [0, 3]
    cache = ring_cache(num_layers(gen.model), width)
    written = torch.full((width,), -1)
    for now in range(6):
        written[now % width] = now
        set_column(cache, now % width)
        tokens = torch.tensor([s[min(now - b, len(s) - 1)] if now >= b else 0 for s, b in zip(seqs, start)])
        positions = torch.tensor([max(0, now - b) for b in start])
        mask = written[None, :] >= torch.tensor(start)[:, None]
        logits = step(gen.model, cache, tokens, positions, mask)
        for row, (s, b) in enumerate(zip(seqs, start)):
            t = now - b
            if 0 <= t < len(s):
                with torch.inference_mode():
                    full = gen.model(input_ids=torch.tensor([s[: t + 1]])).logits[0, -1]
                assert torch.allclose(logits[row], full, atol=1e-4)
