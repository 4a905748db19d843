# ruff: noqa: E501  (templates and pools read best one per line)
"""Generate evals/privacy/dataset.jsonl: synthetic social-media posts with labelled identifiers.

Every text is invented: sentences in the voice of Reddit posts and comments and TikTok comments
about mental health and chatbots, with identifiers planted from invented pools (fictional phone
ranges, documentation IP ranges, example domains, generated Luhn-valid card numbers). Each planted
identifier is labelled with its exact character span. See README.md for the schema.

    python evals/privacy/make_dataset.py            # writes dataset.jsonl beside this file
    python evals/privacy/make_dataset.py --check    # fails if the committed file is stale

Deterministic: the same seed gives the same file, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20261121
N_TEXTS = 500
HERE = Path(__file__).resolve().parent
OUT = HERE / "dataset.jsonl"

# --- pools -----------------------------------------------------------------------------------

FIRST = ["Sarah", "Jake", "Emily", "Liam", "Olivia", "Noah", "Chloe", "Ryan", "Megan", "Tom",
         "Jess", "Daniel", "Hannah", "Chris", "Lauren", "Matt", "Amy", "Ben", "Zoe", "Sam",
         "Katie", "Josh", "Ellie", "Adam", "Rachel", "Luke", "Sophie", "Nathan", "Abby", "Tyler",
         "Kayla", "Marcus", "Bethany", "Connor", "Leah", "Declan", "Naomi", "Ethan", "Imogen",
         "Caleb"]
SURNAMES = ["Smith", "Patel", "Okafor", "Johnson", "Nguyen", "Garcia", "Kowalski", "Murphy",
            "Harris", "Thompson", "Brennan", "Walsh", "Rossi", "Chen", "Ahmed", "Campbell",
            "Fletcher", "Whitaker", "Delgado", "Lindgren", "Oyelaran", "Barker", "Hughes",
            "Sandoval"]
WORD_NAMES = ["Hope", "Will", "May", "Faith", "Grace", "Joy", "Rose", "Mark", "Bill", "Summer",
              "Sky", "Dawn", "Pat", "Drew", "Hunter", "Frank", "Autumn", "Iris", "Ivy", "Amber",
              "Ruby", "Holly", "Sunny", "Chase", "Art", "Miles", "Bliss", "Destiny"]
MARKED_NAMES = ["O'Brien", "D'Angelo", "Jean-Luc", "Mary-Kate", "Anne-Marie", "O'Connor",
                "De'Andre", "Ja'Nae", "Mei-Ling", "Jo-Ellen", "Smith-Jones", "McKenzie-Rae",
                "Zoë", "Renée", "Chloé"]
INTL_NAMES = ["Siobhán", "Oluwaseun Adeyemi", "Björn Lindqvist", "Xiaoling Wang",
              "Anaïs Dubois", "Jürgen Weiß", "Priya Ramanathan", "Mehmet Yılmaz", "Kwame Mensah",
              "Aroha Ngata", "Nguyễn Thị Lan", "Takumi Sato", "Fatima Al-Sayed",
              "Joaquín Herrera", "Małgorzata Nowak", "Dmitri Volkov", "Aisling", "Eirik",
              "Chidinma Okeke", "Sipho Dlamini", "Leilani Kahale", "Thandiwe", "Rahul Mehta",
              "Yuki Tanaka", "Søren", "Bogdan", "Ngozi", "Ximena", "Keanu Makoa", "Saoirse"]

CITIES = ["Leeds", "Manchester", "Bristol", "Sheffield", "Glasgow", "Cardiff", "Dundee",
          "Brighton", "Croydon", "Austin", "Denver", "Tulsa", "Spokane", "Boise", "Dayton",
          "Tacoma", "Fresno", "Halifax", "Winnipeg", "Geelong", "Ballarat", "Dunedin", "Cork",
          "Galway", "Swindon", "Plymouth", "Norwich", "Milton Keynes", "Stoke", "Asheville"]
PLACES = ["Roundhay Park", "Lake Merritt", "Hampstead Heath", "the Clifton Suspension Bridge",
          "Bondi Beach", "Kelvingrove Park", "Headingley", "Hackney", "Fishtown", "Ballard",
          "Sefton Park", "Arthur's Seat", "the Meadows", "Chinatown in Oakland", "Brixton"]
COUNTRIES = ["the UK", "the US", "America", "Canada", "Australia", "Texas", "California",
             "Scotland", "Ireland", "Germany", "India", "Nigeria", "Ohio", "New Zealand"]
ORGS = ["Harbourview Community College", "Oakridge High", "Brightwater Clinic",
        "Maple Grove Counselling Centre", "Pinecrest Middle School", "Kestrel Logistics",
        "Northfield Academy", "the Bluebell Café", "St Anne's Hospital", "Westbrook University",
        "Copperleaf Pharmacy", "Sunnyside Care Home", "Riverbend Mental Health Trust",
        "Greenway Foods", "Tesco", "Starbucks", "Amazon", "Walmart", "Lakeside Leisure Centre",
        "Hollybank Surgery"]
BIG_ORGS = ["the NHS", "OpenAI", "Anthropic", "Google", "Reddit", "TikTok", "BetterHelp",
            "Samaritans", "Mind", "the VA", "Meta"]
PRODUCTS = ["ChatGPT", "Claude", "Gemini", "Replika", "Character.AI", "Pi", "Copilot", "GPT-4o",
            "Grok", "DeepSeek", "Woebot", "Wysa", "chatgpt", "gpt"]
PRODUCT_SITES = ["chatgpt.com", "character.ai", "claude.ai"]
SUBS = ["r/depression", "r/ADHD", "r/Anxiety", "r/bipolar", "r/CPTSD", "r/therapy",
        "r/ChatGPT", "r/mentalhealth", "r/autism", "r/BPD", "r/OCD", "r/schizophrenia"]

MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "proton.me", "icloud.com",
                "hotmail.com", "example.org", "mail.example.com", "yahoo.com"]
HANDLE_WORDS = ["sadgirl", "tomvlogs", "quiet.fox", "hope.heals", "mxrcus", "jessdraws",
                "anxious.panda", "nightowl", "healing.with.kay", "bpd.bestie", "adhd.andy",
                "softboi", "mindful.mo", "dayone.again", "plantmum", "gymtherapy", "lil.storm",
                "not.okay.club", "sunflower.era", "rileyreads"]
USER_WORDS = ["throwaway", "quietfox", "Anxious-Panda", "NightOwl", "tired_of_trying",
              "SadBeans", "coffee-and-meds", "PixelHeart", "LostInThe_Sauce", "ok_but_why",
              "BlueMoonRising", "spoonie-life", "Mango_Tango", "Burnt-Toast", "wobbly_gremlin"]
URL_HOSTS = ["mysite.com", "tomshealingjourney.org", "jessdraws.net", "quietfox.blog",
             "healwithkay.com", "spoonie-notes.org", "mumsmindmatters.co.uk",
             "adhd-andy.dev", "myrecovery.io"]
URL_PATHS = ["/blog", "/about", "/2023/05/bad-days", "/resources", "/p/my-story", "/journal",
             "", "", "/links"]
STREETS = ["Elm Grove", "Main St", "Kingsway Road", "Harbour Way", "Maple Avenue",
           "Rosewood Close", "Oak Street", "Church Lane", "Victoria Road", "Cedar Drive",
           "Birch Crescent", "Park View Terrace", "Willow Lane", "Mill Street",
           "Station Rd", "Pine Ave", "Hawthorn Gardens", "Lakeshore Blvd", "Sycamore Court",
           "Beacon Hill"]
UK_POSTCODES = ["LS6 2AB", "M14 5TQ", "BS1 4DJ", "G12 8QQ", "CF10 1AA", "DD1 4HN", "BN2 1TW",
                "CR0 2RG", "NR2 4PA", "PL4 8AA", "SN1 5BP", "ST4 2DE"]
US_STATES_CITIES = [("Austin", "TX"), ("Denver", "CO"), ("Tulsa", "OK"), ("Spokane", "WA"),
                    ("Boise", "ID"), ("Dayton", "OH"), ("Fresno", "CA"), ("Asheville", "NC")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
MONTHS_SHORT = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov",
                "Dec"]


# --- building texts with exact spans -------------------------------------------------------

@dataclass
class Piece:
    """A fragment of text, maybe labelled (type) or a decoy (decoy kind)."""

    text: str
    type: str | None = None
    case: str | None = None
    identifying: bool = True
    decoy: str | None = None


@dataclass
class Doc:
    """A text being built, with the labels and decoys of its pieces."""

    parts: list[str] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    decoys: list[dict] = field(default_factory=list)
    memory: dict[str, list[Piece]] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.parts)

    def add(self, piece: Piece) -> None:
        start = self.length
        self.parts.append(piece.text)
        end = self.length
        if piece.type:
            label = {"type": piece.type, "start": start, "end": end, "text": piece.text,
                     "identifying": piece.identifying}
            if piece.case:
                label["case"] = piece.case
            self.labels.append(label)
        if piece.decoy:
            self.decoys.append({"kind": piece.decoy, "start": start, "end": end,
                                "text": piece.text})

    @property
    def text(self) -> str:
        return "".join(self.parts)


def luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    """A random card number starting with ``prefix`` whose Luhn checksum is valid."""
    digits = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


class Slots:
    """Generators for each ``{SLOT}`` of the templates; each returns a list of pieces."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def c(self, seq):
        return self.rng.choice(seq)

    # people
    def NAME(self):
        return [Piece(self.c(FIRST), "PERSON")]

    def FULL(self):
        return [Piece(f"{self.c(FIRST)} {self.c(SURNAMES)}", "PERSON", "full_name")]

    def name(self):
        return [Piece(self.c(FIRST).lower(), "PERSON", "lowercase_name")]

    def WNAME(self):
        return [Piece(self.c(WORD_NAMES), "PERSON", "common_word_name")]

    def XNAME(self):
        return [Piece(self.c(INTL_NAMES), "PERSON", "non_english_name")]

    def ANAME(self):
        n = self.c(MARKED_NAMES)
        if n in ("O'Brien", "D'Angelo", "O'Connor", "Smith-Jones"):
            return [Piece(f"{self.c(FIRST)} {n}", "PERSON", "apostrophe_hyphen_name")]
        return [Piece(n, "PERSON", "apostrophe_hyphen_name")]

    def ANYNAME(self):
        return getattr(self, self.c(["NAME", "NAME", "FULL", "name", "WNAME", "XNAME",
                                     "ANAME"]))()

    def DR(self):
        title = self.c(["Dr ", "Dr. ", "dr ", "Dr "])
        return [Piece(title), Piece(self.c([*SURNAMES, "Okafor", "Ramanathan", "O'Brien"]),
                                    "PERSON", "title_name")]

    # places and organisations
    def CITY(self):
        return [Piece(self.c(CITIES), "LOCATION")]

    def city(self):
        return [Piece(self.c(CITIES).lower(), "LOCATION", "lowercase_place")]

    def PLACE(self):
        p = self.c(PLACES)
        if p.startswith("the "):
            return [Piece("the "), Piece(p[4:], "LOCATION", "named_place")]
        return [Piece(p, "LOCATION", "named_place")]

    def COUNTRY(self):
        p = self.c(COUNTRIES)
        if p.startswith("the "):
            return [Piece("the "), Piece(p[4:], "LOCATION", "country_or_state", False)]
        return [Piece(p, "LOCATION", "country_or_state", False)]

    def ORG(self):
        o = self.c(ORGS)
        if o.startswith("the "):
            return [Piece("the "), Piece(o[4:], "ORGANIZATION", "employer_school_clinic")]
        return [Piece(o, "ORGANIZATION", "employer_school_clinic")]

    def BIGORG(self):
        o = self.c(BIG_ORGS)
        if o.startswith("the "):
            return [Piece("the "), Piece(o[4:], "ORGANIZATION", "national_org", False)]
        return [Piece(o, "ORGANIZATION", "national_org", False)]

    def PRODUCT(self):
        return [Piece(self.c(PRODUCTS), "PRODUCT", "chatbot", False)]

    def PRODUCTSITE(self):
        return [Piece(self.c(PRODUCT_SITES), "URL", "chatbot_site", False)]

    def SUB(self):
        return [Piece(self.c(SUBS), "SUBREDDIT", "subreddit", False)]

    # contact details
    def EMAIL(self):
        f, s = self.c(FIRST).lower(), self.c(SURNAMES).lower()
        local = self.c([f"{f}.{s}", f"{f}{self.rng.randrange(1, 99)}", f"{f[0]}{s}",
                        f"{f}_{s}{self.rng.randrange(80, 100)}", f"{f}.{s[0]}"])
        if self.rng.random() < 0.15:
            local = local.title()
            return [Piece(f"{local}@{self.c(MAIL_DOMAINS).title()}", "EMAIL", "email_capitals")]
        return [Piece(f"{local}@{self.c(MAIL_DOMAINS)}", "EMAIL")]

    def OBFEMAIL(self):
        f, s = self.c(FIRST).lower(), self.c(SURNAMES).lower()
        form = self.rng.randrange(8)
        if form == 5:
            t = f"{f}(dot){s}(at)gmail(dot)com"
        elif form == 6:
            t = f"{f} @ gmail . com"
        elif form == 7:
            t = f"{f}.{s} at icloud"
        elif form == 0:
            t = f"{f} at gmail dot com"
        elif form == 1:
            t = f"{f}.{s} [at] outlook [dot] com"
        elif form == 2:
            t = f"{f[0]}.{s}(at)proton.me"
        elif form == 3:
            t = f"{f}{self.rng.randrange(10, 99)} AT yahoo DOT co DOT uk"
        else:
            t = f"{f}_{s} at hotmail.com"
        return [Piece(t, "EMAIL", "obfuscated_email")]

    def PHONE(self):
        r = self.rng
        n3 = f"{r.randrange(0, 1000):03d}"
        last = f"01{r.randrange(0, 100):02d}"
        area = self.c(["212", "312", "415", "503", "512", "617", "720", "919"])
        form = r.randrange(20)
        if form == 0:
            t, case = f"({area}) 555-{last}", "phone_parentheses"
        elif form == 1:
            t, case = f"{area}.555.{last}", "phone_dots"
        elif form == 2:
            t, case = f"{area} 555 {last}", "phone_spaces"
        elif form == 3:
            t, case = f"+1 {area} 555 {last}", "phone_international"
        elif form == 4:
            t, case = f"+1 ({area}) 555-{last}", "phone_international"
        elif form == 5:
            t, case = f"07700 900{n3}", "phone_spaces"
        elif form == 6:
            t, case = f"+44 7700 900{n3}", "phone_international"
        elif form == 7:
            t, case = f"020 7946 0{n3}", "phone_spaces"
        elif form == 8:
            t, case = f"0161 496 0{n3}", "phone_spaces"
        elif form == 9:
            t, case = f"+61 491 570 {r.randrange(100, 160)}", "phone_international"
        elif form == 10:
            t, case = f"07700.900.{n3}", "phone_dots"
        elif form == 11:
            t, case = f"1-{area}-555-{last}", "phone_dashes"
        elif form == 12:
            t, case = f"+44 (0)7700 900{n3}", "phone_international"
        elif form == 13:
            t, case = f"0044 7700 900{n3}", "phone_international"
        elif form == 14:
            t, case = f"+1-{area}-555-{last}", "phone_international"
        elif form == 15:
            t, case = f"({area})555-{last}", "phone_parentheses"
        elif form == 16:
            t, case = f"+33 6 12 {r.randrange(10, 99)} {r.randrange(10, 99)} {r.randrange(10, 99)}", \
                "phone_international"
        elif form == 17:
            t, case = f"07700-900-{n3}", "phone_dashes"
        elif form == 18:
            t, case = f"07700 {n3[:1]}00 {r.randrange(100, 999)}", "phone_spaces"
        else:
            t, case = f"{area}/555-{last}", "phone_slash"
        return [Piece(t, "PHONE", case)]

    def PLAINPHONE(self):
        return [Piece(f"{self.c(['212', '415', '512'])}555{self.rng.randrange(100, 200):04d}",
                      "PHONE", "phone_plain_digits")]

    def URL(self):
        host = self.c(URL_HOSTS)
        path = self.c(URL_PATHS)
        form = self.rng.randrange(6)
        if form == 0:
            return [Piece(f"https://{host}{path}", "URL", "url_scheme")]
        if form == 1:
            return [Piece(f"https://www.instagram.com/{self.c(HANDLE_WORDS)}", "URL",
                          "url_scheme")]
        if form == 2:
            return [Piece(f"www.{host}{path}", "URL", "url_no_scheme")]
        if form == 3:
            return [Piece(f"linktr.ee/{self.c(HANDLE_WORDS).replace('.', '')}", "URL",
                          "url_no_scheme")]
        if form == 4:
            return [Piece(f"{host}{path or '/blog'}", "URL", "url_no_scheme")]
        return [Piece(f"bit.ly/{''.join(self.c('abcdefXYZ123') for _ in range(6))}", "URL",
                      "url_no_scheme")]

    def HARDURL(self):
        h = self.c(HANDLE_WORDS).replace(".", "")
        t = self.c([f"{h}.carrd.co", f"instagram.com/{h}", f"twitch.tv/{h}", f"discord.gg/{h[:5]}x7",
                    f"docs.google.com/forms/d/{h}-signup", f"{h}.dev", f"tinyurl.com/{h[:4]}42",
                    f"{self.c(HANDLE_WORDS).replace('.', '')}.carrd.co",
                    f"{self.c(HANDLE_WORDS).replace('.', '')}.substack.com",
                    f"youtube.com/@{self.c(HANDLE_WORDS).replace('.', '')}",
                    f"gofundme.com/f/help-{self.c(FIRST).lower()}-get-therapy"])
        return [Piece(t, "URL", "url_no_scheme")]

    def IP(self):
        r = self.rng
        form = r.randrange(7)
        if form == 5:
            return [Piece(f"10.0.{r.randrange(0, 9)}.{r.randrange(2, 254)}", "IP_ADDRESS",
                          "ipv4_port"), Piece(f":{self.c([8080, 3000, 443])}")]
        if form == 6:
            t, case = f"2001:0db8:0000:0000:0000:ff00:0042:{r.randrange(1000, 9999)}", "ipv6_full"
        elif form == 0:
            t, case = f"192.168.{r.randrange(0, 3)}.{r.randrange(2, 254)}", "ipv4"
        elif form == 1:
            t, case = f"203.0.113.{r.randrange(1, 254)}", "ipv4"
        elif form == 2:
            t, case = f"198.51.100.{r.randrange(1, 254)}", "ipv4"
        elif form == 3:
            t, case = f"2001:db8::{r.randrange(1, 0xffff):x}:{r.randrange(1, 0xffff):x}", "ipv6"
        else:
            t, case = f"2001:db8:85a3::8a2e:{r.randrange(1, 0xfff):x}:7334", "ipv6"
        return [Piece(t, "IP_ADDRESS", case)]

    def HANDLE(self):
        w = self.c(HANDLE_WORDS)
        t = self.c([w, f"{w}_{self.rng.randrange(1, 99)}", f"{w}{self.rng.randrange(90, 99)}",
                    w.title().replace(".", "_")])
        return [Piece(f"@{t}", "HANDLE")]

    def BAREHANDLE(self):
        return [Piece(self.c(HANDLE_WORDS).replace(".", "_"), "HANDLE", "handle_no_at")]

    def RUSER(self):
        w = self.c(USER_WORDS)
        t = self.c([w, f"{w}_{self.rng.randrange(1, 9999)}", f"{w}-{self.rng.randrange(10, 99)}"])
        t = t[:20]
        pre = self.c(["u/", "u/", "u/", "/u/"])
        return [Piece(f"{pre}{t}", "REDDIT_USER",
                      "username_slash" if pre == "/u/" else None)]

    def CARD(self):
        r = self.rng
        kind = r.randrange(4)
        if kind == 3:
            num = luhn_complete(r, self.c(["34", "37"]), 15)
            groups = [num[:4], num[4:10], num[10:]]
        else:
            num = luhn_complete(r, self.c(["4", "51", "53", "55"]), 16)
            groups = [num[i:i + 4] for i in range(0, 16, 4)]
        form = r.randrange(3)
        if form == 0:
            return [Piece(" ".join(groups), "CARD", "card_spaces")]
        if form == 1:
            return [Piece("-".join(groups), "CARD", "card_dashes")]
        return [Piece(num, "CARD", "card_plain")]

    def ADDRESS(self):
        r = self.rng
        street = self.c(STREETS)
        num = self.c([str(r.randrange(1, 300)), f"{r.randrange(1, 90)}B", str(r.randrange(1000,
                                                                                            9999))])
        form = self.c([0, 1, 2, 3, 4, 5, 6, 7, 9])
        if form == 6:
            return [Piece(f"{num} {street} NW", "ADDRESS", "address_directional")]
        if form == 7:
            return [Piece(self.c([f"Calle Mayor {r.randrange(1, 90)}", f"Hauptstraße {r.randrange(1, 90)}",
                                  f"{r.randrange(1, 90)} rue des Lilas", f"Via Roma {r.randrange(1, 90)}"]),
                          "ADDRESS", "address_foreign")]
        if form == 9:
            return [Piece(f"{self.c(['Rose Cottage', 'The Old Rectory', 'Ivy House'])}, {street}",
                          "ADDRESS", "address_house_name")]
        if form == 0:
            return [Piece(f"Flat {r.randrange(1, 12)}, {num} {street}", "ADDRESS", "address_unit")]
        if form == 1:
            return [Piece(f"{num} {street} Apt {r.randrange(1, 20)}{self.c('ABC')}", "ADDRESS",
                          "address_unit")]
        if form == 2:
            return [Piece(f"{num} {street}, Unit {r.randrange(1, 30)}", "ADDRESS", "address_unit")]
        if form == 3:
            return [Piece(f"{num} {street.lower()}", "ADDRESS", "address_lowercase")]
        return [Piece(f"{num} {street}", "ADDRESS")]

    def POSTAL(self):
        """A UK postcode, or a US city + state + ZIP (city and code labelled)."""
        return self.UKPC() if self.rng.random() < 0.5 else self.USZIP()

    def DATE(self):
        r = self.rng
        d = r.randrange(1, 29)
        m = r.randrange(12)
        y = r.randrange(2018, 2026)
        suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(d, "th")
        forms = [
            (f"{d:02d}/{m + 1:02d}/{y}", "date_numeric"),
            (f"{m + 1}/{d}/{str(y)[2:]}", "date_numeric"),
            (f"{y}-{m + 1:02d}-{d:02d}", "date_numeric"),
            (f"{d:02d}.{m + 1:02d}.{str(y)[2:]}", "date_numeric"),
            (f"{MONTHS[m]} {d}{suffix}", "date_words"),
            (f"{d} {MONTHS[m]} {y}", "date_words"),
            (f"{MONTHS[m]} {d}, {y}", "date_words"),
            (f"{MONTHS_SHORT[m]} {d}", "date_words"),
            (f"{d}{suffix} of {MONTHS[m]}", "date_words"),
            (f"{d}{suffix} {MONTHS_SHORT[m]}", "date_words"),
            (f"{MONTHS[m]} {y}", "date_month_year"),
            (f"{MONTHS[m].lower()} {d}{suffix}", "date_lowercase"),
            (f"{d:02d}-{m + 1:02d}-{y}", "date_numeric"),
            (f"{d} {MONTHS_SHORT[m]} '{str(y)[2:]}", "date_words"),
            (f"{self.c(['Monday', 'Tuesday', 'Friday'])} the {d}{suffix}", "date_weekday_day"),
            (f"{d}/{m + 1}", "date_no_year"),
            (f"mid-{MONTHS[m]} {y}", "date_month_year"),
            (f"{MONTHS_SHORT[m]}. {d}", "date_words"),
        ]
        if self.rng.random() < 0.06:
            return [Piece("the "), Piece(f"{d}{suffix} of {MONTHS[m]}", "DATE_TIME", "date_words")]
        t, case = self.c(forms)
        return [Piece(t, "DATE_TIME", case)]

    # decoys: numbers and words that are not identifiers
    def YEAR(self):
        return [Piece(str(self.rng.randrange(2012, 2026)), decoy="year")]

    def DOSE(self):
        t = self.c([f"{self.c([5, 10, 20, 25, 50, 75, 100, 150, 200])}mg",
                    f"{self.c([10, 50, 100])} mg", f"{self.c(['0.5', '1.5', '2.5'])}mg",
                    f"{self.c([300, 600, 900])}mg"])
        return [Piece(t, decoy="dose")]

    def TIME(self):
        t = self.c([f"{self.rng.randrange(1, 12)}am", f"{self.rng.randrange(1, 12)}:{self.c(['00', '15', '30', '45'])}",
                    f"{self.rng.randrange(1, 12)}:{self.c(['05', '30'])}pm", f"{self.rng.randrange(1, 12)} pm"])
        return [Piece(t, decoy="time")]

    def SCORE(self):
        t = self.c([f"PHQ-9 of {self.rng.randrange(5, 27)}", f"GAD-7 score: {self.rng.randrange(3, 21)}",
                    f"{self.rng.randrange(2, 10)}/10", f"{self.rng.randrange(1, 9)} out of 10",
                    f"{self.rng.randrange(10, 27)}/27", f"{self.rng.randrange(20, 60)} on the BDI"])
        return [Piece(t, decoy="score")]

    def DURATION(self):
        t = self.c([f"{self.rng.randrange(2, 300)} days", f"{self.rng.randrange(2, 12)} weeks",
                    f"{self.rng.randrange(2, 11)} months", f"{self.rng.randrange(2, 15)} years"])
        return [Piece(t, decoy="duration")]

    def MINUTES(self):
        t = self.c([f"{self.rng.randrange(5, 55)} minutes", f"{self.rng.randrange(2, 6)} hours",
                    "half an hour", f"{self.rng.randrange(10, 40)} mins"])
        return [Piece(t, decoy="duration")]

    def MONEY(self):
        t = self.c([f"${self.c([60, 90, 150, 200, 250])}", f"£{self.c([40, 60, 75, 120])}",
                    f"${self.rng.randrange(1, 9)},{self.rng.randrange(100, 999)}",
                    f"{self.c([20, 30, 45])} quid"])
        return [Piece(t, decoy="money")]

    def VERSION(self):
        return [Piece(self.c(["GPT-4.1", "4o-mini", "GPT-5", "iOS 17.2", "v2.3.1", "3.5",
                              "Claude 3.7"]), decoy="version")]

    def AGE(self):
        t = self.c([f"{self.rng.randrange(16, 45)}F", f"{self.rng.randrange(16, 45)}M",
                    f"{self.rng.randrange(16, 45)}nb", f"{self.rng.randrange(16, 60)}"])
        return [Piece(t, decoy="age")]

    def HOTLINE(self):
        t = self.c(["988", "116 123", "741741", "1-800-273-8255", "111", "85258"])
        if t == "1-800-273-8255":
            return [Piece(t, "PHONE", "hotline", False)]
        return [Piece(t, decoy="hotline")]

    def PCT(self):
        return [Piece(f"{self.rng.randrange(5, 95)}%", decoy="percent")]

    def UKPC(self):
        pc = self.c(UK_POSTCODES)
        x = self.rng.random()
        if x < 0.12:
            return [Piece(pc.lower(), "POSTCODE", "postcode_lowercase")]
        if x < 0.22:
            return [Piece(pc.replace(" ", ""), "POSTCODE", "postcode_no_space")]
        if x < 0.3:
            return [Piece(self.c(["K1A 0B1", "M5V 2T6", "V6B 4Y8"]), "POSTCODE", "postcode_canada")]
        return [Piece(pc, "POSTCODE", "postcode_uk")]

    def USZIP(self):
        city, state = self.c(US_STATES_CITIES)
        return [Piece(city, "LOCATION"), Piece(f", {state} "),
                Piece(f"{self.rng.randrange(10000, 99999)}", "POSTCODE", "zip_us")]


