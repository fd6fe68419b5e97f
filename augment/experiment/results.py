"""``results.jsonl``: one JSON row per finished cell, appended one whole line at a time.

Each row is written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced, so a kill leaves at most one partial last line (no newline, or not
JSON). Reading drops that line with a warning; the writer truncates it away
before appending, so a re-run never glues a new row onto half an old one. A bad
line anywhere else is corruption and an error naming the line. A lock file
keeps two runs from appending to the same results at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from augment.errors import AugmentError

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"


class ResultsLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """Finished rows, first occurrence of each key; a partial last line is dropped."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        complete, _ = self._split(data)
        rows, seen = [], set()
        for number, line in enumerate(complete.split(b"\n")[:-1] if complete else [], start=1):
            if not line.strip():
                continue
            row = self._parse(line, number)
            if row["key"] in seen:
                log.warning("%s: line %d repeats cell %s; keeping the first", self.path, number, row["key"])
                continue
            seen.add(row["key"])
            rows.append(row)
        return rows

    def keys(self) -> set[str]:
        return {row["key"] for row in self.read()}

    def _split(self, data: bytes) -> tuple[bytes, bytes]:
        """(complete lines, partial tail). A last line without a newline, or one that is not
        JSON, is what a kill mid-write leaves."""
        cut = data.rfind(b"\n") + 1
        complete, tail = data[:cut], data[cut:]
        if tail:
            log.warning("%s: dropping a partial last line (%d bytes, no newline)", self.path, len(tail))
            return complete, tail
        lines = complete.split(b"\n")
        if len(lines) >= 2 and lines[-2].strip() and not _is_json_object(lines[-2]):
            start = len(complete) - len(lines[-2]) - 1
            log.warning("%s: dropping an unreadable last line", self.path)
            return complete[:start], complete[start:]
        return complete, b""

    def _parse(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AugmentError(f"{self.path}: line {number} is not valid JSON ({exc}); the results are "
                               "corrupt: remove that line or re-run with --overwrite") from None
        if not isinstance(row, dict) or not isinstance(row.get("key"), str):
            raise AugmentError(f"{self.path}: line {number} is not a results row (no 'key'); remove that line "
                               "or re-run with --overwrite")
        return row

    def repair(self) -> None:
        """Cut a partial last line off the file, so the next append starts on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete, tail = self._split(data)
        if tail:
            with open(self.path, "r+b") as fh:
                fh.truncate(len(complete))
                os.fsync(fh.fileno())

    def append(self, row: dict[str, Any]) -> None:
        line = (json.dumps(row, sort_keys=True, default=str, allow_nan=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):   # a short write on a regular file: disk full
                raise AugmentError(f"{self.path}: short write ({written} of {len(line)} bytes); disk full?")
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the results directory for one run."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.parent / ".lock"
        with open(lock, "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AugmentError(f"{self.path.parent}: another experiment run is writing here "
                                   "(wait for it, or stop it)") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
