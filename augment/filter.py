"""Filter synthetic rows before they are trained on; every filter optional and reported.

Order: length bounds, exact duplicates, near duplicates (within the synthetic
set), copies of training rows, label fidelity. Cheap filters run first so the
classifier scores as few rows as possible. The report says, per filter, how many
rows came in and how many (of which label) it dropped, because a filter that
silently eats 90% of one label explains a "lift" better than the generator does.

Text similarity is defined once here and reused by ``augment.metrics``, so the
novelty metric and the train-copy filter cannot disagree about what a copy is:

* words: NFKC, lower case, ``\\w+`` tokens (apostrophes kept inside words);
* near duplicates: Jaccard similarity of character n-grams of the normalised
  text, found with MinHash + LSH banding (linear in rows; exact Jaccard then
  confirms every candidate, so there are no false drops, only rare misses);
* copies: the share of a synthetic row's word n-grams that occur in its
  best-matching single training row (containment, so a row that copies half of
  a long training row still counts as a copy).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import sparse

from augment.config import StageConfig
from augment.data.readers import LABEL, TEXT, label_counts
from augment.errors import DataError
from classifiers.base import ClassifierName

log = logging.getLogger(__name__)

WORD = re.compile(r"\w+(?:'\w+)*")
NUM_PERM = 64                 # MinHash permutations: 64 int64 per row
PRIME = (1 << 31) - 1         # hash modulus; a * id + b stays inside int64
LSH_RECALL = 0.999            # banding is chosen so a pair at the threshold is found this often
MINHASH_CHUNK_ROWS = 1000     # bounds the (shingles x NUM_PERM) scratch array
OVERLAP_CELLS = 4_000_000     # bounds the dense-ish candidate x reference product per chunk
SCORE = "score"
COUNTED = ("top-k", "sample", "boundary")  # fidelity modes that keep fidelity_top_k rows per label


class FilterConfig(StageConfig):
    exact_dedup: bool = Field(True, description="Drop rows whose whitespace-normalised text repeats an earlier row.")
    min_words: int | None = Field(1, ge=0, description="Drop rows with fewer words (None: off).")
    max_words: int | None = Field(None, gt=0, description="Drop rows with more words (None: off).")
    min_chars: int | None = Field(None, ge=0, description="Drop rows with fewer stripped characters (None: off).")
    max_chars: int | None = Field(None, gt=0, description="Drop rows with more stripped characters (None: off).")
    near_dup_threshold: float | None = Field(
        0.8, gt=0, le=1, description="Drop a row whose char n-gram Jaccard with an earlier kept row is >= this.")
    near_dup_ngram: int = Field(5, ge=1, description="Character n-gram size for near duplicates.")
    train_copy_threshold: float | None = Field(
        0.8, gt=0, le=1, description="Drop a row when >= this share of its word n-grams is in one training row.")
    copy_ngram: int = Field(3, ge=1, description="Word n-gram size for copies (shorter rows use their length).")
    fidelity: Literal["off", "threshold", "top-k", "sample", "boundary"] = Field(
        "off", description="Label fidelity: keep rows the classifier agrees with (threshold), the k per label it is "
                           "surest of (top-k, LAMBADA), k per label drawn at random from those it agrees with "
                           "(sample: drops mislabelled rows without keeping only the easiest), or the k per label it "
                           "is sure of and fidelity_student is not (boundary: rows near the student's boundary).")
    fidelity_threshold: float = Field(0.5, ge=0, le=1, description="threshold: min probability of the row's label.")
    fidelity_top_k: int | dict[str, int] | None = Field(
        None, description="top-k and sample: rows kept per label, or a count for each label (an experiment cell "
                          "keeps at most its own need).")
    fidelity_classifier: ClassifierName = Field(
        "tfidf-lr", description="Classifier trained on the real rows: tfidf-lr, minilm-lr, setfit, "
                                "llm-judge:MODEL[:K] (an instruct LM, zero- or K-shot).")
    fidelity_student: ClassifierName | None = Field(
        None, description="boundary: the classifier the rows are for, trained on the same real rows (default "
                          "tfidf-lr); rows are ranked by the fidelity classifier's probability of their label less "
                          "the student's, among rows the fidelity classifier agrees with.",
        exclude_if=lambda v: v is None)
    fidelity_relabel: float | None = Field(
        None, gt=0.5, le=1, description="Relabel instead of drop: a row the fidelity classifier puts in another "
                                        "label with at least this probability joins that label before the fidelity "
                                        "choice (None: off). Needs fidelity on.",
        exclude_if=lambda v: v is None)   # unset, configs and results keep the keys they had

    @field_validator("fidelity_top_k")
    @classmethod
    def _positive_k(cls, value: int | dict[str, int] | None) -> int | dict[str, int] | None:
        counts = value.values() if isinstance(value, dict) else [] if value is None else [value]
        if any(k <= 0 for k in counts):
            raise ValueError("must be a positive count (or a positive count per label)")
        return value

    @property
    def student(self) -> str:
        return self.fidelity_student or "tfidf-lr"

    def keeping(self, k: int | dict[str, int]) -> "FilterConfig":
        """This filter with ``k`` rows kept per label, where its fidelity mode keeps a count (top-k, sample)."""
        return self.model_copy(update={"fidelity_top_k": k}) if self.fidelity in COUNTED else self

    def describe(self) -> str:
        """One line for reports: what a filtered cell's rows went through."""
        parts = ["exact dedup"] if self.exact_dedup else []
        if self.near_dup_threshold is not None:
            parts.append(f"near duplicates (char {self.near_dup_ngram}-gram Jaccard >= {self.near_dup_threshold:g})")
        if self.train_copy_threshold is not None:
            parts.append(f"training-row copies ({self.copy_ngram}-gram containment >= {self.train_copy_threshold:g})")
        bounds = [f"{name} {value}" for name, value in (("min words", self.min_words), ("max words", self.max_words),
                  ("min chars", self.min_chars), ("max chars", self.max_chars)) if value is not None]
        parts += [", ".join(bounds)] if bounds else []
        fidelity = {"off": None, "threshold": f"rows {self.fidelity_classifier} agrees with at p >= "
                                              f"{self.fidelity_threshold:g}",
                    "top-k": f"the rows per label {self.fidelity_classifier} is surest of (top-k)",
                    "sample": f"a seeded random draw per label of the rows {self.fidelity_classifier} agrees with",
                    "boundary": f"the rows per label {self.fidelity_classifier} is sure of and "
                                f"{self.student} is not (boundary)"}
        if fidelity[self.fidelity] and self.fidelity_relabel is not None:
            parts.append(f"relabel: rows {self.fidelity_classifier} puts in another label at p >= "
                         f"{self.fidelity_relabel:g} move there")
        if fidelity[self.fidelity]:
            parts.append("fidelity: " + fidelity[self.fidelity])
        return "; ".join(parts) or "nothing"

    @model_validator(mode="after")
    def _consistent(self) -> "FilterConfig":
        if self.fidelity in COUNTED and self.fidelity_top_k is None:
            raise ValueError(f"fidelity '{self.fidelity}' needs fidelity_top_k")
        if self.fidelity_student is not None and self.fidelity != "boundary":
            raise ValueError("fidelity_student applies to fidelity 'boundary' only")
        if self.fidelity_relabel is not None and self.fidelity == "off":
            raise ValueError("fidelity_relabel needs a fidelity mode (threshold, top-k or sample)")
        for low, high in (("min_words", "max_words"), ("min_chars", "max_chars")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} ({lo}) is larger than {high} ({hi})")
        return self


