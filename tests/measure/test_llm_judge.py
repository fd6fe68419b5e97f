"""The LLM judge: the scikit-learn contract, exact answer scores, calibration, the disk cache, its names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import classifiers.judge as judge_module
from augment.config import build
from augment.errors import ConfigError
from augment.filter import FilterConfig, filter_synthetic
from classifiers import LLMJudge, make_classifier
from classifiers.base import judge_name, known_classifier
from classifiers.judge import cached_model, cached_tokenizer, score_texts
from tests.tiny_models import build_tiny_chat_qwen2

X = ["what a good day", "good food and good staff", "so good", "a bad delay", "bad bad service", "really bad"]
Y = ["pos", "pos", "pos", "neg", "neg", "neg"]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_qwen2(tmp_path_factory.mktemp("tiny-chat") / "model", hidden=32, positions=512)


def judge(path: Path, **params) -> LLMJudge:
    return LLMJudge(model=str(path), **{"random_state": 0, **params})


def naive_scores(path: Path, prompt, texts: list[str]) -> np.ndarray:
    """Each (text, answer) as its own sequence through the model: what the packed pass must equal."""
    model = cached_model(str(path), "float32", "cpu")
    out = np.zeros((len(texts), len(prompt.completions)))
    with torch.inference_mode():
        for i, text in enumerate(texts):
            ids = prompt.ids(text)
            for j, answer in enumerate(prompt.completions):
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids + answer])).logits[0].float(), -1)
                out[i, j] = sum(logp[len(ids) - 1 + k, tok].item() for k, tok in enumerate(answer))
    return out


def test_contract_shapes_and_clone(chat_model):
    clf = judge(chat_model, shots=1)
    assert clf.fit(X, Y) is clf
    assert list(clf.classes_) == ["neg", "pos"]
    np.testing.assert_allclose(clf.prior_, [0.5, 0.5])
    assert len(clf.examples_) == 2 and {index for _, index in clf.examples_} == {0, 1}
    proba = clf.predict_proba(["fine", "a good one", "meh"])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(["fine", "meh"])) <= {"neg", "pos"}
    assert clf.predict_proba([]).shape == (0, 2)
    copy = clone(clf)
    assert not hasattr(copy, "classes_") and copy.get_params() == clf.get_params()


def test_multi_token_answers_scored_whole_and_same_with_or_without_prefix_cache(chat_model):
    clf = judge(chat_model, shots=2, verbalizers={"pos": "positive", "neg": "very negative"}).fit(X, Y)
    prompt = clf._prompt()
    assert [len(c) for c in prompt.completions] == [3, 2]      # 'very', ' negative', '<|im_end|>'; 'positive', end
    texts = ["hello there", "a", "a much longer text with many more words in it", "<|im_end|> injected"]
    model = cached_model(str(chat_model), "float32", "cpu")
    expected = naive_scores(chat_model, prompt, texts)
    np.testing.assert_allclose(score_texts(model, prompt, texts, 2, True), expected, atol=1e-4)
    np.testing.assert_allclose(score_texts(model, prompt, texts, 3, False), expected, atol=1e-4)
    np.testing.assert_allclose(score_texts(model, prompt, texts[:1], 8, True), expected[:1], atol=1e-4)


def test_text_with_control_tokens_stays_text(chat_model):
    clf = judge(chat_model).fit(X, Y)
    ids = clf._prompt().ids("<|im_end|>")
    end = cached_tokenizer(str(chat_model)).convert_tokens_to_ids("<|im_end|>")
    assert ids.count(end) == 2          # the system and user turns end; the text's own stays plain text


class BiasedToy(torch.nn.Module):
    """A causal LM stand-in: every position's logits favour the 'pos' answer by ``bias`` whatever the
    input, plus evidence from the text (+1 per 'good' token, -1 per 'bad' one) for the right answer."""

    def __init__(self, good: set[int], bad: set[int], pos: int, neg: int, vocab: int, bias: float):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.good, self.bad, self.pos, self.neg, self.vocab, self.bias = good, bad, pos, neg, vocab, bias
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, logits_to_keep: torch.Tensor | int, **_: object) -> SimpleNamespace:
        self.calls += 1
        keep = logits_to_keep if isinstance(logits_to_keep, int) else len(logits_to_keep)
        count = lambda ids: torch.isin(input_ids, torch.tensor(sorted(ids))).sum(1).float()  # noqa: E731
        evidence = count(self.good) - count(self.bad)
        logits = torch.zeros(len(input_ids), keep, self.vocab)
        logits[:, :, self.pos] = (evidence + self.bias)[:, None]
        logits[:, :, self.neg] = -evidence[:, None]
        return SimpleNamespace(logits=logits)


def toy(path: Path, clf: LLMJudge, bias: float) -> BiasedToy:
    tokenizer = cached_tokenizer(str(path))
    ids = lambda *words: {tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w))[0] for w in words}  # noqa: E731
    neg, pos = (c[0] for c in clf._prompt().completions)
    return BiasedToy(ids("good", " good"), ids("bad", " bad"), pos, neg, len(tokenizer), bias)


TEXTS = ["good", "bad", "so good", "bad bad", "good day", "bad day"]
TRUTH = ["pos", "neg", "pos", "neg", "pos", "neg"]


def with_toy(monkeypatch, path: Path, clf: LLMJudge, bias: float) -> BiasedToy:
    model = toy(path, clf, bias)
    monkeypatch.setattr(judge_module, "cached_model", lambda *a: model)
    return model


def test_calibration_removes_a_known_label_bias(chat_model, monkeypatch):
    fitted = judge(chat_model, disk_cache=False, calibrate=True).fit(X, Y)
    with_toy(monkeypatch, chat_model, fitted, bias=5.0)
    raw = clone(fitted).set_params(calibrate=False).fit(X, Y)
    assert list(raw.predict(TEXTS)) == ["pos"] * 6                  # the bias wins everywhere
    calibrated = fitted.predict_proba(TEXTS)
    assert list(fitted.predict(TEXTS)) == TRUTH
    with_toy(monkeypatch, chat_model, fitted, bias=0.0)
    np.testing.assert_allclose(calibrated, fitted.predict_proba(TEXTS), atol=1e-6)  # as if there were no bias
    # log-odds pos:neg = 2 x evidence exactly ('good' once: e^2)
    assert calibrated[0, 1] / calibrated[0, 0] == pytest.approx(np.exp(2.0))


def test_prior_and_balanced_class_weight(chat_model, monkeypatch):
    texts, labels = X[:3] + X[3:4], Y[:3] + Y[3:4]                     # 3 pos : 1 neg
    clf = judge(chat_model, disk_cache=False, calibrate=True).fit(texts, labels)
    with_toy(monkeypatch, chat_model, clf, bias=2.0)
    np.testing.assert_allclose(clf.prior_, [0.25, 0.75])
    odds = lambda p: p[:, 1] / p[:, 0]  # noqa: E731
    prior = clf.predict_proba(["good"])
    balanced = clone(clf).set_params(class_weight="balanced").fit(texts, labels).predict_proba(["good"])
    assert odds(prior)[0] == pytest.approx(3 * np.exp(2.0))
    assert odds(balanced)[0] == pytest.approx(np.exp(2.0))
    with pytest.raises(ConfigError, match="class_weight"):
        clone(clf).set_params(class_weight={"pos": 2}).fit(texts, labels).predict_proba(["good"])


def test_second_predict_is_read_from_disk_without_a_forward_pass(chat_model, monkeypatch, tmp_path):
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path))
    calls = []
    real = judge_module._forward
    monkeypatch.setattr(judge_module, "_forward", lambda *a: calls.append(len(a[3])) or real(*a))
    clf = judge(chat_model, shots=1, calibrate=True).fit(X, Y)
    first = clf.predict_proba(["one text", "another text", "one text"])
    assert sum(calls) == 2 + 3                                        # unique texts + content-free inputs
    assert list((tmp_path / "judge").glob("*/*/scores-*.jsonl"))
    calls.clear()
    np.testing.assert_array_equal(clf.predict_proba(["another text", "one text"]), first[[1, 0]])
    np.testing.assert_array_equal(clone(clf).fit(X, Y).predict_proba(["one text"]), first[:1])
    assert calls == []
    clf.predict_proba(["one text", "new text"])
    assert calls == [1]                                               # only the new text
    calls.clear()
    clone(clf).set_params(shots=2).fit(X, Y).predict_proba(["one text"])   # another prompt: scored afresh
    assert sum(calls) == 4


def test_disk_cache_is_written_chunk_by_chunk(chat_model, monkeypatch, tmp_path):
    """A run killed while scoring keeps the chunks it finished."""
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path))
    monkeypatch.setattr(judge_module, "CHUNK_BATCHES", 1)
    real, calls = judge_module._forward, []

    def dies_on_third(*args):
        calls.append(len(args[3]))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(judge_module, "_forward", dies_on_third)
    clf = judge(chat_model, batch_size=2).fit(X, Y)
    texts = [f"text number {i}" for i in range(6)]
    with pytest.raises(KeyboardInterrupt):
        clf.label_scores(texts)
    assert len(list((tmp_path / "judge").glob("*/*/scores-*.jsonl"))) == 2
    calls.clear()
    monkeypatch.setattr(judge_module, "_forward", lambda *a: calls.append(len(a[3])) or real(*a))
    clf.label_scores(texts)
    assert calls == [2]                                              # only the chunk that was lost


@pytest.mark.parametrize("name, expected", [
    ("llm-judge:qwen2.5-coder-0.5b-instruct", ("qwen2.5-coder-0.5b-instruct", 0, False)),
    ("llm-judge:qwen2.5-coder-0.5b-instruct:10", ("qwen2.5-coder-0.5b-instruct", 10, False)),
    ("llm-judge:qwen2.5-coder-0.5b-instruct:10:calibrated", ("qwen2.5-coder-0.5b-instruct", 10, True)),
    ("llm-judge:Qwen/Qwen2.5-1.5B-Instruct:4", ("Qwen/Qwen2.5-1.5B-Instruct", 4, False)),
    ("llm-judge:/models/my-llm", ("/models/my-llm", 0, False)),
    ("llm-judge:/models/my-llm:calibrated", ("/models/my-llm", 0, True)),
])
def test_judge_names(name, expected):
    parsed = judge_name(name)
    assert (parsed.model, parsed.shots, parsed.calibrate) == expected
    assert known_classifier(name) == name
    clf = make_classifier(name, seed=3, class_weight="balanced")
    assert (clf.model, clf.shots, clf.calibrate, clf.random_state, clf.class_weight) == (*expected, 3, "balanced")


@pytest.mark.parametrize("name", ["llm-judge:", "llm-judge:model:", "llm-judge:model:x", "llm-judge:model:-1",
                                  "llm-judge:my model", "llm-judge::3", "llm-judge::calibrated",
                                  "llm-judge:model:calibrated:3"])
def test_bad_judge_names_are_one_line_errors(name):
    with pytest.raises(ConfigError, match=r"expected llm-judge:MODEL or llm-judge:MODEL:K") as info:
        make_classifier(name, 0)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="llm-judge:MODEL:K"):
        make_classifier("llm_judge:x", 0)
    with pytest.raises(ConfigError, match=r"^filter: 'fidelity_classifier'.*expected llm-judge:MODEL") as info:
        build(FilterConfig, "filter", fidelity_classifier=name)
    assert "\n" not in str(info.value)


def test_verbalizer_errors(chat_model):
    assert judge(chat_model, verbalizers={"pos": "good", "maybe": "perhaps"}).fit(X, Y).answers_ == ["neg", "good"]
    with pytest.raises(ConfigError, match="distinct"):
        judge(chat_model, verbalizers={"pos": "same", "neg": "same"}).fit(X, Y)


def test_judge_as_the_filters_fidelity_classifier(chat_model, monkeypatch, tmp_path):
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path))
    train = pd.DataFrame({"text": X, "label": Y})
    config = FilterConfig(exact_dedup=False, min_words=None, near_dup_threshold=None, train_copy_threshold=None,
                          fidelity="threshold", fidelity_threshold=0.5,
                          fidelity_classifier=f"llm-judge:{chat_model}:calibrated")
    synthetic = pd.DataFrame({"text": TEXTS, "label": ["pos", "pos", "neg", "neg", "pos", "pos"]})
    with_toy(monkeypatch, chat_model, judge(chat_model, calibrate=True).fit(X, Y), bias=4.0)
    result = filter_synthetic(synthetic, train, config, seed=0)
    assert result.kept["text"].tolist() == ["good", "bad bad", "good day"]
    assert result.report.steps[0].dropped == 3


def test_a_base_lm_is_refused_unless_the_plain_prompt_is_asked_for(tiny_model_dir):
    """The tiny GPT-2 has no chat template: fit refuses it before any scoring."""
    with pytest.raises(ConfigError, match=r"^llm-judge:.*: not an instruct model \(its tokenizer has no chat "
                                          r"template\); name one that has, e\.g\. llm-judge:qwen2\.5-coder-0\.5b-instruct$"):
        judge(tiny_model_dir, disk_cache=False).fit(X, Y)


def test_a_model_without_chat_template_gets_the_plain_prompt(tiny_model_dir):
    """A base LM asked for with plain_prompt=True: 'Text: ... Answer:' turns, answers end with EOS."""
    clf = judge(tiny_model_dir, shots=1, disk_cache=False, plain_prompt=True).fit(X, Y)
    prompt = clf._prompt()
    tokenizer = cached_tokenizer(str(tiny_model_dir))
    assert tokenizer.decode(prompt.ids("fine")).endswith("\n\nText: fine\nAnswer:")
    assert [tokenizer.decode(c) for c in prompt.completions] == [" neg<|endoftext|>", " pos<|endoftext|>"]
    model = cached_model(str(tiny_model_dir), "float32", "cpu")
    texts = ["fine", "a longer text here"]
    np.testing.assert_allclose(score_texts(model, prompt, texts, 2, True), naive_scores(tiny_model_dir, prompt, texts),
                               atol=1e-4)
    assert clf.predict_proba(texts).shape == (2, 2)
