"""The decode loop on Qwen2- and Gemma3-shaped models: step logits equal a full forward pass at every
position (past Gemma's sliding window too), and rows do not depend on the slot count."""

from __future__ import annotations


import pytest
import torch

from augment.config import GenerateConfig
from augment.generate.loop import decode_rows
from augment.generate import LabelGenerator
from augment.generate.sampler import num_layers, ring_cache, set_column, slot_masks, step
from augment.rundir import RunDir
from tests.conftest import train_run
from tests.tiny_models import build_tiny

ARCHS = ["qwen2", "gemma3"]
CONFIG = GenerateConfig(n=12, max_new_tokens=20, seed=3, min_chars=0)


@pytest.fixture(scope="module", params=ARCHS)
def gen(request, tweets, tmp_path_factory: pytest.TempPathFactory) -> LabelGenerator:
    root = tmp_path_factory.mktemp(request.param)
    run = train_run(build_tiny(root / "model", request.param), tweets, root / "run", max_steps=3)
    return LabelGenerator.load(RunDir(run), "pos", precision="fp32")


def test_step_logits_are_the_full_forward_logits_past_the_sliding_window(gen: LabelGenerator) -> None:
    """Three rows of 14 tokens starting at steps 0, 2 and 5 share a ring of width 16 (the window is 8)."""
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, 50000, (14,), generator=g).tolist() for _ in range(3)]
    start = torch.tensor([0, 2, 5])
    width = 16
    cache = ring_cache(num_layers(gen.model), width)
    written = torch.full((width,), -1)
    for now in range(19):
        written[now % width] = now
        set_column(cache, now % width)
        offsets = (now - start).clamp(min=0, max=13)
        tokens = torch.tensor([s[o] for s, o in zip(seqs, offsets.tolist())])
        logits = step(gen.model, cache, tokens, offsets, slot_masks(gen.model, written, start, now))
        for row, s in enumerate(seqs):
            t = now - int(start[row])
            if 0 <= t < len(s):
                with torch.inference_mode():
                    full = gen.model(input_ids=torch.tensor([s[: t + 1]])).logits[0, -1]
                assert torch.allclose(logits[row], full, atol=1e-4), (row, t)


@pytest.mark.parametrize("slots", [1, 5])
def test_rows_do_not_depend_on_the_slot_count(gen: LabelGenerator, slots: int) -> None:
    jobs = [(i, gen.prompt(["", "so", "awful day"][i % 3])) for i in range(10)]
    assert dict(decode_rows(gen, CONFIG, jobs, slots)) == dict(decode_rows(gen, CONFIG, jobs, 10))


def test_an_unknown_attention_type_is_refused(gen: LabelGenerator, monkeypatch) -> None:
    monkeypatch.setattr(gen.model.config, "layer_types", ["chunked_attention"] * 3, raising=False)
    with pytest.raises(Exception, match="attention type chunked_attention is not supported"):
        slot_masks(gen.model, torch.zeros(4, dtype=torch.long), torch.zeros(2, dtype=torch.long), 0)


def test_a_slot_is_sized_by_the_models_own_key_value_heads_and_head_width(gen: LabelGenerator, monkeypatch) -> None:
    """Gemma 3's heads are wider than hidden / heads (270M: 256 against 160): the KV window must use them."""
    from augment.generate.loop import _row_bytes

    cfg = gen.model.config
    monkeypatch.setattr(cfg, "head_dim", 2 * cfg.hidden_size // cfg.num_attention_heads, raising=False)
    kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 10 * 4   # fp32, 10 columns
    assert _row_bytes(gen.model, 10) == kv + cfg.vocab_size * 4 * 6
