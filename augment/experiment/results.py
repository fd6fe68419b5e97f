"""``results.jsonl``: one JSON row per finished cell (a ``CellResult``), appended one whole line at a time.

Each row is written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced, so a kill leaves at most one partial last line (no newline, or not
JSON). Reading drops that line with a warning; the writer truncates it away
before appending, so a re-run never glues a new row onto half an old one. A bad
line anywhere else is corruption and an error naming the line. A lock file
keeps two runs from appending to the same results at once.

The records here are the one definition of a row and of ``experiment.json``: the runner
writes them and the report reads them through these classes. A part a cell does not have
(no LM, no filter, no validation split) is absent from its row rather than null, and a row
keeps the fields it was written with (``exclude_unset``), so rows written before a field
existed read as they are.
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

from pydantic import BaseModel, ConfigDict, ValidationError

from augment.config import describe
from augment.errors import AugmentError
from augment.filter import FilterReport
from augment.provenance import Provenance

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
EXPERIMENT_JSON = "experiment.json"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassScores(Record):
    precision: float
    recall: float
    f1: float
    support: int


class Scores(Record):
    """``classifiers.evaluate`` on one split."""

    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassScores]


class RowCounts(Record):
    real: int
    synthetic: int
    requested_per_label: int
    synthetic_by_label: dict[str, int]


class WallTime(Record):
    augment: float
    total: float


class Quality(Record):
    """``augment.metrics.quality_report`` of the rows a cell added; fields it gained later are
    absent from older rows."""

    rows: int
    rows_by_label: dict[str, int]
    distinct_1: float | None
    distinct_2: float | None
    real_distinct_2: float | None = None
    reference_rows: int | None = None
    self_bleu: float | None
    self_bleu_rows: int
    novelty: float | None
    mean_max_overlap: float | None
    novelty_ngram: int
    novelty_threshold: float
    label_agreement: float | None
    label_agreement_by_label: dict[str, float]
    label_agreement_min: float | None = None
    fragment_rate: float | None = None
    real_fragment_rate: float | None = None
    mean_words: float | None
    real_mean_words: float | None


class EdaInfo(Record):
    synonyms: str


class ReferenceInfo(Record):
    """Real rows a reference augmenter drew from (the oracle's or the pseudo-labeller's)."""

    candidates: int
    classifier: str | None = None
    pseudo_label_accuracy: float | None = None
    rounds: int | None = None   # pseudo-labels of a second self-training round (unset: one round)


class LMInfo(Record):
    """The fine-tuned LM of a cell: what training it cost, or that it came from the cache."""

    key: str
    cached: bool
    wall_s: float
    loss_first_last: dict[str, list[float | None]] | None = None
    held_out_loss_step: dict[str, tuple[float | None, int | None]] | None = None
    separator: str | None = None


class PoolInfo(Record):
    key: str
    cached: bool
    wall_s: float


class AdaptInfo(Record):
    """The domain-adapted start model; ``built_wall_s``: what it cost whoever trained it."""

    key: str
    cached: bool
    texts: int
    tokens: int
    steps: int
    eval_loss: float | None
    best_step: int | None
    separator: str | None
    wall_s: float
    built_wall_s: float | None = None


class CellResult(Record):
    """One finished cell: what it was (the grid's fields), what it scored and what it cost."""

    key: str
    dataset: str
    examples_per_class: int
    seed: int
    augmenter: str
    type: str
    mode: str | None
    ratio: float | None
    filter: bool
    classifier: str
    config: dict[str, Any]
    metrics: Scores
    validation_metrics: Scores | None = None
    rows: RowCounts
    eda: EdaInfo | None = None
    reference: ReferenceInfo | None = None
    lm: LMInfo | None = None
    pool: PoolInfo | None = None
    pool_rows: dict[str, int] | None = None
    adapt: AdaptInfo | None = None
    filter_report: FilterReport | None = None
    quality: Quality | None
    wall_s: WallTime
    created: str

    def to_line(self) -> bytes:
        """The row as ``results.jsonl`` holds it: keys sorted, absent parts left out."""
        row = self.model_dump(mode="json", exclude_unset=True)
        return (json.dumps(row, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")

    def scored_on_validation(self) -> CellResult:
        """The row with its validation scores in place of the test scores."""
        return self.model_copy(update={"metrics": self.validation_metrics})


class DatasetStats(Record):
    test_total: int
    test_rows: dict[str, int]
    pool_rows: dict[str, int]


class ExperimentManifest(Provenance):
    """``experiment.json``: the configuration as written and as resolved, the datasets' sizes, and when
    and where the results were first and last run."""

    config: dict[str, Any]
    resolved: dict[str, Any]
    datasets: dict[str, DatasetStats]
    source: str | None
    first_run: str | None = None

    def started(self) -> str:
        """When the first run started (records from before ``first_run`` existed: their own run)."""
        return self.first_run or self.created

    @classmethod
    def read(cls, path: Path) -> ExperimentManifest | None:
        """The saved manifest, or None where there is none yet; a corrupt one is an error naming the file."""
        if not path.exists():
            return None
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise AugmentError(f"{path}: not an experiment manifest ({describe(exc)})") from None


class ResultsLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> list[CellResult]:
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
            if row.key in seen:
                log.warning("%s: line %d repeats cell %s; keeping the first", self.path, number, row.key)
                continue
            seen.add(row.key)
            rows.append(row)
        return rows

    def keys(self) -> set[str]:
        return {row.key for row in self.read()}

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

    def _parse(self, line: bytes, number: int) -> CellResult:
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AugmentError(f"{self.path}: line {number} is not valid JSON ({exc}); the results are "
                               "corrupt: remove that line or re-run with --overwrite") from None
        if not isinstance(row, dict) or not isinstance(row.get("key"), str):
            raise AugmentError(f"{self.path}: line {number} is not a results row (no 'key'); remove that line "
                               "or re-run with --overwrite")
        try:
            return CellResult.model_validate(row)
        except ValidationError as exc:
            raise AugmentError(f"{self.path}: line {number} is not a results row ({describe(exc)}); remove "
                               "that line or re-run with --overwrite") from None

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

    def append(self, row: CellResult) -> None:
        line = row.to_line()
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
