"""Baseline augmenters the LM must beat, behind the interface the experiment runner calls.

Every augmenter is built from the real training rows and answers
``generate(label=..., n=..., seed=...)`` with exactly ``n`` rows (columns ``text``,
``label``), the same for the same seed. The fine-tuned LM answers the same
keyword call: ``augment.Augmenter.generate(label=..., n=..., seed=...)``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

import pandas as pd

from augment.data.readers import LABEL, TEXT
from augment.errors import ConfigError, DataError

log = logging.getLogger(__name__)

OPERATIONS = ("swap", "delete", "insert")
SYNONYM_OPERATIONS = ("synonym", "swap", "delete", "insert")   # EDA's four, with a WordNet


class _ByLabel:
    """Holds the real texts of each label (copied: the caller's frame is never touched)."""

    name = "baseline"

    def __init__(self, train: pd.DataFrame):
        if not isinstance(train, pd.DataFrame) or not {TEXT, LABEL} <= set(train.columns):
            got = ", ".join(map(str, train.columns)) if isinstance(train, pd.DataFrame) else type(train).__name__
            raise DataError(f"{self.name}: training rows need columns '{TEXT}' and '{LABEL}' (got {got})")
        self.texts: dict[str, tuple[str, ...]] = {
            str(label): tuple(str(t) for t in group[TEXT]) for label, group in train.groupby(LABEL, sort=True)}

    @property
    def labels(self) -> list[str]:
        return sorted(self.texts)

    def _source(self, label: str, n: int) -> tuple[str, ...]:
        if label not in self.texts:
            raise ConfigError(f"{self.name}: no label '{label}'; labels are {', '.join(self.labels)}")
        if n < 0:
            raise ConfigError(f"{self.name}: n must be >= 0, got {n}")
        return self.texts[label]

    def _cycle(self, texts: tuple[str, ...], n: int, rng: random.Random) -> list[str]:
        """``n`` source rows: whole shuffled passes over the label's rows, so every row
        is used floor(n/m) or ceil(n/m) times (less variance than drawing with replacement)."""
        order: list[str] = []
        while len(order) < n:
            order.extend(rng.sample(texts, len(texts)))
        return order[:n]

    @staticmethod
    def _rng(seed: int, label: str) -> random.Random:
        """A private generator per (seed, label): never the global one, and labels do not share a stream."""
        return random.Random(f"{seed}\x00{label}")

    @staticmethod
    def _frame(texts: list[str], label: str) -> pd.DataFrame:
        return pd.DataFrame({TEXT: texts, LABEL: [label] * len(texts)}, columns=[TEXT, LABEL])


class OversampleAugmenter(_ByLabel):
    """Random oversampling: the "synthetic" rows are real rows of the label, repeated."""

    name = "oversample"

    def generate(self, label: str, n: int, seed: int) -> pd.DataFrame:
        texts = self._source(label, n)
        return self._frame(self._cycle(texts, n, self._rng(seed, label)), label)


class EDAAugmenter(_ByLabel):
    """Easy Data Augmentation (Wei & Zou 2019), with or without WordNet synonyms.

    ``synonyms`` (a callable word -> synonyms, e.g. ``augment.wordnet.load_wordnet``)
    gives EDA's four operations: synonym replacement (of words that are not stop
    words), random insertion of a synonym of a word in the row, random swap and
    random deletion. Without it (no offline WordNet) synonym replacement is left
    out rather than faked, and random insertion inserts a word drawn from the same
    label's training rows (a label-conditional stand-in that keeps the vocabulary
    in-domain and on-label); with it, a row none of whose words has a synonym gets
    that stand-in too. Each output row applies one operation, chosen uniformly,
    ``max(1, round(alpha * words))`` times to a source row; words are whitespace
    tokens so the row keeps its casing and punctuation (a replaced word keeps the
    punctuation around it and its capitalisation).
    """

    name = "eda"

    def __init__(self, train: pd.DataFrame, alpha: float = 0.1, operations: tuple[str, ...] | None = None,
                 synonyms: Callable[[str], Sequence[str]] | None = None):
        super().__init__(train)
        allowed = SYNONYM_OPERATIONS if synonyms is not None else OPERATIONS
        operations = allowed if operations is None else tuple(operations)
        unknown = sorted(set(operations) - set(allowed))
        if unknown or not operations:
            extra = "" if synonyms is not None else " ('synonym' needs a WordNet)"
            raise ConfigError(f"eda: operations must be a non-empty subset of {', '.join(allowed)}{extra}, "
                              f"got {', '.join(operations) or 'none'}")
        if not 0 < alpha <= 1:
            raise ConfigError(f"eda: alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.operations = operations
        self.synonyms = synonyms
        self.vocab = {label: tuple(w for t in texts for w in t.split()) for label, texts in self.texts.items()}

    def generate(self, label: str, n: int, seed: int) -> pd.DataFrame:
        texts = self._source(label, n)
        rng = self._rng(seed, label)
        return self._frame([self.augment(t, label, rng) for t in self._cycle(texts, n, rng)], label)

    def augment(self, text: str, label: str, rng: random.Random) -> str:
        tokens = text.split()
        if not tokens:
            return text
        times = max(1, round(self.alpha * len(tokens)))
        operation = rng.choice(self.operations)
        if operation == "synonym":
            return " ".join(self._replace_synonyms(tokens, times, rng))
        for _ in range(times):
            tokens = self._apply(operation, tokens, label, rng)
        return " ".join(tokens)

    def _replace_synonyms(self, tokens: list[str], times: int, rng: random.Random) -> list[str]:
        """EDA's SR: up to ``times`` distinct words, each replaced by one of its synonyms."""
        from augment.wordnet import matching_case, split_word, synonyms_for

        tokens = list(tokens)
        found = synonyms_for(tokens, self.synonyms)
        for i in rng.sample(sorted(found), min(times, len(found))):
            lead, word, trail = split_word(tokens[i])
            tokens[i] = lead + matching_case(rng.choice(found[i]), word) + trail
        return tokens

    def _apply(self, operation: str, tokens: list[str], label: str, rng: random.Random) -> list[str]:
        tokens = list(tokens)
        if operation == "swap" and len(tokens) > 1:
            i, j = rng.sample(range(len(tokens)), 2)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif operation == "delete" and len(tokens) > 1:
            del tokens[rng.randrange(len(tokens))]
        elif operation == "insert" and (self.synonyms is not None or self.vocab[label]):
            at = rng.randrange(len(tokens) + 1)   # before the word: the stream of rows without WordNet is unchanged
            word = self._insertion(tokens, label, rng)
            if word is not None:
                tokens.insert(at, word)
        return tokens

    def _insertion(self, tokens: list[str], label: str, rng: random.Random) -> str | None:
        """A synonym of a word in the row (EDA's RI), else a word of the label's rows."""
        if self.synonyms is not None:
            from augment.wordnet import synonyms_for

            found = synonyms_for(tokens, self.synonyms)
            if found:
                return rng.choice(found[rng.choice(sorted(found))])
        return rng.choice(self.vocab[label]) if self.vocab[label] else None


LABEL_NAME_TEMPLATES = ("This text is {label}.", "This is {label}.", "This example is {label}.", "It is {label}.",
                        "{label}", "A text that is {label}.", "Something {label}.", "This one is {label}.")


class LabelNameAugmenter(_ByLabel):
    """Rows made of the label's name alone ("This text is negative."), the cheapest prior a user can
    write down; SetFit's label-name rows lifted few-shot emotion accuracy, so the LM must beat them.

    ``descriptions`` names a label in words where its value is a code (``{"ABBR": "an abbreviation"}``);
    other labels are written as they are, with ``_`` and ``-`` read as spaces. A label's ``n`` rows
    are whole shuffled passes over the templates, so a ratio larger than the template count repeats
    them evenly.
    """

    name = "label-name"

    def __init__(self, train: pd.DataFrame, templates: Sequence[str] = LABEL_NAME_TEMPLATES,
                 descriptions: dict[str, str] | None = None):
        super().__init__(train)
        bad = [t for t in templates if "{label}" not in t]
        if not templates or bad:
            raise ConfigError(f"label-name: every template must hold '{{label}}', got {bad[0]!r}" if bad
                              else "label-name: give at least one template")
        self.templates = tuple(templates)
        self.descriptions = dict(descriptions or {})

    def words(self, label: str) -> str:
        return self.descriptions.get(label) or label.replace("_", " ").replace("-", " ")

    def generate(self, label: str, n: int, seed: int) -> pd.DataFrame:
        self._source(label, n)
        words = self.words(label)
        rows = self._cycle(self.templates, n, self._rng(seed, label))
        return self._frame([t.replace("{label}", words) for t in rows], label)
