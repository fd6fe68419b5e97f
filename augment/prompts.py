"""How training rows and generation prompts are laid out, for both modes.

Per-label models see bare rows; the label-conditioned model sees
``label SEP text``. Both formats live here so fine-tuning and generation can
never disagree, and so generated text can be scrubbed of any marker.
"""

from __future__ import annotations

from collections.abc import Iterable

SEP = " <|sep|> "
CONDITIONED = "_conditioned"


def training_row(text: str, label: str | None) -> str:
    return text if label is None else f"{label}{SEP}{text}"


def prompt(label: str | None, prefix: str = "") -> str:
    head = "" if label is None else f"{label}{SEP}"
    return head + prefix


def scrub(text: str, labels: Iterable[str]) -> str:
    """Cut at a leaked separator and drop a label written just before it.

    A conditioned model that does not emit EOS runs on into the next
    ``label SEP text`` row; everything from that point is not part of this row.
    """
    marker = SEP.strip()
    cut = text.find(marker)
    if cut >= 0:
        text = text[:cut].rstrip()
        for label in sorted(labels, key=len, reverse=True):
            if text.endswith(label):
                text = text[: -len(label)]
                break
    return text.strip()
