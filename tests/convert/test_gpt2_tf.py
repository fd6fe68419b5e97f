"""The explicit GPT-2 name map, shape checks, hparams <-> config, and HF -> gpt-2-simple -> HF (no TensorFlow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from augment.convert import find_checkpoint, gpt2simple_to_hf, hf_to_gpt2simple, read_gpt2simple
from augment.convert import tensorbundle as tb
from augment.convert.gpt2_tf import (ConversionError, HParams, config_to_hparams, hf_to_tf, is_model_variable,
                                     name_map, tf_shapes, tf_to_hf)
from augment.errors import AugmentError

HP = HParams(n_vocab=50257, n_ctx=1024, n_embd=64, n_head=2, n_layer=2)


def _hf_weights(model_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(model_dir / "model.safetensors"))


def test_name_map_covers_every_hf_parameter(tiny_model_dir: Path) -> None:
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(tiny_model_dir)
    hf_names = {n for n, _ in model.named_parameters()} - {"lm_head.weight"}
    assert {hf for _, hf in name_map(HP)} == hf_names
    shapes = tf_shapes(HP)
    params = dict(model.named_parameters())
    for tf_name, hf_name in name_map(HP):
        tf_shape = shapes[tf_name]
        assert tuple(params[hf_name].shape) == (tf_shape[1:] if tf_name.endswith("/w") else tf_shape), tf_name


def test_conv_weights_are_squeezed_not_transposed() -> None:
    rng = np.random.default_rng(0)
    tensors = {n: rng.standard_normal(s).astype(np.float32) for n, s in tf_shapes(HP).items()}
    state = tf_to_hf(tensors, HP)
    w = tensors["model/h0/mlp/c_fc/w"]
    assert np.array_equal(state["transformer.h.0.mlp.c_fc.weight"], w[0])
    assert state["lm_head.weight"] is state["transformer.wte.weight"]
    back = hf_to_tf(state, HP)
    assert all(np.array_equal(back[n], tensors[n]) for n in tensors)


def test_roundtrip_hf_gpt2simple_hf_is_bit_exact(tiny_model_dir: Path, g2s_dir: Path, tmp_path: Path) -> None:
    out = gpt2simple_to_hf(g2s_dir, tmp_path / "hf")
    before, after = _hf_weights(tiny_model_dir), _hf_weights(out)
    assert set(after) == set(before) - {"lm_head.weight"} or set(after) == set(before)
    for name, array in after.items():
        assert array.dtype == before[name].dtype and np.array_equal(array, before[name]), name
    for name in ("vocab.json", "merges.txt"):
        assert (out / name).read_bytes() == (tiny_model_dir / name).read_bytes()


def test_converted_model_loads_and_matches_logits(tiny_model_dir: Path, g2s_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    out = gpt2simple_to_hf(g2s_dir, tmp_path / "hf")
    ids = torch.tensor([[15496, 995, 11, 616, 3290, 318, 13779]])
    with torch.inference_mode():
        a = GPT2LMHeadModel.from_pretrained(tiny_model_dir).eval()(ids).logits
        b = GPT2LMHeadModel.from_pretrained(out).eval()(ids).logits
    assert torch.equal(a, b)
    assert AutoTokenizer.from_pretrained(out)("Hello world").input_ids == [15496, 995]


def test_gpt2simple_dir_layout(g2s_dir: Path) -> None:
    assert json.loads((g2s_dir / "hparams.json").read_text()) == {
        "n_vocab": 50257, "n_ctx": 1024, "n_embd": 64, "n_head": 2, "n_layer": 2}
    assert 'model_checkpoint_path: "model.ckpt"' in (g2s_dir / "checkpoint").read_text()
    assert set(tb.read_index(g2s_dir / "model.ckpt")[1]) == set(tf_shapes(HP))


def _copy(g2s_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(g2s_dir, dest)
    return dest


def test_hparams_disagreeing_with_weights_names_variable_and_shapes(g2s_dir: Path, tmp_path: Path) -> None:
    model = _copy(g2s_dir, tmp_path)
    (model / "hparams.json").write_text(json.dumps({**HP.__dict__, "n_embd": 128}))
    with pytest.raises(ConversionError, match=r"variable model/wte has shape \[50257, 64\] but hparams.json "
                                              r"\(.*n_embd=128.*\) implies \[50257, 128\]"):
        read_gpt2simple(model)


def test_too_few_layers_in_hparams(g2s_dir: Path, tmp_path: Path) -> None:
    model = _copy(g2s_dir, tmp_path)
    (model / "hparams.json").write_text(json.dumps({**HP.__dict__, "n_layer": 1}))
    with pytest.raises(ConversionError, match="variable model/h1/attn/c_attn/b .* is not part of a GPT-2 with .*n_layer=1"):
        read_gpt2simple(model)


def test_missing_variable(g2s_dir: Path, tmp_path: Path) -> None:
    tensors = tb.read_bundle(g2s_dir / "model.ckpt")
    del tensors["model/h1/mlp/c_proj/w"]
    model = _copy(g2s_dir, tmp_path)
    tb.write_bundle(model / "model.ckpt", tensors)
    with pytest.raises(ConversionError, match=r"variable model/h1/mlp/c_proj/w missing .*expected shape \[1, 256, 64\]"):
        read_gpt2simple(model)


def test_optimizer_slots_and_counters_are_skipped(g2s_dir: Path, tmp_path: Path) -> None:
    tensors = tb.read_bundle(g2s_dir / "model.ckpt")
    extra = {"model/wte/Adam": tensors["model/wte"], "model/wte/Adam_1": tensors["model/wte"],
             "beta1_power": np.float32(0.9), "beta2_power": np.float32(0.99), "global_step": np.int64(3)}
    model = _copy(g2s_dir, tmp_path)
    tb.write_bundle(model / "model.ckpt", {**tensors, **extra})
    hp, state, _ = read_gpt2simple(model)
    assert hp == HP and len(state) == len(name_map(HP)) + 1
    assert not any(is_model_variable(n) for n in extra)


def test_find_checkpoint_prefers_checkpoint_file_and_handles_colab_paths(tmp_path: Path) -> None:
    for step in (3, 10, 7):
        (tmp_path / f"model-{step}.index").write_bytes(b"")
    assert find_checkpoint(tmp_path).name == "model-10"
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/content/checkpoint/run1/model-7"\n'
                                         'all_model_checkpoint_paths: "/content/checkpoint/run1/model-7"\n')
    assert find_checkpoint(tmp_path).name == "model-7"
    assert find_checkpoint(tmp_path, step=3).name == "model-3"
    with pytest.raises(AugmentError, match="no checkpoint for step 4; available: model-10, model-3, model-7"):
        find_checkpoint(tmp_path, step=4)


@pytest.mark.parametrize("change, message", [
    ({"activation_function": "relu"}, "activation_function='relu', but gpt-2-simple's model needs 'gelu_new'"),
    ({"tie_word_embeddings": False}, "tie_word_embeddings=False"),
    ({"model_type": "llama"}, "model_type is 'llama'"),
    ({"n_head": 3}, "not divisible by n_head=3"),
])
def test_config_gpt2simple_cannot_express(tiny_model_dir: Path, change: dict, message: str) -> None:
    config = {**json.loads((tiny_model_dir / "config.json").read_text()), **change}
    with pytest.raises(ConversionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_to_hparams(config, "config.json")


def test_untied_head_refused(tiny_model_dir: Path) -> None:
    state = dict(_hf_weights(tiny_model_dir))
    state["lm_head.weight"] = state["transformer.wte.weight"] + 1
    with pytest.raises(ConversionError, match="lm_head.weight differs"):
        hf_to_tf(state, HP)


def test_hf_wrong_shape_names_parameter(tiny_model_dir: Path) -> None:
    state = dict(_hf_weights(tiny_model_dir))
    state["transformer.wpe.weight"] = state["transformer.wpe.weight"][:512]
    with pytest.raises(ConversionError, match=r"transformer.wpe.weight has shape \[512, 64\] .* implies \[1024, 64\]"):
        hf_to_tf(state, HP)


def test_bad_hparams_json(tmp_path: Path) -> None:
    (tmp_path / "hparams.json").write_text('{"n_vocab": 10}')
    with pytest.raises(ConversionError, match="missing n_ctx, n_embd, n_head, n_layer"):
        HParams.from_json(tmp_path / "hparams.json")
    with pytest.raises(ConversionError, match="hparams.json: not found"):
        HParams.from_json(tmp_path / "x" / "hparams.json")


def test_hf_to_gpt2simple_refuses_pickles_only(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "bin"
    src.mkdir()
    shutil.copy(tiny_model_dir / "config.json", src)
    (src / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(AugmentError, match="no \\*.safetensors weights"):
        hf_to_gpt2simple(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
