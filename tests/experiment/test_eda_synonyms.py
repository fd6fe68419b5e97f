"""EDA cells use the offline WordNet when asked (and present), and the report says which ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment import wordnet
from augment.errors import ConfigError
from augment.experiment import expand, load_experiment, run_experiment, write_report
from tests.experiment.helpers import baseline_config, write_yaml
from tests.measure.test_wordnet_eda import write_tiny_wordnet

pytest.importorskip("nltk")


def _config(tmp_path: Path, data_csv: Path, synonyms: str | None):
    eda = {"type": "eda"} if synonyms is None else {"type": "eda", "synonyms": synonyms}
    return load_experiment(write_yaml(tmp_path / "eda.yaml", baseline_config(
        data_csv, augmenters=[{"type": "none"}, eda], seeds=[0], examples_per_class=[5], ratios=[1])))


def _eda_keys(config) -> set[str]:
    return {c.key for c in expand(config) if c.augmenter.type == "eda"}


def test_wordnet_required_but_absent_is_one_error(tmp_path: Path, data_csv: Path):
    assert not wordnet.available()                     # tests run on an empty cache
    with pytest.raises(ConfigError, match=r"augmenter 'eda': synonyms 'wordnet' needs the offline WordNet .* "
                                          r"run `augment fetch wordnet`"):
        run_experiment(_config(tmp_path, data_csv, "wordnet"), tmp_path / "out")


def test_auto_without_wordnet_is_plain_eda_and_says_so(tmp_path: Path, data_csv: Path):
    auto = _config(tmp_path, data_csv, "auto")
    assert _eda_keys(auto) == _eda_keys(_config(tmp_path, data_csv, None))   # the same rows, the same cells
    run_experiment(auto, tmp_path / "out")
    rows = [json.loads(l) for l in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["eda"] for r in rows if r["type"] == "eda"] == [{"synonyms": "off"}]
    assert "- `eda`: EDA, alpha 0.1, without synonym replacement" in write_report(auto, tmp_path / "out")[0].read_text()


def test_with_wordnet_the_cells_are_new_and_use_synonyms(tmp_path: Path, data_csv: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    plain = _eda_keys(_config(tmp_path, data_csv, None))
    cache = tmp_path / "cache"
    write_tiny_wordnet(wordnet.wordnet_dir(cache))
    monkeypatch.setenv("AUGMENT_CACHE", str(cache))
    auto = _config(tmp_path, data_csv, "auto")
    assert _eda_keys(auto) == _eda_keys(_config(tmp_path, data_csv, "wordnet")) and not _eda_keys(auto) & plain
    run_experiment(auto, tmp_path / "out")
    rows = [json.loads(l) for l in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["eda"] for r in rows if r["type"] == "eda"] == [{"synonyms": "wordnet"}]
    text = write_report(auto, tmp_path / "out")[0].read_text()
    assert "- `eda`: EDA, alpha 0.1, with synonym replacement and insertion from WordNet 3.0" in text