# --- text similarity -------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """Lower-case word tokens; punctuation and emoji are not words."""
    return WORD.findall(unicodedata.normalize("NFKC", str(text)).replace("\u2019", "'").lower())


def word_ngrams(tokens: Sequence[str], n: int) -> list[str]:
    return [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def char_ngrams(text: str, n: int) -> set[str]:
    """Character n-grams of the normalised text; a shorter text is its own single shingle."""
    norm = " ".join(words(text))
    if len(norm) <= n:
        return {norm} if norm else set()
    return {norm[i:i + n] for i in range(len(norm) - n + 1)}


def max_overlap(candidates: Sequence[str], references: Sequence[str], n: int = 3) -> np.ndarray:
    """Per candidate: the largest share of its word n-grams found in any single reference.

    A candidate shorter than ``n`` words uses n-grams of its own length, and
    references offer every order up to ``n``, so "love it" is found in "i love it".
    Empty candidates score 0.
    """
    vocab: dict[str, int] = {}
    cand = _binary_rows([set(word_ngrams(t, min(n, len(t)))) if t else set() for t in map(words, candidates)],
                        vocab, grow=True)
    out = np.zeros(len(candidates), dtype=float)
    if not references or not vocab:
        return out
    ref_grams = [{g for k in range(1, n + 1) for g in word_ngrams(t, k)} for t in map(words, references)]
    ref = _binary_rows(ref_grams, vocab, grow=False).T.tocsc()
    sizes = np.maximum(np.asarray(cand.sum(axis=1)).ravel(), 1)
    step = max(1, OVERLAP_CELLS // max(1, len(references)))
    for start in range(0, len(candidates), step):
        shared = cand[start:start + step] @ ref
        out[start:start + step] = shared.max(axis=1).toarray().ravel() / sizes[start:start + step]
    return out


def _binary_rows(rows: Sequence[set[str]], vocab: dict[str, int], grow: bool) -> sparse.csr_matrix:
    """A 0/1 CSR matrix over ``vocab``; unknown grams grow it or are ignored.

    Grams are visited sorted: set order follows the per-process string hash, and
    the ids feed MinHash, so unsorted ids would make near-dup results vary by run.
    """
    indptr, indices = [0], []
    for grams in rows:
        for gram in sorted(grams):
            if grow and gram not in vocab:
                vocab[gram] = len(vocab)
            if gram in vocab:
                indices.append(vocab[gram])
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.int32)
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(rows), max(len(vocab), 1)))
    matrix.sort_indices()
    return matrix


