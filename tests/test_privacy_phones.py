"""Phone numbers worldwide in the pattern redactor (libphonenumber), and the Faker held-out set.

Issue 10, item 3: numbers written the way people in Germany, France, Spain, India, Australia,
Japan and Brazil write them reached the server. These tests plant them (and more per region) in
sentences, check that decoys (years, doses, prices, dates, counts, percentages, times) stay in
clear, and that the region list can be set and is checked.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.privacy import PatternRedactor, get_redactor
from vsdcoder.privacy.phones import DEFAULT_PHONE_REGIONS, PHONE_REGIONS_ENV, resolve_regions
from vsdcoder.privacy.quality import evaluate_redactor

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_region_env(monkeypatch):
    monkeypatch.delenv(PHONE_REGIONS_ENV, raising=False)


def phones(text: str, redactor: PatternRedactor | None = None) -> list[str]:
    return [s.text for s in (redactor or PatternRedactor()).find(text) if s.type == "PHONE"]


#: The 14 formats of the report: two per country, as people there write them.
REPORTED = [
    "0176 12345678", "(030) 1234567",        # Germany: mobile, Berlin
    "06 12 34 56 78", "01 23 45 67 89",      # France: mobile, Paris
    "612 34 56 78", "912 345 678",           # Spain: mobile, Madrid
    "98765 43210", "022 2345 6789",          # India: mobile, Mumbai
    "0412 345 678", "(02) 9876 5432",        # Australia: mobile, Sydney
    "090-1234-5678", "03-1234-5678",         # Japan: mobile, Tokyo
    "(11) 91234-5678", "11 3456-7890",       # Brazil: mobile, São Paulo
]

MORE = [
    "0171/1234567", "+49 176 12345678", "0049 30 1234567",                     # DE
    "06.12.34.56.78", "+33 6 12 34 56 78", "07 98 76 54 32",                   # FR
    "612345678", "+34 612 345 678", "93 123 45 67",                            # ES
    "098765 43210", "+91 98765 43210", "080 2345 6789",                        # IN
    "0412345678", "+61 412 345 678", "(03) 9123 4567",                         # AU
    "080 1234 5678", "06-6123-4567", "０９０－１２３４－５６７８",                  # JP
    "(21) 2345-6789", "+55 11 91234-5678", "11 91234 5678",                    # BR
    "333 123 4567", "06 1234 5678", "02 1234567",                              # IT
    "06 12345678", "06-12 34 56 78", "020-1234567",                            # NL
    "07911 123456", "0113 496 0000", "(212) 555-0147", "(416) 555-0199",       # GB US CA
    "55 1234 5678", "01 234 5678", "082 123 4567", "0803 123 4567",            # MX IE ZA NG
    "0917 123 4567", "(02) 8123 4567", "021 123 4567", "0712 345678",          # PH NZ KE
    "0664 1234567", "044 123 45 67", "0470 12 34 56",                          # AT CH BE
]


@pytest.mark.parametrize("number", REPORTED + MORE)
@pytest.mark.parametrize("template", ["text me on {} if you want", "{}", "Nummer: {}.",
                                      "whatsapp only ({}), no calls", "ring {}, ok?"])
def test_national_and_international_formats(number, template):
    text = template.format(number)
    assert phones(text) == [number]


def test_reported_formats_are_all_redacted_in_one_post():
    text = "numbers from the group chat: " + "; ".join(REPORTED)
    assert phones(text) == REPORTED


def test_phones_inside_other_scripts():
    assert phones("電話番号は090-1234-5678です") == ["090-1234-5678"]
    assert phones("話したい人は03-1234-5678まで") == ["03-1234-5678"]


@pytest.mark.parametrize("text", [
    "I took 20mg in 2019 at 10:45, then 50 mg at 3:30pm",
    "from 2019-2020 and 2015 - 2018 and 1998–2004, also 2019/2020",
    "years 1999 2000 2001 2002 and 2010, 2012, 2014",
    "dates 12.03.2024, 12/03/2024, 2024-03-12, 12-03-2024, 2024/03/12, 12.03.24",
    "times 10:30:45, 22.30 Uhr, 08h30, 14:00-16:00, 9.30-17.30, 7.30pm",
    "prices 1.234.567 €, 12 345 678 €, 12.345.678,90 €, R$ 8.859,55, $12,345,678",
    "it cost 2843574000 in total, and 6,09 € al mese",
    "counts 12 345 678 steps, 10 000 000 views, 83 000 000 people, 2.246.800.000 views",
    "₹12,34,567 and ¥12,345,678 and 1'234'567 CHF",
    "PHQ-9 of 18, GAD-7 score: 15, 7/10, 23/27, 40%, 99.5%, 120/80 mmHg",
    "ISBN 978-0-13-110362-7 and ISBN 0-306-40615-2 and 12-15 reps",
    "order no. 612345678, ticket #87654321, tracking 0176123456789, UPC 036000291452",
    "CEP 01310-100 and PLZ 10115 Berlin and 75008 Paris",
    "ip 192.168.1.23 and 10.0.3.36:443 and version 999.1.1.1",
    "what is 98231+14165550123?",
    "coordinates 51.5072, -0.1276 and 48.8566 2.3522",
])
def test_decoys_are_not_phone_numbers(text):
    assert phones(text) == []


def test_crisis_lines_stay():
    for line in ("0800 111 0 111", "09 72 39 40 50", "02 2327 2327", "1300 22 4636",
                 "0570-783-556", "1-866-488-7386"):
        assert phones(f"please call {line} tonight") == [], line
        assert phones(f"please call {line} tonight", PatternRedactor(allow=[])) == [line]


def test_a_price_after_a_number_is_left_out():
    assert phones("scrivetemi al 0835984048 6,09 € al mese") == ["0835984048"]
    assert phones("call 0176 12345678.") == ["0176 12345678"]


def test_other_patterns_win_over_phone_numbers():
    r = PatternRedactor()
    spans = r.find("card 4539 1488 0343 6467, ip 203.0.113.53, on 05.05.2024")
    assert [(s.type, s.text) for s in spans] == [
        ("CARD", "4539 1488 0343 6467"), ("IP_ADDRESS", "203.0.113.53"),
        ("DATE_TIME", "05.05.2024")]
    # the libphonenumber span and the regex span of one number merge into one
    assert phones("call +44 (0)20 7946 0018 now") == ["+44 (0)20 7946 0018"]


# --- the region list ---------------------------------------------------------------------------

def test_region_list_is_configurable(monkeypatch):
    assert PatternRedactor().phone_regions == DEFAULT_PHONE_REGIONS
    fr = PatternRedactor(phone_regions=["fr"])
    assert fr.phone_regions == ("FR",)
    assert phones("06 12 34 56 78 or 612 34 56 78", fr) == ["06 12 34 56 78"]
    es = PatternRedactor(phone_regions="ES")
    assert phones("06 12 34 56 78 or 612 34 56 78", es) == ["612 34 56 78"]
    # no regions: the regular expressions alone, which still know +CC forms
    off = PatternRedactor(phone_regions="none")
    assert off.phone_regions == ()
    assert phones("06 12 34 56 78 or +33 6 12 34 56 78", off) == ["+33 6 12 34 56 78"]
    assert PatternRedactor(phone_regions=()).phone_regions == ()
    # "default" stands for the default list
    plus = PatternRedactor(phone_regions="default,PL")
    assert plus.phone_regions == (*DEFAULT_PHONE_REGIONS, "PL")
    assert phones("mój numer 512 345 678", plus) == ["512 345 678"]
    # through the plugin factory and the environment
    assert get_redactor("patterns", phone_regions=["DE"]).phone_regions == ("DE",)
    monkeypatch.setenv(PHONE_REGIONS_ENV, "de, fr")
    assert PatternRedactor().phone_regions == ("DE", "FR")
    assert resolve_regions() == ("DE", "FR")
    assert PatternRedactor(phone_regions=["ES"]).phone_regions == ("ES",)  # argument wins
    monkeypatch.setenv(PHONE_REGIONS_ENV, "none")
    assert PatternRedactor().phone_regions == ()
    # without PHONE among the types the list is not even read
    monkeypatch.setenv(PHONE_REGIONS_ENV, "XX")
    assert PatternRedactor(types=["EMAIL"]).phone_regions == ()


def test_bad_region_codes_are_errors(monkeypatch, capsys):
    with pytest.raises(UsageError, match=r"phone_regions: unknown phone region\(s\) 'XX'"):
        PatternRedactor(phone_regions=["DE", "XX"])
    with pytest.raises(UsageError, match="UK is GB"):
        PatternRedactor(phone_regions="UK")
    monkeypatch.setenv(PHONE_REGIONS_ENV, "DE,Germany")
    with pytest.raises(UsageError, match=f"{PHONE_REGIONS_ENV}: unknown .*'Germany'"):
        PatternRedactor()
    rc = main(["privacy", "eval", "--redact", "patterns"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown phone region" in err and PHONE_REGIONS_ENV in err


# --- the Faker held-out set ----------------------------------------------------------------------

def _faker_set_module():
    spec = importlib.util.spec_from_file_location("faker_set",
                                                  ROOT / "evals" / "privacy" / "faker_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_faker_set_is_deterministic_and_scored(tmp_path, capsys):
    fs = _faker_set_module()
    a = fs.build(per_locale=12)
    assert a == fs.build(per_locale=12)
    assert len({r["locale"] for r in a}) >= 10
    for rec in a:
        for lab in rec["labels"] + rec["decoys"]:
            assert rec["text"][lab["start"]:lab["end"]] == lab["text"]
    types = {lab["type"] for r in a for lab in r["labels"]}
    assert types >= {"PHONE", "EMAIL", "ADDRESS", "PERSON"}
    rep = evaluate_redactor(PatternRedactor(), a)
    assert rep.per_type["PHONE"].recall >= 0.9
    assert rep.per_type["PHONE"].precision >= 0.95
    assert rep.per_type["EMAIL"].recall >= 0.9
    # the script: writes the set and a result file with per-locale scores
    out = tmp_path / "set.jsonl"
    assert fs.main(["--per-locale", "3", "--set", str(out), "--results", str(tmp_path),
                    "--redact", "patterns", "--tag", "t"]) == 0
    res = json.loads((tmp_path / "faker-patterns-t.json").read_text(encoding="utf-8"))
    assert res["meta"]["set_sha256"] and res["texts"] == 3 * len(fs.LOCALES)
    assert set(res["per_locale"]) == set(fs.LOCALES)
    assert "PHONE by locale" in capsys.readouterr().out
    # the same file scores with the CLI
    assert main(["privacy", "eval", "--dataset", str(out), "--redact", "patterns"]) == 0
