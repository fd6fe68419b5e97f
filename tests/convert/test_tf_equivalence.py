"""Against TensorFlow itself: gpt-2-simple's own graph and Saver, each run in a child process.

The book's route end to end: a tiny gpt-2-simple model initialised by
``model.model()`` + Saver, ``gpt2.finetune`` for 3 steps offline on a text
file, a ``copy_checkpoint_to_gdrive``-style tar, conversion, equal logits,
HF generation. And back: HF -> gpt-2-simple, restored and re-saved by TF.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from augment.convert import gpt2simple_to_hf, hf_to_gpt2simple
from augment.convert import tensorbundle as tb

from augment.tf_child import run_task

# find_spec, not importorskip: importing gpt_2_simple would switch off eager execution for this whole process.
HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "gpt_2_simple"))
pytestmark = [pytest.mark.tf, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_TF, reason="needs the tf extra (pip install 'augment[tf]')")]

HPARAMS = {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 64, "n_head": 2, "n_layer": 2}
TOLERANCE = 1e-4
IDS = np.array([[15496, 11, 616, 3290, 318, 13779, 13, 50256, 464, 2068, 7586, 21831]], dtype=np.int64)
TEXT = "".join(f"Chapter {i}. It was the best of times, it was the worst of times; the dog is cute.\n"
               for i in range(120))


def _tf_logits(model_dir: Path, checkpoint: Path, tmp: Path, resave_to: Path | None = None) -> np.ndarray:
    np.save(tmp / "ids.npy", IDS, allow_pickle=False)
    spec = {"model_dir": str(model_dir), "checkpoint": str(checkpoint), "ids": str(tmp / "ids.npy"),
            "out": str(tmp / "logits.npy"), "resave_to": str(resave_to) if resave_to else None}
    run_task("logits", spec, log_path=tmp / "tf.log")
    return np.load(tmp / "logits.npy", allow_pickle=False)


def _pt_logits(model_dir: Path) -> np.ndarray:
    from transformers import GPT2LMHeadModel

    with torch.inference_mode():
        return GPT2LMHeadModel.from_pretrained(model_dir).eval()(torch.from_numpy(IDS)).logits.numpy()


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cwd-style layout as in the book: models/tiny, checkpoint/run1 after gpt2.finetune(steps=3)."""
    root = tmp_path_factory.mktemp("book")
    run_task("init", {"dest": str(root / "models" / "tiny"), "hparams": HPARAMS, "seed": 1}, log_path=root / "tf.log")
    (root / "text.txt").write_text(TEXT)
    spec = {"dataset": str(root / "text.txt"), "steps": 3, "model_name": "tiny", "model_dir": str(root / "models"),
            "batch_size": 1, "learning_rate": 1e-3, "accumulate_gradients": 1, "restore_from": "latest",
            "run_name": "run1", "checkpoint_dir": str(root / "checkpoint"), "save_every": 1000,
            "max_checkpoints": 1, "seed": 0}
    result = run_task("finetune", spec, log_path=root / "tf.log", cwd=root)
    assert [s for s, _ in result["losses"]] == [1, 2, 3]
    return root


def test_tf_written_checkpoint_is_rewritten_byte_identically(finetuned: Path, tmp_path: Path) -> None:
    prefix = finetuned / "models" / "tiny" / "model.ckpt"
    tb.write_bundle(tmp_path / "copy", tb.read_bundle(prefix))
    assert (tmp_path / "copy.index").read_bytes() == Path(f"{prefix}.index").read_bytes()
    assert (tmp_path / "copy.data-00000-of-00001").read_bytes() == \
        Path(f"{prefix}.data-00000-of-00001").read_bytes()


def test_finetuned_checkpoint_converts_with_equal_logits(finetuned: Path, tmp_path: Path) -> None:
    run = finetuned / "checkpoint" / "run1"
    assert (run / "counter").read_text().strip() == "3"
    out = gpt2simple_to_hf(run, tmp_path / "hf")
    tf_logits = _tf_logits(run, run / "model-3", tmp_path)
    diff = float(np.abs(tf_logits - _pt_logits(out)).max())
    print(f"max |logit| difference TF vs PyTorch after finetune: {diff:.3g}")
    assert diff < TOLERANCE
    base = tb.read_bundle(finetuned / "models" / "tiny" / "model.ckpt", ["model/wte"])["model/wte"]
    tuned = tb.read_bundle(run / "model-3", ["model/wte"])["model/wte"]
    assert np.abs(base - tuned).max() > 1e-4  # the 3 steps really changed the weights


def test_gdrive_tar_converts_and_generates(finetuned: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    archive = tmp_path / "checkpoint_run1.tar"
    cwd = os.getcwd()
    try:
        os.chdir(finetuned)
        with tarfile.open(archive, "w") as tar:  # exactly what copy_checkpoint_to_gdrive does
            tar.add(os.path.join("checkpoint", "run1"))
    finally:
        os.chdir(cwd)
    out = gpt2simple_to_hf(archive, tmp_path / "hf")
    assert json.loads((out / "conversion.json").read_text())["checkpoint"] == "model-3"
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = GPT2LMHeadModel.from_pretrained(out).eval()
    prompt = tokenizer("It was the best of times", return_tensors="pt")
    with torch.inference_mode():
        generated = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=50256)
    assert generated.shape == (1, prompt.input_ids.shape[1] + 8)
    assert isinstance(tokenizer.decode(generated[0]), str)


def test_reverse_is_read_by_tensorflow_and_roundtrips_bit_exact(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    g2s = hf_to_gpt2simple(tiny_model_dir, tmp_path / "g2s")
    tf_logits = _tf_logits(g2s, g2s / "model.ckpt", tmp_path, resave_to=tmp_path / "resaved")
    diff = float(np.abs(tf_logits - _pt_logits(tiny_model_dir)).max())
    print(f"max |logit| difference TF vs PyTorch, reverse conversion: {diff:.3g}")
    assert diff < TOLERANCE
    resaved = tmp_path / "resaved" / "model.ckpt"
    assert Path(f"{resaved}.index").read_bytes() == (g2s / "model.ckpt.index").read_bytes()
    for name in ("hparams.json", "encoder.json", "vocab.bpe"):
        (tmp_path / "resaved" / name).write_bytes((g2s / name).read_bytes())
    back = gpt2simple_to_hf(tmp_path / "resaved", tmp_path / "hf")
    before, after = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(back / "model.safetensors"))
    assert all(np.array_equal(after[k], before[k]) for k in after)
