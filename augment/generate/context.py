"""Does a generation job fit the model's context window? Answered before any weights load.

A GPT-2 has a fixed number of positions (``n_positions``); asking for more tokens
than that ends deep inside the model with ``IndexError: index out of range in
self``. The prompt (separator, label marker, prefix words) plus ``max_new_tokens``
must fit, so both are checked from ``config.json`` and the tokenizer alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from augment.config import GenerateConfig, InstructConfig
from augment.errors import ConfigError
from augment.files import read_json
from augment.instruct import chat_ids, describe, user_message
from augment.prompts import encode_text, prompt_ids
from augment.rundir import Manifest, RunDir

POSITION_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")


def context_length(model_config: Mapping[str, Any] | Path) -> int | None:
    """Positions the model has, from its ``config.json`` (a dir, the file, or the parsed mapping)."""
    if isinstance(model_config, Path):
        path = model_config / "config.json" if model_config.is_dir() else model_config
        model_config = read_json(path, "model config")
    for section in (model_config, model_config.get("text_config") or {}):
        for key in POSITION_KEYS:
            value = section.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def check_context(model_config: Mapping[str, Any] | Path, prompt_tokens: int, max_new_tokens: int,
                  where: str = "model") -> None:
    """One line naming the context length and the prompt length when they cannot hold the rows."""
    limit = context_length(model_config)
    if limit is None:
        return
    if prompt_tokens >= limit:
        raise ConfigError(f"{where}: the longest prompt is {prompt_tokens} tokens, the model's context is "
                          f"{limit} tokens; use fewer prefix_words (--prefix-words)")
    if prompt_tokens + max_new_tokens > limit:
        raise ConfigError(f"{where}: max_new_tokens={max_new_tokens} does not fit the model's context of "
                          f"{limit} tokens after a {prompt_tokens}-token prompt; use --max-new-tokens "
                          f"{limit - prompt_tokens} or less")


def longest_prompt(tokenizer: Any, separator: int, label: str | None, prefixes: Iterable[str]) -> int:
    """Tokens in the longest prompt, tokenizing only the prefixes that could be the longest.

    A token covers at least one UTF-8 byte (one more for a leading-space marker), so
    once a prefix's byte count cannot beat the best so far, none after it can either.
    """
    best = 0
    for prefix in sorted(set(prefixes), key=lambda p: len(p.encode()), reverse=True):
        if len(prefix.encode()) + 3 <= best:
            break
        best = max(best, len(prompt_ids(tokenizer, separator, label, prefix)))
    return best


def prefixes(texts: Sequence[str], words: int) -> set[str]:
    """Every prefix ``augment.generate.prefix_source`` can draw (the first ``words`` words of a text)."""
    if words == 0 or not texts:
        return {""}
    return {" ".join(t.split()[:words]) for t in texts}


def config_dir(run: RunDir, manifest: Manifest, label: str) -> Path:
    """The folder whose ``config.json`` describes ``label``'s weights: its model dir, or an adapter run's base."""
    if manifest.adapter is None:
        return run.finished_model(label, manifest)
    from augment.adapters import base_path

    run.finished_model(label, manifest)  # the adapter must be finished too
    return Path(base_path(manifest.adapter.base, run.root, check_hash=False))


def longest_instruct_prompt(tokenizer: Any, settings: InstructConfig, label: str, examples: Sequence[str],
                            starts: Iterable[str]) -> int:
    """A bound on instruct prompts: the ``k`` longest examples, then the longest answer start."""
    shown = sorted(examples, key=lambda t: len(t.encode()), reverse=True)[: settings.examples]
    chat = chat_ids(tokenizer, settings.system, user_message(settings.user, shown,
                                                             describe(label, settings.descriptions)))
    return len(chat) + max(len(encode_text(tokenizer, s)) for s in starts)


def check_label_fits(model_dir: Path, tokenizer: Any, separator: int, mode: str, label: str, texts: Sequence[str],
                     config: GenerateConfig) -> None:
    """The longest prompt ``label``'s rows can get from ``texts``, plus ``config.max_new_tokens``, fits
    ``model_dir``'s context (the one check of a job and of ``augment run`` before it trains)."""
    marker = label if mode == "conditioned" else None
    tokens = longest_prompt(tokenizer, separator, marker, prefixes(texts, config.prefix_words))
    check_context(model_dir, tokens, config.max_new_tokens, str(model_dir))
