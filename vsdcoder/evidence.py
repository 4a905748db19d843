"""Verbatim quote checking with offsets into the original text.

A quote counts as verbatim when it occurs in the source after both are normalised the same
way: Unicode NFKC, typographic quotes and dashes folded to ASCII, and runs of whitespace
collapsed to one space. Case and words are never changed. Offsets are returned in Unicode
code points of the *original* text, start inclusive and end exclusive (Python slicing, and
the REFI-QDA ``startPosition``/``endPosition`` convention).
"""

from __future__ import annotations

import re
import unicodedata

_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u00a0": " ", "\u2026": "...",
})
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*", re.UNICODE)


def count_words(text: str) -> int:
    """Number of words in ``text`` (runs of letters/digits, with inner apostrophes/hyphens)."""
    return len(_WORD.findall(text))


def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the index in ``text`` it came from."""
    out: list[str] = []
    src: list[int] = []
    in_space = False
    for i, ch in enumerate(text):
        piece = unicodedata.normalize("NFKC", ch).translate(_FOLD)
        for pc in piece:
            if pc.isspace():
                if in_space or not out:
                    continue
                in_space = True
                out.append(" ")
                src.append(i)
            else:
                in_space = False
                out.append(pc)
                src.append(i)
    if out and out[-1] == " ":
        out.pop()
        src.pop()
    return "".join(out), src


def normalise(text: str) -> str:
    """The normalised form used for matching (see module docs)."""
    return _normalise_with_map(text)[0]


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Offsets ``(start, end)`` of ``quote`` in ``text``, or None if it is not verbatim.

    Args:
        text: The source text as it was read.
        quote: The passage the model says it copied.

    Returns:
        Code-point offsets into ``text`` (``text[start:end]`` is the matched passage), or
        None when the normalised quote does not occur in the normalised text.
    """
    nq = normalise(quote)
    if not nq:
        return None
    nt, src = _normalise_with_map(text)
    pos = nt.find(nq)
    if pos < 0:
        return None
    start = src[pos]
    end = src[pos + len(nq) - 1] + 1
    return start, end
