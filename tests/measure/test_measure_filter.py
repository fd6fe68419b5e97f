"""Each filter drops exactly the hand-made rows it should, and says so in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from augment.errors import ConfigError, DataError
from augment.config import build
from augment.filter import (FilterConfig, char_ngrams, filter_synthetic, max_overlap, near_duplicate_mask,
                            words)
from classifiers import make_classifier

OFF = dict(exact_dedup=False, min_words=None, near_dup_threshold=None, train_copy_threshold=None)
TRAIN = pd.DataFrame({
    "text": ["what a wonderful sunny day at the beach", "i adore this lovely little cafe",
             "great service and happy staff", "the worst delay ever and rude staff",
             "awful cold soup and a dirty table", "terrible noisy room i hate it"],
    "label": ["pos", "pos", "pos", "neg", "neg", "neg"],
})


def frame(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "label"])


def only(**on) -> FilterConfig:
    return FilterConfig(**{**OFF, **on})


def test_words_and_shingles_are_normalised():
    assert words("I LOVE it!!  Don’t stop :)") == ["i", "love", "it", "don't", "stop"]
    assert char_ngrams("Hi!", 5) == {"hi"}
    assert char_ngrams("abcdef", 5) == {"abcde", "bcdef"}
    assert char_ngrams("!!!", 5) == set()


def test_exact_dedup_keeps_first_and_ignores_whitespace_only():
    syn = frame(("good day", "pos"), ("good  day ", "pos"), ("Good day", "pos"), ("good day", "neg"))
    result = filter_synthetic(syn, TRAIN, only(exact_dedup=True), seed=0)
    assert result.kept.index.tolist() == [0, 2]
    assert [(s.filter, s.rows_in, s.dropped) for s in result.report.steps] == [("exact-dedup", 4, 2)]
    assert result.report.steps[0].dropped_by_label == {"neg": 1, "pos": 1}
    assert result.dropped["filter"].tolist() == ["exact-dedup", "exact-dedup"]


def test_near_duplicates_dropped_distinct_rows_kept():
    syn = frame(("I love this movie so much!!", "pos"), ("i love this movie so much", "pos"),
                ("the food was cold and bland", "neg"), ("the food was cold and bland!!!", "neg"),
                ("I really love this movie so much", "pos"), ("completely different words here", "neg"))
    result = filter_synthetic(syn, TRAIN, only(near_dup_threshold=0.8), seed=0)
    assert result.kept.index.tolist() == [0, 2, 4, 5]   # row 4: char 5-gram Jaccard 0.69 < 0.8
    assert result.report.steps[0].model_dump(mode="json") == {"filter": "near-dup", "rows_in": 6, "dropped": 2,
                                                               "kept": 4, "dropped_by_label": {"neg": 1, "pos": 1}}


def test_near_duplicate_mask_matches_brute_force_for_any_seed():
    rng = np.random.default_rng(1)
    vocab = ["sun", "rain", "cold", "warm", "day", "night", "good", "bad", "very", "so"]
    base = [rng.choice(vocab, size=6).tolist() for _ in range(40)]
    edited = [t[:k] + [str(rng.choice(vocab))] + t[k + 1:] for t, k in zip(base, rng.integers(0, 6, 40))]
    texts = [" ".join(t) for t in base + edited] + [" ".join(t) + " ok" for t in base[:20]]
    shingles = [char_ngrams(t, 5) for t in texts]
    expected = np.ones(len(texts), dtype=bool)
    for j in range(len(texts)):
        expected[j] = not any(expected[i] and len(shingles[i] & shingles[j]) / len(shingles[i] | shingles[j]) >= 0.7
                              for i in range(j))
    assert 25 < (~expected).sum() < 50   # the one-word edits straddle the threshold
    for seed in (0, 1, 2):
        assert (near_duplicate_mask(texts, 0.7, seed) == expected).all()


def test_copies_of_training_rows_dropped():
    syn = frame(("what a wonderful sunny day at the beach", "pos"),      # verbatim
                ("What a wonderful sunny day!", "pos"),                  # a prefix of a training row
                ("a wonderful sunny day for a walk in the park", "pos"),  # 2 of 8 trigrams shared
                ("rude staff", "neg"),                                   # short row, inside a training row
                ("the soup was cold", "neg"))
    overlap = max_overlap(syn["text"].tolist(), TRAIN["text"].tolist(), 3)
    np.testing.assert_allclose(overlap, [1.0, 1.0, 2 / 8, 1.0, 0.0])
    result = filter_synthetic(syn, TRAIN, only(train_copy_threshold=0.8), seed=0)
    assert result.kept.index.tolist() == [2, 4]


def test_length_bounds_in_words_and_chars():
    syn = frame(("ok", "pos"), ("a fine day", "pos"), ("one two three four five six", "neg"), ("!!!", "neg"))
    result = filter_synthetic(syn, TRAIN, only(min_words=2, max_words=5), seed=0)
    assert result.kept.index.tolist() == [1]
    result = filter_synthetic(syn, TRAIN, only(min_chars=3, max_chars=10), seed=0)
    assert result.kept.index.tolist() == [1, 3]


def test_label_fidelity_threshold_drops_wrong_label_rows():
    syn = frame(("lovely sunny beach day", "pos"), ("rude staff and cold soup", "pos"),
                ("dirty noisy room", "neg"), ("happy staff at a lovely cafe", "neg"))
    result = filter_synthetic(syn, TRAIN, only(fidelity="threshold", fidelity_threshold=0.5), seed=0)
    assert result.kept.index.tolist() == [0, 2]
    assert result.report.steps[0].dropped_by_label == {"neg": 1, "pos": 1}


def test_label_fidelity_top_k_keeps_most_confident_per_label():
    syn = frame(("lovely sunny beach day", "pos"), ("rude staff and cold soup", "pos"), ("happy cafe", "pos"),
                ("dirty noisy room", "neg"), ("happy staff at a lovely cafe", "neg"))
    result = filter_synthetic(syn, TRAIN, only(fidelity="top-k", fidelity_top_k=1), seed=0)
    assert sorted(result.kept["label"]) == ["neg", "pos"]
    assert result.kept.index.tolist() == [0, 3]


def test_label_fidelity_sample_draws_among_agreeing_rows_only():
    pos = [f"lovely sunny day {i}" for i in range(8)] + ["rude staff and cold soup", "dirty noisy room"]
    syn = frame(*((t, "pos") for t in pos), *((f"dirty rude room {i}", "neg") for i in range(6)))
    kept = {seed: filter_synthetic(syn, TRAIN, only(fidelity="sample", fidelity_top_k=k), seed=seed).kept
            for seed, k in ((0, 3), (1, 3))}
    for rows in kept.values():
        assert rows.groupby("label").size().to_dict() == {"neg": 3, "pos": 3}
        assert not set(rows["text"]) & {"rude staff and cold soup", "dirty noisy room"}
    assert set(kept[0]["text"]) != set(kept[1]["text"])     # a draw, not the surest rows
    more = filter_synthetic(syn, TRAIN, only(fidelity="sample", fidelity_top_k=5), seed=0).kept
    assert set(kept[0]["text"]) < set(more["text"])           # a larger need keeps what a smaller one kept
    few = filter_synthetic(syn, TRAIN, only(fidelity="sample", fidelity_top_k=100), seed=0).kept
    assert few.groupby("label").size().to_dict() == {"neg": 6, "pos": 8}   # no disagreeing row fills a gap


def test_fitted_classifier_is_used_as_given_and_not_refitted():
    clf = make_classifier("tfidf-lr", 0).fit(TRAIN["text"], TRAIN["label"])
    coef = clf.pipeline_[-1].coef_.copy()
    syn = frame(("lovely sunny beach day", "neg"),)
    result = filter_synthetic(syn, TRAIN.iloc[:0], only(fidelity="threshold"), seed=0, classifier=clf)
    assert result.kept.empty
    np.testing.assert_array_equal(clf.pipeline_[-1].coef_, coef)


def test_inputs_are_not_modified_and_report_renders():
    syn = frame(("good day", "pos"), ("good day", "pos"), ("x", "neg"))
    before_syn, before_train = syn.copy(), TRAIN.copy()
    result = filter_synthetic(syn, TRAIN, FilterConfig(min_words=2), seed=0)
    pd.testing.assert_frame_equal(syn, before_syn)
    pd.testing.assert_frame_equal(TRAIN, before_train)
    assert [s.filter for s in result.report.steps] == ["length", "exact-dedup", "near-dup", "train-copy"]
    assert result.report.rows_kept == 1
    markdown = result.report.to_markdown()
    assert "| length | 3 | 1 | 2 | neg: 1 |" in markdown and "| **total** | 3 | 2 | 1 | |" in markdown


def test_no_filters_and_empty_input():
    syn = frame(("a", "pos"), ("a", "pos"))
    result = filter_synthetic(syn, TRAIN, only(), seed=0)
    assert result.report.steps == [] and len(result.kept) == 2
    empty = filter_synthetic(syn.iloc[:0], TRAIN, FilterConfig(fidelity="threshold"), seed=0)
    assert empty.kept.empty and all(s.dropped == 0 for s in empty.report.steps)


def test_bad_inputs_and_configs_are_one_line_errors():
    with pytest.raises(DataError, match="synthetic rows: missing column.*'label'"):
        filter_synthetic(pd.DataFrame({"text": ["a"]}), TRAIN, FilterConfig(), seed=0)
    with pytest.raises(DataError, match="unknown to the classifier"):
        filter_synthetic(frame(("a b", "meh")), TRAIN, only(fidelity="threshold"), seed=0)
    with pytest.raises(DataError, match="at least 2 labels"):
        filter_synthetic(frame(("a b", "pos")), TRAIN.iloc[:3], only(fidelity="threshold"), seed=0)
    with pytest.raises(ConfigError, match="fidelity_top_k"):
        build(FilterConfig, "filter", fidelity="top-k")
    with pytest.raises(ConfigError, match="fidelity 'sample' needs fidelity_top_k"):
        build(FilterConfig, "filter", fidelity="sample")
    with pytest.raises(ConfigError, match="unknown key 'near_dup'"):
        build(FilterConfig, "filter", near_dup=0.9)
    with pytest.raises(ConfigError, match="fidelity_classifier"):
        build(FilterConfig, "filter", fidelity_classifier="bert")
    with pytest.raises(ConfigError, match="min_words"):
        build(FilterConfig, "filter", min_words=5, max_words=2)


class _Known(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probabilities are given per text."""

    def __init__(self, pos_proba: dict[str, float] | None = None):
        self.pos_proba = pos_proba
        self.classes_ = np.array(["neg", "pos"])

    def fit(self, X, y):   # an estimator, already fitted: the filter never calls this
        raise AssertionError("refitted")

    def predict_proba(self, texts):
        pos = np.array([self.pos_proba[t] for t in texts])
        return np.stack([1 - pos, pos], axis=1)