def near_duplicate_mask(texts: Sequence[str], threshold: float, seed: int, ngram: int = 5) -> np.ndarray:
    """Keep-mask: False for a row whose char n-gram Jaccard with an earlier kept row is >= threshold.

    MinHash + LSH keeps this linear in rows (100k tweets: 10-25 s on 2 busy cores);
    ``seed`` picks the hash functions, so a seed can only change which borderline
    pairs LSH misses, never drop a pair below the threshold.
    """
    vocab: dict[str, int] = {}
    shingles = _binary_rows([char_ngrams(t, ngram) for t in texts], vocab, grow=True)
    keep = np.ones(len(texts), dtype=bool)
    if not vocab:
        return keep
    signatures = _minhash(shingles, seed)
    band_keys = _band_keys(signatures, _rows_per_band(threshold), seed)
    candidates = _rows_sharing_a_bucket(band_keys) & (np.diff(shingles.indptr) > 0)
    buckets: dict[tuple[int, int], list[int]] = {}
    row_sets: dict[int, frozenset[int]] = {}
    rows = np.flatnonzero(candidates)
    for row, row_keys in zip(rows.tolist(), band_keys[rows].tolist()):
        keys = list(enumerate(row_keys))
        earlier = sorted({c for key in keys for c in buckets.get(key, ())})
        if any(_jaccard(shingles, row, other, row_sets) >= threshold for other in earlier):
            keep[row] = False
            continue
        for key in keys:
            buckets.setdefault(key, []).append(row)
    return keep


def _minhash(shingles: sparse.csr_matrix, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, NUM_PERM, dtype=np.int64)
    b = rng.integers(0, PRIME, NUM_PERM, dtype=np.int64)
    signatures = np.full((shingles.shape[0], NUM_PERM), PRIME, dtype=np.int64)
    nonempty = np.flatnonzero(np.diff(shingles.indptr) > 0)
    for start in range(0, len(nonempty), MINHASH_CHUNK_ROWS):
        rows = nonempty[start:start + MINHASH_CHUNK_ROWS]
        sub = shingles[rows]
        hashed = (np.multiply.outer(sub.indices.astype(np.int64), a) + b) % PRIME
        signatures[rows] = np.minimum.reduceat(hashed, sub.indptr[:-1], axis=0)
    return signatures


