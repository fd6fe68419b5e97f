"""Fixtures for the experiment runner tests (helpers live in ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.experiment.helpers import tiny_frame


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    tiny_frame().to_csv(path, index=False)
    return path
