"""What every classifier shares: the names configs may give, and the texts ``fit``/``predict`` accept.

Light on purpose (no scikit-learn, no models): configs validate a classifier name
without loading any classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator

CLASSIFIER_NAMES = ("tfidf-lr", "minilm-lr", "setfit")
WEIGHTED_CLASSIFIERS = ("tfidf-lr", "minilm-lr")   # fit(texts, labels, sample_weight=...)
JUDGE_PREFIX = "llm-judge:"
ENSEMBLE_PREFIX = "ensemble:"
CALIBRATED = "calibrated"
NAME_FORMS = (f"{', '.join(CLASSIFIER_NAMES)}, {JUDGE_PREFIX}MODEL (zero-shot) or {JUDGE_PREFIX}MODEL:K "
              "(K example rows per label in the prompt; MODEL is a short name, an HF id or a local path; "
              f"a last ':{CALIBRATED}' divides out the prompt's own label preference), "
              f"or {ENSEMBLE_PREFIX}A+B[+...] (the mean probability of those classifiers)")


@dataclass(frozen=True)
class JudgeName:
    """``llm-judge:MODEL[:K][:calibrated]``: an instruct LM as a zero- or K-shot classifier."""

    model: str
    shots: int = 0
    calibrate: bool = False


def judge_name(name: str) -> JudgeName | None:
    """The judge a name asks for; None for a name that is not a judge's; ValueError for a malformed one."""
    if not name.startswith(JUDGE_PREFIX):
        return None
    model, shots = name[len(JUDGE_PREFIX):], 0
    calibrate = model.endswith(f":{CALIBRATED}")
    model = model.removesuffix(f":{CALIBRATED}")
    head, _, tail = model.rpartition(":")
    if head and tail.isdigit():
        model, shots = head, int(tail)
    if not model or ":" in model or any(c.isspace() for c in model):
        raise ValueError(f"classifier '{name}': expected {JUDGE_PREFIX}MODEL or {JUDGE_PREFIX}MODEL:K "
                         f"(optionally ending ':{CALIBRATED}') with a model name and K a whole number of example "
                         "rows per label")
    return JudgeName(model, shots, calibrate)


def ensemble_members(name: str) -> list[str] | None:
    """The classifiers an ``ensemble:A+B`` name averages; None for a name that is not an ensemble."""
    if not name.startswith(ENSEMBLE_PREFIX):
        return None
    members = name[len(ENSEMBLE_PREFIX):].split("+")
    if len(members) < 2 or any(m.startswith(ENSEMBLE_PREFIX) for m in members):
        raise ValueError(f"classifier '{name}': expected {ENSEMBLE_PREFIX}A+B[+...] with at least two classifiers, "
                         "none of them an ensemble")
    for member in members:
        known_classifier(member)
    return members


def member_names(names: set[str]) -> set[str]:
    """Every classifier the names run, an ensemble's members included: what has to be installed or fetched."""
    return {m for name in names for m in (ensemble_members(name) or [name])}


def known_classifier(name: str) -> str:
    """The name, or a ValueError pydantic turns into a one-line error."""
    if name not in CLASSIFIER_NAMES and judge_name(name) is None and ensemble_members(name) is None:
        raise ValueError(f"unknown classifier '{name}'; expected {NAME_FORMS}")
    return name


ClassifierName = Annotated[str, AfterValidator(known_classifier)]
"""A config field naming a classifier: checked where the config is built."""


def as_texts(X: Any) -> list[str]:
    """A list, Series or 1-d array of strings as a list of ``str`` (scikit-learn passes all three)."""
    return [str(x) for x in (X.tolist() if hasattr(X, "tolist") else X)]
