"""Quality metrics equal values worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from augment.metrics import distinct_n, mean_words, quality_report, self_bleu, sentence_bleu
from classifiers import make_classifier

SYN = pd.DataFrame({"text": ["The cat sat.", "the cat ran", "a dog ran!"], "label": ["a", "a", "b"]})
TRAIN = pd.DataFrame({"text": ["the cat sat on the mat", "a dog barked", "cats purr", "dogs bark loud"],
                      "label": ["a", "b", "a", "b"]})


def test_distinct_n_on_three_sentences():
    texts = SYN["text"].tolist()
    # unigrams: the cat sat the cat ran a dog ran -> 9 tokens, 6 distinct
    assert distinct_n(texts, 1) == pytest.approx(6 / 9)
    # bigrams: the-cat cat-sat the-cat cat-ran a-dog dog-ran -> 6, 5 distinct
    assert distinct_n(texts, 2) == pytest.approx(5 / 6)
    assert distinct_n(["one"], 2) is None


def test_sentence_bleu_by_hand():
    assert sentence_bleu("the cat sat".split(), ["the cat sat".split()]) == pytest.approx(1.0)
    # p1 = 2/3, p2 = 1/2, p3 = 0 -> epsilon 0.1; same length, no brevity penalty
    assert sentence_bleu("the cat sat".split(), ["the cat ran".split(), "a dog ran".split()]) == \
        pytest.approx((2 / 3 * 1 / 2 * 0.1) ** (1 / 3))
    # clipping: "the" twice in the hypothesis, once in the reference -> p1 = 1/2; p2 = eps/1
    # hypothesis shorter than the closest reference (3): brevity penalty exp(1 - 3/2)
    assert sentence_bleu(["the", "the"], [["the", "cat", "sat"]]) == \
        pytest.approx(math.exp(1 - 3 / 2) * math.sqrt(1 / 2 * 0.1))


def test_self_bleu_by_hand_and_sample_bound():
    a = (2 / 3 * 1 / 2 * 0.1) ** (1 / 3)      # "the cat sat" vs the other two
    b = (1 * 1 / 2 * 0.1) ** (1 / 3)          # "the cat ran": the, cat, ran all found elsewhere
    c = (1 / 3 * 0.1 / 2 * 0.1) ** (1 / 3)    # "a dog ran": only "ran" found
    assert self_bleu(SYN["text"].tolist()) == pytest.approx((a + b + c) / 3)
    assert self_bleu(["same words here"] * 5) == pytest.approx(1.0)
    assert self_bleu(["only one"]) is None
    many = [f"row {i} text" for i in range(50)]
    assert self_bleu(many, seed=3, max_rows=10) == self_bleu(many, seed=3, max_rows=10)


def test_quality_report_by_hand():
    report = quality_report(SYN, TRAIN, seed=0)
    assert report["rows"] == 3 and report["rows_by_label"] == {"a": 2, "b": 1}
    assert report["distinct_1"] == pytest.approx(6 / 9)
    assert report["distinct_2"] == pytest.approx(5 / 6)
    # "the cat sat" is a trigram of a training row; the other two share no trigram with any
    assert report["mean_max_overlap"] == pytest.approx(1 / 3)
    assert report["novelty"] == pytest.approx(2 / 3)
    assert report["mean_words"] == pytest.approx(3.0)
    assert report["real_mean_words"] == pytest.approx((6 + 3 + 2 + 3) / 4)
    assert 0 <= report["label_agreement"] <= 1 and set(report["label_agreement_by_label"]) == {"a", "b"}


def test_label_agreement_with_a_fitted_classifier():
    train = pd.DataFrame({"text": ["good great", "great fun", "bad awful", "awful sad"] * 3,
                          "label": ["pos", "pos", "neg", "neg"] * 3})
    clf = make_classifier("tfidf-lr", 0).fit(train["text"], train["label"])
    syn = pd.DataFrame({"text": ["great fun", "good", "awful", "bad"], "label": ["pos", "pos", "pos", "neg"]})
    report = quality_report(syn, train, classifier=clf)
    assert report["label_agreement"] == pytest.approx(3 / 4)
    assert report["label_agreement_by_label"] == {"neg": 1.0, "pos": pytest.approx(2 / 3)}


def test_empty_and_single_label_inputs_give_none_not_nan():
    report = quality_report(SYN.iloc[:0], TRAIN)
    assert report["distinct_1"] is None and report["novelty"] is None and report["label_agreement"] is None
    one_label = quality_report(SYN, TRAIN[TRAIN["label"] == "a"])
    assert one_label["label_agreement"] is None
    assert mean_words([]) is None


def test_fragment_rate_counts_rows_that_start_mid_sentence():
    from augment.metrics import fragment_rate, quality_report

    rows = ["'s response:", ", we should go", "use 90% of the time?", "- ok then", "I love it", "n't go", "@user hi"]
    assert fragment_rate(rows) == pytest.approx(4 / 7)
    assert fragment_rate([]) is None
    synthetic = pd.DataFrame({"text": rows, "label": ["pos"] * 7})
    train = pd.DataFrame({"text": ["Good day", "bad day"], "label": ["pos", "neg"]})
    report = quality_report(synthetic, train, reference=["A real row", ". a fragment"])
    assert report["fragment_rate"] == pytest.approx(4 / 7) and report["real_fragment_rate"] == 0.5
    assert report["reference_rows"] == 2 and report["real_distinct_2"] == 1.0
    assert report["label_agreement_min"] == min(report["label_agreement_by_label"].values())
