"""Compressed data files and zip archives, written for real in each test.

Before: ``train.csv.gz`` got "unknown file type '.gz'" and Sentiment140's own
``trainingandtestdata.zip`` could not be read at all.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main
from augment.config import DataConfig
from augment.data import load_dataset, load_texts
from augment.errors import DataError, MissingDependencyError
from tests.reliability.helpers import error_line

FRAME = pd.DataFrame({"text": ["so happy", "awful day", "great trip", "lost my bag"],
                      "label": ["pos", "neg", "pos", "neg"]})
S140_ROWS = ['"0","1467810369","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","user1","is upset today"',
             '"4","1467810672","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","user2","loving the sun"',
             '"4","1467810917","Mon Apr 06 22:19:53 PDT 2009","NO_QUERY","user3","what a day, thanks"']
S140 = ("\n".join(S140_ROWS) + "\n").encode("latin-1")


def csv_bytes(frame: pd.DataFrame = FRAME) -> bytes:
    return frame.to_csv(index=False).encode()


def load(path: Path, **config) -> pd.DataFrame:
    return load_dataset(path, DataConfig(path=str(path), **config))


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress),
                                              (".xz", lzma.compress)])
def test_compressed_csv_and_jsonl_read_like_the_plain_file(tmp_path, suffix, compress):
    (tmp_path / "plain.csv").write_bytes(csv_bytes())
    plain = load(tmp_path / "plain.csv")
    packed = tmp_path / f"train.csv{suffix}"
    packed.write_bytes(compress(csv_bytes()))
    pd.testing.assert_frame_equal(load(packed), plain)
    jsonl = tmp_path / f"train.jsonl{suffix}"
    jsonl.write_bytes(compress(FRAME.to_json(orient="records", lines=True).encode()))
    pd.testing.assert_frame_equal(load(jsonl), plain)


def test_zst_reads_with_zstandard(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "train.csv.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(csv_bytes()))
    assert load(path)["text"].tolist() == FRAME["text"].tolist()


def test_zst_without_zstandard_names_the_package(tmp_path, monkeypatch):
    path = tmp_path / "train.csv.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd not really")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"train.csv.zst: reading .zst files needs the zstandard "
                                                     r"package \(pip install zstandard\)"):
        load(path)


def test_sentiment140_is_recognised_inside_gz(tmp_path):
    path = tmp_path / "training.1600000.processed.noemoticon.csv.gz"
    path.write_bytes(gzip.compress(S140))
    frame = load(path)
    assert frame["label"].tolist() == ["neg", "pos", "pos"] and frame["text"][0] == "is upset today"


def sentiment140_zip(path: Path) -> Path:
    """The layout of Stanford's trainingandtestdata.zip: two headerless CSVs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("testdata.manual.2009.06.14.csv", S140)
        zf.writestr("training.1600000.processed.noemoticon.csv", S140 * 2)
    return path


def test_sentiment140_zip_needs_member_and_then_auto_detects(tmp_path):
    archive = sentiment140_zip(tmp_path / "trainingandtestdata.zip")
    with pytest.raises(DataError, match=r"trainingandtestdata.zip: holds 2 data files \(testdata.manual.2009.06.14"
                                        r".csv, training.1600000.processed.noemoticon.csv\); pass --member NAME"):
        load(archive)
    frame = load(archive, member="training.1600000.processed.noemoticon.csv", dedup=False)
    assert len(frame) == 6 and set(frame["label"]) == {"neg", "pos"}


def test_zip_with_one_data_file_needs_no_member(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/train.csv", csv_bytes())
        zf.writestr("data/README.md", "not data")
        zf.writestr("__MACOSX/data/._train.csv", "resource fork")
    assert load(archive)["text"].tolist() == FRAME["text"].tolist()
    with pytest.raises(DataError, match=r"data.zip: no member named 'test.csv'; the archive holds data/train.csv"):
        load(archive, member="test.csv")


def test_zip_errors_name_the_member(tmp_path):
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.csv", "text,label\nhi,\n")
    with pytest.raises(DataError, match=r"d.zip:train.csv: line 2, column 'label': label is empty"):
        load(archive)


@pytest.mark.parametrize("name", ["../evil.csv", "/etc/evil.csv", "ok/../../evil.csv", "C:/evil.csv"])
def test_zip_with_a_path_traversal_name_is_refused(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.csv", csv_bytes())
        zf.writestr(zipfile.ZipInfo(name), csv_bytes())
    with pytest.raises(DataError, match=f"evil.zip: member '{name}' has an absolute or '..' path; refusing"):
        load(archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip"]  # nothing was extracted


def test_corrupt_and_unknown_inner_type_are_one_line(tmp_path):
    broken = tmp_path / "train.csv.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"train.csv.gz: cannot decompress as gz"):
        load(broken)
    odd = tmp_path / "train.dat.gz"
    odd.write_bytes(gzip.compress(csv_bytes()))
    with pytest.raises(DataError, match=r"train.dat.gz: unknown file type '.dat'"):
        load(odd)
    with pytest.raises(DataError, match="--member applies to .zip archives only"):
        load(tmp_path / "train.csv.gz", member="x.csv")


def test_prefix_texts_from_a_compressed_txt(tmp_path):
    path = tmp_path / "unlabelled.txt.gz"
    path.write_bytes(gzip.compress(b"first text\nsecond text\n"))
    assert load_texts(path) == ["first text", "second text"]


def test_cli_zip_with_several_candidates_is_one_line(tmp_path, tiny_model_dir, capsys):
    archive = sentiment140_zip(tmp_path / "trainingandtestdata.zip")
    argv = ["finetune", "--data", str(archive), "--model", str(tiny_model_dir), "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "pass --member NAME to pick one" in error_line(capsys)
    assert not (tmp_path / "run").exists()
