"""Crash tests: the real CLI in a child process, SIGKILLed at a chosen moment, then re-run with ``--resume``.

What a crash may cost is stated and measured: fine-tuning loses at most
``save_steps`` optimizer steps and ends with the same weights as an
uninterrupted run; generation loses no row and repeats none; conversion never
leaves a directory that looks finished.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from augment.cli import main
from augment.convert import hf_to_gpt2simple
from augment.rundir import RunDir
from tests.reliability.procs import Child, complete_checkpoints, logged_steps

MAX_STEPS, SAVE_STEPS = 12, 4


def finetune_args(data: Path, model: Path, out: Path) -> list[str]:
    return ["finetune", "--data", str(data), "--model", str(model), "--labels", "pos", "--out", str(out),
            "--max-steps", str(MAX_STEPS), "--save-steps", str(SAVE_STEPS), "--batch-size", "4",
            "--block-size", "16", "--lr", "5e-3", "--no-progress"]


@pytest.fixture(scope="module")
def reference_run(fault_csv: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run, through the same entry point (in this process)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(finetune_args(fault_csv, tiny_model_dir, out)) == 0
    return out


def max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() <= wb.keys()
    return max(float(np.abs(wa[k].astype(np.float64) - wb[k]).max()) for k in wa)


def _resume_and_compare(run: Path, reference: Path, args: list[str], resumed_expected: int, killed_at: int) -> None:
    manifest = RunDir(run).read_manifest()
    assert manifest.models["pos"].status == "pending"
    assert not (run / "pos").exists(), "a killed run must not leave a model dir that looks finished"
    assert main([*args, "--resume"]) == 0
    entry = RunDir(run).read_manifest().models["pos"]
    assert entry.status == "done" and entry.steps == MAX_STEPS
    assert entry.resumed_from_step == resumed_expected
    assert 0 <= killed_at - entry.resumed_from_step <= SAVE_STEPS  # steps redone after the crash
    diff = max_weight_diff(run / "pos", reference / "pos")
    print(f"killed after step {killed_at}, resumed from {entry.resumed_from_step}, "
          f"steps redone {killed_at - entry.resumed_from_step}, max weight diff {diff}")
    assert diff == 0.0
    assert entry.hash == RunDir(reference).read_manifest().models["pos"].hash


def _kill_after_step(args: list[str], run: Path, step: int, child_log: Path) -> tuple[int, list[int]]:
    """SIGKILL an ``augment finetune`` child once label 'pos' logged ``step``: (last logged step, complete
    checkpoints), at least one checkpoint saved and the run not finished."""
    log, checkpoints = run / ".work" / "pos" / "train_log.jsonl", run / ".work" / "pos" / "checkpoints"
    child = Child(args, child_log)
    reached = child.wait_for(lambda: any(s >= step for s in logged_steps(log)))
    child.kill()
    assert reached, child.output()
    killed_at, complete = max(logged_steps(log)), complete_checkpoints(checkpoints)
    assert complete and max(complete) < MAX_STEPS, (killed_at, complete)
    return killed_at, complete


@pytest.mark.slow
def test_finetune_killed_between_checkpoints(fault_csv, tiny_model_dir, reference_run, tmp_path):
    """Killed after step 6 (checkpoint-4 saved, checkpoint-8 not yet): resumes from step 4.

    Tolerance: exact. Measured max |w_resumed - w_uninterrupted| = 0.0 and equal model
    hashes: Trainer restores optimizer, scheduler and RNG states (dropout) and skips the
    batches already consumed, and on the same CPU with the same thread count every
    reduction runs in the same order.
    """
    run = tmp_path / "run"
    args = finetune_args(fault_csv, tiny_model_dir, run)
    killed_at, complete = _kill_after_step(args, run, 6, tmp_path / "child.log")
    _resume_and_compare(run, reference_run, args, max(complete), killed_at)


@pytest.mark.slow
def test_finetune_killed_while_saving_a_checkpoint(fault_csv, tiny_model_dir, reference_run, tmp_path):
    """Killed as soon as ``checkpoint-8/`` appears, i.e. while Trainer is still writing it.

    ``trainer_state.json`` is written last, so a torn checkpoint lacks it; resuming
    must skip it and use checkpoint-4 (``get_last_checkpoint`` alone picked the torn
    one and every resume failed: fixed in ``torch_backend.last_complete_checkpoint``).
    If the save happened to finish before the signal landed, the state file is torn by
    hand so the test always covers the torn case. Tolerance: exact, as above.
    """
    run = tmp_path / "run"
    args = finetune_args(fault_csv, tiny_model_dir, run)
    checkpoints = run / ".work" / "pos" / "checkpoints"
    torn = checkpoints / "checkpoint-8"
    child = Child(args, tmp_path / "child.log")
    reached = child.wait_for(torn.is_dir, interval=0.001)
    child.kill()
    assert reached, child.output()
    torn_by_kill = 8 not in complete_checkpoints(checkpoints)
    print(f"checkpoint-8 torn by the kill: {torn_by_kill} (files: {sorted(p.name for p in torn.iterdir())})")
    if not torn_by_kill:  # the save won the race: tear it the way a kill would
        state = torn / "trainer_state.json"
        state.write_bytes(state.read_bytes()[:20])
    assert complete_checkpoints(checkpoints)[-1] == 4
    _resume_and_compare(run, reference_run, args, 4, killed_at=8)


GEN_N = 12  # rows saved in chunks of 4 (the slot count): about 3 parts per label, 6 in all


def _gen_args(run: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--run", str(run), "--out", str(out), "-n", str(GEN_N), "--batch-size", "4",
            "--max-new-tokens", "6", "--seed", "7", "--no-filter", "--no-progress", *extra]


@pytest.mark.slow
def test_generation_killed_then_resumed_is_byte_identical(small_run, tmp_path):
    """Killed after 2 of about 6 saved chunks: resume (with another batch size) reuses the saved rows and
    the output is byte-identical to an uninterrupted run: 12 rows per label, 0 lost, 0 repeated."""
    out, parts = tmp_path / "killed" / "synthetic.csv", tmp_path / "killed" / "synthetic.csv.parts"
    child = Child(_gen_args(small_run, out), tmp_path / "child.log")
    reached = child.wait_for(lambda: len(list(parts.glob("*-*.jsonl"))) >= 2)
    child.kill()
    assert reached, child.output()
    assert not out.exists(), "the final file must only appear when every label is complete"
    saved = sorted(parts.glob("*-*.jsonl"))
    print(f"killed with {len(saved)} of 6 batches saved: {[p.name for p in saved]}")
    assert 2 <= len(saved) < 6
    for part in saved:  # atomic batches: whole JSON lines only
        raw = part.read_bytes()
        assert raw.endswith(b"\n") and all(json.loads(line) for line in raw.splitlines())
    assert main(_gen_args(small_run, out)) == 2  # partial results exist: --resume or delete them
    assert main(_gen_args(small_run, out, "--resume", "--batch-size", "3")) == 0
    reference = tmp_path / "reference" / "synthetic.csv"
    assert main(_gen_args(small_run, reference)) == 0
    assert out.read_bytes() == reference.read_bytes()
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert frame.label.value_counts().to_dict() == {"neg": GEN_N, "pos": GEN_N}
    assert not frame.duplicated(["label", "seed", "text"]).any()
    assert not parts.exists()


def _partial_siblings(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.partial-*"))


def _looks_finished(out: Path) -> bool:
    return out.is_dir() and all((out / f).is_file() for f in ("config.json", "model.safetensors", "conversion.json"))


@pytest.mark.slow
def test_convert_killed_mid_write_leaves_nothing_that_looks_finished(tiny_model_dir, tmp_path):
    """Killed while the HF dir is being written (its ``.NAME.partial-*`` sibling exists): no ``NAME``
    appears; a rerun succeeds and gives the source weights exactly.

    The write takes a fraction of a second, so an attempt where the conversion wins the race
    (finishes before the poll sees the temp dir) is retried; each must leave either nothing or
    a complete directory.
    """
    src = hf_to_gpt2simple(tiny_model_dir, tmp_path / "g2s")
    for attempt in range(3):
        out = tmp_path / f"attempt-{attempt}" / "hf"
        out.parent.mkdir()
        child = Child(["convert", str(src), "--out", str(out)], tmp_path / f"child-{attempt}.log")
        caught = child.wait_for(lambda: bool(_partial_siblings(out)), interval=0.0005)
        child.kill()
        assert not out.exists() or _looks_finished(out)
        if caught and not out.exists():
            break
    else:
        pytest.fail(f"never caught the conversion mid-write in 3 attempts:\n{child.output()}")
    assert main(["convert", str(src), "--out", str(out)]) == 0
    assert _looks_finished(out) and max_weight_diff(out, tiny_model_dir) == 0.0
    # SIGKILL runs no cleanup; the next write to the same path sweeps the dead process's temp dir.
    assert _partial_siblings(out) == []


@pytest.mark.slow
def test_lora_finetune_killed_between_checkpoints(fault_csv, tiny_model_dir, tmp_path):
    """``--adapter lora``, SIGKILLed after step 6 (checkpoint-4 saved): the resumed run redoes at most
    ``save_steps`` steps, leaves no adapter dir that looks finished meanwhile, and ends with the
    uninterrupted run's adapter exactly (Trainer restores the adapter, optimizer, scheduler and RNG
    states; the adapter's random start comes from the seed)."""
    reference = tmp_path / "reference"
    assert main([*finetune_args(fault_csv, tiny_model_dir, reference), "--adapter", "lora"]) == 0
    run = tmp_path / "run"
    args = [*finetune_args(fault_csv, tiny_model_dir, run), "--adapter", "lora"]
    killed_at, complete = _kill_after_step(args, run, 6, tmp_path / "child.log")
    assert not (run / "pos").exists()
    assert main([*args, "--resume"]) == 0
    entry = RunDir(run).read_manifest().models["pos"]
    assert entry.status == "done" and entry.resumed_from_step == max(complete)
    assert 0 <= killed_at - entry.resumed_from_step <= SAVE_STEPS
    resumed, uninterrupted = (load_file(str(r / "pos" / "adapter_model.safetensors")) for r in (run, reference))
    assert resumed.keys() == uninterrupted.keys()
    assert max(float(np.abs(resumed[k] - uninterrupted[k]).max()) for k in resumed) == 0.0
    assert entry.hash == RunDir(reference).read_manifest().models["pos"].hash
