"""Read any supported source into one shape: a DataFrame with ``text`` and ``label``.

Labels are always strings (``0``/``4`` become ``"0"``/``"4"`` before a label
map renames them), texts are always non-empty strings. Every rejection names
the file, the row (as a line number where the format has lines) and the column.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from augment.config import DataConfig
from augment.data.cleaning import clean_text
from augment.data.columns import LABEL, TEXT
from augment.data.compressed import COMPRESSIONS, Source, open_source
from augment.data.sampling import sample_per_class
from augment.data.sources import DATASET_NAMES, dataset_path
from augment.errors import DataError

log = logging.getLogger(__name__)

TEXT_CANDIDATES = ("text", "sentence", "tweet", "review", "content", "document")
LABEL_CANDIDATES = ("label", "labels", "sentiment", "polarity", "class", "target", "category")
SENTIMENT140_COLUMNS = ("polarity", "id", "date", "query", "user", "text")
SENTIMENT140_LABELS = {"0": "neg", "2": "neutral", "4": "pos"}
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}


def label_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per label, labels sorted: the one shape every report and manifest uses."""
    return {str(k): int(v) for k, v in frame[LABEL].value_counts().sort_index().items()} if len(frame) else {}


@dataclass(frozen=True)
class RawTable:
    """A source read as strings, plus how to name its rows in errors."""

    frame: pd.DataFrame
    name: str
    locate: Callable[[int], str]
    text_col: str | None = None
    label_col: str | None = None
    label_map: dict[str, str] | None = None


def load_dataset(source: Any, config: DataConfig | None = None) -> pd.DataFrame:
    """Read, validate, map, filter, clean, dedup and sample a labelled dataset."""
    config = config or DataConfig(path=str(source) if isinstance(source, (str, Path)) else "<memory>")
    raw = read_frame(source, config)
    frame = _select(raw, config)
    frame = _map_labels(frame, raw, config)
    if config.clean:
        frame[TEXT] = frame[TEXT].map(clean_text)
        blank = frame[TEXT] == ""
        if blank.any():
            log.info("%s: dropped %d rows that are blank once cleaned", raw.name, int(blank.sum()))
        frame = frame[~blank]
    if config.dedup:
        before = len(frame)
        frame = frame.drop_duplicates(subset=TEXT, keep="first")
        if len(frame) < before:
            log.info("%s: dropped %d duplicate texts", raw.name, before - len(frame))
    frame = frame.reset_index(drop=True)
    if config.per_class is not None:
        frame = sample_per_class(frame, config.per_class, config.seed, source=raw.name)
    return frame


def load_texts(source: Any, config: DataConfig | None = None, flag: str = "--text-col") -> list[str]:
    """Unlabelled texts (for prompts): a .txt file with one text per line, or the text column of
    any source ``load_dataset`` reads; cleaned and deduplicated as ``config`` says."""
    config = config or DataConfig(path=str(source) if isinstance(source, (str, Path)) else "<memory>")
    if isinstance(source, (str, Path)) and _uncompressed_suffix(Path(source)) == ".txt":
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        text_file = open_source(path)
        texts = [line for line in decode(text_file, config.encoding).splitlines() if line.strip()]
        name = text_file.name
    else:
        raw = read_frame(source, config)
        raw.frame.columns = [str(c) for c in raw.frame.columns]
        col = _pick(raw.frame, config.text_col, raw.text_col, TEXT_CANDIDATES, "text", raw.name, flag)
        texts = [_as_text(v, i, raw, col) for i, v in enumerate(raw.frame[col].tolist())]
        name = raw.name
    if config.clean:
        texts = [t for t in map(clean_text, texts) if t]
    if config.dedup:
        texts = list(dict.fromkeys(texts))
    if not texts:
        raise DataError(f"{name}: no texts")
    return texts


def read_frame(source: Any, config: DataConfig) -> RawTable:
    if isinstance(source, pd.DataFrame):
        return RawTable(source.copy(), "DataFrame", lambda i: f"row {i}")
    if _is_hf_dataset(source):
        return _from_hf_dataset(source)
    if isinstance(source, (str, Path)) and str(source) in DATASET_NAMES:
        return _read_named(str(source))
    path = Path(source)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        raise DataError(f"{path}: no such file, and not a named dataset ({', '.join(DATASET_NAMES)})")
    return read_file(path, config.format, config.encoding, config.member)


def _read_named(name: str) -> RawTable:
    """A dataset fetched by name (``augment.data.sources``): fetched on first use, then read from the cache."""
    path = dataset_path(name)
    if name == "crowdflower":
        table = _read_csv(open_source(path), "csv", "latin-1")
        return RawTable(table.frame, table.name, table.locate, "text", "sentiment")
    table = _read_parquet(open_source(path))
    return RawTable(table.frame, table.name, table.locate, TEXT, LABEL)


