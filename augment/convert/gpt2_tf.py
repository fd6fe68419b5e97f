"""The GPT-2 weight map between gpt-2-simple (OpenAI TF) and Hugging Face ``GPT2LMHeadModel``.

Pure functions on dicts of numpy arrays: no files, no TensorFlow, no torch.
The map is explicit and every tensor's shape is checked against the shape
the hparams imply, so a checkpoint that disagrees with its ``hparams.json``
fails naming the variable and both shapes instead of loading garbage.

TF's convolution weights are ``[1, nx, nf]`` and HF's ``Conv1D`` holds
``[nx, nf]``: the only change is a squeeze, never a transpose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augment.errors import AugmentError

TF_PREFIX = "model/"
CONV_WEIGHTS = ("attn/c_attn/w", "attn/c_proj/w", "mlp/c_fc/w", "mlp/c_proj/w")
# Names TF training adds beside the model's variables: optimizer slots, step counters.
NOT_WEIGHTS = re.compile(r"(^|/)(Adam(_\d+)?|Momentum|beta[12]_power(_\d+)?|global_step|accum[^/]*)(:0)?$")
GELU_TANH = ("gelu_new", "gelu_pytorch_tanh")


class ConversionError(AugmentError):
    """Weights and hyper-parameters do not describe the same GPT-2."""


@dataclass(frozen=True)
class HParams:
    """gpt-2-simple's ``hparams.json``."""

    n_vocab: int
    n_ctx: int
    n_embd: int
    n_head: int
    n_layer: int

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConversionError(f"hparams: {key} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConversionError(f"hparams: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")

    @classmethod
    def from_json(cls, path: Path) -> HParams:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConversionError(f"{path}: not found; a gpt-2-simple model dir needs hparams.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConversionError(f"{path}: not valid JSON ({exc})") from None
        missing = [k for k in ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer") if k not in raw]
        if missing:
            raise ConversionError(f"{path}: missing {', '.join(missing)}")
        try:
            return cls(**{k: raw[k] for k in ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer")})
        except ConversionError as exc:
            raise ConversionError(f"{path}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def hparams_to_config_kwargs(hp: HParams) -> dict[str, Any]:
    """GPT2Config arguments that reproduce gpt-2-simple's model exactly (tanh GELU, eps 1e-5, tied head)."""
    eos = 50256 if hp.n_vocab > 50256 else None
    return {"vocab_size": hp.n_vocab, "n_positions": hp.n_ctx, "n_embd": hp.n_embd, "n_head": hp.n_head,
            "n_layer": hp.n_layer, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "tie_word_embeddings": True, "bos_token_id": eos, "eos_token_id": eos}


def config_to_hparams(config: Mapping[str, Any], source: str) -> HParams:
    """hparams for a HF GPT-2 config; refuses settings gpt-2-simple's graph cannot express."""
    if config.get("model_type") != "gpt2":
        raise ConversionError(f"{source}: model_type is {config.get('model_type')!r}; only GPT-2 converts to gpt-2-simple")
    n_embd = config.get("n_embd")
    checks = {"activation_function": (config.get("activation_function", "gelu_new") in GELU_TANH, "gelu_new"),
              "layer_norm_epsilon": (abs(config.get("layer_norm_epsilon", 1e-5) - 1e-5) < 1e-12, 1e-5),
              "n_inner": (config.get("n_inner") in (None, 4 * (n_embd or 0)), None),
              "scale_attn_by_inverse_layer_idx": (not config.get("scale_attn_by_inverse_layer_idx"), False),
              "tie_word_embeddings": (config.get("tie_word_embeddings", True), True)}
    for key, (ok, expected) in checks.items():
        if not ok:
            raise ConversionError(f"{source}: {key}={config.get(key)!r}, but gpt-2-simple's model needs {expected!r}")
    try:
        return HParams(config.get("vocab_size"), config.get("n_positions"), n_embd, config.get("n_head"),
                       config.get("n_layer"))
    except ConversionError as exc:
        raise ConversionError(f"{source}: {exc}") from None


def name_map(hp: HParams) -> list[tuple[str, str]]:
    """(TF variable, HF parameter) pairs, in model order."""
    pairs = [("model/wte", "transformer.wte.weight"), ("model/wpe", "transformer.wpe.weight")]
    for i in range(hp.n_layer):
        for part in ("ln_1", "attn/c_attn", "attn/c_proj", "ln_2", "mlp/c_fc", "mlp/c_proj"):
            hf_part = part.replace("/", ".")
            if part.startswith("ln_"):
                pairs += [(f"model/h{i}/{part}/g", f"transformer.h.{i}.{hf_part}.weight"),
                          (f"model/h{i}/{part}/b", f"transformer.h.{i}.{hf_part}.bias")]
            else:
                pairs += [(f"model/h{i}/{part}/w", f"transformer.h.{i}.{hf_part}.weight"),
                          (f"model/h{i}/{part}/b", f"transformer.h.{i}.{hf_part}.bias")]
    return pairs + [("model/ln_f/g", "transformer.ln_f.weight"), ("model/ln_f/b", "transformer.ln_f.bias")]


def tf_shapes(hp: HParams) -> dict[str, tuple[int, ...]]:
    """The shape gpt-2-simple's ``model.model()`` gives every variable for these hparams."""
    e = hp.n_embd
    shapes: dict[str, tuple[int, ...]] = {"model/wte": (hp.n_vocab, e), "model/wpe": (hp.n_ctx, e),
                                          "model/ln_f/g": (e,), "model/ln_f/b": (e,)}
    for i in range(hp.n_layer):
        h = f"model/h{i}"
        shapes.update({f"{h}/ln_1/g": (e,), f"{h}/ln_1/b": (e,), f"{h}/ln_2/g": (e,), f"{h}/ln_2/b": (e,),
                       f"{h}/attn/c_attn/w": (1, e, 3 * e), f"{h}/attn/c_attn/b": (3 * e,),
                       f"{h}/attn/c_proj/w": (1, e, e), f"{h}/attn/c_proj/b": (e,),
                       f"{h}/mlp/c_fc/w": (1, e, 4 * e), f"{h}/mlp/c_fc/b": (4 * e,),
                       f"{h}/mlp/c_proj/w": (1, 4 * e, e), f"{h}/mlp/c_proj/b": (e,)})
    return shapes


def _is_conv(tf_name: str) -> bool:
    return tf_name.endswith(CONV_WEIGHTS)


def hf_shape(tf_name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[1:] if _is_conv(tf_name) else shape


def is_model_variable(name: str) -> bool:
    """True for gpt-2-simple model weights; False for optimizer slots and counters."""
    return name.startswith(TF_PREFIX) and not NOT_WEIGHTS.search(name)


def check_tf_shapes(shapes: Mapping[str, tuple[int, ...]], hp: HParams, source: str) -> None:
    """Every expected variable present with its expected shape, and no model variable left over."""
    expected = tf_shapes(hp)
    for name, want in expected.items():
        if name not in shapes:
            raise ConversionError(f"{source}: variable {name} missing from the checkpoint (expected shape "
                                  f"{list(want)} for {_describe(hp)})")
        if tuple(shapes[name]) != want:
            raise ConversionError(f"{source}: variable {name} has shape {list(shapes[name])} but hparams.json "
                                  f"({_describe(hp)}) implies {list(want)}")
    extra = sorted(n for n in shapes if is_model_variable(n) and n not in expected)
    if extra:
        raise ConversionError(f"{source}: variable {extra[0]} {list(shapes[extra[0]])} is not part of a GPT-2 "
                              f"with {_describe(hp)}; hparams.json disagrees with the weights")


def _describe(hp: HParams) -> str:
    return ", ".join(f"{k}={v}" for k, v in asdict(hp).items())


def tf_to_hf(tensors: Mapping[str, np.ndarray], hp: HParams, source: str = "checkpoint") -> dict[str, np.ndarray]:
    """gpt-2-simple variables -> HF ``GPT2LMHeadModel`` state dict (tied ``lm_head.weight`` included)."""
    check_tf_shapes({n: tuple(a.shape) for n, a in tensors.items()}, hp, source)
    state = {}
    for tf_name, hf_name in name_map(hp):
        array = np.asarray(tensors[tf_name], dtype=np.float32)
        state[hf_name] = array[0] if _is_conv(tf_name) else array
        assert state[hf_name].shape == hf_shape(tf_name, tf_shapes(hp)[tf_name]), tf_name
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def normalise_hf_names(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Accept ``GPT2Model`` checkpoints too (no ``transformer.`` prefix); drop non-persistent buffers."""
    out = {}
    for name, array in state.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        out[name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}"] = array
    return out


def hf_to_tf(state: Mapping[str, np.ndarray], hp: HParams, source: str = "model") -> dict[str, np.ndarray]:
    """HF GPT-2 state dict -> gpt-2-simple variables; conv weights get their leading axis of 1 back."""
    state = normalise_hf_names(state)
    expected = tf_shapes(hp)
    known = {hf for _, hf in name_map(hp)} | {"lm_head.weight"}
    extra = sorted(set(state) - known)
    if extra:
        raise ConversionError(f"{source}: parameter {extra[0]} {list(state[extra[0]].shape)} is not part of a "
                              f"GPT-2 with {_describe(hp)}; config.json disagrees with the weights")
    out = {}
    for tf_name, hf_name in name_map(hp):
        want = hf_shape(tf_name, expected[tf_name])
        if hf_name not in state:
            raise ConversionError(f"{source}: parameter {hf_name} missing (expected shape {list(want)})")
        array = np.asarray(state[hf_name], dtype=np.float32)
        if tuple(array.shape) != want:
            raise ConversionError(f"{source}: parameter {hf_name} has shape {list(array.shape)} but config.json "
                                  f"({_describe(hp)}) implies {list(want)}")
        out[tf_name] = array[None] if _is_conv(tf_name) else array
    head = state.get("lm_head.weight")
    if head is not None and not np.array_equal(np.asarray(head, dtype=np.float32), out["model/wte"]):
        raise ConversionError(f"{source}: lm_head.weight differs from transformer.wte.weight; gpt-2-simple "
                              "ties the output layer to the embeddings, so an untied head cannot be converted")
    return out
