"""Classifiers by name, and the one rule for "use this model or train one"."""

from __future__ import annotations

from typing import Any, Callable

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from augment.errors import ConfigError
from classifiers.base import NAME_FORMS, ensemble_members, judge_name
from classifiers.embedding import EmbeddingCache, EmbeddingLogReg
from classifiers.ensemble import Ensemble
from classifiers.judge import LLMJudge
from classifiers.setfit import SetFitClassifier
from classifiers.tfidf import TfidfLogReg


def make_classifier(name: str, seed: int, class_weight: str | None = None,
                    embedding_cache: EmbeddingCache | None = None, precision: str = "fp32") -> Any:
    """An unfitted estimator; ``seed`` becomes its ``random_state``.

    ``embedding_cache`` goes to the classifiers whose embeddings are frozen
    (minilm-lr); setfit fine-tunes its encoder in every fit, so nothing of it can
    be reused, and tfidf-lr has no encoder. ``llm-judge:MODEL[:K]`` is an instruct LM
    (``classifiers.judge``) whose scores are cached on disk instead; ``ensemble:A+B`` averages members.
    ``precision`` (fp32, bf16, auto) is the format of the frozen MiniLM encoder; experiments keep fp32.
    """
    try:
        judge = judge_name(name)
        ensemble_members(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if judge is not None:
        return LLMJudge(model=judge.model, shots=judge.shots, calibrate=judge.calibrate, random_state=seed,
                        class_weight=class_weight)
    if (members := ensemble_members(name)) is not None:
        return Ensemble(tuple(make_classifier(m, seed, class_weight, embedding_cache, precision) for m in members))
    builders: dict[str, Callable[..., Any]] = {"tfidf-lr": TfidfLogReg, "minilm-lr": EmbeddingLogReg,
                                               "setfit": SetFitClassifier}
    if name not in builders:
        raise ConfigError(f"classifier '{name}' is unknown; expected one of {NAME_FORMS}")
    if name == "minilm-lr":
        return EmbeddingLogReg(random_state=seed, class_weight=class_weight, cache=embedding_cache,
                               precision=precision)
    return builders[name](random_state=seed, class_weight=class_weight)


def is_fitted(estimator: Any) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def fitted_classifier(classifier: Any, texts: Any, labels: Any, seed: int, precision: str = "fp32") -> Any:
    """A fitted estimator: a name is built and fitted, a fitted estimator is used as
    given (so one model can score filters and metrics), an unfitted one is cloned
    and fitted, leaving the caller's object untouched."""
    if isinstance(classifier, str):
        return make_classifier(classifier, seed, precision=precision).fit(texts, labels)
    if is_fitted(classifier):
        return classifier
    return clone(classifier).fit(texts, labels)