def test_relabel_moves_confident_rows_to_their_label_before_the_fidelity_choice():
    syn = frame(("a", "pos"), ("b", "pos"), ("c", "pos"), ("d", "neg"), ("e", "neg"))
    clf = _Known({"a": 0.9, "b": 0.05, "c": 0.4, "d": 0.15, "e": 0.85})
    result = filter_synthetic(syn, TRAIN, only(fidelity="threshold", fidelity_relabel=0.8), seed=0, classifier=clf)
    assert result.kept[["text", "label"]].values.tolist() == [["a", "pos"], ["b", "neg"], ["d", "neg"], ["e", "pos"]]
    assert result.dropped["text"].tolist() == ["c"]          # 0.6 for neg: not sure enough to move, so dropped
    relabel, fidelity = result.report.steps
    assert (relabel.filter, relabel.dropped, relabel.moved) == ("relabel", 0, {"neg -> pos": 1, "pos -> neg": 1})
    assert fidelity.dropped_by_label == {"pos": 1}
    assert "moved pos -> neg: 1" in result.report.to_markdown()
    assert "relabel: rows tfidf-lr puts in another label at p >= 0.8" in result.report.config.describe()
    assert syn["label"].tolist() == ["pos", "pos", "pos", "neg", "neg"]   # the input is not modified
    plain = filter_synthetic(syn, TRAIN, only(fidelity="threshold"), seed=0, classifier=clf)
    assert plain.kept["text"].tolist() == ["a", "d"] and "fidelity_relabel" not in plain.report.config.model_dump()


