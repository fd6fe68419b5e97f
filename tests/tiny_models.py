"""Tiny random models of the architectures users point the product at, with the GPT-2 tokenizer the project ships."""

from __future__ import annotations

from pathlib import Path

import torch

from augment.models import write_gpt2_tokenizer

EOS = 50256


CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def _seeded(seed: int, make):
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return make()
    finally:
        torch.random.set_rng_state(state)


def build_tiny(dest: Path, arch: str, sliding_window: int = 8, seed: int = 0, layers: int = 3, tied: bool = False,
               positions: int = 512) -> Path:
    """``qwen2``: grouped-query attention, RoPE, q/k/v biases, an untied head (``tied`` ties it); ``gemma3``:
    sliding-window and full layers, one KV head, a tied head. Width 64; the GPT-2 vocabulary (50,257)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen2Config, Qwen2ForCausalLM

    common = dict(vocab_size=50257, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                  num_attention_heads=4, max_position_embeddings=positions, bos_token_id=EOS, eos_token_id=EOS,
                  pad_token_id=EOS)

    def make():
        if arch == "qwen2":
            return Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=2, tie_word_embeddings=tied, **common))
        if arch == "gemma3":
            return Gemma3ForCausalLM(Gemma3TextConfig(num_key_value_heads=1, head_dim=16, sliding_window=sliding_window,
                                                      layer_types=(["sliding_attention"] * (layers - 1)
                                                                   + ["full_attention"]), **common))
        raise ValueError(f"unknown tiny architecture {arch}")

    model = _seeded(seed, make)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    write_gpt2_tokenizer(dest, positions)
    return dest


def build_tiny_chat_qwen2(dest: Path, template: str = CHATML, turn: tuple[str, str] = ("<|im_start|>", "<|im_end|>"),
                          seed: int = 0, hidden: int = 64, positions: int = 1024) -> Path:
    """A random 2-layer Qwen2 (grouped-query attention, untied head) with the shipped GPT-2 BPE, two added
    chat tokens, and ``template`` as its chat template; EOS ends a turn, as in Qwen2.5-Instruct."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    write_gpt2_tokenizer(dest, positions)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    tokenizer.add_special_tokens({"additional_special_tokens": list(turn)})
    tokenizer.eos_token = turn[1]
    tokenizer.chat_template = template
    tokenizer.save_pretrained(dest)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=positions, tie_word_embeddings=False,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id)
    _seeded(seed, lambda: Qwen2ForCausalLM(config)).save_pretrained(dest)
    return dest
