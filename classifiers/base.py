"""What every classifier shares: the names configs may give, and the texts ``fit``/``predict`` accept.

Light on purpose (no scikit-learn, no models): configs validate a classifier name
without loading any classifier.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

CLASSIFIER_NAMES = ("tfidf-lr", "minilm-lr", "setfit")


def known_classifier(name: str) -> str:
    """The name, or a ValueError pydantic turns into a one-line error."""
    if name not in CLASSIFIER_NAMES:
        raise ValueError(f"unknown classifier '{name}'; expected {', '.join(CLASSIFIER_NAMES)}")
    return name


ClassifierName = Annotated[str, AfterValidator(known_classifier)]
"""A config field naming a classifier: checked where the config is built."""


def as_texts(X: Any) -> list[str]:
    """A list, Series or 1-d array of strings as a list of ``str`` (scikit-learn passes all three)."""
    return [str(x) for x in (X.tolist() if hasattr(X, "tolist") else X)]
