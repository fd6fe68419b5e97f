"""The measuring harness: text classifiers with the scikit-learn estimator contract.

``make_classifier("tfidf-lr" | "minilm-lr" | "setfit", seed)`` returns an unfitted
estimator; ``fit(texts, labels)`` returns it; ``predict``/``predict_proba``/
``classes_`` as in scikit-learn, so ``sklearn.base.clone`` works in a grid.
"""

from classifiers.embedding import EMBEDDING_DIM, EmbeddingCache, EmbeddingLogReg, load_encoder, minilm_path
from classifiers.factory import CLASSIFIER_NAMES, fitted_classifier, is_fitted, make_classifier
from classifiers.metrics import classification_metrics, evaluate
from classifiers.setfit import SetFitClassifier
from classifiers.tfidf import TfidfLogReg

__all__ = ["CLASSIFIER_NAMES", "EMBEDDING_DIM", "EmbeddingCache", "EmbeddingLogReg", "SetFitClassifier",
           "TfidfLogReg", "classification_metrics", "evaluate", "fitted_classifier", "is_fitted", "load_encoder",
           "make_classifier", "minilm_path"]
