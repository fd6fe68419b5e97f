"""The fast sampling path draws the same rows as HF's own temperature -> top-k -> top-p chain."""

from __future__ import annotations

import pytest
import torch

from augment.config import GenerateConfig
from augment.generate import LabelGenerator, TopKTopP, auto_batch_size, sampling_kwargs
from augment.shard import LocalComm, sharded_rows
from augment.models import load_model, load_tokenizer, placement


@pytest.fixture(scope="module")
def gen(tiny_model_dir) -> LabelGenerator:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.padding_side = "left"
    model = load_model(str(tiny_model_dir)).eval()
    return LabelGenerator(model, tokenizer, placement("fp32"), "pos", False, ["pos"], "tiny")


def hf_chain(scores: torch.Tensor, top_k: int, top_p: float | None, temperature: float) -> torch.Tensor:
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores = TemperatureLogitsWarper(temperature)(None, scores) if temperature != 1.0 else scores
    scores = TopKLogitsWarper(top_k)(None, scores)
    return TopPLogitsWarper(top_p)(None, scores) if top_p is not None else scores


@pytest.mark.parametrize("top_k,top_p,temperature", [(50, 0.95, 1.0), (5, 0.5, 0.7), (40, None, 1.3), (1, 0.9, 1.0)])
def test_topk_topp_matches_hf_warpers(top_k: int, top_p: float | None, temperature: float) -> None:
    scores = torch.randn(6, 1000, generator=torch.Generator().manual_seed(0)) * 3
    fast = TopKTopP(top_k, top_p, temperature)(None, scores.clone())
    assert torch.equal(torch.isinf(fast), torch.isinf(hf_chain(scores.clone(), top_k, top_p, temperature)))
    assert torch.equal(fast, hf_chain(scores.clone(), top_k, top_p, temperature))


def test_ties_at_kth_logit_follow_hf() -> None:
    scores = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0, 0.0]])
    assert torch.equal(TopKTopP(2, 0.99, 1.0)(None, scores.clone()), hf_chain(scores.clone(), 2, 0.99, 1.0))


@pytest.mark.parametrize("top_k,top_p,temperature", [(50, 0.95, 1.0), (8, 0.6, 0.8)])
def test_generate_same_rows_as_hf_sampling(gen: LabelGenerator, top_k: int, top_p: float, temperature: float) -> None:
    config = GenerateConfig(n=6, max_new_tokens=12, top_k=top_k, top_p=top_p, temperature=temperature)
    ids, mask = gen.prompt_ids([""] * 6)
    outs = []
    for kwargs in (sampling_kwargs(config), {"temperature": temperature, "top_k": top_k, "top_p": top_p}):
        with torch.random.fork_rng():
            torch.manual_seed(7)
            outs.append(gen.model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=12,
                                           eos_token_id=gen.tokenizer.eos_token_id,
                                           pad_token_id=gen.tokenizer.pad_token_id, **kwargs))
    assert torch.equal(outs[0], outs[1])


def test_rows_reproducible_for_seed_and_batch_size(gen: LabelGenerator) -> None:
    config = GenerateConfig(n=5, batch_size=2, max_new_tokens=6, seed=3, min_chars=0)
    first = [r["text"] for r in sharded_rows(gen, config, [], LocalComm())]
    again = [r["text"] for r in sharded_rows(gen, config, [], LocalComm())]
    assert first == again and len(first) >= 5


def test_eos_stops_rows_and_batch(gen: LabelGenerator) -> None:
    """Finished rows are padded after EOS, and the batch stops once every row has finished."""
    eos = gen.tokenizer.eos_token_id
    ids, mask = gen.prompt_ids([""] * 3)
    model = gen.model
    calls = []
    original = model.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        step = len(calls)
        calls.append(step)
        out.logits[:, -1, eos] = -1e9
        for row in range(out.logits.shape[0]):
            if step == row:
                out.logits[row, -1] = -1e9
                out.logits[row, -1, eos] = 1e9
        return out

    config = GenerateConfig(n=3, max_new_tokens=40, top_k=50, top_p=0.95)
    model.forward = forward
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=40,
                                 eos_token_id=eos, pad_token_id=eos, **sampling_kwargs(config))
    finally:
        del model.forward
    new = out[:, ids.shape[1]:]
    assert new.shape[1] == 3 < 40  # the last row ends at step 3: the batch stops there
    for row in range(3):
        assert new[row, row].item() == eos
        assert (new[row, row:] == eos).all()  # padded (pad == EOS) after its end


def test_auto_batch_size_cpu_is_bounded(gen: LabelGenerator) -> None:
    size = auto_batch_size(gen.model, gen.place, 80)
    assert 1 <= size <= 64
