"""Every bad experiment config fails with one line naming the file and the problem, before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from augment.cli import main
from augment.errors import ConfigError, DataError
from augment.experiment import load_experiment, run_experiment
from tests.experiment.helpers import baseline_config, tiny_frame, write_yaml


def _lm(model: str = "tiny-gpt2", **generate: Any) -> dict[str, Any]:
    return {"type": "lm", "finetune": {"model": model, "max_steps": 1}, "generate": generate}


CASES = [
    ("unknown top-level key", {"seed": 3}, ConfigError, r"exp\.yaml: unknown key 'seed'"),
    ("unknown nested key", {"augmenters": [{"type": "none"}, {"type": "lm", "finetune": {"max_stepz": 3}}]},
     ConfigError, r"exp\.yaml: unknown key 'augmenters\.1\.lm\.finetune\.max_stepz'"),
    ("unknown data key", {"data": {"path": "x.csv", "colour": "red"}}, ConfigError, r"unknown key 'data\.colour'"),
    ("unknown augmenter", {"augmenters": [{"type": "none"}, {"type": "gpt5"}]}, ConfigError,
     r"'augmenters\.1'.*'gpt5'.*'none', 'oversample', 'eda', 'label-name', 'lm'"),
    ("eda key on oversample", {"augmenters": [{"type": "none"}, {"type": "oversample", "alpha": 0.2}]},
     ConfigError, r"unknown key 'augmenters\.1\.oversample\.alpha'"),
    ("label-name template without the label", {"augmenters": [{"type": "none"}, {"type": "label-name",
                                                                               "templates": ["{label}", "hi"]}]},
     ConfigError, r"'augmenters\.1\.label-name\.templates'.*must hold '\{label\}', got 'hi'"),
    ("no baseline", {"augmenters": [{"type": "eda"}]}, ConfigError, r"must include type 'none'"),
    ("duplicate names", {"augmenters": [{"type": "none"}, {"type": "eda"}, {"type": "eda"}]}, ConfigError,
     r"augmenter names must be unique"),
    ("grid owns the seed", {"augmenters": [{"type": "none"}, _lm(seed=3)]}, ConfigError,
     r"'augmenters\.1\.lm\.generate': 'seed' is set by the grid"),
    ("per_class in data", {"data": {"path": "x.csv", "per_class": 5}}, ConfigError, r"remove per_class"),
    ("both data and datasets", {"datasets": {"a": {"path": "x.csv"}}}, ConfigError, r"exactly one of 'data'"),
    ("bad classifier", {"classifiers": ["bert"]}, ConfigError, r"unknown classifier 'bert'"),
    ("bad judge", {"quality": {"judge": "bert"}}, ConfigError, r"'quality\.judge'.*unknown classifier 'bert'"),
    ("duplicate seeds", {"seeds": [1, 1]}, ConfigError, r"'seeds': values must be distinct"),
    ("zero examples", {"examples_per_class": [0, 5]}, ConfigError, r"'examples_per_class': every value must be"),
    ("empty seeds", {"seeds": []}, ConfigError, r"'seeds'.*at least 1"),
    ("float test size >= 1", {"test": {"size": 1.5}}, ConfigError, r"'test\.size'.*below 1"),
    ("missing dataset", {"data": {"path": "nope.csv"}}, DataError, r"nope\.csv: file not found"),
    ("too few rows", {"examples_per_class": [5, 50]}, DataError,
     r"examples_per_class 50 needs 50 rows of each label outside the test split, but 'neg' has 30, 'pos' has 30"),
    ("test split too small", {"test": {"size": 20}}, ConfigError,
     r"test split has 20 rows, fewer than test\.min_rows=1000"),
    ("lm below min_rows", {"examples_per_class": [2], "augmenters": [{"type": "none"}, _lm()]}, ConfigError,
     r"examples_per_class 2 is below finetune\.min_rows=5"),
    ("own filter without the filter axis",
     {"augmenters": [{"type": "none"}, {**_lm(), "filter": {"fidelity": "threshold"}}]}, ConfigError,
     r"augmenter 'lm' sets its own filter, but filters is \[False\]: add true"),
    ("missing model dir", {"augmenters": [{"type": "none"}, _lm("./no-such-model")]}, ConfigError,
     r"model directory \./no-such-model not found"),
    ("malformed llm judge", {"classifiers": ["llm-judge:m:x"]}, ConfigError,
     r"'classifiers\.0'.*expected llm-judge:MODEL or llm-judge:MODEL:K"),
    ("label-name description of no label", {"augmenters": [{"type": "none"}, {
        "type": "label-name", "descriptions": {"postive": "a happy text"}}]}, ConfigError,
     r"augmenter 'label-name': descriptions: no label 'postive' in the data \(labels: neg, pos\)"),
    ("instruct description of no label", {"augmenters": [{"type": "none"}, {
        "type": "lm", "finetune": {"model": "tiny-gpt2", "mode": "instruct",
                                   "instruct": {"descriptions": {"pos": "a happy text", "ngative": "an angry one"}}}}]},
     ConfigError, r"augmenter 'lm': finetune\.instruct\.descriptions: no label 'ngative' in the data"),
    ("weighted rows for a classifier without sample weights", {
        "augmenters": [{"type": "none"}, {"type": "eda", "weight": 0.5}], "classifiers": ["tfidf-lr", "setfit"]},
     ConfigError, r"augmenter 'eda' weighs its rows 0\.5, but classifier 'setfit' takes no sample weights "
                  r"\(those that do: tfidf-lr, minilm-lr\)"),
    ("zero weight", {"augmenters": [{"type": "none"}, {"type": "eda", "weight": 0}]}, ConfigError,
     r"'augmenters\.1\.eda\.weight'.*greater than 0"),
    ("llm judge without its model", {"classifiers": ["tfidf-lr", "llm-judge:./no-such-llm:10"]}, ConfigError,
     r"classifier 'llm-judge:\./no-such-llm:10': model directory \./no-such-llm not found"),
    ("llm judge of a base LM", {"classifiers": ["tfidf-lr"], "quality": {"judge": "llm-judge:tiny-gpt2"}},
     ConfigError, r"llm-judge:tiny-gpt2: not an instruct model \(its tokenizer has no chat template\)"),
]


@pytest.mark.parametrize("name, change, error, message", CASES, ids=[c[0] for c in CASES])
def test_bad_config(tmp_path: Path, data_csv: Path, name: str, change: dict, error: type, message: str):
    config = baseline_config(data_csv, **change)
    if isinstance(config["data"], dict) and config["data"].get("path") == "nope.csv":
        config["data"]["path"] = str(tmp_path / "nope.csv")
    if name.startswith("both"):
        config["data"] = {"path": str(data_csv)}
    path = write_yaml(tmp_path / "exp.yaml", config)
    out = tmp_path / "out"
    with pytest.raises(error, match=message) as caught:
        run_experiment(load_experiment(path), out)
    assert "\n" not in str(caught.value)
    assert not out.exists(), "validation must fail before anything is written"


def test_label_missing_from_a_separate_test_file(tmp_path: Path, data_csv: Path):
    test_file = tmp_path / "test.csv"
    tiny_frame(seed=9).query("label == 'pos'").to_csv(test_file, index=False)
    config = baseline_config(data_csv, test={"data": {"path": str(test_file)}, "min_rows": 10})
    with pytest.raises(DataError, match=r"dataset 'tiny': label\(s\) neg missing from the test split"):
        run_experiment(load_experiment(write_yaml(tmp_path / "exp.yaml", config)), tmp_path / "out")


def test_file_level_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: experiment config not found"):
        load_experiment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+, column \d+ invalid YAML"):
        load_experiment(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"expected a mapping"):
        load_experiment(bad)


def test_cli_reports_config_errors_as_exit_2(tmp_path: Path, data_csv: Path, capsys):
    path = write_yaml(tmp_path / "exp.yaml", baseline_config(data_csv, colour="red"))
    assert main(["experiment", "run", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'colour'" in err and "Traceback" not in err


@pytest.mark.parametrize("where, model, change", [
    ("augmenter 'lm'", "gemma-3-270m", {"augmenters": [{"type": "none"}, _lm("gemma-3-270m")]}),
    ("classifier 'llm-judge:qwen2.5-coder-1.5b-instruct:5'", "qwen2.5-coder-1.5b-instruct",
     {"classifiers": ["tfidf-lr", "llm-judge:qwen2.5-coder-1.5b-instruct:5"]}),
])
def test_a_model_not_fetched_yet_is_named_with_its_fetch_command(tmp_path: Path, data_csv: Path, monkeypatch,
                                                                  where: str, model: str, change: dict):
    """A grid never stops mid-run to download gigabytes: the command comes first, before anything is written."""
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=rf"{where}: model {model} is not fetched; run `augment fetch {model}` "
                                          r"\(\d+\.\d GB download\) first"):
        run_experiment(load_experiment(write_yaml(tmp_path / "exp.yaml", baseline_config(data_csv, **change))), out)
    assert not out.exists()
