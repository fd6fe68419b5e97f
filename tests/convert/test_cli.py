"""``augment convert`` end to end through typer, as ``augment.cli`` registers it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from safetensors.numpy import load_file
from typer.testing import CliRunner

from augment.convert import tensorbundle as tb
from augment.convert.cli import convert_command
from augment.errors import AugmentError


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("convert")(convert_command)

    @app.command("noop")
    def _noop() -> None:  # a second command, so "convert" stays a sub-command as in augment.cli
        pass

    return app


def _invoke(app: typer.Typer, *args: str) -> object:
    return CliRunner().invoke(app, ["convert", *args], catch_exceptions=True)


def test_both_directions(app: typer.Typer, tiny_model_dir: Path, tmp_path: Path) -> None:
    result = _invoke(app, str(tiny_model_dir), "--out", str(tmp_path / "g2s"), "--to", "gpt-2-simple")
    assert result.exit_code == 0, result.output
    result = _invoke(app, str(tmp_path / "g2s"), "--out", str(tmp_path / "hf"))
    assert result.exit_code == 0, result.output
    a, b = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert all(np.array_equal(b[k], a[k]) for k in b)


def test_existing_output_needs_overwrite(g2s_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    with pytest.raises(AugmentError, match="already exists; pass --overwrite"):
        convert_command(g2s_dir, tmp_path / "hf")
    convert_command(g2s_dir, tmp_path / "hf", overwrite=True)
    assert (tmp_path / "hf" / "config.json").is_file()


def test_bad_options(g2s_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(AugmentError, match="--to 'onnx': expected one of hf, gpt-2-simple"):
        convert_command(g2s_dir, tmp_path / "x", to="onnx")
    with pytest.raises(AugmentError, match="--step applies to gpt-2-simple checkpoints"):
        convert_command(tiny_model_dir, tmp_path / "x", to="gpt-2-simple", step=3)
    with pytest.raises(AugmentError, match="no checkpoint for step 5; available: model.ckpt"):
        convert_command(g2s_dir, tmp_path / "x", step=5)
    with pytest.raises(AugmentError, match="not found"):
        convert_command(tmp_path / "missing", tmp_path / "x")


def test_failure_leaves_no_partial_output(g2s_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(g2s_dir, broken)
    data = broken / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1000])
    with pytest.raises(tb.BundleError, match="truncated"):
        convert_command(broken, tmp_path / "out" / "hf")
    leftovers = list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else []
    assert leftovers == []


def test_corrupt_checkpoint_reported_by_name(g2s_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(g2s_dir, broken)
    _, entries = tb.read_index(broken / "model.ckpt")
    data = broken / "model.ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[entries["model/wpe"].offset + 3] ^= 0x40
    data.write_bytes(bytes(raw))
    with pytest.raises(tb.BundleError, match="checksum mismatch for model/wpe"):
        convert_command(broken, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
