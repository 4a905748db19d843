"""Did-you-mean suggestions for names a user types (columns, codebooks, dimensions, models...).

:func:`did_you_mean` gives the text to append to an error message, e.g.
``"column 'txt' not found" + did_you_mean("txt", columns)`` ->
``"column 'txt' not found (did you mean 'text'?)"``. Matching ignores case, so ``Text`` finds
``text``; the suggestion is spelled as the choice is.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How alike a typed name and a choice must be (difflib's ratio) to be suggested.
CUTOFF = 0.6


def close_matches(word: str, choices: Iterable[str], n: int = 1,
                  cutoff: float = CUTOFF) -> list[str]:
    """Up to ``n`` of ``choices`` closest to ``word`` (case-insensitive), best first."""
    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(str(c).lower(), str(c))
    word = str(word)
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return [by_lower[word.lower()]]  # only the case differs
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[f] for f in found if by_lower[f] != word]


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = CUTOFF) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = close_matches(word, choices, n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""
