"""The embedding cache: frozen-encoder vectors are computed once per text and shared by clones."""

from __future__ import annotations

import copy
import zlib

import numpy as np
import pytest
import torch
from sklearn.base import clone

import classifiers.embedding as embedding
from classifiers import EMBEDDING_DIM, EmbeddingCache, EmbeddingLogReg, make_classifier


class CountingEncoder:
    """Stands in for MiniLM: a hashed bag of words, and a record of every text it was asked to encode."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str], **_: object) -> torch.Tensor:
        self.seen.extend(texts)
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                out[row, zlib.crc32(word.encode()) % EMBEDDING_DIM] += 1
        return torch.from_numpy(out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9))


@pytest.fixture
def encoder(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    fake = CountingEncoder()
    monkeypatch.setattr(embedding, "load_encoder", lambda path, device, precision="fp32": fake)
    return fake


X = ["sunny happy day", "happy lovely smile", "rainy sad night", "sad awful loss"]
Y = ["pos", "pos", "neg", "neg"]
TEST = ["happy sunny smile", "sad rainy loss", "happy sunny smile"]


def test_second_evaluation_does_not_re_encode(encoder: CountingEncoder):
    cache = EmbeddingCache()
    first = make_classifier("minilm-lr", seed=0, embedding_cache=cache)
    first.fit(X, Y)
    predicted = first.predict(TEST)
    assert list(predicted) == ["pos", "neg", "pos"]
    assert sorted(encoder.seen) == sorted(set(X) | set(TEST))       # each distinct text once
    second = clone(first)                                          # what the runner does per cell
    assert second.cache is cache
    second.fit(X + ["great happy news"], Y + ["pos"])
    np.testing.assert_allclose(second.predict_proba(TEST).sum(axis=1), 1.0)
    assert encoder.seen.count("happy sunny smile") == 1 and encoder.seen[-1] == "great happy news"
    assert cache.encoded == len(set(X) | set(TEST)) + 1
    assert cache.reused == len(X) + len(TEST) + 1                  # the repeat in TEST, then X and TEST again


def test_uncached_estimator_encodes_every_call(encoder: CountingEncoder):
    clf = EmbeddingLogReg(random_state=0).fit(X, Y)
    clf.predict(TEST)
    clf.predict(TEST)
    assert len(encoder.seen) == len(X) + 2 * len(TEST)


def test_cached_vectors_equal_fresh_ones_and_oldest_are_evicted(encoder: CountingEncoder):
    cache = EmbeddingCache(max_rows=3)
    fresh = EmbeddingLogReg().embed(X)
    cached = EmbeddingLogReg(cache=cache).embed(X)
    np.testing.assert_array_equal(cached, fresh)
    assert len(cache) == 3 and copy.deepcopy(cache) is cache
    EmbeddingLogReg(cache=cache).embed(X[:1])                       # evicted: encoded again
    assert encoder.seen[-1] == X[0] and cache.encoded == 5
    other = EmbeddingLogReg(cache=cache, model_path="/elsewhere").embed(X[-1:])
    assert cache.encoded == 6 and other.shape == (1, EMBEDDING_DIM)   # another model is another scope


def test_setfit_takes_no_cache():
    clf = make_classifier("setfit", seed=0, embedding_cache=EmbeddingCache())
    assert "cache" not in clf.get_params()


def test_bf16_encoder_is_close_to_fp32_and_cached_apart() -> None:
    """The real MiniLM: bf16 weights give vectors within a cosine of 0.99 of fp32, and a shared cache never
    hands one format's vectors to the other."""
    cache = EmbeddingCache()
    fp32 = EmbeddingLogReg(cache=cache).embed(X)
    bf16 = EmbeddingLogReg(cache=cache, precision="bf16").embed(X)
    assert fp32.dtype == bf16.dtype == np.float32 and cache.encoded == 2 * len(X)
    assert 0.99 < (fp32 * bf16).sum(axis=1).min() and not np.array_equal(fp32, bf16)
    assert embedding.encoder_precision("fp16", str(embedding.minilm_path()), "cpu") == "fp32"
    assert embedding.encoder_precision("auto", str(embedding.minilm_path()), "cpu") in ("fp32", "bf16")
    assert make_classifier("minilm-lr", 0, precision="bf16").precision == "bf16"
