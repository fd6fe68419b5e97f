"""EDA with WordNet synonyms, read by nltk from a tiny hand-written WordNet-format folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from augment import wordnet
from augment.baselines import EDAAugmenter
from augment.errors import ConfigError, MissingDependencyError

pytest.importorskip("nltk")

# (pos, lexicographer file number, words): each tuple is one synset
SYNSETS = [("a", 0, ["happy", "glad"]), ("a", 0, ["awful", "dreadful", "terrible"]),
           ("n", 4, ["delay", "holdup"]), ("n", 6, ["bag", "handbag"])]
FILES = {"a": "adj", "n": "noun", "v": "verb", "r": "adv"}


def write_tiny_wordnet(folder: Path) -> Path:
    """The wndb(5WN) layout: data lines start with their own byte offset; index lines list them."""
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, list[int]]] = {pos: {} for pos in FILES}
    for pos, name in FILES.items():
        lines, offset = [], 0
        for p, lexfile, words in SYNSETS:
            if p != pos:
                continue
            entry = " ".join(f"{w} 0" for w in words)
            line = f"{offset:08d} {lexfile:02d} {pos} {len(words):02x} {entry} 000 | a tiny synset  \n"
            lines.append(line)
            for w in words:
                index[pos].setdefault(w, []).append(offset)
            offset += len(line.encode())
        (folder / f"data.{name}").write_text("".join(lines), encoding="utf-8")
        (folder / f"index.{name}").write_text("".join(
            f"{w} {pos} {len(offs)} 0 {len(offs)} 0 {' '.join(f'{o:08d}' for o in offs)}  \n"
            for w, offs in sorted(index[pos].items())), encoding="utf-8")
        (folder / f"{name}.exc").write_text("", encoding="utf-8")
    (folder / "lexnames").write_text(wordnet.lexnames_text(), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_wordnet(tmp_path_factory: pytest.TempPathFactory) -> wordnet.WordNetSynonyms:
    return wordnet.load_wordnet(str(write_tiny_wordnet(tmp_path_factory.mktemp("wn") / "3.0")))


def test_lexnames_are_the_45_documented_lines():
    lines = wordnet.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[29] == "29\tverb.body\t2"
    assert lines[2] == "02\tadv.all\t4" and lines[44] == "44\tadj.ppl\t3"


def test_nltk_reads_the_folder_and_synonyms_exclude_the_word(tiny_wordnet):
    assert tiny_wordnet("happy") == ("glad",)
    assert tiny_wordnet("Terrible") == ("awful", "dreadful")
    assert tiny_wordnet("bags") == ("bag", "handbag")       # nltk finds the lemma; only the word itself goes
    assert tiny_wordnet("flight") == ()


def test_synonym_replacement_keeps_punctuation_case_and_stop_words(tiny_wordnet):
    train = pd.DataFrame({"text": ["Happy with the delay!", "terrible bag, so the"], "label": ["a", "b"]})
    eda = EDAAugmenter(train, alpha=1.0, operations=("synonym",), synonyms=tiny_wordnet)
    assert eda.generate("a", 1, seed=0)["text"].tolist() == ["Glad with the holdup!"]
    out = eda.generate("b", 3, seed=1)["text"].tolist()
    assert all(t.endswith(", so the") and t.split()[0] in ("awful", "dreadful") for t in out)
    assert all(t.split()[1] == "handbag," for t in out)


def test_insertion_uses_a_synonym_of_a_word_in_the_row(tiny_wordnet):
    train = pd.DataFrame({"text": ["what a delay today"], "label": ["a"]})
    eda = EDAAugmenter(train, alpha=0.25, operations=("insert",), synonyms=tiny_wordnet)
    rows = eda.generate("a", 4, seed=0)["text"].tolist()
    assert all(sorted(r.split()) == sorted("what a delay today holdup".split()) for r in rows)
    plain = EDAAugmenter(train, alpha=0.25, operations=("insert",)).generate("a", 4, seed=0)["text"].tolist()
    assert not any("holdup" in r for r in plain)


def test_default_operations_follow_the_wordnet(tiny_wordnet):
    train = pd.DataFrame({"text": ["happy day"], "label": ["a"]})
    assert EDAAugmenter(train).operations == ("swap", "delete", "insert")
    assert EDAAugmenter(train, synonyms=tiny_wordnet).operations == ("synonym", "swap", "delete", "insert")
    with pytest.raises(ConfigError, match=r"'synonym' needs a WordNet"):
        EDAAugmenter(train, operations=("synonym",))


def test_fetch_without_apt_says_eda_runs_without_synonyms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"needs apt-get and dpkg-deb .* EDA runs without synonym"):
        wordnet.fetch_wordnet(tmp_path)
    assert not wordnet.available(wordnet.wordnet_dir(tmp_path))


@pytest.mark.slow
def test_the_fetched_debian_wordnet_when_present():
    real = Path(os.environ.get("AUGMENT_TEST_REAL_CACHE") or Path.home() / ".cache" / "augment")
    folder = wordnet.wordnet_dir(real)
    if not wordnet.available(folder):
        pytest.skip("no fetched WordNet (augment fetch wordnet)")
    synonyms = wordnet.load_wordnet(str(folder))
    assert "awful" in synonyms("terrible") and "glad" in synonyms("happy")
    assert (folder / "LICENSE").is_file()
    eda = EDAAugmenter(pd.DataFrame({"text": ["terrible delay again"], "label": ["neg"]}), alpha=0.5,
                       operations=("synonym",), synonyms=synonyms)
    assert eda.generate("neg", 5, seed=0)["text"].tolist() != ["terrible delay again"] * 5