# --- templates -------------------------------------------------------------------------------
# Each is a sentence or two; ``{SLOT}`` names a Slots method, ``{SLOT~}`` repeats the surface
# the last ``{SLOT}`` of the same text produced (same entity, same label type).

OPENERS_REDDIT = [
    "Throwaway because my family knows my main.",
    "Long post, sorry in advance.",
    "Not sure if this is allowed here but I need to get it out.",
    "TW: self harm mention.",
    "Posting from mobile so formatting is bad.",
    "I've lurked here for {DURATION} and never posted.",
    "({AGE}) first time posting.",
    "Bit of a vent.",
    "Update to my last post.",
    "",
    "",
    "",
]
OPENERS_TIKTOK = ["", "", "", "not me crying at this", "the way this is so real",
                  "ok but why is this me", "saving this", "", "bestie", "needed this today"]
CLOSERS = ["", "", "", "Thanks for reading.", "Sorry for the rant.", "Any advice appreciated.",
           "Edit: thank you all so much for the kind replies.", "tl;dr I'm tired.",
           "Edit: typo.", "stay safe everyone x", "💙", "🫶", "😭😭"]

TEMPLATES = [
    # people, with chatbots
    "I've been using {PRODUCT} every night since my therapist {DR} moved to {CITY}.",
    "my bf {name} thinks it's weird that I vent to {PRODUCT} but honestly it listens better than he does",
    "Me and {WNAME} both have ADHD and we use {PRODUCT} to break tasks down, game changer",
    "{NAME} from my group at {ORG} told me to ask {PRODUCT} for meal plans when the depression hits.",
    "I finally told my sister {FULL} about the panic attacks and she sat with me at {PLACE} for hours.",
    "My psychiatrist, {DR}, said using {PRODUCT} between sessions is fine as long as I don't skip appointments.",
    "{WNAME} said I should stop talking to a chatbot and talk to real people. {WNAME~} isn't wrong tbh.",
    "my best friend {XNAME} is the only one who knows, and {PRODUCT} I guess lol",
    "Honestly {ANAME} was the first person who didn't laugh when I said an AI helps me sleep.",
    "I asked {PRODUCT} to help me write a text to {NAME} apologising for ghosting him.",
    "My mum ({FULL}) works at {ORG} and would lose it if she knew how bad things got.",
    "Shout out to my nurse {NAME} at {ORG}, you saved my life and you don't even know it.",
    "{name} and i used to do everything together before the psychosis. now it's just me and {PRODUCT}",
    "My counsellor {XNAME} suggested journaling with {PRODUCT} and it's actually helped.",
    "[[Will]] I ever feel normal again? Asking {PRODUCT} at {TIME} probably isn't the answer.",
    "I told {WNAME} I'd call her on {DATE} but I couldn't get out of bed.",
    "[[May]] is hard for me every year, my dad {FULL} passed then.",
    "Called in sick to {ORG} again. My manager {NAME} is going to fire me.",
    "[[Grace]] period on my prescription ran out and {DR} won't see me until {DATE}.",
    "{XNAME} from the ward still messages me, it's the only reason I'm okay.",
    "[[mark]] my words, {PRODUCT} will never replace a real therapist.",
    "my little brother {ANAME} found my journal and now everyone knows",
    "[[Faith]] in therapy: zero. [[Faith]] in {PRODUCT}: somehow higher. My friend {WNAME} thinks that's bleak.",
    "Does anyone else talk to {PRODUCT} like it's a person? I even named mine {NAME}.",
    "{FULL} if you're reading this, I'm sorry about everything in {CITY}.",
    "hi {name}!! miss u, call me when ur back from {city}",
    # places
    "I moved to {CITY} for uni and have zero friends here, so {PRODUCT} is kind of it right now.",
    "Anyone in {CITY} know a therapist who takes walk-ins? Waiting list at {ORG} is {DURATION}.",
    "Grew up in {city}, moved to {CITY}, still feel like I don't belong anywhere.",
    "I go walking around {PLACE} when the anxiety spikes, helps more than meds some days.",
    "Moved from {COUNTRY} to {CITY} last year and the loneliness is brutal.",
    "The crisis team in {CITY} took {DURATION} to call back. {PRODUCT} answered in seconds.",
    "Spent the night at {ORG} in {CITY} after the overdose. I'm okay now.",
    "If you're ever near {PLACE}, the bench by the water is where I go to breathe.",
    # contact details
    "If anyone in {CITY} wants to start a peer support group, email me at {EMAIL}.",
    "my email is {OBFEMAIL} if you want to talk, no judgement",
    "You can text me on {PHONE}, I'm up most nights anyway.",
    "Call or text {PHONE} if you need someone, I mean it.",
    "text me on {PLAINPHONE} if you want, I don't sleep anyway",
    "I wrote everything that helped me at {URL}",
    "I put together a list of free resources here: {URL}.",
    "Made a little zine about surviving winter, it's on {HARDURL}",
    "follow my recovery journey {HANDLE}",
    "I post daily check ins on [[tiktok|ORGANIZATION]], I'm {HANDLE}.",
    "omg {HANDLE} this is literally us",
    "Big thanks to {HANDLE}! your video made me book the appointment",
    "Shoutout to {RUSER} who talked me down last week.",
    "(credit to {RUSER} for the prompt that finally worked)",
    "Replying to {RUSER}: same, {PRODUCT} helped me draft the email to my GP.",
    "DM me or message {RUSER} (my alt).",
    "Saw this on {SUB} and had to share.",
    "Cross-posting from {SUB}, mods please remove if not allowed.",
    "Reach me at {EMAIL} or {PHONE}, whichever.",
    "Contact: {OBFEMAIL}",
    "My old blog is still up at {URL} if you want the whole story.",
    "I'm {RUSER} on the other sub and {HANDLE} on insta.",
    "my ig is {BAREHANDLE} if u want to follow along",
    "[[tiktok|ORGANIZATION]]: {BAREHANDLE} (I post about recovery)",
    "Find me on insta, {BAREHANDLE}, same name everywhere.",
    "[[Reddit|ORGANIZATION]] won't let me DM so email {EMAIL}.",
    # over-sharing
    "I literally live at {ADDRESS}, {POSTAL} and nobody checks on me.",
    "If I don't post for a week someone please do a welfare check at {ADDRESS}.",
    "Anyway if you're ever nearby I'm at {ADDRESS}.",
    "My therapist's office is at {ADDRESS}, right next to {ORG}.",
    "Send letters to {ADDRESS}, {POSTAL}, I love getting post.",
    "My card ({CARD}) got declined for the therapy app so I went back to {PRODUCT}.",
    "Bank called about my card {CARD} and I had a panic attack on the phone.",
    "I typed my card number {CARD} into a sketchy therapy site, am I stupid?",
    "My IP is {IP} lol the app banned me for no reason",
    "the app kept logging me in from {IP} which isn't even my house",
    "Firewall logs show {IP} hitting my account at {TIME}, the paranoia is real.",
    "The appointment is on {DATE} at {TIME}.",
    "I was discharged on {DATE} and started {DOSE} of sertraline.",
    "My birthday is {DATE} and I'm dreading it.",
    "Relapsed on {DATE} after {DURATION} clean.",
    "Since {DATE} I've been talking to {PRODUCT} every day.",
    "Hospitalised {DATE}, out {DATE}, still processing.",
    "First session with {DR} is {DATE}, wish me luck.",
    "postcode {UKPC} if anyone local wants to meet for coffee",
    "I'm in {USZIP}, anyone local want to do a walking group?",
    "The clinic is near {POSTAL}, about {MINUTES} on the bus.",
    # neutral mentions
    "{BIGORG} waiting lists are a joke, so I pay for {PRODUCT} Plus instead.",
    "Used {PRODUCTSITE} at {TIME} when I couldn't sleep.",
    "Honestly {BIGORG} should be embarrassed that {PRODUCT} is doing their job.",
    "If you're in crisis please call {HOTLINE}, it helped me.",
    "{PRODUCT} gave me the number for {BIGORG} and I finally called.",
    "Therapy in {COUNTRY} costs a fortune, {PRODUCT} doesn't.",
    "Anyone else from {COUNTRY} on {SUB}?",
    "Found {PRODUCTSITE} through {SUB} and it's been a lifeline.",
    "I'm from {COUNTRY} and nobody talks about mental health here.",
]
NEUTRAL_TEMPLATES = [
    "I've been on {DOSE} of sertraline for {DURATION} and the fog is finally lifting.",
    "My PHQ-9 went from 22 to 9 in {DURATION}, mostly therapy but {PRODUCT} helped between sessions.",
    "I scored {SCORE} at intake.",
    "Woke up at {TIME} again, heart racing, asked {PRODUCT} to walk me through box breathing.",
    "In {YEAR} I was diagnosed with bipolar II and nobody explained anything.",
    "Since {YEAR} I've tried {DURATION} of CBT and three meds.",
    "Therapy is {MONEY} a session here, {PRODUCT} is free. Do the maths.",
    "{VERSION} is noticeably colder than the old one, it used to feel warmer.",
    "Sleep is like {PCT} better since I stopped doomscrolling.",
    "The [[5-4-3-2-1]] grounding thing actually works for me.",
    "They changed my diagnosis code to [[F41.1]] and my insurance freaked out.",
    "I'm in [[room 101]] on [[ward 7]] and the wifi is awful.",
    "Did [[10,000]] steps today, small win.",
    "They did a [[1:1]] with me and it helped more than the group.",
    "Called [[911]] once and it was the worst night of my life.",
    "[[B12]] and vitamin D were low, which explains some of it.",
    "They put me on a [[Section 2]] and I still don't fully understand what that means.",
    "Took [[3/4]] of a pill because I was scared of the side effects.",
    "Gave the app [[5/5]] stars before I realised it was storing everything.",
    "Ugh, I hate when a group chat pings [[@everyone]] at midnight.",
    "The workbook (ISBN [[978-0-13-110362-7]]) is honestly better than the app.",
    "[[1,000,000]] thoughts a minute and none of them useful.",
    "Doing [[12-15]] reps at the gym is the only time my head is quiet.",
    "Group is at [[7.30pm]] on Thursdays, I keep chickening out.",
    "Reading the [[DSM-5]] criteria at 2am was a mistake.",
    "[[1 in 4]] people deal with this, you're not alone.",
    "It's there [[24/7]] which no human can be.",
    "[[10/10]] would recommend talking to it at [[3am]] instead of spiralling.",
    "I'm [[5'7]] and weigh [[50kg]] and my doctor still says I'm fine.",
    "Read [[page 42]] of the workbook, it's the one about catastrophising.",
    "My mood tracker says {PCT} of days were bad last month.",
    "Upped my dose to {DOSE} in {YEAR}, side effects were rough.",
    "Some nights I talk to it for {MINUTES} straight, is that bad?",
    "I know it's just predicting words but it never gets tired of me.",
    "The worst part is the 3am spiral, not the day.",
    "It told me to reach out to a professional which, fair.",
    "Does anyone else feel guilty for finding comfort in a chatbot?",
    "I don't trust it with my data but I'm desperate.",
    "It hallucinated a medication interaction once and I panicked, so be careful.",
    "ADHD brain + AI planner = I actually did my laundry.",
    "My therapist said it's a tool, not a replacement. I agree.",
    "I worry I'm becoming dependent on it.",
    "It remembered what I said about my dad and I cried.",
    "Honestly it feels like journaling that talks back.",
    "Autism meltdown at work today and it helped me write the email after.",
    "Is it weird that I say thank you to it every time?",
    "The privacy stuff scares me, I never use my real name with it.",
    "Took my meds at {TIME}, ate something, that's a win.",
    "I'm {AGE} and this is the first year I've felt hopeful.",
    "We had {DURATION} of no panic attacks and then last night happened.",
    "i lost [[10 pounds]] from not eating and nobody noticed",
    "Paid {MONEY} for a psychiatrist who spent {MINUTES} on me.",
    "Still using {VERSION} for everything, including the hard stuff.",
    "Our support group had [[12]] people last week.",
    "If you're struggling, {HOTLINE} is free and they actually listen.",
    "[[May]] the odds be ever in your favour with {BIGORG} waiting lists lol.",
    "[[Will]] power isn't a treatment plan.",
    "[[Hope]] this helps someone.",
    "[[mark]] this as resolved I guess, I'm doing better",
    "Sunny days don't fix anything but they help.",
    "[[Dawn]] is the worst time, the birds start and I'm still awake.",
]
TIKTOK = [
    "this is so real 😭 {PRODUCT} got me through {DATE}",
    "{name} come look at this",
    "{HANDLE} u need to see this",
    "me at {TIME} telling {PRODUCT} my whole life story",
    "the way {PRODUCT} listens better than my ex {name}",
    "not the therapist {DR} saying the same thing as {PRODUCT} 💀",
    "ok but who else is from {city}",
    "{WNAME} this is literally you",
    "pov: it's {TIME} and {PRODUCT} is your only friend",
    "i did this after my {DOSE} wore off lmao",
    "stitch this {HANDLE}",
    "my mum {NAME} would never understand this",
    "ppl in {CITY} where do u even find a therapist",
    "imagine paying {MONEY} for therapy when {PRODUCT} exists",
    "follow {HANDLE} for more",
    "{XNAME} and i watched this together and cried",
    "it's giving {PRODUCT} at {TIME}",
    "dm me on ig {HANDLE}.",
]


