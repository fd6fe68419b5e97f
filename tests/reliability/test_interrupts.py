"""Ctrl-C and SIGTERM: the real CLI in a child process, signalled at a chosen moment.

Every command must stop within seconds, exit 130 (SIGINT) or 143 (SIGTERM), never 0,
keep what is resumable and print one line naming it and the exact command that
continues; that command is then run as printed.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main
from augment.experiment import expand, load_experiment
from augment.interrupts import resume_argv
from augment.rundir import RunDir
from tests.experiment.helpers import baseline_config, tiny_frame, write_yaml
from tests.reliability.procs import REPO, Child, complete_checkpoints

STOP_WITHIN_S = 20  # generous for a loaded 2-core CI box; typically 1-3 s


def interrupt(child: Child, signum: int) -> tuple[int, float]:
    """Send ``signum``; the exit status and how long the child took to stop."""
    start = time.monotonic()
    child.proc.send_signal(signum)
    code = child.finish(timeout=STOP_WITHIN_S)
    return code, time.monotonic() - start


def the_line(output: str) -> str:
    lines = [l for l in output.splitlines() if l.startswith("interrupted (")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def resume_command(line: str) -> list[str]:
    return shlex.split(line.split("with: ", 1)[1])


def run_printed(command: list[str], log: Path, timeout: float = 300) -> int:
    """The printed command exactly as a user would paste it (only the environment is ours)."""
    with open(log, "wb") as fh:
        return subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=fh,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout).returncode


def gen_args(run: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--run", str(run), "--out", str(out), "-n", "8", "--batch-size", "2",
            "--max-new-tokens", "6", "--seed", "3", "--no-filter", "--no-progress", *extra]


@pytest.mark.slow
def test_generate_sigint_exits_130_keeps_batches_and_the_printed_command_resumes(small_run, tmp_path):
    out = tmp_path / "o.csv"
    parts = tmp_path / "o.csv.parts"
    child = Child(gen_args(small_run, out), tmp_path / "child.log")
    assert child.wait_for(lambda: len(list(parts.glob("*-*.jsonl"))) >= 2), child.output()
    code, took = interrupt(child, signal.SIGINT)
    line = the_line(child.output())
    print(line, f"(stopped in {took:.1f} s)")
    assert code == 130
    assert not out.exists() and parts.is_dir() and not (tmp_path / ".o.csv.lock").exists()
    kept = len(list(parts.glob("*-*.jsonl")))
    assert f"interrupted (SIGINT): {kept} finished batches kept in {parts}; resume with: " in line
    command = resume_command(line)
    assert command[:3] == [sys.executable, "-m", "augment"] and command[3:] == [*gen_args(small_run, out), "--resume"]
    assert run_printed(command, tmp_path / "resume.log") == 0, (tmp_path / "resume.log").read_text()
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)  # byte-identity: test_kill_resume
    assert frame.label.value_counts().to_dict() == {"neg": 8, "pos": 8} and not parts.exists()
    assert not frame.duplicated(["label", "seed", "text"]).any()


def finetune_args(data: Path, model: Path, out: Path) -> list[str]:
    return ["finetune", "--data", str(data), "--model", str(model), "--labels", "pos", "--out", str(out),
            "--max-steps", "12", "--save-steps", "4", "--batch-size", "4", "--block-size", "16", "--lr", "5e-3",
            "--no-progress"]


@pytest.mark.slow
def test_finetune_sigterm_exits_143_names_the_checkpoint_and_resumes(fault_csv, tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    checkpoints = run / ".work" / "pos" / "checkpoints"
    args = finetune_args(fault_csv, tiny_model_dir, run)
    child = Child(args, tmp_path / "child.log")
    assert child.wait_for(lambda: bool(complete_checkpoints(checkpoints))), child.output()
    code, took = interrupt(child, signal.SIGTERM)
    line = the_line(child.output())
    print(line, f"(stopped in {took:.1f} s)")
    assert code == 143
    step = max(complete_checkpoints(checkpoints))
    assert f"interrupted (SIGTERM): pos checkpointed at step {step} (in {run}); resume with: " in line
    assert resume_command(line)[3:] == [*args, "--resume"]
    assert not (tmp_path / ".run.lock").exists()
    assert RunDir(run).read_manifest().models["pos"].status == "pending"
    assert run_printed(resume_command(line), tmp_path / "resume.log") == 0, (tmp_path / "resume.log").read_text()
    entry = RunDir(run).read_manifest().models["pos"]
    assert entry.status == "done" and entry.resumed_from_step >= step


@pytest.mark.slow
def test_experiment_sigint_keeps_finished_cells_and_resume_drops_overwrite(tmp_path):
    data = tmp_path / "tiny.csv"
    tiny_frame().to_csv(data, index=False)
    config = write_yaml(tmp_path / "exp.yaml", baseline_config(data, seeds=list(range(6))))
    out = tmp_path / "results"
    args = ["experiment", "run", str(config), "--out", str(out), "--overwrite", "--no-progress"]
    child = Child(args, tmp_path / "child.log")
    results = out / "results.jsonl"
    assert child.wait_for(lambda: results.exists() and results.read_bytes().count(b"\n") >= 2), child.output()
    code, _ = interrupt(child, signal.SIGINT)
    line = the_line(child.output())
    assert code == 130
    done = results.read_bytes().count(b"\n")
    assert f"{done} finished cells kept in {results}; resume with: " in line
    command = resume_command(line)
    assert "--overwrite" not in command  # it would throw the finished cells away
    assert main(command[3:]) == 0
    rows = pd.read_json(results, lines=True)
    assert len(rows) == len(expand(load_experiment(config))) and rows["key"].is_unique


def test_sigterm_in_a_command_without_partial_state_says_run_again(monkeypatch, tmp_path, capsys):
    """convert and fetch write atomically: nothing half-done is kept, the same command starts over."""
    import augment.convert as convert

    def hang(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    monkeypatch.setattr(convert, "gpt2simple_to_hf", hang)
    argv = ["convert", str(tmp_path / "ckpt"), "--out", str(tmp_path / "hf")]
    start = time.monotonic()
    assert main(argv) == 143
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert "interrupted (SIGTERM): nothing partial is kept; run again with: augment convert" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored after the command


def test_resume_argv_adds_and_drops_flags():
    assert resume_argv(["generate", "--out", "o.csv"], add=["--resume"]) == ["generate", "--out", "o.csv", "--resume"]
    assert resume_argv(["generate", "--resume"], add=["--resume"]) == ["generate", "--resume"]
    assert resume_argv(["generate", "--no-resume"], add=["--resume"]) == ["generate", "--resume"]
    assert resume_argv(["experiment", "run", "x.yaml", "--overwrite"], drop=["--overwrite"]) == \
        ["experiment", "run", "x.yaml"]


# --- one writer per output ------------------------------------------------------------------------


@pytest.mark.slow
def test_second_job_on_a_live_output_is_told_who_holds_it(small_run, tmp_path, capsys):
    """Not "an interrupted job left partial results; pass --resume", which invited --resume on a live job."""
    out = tmp_path / "o.csv"
    child = Child(gen_args(small_run, out, "-n", "100000"), tmp_path / "child.log")  # runs until killed
    try:
        assert child.wait_for((tmp_path / "o.csv.parts").is_dir), child.output()
        for extra in ([], ["--resume"]):
            assert main(gen_args(small_run, out, *extra)) == 2
            err = capsys.readouterr().err
            assert f"error: {out}: in use by pid {child.proc.pid} on " in err, err
            assert "wait for it to finish or stop it" in err and "pass --resume" not in err
    finally:
        child.kill()
    # SIGKILL runs no cleanup and leaves the lock file; the kernel dropped the lock with the process,
    # so the next job is not blocked, and what it is told about the parts is now true.
    assert (tmp_path / ".o.csv.lock").exists()
    assert main(gen_args(small_run, out)) == 2
    assert "an interrupted job left partial results; pass --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_second_finetune_on_a_live_run_dir_is_refused(fault_csv, tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "run"
    child = Child(finetune_args(fault_csv, tiny_model_dir, run), tmp_path / "child.log")
    try:
        assert child.wait_for((run / "run.json").exists), child.output()
        assert main([*finetune_args(fault_csv, tiny_model_dir, run), "--resume"]) == 2
        assert f"error: {run}: in use by pid {child.proc.pid} on " in capsys.readouterr().err
    finally:
        child.kill()
    assert main([*finetune_args(fault_csv, tiny_model_dir, run), "--resume", "--max-steps", "4"]) == 0
