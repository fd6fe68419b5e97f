"""How training rows and generation prompts are laid out, for both modes.

Per-label models see bare rows. The label-conditioned model sees one added
special token per label in front of each row (``<|label=pos|>text``): being a
single token, the marker can be suppressed during sampling and is dropped by
``skip_special_tokens`` when decoding, so a generated row can never contain a
separator or a label marker (nlpaug #268 leaked ``</s><s>FAVOR``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CONDITIONED = "_conditioned"
INSTRUCT = "_instruct"   # the run's one (untrained) model in instruct mode


def label_token(label: str) -> str:
    return f"<|label={label}|>"


def scrub(text: str, labels: Iterable[str]) -> str:
    """Remove any marker that survived decoding (e.g. a tokenizer that kept special tokens)."""
    for label in labels:
        text = text.replace(label_token(label), " ")
    return text.strip()


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Data is never parsed as control tokens: a row holding ``<|endoftext|>`` stays plain text."""
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def prompt_ids(tokenizer: Any, separator_id: int, label: str | None, prefix: str = "") -> list[int]:
    """Separator (what every training row followed), then the label's marker token, then the prefix as text."""
    marker = [] if label is None else [tokenizer.convert_tokens_to_ids(label_token(label))]
    return [separator_id, *marker, *encode_text(tokenizer, prefix)]