_LITERAL = re.compile(r"\[\[([^\]|]+)(?:\|([A-Z_]+))?\]\]")


def add_literal(doc: Doc, text: str) -> None:
    """Add template text; ``[[word]]`` is a decoy, ``[[word|TYPE]]`` a neutral label."""
    pos = 0
    for m in _LITERAL.finditer(text):
        if m.start() > pos:
            doc.add(Piece(text[pos:m.start()]))
        if m.group(2):
            doc.add(Piece(m.group(1), m.group(2), "platform", False))
        else:
            first = m.group(1)[0]
            kind = "word_not_name" if first.isalpha() else "mention" if first == "@" else "number"
            doc.add(Piece(m.group(1), decoy=kind))
        pos = m.end()
    if pos < len(text):
        doc.add(Piece(text[pos:]))


def fill(doc: Doc, template: str, slots: Slots) -> None:
    """Append ``template`` to ``doc`` with its slots filled."""
    for i, part in enumerate(re.split(r"\{(\w+~?)\}", template)):
        if i % 2 == 0:
            if part:
                add_literal(doc, part)
            continue
        name = part.rstrip("~")
        if part.endswith("~") and name in doc.memory:
            for p in doc.memory[name]:
                doc.add(p)
            continue
        pieces = getattr(slots, name)()
        doc.memory[name] = pieces
        for p in pieces:
            doc.add(p)


