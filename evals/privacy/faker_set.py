# ruff: noqa: E501  (templates read best one per line)
"""A held-out labelled set from Faker, and the redactors' scores on it, per type and per locale.

`dataset.jsonl` was written by the same hand as the pattern redactor, so its scores are an upper
bound. This set takes its identifiers from an independent source: the Faker package's locale
providers (phone numbers, e-mail addresses, street addresses and person names as Faker writes
them for each country, plus dates in each country's numeric style), planted in short post-like
sentences, in English and in the locale's language. Decoys (years, doses, prices, counts,
percentages, times, weights) are drawn from Faker's random generator and formatted the local way
("1.234.567", "12 345", "8.859,55 €").

    python evals/privacy/faker_set.py                     # build the set, score patterns and patterns,presidio
    python evals/privacy/faker_set.py --redact patterns   # one redactor only
    python evals/privacy/faker_set.py --build-only        # just write the set
    python evals/privacy/faker_set.py --phone-regions none --tag regex
                                                          # no national formats (libphonenumber off)

The set goes to `faker_set.jsonl` beside this script (`--set`), in the schema of
`dataset.jsonl` plus a `locale` field on each record; it is not committed, since it is rebuilt
byte for byte from the seed (with the same Faker version, which the results record). Scores go to
`results/faker-<redactor>[-<tag>].json`: the whole set (`overall`, `per_type`, ... exactly as
`vsdcoder privacy eval --dataset evals/privacy/faker_set.jsonl --json` writes them) and
`per_locale`, the same measure on each locale's texts. `--phone-regions` sets
VSDCODER_PHONE_REGIONS for the run (see docs/privacy.md). The `-before` results were made with
this script against the pattern redactor of commit d64b571, before libphonenumber.

Deterministic: Faker is seeded per locale and no value depends on the clock (Faker's own date,
year and time providers draw up to "now", so dates, years and times are drawn with fixed bounds).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 20261201
PER_LOCALE = 60
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "en_AU",
           "ja_JP", "pt_BR")
LANGUAGE = {"de_DE": "de", "fr_FR": "fr", "es_ES": "es", "it_IT": "it", "nl_NL": "nl",
            "pt_BR": "pt", "ja_JP": "ja"}

# --- templates: {SLOT} is filled from Faker; one identifier slot per identifier template ------

EN: dict[str, list[str]] = {
    "PHONE": [
        "if anyone from the group wants to talk, text me on {PHONE}",
        "my number is {PHONE} if you need someone at 3am",
        "Update: the clinic finally called back from {PHONE}, two weeks later.",
        "pls don't ghost me again, {PHONE} is my new number",
        "Honestly ChatGPT was more helpful than whoever answered {PHONE}",
        "whatsapp only ({PHONE}), I can't do calls rn",
        "call me: {PHONE}",
        "{PHONE} is my therapist's office, they do a sliding scale",
    ],
    "EMAIL": [
        "you can email me at {EMAIL} if DMs are weird",
        "my old account was {EMAIL} lol",
        "send the worksheet to {EMAIL} pls",
        "{EMAIL} is where the support group sends the zoom link.",
    ],
    "ADDRESS": [
        "the meetup is at {ADDRESS}, second floor",
        "I moved to {ADDRESS} last month and I know nobody",
        "Free drop-in sessions at {ADDRESS} on Tuesdays.",
        "if my meds get delivered to {ADDRESS} again I'll scream",
    ],
    "PERSON": [
        "my counsellor {PERSON} told me to journal instead of talking to a bot",
        "{PERSON} from my DBT group said the same thing",
        "shoutout to {PERSON} for checking on me",
        "tbh {PERSON} is the only one who knows I use Replika",
    ],
    "DATE_TIME": [
        "my intake appointment is on {DATE}",
        "clean since {DATE}!!",
        "first session with the new psychiatrist: {DATE}.",
    ],
    "DECOY": [
        "been on {DOSE} sertraline since {YEAR}",
        "spent {PRICE} on therapy apps this year",
        "woke up at {TIME} again, third night in a row",
        "my sleep score was {PERCENT} lol",
        "{COUNT} steps today and still anxious",
        "{COUNT} people read my vent post by {TIME}",
        "paid {PRICE} for one session in {YEAR} and it was useless",
        "I weigh {WEIGHT} kg now, {PERCENT} less than in {YEAR}",
    ],
}

LOCAL: dict[str, dict[str, list[str]]] = {
    "de": {
        "PHONE": ["Wer reden will, ruft mich an: {PHONE}", "meine neue Nummer ist {PHONE}, schreibt mir gern"],
        "EMAIL": ["schreibt mir an {EMAIL}"],
        "ADDRESS": ["Treffpunkt der Selbsthilfegruppe: {ADDRESS}, 2. Stock"],
        "PERSON": ["Meine Therapeutin {PERSON} meint, ich soll weniger mit ChatGPT reden"],
        "DATE_TIME": ["Mein Termin ist am {DATE}"],
        "DECOY": ["seit {YEAR} nehme ich {DOSE} Sertralin", "{PRICE} für eine App, die nicht hilft", "heute {COUNT} Schritte gelaufen", "um {TIME} wieder wach"],
    },
    "fr": {
        "PHONE": ["si quelqu'un veut parler, appelez-moi au {PHONE}", "mon numéro : {PHONE}"],
        "EMAIL": ["écrivez-moi à {EMAIL}"],
        "ADDRESS": ["le groupe de parole se retrouve au {ADDRESS}"],
        "PERSON": ["ma psy {PERSON} dit que ChatGPT ne remplace pas une thérapie"],
        "DATE_TIME": ["mon rendez-vous est le {DATE}"],
        "DECOY": ["je prends {DOSE} de sertraline depuis {YEAR}", "{PRICE} par mois pour cette appli", "réveillée à {TIME} encore", "{COUNT} pas aujourd'hui et toujours angoissée"],
    },
    "es": {
        "PHONE": ["si alguien quiere hablar, escribidme al {PHONE}", "mi número es {PHONE}"],
        "EMAIL": ["mandadme un correo a {EMAIL}"],
        "ADDRESS": ["el grupo de apoyo se reúne en {ADDRESS}"],
        "PERSON": ["mi psicóloga {PERSON} dice que hablar con una IA no es terapia"],
        "DATE_TIME": ["tengo cita el {DATE}"],
        "DECOY": ["tomo {DOSE} de sertralina desde {YEAR}", "pagué {PRICE} por la app", "me desperté a las {TIME} otra vez", "{COUNT} pasos hoy y sigo con ansiedad"],
    },
    "it": {
        "PHONE": ["se qualcuno vuole parlare, scrivetemi al {PHONE}", "il mio numero è {PHONE}"],
        "EMAIL": ["scrivetemi a {EMAIL}"],
        "ADDRESS": ["il gruppo si incontra in {ADDRESS}"],
        "PERSON": ["la mia psicologa {PERSON} dice di non usare troppo ChatGPT"],
        "DATE_TIME": ["ho l'appuntamento il {DATE}"],
        "DECOY": ["prendo {DOSE} di sertralina dal {YEAR}", "{PRICE} al mese per l'app", "sveglia alle {TIME} di nuovo", "{COUNT} passi oggi e ancora ansia"],
    },
    "nl": {
        "PHONE": ["wie wil praten mag me bellen op {PHONE}", "mijn nummer is {PHONE}"],
        "EMAIL": ["mail me op {EMAIL}"],
        "ADDRESS": ["de lotgenotengroep zit op {ADDRESS}"],
        "PERSON": ["mijn therapeut {PERSON} zegt dat een chatbot geen therapie is"],
        "DATE_TIME": ["mijn intake is op {DATE}"],
        "DECOY": ["ik slik sinds {YEAR} {DOSE} sertraline", "{PRICE} per maand voor die app", "om {TIME} weer wakker", "{COUNT} stappen vandaag en nog steeds onrustig"],
    },
    "pt": {
        "PHONE": ["quem quiser conversar me chama no zap {PHONE}", "meu número é {PHONE}"],
        "EMAIL": ["me manda um email em {EMAIL}"],
        "ADDRESS": ["o grupo de apoio se reúne na {ADDRESS}"],
        "PERSON": ["minha psicóloga {PERSON} disse que o ChatGPT não substitui terapia"],
        "DATE_TIME": ["minha consulta é dia {DATE}"],
        "DECOY": ["tomo {DOSE} de sertralina desde {YEAR}", "paguei {PRICE} no app", "acordei às {TIME} de novo", "{COUNT} passos hoje e ainda ansiosa"],
    },
    "ja": {
        "PHONE": ["話したい人は{PHONE}まで連絡ください", "電話番号は {PHONE} です"],
        "EMAIL": ["メールは{EMAIL}までお願いします"],
        "ADDRESS": ["自助グループは{ADDRESS}で集まっています"],
        "PERSON": ["カウンセラーの{PERSON}さんにAIに頼りすぎないでと言われた"],
        "DATE_TIME": ["予約は{DATE}です"],
        "DECOY": ["{YEAR}年から{DOSE}のセルトラリンを飲んでいる", "アプリに{PRICE}も払った", "また{TIME}に目が覚めた", "今日は{COUNT}歩あるいた"],
    },
}

#: How often each kind of sentence is drawn (identifier types, and decoy sentences).
WEIGHTS = {"PHONE": 4, "EMAIL": 2, "ADDRESS": 2, "PERSON": 2, "DATE_TIME": 1, "DECOY": 3}
#: Numeric date styles per locale (strftime).
DATE_FORMATS = {
    "en_US": ("%m/%d/%Y", "%B %d, %Y"), "en_GB": ("%d/%m/%Y", "%d %B %Y"),
    "en_AU": ("%d/%m/%Y", "%d %B %Y"), "en_IN": ("%d/%m/%Y", "%d-%m-%Y"),
    "de_DE": ("%d.%m.%Y",), "fr_FR": ("%d/%m/%Y",), "es_ES": ("%d/%m/%Y",),
    "it_IT": ("%d/%m/%Y",), "nl_NL": ("%d-%m-%Y",), "pt_BR": ("%d/%m/%Y",),
    "ja_JP": ("%Y年%m月%d日", "%Y/%m/%d"),
}
#: Thousands separators per locale, for counts.
THOUSANDS = {"en_US": ",", "en_GB": ",", "en_AU": ",", "en_IN": ",", "ja_JP": ",",
             "de_DE": ".", "es_ES": ".", "it_IT": ".", "nl_NL": ".", "pt_BR": ".",
             "fr_FR": " "}
DECIMAL = {"de_DE": ",", "fr_FR": ",", "es_ES": ",", "it_IT": ",", "nl_NL": ",", "pt_BR": ","}
SLOT = re.compile(r"\{([A-Z_]+)\}")


def _faker(locale: str, seed: int) -> Any:
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed + zlib.crc32(locale.encode()))
    return fake


def _count(fake: Any, locale: str) -> str:
    n = fake.random_int(1000, 9_999_999)
    sep = THOUSANDS[locale]
    if locale == "en_IN" and n >= 100_000:  # lakh grouping: 12,34,567
        head, tail = str(n)[:-3], str(n)[-3:]
        return re.sub(r"(\d)(?=(\d\d)+$)", r"\1,", head) + "," + tail
    return f"{n:,}".replace(",", sep)


def _values(fake: Any, locale: str) -> dict[str, str]:
    """One value for every slot (only the slots a template names are used)."""
    if locale == "ja_JP":  # Faker's ja_JP street_address is an English pattern; use the real one
        address = f"{fake.town()}{fake.chome()}{fake.ban()}{fake.gou()}"
        person = f"{fake.last_name()} {fake.first_name()}"
    else:
        address = " ".join(fake.street_address().split())
        person = fake.first_name() if fake.random_int(0, 3) == 0 else \
            f"{fake.first_name()} {fake.last_name()}"
    email = fake.free_email() if fake.random_int(0, 1) else fake.email()
    # fixed bounds: Faker's own date, year and time providers draw up to "now", which would
    # make the set depend on the day it is built
    date = fake.date_between(datetime.date(2023, 1, 1), datetime.date(2026, 12, 31)).strftime(
        fake.random_element(DATE_FORMATS[locale]))
    dec = DECIMAL.get(locale, ".")
    hour, minute = fake.random_int(0, 23), fake.random_int(0, 59)
    if locale == "en_US" and fake.random_int(0, 1):
        clock = f"{(hour - 1) % 12 + 1}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
    else:
        clock = f"{hour:02d}:{minute:02d}"
    dose = f"{fake.random_element((5, 10, 20, 25, 50, 75, 100, 150, 200, 300, 450))}" \
           f"{fake.random_element(('mg', ' mg'))}"
    return {
        "PHONE": fake.phone_number(), "EMAIL": email, "ADDRESS": address, "PERSON": person,
        "DATE": date, "YEAR": str(fake.random_int(1990, 2026)), "DOSE": dose,
        "PRICE": fake.pricetag(), "TIME": clock,
        "PERCENT": f"{fake.random_int(1, 100)}%", "COUNT": _count(fake, locale),
        "WEIGHT": f"{fake.random_int(45, 120)}{dec}{fake.random_int(0, 9)}",
    }


LABEL_OF = {"PHONE": "PHONE", "EMAIL": "EMAIL", "ADDRESS": "ADDRESS", "PERSON": "PERSON",
            "DATE": "DATE_TIME"}
DECOY_OF = {"YEAR": "year", "DOSE": "dose", "PRICE": "money", "TIME": "time",
            "PERCENT": "percentage", "COUNT": "number", "WEIGHT": "number"}


def _phone_case(surface: str) -> str:
    return "phone_international" if surface.lstrip("(").startswith(("+", "00")) \
        else "phone_national"


def _fill(template: str, values: dict[str, str], offset: int) -> tuple[str, list, list]:
    out, labels, decoys, pos = [], [], [], 0
    length = offset
    for m in SLOT.finditer(template):
        lit = template[pos:m.start()]
        out.append(lit)
        length += len(lit)
        slot = m.group(1)
        value = values[slot]
        if slot in LABEL_OF:
            lab = {"type": LABEL_OF[slot], "start": length, "end": length + len(value),
                   "text": value, "identifying": True}
            if slot == "PHONE":
                lab["case"] = _phone_case(value)
            labels.append(lab)
        else:
            decoys.append({"kind": DECOY_OF[slot], "start": length, "end": length + len(value),
                           "text": value})
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), labels, decoys


def build(seed: int = SEED, per_locale: int = PER_LOCALE,
          locales: tuple[str, ...] = LOCALES) -> list[dict[str, Any]]:
    """The records: ``per_locale`` texts for each locale, deterministic for a seed."""
    records = []
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    for locale in locales:
        fake = _faker(locale, seed)
        rnd = fake.random  # Faker's own seeded random.Random
        lang = LANGUAGE.get(locale)
        for n in range(per_locale):
            parts, labels, decoys, length = [], [], [], 0
            for _ in range(rnd.choice((1, 2, 2, 3))):
                kind = rnd.choices(kinds, weights)[0]
                pool = LOCAL[lang][kind] if lang and rnd.random() < 0.5 else EN[kind]
                sep = ""
                if parts:
                    ends = parts[-1][-1] in ".!?。"
                    sep = ("" if ends else "。") if lang == "ja" else \
                        " " if ends else rnd.choice((". ", " ", "! ", "\n"))
                sentence, labs, decs = _fill(rnd.choice(pool), _values(fake, locale),
                                             length + len(sep))
                parts.append(sep + sentence)
                length += len(sep) + len(sentence)
                labels += labs
                decoys += decs
            platform, kind_ = rnd.choice((("reddit", "post"), ("reddit", "comment"),
                                          ("tiktok", "comment")))
            records.append({"id": f"faker-{locale}-{n + 1:03d}", "locale": locale,
                            "platform": platform, "kind": kind_, "text": "".join(parts),
                            "labels": labels, "decoys": decoys})
    for rec in records:  # self-check: every span points at its text
        for lab in rec["labels"] + rec["decoys"]:
            assert rec["text"][lab["start"]:lab["end"]] == lab["text"], (rec["id"], lab)
    return records


def write(records: list[dict[str, Any]], path: Path) -> str:
    """Write JSON Lines; return the sha256 of the bytes."""
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class _Cached:
    """A redactor whose ``find`` is computed once per text (per-locale scores reuse it)."""

    def __init__(self, redactor: Any) -> None:
        self.redactor = redactor
        self.name = redactor.name
        self.cache: dict[str, Any] = {}

    def find(self, text: str) -> Any:
        if text not in self.cache:
            self.cache[text] = self.redactor.find(text)
        return self.cache[text]


def _summary(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    keep = ("support", "found", "masked", "fully_masked", "predicted", "correct", "neutral",
            "recall", "masked_recall", "precision")
    return {"texts": d["texts"],
            "per_type": {t: {k: s[k] for k in keep} for t, s in d["per_type"].items()},
            "overall": {k: d["overall"][k] for k in keep},
            "any_identifier": d["any_identifier"], "decoys": d["decoys"],
            "false_positives": d["false_positives"][:20]}


def score(records: list[dict[str, Any]], spec: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The report of ``vsdcoder privacy eval`` on the whole set, plus the same per locale."""
    from vsdcoder.privacy import get_redactor
    from vsdcoder.privacy.quality import evaluate_redactor

    redactor = _Cached(get_redactor(spec))
    report = evaluate_redactor(redactor, records)
    out = {"meta": meta, **report.to_dict()}
    out["per_locale"] = {
        loc: _summary(evaluate_redactor(redactor, [r for r in records if r["locale"] == loc]))
        for loc in dict.fromkeys(r["locale"] for r in records)}
    return out


