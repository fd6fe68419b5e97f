"""``ensemble:A+B[+...]``: classifiers that see the text differently (word and character n-grams, sentence
embeddings, an instruct LM), averaged. A teacher for the fidelity filter and for pseudo-labels should know
more than the student it teaches; a mean of unlike classifiers is a cheap way to get there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from classifiers.base import as_texts


class Ensemble(ClassifierMixin, BaseEstimator):
    """The mean of the members' ``predict_proba``, each a clone of ``estimators`` trained on the same rows
    (``classifiers.make_classifier("ensemble:A+B")`` builds it from names)."""

    def __init__(self, estimators: tuple[Any, ...] = ()):
        self.estimators = estimators

    def fit(self, X: Any, y: Any) -> "Ensemble":
        texts, labels = as_texts(X), np.asarray(y)
        if len(self.estimators) < 2:
            raise ValueError("an ensemble needs at least two estimators")
        self.fitted_ = [clone(estimator).fit(texts, labels) for estimator in self.estimators]
        self.classes_ = np.unique(labels)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        texts = as_texts(X)
        total = np.zeros((len(texts), len(self.classes_)))
        for model in self.fitted_:
            columns = [list(map(str, model.classes_)).index(str(c)) for c in self.classes_]
            total += np.asarray(model.predict_proba(texts))[:, columns]
        return total / len(self.fitted_)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
