"""TF-IDF word + character n-grams into a logistic regression.

The cheap, strong baseline for short texts: character n-grams survive the
misspellings, hashtags and elongations ("soooo") of tweets that a word
vocabulary learned from a few hundred rows would miss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union

from classifiers.base import as_texts


class TfidfLogReg(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over raw strings; ``fit(texts, labels)``.

    ``C`` defaults to 10, not sklearn's 1: with a few hundred L2-normalised rows
    C=1 shrinks every probability towards uniform, which makes the label-fidelity
    threshold meaningless.
    """

    def __init__(self, word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] = (2, 5),
                 min_df: int = 1, C: float = 10.0, class_weight: str | dict | None = None,
                 max_iter: int = 1000, random_state: int | None = None):
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "TfidfLogReg":
        features = make_union(
            TfidfVectorizer(analyzer="word", ngram_range=tuple(self.word_ngrams), min_df=self.min_df,
                            sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"),
            TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngrams), min_df=self.min_df,
                            sublinear_tf=True),
        )
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                                   random_state=self.random_state)
        self.pipeline_ = Pipeline([("features", features), ("model", model)]).fit(
            as_texts(X), np.asarray(y), model__sample_weight=sample_weight)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.pipeline_.predict_proba(as_texts(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
