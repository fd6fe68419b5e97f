"""A tiny Qwen2-shaped chat model (random weights, the vendored GPT-2 tokenizer plus ChatML turn tokens)."""

from __future__ import annotations

from pathlib import Path

import torch

from augment.models import write_gpt2_tokenizer

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_tiny_chat_model(dest: Path, seed: int = 0) -> Path:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    write_gpt2_tokenizer(dest, 512)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(dest)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.save_pretrained(dest)
    return dest
