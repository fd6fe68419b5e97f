"""Ctrl-C and SIGTERM for the ``augment`` command: stop, say what was kept, exit 130 / 143.

Shells and CI read the exit status: a command that stopped early must never
exit 0 (``augment generate ... && train.py`` would go on with no output). The
handlers raise ``Interrupted`` where the main thread is, so ``finally`` blocks
and atomic writes clean up as for any error; ``augment.cli.main`` then prints
one line naming what was saved and the exact command that continues the work.

``Interrupted`` is not a ``KeyboardInterrupt`` on purpose: typer turns that into
a bare exit code on the way out, and nothing would be left to say what was saved.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``exit_code`` is what shells expect (128 + signal number)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` inside the block (main thread only).

    A signal the parent set to be ignored (``nohup``, a background job in a
    script) stays ignored, as the shell intended.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@dataclass(frozen=True)
class ResumeNote:
    """What a command has kept so far (asked only once it was interrupted) and how to continue it."""

    saved: Callable[[], str]
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


_notes: list[ResumeNote] = []


def on_interrupt(saved: Callable[[], str], add: Sequence[str] = (), drop: Sequence[str] = ()) -> None:
    """Called by a command once it knows its outputs: ``saved()`` describes what is kept; the resume
    command is the user's own with ``add`` flags appended (when absent) and ``drop`` flags removed."""
    _notes.append(ResumeNote(saved, tuple(add), tuple(drop)))


def clear_notes() -> None:
    _notes.clear()


def resume_argv(argv: Sequence[str], add: Sequence[str] = (), drop: Sequence[str] = ()) -> list[str]:
    """``argv`` without the ``drop`` flags (and their ``--no-`` forms), with ``add`` appended if missing."""
    negated = {f"--no-{flag.removeprefix('--')}" for flag in (*add, *drop)}
    kept = [a for a in argv if a not in drop and a not in negated]
    return [*kept, *(flag for flag in add if flag not in kept)]


def program() -> list[str]:
    """How the user started augment: the ``augment`` script, or ``python -m augment``."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("augment")
    if started.name in ("__main__.py", "cli.py") and started.parent.name == "augment":
        return [sys.executable, "-m", "augment"]
    return ["augment"]


def interrupted_line(exc: Interrupted, argv: Sequence[str]) -> str:
    """The one line printed on an interrupt: what was kept, then the exact command to continue."""
    note = _notes[-1] if _notes else ResumeNote(lambda: "nothing partial is kept")
    try:
        saved = note.saved()
    except Exception as err:  # describing must never hide the interrupt itself
        saved = f"could not tell what was saved ({err})"
    command = shlex.join([*program(), *resume_argv(argv, note.add, note.drop)])
    verb = "resume" if _notes else "run again"  # commands without a note keep nothing to resume from
    return f"interrupted ({signal.Signals(exc.signum).name}): {saved}; {verb} with: {command}"
