"""An offline WordNet 3.0 for EDA's synonym replacement, from Debian's ``wordnet-base``.

``augment fetch wordnet`` runs ``apt-get download wordnet-base`` (no install, no
root) and ``dpkg-deb -x`` into the cache, and writes the ``lexnames`` file the
package lacks (its 45 fixed lines are documented in lexnames(5WN); nltk's reader
opens it). The database is then read with nltk's ``WordNetCorpusReader``.
WordNet's licence permits redistribution with its notice, which is copied beside
the files. Where apt is unavailable nothing breaks: EDA runs without synonym
replacement and its results say so.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augment.cache import cache_root
from augment.errors import MissingDependencyError
from augment.files import atomic_dir

log = logging.getLogger(__name__)

PACKAGE = "wordnet-base"
DATA_FILES = tuple(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")) + \
    tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv"))
# lexnames(5WN): file number = position; the category is 1 noun, 2 verb, 3 adjective, 4 adverb
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
WORD = re.compile(r"^(\W*)([A-Za-z][A-Za-z'-]*)(\W*)$")


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def wordnet_dir(cache: Path | None = None) -> Path:
    return (cache or cache_root()) / "wordnet" / "3.0"


def available(path: Path | None = None) -> bool:
    """True when the database folder and nltk are both present (a cheap check, nothing is loaded)."""
    path = path or wordnet_dir()
    return (path / "lexnames").is_file() and importlib.util.find_spec("nltk") is not None


def fetch_wordnet(cache: Path | None = None) -> Path:
    """The cached WordNet folder, fetched from the Debian archive on first use."""
    target = wordnet_dir(cache)
    if (target / "lexnames").is_file():
        return target
    tools = {name: shutil.which(name) for name in ("apt-get", "dpkg-deb")}
    missing = [name for name, found in tools.items() if found is None]
    if missing:
        raise MissingDependencyError(f"wordnet: needs {' and '.join(missing)} (Debian/Ubuntu) to fetch the "
                                     f"{PACKAGE} package; without it EDA runs without synonym replacement")
    with tempfile.TemporaryDirectory(prefix="wordnet-") as tmp:
        source = _download_and_extract(Path(tmp), tools["apt-get"], tools["dpkg-deb"])
        with atomic_dir(target, overwrite=True) as out:
            for name in DATA_FILES:
                shutil.copyfile(source / name, out / name)
            (out / "lexnames").write_text(lexnames_text(), encoding="utf-8")
            notice = source.parent / "doc" / PACKAGE / "copyright"
            if notice.is_file():
                shutil.copyfile(notice, out / "LICENSE")
    log.info("cached WordNet 3.0 at %s", target)
    return target


def _download_and_extract(tmp: Path, apt: str, dpkg: str) -> Path:
    """``apt-get download`` needs no root; ``dpkg-deb -x`` unpacks without installing."""
    result = subprocess.run([apt, "download", PACKAGE], cwd=tmp, capture_output=True, text=True)
    debs = sorted(tmp.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        last = (result.stderr.strip().splitlines() or ["no .deb downloaded"])[-1]
        raise MissingDependencyError(f"wordnet: apt-get download {PACKAGE} failed ({last}); EDA runs without "
                                     "synonym replacement")
    subprocess.run([dpkg, "-x", str(debs[0]), str(tmp / "x")], check=True, capture_output=True)
    source = tmp / "x" / "usr" / "share" / "wordnet"
    absent = [name for name in DATA_FILES if not (source / name).is_file()]
    if absent:
        raise MissingDependencyError(f"wordnet: {debs[0].name} lacks {', '.join(absent)}")
    return source


@functools.lru_cache(maxsize=2)
def load_wordnet(path: str) -> "WordNetSynonyms":
    """Read once per folder per process (about 5 s on 2 busy cores); every EDA augmenter reuses it."""
    try:
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        raise MissingDependencyError("wordnet: needs nltk (pip install 'augment[eda]')") from None

    class OfflineWordNet(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            """The multilingual mapping reads index.sense, which wordnet-base lacks; EDA needs none."""
            return None

    root = str(Path(path).resolve())
    if root not in nltk.data.path:   # nltk >= 3.9 opens corpus folders only below its data path
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "multilingual functions are not available": expected
        return WordNetSynonyms(OfflineWordNet(root, None))


class WordNetSynonyms:
    """``synonyms(word)``: WordNet lemmas sharing a synset with the word, itself excluded."""

    def __init__(self, reader: Any):
        self.reader = reader
        self._memo: dict[str, tuple[str, ...]] = {}

    def __call__(self, word: str) -> tuple[str, ...]:
        key = word.lower()
        if key not in self._memo:
            names = {lemma.name().replace("_", " ") for synset in self.reader.synsets(key)
                     for lemma in synset.lemmas()}
            self._memo[key] = tuple(sorted(n for n in names if n.lower() != key))
        return self._memo[key]


def split_word(token: str) -> tuple[str, str, str] | None:
    """A whitespace token as (leading punctuation, word, trailing punctuation); None for no plain word
    (@handles, URLs, numbers and emoji get no synonyms)."""
    match = WORD.match(token)
    return None if match is None else (match.group(1), match.group(2), match.group(3))


def matching_case(replacement: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def synonyms_for(tokens: Sequence[str], synonyms: Any) -> dict[int, tuple[str, ...]]:
    """Token positions that have synonyms, and those synonyms; stop words are left alone, as in EDA."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    out = {}
    for i, token in enumerate(tokens):
        parts = split_word(token)
        if parts is not None and parts[1].lower() not in ENGLISH_STOP_WORDS:
            found = synonyms(parts[1])
            if found:
                out[i] = found
    return out
