"""Small assertions shared by the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.files import sha256_file


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its SHA-256: compare before/after to prove nothing was touched."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(Path(root).rglob("*")) if p.is_file()}


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's one ``error:`` line on stderr (there must be exactly one, and no traceback)."""
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