def _table(res: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    lines = [f"{res['redactor']}: {res['texts']} texts, {res['seconds']:.1f} s",
             f"{'type':<12} {'support':>7} {'recall':>7} {'masked':>7} {'pred':>5} {'prec':>6}"]
    for t, s in res["per_type"].items():
        lines.append(f"{t:<12} {s['support']:>7} {pct(s['recall']):>7} "
                     f"{pct(s['masked_recall']):>7} {s['predicted'] - s['neutral']:>5} "
                     f"{pct(s['precision']):>6}")
    lines.append(f"{'PHONE by locale':<20} {'support':>7} {'recall':>7} {'pred':>5} {'prec':>6}")
    for loc, s in res["per_locale"].items():
        p = s["per_type"].get("PHONE", {})
        lines.append(f"  {loc:<18} {p.get('support', 0):>7} {pct(p.get('recall')):>7} "
                     f"{p.get('predicted', 0) - p.get('neutral', 0):>5} {pct(p.get('precision')):>6}")
    decoys = res["decoys"]
    lines.append("decoys masked: " + ", ".join(f"{k} {v['masked']}/{v['support']}"
                                               for k, v in decoys.items()))
    return "\n".join(lines)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--per-locale", type=int, default=PER_LOCALE)
    p.add_argument("--locales", default=",".join(LOCALES), help="comma-separated Faker locales")
    p.add_argument("--set", type=Path, default=HERE / "faker_set.jsonl", help="where the set goes")
    p.add_argument("--redact", action="append", default=None,
                   help="redactor spec to score (repeatable; default patterns and patterns,presidio)")
    p.add_argument("--phone-regions", default=None,
                   help="set VSDCODER_PHONE_REGIONS for this run ('none' turns libphonenumber off)")
    p.add_argument("--tag", default="", help="suffix of the result files (e.g. before)")
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--build-only", action="store_true")
    args = p.parse_args(argv)

    locales = tuple(x.strip() for x in args.locales.split(",") if x.strip())
    records = build(args.seed, args.per_locale, locales)
    digest = write(records, args.set)
    labels = Counter(lab["type"] for r in records for lab in r["labels"])
    decoys = sum(len(r["decoys"]) for r in records)
    print(f"{args.set}: {len(records)} texts, {sum(labels.values())} labels "
          f"({', '.join(f'{k} {v}' for k, v in sorted(labels.items()))}), {decoys} decoys, "
          f"sha256 {digest[:12]}", file=sys.stderr)
    if args.build_only:
        return 0
    if args.phone_regions is not None:
        os.environ["VSDCODER_PHONE_REGIONS"] = args.phone_regions
    meta = {"seed": args.seed, "per_locale": args.per_locale, "locales": list(locales),
            "set_sha256": digest, "faker": _version("faker"),
            "phonenumbers": _version("phonenumbers"),
            "presidio_analyzer": _version("presidio-analyzer"),
            "phone_regions_env": os.environ.get("VSDCODER_PHONE_REGIONS"), "tag": args.tag,
            "command": "python evals/privacy/faker_set.py " + " ".join(argv if argv is not None
                                                                       else sys.argv[1:])}
    for spec in args.redact or ["patterns", "patterns,presidio"]:
        res = score(records, spec, meta)
        name = spec.replace(",", "+") + (f"-{args.tag}" if args.tag else "")
        out = args.results / f"faker-{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(_table(res))
        print(f"-> {out}\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing
    raise SystemExit(main())
