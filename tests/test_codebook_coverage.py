"""The codebooks built on published schemes (tiktok-llm-mh, sad-stressors, convabuse) cover the
scheme they cite, and are vsdcoder's own text: no example is an item of the real data sets (or a
near copy of one), and no prose is copied from the data sets' documentation or from the study
summaries in shared/reference/seeds.md.

The code <-> column mapping of convabuse is tested in test_builtin_codebooks.py
(test_convabuse_codes_match_dataset_columns) and is not repeated here.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import need_shared

from vsdcoder.codebook.load import load_codebook_file

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "plugins" / "codebooks"
NAMES = ("tiktok-llm-mh", "sad-stressors", "convabuse")

#: A run of this many consecutive normalised words shared with a data item makes an example a
#: near copy of it.
EXAMPLE_RUN = 6
#: A run of this many consecutive normalised words shared with a source document makes prose
#: copied from it.
PROSE_RUN = 8

SAD_XLSX = ("datasets", "sad", "SAD_v1_unzipped", "SAD_v1.xlsx")
CONVABUSE_SPLITS = ("datasets", "convabuse", "2_splits")
#: The turns of a ConvAbuse row: ``user`` is the coded message, the others are its context.
CONVABUSE_TURNS = ("user", "agent", "prev_user", "prev_agent")
#: Documentation of the data sets and the study summaries the codebooks were written from.
SOURCES = (
    ("datasets", "sad", "README.md"),
    ("datasets", "sad", "SOURCE.md"),
    ("datasets", "sad", "SAD_v1_unzipped", "Schema.txt"),
    ("datasets", "convabuse", "README.md"),
    ("datasets", "convabuse", "SOURCE.md"),
    ("reference", "seeds.md"),
)


def _words(text: str) -> list[str]:
    """Lower-case words; apostrophes dropped ("can't" -> "cant"), any other mark separates."""
    return re.findall(r"[a-z0-9]+", re.sub(r"['\u2019]", "", text.lower()))


def _runs(text: str, n: int) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def _path(name: str) -> Path:
    return BUNDLED / f"{name}.yaml"


def _load(name: str):
    return load_codebook_file(_path(name), strict=True).codebook


def _examples(name: str) -> list[str]:
    """Every example text of a codebook: code examples, few-shot texts, their context turns and
    the quotes of their outputs."""
    cb = _load(name)
    out: list[str] = []
    for dim in cb.dimensions:
        for code in dim.all_codes():
            out += code.examples.positive + code.examples.negative
    if cb.relevance:
        for rule in cb.relevance.include + cb.relevance.exclude:
            out += rule.examples
    for ex in cb.examples:
        out.append(ex.text)
        for line in (ex.context or "").splitlines():
            out.append(re.sub(r"^\s*\w+:\s*", "", line))  # drop the "agent:" / "user:" speaker
        if isinstance(ex.output.get("quote"), str):
            out.append(ex.output["quote"])
    return [t for t in out if _words(t)]


def test_examples_are_collected():
    """Guards the collector: a regression must not pass by finding nothing."""
    counts = {name: len(_examples(name)) for name in NAMES}
    assert counts["sad-stressors"] >= 9 + 2 * 2  # a positive per code, two few-shots with quotes
    assert counts["tiktok-llm-mh"] >= 11 + 3
    assert counts["convabuse"] >= 1 + 3 + 4  # context turns count too
    for name in NAMES:
        assert {ex.text for ex in _load(name).examples} <= set(_examples(name))


# ------------------------------------------------------------------------- the real data


@cache
def _sad_rows() -> tuple[list[str], list[tuple]]:
    import openpyxl

    path = need_shared(*SAD_XLSX)
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = wb.active.iter_rows(values_only=True)
        header = [str(h) for h in next(rows)]
        return header, [tuple(r) for r in rows]
    finally:
        wb.close()


def _sad_items() -> list[str]:
    header, rows = _sad_rows()
    i = header.index("sentence")
    return [str(r[i]) for r in rows if r[i] is not None and str(r[i]).strip()]


@cache
def _convabuse_items() -> list[str]:
    folder = need_shared(*CONVABUSE_SPLITS)
    files = sorted(folder.glob("ConvAbuseEMNLP*.csv"))
    assert len(files) == 3, f"expected the train, valid and test splits in {folder}"
    items: list[str] = []
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                items += [row[c] for c in CONVABUSE_TURNS if row.get(c) and row[c].strip()]
    return items


DATASETS = {"sad": _sad_items, "convabuse": _convabuse_items}


@cache
def _index(dataset: str) -> tuple[dict[str, str], dict[tuple[str, ...], str]]:
    """The data set's items by normalised text, and by every run of EXAMPLE_RUN words."""
    whole: dict[str, str] = {}
    runs: dict[tuple[str, ...], str] = {}
    for item in DATASETS[dataset]():
        whole.setdefault(" ".join(_words(item)), item)
        for run in _runs(item, EXAMPLE_RUN):
            runs.setdefault(run, item)
    return whole, runs


