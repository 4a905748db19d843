"""Verbatim quote matching: normalisation, offsets into the original text, word counts."""

from __future__ import annotations

import pytest

from vsdcoder.evidence import count_words, find_quote, normalise


def span(text: str, quote: str) -> str | None:
    found = find_quote(text, quote)
    if found is None:
        return None
    start, end = found
    assert 0 <= start < end <= len(text)
    return text[start:end]


def test_exact_match_offsets():
    text = "I have three finals next week and no time."
    assert find_quote(text, "three finals next week") == (7, 29)
    assert text[7:29] == "three finals next week"


def test_first_occurrence_is_returned():
    text = "work, then more work"
    assert find_quote(text, "work") == (0, 4)


def test_not_found_is_none():
    assert find_quote("My boss yells at me.", "My manager yells at me") is None
    assert find_quote("My boss yells at me.", "") is None
    assert find_quote("My boss yells at me.", "   ") is None
    assert find_quote("", "boss") is None


def test_case_is_not_folded():
    assert find_quote("My Boss yells.", "my boss yells") is None


def test_curly_quotes_match_straight_ones_both_ways():
    text = "She said \u201cI\u2019m done\u201d and left."
    assert span(text, '"I\'m done"') == "\u201cI\u2019m done\u201d"
    assert span("She said \"I'm done\" and left.", "\u201cI\u2019m done\u201d") == '"I\'m done"'


def test_dashes_are_folded():
    text = "It was awful \u2014 truly awful."
    assert span(text, "awful - truly") == "awful \u2014 truly"


def test_nbsp_matches_a_space():
    text = "too\u00a0much\u00a0work"
    assert span(text, "too much work") == text


def test_whitespace_runs_are_collapsed():
    text = "My boss\n\n   yells\tat   me."
    assert span(text, "My boss yells at me") == "My boss\n\n   yells\tat   me"
    assert span("My boss yells at me.", "  My boss   yells \n at me  ") == "My boss yells at me"


def test_nfkc_compatibility_characters():
    # full-width letters, a ligature and a superscript digit
    text = "\uff37\uff4f\uff52\uff4b is \ufb01ne, x\u00b2 stress"
    assert span(text, "Work is fine, x2 stress") == text


def test_decomposed_and_precomposed_accents_match():
    decomposed = "Cafe\u0301 au lait"
    assert span(decomposed, "Caf\u00e9 au lait") == decomposed
    precomposed = "Caf\u00e9 au lait"
    assert span(precomposed, "Cafe\u0301 au") == "Caf\u00e9 au"


def test_offsets_point_into_the_original_text_after_folded_characters():
    text = "\u201cOh\u201d \u2026 then\u00a0my\u00a0boss\u2014again\u2014yelled."
    start, end = find_quote(text, "my boss-again-yelled")
    assert (start, end) == (text.index("my"), text.index("."))
    assert text[start:end] == "my\u00a0boss\u2014again\u2014yelled"


def test_ellipsis_is_three_dots():
    text = "Well\u2026 I guess so."
    assert span(text, "Well... I guess") == "Well\u2026 I guess"
    # shortening a passage with "..." is not verbatim
    assert find_quote("I went home and then I slept.", "I went home ... I slept") is None


def test_invisible_characters_are_ignored():
    text = "co\u00adoperation and zero\u200bwidth"
    assert span(text, "cooperation and zerowidth") == text


def test_quote_must_start_and_end_at_word_boundaries():
    text = "My homework is due and I'm stressed."
    assert find_quote(text, "work is due") is None
    assert find_quote(text, "homework is du") is None
    assert span(text, "homework is due") == "homework is due"
    # a later occurrence at word boundaries is found
    assert span("homework then work", "work") == "work"
    assert find_quote("homework then work", "work") == (14, 18)
    # punctuation at the edge of a quote does not need a boundary
    assert span("He left.Then", "left.") == "left."


def test_scripts_without_spaces_match_inside_runs():
    assert span("我今天很累了", "很累") == "很累"


@pytest.mark.parametrize("quote", ["boss", "My boss yells", "\u201cboss\u201d"])
def test_text_slice_is_the_passage(quote):
    text = "Yes \u2014 My boss yells, my \u201cboss\u201d!"
    start, end = find_quote(text, quote)
    assert normalise(text[start:end]) == normalise(quote)


def test_normalise():
    assert normalise("  A\u00a0\u201cb\u201d\n\nc\u2013d  ") == 'A "b" c-d'


@pytest.mark.parametrize(("text", "n"), [
    ("", 0),
    ("   ", 0),
    ("work", 1),
    ("My boss yells at me.", 5),
    ("I'm well-known, aren\u2019t I?", 4),
    ("  three   spaced\nwords ", 3),
    ("-- ... !!", 0),
    ("x2 = 3,5", 3),
])
def test_count_words(text, n):
    assert count_words(text) == n
