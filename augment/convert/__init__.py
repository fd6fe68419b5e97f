"""Convert GPT-2 between gpt-2-simple (TensorFlow checkpoints) and Hugging Face directories.

TF -> HF: a gpt-2-simple run dir (``checkpoint/run1``), an OpenAI model dir
(``models/124M``) or an archive of either (``run1.tar.gz``). The checkpoint is
read with the TensorFlow-free reader in ``tensorbundle``. HF -> TF writes a
dir gpt-2-simple can ``load_gpt2`` and ``finetune`` from, also without
TensorFlow (the bundle writer produces the bytes TF's Saver would).

Outputs are written through ``atomic_dir``: a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from augment.convert import tensorbundle
from augment.convert.archive import find_model_dirs, is_archive, safe_extract
from augment.convert.gpt2_tf import (ConversionError, HParams, check_tf_shapes, config_to_hparams, hf_to_tf,
                                     hparams_to_config_kwargs, name_map, tf_to_hf)
from augment.errors import AugmentError
from augment.files import atomic_dir, provenance

log = logging.getLogger(__name__)

__all__ = ["ConversionError", "HParams", "gpt2simple_to_hf", "hf_to_gpt2simple", "find_checkpoint",
           "source_dir", "is_gpt2simple_dir", "write_hf_model", "read_hf"]

CHECKPOINT_LINE = re.compile(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"\s*$', re.MULTILINE)
STEP_SUFFIX = re.compile(r"-(\d+)$")


def is_gpt2simple_dir(path: Path) -> bool:
    return path.is_dir() and (path / "hparams.json").is_file() and any(path.glob("*.index"))


@contextlib.contextmanager
def source_dir(src: Path) -> Iterator[Path]:
    """The checkpoint dir ``src`` names; archives are extracted (safely) into a temp dir for the block."""
    src = Path(src)
    if src.is_dir():
        yield src
        return
    if not src.exists():
        raise AugmentError(f"{src}: not found")
    if not is_archive(src):
        raise AugmentError(f"{src}: expected a gpt-2-simple checkpoint dir or a .tar/.tar.gz archive of one")
    with tempfile.TemporaryDirectory(prefix="augment-extract-") as tmp:
        safe_extract(src, Path(tmp))
        found = find_model_dirs(Path(tmp))
        if len(found) != 1:
            names = ", ".join(str(d.relative_to(tmp)) for d in found) or "none"
            raise AugmentError(f"{src}: expected one checkpoint dir (hparams.json + *.index) in the archive, "
                               f"found {names}")
        yield found[0]


def _available_steps(model_dir: Path) -> dict[str, Path]:
    return {p.name[:-len(".index")]: p.with_suffix("") for p in sorted(model_dir.glob("*.index"))}


def find_checkpoint(model_dir: Path, step: int | None = None) -> Path:
    """The checkpoint prefix to read: ``model-STEP`` if asked, else the one the ``checkpoint`` file names."""
    available = _available_steps(model_dir)
    if not available:
        raise AugmentError(f"{model_dir}: no checkpoint (*.index) found")
    if step is not None:
        name = f"model-{step}"
        if name not in available:
            raise AugmentError(f"{model_dir}: no checkpoint for step {step}; available: {', '.join(available)}")
        return available[name]
    state = model_dir / "checkpoint"
    if state.is_file() and (match := CHECKPOINT_LINE.search(state.read_text(encoding="utf-8", errors="replace"))):
        name = Path(match[1].replace('\\"', '"')).name  # Colab runs record absolute /content/... paths
        if name in available:
            return available[name]
        log.warning("%s names %s, which is not here; using the newest checkpoint instead", state, name)
    return max(available.values(), key=_step_of)


def _step_of(prefix: Path) -> int:
    match = STEP_SUFFIX.search(prefix.name)
    return int(match[1]) if match else -1


def read_gpt2simple(model_dir: Path, step: int | None = None) -> tuple[HParams, dict[str, np.ndarray], Path]:
    """(hparams, HF state dict, checkpoint prefix); shapes are checked before any weight is read."""
    hp = HParams.from_json(model_dir / "hparams.json")
    prefix = find_checkpoint(model_dir, step)
    num_shards, entries = tensorbundle.read_index(prefix)
    source = f"{prefix}.index"
    check_tf_shapes({n: e.shape for n, e in entries.items()}, hp, source)
    names = [tf for tf, _ in name_map(hp)]
    tensors = {n: tensorbundle.read_tensor(prefix, entries[n], num_shards) for n in names}
    return hp, tf_to_hf(tensors, hp, source), prefix


def _copy_tokenizer_from_tf(model_dir: Path, dest: Path, hp: HParams) -> None:
    """encoder.json -> vocab.json and vocab.bpe -> merges.txt: the same files under HF's names."""
    from augment.models import gpt2_tokenizer_files, write_gpt2_tokenizer_config

    pairs = {"encoder.json": "vocab.json", "vocab.bpe": "merges.txt"}
    if all((model_dir / n).is_file() for n in pairs):
        for tf_name, hf_name in pairs.items():
            shutil.copyfile(model_dir / tf_name, dest / hf_name)
    elif hp.n_vocab == 50257:
        log.warning("%s: no encoder.json/vocab.bpe; using the standard GPT-2 files (identical to OpenAI's)", model_dir)
        for hf_name in pairs.values():
            shutil.copyfile(gpt2_tokenizer_files() / hf_name, dest / hf_name)
    else:
        raise AugmentError(f"{model_dir}: encoder.json and vocab.bpe missing, and n_vocab={hp.n_vocab} is not "
                           "GPT-2's 50257, so the tokenizer cannot be guessed")
    write_gpt2_tokenizer_config(dest, hp.n_ctx)


