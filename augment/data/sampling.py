"""Seeded, stratified sampling and splits."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from augment.data.columns import LABEL
from augment.errors import DataError


def sample_per_class(frame: pd.DataFrame, n: int, seed: int, source: str = "data") -> pd.DataFrame:
    """Exactly ``n`` rows of every label, or an error naming the short label."""
    short = _labels_short_of(frame, n)
    if short:
        raise DataError(f"{source}: {n} rows per label requested but {short}")
    parts = [group.sample(n=n, random_state=seed) for _, group in frame.groupby(LABEL, sort=True)]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def hold_out_per_class(frame: pd.DataFrame, n: int, seed: int,
                       source: str = "data") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` rows of every label held out, the rest kept; every label must keep at least one row."""
    short = _labels_short_of(frame, n + 1)
    if short:
        raise DataError(f"{source}: holding out {n} rows per label leaves none to train on: {short}")
    held = frame.groupby(LABEL, sort=True, group_keys=False).sample(n=n, random_state=seed)
    kept = frame.drop(index=held.index)
    return kept.reset_index(drop=True), held.sort_index().reset_index(drop=True)


def _labels_short_of(frame: pd.DataFrame, n: int) -> str:
    """The labels with fewer than ``n`` rows, as ``'neg' has 3, 'pos' has 4`` (empty when none), for one-line errors."""
    counts = frame[LABEL].value_counts()
    return ", ".join(f"'{k}' has {int(v)}" for k, v in sorted(counts.items()) if v < n)


def split_train_test(frame: pd.DataFrame, test_size: int | float, seed: int,
                     source: str = "data") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified split; every label must have rows on both sides."""
    counts = frame[LABEL].value_counts()
    if (counts < 2).any():
        lonely = ", ".join(f"'{k}'" for k in counts[counts < 2].index)
        raise DataError(f"{source}: label(s) {lonely} have fewer than 2 rows; cannot split into train and test")
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[LABEL])
    except ValueError as exc:
        raise DataError(f"{source}: cannot split {len(frame)} rows with test_size={test_size} ({exc})") from None
    return train.reset_index(drop=True), test.reset_index(drop=True)
