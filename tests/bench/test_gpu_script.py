"""The GPU check's CPU parts: environment report, wheel list, and the whole script in --cpu-smoke mode."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from benchmarks import gpu_env

ROOT = Path(__file__).resolve().parents[2]


def test_environment_report_dry_run(tmp_path: Path) -> None:
    report = gpu_env.main([str(tmp_path / "env.json"), "--dry-run"])
    assert report["installed"] == [] and report["after"]["torch"]  # this venv has everything
    assert json.loads((tmp_path / "env.json").read_text())["device"]["cuda"] in (True, False)


def test_every_carried_distribution_is_pinned() -> None:
    pins = {line.split("==")[0].lower() for line in (ROOT / "benchmarks/gpu-wheels.txt").read_text().splitlines()
            if line and not line.startswith("#")}
    wanted = {d.lower() for dists in gpu_env.NEEDED.values() for d in dists}
    assert wanted == pins


def test_missing_wheels_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="make gpu-wheels"):
        gpu_env.install(["pydantic"], tmp_path / "nothing-here")


@pytest.mark.slow
def test_gpu_script_cpu_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", __import__("sys").executable)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--cpu-smoke", str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == ["environment", "gpu-tests", "generation", "generation-qwen2", "finetune"]
    assert all(s["rc"] in (0, 5) for s in steps[1:2])  # 5: every GPU test skipped (no GPU here)
    for name in ("environment.json", "generation.json", "generation-qwen2.json", "finetune.json", "tables.md"):
        assert (tmp_path / name).stat().st_size > 0