def save_hf(state: dict[str, np.ndarray], hp: HParams, dest: Path) -> None:
    """A directory ``GPT2LMHeadModel.from_pretrained`` loads (strict: every weight must be used)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(**hparams_to_config_kwargs(hp)))
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise ConversionError(f"internal: state dict mismatch (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    model.save_pretrained(dest)


def write_hf_model(model_dir: Path, dest: Path, step: int | None = None, source: str | None = None) -> Path:
    """Convert the checkpoint in ``model_dir`` into the existing, empty dir ``dest``; returns the prefix read."""
    hp, state, prefix = read_gpt2simple(model_dir, step)
    save_hf(state, hp, dest)
    _copy_tokenizer_from_tf(model_dir, dest, hp)
    record = provenance(None, source=source or str(model_dir), checkpoint=prefix.name,
                        hparams=json.loads(hp.to_json()))
    (dest / "conversion.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return prefix


def gpt2simple_to_hf(src: Path, out: Path, step: int | None = None, overwrite: bool = False) -> Path:
    """Convert a gpt-2-simple checkpoint dir or archive into a Hugging Face model dir at ``out``."""
    out = Path(out)
    with source_dir(Path(src)) as model_dir, atomic_dir(out, overwrite=overwrite) as tmp:
        prefix = write_hf_model(model_dir, tmp, step, source=str(src))
    log.info("converted %s (%s) to %s", src, prefix.name, out)
    return out


def read_hf(src: Path) -> tuple[HParams, dict[str, np.ndarray]]:
    """(hparams, state dict as float32 numpy) of a HF GPT-2 dir, read from safetensors (never pickles)."""
    import torch
    from safetensors import safe_open

    src = Path(src)
    if not (src / "config.json").is_file():
        raise AugmentError(f"{src}: not a Hugging Face model dir (no config.json)")
    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise AugmentError(f"{src}: no *.safetensors weights (pickled .bin weights are not read)")
    hp = config_to_hparams(json.loads((src / "config.json").read_text()), f"{src / 'config.json'}")
    state = {}
    for file in files:
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                tensor = fh.get_tensor(key)
                if tensor.dtype != torch.float32:
                    log.warning("%s: %s is %s; gpt-2-simple needs float32, converting", file.name, key, tensor.dtype)
                state[key] = tensor.float().numpy()
    return hp, state


def _copy_tokenizer_to_tf(src: Path, dest: Path, hp: HParams) -> None:
    from augment.models import gpt2_tokenizer_files

    pairs = {"vocab.json": "encoder.json", "merges.txt": "vocab.bpe"}
    origin = src if all((src / n).is_file() for n in pairs) else None
    if origin is None:
        if hp.n_vocab != 50257:
            raise AugmentError(f"{src}: vocab.json/merges.txt missing; gpt-2-simple needs the BPE files")
        log.warning("%s: no vocab.json/merges.txt; writing the standard GPT-2 files", src)
        origin = gpt2_tokenizer_files()
    for hf_name, tf_name in pairs.items():
        shutil.copyfile(origin / hf_name, dest / tf_name)


def hf_to_gpt2simple(src: Path, out: Path, overwrite: bool = False) -> Path:
    """Write a gpt-2-simple model dir (``hparams.json``, BPE files, ``model.ckpt.*``, ``checkpoint``)."""
    src, out = Path(src), Path(out)
    hp, state = read_hf(src)
    variables = hf_to_tf(state, hp, str(src))
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "hparams.json").write_text(hp.to_json())
        _copy_tokenizer_to_tf(src, tmp, hp)
        tensorbundle.write_bundle(tmp / "model.ckpt", variables)
        (tmp / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n'
                                        'all_model_checkpoint_paths: "model.ckpt"\n')
    log.info("wrote gpt-2-simple model dir %s", out)
    return out
