from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from augment.config import DataConfig
from augment.data import load_dataset, sample_per_class, split_train_test
from augment.errors import DataError

ROWS = [("great flight, thanks!", "pos"), ("lost my bag again", "neg"), ("love the crew", "pos"),
        ("delayed 3 hours", "neg")]


def cfg(path: Path | str, **kw) -> DataConfig:
    return DataConfig(path=str(path), **kw)


def write_csv(path: Path, rows=ROWS, sep=",", header=("text", "label")) -> Path:
    pd.DataFrame(rows, columns=list(header)).to_csv(path, index=False, sep=sep)
    return path


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited(tmp_path, suffix, sep):
    path = write_csv(tmp_path / f"d{suffix}", sep=sep)
    frame = load_dataset(path, cfg(path))
    assert list(frame.columns) == ["text", "label"]
    assert frame.values.tolist() == [list(r) for r in ROWS]


def test_jsonl_parquet_dataframe_and_hf_dataset(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"sentence": t, "class": l}) for t, l in ROWS) + "\n\n")
    assert load_dataset(jsonl, cfg(jsonl)).values.tolist() == [list(r) for r in ROWS]
    parquet = tmp_path / "d.parquet"
    pd.DataFrame({"text": [t for t, _ in ROWS], "label": [1, 0, 1, 0]}).to_parquet(parquet)
    frame = load_dataset(parquet, cfg(parquet, label_map={"1": "pos", "0": "neg"}))
    assert frame.label.tolist() == ["pos", "neg", "pos", "neg"]
    df = pd.DataFrame({"review": [t for t, _ in ROWS], "y": [l for _, l in ROWS]})
    assert len(load_dataset(df, DataConfig(path="<memory>", label_col="y"))) == 4
    from datasets import ClassLabel, Dataset, Features, Value

    ds = Dataset.from_dict({"text": [t for t, _ in ROWS], "label": [1, 0, 1, 0]},
                           features=Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])}))
    assert load_dataset(ds, DataConfig(path="<memory>")).label.tolist() == ["pos", "neg", "pos", "neg"]


def sentiment140(path: Path, polarity=("0", "4", "4", "2")) -> Path:
    lines = [f'"{p}","{1467810369 + i}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","user{i}","caf\xe9 tweet {i}"'
             for i, p in enumerate(polarity)]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path


def test_sentiment140_autodetected_latin1(tmp_path, caplog):
    caplog.set_level("INFO")
    path = sentiment140(tmp_path / "training.1600000.processed.noemoticon.csv")
    frame = load_dataset(path, cfg(path))
    assert frame.label.tolist() == ["neg", "pos", "pos", "neutral"]
    assert frame.text[0] == "café tweet 0"
    assert "latin-1" in caplog.text and "Sentiment140" in caplog.text


def test_sentiment140_polarity_as_float_text(tmp_path):
    path = sentiment140(tmp_path / "s.csv", polarity=("0.0", "4.0"))
    assert load_dataset(path, cfg(path, format="sentiment140")).label.tolist() == ["neg", "pos"]


def test_bom_and_utf8(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nnaïve 🙂 שלום,pos\nok,neg\n".encode("utf-8"))
    frame = load_dataset(path, cfg(path))
    assert frame.text[0] == "naïve 🙂 שלום"


def test_quotes_and_newlines_survive(tmp_path):
    rows = [('he said "hi",\nthen left', "pos"), ("x", "neg")]
    path = write_csv(tmp_path / "q.csv", rows)
    assert load_dataset(path, cfg(path)).text[0] == rows[0][0]


def test_label_filter_clean_dedup_and_sampling(tmp_path):
    rows = [("@bob see http://x.co now &amp; then", "pos")] * 2 + [(f"t{i}", "neg") for i in range(5)]
    path = write_csv(tmp_path / "c.csv", rows)
    frame = load_dataset(path, cfg(path, clean=True))
    assert frame.text[0] == "@user see <url> now & then"
    assert len(frame) == 6
    assert load_dataset(path, cfg(path, labels=["neg"])).label.unique().tolist() == ["neg"]
    sampled = load_dataset(path, cfg(path, labels=["neg"], per_class=3, seed=1))
    assert len(sampled) == 3
    assert sampled.equals(load_dataset(path, cfg(path, labels=["neg"], per_class=3, seed=1)))


@pytest.mark.parametrize("content,expected", [
    ("text,label\na,pos\nb,neg,extra\n", "line 3 has 3 fields, expected 2"),
    ("text,text\na,b\n", "column name 'text' twice"),
    ("text,label\n,pos\n", "line 2, column 'text': text is empty"),
    ("text,label\nhello,\n", "line 2, column 'label': label is empty"),
    ("body,stars\nhi,5\n", "cannot tell which column holds the text; columns are body, stars"),
    ("", "file is empty"),
])
def test_bad_csv(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=expected.replace("(", r"\(")) as err:
        load_dataset(path, cfg(path))
    assert str(err.value).startswith(str(path))


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_dataset(tmp_path / "nope.csv", cfg(tmp_path / "nope.csv"))
    path = write_csv(tmp_path / "d.csv")
    with pytest.raises(DataError, match="no text column 'body'; columns are text, label"):
        load_dataset(path, cfg(path, text_col="body"))
    with pytest.raises(DataError, match="label\\(s\\) neutral not in the data; labels are neg, pos"):
        load_dataset(path, cfg(path, labels=["neutral"]))
    odd = tmp_path / "d.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        load_dataset(odd, cfg(odd))


def test_bad_jsonl_and_parquet(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_dataset(path, cfg(path))
    path.write_text('{"text": "a", "label": null}\n')
    with pytest.raises(DataError, match="line 1, column 'label': label is missing"):
        load_dataset(path, cfg(path))
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"text": [1, 2], "label": ["a", "b"]}).to_parquet(parquet)
    with pytest.raises(DataError, match="row 1, column 'text': text is int 1; expected a string"):
        load_dataset(parquet, cfg(parquet))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        load_dataset(broken, cfg(broken))


def test_nan_label_in_dataframe():
    df = pd.DataFrame({"text": ["a", "b"], "label": ["pos", float("nan")]})
    with pytest.raises(DataError, match="DataFrame: row 1, column 'label': label is missing"):
        load_dataset(df, DataConfig(path="<memory>"))


def test_sampling_errors():
    frame = pd.DataFrame({"text": list("abcde"), "label": ["pos"] * 4 + ["neg"]})
    with pytest.raises(DataError, match="3 rows per label requested but 'neg' has 1"):
        sample_per_class(frame, 3, seed=0)
    with pytest.raises(DataError, match="'neg' have fewer than 2 rows"):
        split_train_test(frame, 0.5, seed=0)


def test_load_texts_reads_lines_and_text_columns(tmp_path):
    from augment.data import load_texts

    lines = tmp_path / "u.txt"
    lines.write_text("one\n\ntwo\none\n", encoding="utf-8")
    assert load_texts(lines) == ["one", "two"]
    table = tmp_path / "u.jsonl"
    table.write_text('{"tweet": "hi @bob"}\n{"tweet": "yo"}\n', encoding="utf-8")
    assert load_texts(table, DataConfig(path=str(table), clean=True)) == ["hi @user", "yo"]
    empty = tmp_path / "e.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="e.txt: no texts"):
        load_texts(empty)
    with pytest.raises(DataError, match="missing.txt: file not found"):
        load_texts(tmp_path / "missing.txt")
