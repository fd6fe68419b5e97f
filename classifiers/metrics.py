"""Scores for a classifier on held-out rows: accuracy, macro-F1, per-class report."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any],
                           labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """JSON-ready scores. Macro-F1 is the headline: augmentation often shifts the
    minority class, which accuracy hides. A label never predicted scores 0, not NaN."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    labels = sorted(set(y_true) | set(y_pred)) if labels is None else list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = {str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for label, p, r, f, s in zip(labels, precision, recall, f1, support)}
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": per_class,
    }


def evaluate(classifier: Any, texts: Any, labels: Any) -> dict[str, Any]:
    """Score a fitted classifier on ``texts`` against the true ``labels``."""
    labels = np.asarray(labels, dtype=object)
    known = sorted(set(classifier.classes_) | set(labels))
    return classification_metrics(labels, classifier.predict(texts), labels=known)
