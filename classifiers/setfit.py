"""SetFit (Tunstall et al. 2022) on the bundled all-MiniLM-L6-v2: the few-shot baseline to beat.

What a user with 8-16 labelled rows per class would pick instead of augmentation:
contrastive fine-tuning of the sentence encoder on pairs of the labelled rows,
then a logistic regression head on the tuned embeddings (``setfit==1.2.0``).

Cost: on 2 busy CPU cores one contrastive step of batch 8 takes about 1.5-5 s.
The pairs SetFit samples grow with rows x ``num_iterations``, so augmented
training sets would take hours; ``max_steps`` (default 100) caps the steps, so
one fit costs about 2-8 minutes on such a machine whatever the rows.

Because the body is fine-tuned in every fit, its embeddings of the test rows
differ from fit to fit and cannot be cached across cells (minilm-lr's frozen
embeddings can: ``classifiers.embedding.EmbeddingCache``).
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from augment.errors import MissingDependencyError
from classifiers.base import as_texts
from classifiers.embedding import minilm_path

INSTALL_HINT = "pip install setfit==1.2.0 evaluate"
DEFAULT_MAX_STEPS = 100


class SetFitClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over raw strings: SetFit with the offline MiniLM body.

    ``random_state`` seeds SetFit's pair sampling, the body's training and the
    head; the caller's global RNG states are restored afterwards (the HF
    ``Trainer`` reseeds them). Labels may be any hashable values: they are
    encoded as indices of ``classes_`` for SetFit and decoded on the way out.
    """

    def __init__(self, max_steps: int = DEFAULT_MAX_STEPS, batch_size: int = 8, num_iterations: int = 20,
                 num_epochs: int = 1, body_learning_rate: float = 2e-5, C: float = 1.0,
                 class_weight: str | dict | None = None, max_iter: int = 1000, random_state: int | None = None,
                 device: str = "cpu", model_path: str | None = None):
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.num_iterations = num_iterations
        self.num_epochs = num_epochs
        self.body_learning_rate = body_learning_rate
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device
        self.model_path = model_path

    def fit(self, X: Any, y: Any) -> "SetFitClassifier":
        setfit = _import_setfit()
        from datasets import Dataset

        texts, labels = as_texts(X), np.asarray(y)
        self.classes_, codes = np.unique(labels, return_inverse=True)
        seed = 0 if self.random_state is None else int(self.random_state)
        head = {"C": self.C, "class_weight": self.class_weight, "max_iter": self.max_iter, "random_state": seed}
        model = setfit.SetFitModel.from_pretrained(str(self.model_path or minilm_path()), head_params=head,
                                                   device=self.device, local_files_only=True)
        with tempfile.TemporaryDirectory(prefix="setfit-") as scratch, _preserved_global_rng():
            trainer = setfit.Trainer(model=model, args=self._arguments(setfit, scratch, seed),
                                     train_dataset=Dataset.from_dict({"text": texts, "label": codes.tolist()}))
            _quiet(trainer.st_trainer)
            trainer.st_trainer.args.dataloader_pin_memory = self.device != "cpu"
            trainer.train()
        self.model_ = model
        return self

    def _arguments(self, setfit: Any, scratch: str, seed: int) -> Any:
        """Nothing written outside ``scratch``, no reporting integrations, no progress bars."""
        return setfit.TrainingArguments(
            output_dir=scratch, batch_size=self.batch_size, num_epochs=self.num_epochs,
            num_iterations=self.num_iterations, max_steps=self.max_steps,
            body_learning_rate=self.body_learning_rate, seed=seed, report_to="none", save_strategy="no",
            logging_strategy="no", logging_first_step=False, show_progress_bar=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        texts = as_texts(X)
        if not texts:
            return np.zeros((0, len(self.classes_)))
        probs = self.model_.predict_proba(texts, batch_size=64, as_numpy=True, show_progress_bar=False)
        return np.asarray(probs, dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _quiet(st_trainer: Any) -> None:
    """Library code draws no progress bars: the HF Trainer chose its progress callback at init."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    st_trainer.args.disable_tqdm = True
    st_trainer.pop_callback(ProgressCallback)
    st_trainer.pop_callback(PrinterCallback)


def _import_setfit() -> Any:
    try:
        import setfit
    except ImportError:
        raise MissingDependencyError(f"the setfit classifier needs the setfit package: {INSTALL_HINT}") from None
    # setfit's trainer module sets its own logger to INFO on import; put it back to warnings
    setfit.logging.set_verbosity_warning()
    return setfit


@contextlib.contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """The HF Trainer calls ``set_seed``: keep the caller's python, numpy and torch streams untouched."""
    import torch

    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