def _rows_per_band(threshold: float) -> int:
    """Widest band that still finds a pair at the threshold with probability LSH_RECALL:
    wider bands mean fewer dissimilar candidates to verify."""
    best = 1
    for rows in range(1, NUM_PERM + 1):
        if 1 - (1 - threshold ** rows) ** (NUM_PERM // rows) >= LSH_RECALL:
            best = rows
    return best


def _band_keys(signatures: np.ndarray, rows: int, seed: int) -> np.ndarray:
    bands = NUM_PERM // rows
    mult = np.random.default_rng([seed, 1]).integers(1, 2 ** 63, rows * bands, dtype=np.uint64) | np.uint64(1)
    mixed = signatures[:, : rows * bands].astype(np.uint64) * mult
    return mixed.reshape(len(signatures), bands, rows).sum(axis=2, dtype=np.uint64)


def _rows_sharing_a_bucket(band_keys: np.ndarray) -> np.ndarray:
    shared = np.zeros(len(band_keys), dtype=bool)
    for band in range(band_keys.shape[1]):
        _, inverse, counts = np.unique(band_keys[:, band], return_inverse=True, return_counts=True)
        shared |= counts[inverse] > 1
    return shared


def _jaccard(matrix: sparse.csr_matrix, i: int, j: int, cache: dict[int, frozenset[int]]) -> float:
    for row in (i, j):
        if row not in cache:
            cache[row] = frozenset(matrix.indices[matrix.indptr[row]:matrix.indptr[row + 1]].tolist())
    a, b = cache[i], cache[j]
    return len(a & b) / len(a | b) if a or b else 0.0


# --- the filter stages ------------------------------------------------------------------------------

class FilterStep(BaseModel):
    """One filter's line in the report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: str
    rows_in: int
    dropped: int
    kept: int
    dropped_by_label: dict[str, int] = {}
    moved: dict[str, int] = Field(default_factory=dict, exclude_if=lambda v: not v)   # relabel: "a -> b": rows

    @classmethod
    def of(cls, name: str, rows_in: int, dropped: int, dropped_by_label: dict[str, int],
           moved: dict[str, int] | None = None) -> FilterStep:
        return cls(filter=name, rows_in=rows_in, dropped=dropped, kept=rows_in - dropped,
                   dropped_by_label=dropped_by_label, moved=moved or {})


class FilterReport(BaseModel):
    """What the filters dropped: the ``filter`` record of a generate job's, a recipe's and an
    experiment cell's provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows_in: int
    rows_kept: int
    steps: list[FilterStep]
    config: FilterConfig

    def to_markdown(self) -> str:
        lines = ["| filter | rows in | dropped | kept | dropped by label |", "|---|---:|---:|---:|---|"]
        for s in self.steps:
            by_label = ", ".join([*(f"{k}: {v}" for k, v in sorted(s.dropped_by_label.items())),
                                  *(f"moved {k}: {v}" for k, v in sorted(s.moved.items()))]) or "-"
            lines.append(f"| {s.filter} | {s.rows_in} | {s.dropped} | {s.kept} | {by_label} |")
        lines.append(f"| **total** | {self.rows_in} | {self.rows_in - self.rows_kept} | {self.rows_kept} | |")
        return "\n".join(lines)


@dataclass(frozen=True)
class FilterResult:
    """The kept rows (original index preserved, so rows trace back to the input),
    the dropped rows with a ``filter`` column naming who dropped them, and the report."""

    kept: pd.DataFrame
    dropped: pd.DataFrame
    report: FilterReport


@dataclass(frozen=True)
class _Context:
    train: pd.DataFrame
    config: FilterConfig
    seed: int
    classifier: Any
    fitted: dict[str, Any] = field(default_factory=dict)   # the fidelity classifier, once fitted


Stage = Callable[[pd.DataFrame, _Context], np.ndarray]


def filter_synthetic(synthetic: pd.DataFrame, train: pd.DataFrame, config: FilterConfig | None = None,
                     seed: int = 0, classifier: Any = None) -> FilterResult:
    """Run the enabled filters in order; inputs are not modified.

    ``classifier`` (label fidelity only): a fitted estimator is used as given, an
    unfitted one is cloned and fitted on ``train``; None trains
    ``config.fidelity_classifier`` on ``train`` with ``seed``.
    """
    config = config or FilterConfig()
    require_columns(synthetic, "synthetic rows")
    require_columns(train, "training rows")
    ctx = _Context(train, config, seed, classifier)
    frame, steps, dropped = synthetic, [], []
    for name, stage, moves in _stages(config):
        if moves:
            labels = stage(frame, ctx)
            moved = _moves(frame[LABEL].astype(str).to_numpy(), labels)
            steps.append(FilterStep.of(name, len(frame), 0, {}, moved))
            log.info("filter %s: %d in, %d moved to another label", name, len(frame), sum(moved.values()))
            frame = frame.assign(**{LABEL: labels})
            continue
        keep = np.asarray(stage(frame, ctx), dtype=bool)
        gone = frame[~keep].assign(filter=name)
        steps.append(FilterStep.of(name, len(frame), len(gone), label_counts(gone)))
        log.info("filter %s: %d in, %d dropped", name, len(frame), len(gone))
        dropped.append(gone)
        frame = frame[keep]
    columns = [*synthetic.columns, "filter"]
    dropped_frame = pd.concat(dropped) if dropped else pd.DataFrame(columns=columns)
    report = FilterReport(rows_in=steps[0].rows_in if steps else len(frame), rows_kept=len(frame), steps=steps,
                          config=config)
    return FilterResult(frame.copy(), dropped_frame, report)


def _stages(config: FilterConfig) -> list[tuple[str, Stage, bool]]:
    """(name, stage, whether it moves rows to other labels instead of dropping them), in order."""
    stages: list[tuple[str, Stage, bool]] = []
    if any(v is not None for v in (config.min_words, config.max_words, config.min_chars, config.max_chars)):
        stages.append(("length", _length_stage, False))
    if config.exact_dedup:
        stages.append(("exact-dedup", _exact_stage, False))
    if config.near_dup_threshold is not None:
        stages.append(("near-dup", _near_dup_stage, False))
    if config.train_copy_threshold is not None:
        stages.append(("train-copy", _train_copy_stage, False))
    if config.fidelity != "off" and config.fidelity_relabel is not None:
        stages.append(("relabel", _relabelled, True))
    if config.fidelity != "off":
        stages.append(("label-fidelity", _fidelity_stage, False))
    return stages


def _length_stage(frame: pd.DataFrame, ctx: _Context) -> np.ndarray:
    c = ctx.config
    n_words = np.array([len(words(t)) for t in frame[TEXT]], dtype=int)
    n_chars = np.array([len(str(t).strip()) for t in frame[TEXT]], dtype=int)
    keep = np.ones(len(frame), dtype=bool)
    for values, low, high in ((n_words, c.min_words, c.max_words), (n_chars, c.min_chars, c.max_chars)):
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    return keep


def _exact_stage(frame: pd.DataFrame, ctx: _Context) -> np.ndarray:
    """Whitespace-normalised but case-sensitive; case and punctuation variants are the near-dup filter's job."""
    return ~frame[TEXT].map(lambda t: " ".join(str(t).split())).duplicated(keep="first").to_numpy()


def _near_dup_stage(frame: pd.DataFrame, ctx: _Context) -> np.ndarray:
    return near_duplicate_mask(frame[TEXT].tolist(), ctx.config.near_dup_threshold, ctx.seed,
                               ctx.config.near_dup_ngram)


def _train_copy_stage(frame: pd.DataFrame, ctx: _Context) -> np.ndarray:
    overlap = max_overlap(frame[TEXT].tolist(), ctx.train[TEXT].tolist(), ctx.config.copy_ngram)
    return overlap < ctx.config.train_copy_threshold


def _fidelity_stage(frame: pd.DataFrame, ctx: _Context) -> np.ndarray:
    if frame.empty:
        return np.ones(0, dtype=bool)
    scores, agrees = label_scores(_fidelity_classifier(ctx), frame)
    if ctx.config.fidelity == "threshold":
        return agrees & (scores >= ctx.config.fidelity_threshold)
    if ctx.config.fidelity == "boundary":
        student, _ = label_scores(_student(ctx), frame)
        return agrees & _top_k_per_label(frame[LABEL].to_numpy(), np.where(agrees, scores - student, -np.inf),
                                         ctx.config.fidelity_top_k)
    if ctx.config.fidelity == "sample":
        order = np.random.default_rng(ctx.seed).permutation(len(frame))
        ranks = np.empty(len(frame))
        ranks[order] = np.arange(len(frame), 0, -1)   # a seeded random rank; a larger k keeps a superset
        return agrees & _top_k_per_label(frame[LABEL].to_numpy(), np.where(agrees, ranks, -1),
                                         ctx.config.fidelity_top_k)
    return _top_k_per_label(frame[LABEL].to_numpy(), scores, ctx.config.fidelity_top_k)


def _relabelled(frame: pd.DataFrame, ctx: _Context) -> np.ndarray:
    """Each row's label, or the one the classifier puts it in with ``fidelity_relabel`` confidence."""
    labels = frame[LABEL].astype(str).to_numpy(dtype=object)
    if frame.empty:
        return labels
    classifier = _fidelity_classifier(ctx)
    proba = np.asarray(classifier.predict_proba(frame[TEXT].tolist()))
    best = np.argmax(proba, axis=1)
    sure = proba[np.arange(len(frame)), best] >= ctx.config.fidelity_relabel
    classes = np.asarray([str(c) for c in classifier.classes_], dtype=object)
    return np.where(sure, classes[best], labels)


def _moves(before: np.ndarray, after: np.ndarray) -> dict[str, int]:
    changed = before != after
    pairs = pd.Series([f"{a} -> {b}" for a, b in zip(before[changed], after[changed])], dtype=object)
    return {str(k): int(v) for k, v in pairs.value_counts().sort_index().items()}


def _fidelity_classifier(ctx: _Context) -> Any:
    """Fitted once per filter run (relabel and fidelity share it)."""
    from classifiers.factory import fitted_classifier, is_fitted

    if "fidelity" in ctx.fitted:
        return ctx.fitted["fidelity"]
    chosen = ctx.classifier if ctx.classifier is not None else ctx.config.fidelity_classifier
    if isinstance(chosen, str) or not is_fitted(chosen):
        labels = sorted(ctx.train[LABEL].unique())
        if len(labels) < 2:
            raise DataError(f"training rows: label fidelity needs at least 2 labels, got {labels}")
    ctx.fitted["fidelity"] = fitted_classifier(chosen, ctx.train[TEXT].tolist(), ctx.train[LABEL].tolist(), ctx.seed)
    return ctx.fitted["fidelity"]


def _student(ctx: _Context) -> Any:
    from classifiers.factory import fitted_classifier

    return fitted_classifier(ctx.config.student, ctx.train[TEXT].tolist(), ctx.train[LABEL].tolist(), ctx.seed)


def label_scores(classifier: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the classifier's probability of the row's own label, and whether it is the top label."""
    classes = [str(c) for c in classifier.classes_]
    unknown = sorted(set(frame[LABEL].astype(str)) - set(classes))
    if unknown:
        raise DataError(f"synthetic rows: label(s) {', '.join(unknown)} unknown to the classifier "
                        f"(it knows {', '.join(classes)})")
    proba = classifier.predict_proba(frame[TEXT].tolist())
    own = np.array([classes.index(str(label)) for label in frame[LABEL]], dtype=int)
    scores = proba[np.arange(len(frame)), own]
    return scores, np.argmax(proba, axis=1) == own


def _top_k_per_label(labels: np.ndarray, scores: np.ndarray, k: int | dict[str, int]) -> np.ndarray:
    """LAMBADA: the k rows of each label the classifier is surest belong to it; ties keep input order."""
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        if isinstance(k, dict) and str(label) not in k:
            raise DataError(f"synthetic rows: fidelity_top_k gives no count for label '{label}' "
                            f"(it has {', '.join(sorted(k))})")
        rows = np.flatnonzero(labels == label)
        keep[rows[np.argsort(-scores[rows], kind="stable")[:k[str(label)] if isinstance(k, dict) else k]]] = True
    return keep


def pseudo_labelled(texts: list[str], classifier: Any) -> pd.DataFrame:
    """``texts`` with the classifier's label and its probability, surest first (ties keep input order)."""
    if not texts:
        return pd.DataFrame(columns=[TEXT, LABEL, SCORE])
    proba = np.asarray(classifier.predict_proba(texts))
    best = np.argmax(proba, axis=1)
    frame = pd.DataFrame({TEXT: texts, LABEL: np.asarray(classifier.classes_, dtype=object)[best],
                          SCORE: proba[np.arange(len(texts)), best]})
    return frame.sort_values(SCORE, ascending=False, kind="stable").reset_index(drop=True)


def require_columns(frame: Any, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a DataFrame with columns '{TEXT}' and '{LABEL}', "
                        f"got {type(frame).__name__}")
    missing = [c for c in (TEXT, LABEL) if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                        f"expected '{TEXT}' and '{LABEL}' (got {', '.join(map(str, frame.columns))})")