def slot_names(template: str) -> set[str]:
    return {s.rstrip("~") for s in re.findall(r"\{(\w+~?)\}", template)}


#: Each text starts from a template with one of these slots, in turn, so that every type is
#: well represented.
FOCUS = ["ANYNAME", "WNAME", "name", "XNAME", "ANAME", "DR", "FULL", "CITY", "city", "PLACE",
         "ORG", "EMAIL", "OBFEMAIL", "PHONE", "PLAINPHONE", "URL", "HARDURL", "IP", "HANDLE",
         "RUSER", "CARD", "ADDRESS", "UKPC", "USZIP", "DATE", "DATE", "NAME", "PHONE", "EMAIL", "URL",
         "HANDLE", "RUSER", "CARD", "IP", "ADDRESS", "POSTAL", "CARD", "IP", "COUNTRY",
         "BAREHANDLE", "UKPC", "ADDRESS", None,
         None]
SLOT_ALIASES = {"ANYNAME": {"NAME", "FULL", "name", "WNAME", "XNAME", "ANAME"}}


def make_text(i: int, rng: random.Random) -> dict:
    slots = Slots(rng)
    doc = Doc()
    r = rng.random()
    platform, kind = (("reddit", "post") if r < 0.45 else ("reddit", "comment") if r < 0.75
                      else ("tiktok", "comment"))
    focus = FOCUS[i % len(FOCUS)]
    if platform == "tiktok":
        pool = TIKTOK + [t for t in TEMPLATES if len(t) < 70]
        n_extra = rng.choice([0, 0, 1])
    else:
        pool = TEMPLATES
        n_extra = rng.choice([0, 1, 1, 2]) if kind == "comment" else rng.choice([1, 2, 3])
    wanted = SLOT_ALIASES.get(focus, {focus}) if focus else None
    if wanted:
        candidates = [t for t in pool if slot_names(t) & wanted] or \
                     [t for t in TEMPLATES if slot_names(t) & wanted]
        first = rng.choice(candidates)
    else:
        first = rng.choice(NEUTRAL_TEMPLATES)
    sentences = [first]
    for _ in range(n_extra):
        if focus is None or rng.random() < 0.5:
            sentences.append(rng.choice(NEUTRAL_TEMPLATES))
        else:
            sentences.append(rng.choice(pool))
    rng.shuffle(sentences)
    opener = rng.choice(OPENERS_TIKTOK if platform == "tiktok" else OPENERS_REDDIT)
    closer = rng.choice(CLOSERS) if platform == "reddit" else ""
    if opener:
        fill(doc, opener, slots)
    for j, s in enumerate(sentences):
        if doc.length:
            doc.add(Piece("\n\n" if kind == "post" and j and rng.random() < 0.3 else " "))
        fill(doc, s, slots)
    if closer:
        doc.add(Piece(" "))
        fill(doc, closer, slots)
    text = doc.text
    for lab in doc.labels:
        assert text[lab["start"]:lab["end"]] == lab["text"], lab
    return {"id": f"priv-{i + 1:04d}", "platform": platform, "kind": kind, "text": text,
            "labels": doc.labels, "decoys": doc.decoys}