def test_relabel_needs_a_fidelity_mode_and_a_majority():
    with pytest.raises(ConfigError, match="fidelity_relabel needs a fidelity mode"):
        build(FilterConfig, "filter", fidelity_relabel=0.9)
    with pytest.raises(ConfigError, match="fidelity_relabel"):
        build(FilterConfig, "filter", fidelity="threshold", fidelity_relabel=0.5)


def test_boundary_keeps_rows_the_teacher_is_sure_of_and_the_student_is_not(monkeypatch):
    import augment.filter

    syn = frame(("a", "pos"), ("b", "pos"), ("c", "pos"), ("d", "neg"), ("e", "neg"), ("f", "pos"))
    teacher = _Known({"a": 0.9, "b": 0.8, "c": 0.95, "d": 0.1, "e": 0.2, "f": 0.3})
    student = _Known({"a": 0.85, "b": 0.3, "c": 0.9, "d": 0.6, "e": 0.1, "f": 0.0})
    monkeypatch.setattr(augment.filter, "_student", lambda ctx: student)
    config = only(fidelity="boundary", fidelity_top_k=1, fidelity_student="minilm-lr")
    kept = filter_synthetic(syn, TRAIN, config, seed=0, classifier=teacher).kept
    assert kept["text"].tolist() == ["b", "d"]     # largest teacher - student margin; f: the teacher disagrees
    surest = filter_synthetic(syn, TRAIN, only(fidelity="top-k", fidelity_top_k=1), seed=0, classifier=teacher).kept
    assert surest["text"].tolist() == ["c", "d"]
    assert "the rows per label tfidf-lr is sure of and minilm-lr is not" in config.describe()
    with pytest.raises(ConfigError, match="fidelity 'boundary' needs fidelity_top_k"):
        build(FilterConfig, "filter", fidelity="boundary")
    with pytest.raises(ConfigError, match="fidelity_student applies to fidelity 'boundary' only"):
        build(FilterConfig, "filter", fidelity="top-k", fidelity_top_k=2, fidelity_student="tfidf-lr")


