"""Light, reversible-in-spirit cleaning for tweets (off by default)."""

from __future__ import annotations

import html
import re

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w{1,15}")
_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Replace URLs and @mentions with placeholders, unescape HTML, collapse whitespace.

    Placeholders (not deletion) keep the shape of a tweet, so generated rows
    look like real ones and never leak real handles or links.
    """
    text = html.unescape(text)
    text = _URL.sub("<url>", text)
    text = _MENTION.sub("@user", text)
    return _SPACE.sub(" ", text).strip()
