"""Baselines: exactly n rows, the same rows for the same seed, errors for unknown labels."""

from __future__ import annotations

import pandas as pd
import pytest

from augment.baselines import LABEL_NAME_TEMPLATES, EDAAugmenter, LabelNameAugmenter, OversampleAugmenter
from augment.errors import ConfigError, DataError

TRAIN = pd.DataFrame({"text": ["I love sunny days", "What a great lovely show", "so happy today",
                               "I hate rainy days", "awful service again"],
                      "label": ["pos", "pos", "pos", "neg", "neg"]})


@pytest.mark.parametrize("cls", [OversampleAugmenter, EDAAugmenter, LabelNameAugmenter])
@pytest.mark.parametrize("n", [0, 1, 7])
def test_exactly_n_rows_of_the_label(cls, n):
    rows = cls(TRAIN).generate(label="pos", n=n, seed=0)
    assert list(rows.columns) == ["text", "label"] and len(rows) == n
    assert (rows["label"] == "pos").all()


@pytest.mark.parametrize("cls", [OversampleAugmenter, EDAAugmenter, LabelNameAugmenter])
def test_deterministic_per_seed(cls):
    aug = cls(TRAIN)
    first = aug.generate("pos", 20, seed=1)
    pd.testing.assert_frame_equal(first, cls(TRAIN).generate("pos", 20, seed=1))
    assert not first.equals(aug.generate("pos", 20, seed=2))


@pytest.mark.parametrize("cls", [OversampleAugmenter, EDAAugmenter, LabelNameAugmenter])
def test_unknown_label_lists_the_labels(cls):
    with pytest.raises(ConfigError, match="no label 'meh'; labels are neg, pos"):
        cls(TRAIN).generate("meh", 3, seed=0)


def test_oversample_uses_every_row_evenly():
    rows = OversampleAugmenter(TRAIN).generate("pos", 7, seed=0)
    counts = rows["text"].value_counts()
    assert set(counts.index) == set(TRAIN.loc[TRAIN["label"] == "pos", "text"])
    assert sorted(counts.tolist()) == [2, 2, 3]


def test_eda_edits_stay_in_label_vocabulary():
    aug = EDAAugmenter(TRAIN, alpha=0.5, operations=("insert",))
    pos_words = {w for t in TRAIN.loc[TRAIN["label"] == "pos", "text"] for w in t.split()}
    rows = aug.generate("pos", 10, seed=0)
    assert all(set(t.split()) <= pos_words for t in rows["text"])
    assert all(len(t.split()) > 3 for t in rows["text"])   # every row got >= 1 insertion
    swapped = EDAAugmenter(TRAIN, operations=("swap",)).generate("neg", 4, seed=0)
    originals = {tuple(sorted(t.split())) for t in TRAIN["text"]}
    assert all(tuple(sorted(t.split())) in originals for t in swapped["text"])


def test_bad_train_and_params():
    TRAIN_COPY = TRAIN.copy()
    EDAAugmenter(TRAIN).generate("pos", 5, seed=0)
    pd.testing.assert_frame_equal(TRAIN, TRAIN_COPY)
    with pytest.raises(DataError, match="columns 'text' and 'label'"):
        OversampleAugmenter(pd.DataFrame({"sentence": ["a"]}))
    with pytest.raises(ConfigError, match="operations"):
        EDAAugmenter(TRAIN, operations=("synonym",))
    with pytest.raises(ConfigError, match="alpha"):
        EDAAugmenter(TRAIN, alpha=0)


def test_label_name_rows_name_the_label_in_words():
    aug = LabelNameAugmenter(TRAIN, descriptions={"neg": "a complaint"})
    neg = aug.generate("neg", len(LABEL_NAME_TEMPLATES), seed=0)["text"].tolist()
    assert sorted(neg) == sorted(t.replace("{label}", "a complaint") for t in LABEL_NAME_TEMPLATES)
    pos = LabelNameAugmenter(TRAIN.replace({"pos": "very_good"})).generate("very_good", 3, seed=0)["text"]
    assert all("very good" in t and "{label}" not in t for t in pos)


def test_label_name_cycles_templates_evenly_and_refuses_templates_without_the_label():
    rows = LabelNameAugmenter(TRAIN, templates=["{label}!", "It is {label}."]).generate("pos", 5, seed=3)
    assert sorted(rows["text"].value_counts().tolist()) == [2, 3]
    with pytest.raises(ConfigError, match="must hold '\\{label\\}', got 'no label here'"):
        LabelNameAugmenter(TRAIN, templates=["{label}", "no label here"])