def test_boundary_student_is_trained_on_the_real_rows():
    syn = frame(("lovely sunny beach day", "pos"), ("happy staff at a lovely cafe", "pos"),
                ("dirty noisy room", "neg"), ("rude staff and cold soup", "neg"))
    result = filter_synthetic(syn, TRAIN, only(fidelity="boundary", fidelity_top_k=1), seed=0)
    assert result.kept.groupby("label").size().to_dict() == {"neg": 1, "pos": 1}


@pytest.mark.parametrize("name", ["tfidf-lr", "minilm-lr"])
def test_weighted_classifiers_lean_less_on_light_rows(name):
    wrong = frame(*(("what a wonderful sunny day at the beach", "neg"),) * 6)
    rows = pd.concat([TRAIN, wrong], ignore_index=True)
    fitted = {w: make_classifier(name, 0).fit(rows["text"], rows["label"], sample_weight=[1.0] * 6 + [w] * 6)
              for w in (1.0, 1e-6)}
    probe = ["what a wonderful sunny day at the beach"]
    assert fitted[1.0].predict(probe)[0] == "neg" and fitted[1e-6].predict(probe)[0] == "pos"


def test_an_ensemble_averages_its_members_probabilities():
    ensemble = make_classifier("ensemble:tfidf-lr+minilm-lr", 0).fit(TRAIN["text"], TRAIN["label"])
    members = [make_classifier(n, 0).fit(TRAIN["text"], TRAIN["label"]) for n in ("tfidf-lr", "minilm-lr")]
    probe = ["a lovely day", "rude and dirty", "soup"]
    np.testing.assert_allclose(ensemble.predict_proba(probe),
                               (members[0].predict_proba(probe) + members[1].predict_proba(probe)) / 2, atol=1e-9)
    assert ensemble.predict(probe).tolist()[:2] == ["pos", "neg"]
    kept = filter_synthetic(frame(("lovely sunny beach day", "pos"), ("rude staff and cold soup", "pos")), TRAIN,
                            only(fidelity="threshold", fidelity_classifier="ensemble:tfidf-lr+minilm-lr"), seed=0).kept
    assert kept["text"].tolist() == ["lovely sunny beach day"]


@pytest.mark.parametrize("name, message", [
    ("ensemble:tfidf-lr", "at least two classifiers"),
    ("ensemble:tfidf-lr+ensemble:a+b", "none of them an ensemble"),
    ("ensemble:tfidf-lr+bert", "unknown classifier 'bert'"),
])
def test_bad_ensemble_names_are_one_line_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        build(FilterConfig, "filter", fidelity_classifier=name)
