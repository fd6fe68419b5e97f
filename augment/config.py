"""Typed configuration for each pipeline stage.

Each stage has one pydantic model; its field defaults are the only defaults
(the CLI passes ``None`` for options the user did not give). Unknown keys are
errors, so a typo in a YAML file fails before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import (BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, field_validator,
                      model_serializer, model_validator)

from augment.errors import ConfigError


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(StageConfig):
    path: str = Field(description="Dataset file (csv/tsv/jsonl/parquet/Sentiment140; plain, .gz/.bz2/.xz/.zst "
                                  "or in a .zip), or a named dataset: crowdflower, uci-sentences, trec, sms-spam, "
                                  "bbc-news.")
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "sentiment140"] = Field(
        "auto", description="File format; 'auto' uses the extension and recognises raw Sentiment140 files.")
    text_col: str | None = Field(None, description="Text column (default: first of text/sentence/tweet/review/content).")
    label_col: str | None = Field(None, description="Label column (default: first of label/sentiment/polarity/class/target).")
    label_map: dict[str, str] | None = Field(None, description="Rename label values, e.g. {'0': 'neg', '4': 'pos'}.")
    labels: list[str] | None = Field(None, description="Keep only these labels (after label_map).")
    member: str | None = Field(None, exclude_if=lambda v: v is None,  # unset: keys of older results still match
                               description="The file to read inside a .zip (default: its only data file).")
    encoding: str | None = Field(None, description="Text encoding; default tries UTF-8, then latin-1 with a warning.")
    clean: bool = Field(False, description="Replace URLs with <url> and @mentions with @user.")
    dedup: bool = Field(True, description="Drop rows whose text repeats an earlier row.")
    per_class: int | None = Field(None, gt=0, description="Sample this many rows per label (seeded, stratified).")
    seed: int = Field(0, description="Seed for sampling.")


INSTRUCT_SYSTEM = ("You write realistic example data for training a text classifier. Real data is often rude, angry, "
                   "sarcastic or negative; copy the tone of the examples faithfully, that is what the data is for. "
                   "Answer with exactly one new example and nothing else.")
INSTRUCT_USER = ("Here are {k} examples of texts, each {description}:\n\n{examples}\n\nWrite one new text that is "
                 "{description}, in the same style, tone and length as the examples but not a copy of any. "
                 "Reply with the new text only.")


class InstructConfig(StageConfig):
    """The chat prompt of instruct mode (no training): ``k`` real rows of the label, then the request."""

    examples: int = Field(5, ge=1, description="Real rows of the label shown in each row's prompt (a seeded subset "
                                               "per row).")
    descriptions: dict[str, str] = Field({}, description=(
        "One line per label saying what its rows are, e.g. {pos: 'a positive tweet about an airline'}; "
        "default: \"labelled '<label>'\"."))
    system: str | None = Field(INSTRUCT_SYSTEM, description="System message (None: the template's own).")
    user: str = Field(INSTRUCT_USER, description="The request; {examples}, {description} and {k} are filled in.")

    @field_validator("user")
    @classmethod
    def _fields_known(cls, value: str) -> str:
        try:
            value.format(examples="", description="", k=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{examples}}, {{description}} and {{k}} can be filled in ({exc})") from None
        if "{examples}" not in value:
            raise ValueError("must contain {examples}")
        return value


class FinetuneConfig(StageConfig):
    model: str = Field("gpt2", description="HF causal LM id or path, or a short name: smollm2-135m, tiny-gpt2.")
    backend: Literal["torch", "gpt-2-simple"] = Field("torch", description="Training back-end.")
    adapter: Literal["full", "lora"] = Field("full", description=(
        "full: train every weight and save a model per label; lora: train a small peft LoRA adapter per model "
        "over the frozen base, and save only the adapters (plus a reference to the base and its hash)."))
    lora_rank: int = Field(16, gt=0, description="LoRA rank r (adapter: lora).")
    lora_alpha: float = Field(32.0, gt=0, description="LoRA scale: updates are multiplied by alpha / rank.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input while training.")
    lora_target_modules: list[str] | Literal["auto"] = Field("auto", description=(
        "Module names to adapt; auto: every linear layer but the output head (GPT-2: c_attn, c_proj, c_fc; "
        "Llama, SmolLM2, Qwen2, Gemma3: q/k/v/o_proj and gate/up/down_proj)."))
    mode: Literal["per-label", "conditioned", "instruct"] = Field(
        "per-label", description="One model per label, one label-conditioned model (LAMBADA style), or no training: "
                                 "an instruct model prompted with real rows of the label (see instruct).")
    instruct: InstructConfig | None = Field(
        None, exclude_if=lambda v: v is None,  # other modes: keys of older runs and results still match
        description="The prompt of mode instruct (set with the mode when not given).")
    max_steps: int = Field(200, gt=0, description="Optimizer steps per model.")
    batch_size: int = Field(8, gt=0, description="Blocks per device per step.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    block_size: int = Field(128, ge=8, description="Tokens per packed training block.")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate (linear decay, warm-up ratio 0.05).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    save_steps: int = Field(50, gt=0, description="Checkpoint every N steps (what a crash can cost).")
    save_total_limit: int = Field(2, gt=0, description="Checkpoints kept per model.")
    eval_fraction: float = Field(0.0, ge=0, lt=0.5, description=(
        "Share of each label's rows held out (at least one row) to measure loss; the checkpoint with the lowest "
        "held-out loss is kept, so max_steps becomes an upper bound. 0: off."))
    eval_steps: int = Field(5, gt=0, description="Evaluate the held-out rows every N steps (with eval_fraction).")
    early_stopping: int | None = Field(None, gt=0, description=(
        "Stop after N evaluations without a new best held-out loss (with eval_fraction)."))
    min_rows: int = Field(5, ge=1, description="A label with fewer training rows is an error.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description=("auto: bf16 on GPUs that support it and on CPUs whose measured bf16 matrix rate is at "
                             "least 1.5x fp32 (augment.precision), else fp32."))
    compile: bool = Field(False, description="torch.compile the model (GPU; pays off on long runs).")
    seed: int = Field(42, description="Training seed.")
    trust_pickle: bool = Field(False, description="Allow loading pickled (.bin) weights: runs code from the file.")

    LORA_LEARNING_RATE: ClassVar[float] = 2e-4   # adapters start at zero and need larger steps than full weights

    @model_validator(mode="before")
    @classmethod
    def _lora_learning_rate(cls, values: Any) -> Any:
        """An unset learning rate with ``adapter: lora`` is LoRA's usual one, not full fine-tuning's."""
        if isinstance(values, dict) and values.get("adapter") == "lora" and values.get("learning_rate") is None:
            return {**values, "learning_rate": cls.LORA_LEARNING_RATE}
        return values

    @field_validator("adapter")
    @classmethod
    def _lora_needs_torch(cls, value: str, info: Any) -> str:
        if value == "lora" and info.data.get("backend") == "gpt-2-simple":
            raise ValueError("lora needs the torch back-end (gpt-2-simple trains every weight)")
        return value

    @field_validator("lora_target_modules")
    @classmethod
    def _some_modules(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError("list at least one module name, or 'auto'")
        return value

    @model_serializer(mode="wrap")
    def _lora_settings_when_used(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A full fine-tune dumps as it did before adapters existed, so its cache and resume keys still match."""
        dumped = handler(self)
        if self.adapter == "full":
            for key in ("adapter", *LORA_SETTINGS):
                dumped.pop(key, None)
        return dumped

    @model_validator(mode="before")
    @classmethod
    def _instruct_with_its_mode(cls, values: Any) -> Any:
        """Mode instruct always carries its prompt settings; other modes have none; it trains nothing."""
        if not isinstance(values, dict):
            return values
        if values.get("mode") == "instruct" and values.get("adapter", "full") != "full":
            raise ValueError("mode instruct trains nothing: remove adapter")
        if values.get("mode") == "instruct" and values.get("instruct") is None:
            return {**values, "instruct": {}}
        if values.get("mode") != "instruct" and values.get("instruct") is not None:
            raise ValueError("'instruct' settings need mode: instruct")
        return values