def test_dataset_items_are_read():
    assert len(_sad_items()) == 6850
    assert len(_convabuse_items()) > 4185  # the 4,185 user messages and their context turns


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("name", NAMES)
def test_no_example_is_a_dataset_item(name, dataset):
    """No example equals an item of the data (normalised) or shares a run of 6 words with one.

    Every codebook is checked against both data sets (tiktok-llm-mh has no public data of its
    own); ConvAbuse items include the context turns, since examples carry context too.
    """
    whole, runs = _index(dataset)
    copied = []
    for text in _examples(name):
        norm = " ".join(_words(text))
        if norm in whole:
            copied.append(f"{text!r} is the item {whole[norm]!r}")
            continue
        shared = sorted(_runs(text, EXAMPLE_RUN) & runs.keys())
        if shared:
            copied.append(f"{text!r} shares {' '.join(shared[0])!r} with {runs[shared[0]]!r}")
    assert not copied, f"{name}: examples copied from {dataset}:\n" + "\n".join(copied)


def test_near_copy_check_catches_a_copy():
    """The check above does find a copied item, a re-cased one and one inside a longer text."""
    whole, runs = _index("sad")
    item = _sad_items()[0]
    assert " ".join(_words(item.upper())) in whole
    long_item = next(i for i in _sad_items() if len(_words(i)) >= EXAMPLE_RUN + 2)
    assert _runs("Well, " + long_item + " and so on.", EXAMPLE_RUN) & runs.keys()


# --------------------------------------------------------------------------------- prose


@cache
def _source_runs() -> dict[str, set[tuple[str, ...]]]:
    return {"/".join(parts): _runs(need_shared(*parts).read_text(encoding="utf-8",
                                                                   errors="replace"), PROSE_RUN)
            for parts in SOURCES}


def _exempt(run: tuple[str, ...], citation: set[tuple[str, ...]]) -> bool:
    """A reference, not prose: a run of the codebook's own citation, or one that holds a DOI."""
    return run in citation or "doi" in run


@pytest.mark.parametrize("name", NAMES)
def test_no_prose_copied_from_sources(name):
    """No run of 8 words of the YAML file (header comments included) is in the data sets'
    README/SOURCE/Schema files or in seeds.md, except bibliographic references."""
    text = _path(name).read_text(encoding="utf-8")
    citation = _runs(yaml.safe_load(text)["citation"], PROSE_RUN)
    ours = {r for r in _runs(text, PROSE_RUN) if not _exempt(r, citation)}
    copied = [f"{src}: {' '.join(run)!r}"
              for src, theirs in _source_runs().items() for run in sorted(ours & theirs)]
    assert not copied, f"{name} shares runs of {PROSE_RUN} words with:\n" + "\n".join(copied)


def test_prose_check_catches_a_copy():
    schema = need_shared(*SOURCES[2]).read_text(encoding="utf-8")
    sentence = next(line.split("\t")[-1] for line in schema.splitlines()
                    if line.startswith("top_label"))
    assert _runs(f"# {sentence}", PROSE_RUN) & _source_runs()["datasets/sad/SAD_v1_unzipped/"
                                                               "Schema.txt"]


# ---------------------------------------------------------------------------- headers


def _header(name: str) -> str:
    lines = []
    for line in _path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
def test_header_cites_source_and_lists_departures(name):
    cb = _load(name)
    header = _header(name)
    doi = re.search(r"https://doi\.org/(\S+)", cb.citation)
    assert doi, f"{name}: the citation has no DOI"
    assert doi.group(1) in header, f"{name}: the header does not cite the source's DOI"
    assert "departs from the original scheme" in header
    after = header.split("departs from the original scheme", 1)[1]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", after, re.M)]
    assert len(numbers) >= 5 and numbers == list(range(1, len(numbers) + 1))
    # the codebook is vsdcoder's own text; the data sets are not part of the repository
    assert cb.license == "MIT"
    assert "MIT licence of vsdcoder" in " ".join(header.split())
    assert not re.search(r"evals/|a copy is in|bundled|Data: ", header)


# ---------------------------------------------------------------------- SAD: categories

#: Each category column of SAD_v1.xlsx -> the code of sad-stressors that carries it.
SAD_CATEGORY = {
    "Work": "work",
    "School": "school",
    "Financial Problem": "financial_problem",
    "Emotional Turmoil": "emotional_turmoil",
    "Social Relationships": "social_relationships",
    "Family Issues": "family_issues",
    "Health, Fatigue, or Physical Pain": "health_fatigue_physical_pain",
    "Everyday Decision Making": "everyday_decision_making",
    "Other": "other",
}


