"""Outputs that cannot be written: a clear one-line error, inputs untouched, and a clean retry.

Tests run as root in CI containers, where ``chmod`` does not stop writes, so an
unwritable place is made with a path under a regular file, and a full disk by
making ``os.replace`` (the last step of every atomic write) fail with ENOSPC.
The ``chmod`` variant runs only when it can bite.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main
from augment.convert import hf_to_gpt2simple
from augment.rundir import RunDir
from tests.reliability.helpers import error_line, tree_digest



def finetune_args(data: Path, model: Path, out: Path) -> list[str]:
    return ["finetune", "--data", str(data), "--model", str(model), "--labels", "pos", "--out", str(out),
            "--max-steps", "2", "--save-steps", "2", "--batch-size", "2", "--block-size", "16", "--no-progress"]


def gen_args(run: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--run", str(run), "--out", str(out), "-n", "6", "--batch-size", "2",
            "--max-new-tokens", "4", "--seed", "1", "--no-filter", "--no-progress", *extra]


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    path = tmp_path / "blocker"
    path.write_text("a regular file where a directory is needed\n")
    return path


def enospc_for(monkeypatch: pytest.MonkeyPatch, target: Path | Callable[[Path], bool]) -> list[str]:
    """Make renames onto ``target`` (a path, or a test of the destination) fail as on a full disk;
    returns the destinations refused."""
    real, refused = os.replace, []
    hits = target if callable(target) else (lambda dst: dst == target)

    def replace(src, dst, *args, **kwargs):
        if hits(Path(dst)):
            refused.append(str(dst))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return refused


def test_finetune_out_under_a_file(fault_csv, tiny_model_dir, blocker, capsys):
    before = fault_csv.read_bytes()
    assert main(finetune_args(fault_csv, tiny_model_dir, blocker / "run")) == 2
    assert f"{blocker / 'run'}: cannot create the run directory (Not a directory)" in error_line(capsys)
    assert fault_csv.read_bytes() == before and blocker.is_file()


def test_generate_out_under_a_file(small_run, blocker, capsys):
    before = tree_digest(small_run)
    assert main(gen_args(small_run, blocker / "synthetic.csv")) == 2
    assert f"{blocker}: is not a directory, cannot write synthetic.csv there" in error_line(capsys)
    assert tree_digest(small_run) == before


def test_convert_out_under_a_file(tiny_model_dir, blocker, tmp_path, capsys):
    src = hf_to_gpt2simple(tiny_model_dir, tmp_path / "g2s")
    before = tree_digest(src)
    assert main(["convert", str(src), "--out", str(blocker / "hf")]) == 2
    assert f"{blocker / 'hf'}: cannot write here" in error_line(capsys)
    assert tree_digest(src) == before and blocker.is_file()


@pytest.fixture(scope="module")
def reference_output(small_run: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("reference") / "synthetic.csv"
    assert main(gen_args(small_run, out)) == 0
    return out.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["final file", "third batch"])
def test_generate_disk_full_then_resume(small_run, reference_output, tmp_path, monkeypatch, capsys, failing):
    """ENOSPC on the final rename or on a batch file: exit 2 naming the file, no output and no temp
    file left, the saved batches kept; ``--resume`` then ends byte-identical to an uninterrupted run."""
    out = tmp_path / "synthetic.csv"
    parts = tmp_path / "synthetic.csv.parts"
    before = tree_digest(small_run)
    if failing == "final file":
        refused = enospc_for(monkeypatch, out)
    else:  # chunks are named by their first row index, which continuous batching makes data-dependent
        chunks: list[Path] = []
        refused = enospc_for(monkeypatch, lambda dst: dst.parent == parts and dst.name.startswith("neg-")
                             and (chunks.append(dst) or len(chunks) == 3))
    assert main(gen_args(small_run, out)) == 2
    assert len(refused) == 1
    assert f"{refused[0]}: write failed (No space left on device)" in error_line(capsys)
    assert not out.exists() and not list(tmp_path.rglob(".*partial-*"))
    assert len(list(parts.glob("*.jsonl"))) == (6 if failing == "final file" else 2)
    monkeypatch.undo()
    assert main(gen_args(small_run, out, "--resume")) == 0
    assert out.read_bytes() == reference_output
    assert tree_digest(small_run) == before


@pytest.mark.slow
def test_finetune_disk_full_then_resume(fault_csv, tiny_model_dir, tmp_path, monkeypatch, capsys):
    """ENOSPC when the trained model dir is renamed into place: exit 2, the run stays 'pending' with
    its checkpoints, and ``--resume`` finishes it from the final checkpoint without training further.

    (Trainer resumed from a checkpoint at ``max_steps`` takes one step more: 3 steps, other
    weights. Fixed in ``torch_backend.finish_from_checkpoint``.)
    """
    run = tmp_path / "run"
    before = fault_csv.read_bytes()
    enospc_for(monkeypatch, run / "pos")
    assert main(finetune_args(fault_csv, tiny_model_dir, run)) == 2
    assert f"{run / 'pos'}: write failed (No space left on device)" in error_line(capsys)
    assert not (run / "pos").exists() and not list(run.glob(".pos.partial-*"))
    assert RunDir(run).read_manifest().models["pos"].status == "pending"
    monkeypatch.undo()
    assert main([*finetune_args(fault_csv, tiny_model_dir, run), "--resume"]) == 0
    entry = RunDir(run).read_manifest().models["pos"]
    assert entry.status == "done" and entry.resumed_from_step == 2 and entry.steps == 2
    assert fault_csv.read_bytes() == before
    reference = tmp_path / "uninterrupted"
    assert main(finetune_args(fault_csv, tiny_model_dir, reference)) == 0
    assert entry.hash == RunDir(reference).read_manifest().models["pos"].hash
    assert entry.final_loss == RunDir(reference).read_manifest().models["pos"].final_loss


def test_convert_disk_full(tiny_model_dir, tmp_path, monkeypatch, capsys):
    src = hf_to_gpt2simple(tiny_model_dir, tmp_path / "g2s")
    before = tree_digest(src)
    out = tmp_path / "hf"
    enospc_for(monkeypatch, out)
    assert main(["convert", str(src), "--out", str(out)]) == 2
    assert f"{out}: write failed (No space left on device)" in error_line(capsys)
    assert not out.exists() and not list(tmp_path.glob(".hf.partial-*"))
    assert tree_digest(src) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions; covered by the tests above")
def test_read_only_output_dir(small_run, tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert main(gen_args(small_run, folder / "synthetic.csv")) == 2
        assert "Permission denied" in error_line(capsys)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(stat.S_IRWXU)


def test_existing_output_is_never_replaced_without_overwrite(small_run, tmp_path, capsys):
    out = tmp_path / "synthetic.csv"
    out.write_text("text,label\nprecious,pos\n")
    assert main(gen_args(small_run, out)) == 2
    assert f"{out}: already exists; pass --overwrite to replace it" in error_line(capsys)
    assert out.read_text() == "text,label\nprecious,pos\n"
    assert pd.read_csv(out).shape == (1, 2)