LORA_SETTINGS = ("lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules")


class GenerateConfig(StageConfig):
    n: int = Field(100, gt=0, description="Rows to generate per label.")
    batch_size: int | Literal["auto"] = Field("auto", description="Rows per generation batch, or 'auto'.")
    max_new_tokens: int = Field(48, gt=0, description="Upper bound on tokens per row.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_k: int | None = Field(50, ge=0, description="Top-k sampling (0 or None: off).")
    top_p: float | None = Field(0.95, gt=0, le=1, description="Nucleus sampling (None or 1: off).")
    seed: int = Field(0, description="Seed; a row depends only on (seed, label, row index), not on batch or process count.")
    prefix_words: int = Field(0, ge=0, description="Prompt each row with the first N words of a real training row.")
    min_chars: int = Field(1, ge=0, description="Rows shorter than this after stripping are regenerated.")
    max_attempts: int = Field(5, gt=0, description="Give up after this many batches per batch of kept rows.")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_from_text(cls, value: Any) -> Any:
        """``--batch-size`` arrives as text: '16' is 16, 'auto' stays, anything else is one clear error."""
        if isinstance(value, str) and value != "auto":
            if not value.strip().isdigit():
                raise ValueError("must be a positive integer or 'auto'")
            return int(value)
        return value

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return value


C = TypeVar("C", bound=StageConfig)


def build(cls: type[C], source: str, /, **values: Any) -> C:
    """Construct a config, turning validation errors into one readable line."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """One clause per problem, naming the key path (``augmenters.3.lm.finetune.max_steps``) and the value.

    The one formatter for every config: the stage configs here and the experiment YAML.
    """
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        message = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{where}'")
        elif err["type"] == "missing":
            parts.append(f"missing key '{where}'")
        elif isinstance(given, (dict, list)):
            parts.append(f"'{where}': {message}")
        elif err["type"] == "value_error":
            parts.append(f"'{where}': {message} (got {given!r})")
        else:
            parts.append(f"'{where}' {message.lower()} (got {given!r})")
    return "; ".join(parts)


def merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Later layers win; ``None`` values mean 'not given' and never override."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is not None:
                merged[key] = value
    return merged


def changed_settings(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """``name: old -> new`` for every (nested) setting that differs, so a refused resume names the flag
    to put back."""
    changed = []
    for field in sorted(set(before) | set(now)):
        old, new = before.get(field), now.get(field)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += changed_settings(old, new, f"{prefix}{field}.")
        elif old != new:
            changed.append(f"{prefix}{field}: {old!r} -> {new!r}")
    return changed


SECTIONS = ("data", "adapt", "finetune", "generate", "filter")


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file's top-level mapping; a missing file or bad YAML is one line naming file and position."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def load_yaml(path: Path, sections: tuple[str, ...] = SECTIONS) -> dict[str, dict[str, Any]]:
    """Read a YAML config with one mapping per stage; unknown sections are errors."""
    raw = read_yaml_mapping(path)
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; expected {', '.join(sections)}")
    for name, body in raw.items():
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"{path}: section '{name}' must be a mapping, got {type(body).__name__}")
    return {name: dict(raw.get(name) or {}) for name in sections}
