"""Property-based tests: readers round-trip any text, cleaning is idempotent and never loses a row."""

from __future__ import annotations

import html
import json
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from augment.config import DataConfig
from augment.data import load_dataset
from augment.data.cleaning import clean_text
from augment.generate import write_table

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any Unicode except lone surrogates, which no UTF encoding can write.
CHARS = st.characters(blacklist_categories=("Cs",))
NASTY = st.sampled_from(["\n", "\r\n", "\r", '"', ",", "\t", "\u2028", "\u2029", "\x85", "\x0b", "\x1c",
                         "\ufeff", "🙂", "שלום", "مرحبا", "e\u0301", "nan", "NULL", "#", " "])
TEXT = st.lists(st.one_of(st.text(CHARS, min_size=1, max_size=8), NASTY), min_size=1, max_size=8).map("".join) \
    .filter(lambda t: t.strip())
# Labels are normalised (stripped, "4.0" -> "4"); the round trip is exact for labels that already are.
LABEL = st.text(CHARS, min_size=1, max_size=12).filter(
    lambda l: l == l.strip() and l and not re.fullmatch(r"-?\d+\.0+", l))
ROWS = st.lists(st.tuples(TEXT, LABEL), min_size=1, max_size=12, unique_by=lambda r: r[0])


def _lone_cr(rows: list[tuple[str, str]]) -> bool:
    return any(re.search(r"\r(?!\n)", cell) for row in rows for cell in row)


def _write(frame: pd.DataFrame, fmt: str, folder: Path) -> Path:
    path = folder / f"data.{fmt}"
    if fmt in ("csv-augment", "tsv-augment"):
        path = folder / f"data.{fmt[:3]}"
        write_table(frame, path)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl-ascii":
        path = folder / "ascii.jsonl"
        frame.to_json(path, orient="records", lines=True)  # pandas escapes all non-ASCII by default
    elif fmt == "jsonl":
        # What augment itself writes (output.py, train.jsonl): raw UTF-8, U+2028 left unescaped.
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in frame.to_dict("records")),
                        encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "jsonl-ascii", "parquet", "csv-augment", "tsv-augment"])
@SETTINGS
@given(rows=ROWS)
@example(rows=[("line one\u2028line two", "pos"), ('a "quoted",\r\nfield', "neg")])
@example(rows=[("a lone\rcarriage return", "pos\rneg")])
def test_readers_round_trip(fmt: str, rows: list[tuple[str, str]]) -> None:
    """Files written by pandas (and by augment's own ``write_table``) read back row for row.

    pandas' default CSV writer leaves a lone ``\r`` unquoted, which every CSV reader takes for
    a line end, so those texts are only required to survive augment's own writer.
    """
    assume(fmt not in ("csv", "tsv") or not _lone_cr(rows))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(frame, fmt, Path(tmp))
        loaded = load_dataset(path, DataConfig(path=str(path), dedup=False))
    assert loaded.values.tolist() == [list(r) for r in rows]


WORD = st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10)
URL = st.builds(lambda scheme, host, path: f"{scheme}{host}.com/{path}",
                st.sampled_from(["http://", "https://", "www.", "HTTPS://"]),
                st.text("abcxyz0123", min_size=1, max_size=8), st.text("abc/?=&%-_.", max_size=10))
HANDLE = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="_"), min_size=1, max_size=30)
TOKEN = st.one_of(WORD.map(lambda w: ("word", w)), URL.map(lambda u: ("url", u)),
                  HANDLE.map(lambda h: ("mention", "@" + h)))


@SETTINGS
@given(tokens=st.lists(TOKEN, min_size=1, max_size=10), spaces=st.sampled_from([" ", "  ", "\t", "\n", " \u00a0 "]))
@example(tokens=[("mention", "@" + "a" * 20)], spaces=" ")  # longer than Twitter's 15: no "@user" + leftover
def test_cleaning_replaces_every_url_and_mention(tokens: list[tuple[str, str]], spaces: str) -> None:
    expected = " ".join({"word": w, "url": "<url>", "mention": "@user"}[kind] for kind, w in tokens)
    assert clean_text(spaces.join(w for _, w in tokens)) == expected


ENTITY = st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&amp;amp;", "&amp;lt;3", "&nbsp;", "&#64;",
                          "&#x40;bob", "&#10;", "&"])
DIRTY = st.lists(st.one_of(st.text(CHARS, max_size=6), ENTITY, URL, HANDLE.map("@".__add__),
                           st.sampled_from(["@", "www.", "http://", " ", "\n", "x@y.com"])), max_size=10).map("".join)


@SETTINGS
@given(text=DIRTY)
@example(text="&amp;lt;3 @" + "b" * 16)
def test_cleaning_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@SETTINGS
@given(text=DIRTY)
def test_cleaning_keeps_every_nonblank_row(text: str) -> None:
    """Cleaning only replaces, never deletes: the output is empty only if the (unescaped) input is blank.

    ``load_dataset(clean=True)`` drops rows that clean to "" (e.g. a tweet that is only ``&nbsp;``).
    """
    fully_unescaped = text
    while (step := html.unescape(fully_unescaped)) != fully_unescaped:
        fully_unescaped = step
    assert (clean_text(text) == "") == (not fully_unescaped.strip())