def build(seed: int = SEED, n: int = N_TEXTS) -> list[dict]:
    rng = random.Random(seed)
    return [make_text(i, rng) for i in range(n)]


def dumps(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def summary(records: list[dict]) -> str:
    types = Counter(lab["type"] for r in records for lab in r["labels"] if lab["identifying"])
    neutral = Counter(lab["type"] for r in records for lab in r["labels"] if not lab["identifying"])
    cases = Counter(lab.get("case") for r in records for lab in r["labels"] if lab.get("case"))
    decoys = Counter(d["kind"] for r in records for d in r["decoys"])
    lines = [f"{len(records)} texts, {sum(types.values())} identifying labels, "
             f"{sum(neutral.values())} neutral labels, {sum(decoys.values())} decoys",
             "identifying: " + ", ".join(f"{k} {v}" for k, v in sorted(types.items())),
             "neutral: " + ", ".join(f"{k} {v}" for k, v in sorted(neutral.items())),
             "cases: " + ", ".join(f"{k} {v}" for k, v in sorted(cases.items())),
             "decoys: " + ", ".join(f"{k} {v}" for k, v in sorted(decoys.items())),
             "texts without identifiers: "
             f"{sum(1 for r in records if not any(lab['identifying'] for lab in r['labels']))}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("-n", type=int, default=N_TEXTS)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if --out differs from what this script generates")
    args = ap.parse_args(argv)
    records = build(args.seed, args.n)
    data = dumps(records)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != data:
            print(f"{args.out} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(data, encoding="utf-8")
    print(f"wrote {args.out}\n{summary(records)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