def test_sad_category_columns_map_one_to_one():
    header, rows = _sad_rows()
    # the category columns sit between Votes and Source (Schema.txt)
    columns = header[header.index("Votes") + 1:header.index("Source")]
    assert sorted(columns) == sorted(SAD_CATEGORY)
    assert len(columns) == 9  # "Health, Fatigue, or Physical Pain" is one category
    schema = need_shared("datasets", "sad", "SAD_v1_unzipped", "Schema.txt").read_text(
        encoding="utf-8")
    for category in SAD_CATEGORY:
        assert category in schema

    codes = _load("sad-stressors").dimension("stressor").codable_names()
    assert sorted(SAD_CATEGORY.values()) == sorted(codes), "every code maps back to a category"
    assert len(set(SAD_CATEGORY.values())) == len(SAD_CATEGORY)

    # the majority codes use the same nine names
    top = header.index("top_label")
    assert {r[top] for r in rows} == set(SAD_CATEGORY)


def test_sad_labels_match_categories():
    dim = _load("sad-stressors").dimension("stressor")
    labels = {c.name: c.label for c in dim.codes}
    for category, code in SAD_CATEGORY.items():
        assert labels[code].lower() == category.lower()


# ------------------------------------------------------------ tiktok-llm-mh: tiers, themes

#: Each tier Haensch (2025) reports, as summarised in seeds.md -> the dimensions that carry it.
TIKTOK_TIER = {"1": ("personal_use",), "2": ("attitude",), "3": ("benefits", "concerns")}
#: Each theme named in seeds.md -> (dimension, code).
TIKTOK_THEME = {
    "accessibility": ("benefits", "accessibility"),
    "emotional support": ("benefits", "emotional_support"),
    "perceived therapeutic value": ("benefits", "therapeutic_value"),
    "privacy": ("concerns", "privacy"),
    "generic responses": ("concerns", "generic_responses"),
    "lack of professional oversight": ("concerns", "lack_of_professional_oversight"),
    "therapeutic depth": ("concerns", "therapeutic_depth"),
}


def _haensch_summary() -> str:
    seeds = need_shared("reference", "seeds.md").read_text(encoding="utf-8")
    m = re.search(r"^## 2\. Haensch.*?\n(.*?)(?=^## )", seeds, re.S | re.M)
    assert m, "seeds.md has no section '## 2. Haensch ...'"
    return " ".join(m.group(1).split())


def _listed(summary: str, lead: str) -> list[str]:
    m = re.search(rf"{lead}: ([^.]+)\.", summary)
    assert m, f"seeds.md names no '{lead}:'"
    return [t.strip() for t in m.group(1).split(",")]


def test_tiktok_covers_the_themes_named_in_seeds():
    summary = _haensch_summary()
    benefits = _listed(summary, "Benefits named")
    concerns = _listed(summary, "Concerns")
    assert benefits + concerns == list(TIKTOK_THEME), "seeds.md names a theme the table lacks"
    assert {TIKTOK_THEME[t][0] for t in benefits} == {"benefits"}
    assert {TIKTOK_THEME[t][0] for t in concerns} == {"concerns"}

    cb = _load("tiktok-llm-mh")
    for theme, (dim, code) in TIKTOK_THEME.items():
        codes = {c.name: c for c in cb.dimension(dim).codes}
        assert code in codes, f"{theme!r}: no code {dim}.{code}"
        assert codes[code].label.lower() == theme
    for dim in ("benefits", "concerns"):  # every code maps back to a theme
        d = cb.dimension(dim)
        assert [c.name for c in d.codes] == [c for dm, c in TIKTOK_THEME.values() if dm == dim]
        assert d.type == "multi" and d.none is not None and d.other is not None


def test_tiktok_covers_the_tiers_named_in_seeds():
    summary = _haensch_summary()
    m = re.search(r"Tiers \(as reported\): (.+?)\. ", summary)
    assert m, "seeds.md lists no tiers"
    tiers = re.findall(r"(\d)\) ", m.group(1))
    assert tiers == list(TIKTOK_TIER)
    cb = _load("tiktok-llm-mh")
    order = [d.name for d in cb.dimensions]
    assert [d for t in TIKTOK_TIER.values() for d in t] == order
    tier1 = TIKTOK_TIER["1"][0]
    assert cb.dimension(tier1).when is None
    for tier in ("2", "3"):
        for dim in TIKTOK_TIER[tier]:
            assert cb.dimension(dim).when.dimension == tier1
