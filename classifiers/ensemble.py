"""``ensemble:A+B[+...]``: classifiers that see the text differently (word and character n-grams, sentence
embeddings, an instruct LM), averaged. A teacher for the fidelity filter and for pseudo-labels should know
more than the student it teaches; a mean of unlike classifiers is a cheap way to get there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from classifiers.base import as_texts


class Ensemble(ClassifierMixin, BaseEstimator):
    """The mean of the members' ``predict_proba``, each member trained on the same rows."""

    def __init__(self, members: tuple[str, ...] = ("tfidf-lr", "minilm-lr"), random_state: int | None = None,
                 class_weight: str | None = None, embedding_cache: Any = None):
        self.members = members
        self.random_state = random_state
        self.class_weight = class_weight
        self.embedding_cache = embedding_cache

    def fit(self, X: Any, y: Any) -> "Ensemble":
        from classifiers.factory import make_classifier

        texts, labels = as_texts(X), np.asarray(y)
        self.fitted_ = [make_classifier(name, self.random_state or 0, self.class_weight, self.embedding_cache)
                        .fit(texts, labels) for name in self.members]
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
