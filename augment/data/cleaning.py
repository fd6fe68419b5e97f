"""Light, reversible-in-spirit cleaning for tweets (off by default)."""

from __future__ import annotations

import html
import re

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")  # the whole handle: "@" + 15 chars would leave a tail
_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Replace URLs and @mentions with placeholders, unescape HTML, collapse whitespace.

    Placeholders (not deletion) keep the shape of a tweet, so generated rows
    look like real ones and never leak real handles or links. HTML is unescaped
    until nothing changes (scraped tweets are often escaped twice: ``&amp;lt;3``),
    so cleaning twice changes nothing. The result is empty only when the
    unescaped input is blank (e.g. a lone ``&nbsp;``).
    """
    while (unescaped := html.unescape(text)) != text:
        text = unescaped
    text = _URL.sub("<url>", text)
    text = _MENTION.sub("@user", text)
    return _SPACE.sub(" ", text).strip()
