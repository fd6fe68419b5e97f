"""Bad inputs through the public entry points: a one-line error that names the file, row, column and
what was expected (exit code 2, no traceback, nothing created), or correct handling, asserted.

``tests/data/test_readers.py`` checks the reader functions and ``tests/test_cli.py`` the common
CLI mistakes (-n 0, unknown --label, a YAML typo, existing outputs...); these cases go through
``augment.cli.main`` as a user would, with inputs neither has.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment import Augmenter
from augment.cli import main
from augment.config import DataConfig
from augment.data import load_dataset
from augment.data.cleaning import clean_text
from augment.errors import ConfigError, DataError
from tests.reliability.helpers import error_line

GOOD = "text,label\n" + "".join(f"nice one {i},pos\nbad one {i},neg\n" for i in range(6))


@dataclass
class Ctx:
    tmp: Path
    model: Path
    run: Path

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def parquet(self, name: str, table: pa.Table) -> Path:
        pq.write_table(table, self.tmp / name)
        return self.tmp / name

    def finetune(self, data: Path | str, *extra: str) -> list[str]:
        return ["finetune", "--data", str(data), "--out", str(self.tmp / "run"), "--model", str(self.model),
                "--max-steps", "1", "--no-progress", *extra]

    def generate(self, *extra: str, run: Path | None = None, out: str = "out.csv") -> list[str]:
        return ["generate", "--run", str(run or self.run), "--out", str(self.tmp / out), "--no-progress", *extra]

    def fake_run(self, manifest: str | dict) -> Path:
        run = self.tmp / "fake-run"
        run.mkdir()
        (run / "run.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
        return run


def _table(**columns: pa.Array | list) -> pa.Table:
    return pa.Table.from_arrays([pa.array(v) if isinstance(v, list) else v for v in columns.values()],
                                names=[name.rstrip("_") for name in columns])


# name -> (file name, content, extra CLI options, what the error line must say)
FILE_CASES: dict[str, tuple[str, str | bytes | pa.Table, tuple[str, ...], list[str]]] = {
    "empty file": ("d.csv", "", (), ["d.csv: file is empty"]),
    "header-only file": ("d.csv", "text,label\n", (), ["d.csv: no rows"]),
    "unknown extension": ("d.xlsx", GOOD, (), ["d.xlsx: unknown file type '.xlsx'", "--format"]),
    "duplicate column names (CSV)": ("d.csv", "text,label,text\na,b,c\n", (),
                                     ["d.csv: line 1 has the column name 'text' twice"]),
    "duplicate column names (Parquet)": ("d.parquet", _table(text=["a"], label=["b"], text_=["c"]), (),
                                         ["d.parquet: the column name 'text' appears twice"]),
    "ragged CSV, long row": ("d.csv", "text,label\na,pos\nb,neg,extra\n", (),
                             ["d.csv: line 3 has 3 fields, expected 2"]),
    "ragged CSV, short row": ("d.csv", "text,label\na,pos\nb\n", (), ["d.csv: line 3, column 'label': label is empty"]),
    "unclosed quote": ("d.csv", 'text,label\na,pos\n"b,neg\nc,pos\n', (),
                       ["d.csv: line 3 opens a quoted field that is never closed"]),
    "JSONL broken line": ("d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "lab\n', (),
                          ["d.jsonl: line 2 is not valid JSON"]),
    "JSONL line not an object": ("d.jsonl", '{"text": "a", "label": "x"}\n[1, 2]\n', (),
                                 ["d.jsonl: line 2 is a JSON list, expected an object"]),
    "JSONL duplicate key": ("d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "x", "label": "y"}\n', (),
                            ["d.jsonl: line 2 has the key 'label' twice"]),
    "JSONL line without the label key": ("d.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b"}\n', (),
                                         ["d.jsonl: line 3, column 'label': label is missing"]),
    "Parquet text column of ints": ("d.parquet", _table(text=[1, 2], label=["a", "b"]), (),
                                    ["d.parquet: row 1, column 'text': text is int 1; expected a string"]),
    "Parquet text column of bytes": ("d.parquet", _table(text=pa.array([b"a"], pa.binary()), label=["a"]), (),
                                     ["d.parquet: row 1, column 'text': text is bytes b'a'; expected a string"]),
    "Parquet label column of lists": ("d.parquet", _table(text=["a", "b"], label=[[1], [2]]), (),
                                      ["d.parquet: row 1, column 'label': label is a ndarray; expected one scalar"]),
    "Parquet NaN label": ("d.parquet", _table(text=["a", "b"], label=[1.0, None]), (),
                          ["d.parquet: row 2, column 'label': label is missing (NaN/null)"]),
    "corrupt Parquet": ("d.parquet", b"PAR1 nope", (), ["d.parquet: cannot read as Parquet"]),
    "whitespace-only text": ("d.csv", "text,label\na,pos\n   ,neg\n", (),
                             ["d.csv: line 3, column 'text': text is empty"]),
    "no recognisable columns": ("d.csv", "body,stars\nhi,5\n", (),
                                ["d.csv: cannot tell which column holds the text; columns are body, stars "
                                 "(pass --text-col)"]),
    "text and label the same column": ("d.csv", GOOD, ("--label-col", "text"),
                                       ["d.csv: text and label column are both 'text'"]),
    "--labels names an absent label": ("d.csv", GOOD, ("--labels", "pos,neutral"),
                                       ["d.csv: label(s) neutral not in the data; labels are neg, pos"]),
    "unknown --format": ("d.csv", GOOD, ("--format", "xlsx"), ["'format' input should be 'auto', 'csv'", "'xlsx'"]),
    "unknown --encoding": ("d.csv", GOOD, ("--encoding", "klingon"),
                           ["d.csv: cannot decode as klingon (unknown encoding)"]),
    "--encoding utf-8 on a latin-1 file": ("d.csv", "text,label\ncaf\xe9,pos\n".encode("latin-1"),
                                           ("--encoding", "utf-8"), ["d.csv: cannot decode as utf-8", "0xe9"]),
    "--per-class 0": ("d.csv", GOOD, ("--per-class", "0"), ["'per_class' input should be greater than 0"]),
    "--lr 0": ("d.csv", GOOD, ("--lr", "0"), ["'learning_rate' input should be greater than 0"]),
}

# name -> (YAML text, or None for no file; what the error line must say)
CONFIG_CASES = {
    "YAML unknown section": ("finetun:\n  max_steps: 3\n", ["cfg.yaml: unknown section(s) finetun"]),
    "YAML syntax error": ("finetune:\n  max_steps: [3\n", ["cfg.yaml: line 3, column 1 invalid YAML"]),
    "YAML section not a mapping": ("finetune: 3\n", ["cfg.yaml: section 'finetune' must be a mapping"]),
    "missing config file": (None, ["cfg.yaml: config file not found"]),
}


def _write(ctx: "Ctx", name: str, content: str | bytes | pa.Table) -> Path:
    if isinstance(content, pa.Table):
        return ctx.parquet(name, content)
    return ctx.file(name, content)


def _file_case(name: str) -> Callable[["Ctx"], tuple[list[str], list[str]]]:
    filename, content, extra, expected = FILE_CASES[name]
    return lambda c: (c.finetune(_write(c, filename, content), *extra), expected)


def _config_case(name: str) -> Callable[["Ctx"], tuple[list[str], list[str]]]:
    text, expected = CONFIG_CASES[name]

    def build(c: Ctx) -> tuple[list[str], list[str]]:
        config = c.file("cfg.yaml", text) if text is not None else c.tmp / "cfg.yaml"
        return c.finetune(c.file("d.csv", GOOD), "-c", str(config)), expected
    return build


def _not_a_run(c: "Ctx") -> tuple[list[str], list[str]]:
    (c.tmp / "run").mkdir()
    (c.tmp / "run" / "thesis.tex").write_text("precious")
    return c.finetune(c.file("d.csv", GOOD), "--overwrite"), ["not an augment run directory; refusing to overwrite"]


def _unfinished(c: "Ctx") -> tuple[list[str], list[str]]:
    manifest = json.loads((c.run / "run.json").read_text())
    manifest["models"]["pos"]["status"] = "pending"
    return c.generate("--label", "pos", run=c.fake_run(manifest)), ["the model for 'pos' is not finished", "--resume"]


def _resumed_with_other_settings(c: "Ctx") -> tuple[list[str], list[str]]:
    (c.tmp / "out.csv.parts").mkdir()
    (c.tmp / "out.csv.parts" / "job.json").write_text('{"config": "other"}')
    return c.generate("-n", "2", "--resume"), ["out.csv.parts: the interrupted job used different settings"]


CASES: dict[str, Callable[["Ctx"], tuple[list[str], list[str]]]] = {
    **{name: _file_case(name) for name in FILE_CASES},
    **{name: _config_case(name) for name in CONFIG_CASES},
    "directory as data file": lambda c: (c.finetune(c.tmp), [f"{c.tmp}: is a directory, expected a data file"]),
    "--overwrite on a directory that is not a run": _not_a_run,
    "run dir not found": lambda c: (c.generate(run=c.tmp / "nope"), ["nope: run directory not found"]),
    "run dir from an incompatible version": lambda c: (
        c.generate(run=c.fake_run({"format": 2, "labels": {}})),
        ["run.json: run format 2, this augment reads format 1"]),
    "run dir from before the format number": lambda c: (
        c.generate(run=c.fake_run({"labels": {}})), ["run.json: run format None, this augment reads format 1"]),
    "corrupt run.json": lambda c: (c.generate(run=c.fake_run('{"format": 1, "lab')), ["run.json: corrupt manifest"]),
    "unfinished model": _unfinished,
    "--batch-size 0": lambda c: (c.generate("--batch-size", "0"), ["'batch_size': must be a positive integer or 'auto' (got '0')"]),
    "unknown output type": lambda c: (c.generate(out="out.xlsx"), ["out.xlsx: unknown output type '.xlsx'"]),
    "interrupted job resumed with other settings": _resumed_with_other_settings,
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_clear_line(name: str, tmp_path: Path, tiny_model_dir: Path, small_run: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Ctx(tmp_path, tiny_model_dir, small_run)
    argv, expected = CASES[name](ctx)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    line = error_line(capsys)
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a failed command left files behind"


def test_error_text_with_brackets_is_printed_verbatim(tmp_path, tiny_model_dir, capsys):
    """Messages quote user text (column names, values); rich must not read it as markup."""
    data = tmp_path / "d.csv"
    data.write_text("body,[stars]\nhi,5\n")
    assert main(Ctx(tmp_path, tiny_model_dir, tmp_path).finetune(data)) == 2
    assert "columns are body, [stars]" in capsys.readouterr().err


# --- inputs that must be handled, not refused ----------------------------------------------------------


def load(path: Path, **kw) -> pd.DataFrame:
    return load_dataset(path, DataConfig(path=str(path), **kw))


def test_boms_utf8_and_utf16(tmp_path):
    rows = "text\tlabel\nnaïve café\tpos\n"
    (tmp_path / "u8.tsv").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    (tmp_path / "u16.tsv").write_bytes(rows.encode("utf-16"))  # Excel's "Unicode text": UTF-16 LE with BOM
    (tmp_path / "u8.jsonl").write_bytes(b"\xef\xbb\xbf" + '{"text": "naïve café", "label": "pos"}\n'.encode())
    for name in ("u8.tsv", "u16.tsv", "u8.jsonl"):
        assert load(tmp_path / name).values.tolist() == [["naïve café", "pos"]], name


def test_mixed_encodings_decode_line_by_line(tmp_path, caplog):
    """A UTF-8 file with one latin-1 line (files merged from two sources): each line decoded right."""
    path = tmp_path / "mixed.csv"
    path.write_bytes("text,label\ncafé ☕,pos\n".encode() + "naïve,neg\n".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        assert load(path).text.tolist() == ["café ☕", "naïve"]
    assert "not valid UTF-8 (byte 0xef on line 3)" in caplog.text


def test_embedded_newlines_quotes_and_crlf(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b'text\tlabel\r\n"she said ""hi""\r\nthen\tleft"\tpos\r\nplain\tneg\r\n')
    assert load(path).values.tolist() == [['she said "hi"\r\nthen\tleft', "pos"], ["plain", "neg"]]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_one_megabyte_rows(tmp_path, suffix):
    big = "word " * 200_000
    frame = pd.DataFrame({"text": [big, "small"], "label": ["pos", "neg"]})
    path = tmp_path / f"big{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_json(path, orient="records", lines=True)
    assert load(path).text.tolist() == [big, "small"]


def test_emoji_rtl_and_combining_text_survive_loading_and_cleaning(tmp_path):
    texts = ["שלום עולם 🙂 @dan", "مرحبا بالعالم http://x.co", "👩‍👩‍👧 family e\u0301",
             "\u202eevil\u202c rtl override"]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": "x"}, ensure_ascii=False) + "\n" for t in texts),
                    encoding="utf-8")
    assert load(path).text.tolist() == texts
    assert load(path, clean=True).text.tolist() == [clean_text(t) for t in texts]
    assert clean_text(texts[0]) == "שלום עולם 🙂 @user"
    assert clean_text(texts[1]) == "مرحبا بالعالم <url>"


@pytest.mark.parametrize("polarity", ['"0","4"', "0,4", '"0.0","4.0"', '" 0"," 4"'])
def test_sentiment140_polarity_stored_as_text(tmp_path, polarity):
    zero, four = polarity.split(",")
    lines = [f'{p},"{1467810369 + i}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","u{i}","tweet {i}"'
             for i, p in enumerate([zero, four])]
    path = tmp_path / "training.csv"
    path.write_text("\n".join(lines) + "\n")
    assert load(path, format="sentiment140").label.tolist() == ["neg", "pos"]


@pytest.mark.parametrize("polarity", [pa.array(["0", "4"]), pa.array([0, 4]), pa.array([0.0, 4.0])])
def test_sentiment140_columns_in_parquet(tmp_path, polarity):
    table = pa.table({"polarity": polarity, "id": [1, 2], "text": ["sad", "glad"]})
    pq.write_table(table, tmp_path / "s.parquet")
    frame = load(tmp_path / "s.parquet", label_map={"0": "neg", "4": "pos"})
    assert frame.values.tolist() == [["sad", "neg"], ["glad", "pos"]]


def test_numeric_label_spellings_are_one_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,4\nb,4.0\nc, 4 \nd,0\n")
    assert load(path).label.tolist() == ["4", "4", "4", "0"]


def test_label_map_key_that_matches_nothing_warns(tmp_path, caplog):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,0\nb,4\n")
    with caplog.at_level(logging.WARNING):
        frame = load(path, label_map={"0": "neg", "5": "pos"})
    assert frame.label.tolist() == ["neg", "4"]
    assert "label_map key(s) 5 match no label in the data; labels are 0, 4" in caplog.text


def test_only_one_label_present(tmp_path, tiny_model_dir):
    """One label is a valid (if odd) dataset: one model, and 'all' means that label."""
    path = tmp_path / "pos.csv"
    path.write_text("text,label\n" + "".join(f"happy {i},pos\n" for i in range(6)))
    run = tmp_path / "run"
    assert main(["finetune", "--data", str(path), "--out", str(run), "--model", str(tiny_model_dir),
                 "--max-steps", "1", "--batch-size", "2", "--block-size", "16", "--no-progress"]) == 0
    aug = Augmenter.load(run)
    assert aug.labels == ["pos"]
    assert aug.generate(n=2, max_new_tokens=2, batch_size=2).label.tolist() == ["pos", "pos"]
    with pytest.raises(ConfigError, match=f"{run}: no label 'neg'; labels are pos"):
        aug.generate("neg", n=1)


def test_api_raises_the_same_errors(tmp_path, tiny_model_dir):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(7)], "label": ["pos"] * 5 + ["neg"] * 2})
    with pytest.raises(DataError, match="too few rows to train \\('neg' has 2"):
        Augmenter.fit(frame, model=str(tiny_model_dir), run_dir=tmp_path / "run")
    with pytest.raises(DataError, match="DataFrame: row 1, column 'label': label is missing"):
        Augmenter.fit(pd.DataFrame({"text": ["a", "b"], "label": ["x", None]}), run_dir=tmp_path / "r2")
    assert not (tmp_path / "run").exists() and not (tmp_path / "r2").exists()
