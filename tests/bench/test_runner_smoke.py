"""The benchmark runners run end to end in smoke mode (tiny model, a few rows) and write their JSON."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import finetune, generation
from benchmarks.report import markdown


def test_generation_smoke(tmp_path: Path) -> None:
    out = tmp_path / "gen.json"
    results = generation.main(["--smoke", "--rows", "4", "--new-tokens", "4", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {r.case for r in results} == {"augment", "augment no-refill", "generate/1 batch", "pipeline/row"}
    assert all(0 < r["mfu"] < 1 for r in report["results"]) and report["matmul"]["tiny"]["peak"] > 0
    assert {r["baseline"] for r in report["ratios"]} == {"generate/1 batch", "pipeline/row"}
    assert all(r["rows_per_s"] > 0 and r["peak_mb"] > 0 for r in report["results"])
    assert report["versions"]["torch"]


def test_finetune_smoke(tmp_path: Path) -> None:
    out = tmp_path / "ft.json"
    finetune.main(["--smoke", "--rows", "32", "--steps", "2", "--batch-size", "2", "--block", "32",
                   "--out", str(out)])
    report = json.loads(out.read_text())
    assert [r["case"] for r in report["results"]] == ["augment packed", "padded rows"]
    assert report["ratios"][0]["ratio"] > 0
    assert "| tiny | augment packed | padded rows |" in markdown(report)
