"""LoRA adapters through peft: which modules, training wrappers, one base serving many adapters, merging.

Fine-tuning (per-label, conditioned, adapt) and generation both sit above this module; it knows nothing
of run directories beyond the typed records in ``augment.rundir``. peft's own pattern is followed:
``get_peft_model`` to train, ``save_pretrained`` writes only the adapter, ``PeftModel.from_pretrained`` +
``load_adapter`` + ``set_adapter`` serve several adapters over one base, ``merge_and_unload`` exports.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from augment.config import FinetuneConfig
from augment.errors import RunDirError
from augment.files import hash_dir
from augment.models import SHORT_NAMES, load_model, resolve_model
from augment.rundir import AdapterRecord, BaseModelRef


def linear_modules(model: Any) -> list[str]:
    """Names (last component) of every linear layer but the output head: ``torch.nn.Linear`` and GPT-2's
    ``Conv1D`` (c_attn, c_proj, c_fc); for Llama, SmolLM2, Qwen2, Gemma3 the q/k/v/o and gate/up/down
    projections. The same rule as peft's ``all-linear``, resolved here so that the run records names."""
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, (torch.nn.Linear, Conv1D)) and module is not head}
    return sorted(names)


def target_modules(config: FinetuneConfig, model: Any) -> list[str]:
    return linear_modules(model) if config.lora_target_modules == "auto" else list(config.lora_target_modules)


def describe_base(name: str, trust_pickle: bool = False) -> BaseModelRef:
    """The base of an adapter run, hashed once: generation refuses a base whose files changed since."""
    path = resolve_model(name, trust_pickle)
    local = Path(path).is_dir()
    return BaseModelRef(model=name, path=str(Path(path).resolve()) if local else path,
                        hash=hash_dir(Path(path)) if local else None)


def adapter_record(config: FinetuneConfig) -> AdapterRecord:
    """The run's adapter settings with ``auto`` resolved on the base's architecture (built on the meta
    device: no weights are read)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    base = describe_base(config.model, config.trust_pickle)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base.path, trust_remote_code=False))
    return AdapterRecord(rank=config.lora_rank, alpha=config.lora_alpha, dropout=config.lora_dropout,
                         target_modules=target_modules(config, skeleton), base=base, peft=metadata.version("peft"))


def fit_vocabulary(model: Any, size: int) -> None:
    """Grow the embeddings to hold added tokens (conditioned mode's label markers); never shrink them, so a
    base whose matrix is padded past its tokenizer (Qwen2) keeps its shape and only the marker rows train."""
    if model.get_input_embeddings().weight.shape[0] < size:
        model.resize_token_embeddings(size, mean_resizing=False)


def with_lora(model: Any, config: FinetuneConfig, token_ids: list[int], vocabulary: int) -> Any:
    """A trainable peft model over the frozen ``model``; ``token_ids`` (label markers) train as whole
    embedding rows (peft's trainable tokens), saved with the adapter instead of the full matrix.

    The adapter's random start (and the new marker rows) come from ``config.seed``, so a resumed or
    repeated run starts where the first did; the caller's RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if token_ids:
            fit_vocabulary(model, vocabulary)
        return _wrap(model, config, token_ids)


def _wrap(model: Any, config: FinetuneConfig, token_ids: list[int]) -> Any:
    from peft import LoraConfig, get_peft_model

    from transformers.pytorch_utils import Conv1D

    targets = target_modules(config, model)
    conv1d = any(isinstance(m, Conv1D) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in targets)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM", fan_in_fan_out=conv1d,
                      trainable_token_indices=list(token_ids) or None)
    with quiet_peft():
        peft_model = get_peft_model(model, lora)
    # Trainer's checkpoints too hold only the adapter: peft would add the whole resized embedding matrix
    peft_model.save_pretrained = functools.partial(peft_model.save_pretrained, save_embedding_layers=False)
    return peft_model


def save_adapter(model: Any, out: Path) -> None:
    """Only the adapter (and marker rows): never the embedding matrix, never peft's hub model card."""
    model.save_pretrained(str(out), save_embedding_layers=False)
    (Path(out) / "README.md").unlink(missing_ok=True)


def base_path(base: BaseModelRef, root: Path, check_hash: bool = True) -> str:
    """Where the base is on this machine: a short name resolves (and is fetched) here, a folder is the one
    recorded; with ``check_hash``, files that changed since training are refused."""
    path = resolve_model(base.model) if base.model in SHORT_NAMES or not Path(base.path).exists() else base.path
    if check_hash and base.hash is not None:
        if not Path(path).is_dir():
            raise RunDirError(f"{root}: the adapters' base {base.model} is not at {path}")
        found = hash_dir(Path(path))
        if found != base.hash:
            raise RunDirError(f"{root}: the adapters' base {path} changed since they were trained (hash "
                              f"{base.hash[:12]}… recorded, {found[:12]}… found); restore it or fine-tune again")
    return path


def load_base(path: str, vocabulary: int, dtype: torch.dtype = torch.float32) -> Any:
    model = load_model(path, dtype=dtype)
    fit_vocabulary(model, vocabulary)
    return model


class AdapterSet:
    """One base in memory and the adapters loaded onto it so far; ``use(name, dir)`` makes one active.

    Adapters stay unmerged (peft adds each LoRA product in the forward pass), so switching never touches
    the base weights and a label's rows do not depend on which labels were generated before it.
    """

    def __init__(self, base: Any):
        self.base = base
        self.peft: Any = None

    @property
    def model(self) -> Any:
        """The transformers model with the LoRA layers inside: what the decode loop calls."""
        return self.base if self.peft is None else self.peft.get_base_model()

    def use(self, name: str, adapter_dir: Path) -> Any:
        from peft import PeftModel

        with quiet_peft():
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.base, str(adapter_dir), adapter_name=name).eval()
            elif name not in self.peft.peft_config:
                self.peft.load_adapter(str(adapter_dir), adapter_name=name)
        self.peft.set_adapter(name)
        self.peft.eval()
        _write_token_rows(self.peft, name)
        return self.model


def _write_token_rows(model: Any, name: str) -> None:
    """Put the active adapter's trained marker rows into the embedding matrix (restoring any other's first).

    Unwritten, peft copies the whole matrix (and again for a tied head) at every step to replace those
    rows; both writes copy stored rows, so the weights and logits are the same either way.
    """
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    for module in model.modules():
        if not isinstance(module, TrainableTokensLayer):
            continue
        if module.merged_adapters and module.merged_adapters != [name]:
            module.unmerge()
        if name in module.token_indices and not module.merged_adapters:
            module.merge([name])


def merged(base: str, adapter_dir: Path, vocabulary: int) -> Any:
    """A plain transformers model: the base in fp32 with the adapter's product added into its weights."""
    from peft import PeftModel

    with quiet_peft():
        model = PeftModel.from_pretrained(load_base(base, vocabulary), str(adapter_dir))
    return model.merge_and_unload()


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft 0.21 reads a transformers attribute that transformers 5 deprecated: a warning on every load
    that no user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield
