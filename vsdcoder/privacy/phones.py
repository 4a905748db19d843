"""Phone numbers as people write them in many countries, with Google's libphonenumber data.

The regular expressions of :class:`~vsdcoder.privacy.redactors.PatternRedactor` know the US and
UK ways of writing a number and the international ``+CC`` forms. This module adds every national
format of a list of regions: "0176 12345678" (DE), "06 12 34 56 78" (FR), "612 34 56 78" (ES),
"98765 43210" (IN), "0412 345 678" (AU), "090-1234-5678" (JP), "(11) 91234-5678" (BR), ...
It runs ``phonenumbers.PhoneNumberMatcher`` once per region, with leniency ``VALID``: a candidate
counts only when it is a valid number of that region by libphonenumber's metadata (a possible
length is not enough), so counts, prices, years, doses and scores are not taken for numbers.
It keeps only candidates with at least :data:`MIN_DIGITS` digits and never one shaped like a
date ("05.05.2024") or an IPv4 address.

The regions come from the ``phone_regions`` argument of the pattern redactor, else the
environment variable :data:`PHONE_REGIONS_ENV`, else :data:`DEFAULT_PHONE_REGIONS`; see
:func:`resolve_regions`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from vsdcoder.errors import UsageError

#: Regions whose national formats are found by default (ISO 3166-1 alpha-2, as libphonenumber
#: names them): North America, the UK and Ireland, western Europe, India, Australia and New
#: Zealand, Japan, Brazil and Mexico, and the largest English-speaking countries of Africa and
#: Asia. International forms ("+49 ...", "0049 ...") are found whatever the list.
DEFAULT_PHONE_REGIONS: tuple[str, ...] = (
    "US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "IT", "IN", "AU", "NZ",
    "JP", "BR", "MX", "ZA", "NG", "KE", "PH",
)
#: Environment variable with the regions, comma-separated: ``DE,FR``, ``default,PL`` (the
#: default list plus Poland), or ``none`` (only the regular expressions).
PHONE_REGIONS_ENV = "VSDCODER_PHONE_REGIONS"
#: Fewest digits a number found by libphonenumber must have: a full national number has 8 or
#: more almost everywhere; 7-digit local numbers without an area code read like counts and IDs.
MIN_DIGITS = 8
#: libphonenumber's leniency: a number valid for the region (``phonenumbers.Leniency.VALID``).
LENIENCY = "VALID"

_OFF = ("none", "off", "no", "false", "")
_HINTS = {"UK": "GB", "EN": "GB", "EL": "GR", "JA": "JP", "KO": "KR", "ZH": "CN", "DA": "DK",
          "SV": "SE", "CS": "CZ"}
#: Text worth handing to libphonenumber: a run of at least MIN_DIGITS digits with separators.
_CANDIDATE = re.compile(r"\d(?:[\s()\[\].\-/\u2010-\u2015\u2212\u30fc\uff0d]{0,4}\d)"
                        f"{{{MIN_DIGITS - 1},}}")
_DATE_SHAPE = re.compile(r"\(?\d{1,4}[./\-]\d{1,2}[./\-]\d{1,4}\)?")
_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
#: Numbers grouped in thousands that no one writes a phone number as: "2.246.800.000",
#: "83 000 000", "13 294 916" (a head of one or two digits, a "000" group, or four groups or
#: more). "612 345 678" (Spain) stays a phone number.
_THOUSANDS = re.compile(r"\d{1,3}(?P<sep>[ .\u00a0\u202f'])\d{3}(?:(?P=sep)\d{3})+")
_GROUPS_BEFORE = re.compile(r"(?:\d{1,3}[ .\u00a0\u202f'])+$")
#: Words after which a number is a code, not a phone number ("ISBN", "order no.", "#").
_CODE_BEFORE = re.compile(
    r"(?:(?i:\b(?:isbn(?:-1[03])?|issn|doi|iban|upc|ean|sku|order|invoice|ticket|tracking|"
    r"case|ref|reference|serial|account|acct|cep|plz|pin|zip|postcode|postal code)\b"
    r"(?:\s*(?:no|nr|number|num|id)\b)?)|#)\W{0,3}$")
#: A decimal number runs on from a match ("... 6,09") or into it ("3.5 ...").
_DECIMAL_AFTER = re.compile(r"[.,]\d")
_DECIMAL_BEFORE = re.compile(r"\d[.,]$")


def _split(value: str | Iterable[str]) -> list[str]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip() for p in parts if p and p.strip()]


def resolve_regions(regions: str | Iterable[str] | None = None) -> tuple[str, ...]:
    """The regions to find national phone formats for, checked.

    Args:
        regions: Codes (``["DE", "FR"]`` or ``"DE,FR"``, any case); ``"default"`` among them
            stands for :data:`DEFAULT_PHONE_REGIONS`; ``"none"``, ``""`` or ``()`` turns
            libphonenumber off. ``None``: the environment variable :data:`PHONE_REGIONS_ENV`
            if set, else the default list.

    Raises:
        UsageError: a code libphonenumber does not know (the message says where it came from).
    """
    where = "phone_regions"
    if regions is None:
        env = os.environ.get(PHONE_REGIONS_ENV)
        if env is None:
            return DEFAULT_PHONE_REGIONS
        regions, where = env, PHONE_REGIONS_ENV
    names = _split(regions)
    if len(names) <= 1 and (not names or names[0].lower() in _OFF):
        return ()
    import phonenumbers

    out: list[str] = []
    bad: list[str] = []
    for name in names:
        if name.lower() == "default":
            out.extend(DEFAULT_PHONE_REGIONS)
        elif name.upper() in phonenumbers.SUPPORTED_REGIONS:
            out.append(name.upper())
        else:
            bad.append(name)
    if bad:
        hints = [f"{b} is {_HINTS[b.upper()]}" for b in bad if b.upper() in _HINTS
                 and _HINTS[b.upper()] in phonenumbers.SUPPORTED_REGIONS]
        raise UsageError(
            f"{where}: unknown phone region(s) {', '.join(repr(b) for b in bad)}"
            f"{' (' + '; '.join(hints) + ')' if hints else ''}; use two-letter ISO 3166 codes "
            "that libphonenumber knows, such as US, GB, DE, FR, IN, or 'default' for the "
            "default list, or 'none' for no national formats")
    return tuple(dict.fromkeys(out))


def _digit_count(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def _glued(ch: str) -> bool:
    """A digit or a Latin letter: a match touching one is part of something longer."""
    return ch.isdigit() or (ch.isascii() and ch.isalpha())


def _round_number(text: str, start: int, raw: str) -> bool:
    """Whether a match is a count or an amount rather than a phone number.

    Digits alone ending in "000", or thousands groups (with the groups just before the match:
    "64 000 000 000").
    """
    if raw.isdigit():
        return raw.endswith("000")
    before = _GROUPS_BEFORE.search(text, max(0, start - 16), start)
    whole = (before.group(0) if before else "") + raw
    if _THOUSANDS.fullmatch(whole) is None:
        return False
    groups = re.split(r"[ .\u00a0\u202f']", whole)
    return len(groups[0]) <= 2 or "000" in groups[1:] or len(groups) >= 4


def _not_a_number(text: str, start: int, raw: str) -> bool:
    """Whether ``raw`` (at ``start``) is a date, an IPv4 address, an amount or a code."""
    return bool(_DATE_SHAPE.fullmatch(raw) or _IPV4_SHAPE.fullmatch(raw)
                or _round_number(text, start, raw)
                or _CODE_BEFORE.search(text, max(0, start - 30), start))


def _windows(text: str, margin: int = 8) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """The stretches of ``text`` worth handing to libphonenumber, with their digit runs.

    Digit runs of :data:`MIN_DIGITS` digits or more, with a margin for a "+", "00" or "("
    before them, merged where they overlap: much faster than matching the whole text.
    """
    out: list[tuple[int, int, list[tuple[int, int]]]] = []
    for m in _CANDIDATE.finditer(text):
        if _not_a_number(text, m.start(), m.group(0)):
            continue  # a date, an IP address, an amount, a code: not worth parsing
        lo, hi = max(0, m.start() - margin), min(len(text), m.end() + margin)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi, [*out[-1][2], m.span()])
        else:
            out.append((lo, hi, [m.span()]))
    return out


def _valid(s: str, region: str) -> bool:
    import phonenumbers

    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(s, region))
    except phonenumbers.NumberParseException:
        return False


class PhoneFinder:
    """``finder(text)`` yields ``(start, end)`` of phone numbers libphonenumber finds.

    Args:
        regions: Checked region codes (see :func:`resolve_regions`); none finds nothing.
    """

    def __init__(self, regions: Iterable[str]) -> None:
        self.regions = tuple(regions)

    def __repr__(self) -> str:
        return f"PhoneFinder(regions={list(self.regions)!r})"

    def __call__(self, text: str) -> Iterable[tuple[int, int]]:
        """``(start, end)`` of each number found, in no particular order."""
        if not self.regions:
            return []
        windows = _windows(text)
        if not windows:
            return []
        from phonenumbers import Leniency, PhoneNumberMatcher

        leniency = getattr(Leniency, LENIENCY)
        found: dict[tuple[int, int], None] = {}
        for lo, hi, runs in windows:
            covered: list[tuple[int, int]] = []
            for region in self.regions:
                if all(any(a <= s and e <= b for a, b in covered) for s, e in runs):
                    break  # every digit run here is a number already: the rest would agree
                for start, end in self._match(text, lo, hi, region, PhoneNumberMatcher,
                                              leniency):
                    found[(start, end)] = None
                    covered.append((start, end))
        return list(found)

    @staticmethod
    def _match(text: str, lo: int, hi: int, region: str, matcher: Any,
               leniency: Any) -> Iterable[tuple[int, int]]:
        for m in matcher(text[lo:hi], region, leniency=leniency):
            raw = m.raw_string
            start, end = lo + m.start, lo + m.end
            if _digit_count(raw) < MIN_DIGITS or _not_a_number(text, start, raw):
                continue
            if (start > 0 and _glued(text[start - 1])) or (
                    end < len(text) and _glued(text[end])):
                continue  # "98231+14165550123": part of a longer string
            if _DECIMAL_BEFORE.search(text, max(0, start - 2), start):
                continue  # "3.0176 ...": the tail of a decimal number
            if _DECIMAL_AFTER.match(text, end):
                # "0835984048 6,09 €": the last group starts a decimal number; without it
                # the rest must still be a valid number of the region
                cut = re.search(r"\D+\d+$", raw)
                if cut is None:
                    continue
                end = start + cut.start()
                if (_digit_count(text[start:end]) < MIN_DIGITS
                        or not _valid(text[start:end], region)):
                    continue
            # libphonenumber leaves a closing parenthesis out and keeps an opening one
            # when the number is in brackets: "(0412 345 678)" -> trim the opening one
            if raw.startswith("(") and ")" not in raw:
                start += 1
            yield start, end
