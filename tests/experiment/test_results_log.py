"""results.jsonl: whole lines only; a torn last line is dropped and cut off before the next append."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.errors import AugmentError
from augment.experiment.results import ResultsLog
from tests.experiment.helpers import cell_result


def line(key: str, **fields) -> bytes:
    return cell_result(key=key, **fields).to_line()


def test_append_and_read(tmp_path: Path):
    log = ResultsLog(tmp_path / "r" / "results.jsonl")
    assert log.read() == [] and log.keys() == set()
    log.append(cell_result(key="a", seed=1))
    log.append(cell_result(key="b", seed=2))
    assert [r.seed for r in log.read()] == [1, 2]
    assert log.path.read_text().count("\n") == 2


def test_truncated_last_line_is_dropped_then_repaired(tmp_path: Path):
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append(cell_result(key="a"))
    with open(log.path, "ab") as fh:
        fh.write(b'{"key": "b", "metr')          # what a kill mid-write leaves
    assert log.keys() == {"a"}
    log.repair()
    assert log.path.read_bytes() == line("a")
    log.append(cell_result(key="c"))
    assert [r.key for r in log.read()] == ["a", "c"]


def test_unparsable_last_line_with_newline_is_dropped(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(line("a") + b'{"key": "b", \n')
    log = ResultsLog(path)
    assert log.keys() == {"a"}
    log.repair()
    assert path.read_bytes() == line("a")


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(line("a") + b"not json\n" + line("c"))
    with pytest.raises(AugmentError, match=r"results.jsonl: line 2 is not valid JSON"):
        ResultsLog(path).read()
    path.write_bytes(line("a") + b"[1, 2]\n" + line("c"))
    with pytest.raises(AugmentError, match=r"line 2 is not a results row"):
        ResultsLog(path).read()


def test_a_row_missing_a_field_is_an_error_naming_line_and_field(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    row = json.loads(line("b"))
    del row["metrics"]["macro_f1"]
    path.write_bytes(line("a") + json.dumps(row).encode() + b"\n" + line("c"))
    with pytest.raises(AugmentError, match=r"line 2 is not a results row \(missing key 'metrics.macro_f1'\)"):
        ResultsLog(path).read()


def test_duplicate_key_keeps_first(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(line("a", seed=1) + line("a", seed=2))
    assert [r.seed for r in ResultsLog(path).read()] == [1]


def test_a_row_is_written_as_read(tmp_path: Path):
    """Parts a cell does not have stay absent; set ones, null included, are kept (resumes compare keys)."""
    log = ResultsLog(tmp_path / "results.jsonl")
    row = cell_result(key="a", lm={"key": "k", "cached": False, "wall_s": 1.5, "separator": None})
    log.append(row)
    written = json.loads(log.path.read_bytes())
    assert written["lm"] == {"key": "k", "cached": False, "wall_s": 1.5, "separator": None}
    assert "filter_report" not in written and "validation_metrics" not in written and written["quality"] is None
    assert log.read() == [row] and log.read()[0].to_line() == log.path.read_bytes()


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
        ResultsLog(tmp_path / "results.jsonl").append(cell_result(key="a", metrics={"accuracy": float("nan"),
                                                                                     "macro_f1": 0.5}))
