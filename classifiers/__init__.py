"""The measuring harness: text classifiers with the scikit-learn estimator contract.

``make_classifier("tfidf-lr" | "minilm-lr" | "setfit" | "llm-judge:MODEL[:K]", seed)``
returns an unfitted estimator; ``fit(texts, labels)`` returns it; ``predict``/``predict_proba``/
``classes_`` as in scikit-learn, so ``sklearn.base.clone`` works in a grid.
The names load on first use, so a config can check a classifier name
(``classifiers.base``) without loading scikit-learn.
"""

from augment.lazy import lazy_names

_EXPORTS = {"CLASSIFIER_NAMES": "classifiers.base", "EMBEDDING_DIM": "classifiers.embedding",
            "EmbeddingCache": "classifiers.embedding", "EmbeddingLogReg": "classifiers.embedding",
            "load_encoder": "classifiers.embedding", "minilm_path": "classifiers.embedding",
            "fitted_classifier": "classifiers.factory", "is_fitted": "classifiers.factory",
            "make_classifier": "classifiers.factory", "classification_metrics": "classifiers.metrics",
            "evaluate": "classifiers.metrics", "SetFitClassifier": "classifiers.setfit",
            "TfidfLogReg": "classifiers.tfidf", "LLMJudge": "classifiers.judge", "judge_name": "classifiers.base"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
