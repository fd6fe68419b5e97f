"""Quality of a synthetic set, before any classifier is trained on it.

Every number is computed on the same word tokens as the filters
(``augment.filter.words``: lower case, punctuation dropped):

* ``distinct_1`` / ``distinct_2``: unique n-grams / all n-grams over the whole set
  (Li et al. 2016); higher is more varied. Depends on set size, so compare sets
  of equal size.
* ``self_bleu``: diversity as mean sentence BLEU-4 of each row against all other
  rows as references (Zhu et al. 2018, Texygen); lower is more varied. Computed on
  a seeded sample of at most ``self_bleu_rows`` rows so it stays fast; see
  ``sentence_bleu`` for the exact definition.
* ``novelty``: share of rows whose best-matching training row holds less than
  ``novelty_threshold`` of their word n-grams (``augment.filter.max_overlap``,
  the train-copy filter's measure); ``mean_max_overlap`` is its average.
* ``label_agreement``: share of rows whose label an independent classifier,
  trained on the real rows, predicts. Pass a different classifier from the one
  the fidelity filter used, or the number only echoes the filter.
* ``mean_words`` vs ``real_mean_words``: generators drift shorter or longer.
* ``fragment_rate`` vs ``real_fragment_rate``: share of rows that begin mid-sentence
  (a leading ``,`` ``.`` ``'s`` ``-`` ``)`` and the like), the sign of rows cut out of
  a longer text rather than written as rows. ``real_*`` numbers are measured on
  ``reference`` rows (default: ``train``); pass real rows as many as the synthetic
  ones for a fair ``real_distinct_2``.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from typing import Any, Sequence

import numpy as np
import pandas as pd

from augment.data.readers import LABEL, TEXT, label_counts
from augment.filter import require_columns, max_overlap, word_ngrams, words

log = logging.getLogger(__name__)

BLEU_ORDER = 4
BLEU_EPSILON = 0.1   # Chen & Cherry smoothing 1: a zero n-gram match counts as 0.1 (as NLTK's method1)


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Unique n-grams / total n-grams across all texts; None when there are no n-grams."""
    grams = [g for t in texts for g in word_ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else None


def sentence_bleu(hypothesis: Sequence[str], references: Sequence[Sequence[str]],
                  max_order: int = BLEU_ORDER) -> float:
    """BLEU of one token list against several references.

    Clipped n-gram precision for orders 1..max_order that the hypothesis has
    (a 2-word row is scored on unigrams and bigrams only, not zeroed), a zero
    match count replaced by ``BLEU_EPSILON``, uniform geometric mean, and the
    brevity penalty against the closest reference length (shorter on ties).
    """
    clip: Counter[str] = Counter()
    for ref in references:
        for order in range(1, max_order + 1):
            clip |= Counter(word_ngrams(ref, order))
    return _bleu(hypothesis, clip, [len(r) for r in references], max_order)


def _bleu(hypothesis: Sequence[str], clip: Counter[str] | dict[str, int], ref_lengths: Sequence[int],
          max_order: int) -> float:
    if not hypothesis or not ref_lengths:
        return 0.0
    log_precisions = []
    for order in range(1, min(max_order, len(hypothesis)) + 1):
        counts = Counter(word_ngrams(hypothesis, order))
        matched = sum(min(c, clip.get(g, 0)) for g, c in counts.items())
        log_precisions.append(math.log(max(matched, BLEU_EPSILON) / sum(counts.values())))
    closest = min(ref_lengths, key=lambda r: (abs(r - len(hypothesis)), r))
    penalty = 0.0 if len(hypothesis) >= closest else 1 - closest / len(hypothesis)
    return math.exp(penalty + sum(log_precisions) / len(log_precisions))


def self_bleu(texts: Sequence[str], seed: int = 0, max_rows: int = 1000) -> float | None:
    """Mean BLEU of each sampled row against all other sampled rows; None under 2 rows.

    O(rows x n-grams): per n-gram only the two largest per-row counts are kept,
    which is all "the max count over every other row" needs.
    """
    if len(texts) < 2:
        return None
    rows = np.random.default_rng(seed).choice(len(texts), size=min(max_rows, len(texts)), replace=False)
    tokens = [words(texts[i]) for i in sorted(rows)]
    counts = [Counter(g for order in range(1, BLEU_ORDER + 1) for g in word_ngrams(t, order)) for t in tokens]
    top: dict[str, tuple[int, int, int]] = {}   # gram -> (best count, its row, second-best count)
    for row, row_counts in enumerate(counts):
        for gram, c in row_counts.items():
            best, best_row, second = top.get(gram, (0, -1, 0))
            top[gram] = (c, row, best) if c > best else (best, best_row, max(second, c))
    lengths = [len(t) for t in tokens]
    scores = []
    for row, hyp in enumerate(tokens):
        clip = {g: (top[g][2] if top[g][1] == row else top[g][0]) for g in counts[row]}
        scores.append(_bleu(hyp, clip, lengths[:row] + lengths[row + 1:], BLEU_ORDER))
    return float(np.mean(scores))


def label_agreement(classifier: Any, synthetic: pd.DataFrame) -> tuple[float | None, dict[str, float]]:
    """Share of rows (overall and per label) whose label the fitted classifier predicts."""
    if classifier is None or synthetic.empty:
        return None, {}
    predicted = np.asarray(classifier.predict(synthetic[TEXT].tolist())).astype(str)
    hits = pd.Series(predicted == synthetic[LABEL].astype(str).to_numpy(), index=synthetic.index)
    by_label = hits.groupby(synthetic[LABEL].astype(str)).mean()
    return float(hits.mean()), {str(k): float(v) for k, v in by_label.sort_index().items()}


FRAGMENT = re.compile(r"""^\s*(?:[,.;:!?)\]}\-\u2013\u2014\u2026/|%]|'(?:s|re|m|ll|ve|d|t)\b|n't\b)""", re.IGNORECASE)


def fragment_rate(texts: Sequence[str]) -> float | None:
    """Share of texts that start mid-sentence (see ``FRAGMENT``)."""
    return float(np.mean([bool(FRAGMENT.match(t)) for t in texts])) if len(texts) else None


def mean_words(texts: Sequence[str]) -> float | None:
    return float(np.mean([len(words(t)) for t in texts])) if len(texts) else None


def quality_report(synthetic: pd.DataFrame, train: pd.DataFrame, classifier: Any = None, seed: int = 0, *,
                   ngram: int = 3, novelty_threshold: float = 0.5, self_bleu_rows: int = 1000,
                   reference: Sequence[str] | None = None) -> dict[str, Any]:
    """JSON-ready quality metrics of ``synthetic`` against the real ``train`` rows.

    ``classifier``: a fitted estimator is used as given; an unfitted one or a
    name ("tfidf-lr", "minilm-lr", "setfit") is trained on ``train`` with ``seed``; None
    means "tfidf-lr". Agreement is None when ``train`` has fewer than 2 labels.
    Metrics with nothing to measure (empty set) are None, never NaN.
    """
    require_columns(synthetic, "synthetic rows")
    require_columns(train, "training rows")
    texts = synthetic[TEXT].astype(str).tolist()
    real = list(reference) if reference is not None else train[TEXT].astype(str).tolist()
    overlap = max_overlap(texts, train[TEXT].astype(str).tolist(), ngram)
    agreement, by_label = label_agreement(_agreement_classifier(classifier, train, seed), synthetic)
    return {
        "rows": len(synthetic),
        "rows_by_label": label_counts(synthetic),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "real_distinct_2": distinct_n(real, 2),
        "reference_rows": len(real),
        "self_bleu": self_bleu(texts, seed, self_bleu_rows),
        "self_bleu_rows": min(len(texts), self_bleu_rows),
        "novelty": float(np.mean(overlap < novelty_threshold)) if len(texts) else None,
        "mean_max_overlap": float(overlap.mean()) if len(texts) else None,
        "novelty_ngram": ngram,
        "novelty_threshold": novelty_threshold,
        "label_agreement": agreement,
        "label_agreement_by_label": by_label,
        "label_agreement_min": min(by_label.values()) if by_label else None,
        "fragment_rate": fragment_rate(texts),
        "real_fragment_rate": fragment_rate(real),
        "mean_words": mean_words(texts),
        "real_mean_words": mean_words(real),
    }


def _agreement_classifier(classifier: Any, train: pd.DataFrame, seed: int) -> Any:
    from classifiers.factory import fitted_classifier, is_fitted

    chosen = "tfidf-lr" if classifier is None else classifier
    if not isinstance(chosen, str) and is_fitted(chosen):
        return chosen
    if train[LABEL].nunique() < 2:
        log.warning("label agreement skipped: training rows have fewer than 2 labels")
        return None
    return fitted_classifier(chosen, train[TEXT].tolist(), train[LABEL].tolist(), seed)