def read_file(path: Path, fmt: str = "auto", encoding: str | None = None, member: str | None = None) -> RawTable:
    """A data file, plain, compressed or the ``member`` of a zip (see ``augment.data.compressed``)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a data file")
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"{path}: cannot decode as {encoding} (unknown encoding)") from None
    source = open_source(path, member, tuple(EXTENSIONS))
    if fmt == "auto":
        fmt = _detect_format(source, encoding)
    if fmt == "parquet":
        return _read_parquet(source)
    if fmt == "jsonl":
        return _read_jsonl(source, encoding)
    if fmt == "sentiment140":
        return _read_sentiment140(source, encoding)
    return _read_csv(source, fmt, encoding)


def _uncompressed_suffix(path: Path) -> str:
    """``.csv`` for ``train.csv.gz`` as for ``train.csv``."""
    if path.suffix.lower() in COMPRESSIONS:
        path = path.with_suffix("")
    return path.suffix.lower()


def _detect_format(source: Source, encoding: str | None) -> str:
    suffix = Path(source.inner).suffix
    fmt = EXTENSIONS.get(suffix.lower())
    if fmt is None:
        suffixes = ", ".join(sorted(EXTENSIONS))
        raise DataError(f"{source.name}: unknown file type '{suffix}'; expected one of {suffixes}, optionally "
                        f"compressed ({', '.join(COMPRESSIONS)}) or inside a .zip (or pass --format)")
    if fmt == "csv" and _looks_like_sentiment140(source, encoding):
        log.info("%s: recognised a raw Sentiment140 file (6 columns, polarity 0/2/4)", source.name)
        return "sentiment140"
    return fmt


def _looks_like_sentiment140(source: Source, encoding: str | None) -> bool:
    head = source.head(1 << 16)
    lines = head.decode(encoding or "latin-1", errors="replace").splitlines()[:5]
    if not lines:
        return False
    rows = list(csv.reader(lines))
    return all(len(r) == 6 and _as_label(r[0]) in SENTIMENT140_LABELS and r[1].strip().isdigit()
               for r in rows[: max(1, len(rows) - 1)])


UNICODE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(source: Source | Path, encoding: str | None) -> str:
    """Decode a text file: the given encoding, else by its UTF-16/32 BOM, else UTF-8 (BOM allowed).

    A file that is not valid UTF-8 is decoded line by line: valid lines as
    UTF-8, the others as latin-1, with a warning (files merged from several
    sources mix the two; decoding all of it as latin-1 would garble the rest).
    """
    source = open_source(source) if isinstance(source, Path) else source
    path, data = source.name, source.read()
    if not encoding:
        encoding = next((name for bom, name in UNICODE_BOMS if data.startswith(bom)), None)
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"{path}: cannot decode as {encoding} ({exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        log.warning("%s: not valid UTF-8 (byte 0x%02x on line %d); reading such lines as latin-1",
                    path, data[exc.start], line)
        return "".join(map(_utf8_or_latin1, data.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True)))


def _utf8_or_latin1(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _read_csv(source: Source, fmt: str, encoding: str | None, header: bool = True,
              names: tuple[str, ...] | None = None) -> RawTable:
    path = source.name
    text = decode(source, encoding)
    sep = "\t" if fmt == "tsv" else ","
    if header:
        _check_header(path, text, sep)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            na_filter=False, header=0 if header else None, names=names,
                            engine="c")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: {_describe_parser_error(str(exc), bool(header))}") from None
    offset = 2 if header else 1
    return RawTable(frame, str(path), lambda i: f"line {i + offset}")


def _check_header(path: str, text: str, sep: str) -> None:
    first = next(csv.reader(io.StringIO(text), delimiter=sep), None)
    if not first:
        raise DataError(f"{path}: file is empty, expected a header row")
    seen: set[str] = set()
    for name in first:
        if name in seen:
            raise DataError(f"{path}: line 1 has the column name '{name}' twice; column names must be unique")
        seen.add(name)


def _describe_parser_error(message: str, header: bool) -> str:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match:
        expected, line, saw = match.groups()
        return (f"line {line} has {saw} fields, expected {expected} "
                "(quote fields that contain the delimiter or a newline)")
    match = re.search(r"EOF inside string starting at row (\d+)", message)
    if match:  # the tokenizer counts rows from 0, header included
        return f"line {int(match[1]) + 1} opens a quoted field that is never closed (a stray '\"'?)"
    return f"cannot parse as CSV ({message.strip()})"


def _read_sentiment140(source: Source, encoding: str | None) -> RawTable:
    table = _read_csv(source, "csv", encoding, header=False, names=SENTIMENT140_COLUMNS)
    return RawTable(table.frame, table.name, table.locate, "text", "polarity", SENTIMENT140_LABELS)


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKey(key)
        record[key] = value
    return record


def _read_jsonl(source: Source, encoding: str | None) -> RawTable:
    path = source.name
    records = []
    lines = []
    # JSON Lines ends records with \n only; str.splitlines() would also split inside
    # strings at U+2028, U+0085 and friends, which JSON leaves unescaped.
    for number, line in enumerate(decode(source, encoding).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None
        except _DuplicateKey as exc:
            raise DataError(f"{path}: line {number} has the key '{exc.args[0]}' twice; which value is meant?") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is a JSON {type(record).__name__}, expected an object")
        records.append(record)
        lines.append(number)
    if not records:
        raise DataError(f"{path}: file is empty")
    return RawTable(pd.DataFrame.from_records(records), str(path), lambda i: f"line {lines[i]}")


def _read_parquet(source: Source) -> RawTable:
    import pyarrow.parquet as pq

    path = source.name
    try:
        names = pq.read_schema(source.binary()).names
        duplicated = [name for i, name in enumerate(names) if name in names[:i]]
        if duplicated:
            raise DataError(f"{path}: the column name '{duplicated[0]}' appears twice; column names must be unique")
        frame = pd.read_parquet(source.binary())
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises many types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(f"{path}: cannot read as Parquet ({type(exc).__name__}: {first})") from None
    return RawTable(frame, str(path), lambda i: f"row {i + 1}")


def _is_hf_dataset(source: Any) -> bool:
    return type(source).__module__.startswith("datasets.") and hasattr(source, "features")


def _from_hf_dataset(dataset: Any) -> RawTable:
    frame = dataset.to_pandas()
    label_map = None
    for name, feature in dataset.features.items():
        names = getattr(feature, "names", None)
        if names and name in LABEL_CANDIDATES:
            label_map = {str(i): n for i, n in enumerate(names)}
    return RawTable(frame, "Dataset", lambda i: f"row {i}", label_map=label_map)


def _pick(frame: pd.DataFrame, given: str | None, default: str | None, candidates: tuple[str, ...],
          what: str, name: str, flag: str) -> str:
    columns = [str(c) for c in frame.columns]
    if given is not None:
        if given not in columns:
            raise DataError(f"{name}: no {what} column '{given}'; columns are {', '.join(columns)}")
        return given
    if default is not None and default in columns:
        return default
    lowered = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise DataError(f"{name}: cannot tell which column holds the {what}; columns are "
                    f"{', '.join(columns)} (pass {flag})")


def _select(raw: RawTable, config: DataConfig) -> pd.DataFrame:
    frame = raw.frame
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise DataError(f"{raw.name}: the column name '{dup}' appears twice; column names must be unique")
    frame.columns = [str(c) for c in frame.columns]
    text_col = _pick(frame, config.text_col, raw.text_col, TEXT_CANDIDATES, "text", raw.name, "--text-col")
    label_col = _pick(frame, config.label_col, raw.label_col, LABEL_CANDIDATES, "label", raw.name, "--label-col")
    if text_col == label_col:
        raise DataError(f"{raw.name}: text and label column are both '{text_col}'")
    texts = [_as_text(v, i, raw, text_col) for i, v in enumerate(frame[text_col].tolist())]
    labels = [_label_value(v, i, raw, label_col) for i, v in enumerate(frame[label_col].tolist())]
    if not texts:
        raise DataError(f"{raw.name}: no rows")
    return pd.DataFrame({TEXT: texts, LABEL: labels})


def _as_text(value: Any, i: int, raw: RawTable, col: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        raise DataError(f"{raw.name}: {raw.locate(i)}, column '{col}': text is missing; expected a non-empty string")
    if not isinstance(value, str):
        raise DataError(f"{raw.name}: {raw.locate(i)}, column '{col}': text is {type(value).__name__} "
                        f"{value!r}; expected a string")
    if not value.strip():
        raise DataError(f"{raw.name}: {raw.locate(i)}, column '{col}': text is empty; expected a non-empty string")
    return value


def _label_value(value: Any, i: int, raw: RawTable, col: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        raise DataError(f"{raw.name}: {raw.locate(i)}, column '{col}': label is missing (NaN/null); "
                        "every row needs a label")
    if isinstance(value, (list, tuple, set, dict, np.ndarray)):  # Parquet list columns arrive as arrays
        raise DataError(f"{raw.name}: {raw.locate(i)}, column '{col}': label is a {type(value).__name__}; "
                        "expected one scalar label per row")
    label = _as_label(value)
    if label == "":
        raise DataError(f"{raw.name}: {raw.locate(i)}, column '{col}': label is empty; every row needs a label")
    return label


def _as_label(value: Any) -> str:
    """``4``, ``4.0`` and ``"4"`` are the same label."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if re.fullmatch(r"-?\d+\.0+", text):
        return text.split(".")[0]
    return text


def _map_labels(frame: pd.DataFrame, raw: RawTable, config: DataConfig) -> pd.DataFrame:
    mapping = {**(raw.label_map or {}), **(config.label_map or {})}
    unused = sorted(set(config.label_map or {}) - set(frame[LABEL].unique()))
    if unused:
        log.warning("%s: label_map key(s) %s match no label in the data; labels are %s", raw.name,
                    ", ".join(unused), ", ".join(sorted(frame[LABEL].unique())))
    if mapping:
        frame[LABEL] = frame[LABEL].map(lambda v: mapping.get(v, v))
    if config.labels:
        present = sorted(frame[LABEL].unique())
        missing = [l for l in config.labels if l not in present]
        if missing:
            raise DataError(f"{raw.name}: label(s) {', '.join(missing)} not in the data; labels are "
                            f"{', '.join(present)}")
        frame = frame[frame[LABEL].isin(config.labels)]
    return frame
