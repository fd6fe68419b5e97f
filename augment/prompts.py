"""How training rows and generation prompts are laid out, for both modes.

Per-label models see bare rows. The label-conditioned model sees one added
special token per label in front of each row (``<|label=pos|>text``): being a
single token, the marker can be suppressed during sampling and is dropped by
``skip_special_tokens`` when decoding, so a generated row can never contain a
separator or a label marker (nlpaug #268 leaked ``</s><s>FAVOR``).
"""

from __future__ import annotations

from collections.abc import Iterable

CONDITIONED = "_conditioned"


def label_token(label: str) -> str:
    return f"<|label={label}|>"


def training_row(text: str, label: str | None) -> str:
    return text if label is None else label_token(label) + text


def prompt(label: str | None, prefix: str = "") -> str:
    return ("" if label is None else label_token(label)) + prefix


def scrub(text: str, labels: Iterable[str]) -> str:
    """Remove any marker that survived decoding (e.g. a tokenizer that kept special tokens)."""
    for label in labels:
        text = text.replace(label_token(label), " ")
    return text.strip()
