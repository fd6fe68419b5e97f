"""Tiny random models of the architectures users point the product at, with the GPT-2 tokenizer the project ships."""

from __future__ import annotations

from pathlib import Path

import torch

from augment.models import write_gpt2_tokenizer

EOS = 50256


def build_tiny(dest: Path, arch: str, sliding_window: int = 8, seed: int = 0) -> Path:
    """``qwen2``: grouped-query attention, RoPE, q/k/v biases, an untied head; ``gemma3``: sliding-window and
    full layers, one KV head, a tied head. Width 64, 3 layers; the GPT-2 vocabulary (50,257)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen2Config, Qwen2ForCausalLM

    common = dict(vocab_size=50257, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                  max_position_embeddings=512, bos_token_id=EOS, eos_token_id=EOS, pad_token_id=EOS)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        if arch == "qwen2":
            model = Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=2, tie_word_embeddings=False, **common))
        elif arch == "gemma3":
            model = Gemma3ForCausalLM(Gemma3TextConfig(num_key_value_heads=1, head_dim=16, sliding_window=sliding_window,
                                                       layer_types=["sliding_attention", "sliding_attention",
                                                                    "full_attention"], **common))
        else:
            raise ValueError(f"unknown tiny architecture {arch}")
    finally:
        torch.random.set_rng_state(state)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    write_gpt2_tokenizer(dest, 512)
    return dest
