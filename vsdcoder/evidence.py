"""Verbatim quote checking with offsets into the original text.

A quote counts as verbatim when it occurs in the source after both are normalised the same
way: Unicode NFKC, typographic quotes and dashes folded to ASCII, invisible characters (soft
hyphens, zero-width spaces) dropped, and runs of whitespace collapsed to one space. Case and
words are never changed, and a quote must begin and end at word boundaries: "work" does not
match inside "homework" (except in scripts written without spaces, such as Chinese).
Offsets are returned in Unicode code points of the *original* text, start inclusive and end
exclusive (Python slicing, and the REFI-QDA ``startPosition``/``endPosition`` convention).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u2039": "'", "\u203a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u00a0": " ", "\u2026": "...",
    # invisible: soft hyphen, zero-width space/joiners, word joiner, byte-order mark
    "\u00ad": None, "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None,
    "\ufeff": None,
})
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*", re.UNICODE)


def count_words(text: str) -> int:
    """Number of words in ``text`` (runs of letters/digits, with inner apostrophes/hyphens)."""
    return len(_WORD.findall(text))


def _joins_previous(ch: str) -> bool:
    """Whether ``ch`` belongs to the character before it (a combining mark, a Hangul jamo)."""
    return unicodedata.category(ch) in ("Mn", "Mc", "Me") or "\u1160" <= ch <= "\u11ff" or (
        "\ud7b0" <= ch <= "\ud7ff")


def _clusters(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each base character with the marks that follow it."""
    out: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        if out and _joins_previous(ch):
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def _normalise_with_map(text: str) -> tuple[str, list[int], list[int]]:
    """Normalised text and, for each of its characters, the span of ``text`` it came from."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    in_space = False
    for start, end in _clusters(text):
        # a base character and its marks are normalised together, so that a decomposed
        # "e" + U+0301 and a precomposed "é" give the same result
        piece = unicodedata.normalize("NFKC", text[start:end]).translate(_FOLD)
        for pc in piece:
            if pc.isspace():
                if in_space or not out:
                    continue
                in_space = True
                out.append(" ")
            else:
                in_space = False
                out.append(pc)
            starts.append(start)
            ends.append(end)
    if out and out[-1] == " ":
        out.pop()
        starts.pop()
        ends.pop()
    return "".join(out), starts, ends


def normalise(text: str) -> str:
    """The normalised form used for matching (see module docs)."""
    return _normalise_with_map(text)[0]


def _is_word_char(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces."""
    if not (ch.isalnum() or ch == "_"):
        return False
    cp = ord(ch)
    # Thai, Lao, Myanmar, Khmer, and CJK/kana/Hangul syllables: words are not space-separated
    return not (0x0E00 <= cp <= 0x0EFF or 0x1000 <= cp <= 0x109F or 0x1780 <= cp <= 0x17FF
                or cp >= 0x2E80)


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Offsets ``(start, end)`` of ``quote`` in ``text``, or None if it is not verbatim.

    Args:
        text: The source text as it was read.
        quote: The passage the model says it copied.

    Returns:
        Code-point offsets into ``text`` (``text[start:end]`` is the matched passage) of the
        first occurrence, or None when the normalised quote does not occur in the normalised
        text at word boundaries.
    """
    if not isinstance(quote, str) or not isinstance(text, str):
        return None
    nq = normalise(quote)
    if not nq:
        return None
    nt, starts, ends = _normalise_with_map(text)
    pos = nt.find(nq)
    while pos >= 0:
        after = pos + len(nq)
        starts_clean = pos == 0 or not (_is_word_char(nt[pos - 1]) and _is_word_char(nq[0]))
        ends_clean = after == len(nt) or not (_is_word_char(nt[after]) and _is_word_char(nq[-1]))
        if starts_clean and ends_clean:
            return starts[pos], ends[after - 1]
        pos = nt.find(nq, pos + 1)
    return None


def quote_evidence(text: str, quote: str | None, min_words: int = 1) -> dict[str, Any]:
    """How a quote is stored: ``{"quote", "start", "end", "quote_verified"}``.

    ``quote_verified`` is None without a quote, else whether it was found in ``text`` (then
    ``start``/``end`` are its offsets) and has at least ``min_words`` words.
    """
    if not quote:
        return {"quote": None, "start": None, "end": None, "quote_verified": None}
    span = find_quote(text, quote)
    ok = span is not None and count_words(quote) >= min_words
    return {"quote": quote, "start": span[0] if span else None,
            "end": span[1] if span else None, "quote_verified": ok}


def dimension_records(codebook: Any, answer: Mapping[str, Any], text: str) -> list[dict[str, Any]]:
    """The per-dimension quotes of a document answer (``evidence.per_dimension``), as records.

    One record per ``<dimension>_quote`` the answer gives: ``{"dimension", "quote", "start",
    "end", "quote_verified", "codes": {dimension: answer}}``, the shape of a segment record, so
    that every consumer of records (span scoring, redaction, purge, disagreement sheets) reads
    them alike. A null quote (an unanswered dimension, a ``none`` answer) gives no record.
    """
    out = []
    for name in codebook.quote_dimensions():
        quote = answer.get(name + "_quote")
        if not isinstance(quote, str) or not quote.strip():
            continue
        ev = quote_evidence(text, quote, codebook.evidence.quote_min_words)
        out.append({"dimension": name, **ev, "codes": {name: answer.get(name)}})
    return out
