"""results.jsonl: whole lines only; a torn last line is dropped and cut off before the next append."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.errors import AugmentError
from augment.experiment.results import ResultsLog


def test_append_and_read(tmp_path: Path):
    log = ResultsLog(tmp_path / "r" / "results.jsonl")
    assert log.read() == [] and log.keys() == set()
    log.append({"key": "a", "x": 1})
    log.append({"key": "b", "x": 2})
    assert [r["x"] for r in log.read()] == [1, 2]
    assert log.path.read_text().count("\n") == 2


def test_truncated_last_line_is_dropped_then_repaired(tmp_path: Path):
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append({"key": "a"})
    with open(log.path, "ab") as fh:
        fh.write(b'{"key": "b", "metr')          # what a kill mid-write leaves
    assert log.keys() == {"a"}
    log.repair()
    assert log.path.read_bytes() == b'{"key": "a"}\n'
    log.append({"key": "c"})
    assert [r["key"] for r in log.read()] == ["a", "c"]


def test_unparsable_last_line_with_newline_is_dropped(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"key": "a"}\n{"key": "b", \n')
    log = ResultsLog(path)
    assert log.keys() == {"a"}
    log.repair()
    assert path.read_bytes() == b'{"key": "a"}\n'


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"key": "a"}\nnot json\n{"key": "c"}\n')
    with pytest.raises(AugmentError, match=r"results.jsonl: line 2 is not valid JSON"):
        ResultsLog(path).read()
    path.write_bytes(b'{"key": "a"}\n[1, 2]\n{"key": "c"}\n')
    with pytest.raises(AugmentError, match=r"line 2 is not a results row"):
        ResultsLog(path).read()


def test_duplicate_key_keeps_first(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps({"key": "a", "v": v}) for v in (1, 2)) + "\n")
    assert [r["v"] for r in ResultsLog(path).read()] == [1]


def test_lock_refuses_a_second_writer(tmp_path: Path):
    log = ResultsLog(tmp_path / "results.jsonl")
    with log.locked():
        with pytest.raises(AugmentError, match="another experiment run is writing here"):
            with ResultsLog(tmp_path / "results.jsonl").locked():
                pass
    with log.locked():   # released
        pass


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path: Path):
    with pytest.raises(ValueError):
        ResultsLog(tmp_path / "results.jsonl").append({"key": "a", "v": float("nan")})
