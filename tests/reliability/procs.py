"""The real ``augment`` CLI in a child process, killed with a real signal at a chosen moment.

Every wait is a polling loop with a deadline: the child's progress is read from
what it writes (checkpoint dirs, loss log, ``OUT.parts/`` files), never guessed
from elapsed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """``python -m augment.cli ARGV`` with stdout+stderr in a log file."""

    def __init__(self, argv: list[str], log: Path):
        self.log = Path(log)
        self._fh = open(self.log, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # a suite started in the background (`cmd &`) hands its children SIGINT ignored; a user's shell does not
        self.proc = subprocess.Popen([sys.executable, "-m", "augment.cli", *map(str, argv)], cwd=REPO, env=env,
                                     stdout=self._fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=_default_sigint)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 180, interval: float = 0.002) -> bool:
        """Poll ``condition`` until it holds (True), or the child exits first (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.proc.poll() is not None:
                return condition()
            time.sleep(interval)
        self.kill()
        raise TimeoutError(f"condition not met within {timeout}s; child log:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no handler, no atexit, no flush; exactly what an OOM killer or a power cut does."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._fh.close()

    def finish(self, timeout: float = 300) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._fh.close()
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def cli_many(argvs: list[list[str]], log: Path, timeout: float = 300) -> int:
    """Run several CLI invocations in one fresh interpreter (one import of torch instead of several)."""
    with open(log, "wb") as fh:
        return subprocess.run([sys.executable, str(Path(__file__).with_name("run_cli.py")), json.dumps(argvs)],
                              cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=fh,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout).returncode


def logged_steps(log: Path) -> list[int]:
    """Steps in a run's ``train_log.jsonl`` (the LossLog callback appends one line per logged step)."""
    if not log.exists():
        return []
    steps = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError):
            pass  # a line torn by the kill
    return steps


def complete_checkpoints(folder: Path) -> list[int]:
    """Steps of checkpoints whose ``trainer_state.json`` (written last by Trainer) parses."""
    steps = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        steps.append(int(path.name.split("-")[1]))
    return sorted(steps)
