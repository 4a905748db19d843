"""The codebooks bundled in plugins/codebooks/: they load strictly, compile deterministically,
are registered, their examples validate, and vsd-mental-health covers Li et al.'s scheme in its
own words.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import need_shared
from pydantic import ValidationError

from vsdcoder.codebook.checks import example_output
from vsdcoder.codebook.compile import answer_errors, compile_codebook
from vsdcoder.codebook.load import load_codebook_file

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "plugins" / "codebooks"
PATHS = sorted(BUNDLED.glob("*.yaml"))
OURS = ("vsd-mental-health", "tiktok-llm-mh", "convabuse")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _load(name: str):
    return load_codebook_file(BUNDLED / f"{name}.yaml", strict=True).codebook


def _compiled(name: str):
    return compile_codebook(_load(name))


def test_bundled_set():
    names = {p.stem for p in PATHS}
    assert set(OURS) <= names


# --------------------------------------------------------------------------- every codebook


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_loads_strict_and_compiles(path):
    loaded = load_codebook_file(path, strict=True)
    assert loaded.warnings == []
    cb = loaded.codebook
    assert cb.name == path.stem, "file name and codebook name should agree"
    compiled = compile_codebook(cb)
    assert compiled.system.strip()
    assert compiled.schema["type"] == "object"
    assert compiled.hash.startswith("sha256:")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_registered(path):
    from vsdcoder.plugins import get_registry

    name = load_codebook_file(path).codebook.name
    entry = get_registry().codebooks.get(name)
    assert entry is not None, f"{name} is not registered"
    assert Path(entry.path).resolve() == path.resolve()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_examples_validate(path):
    cb = load_codebook_file(path, strict=True).codebook
    compiled = compile_codebook(cb)
    if cb.name in OURS:
        assert len(cb.examples) >= 2
    for ex in cb.examples:
        compiled.validate(example_output(cb, ex.output), text=ex.text)
        assert _norm(ex.text) in _norm(compiled.system)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_compile_is_deterministic(path):
    a = compile_codebook(load_codebook_file(path, strict=True).codebook)
    b = compile_codebook(load_codebook_file(path, strict=True).codebook)
    assert a.messages() == b.messages()
    assert json.dumps(a.schema, sort_keys=True) == json.dumps(b.schema, sort_keys=True)
    assert (a.hash, a.prompt_hash, a.schema_hash, a.codebook_hash) == (
        b.hash, b.prompt_hash, b.schema_hash, b.codebook_hash)
    assert a.to_json() == b.to_json()


@pytest.mark.parametrize("name", OURS)
def test_cli_validate_strict_and_show(name, capsys):
    from vsdcoder.cli.main import main

    assert main(["codebook", "validate", str(BUNDLED / f"{name}.yaml"), "--strict"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"OK {name} ")
    assert "0 warnings" in out.out
    assert main(["codebook", "show", name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == name
    assert shown["hash"] == _compiled(name).hash


@pytest.mark.parametrize("name", OURS)
def test_attribution(name):
    cb = _load(name)
    assert cb.citation and cb.license and cb.authors and cb.title and cb.description


# ------------------------------------------------------------ vsd-mental-health vs. Li et al.


def _li(shared: Path) -> dict:
    """Every definition, rule and example of Li et al.'s prompt, parsed from the reference."""
    md = (shared / "reference" / "li2025_prompt.md").read_text(encoding="utf-8")

    def block(heading: str) -> str:
        m = re.search(rf"^## {re.escape(heading)}\n```text\n(.*?)\n```$", md, re.S | re.M)
        assert m, f"no ```text block under '## {heading}'"
        return m.group(1)

    system, task = block("SYSTEM_PROMPT"), block("TASK_PROMPT")

    def section(title: str) -> str:
        """Lines from the heading ``title`` to the next heading or '---' rule."""
        m = re.search(rf"^#+ {re.escape(title)}[ \t]*\n(.*?)(?=^#+ |^---|\Z)", task, re.S | re.M)
        assert m, f"no section '{title}'"
        return m.group(1)

    out: dict = {"system": system}

    inc = section("Critical Inclusion Criteria")
    out["include_lead"] = re.search(r"^\*\*(.+)\*\*$", inc, re.M).group(1)
    out["include"] = [
        {"name": m.group(1), "description": m.group(2),
         "examples": re.findall(r'"([^"]+)"', m.group(3))}
        for m in re.finditer(r"^\d+\. \*\*(.+?)\*\*: (.+?) \(e\.g\., (.+)\)$", inc, re.M)
    ]

    out["exclude"] = []
    for line in re.findall(r"^\d+\. (.+)$", section("Critical Exclusion Criteria (Do NOT Extract)"),
                           re.M):
        m = re.match(r'(.+?) \(e\.g\., (".+")\)$', line)
        if m:  # quoted examples become examples; "(e.g., cheating, coding)" stays in the text
            out["exclude"].append({"description": m.group(1),
                                   "examples": re.findall(r'"([^"]+)"', m.group(2))})
        else:
            out["exclude"].append({"description": line, "examples": []})

    out["quote_guidelines"] = re.findall(r"^\s*\* (.+?)\s*$", section("supporting_quote"), re.M)
    out["product_examples"] = re.findall(r'"([^"]+)"', re.findall(
        r"^\s*\* (.+?)\s*$", section("llm_product"), re.M)[0])
    out["impact"] = dict(re.findall(r"^\s*\*\* `(\w+)`: (.+?)\s*$", section("llm_impact"), re.M))

    mhc = section("mental_health_condition")
    out["condition_rule"] = re.findall(r"^\s*\* (.+?)\s*$", mhc, re.M)[0]
    out["conditions"] = dict(re.findall(r"^\s*\*\*(.+?):\*\* (.+?)\s*$", mhc, re.M))

    upc = section("user_perspective_category")
    out["perspective_lead"] = re.findall(r"^\s*\* (.+?)\s*$", upc, re.M)[0]
    cats = dict(re.findall(r"^\s*\*\*(.+?):\*\* (.+?)\s*$", upc, re.M))
    out["perspective_other"] = cats.pop("Other")
    out["perspectives"] = {cat: re.findall(r"`([^`]+)`", rest) for cat, rest in cats.items()}

    vals = section("user_value_expressed")
    out["value_leads"] = re.findall(r"^\s*\* (.+?)\s*$", vals, re.M)
    # The stray ideographic comma after the Informed Consent definition is a typo (dropped).
    out["values"] = {n: d.rstrip("、")
                     for n, d in re.findall(r"^\s*\d+\. \*\*(.+?)\*\*: (.+?)\s*$", vals, re.M)}

    out["examples"] = []
    for m in re.finditer(r'\*\*Input:\*\* "(.*?)"\n\n\*\*Output:\*\*\s*\n(.*?)(?=\n---|\Z)',
                         task, re.S):
        raw = m.group(2).strip().replace("{{", "{").replace("}}", "}")
        out["examples"].append({"text": m.group(1), "output": json.loads(raw)})
    return out


@pytest.fixture
def li() -> dict:
    path = need_shared("reference", "li2025_prompt.md")
    return _li(path.parent.parent)


def test_li_reference_parsed_completely(li):
    """Guards the parser: a regression must not pass by finding nothing."""
    assert len(li["include"]) == 4
    assert sum(len(r["examples"]) for r in li["include"]) == 5
    assert len(li["exclude"]) == 6
    assert sum(len(r["examples"]) for r in li["exclude"]) == 3
    assert len(li["quote_guidelines"]) == 3
    assert li["product_examples"] == ["ChatGPT", "Gemini", "Claude", "Med-PaLM"]
    assert list(li["impact"]) == ["positive", "negative", "neutral", "not_applicable"]
    assert len(li["conditions"]) == 11
    terms = [t for k, v in li["conditions"].items() if k not in ("General", "Other")
             for t in v.split(", ")]
    assert len(terms) == 38
    assert list(li["perspectives"]) == ["Support", "Reliance", "Accessibility", "Accuracy",
                                        "Security and Privacy"]
    subcodes = [c for v in li["perspectives"].values() for c in v if not c.startswith("other")]
    assert len(subcodes) == 18
    assert len(li["values"]) == 12
    assert len(li["value_leads"]) == 3
    assert len(li["examples"]) == 4
    assert [len(e["output"]["impacts"]) for e in li["examples"]] == [1, 3, 2, 0]


# The codebook restates Li et al.'s scheme in its own words (see the header of the YAML file).
# The tables below map every item of the original onto the codebook element that carries it, with
# a few words that element must contain so that it says the same thing. A word is matched
# case-insensitively as a substring.

#: original inclusion rule (by its name, which the codebook keeps) -> words of its meaning
LI_INCLUDE = {
    "Causal relationship": ("using the llm", "changes", "mental health"),
    "Instrumental relationship": ("because of", "in order to manage", "condition"),
    "Experiential relationship": ("condition", "shapes", "using the llm"),
    "Evaluative relationship": ("judges or criticises", "mental health topics"),
}
#: original exclusion rule i -> (index of the codebook's exclusion rule, words of its meaning)
LI_EXCLUDE = [
    (0, ("no llm or chatbot",)),
    (1, ("llms and mental health", "unrelated")),
    (2, ("insult", "joke", "figure of speech")),
    (3, ("something unrelated", "condition", "without any tie")),
    (4, ("someone else", "insulting or attacking", "nothing to do with using an llm")),
    (5, ("how the llm behaves", "not the mental health of a person")),
]
#: original quote guideline i -> (index of the codebook's segment rule, words of its meaning)
LI_QUOTE_GUIDELINES = [
    (1, ("copied character for character", "no edits", "every field")),
    (2, ("shorter than 5 words", "rejected")),
    (3, ("only the quote", "not the rest of the post", "each field")),
]
#: the original's instruction to give one record (dictionary) per use case -> segment rule 0
LI_ONE_USE_CASE = (0, ("separate record", "each distinct way"))
#: original llm_impact code -> words of its meaning in the codebook's definition
LI_IMPACT = {
    "positive": ("helps", "support", "advice", "coping"),
    "negative": ("harm", "anxiety", "stress", "addiction", "misinforms"),
    "neutral": ("general terms", "neither clearly good nor clearly bad"),
    "not_applicable": ("no bearing on llms and mental health",),
}
#: original condition group (its heading) -> the codebook's code; "Other" is the `other` option
LI_CONDITION_CODE = {
    "General": "general",
    "Schizophrenia spectrum disorders": "schizophrenia_spectrum",
    "Depressive disorders": "depressive",
    "Idiopathic developmental intellectual disability": "intellectual_disability",
    "Bipolar disorders": "bipolar",
    "Anxiety disorders": "anxiety",
    "Eating disorders": "eating",
    "Autism spectrum disorders": "autism_spectrum",
    "Attention-deficit/hyperactivity disorder": "adhd",
    "Conduct disorders": "conduct",
}
#: original category-level "other (if specified ...)" -> the child code that carries it
LI_PERSPECTIVE_OTHER = {
    "Support": "support_other",
    "Reliance": "reliance_other",
    "Accessibility": "accessibility_other",
    "Accuracy": "accuracy_other",
    "Security and Privacy": "security_privacy_other",
}
#: original VSD value (its name, the codebook's label) -> (code name, words of its meaning)
LI_VALUE = {
    "Human welfare": ("human_welfare", ("people", "body", "mind", "social")),
    "Autonomy": ("autonomy", ("govern themselves", "decisions", "without pressure")),
    "Privacy": ("privacy", ("information", "interacts", "space")),
    "Informed Consent": ("informed_consent", ("every piece of information", "freely")),
    "Trust": ("trust", ("confidence", "person, system or organisation")),
    "Accountability": ("accountability", ("answer for", "give reasons")),
    "Fairness": ("fairness", ("justly", "favouritism", "discrimination", "equal access")),
    "Intellectual property": ("intellectual_property", ("rights", "creative works", "ideas")),
    "Ownership": ("ownership", ("legally possessing", "entitled to decide")),
    "Identity": ("identity", ("person or group", "traits", "beliefs", "appearance")),
    "Calmness": ("calmness", ("peace", "agitation")),
    "Sustainability": ("sustainability", ("keep going", "rate or level", "long term")),
}
# How the original few-shot outputs map onto this codebook's codes.
CONDITION = {"ADHD": "adhd", "anxiety": "anxiety", "none": "none"}
VALUE = {"human welfare": "human_welfare", "fairness": "fairness", "autonomy": "autonomy",
         "none": "none"}


def _says(text: str | None, words: tuple[str, ...], what: str) -> None:
    assert text and text.strip(), f"{what} is missing or empty"
    low = _norm(text).lower()
    missing = [w for w in words if w not in low]
    assert not missing, f"{what} does not say {missing}: {text!r}"


def _has_term(text: str, term: str) -> bool:
    """``term`` as a whole word or phrase in ``text`` (case-sensitive for abbreviations)."""
    flags = 0 if term.isupper() else re.I
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags) is not None


def test_li_structure(li):
    cb = _load("vsd-mental-health")
    assert cb.unit == "segment" and cb.segment.quote_min_words == 5
    assert cb.segment.record_label == "impact"
    assert cb.license == "MIT"  # vsdcoder's licence: the wording is ours; the scheme is cited
    assert "10.1145/3774904.3793025" in cb.citation and "2512.07797" in cb.citation
    assert [d.name for d in cb.dimensions] == [
        "llm_product", "llm_impact", "mental_health_condition", "user_perspective_category",
        "user_value_expressed"]
    # the instructions: both aims of the original, and its caution about unstated facts
    _says(cb.instructions, ("llm", "social media posts", "their own mental health",
                            "mental health conditions", "take nothing as given"), "instructions")


def test_li_relevance_rules_covered(li):
    rel = _load("vsd-mental-health").relevance
    _says(rel.description, ("directly", "at least one"), "relevance.description")
    assert [r.name for r in rel.include] == [r["name"] for r in li["include"]]
    for ours, theirs in zip(rel.include, li["include"], strict=True):
        _says(ours.description, LI_INCLUDE[theirs["name"]], f"include rule {ours.name!r}")
        # new example phrases for the same case, as many as the original gives
        assert len(ours.examples) == len(theirs["examples"]) and all(ours.examples)
        assert not set(ours.examples) & set(theirs["examples"])
    assert len(rel.exclude) == len(li["exclude"]) == len(LI_EXCLUDE)
    for (i, words), theirs in zip(LI_EXCLUDE, li["exclude"], strict=True):
        ours = rel.exclude[i]
        _says(ours.description, words, f"exclude rule {i + 1}")
        assert len(ours.examples) == len(theirs["examples"]) and all(ours.examples)
        assert not set(ours.examples) & set(theirs["examples"])
    # the inline "(e.g., cheating, coding)" of exclusion rule 4 became other purposes
    assert "(for instance" in rel.exclude[3].description


def test_li_quote_guidelines_covered(li):
    seg = _load("vsd-mental-health").segment
    assert len(li["quote_guidelines"]) == len(LI_QUOTE_GUIDELINES)
    for n, (i, words) in enumerate(LI_QUOTE_GUIDELINES):
        _says(seg.rules[i], words, f"segment rule {i} (quote guideline {n + 1})")
    assert re.search(r"\b5 words\b", li["quote_guidelines"][1])  # same minimum as ...
    assert seg.quote_min_words == 5  # ... the one the validator enforces
    i, words = LI_ONE_USE_CASE
    _says(seg.rules[i], words, f"segment rule {i} (one record per use case)")


def test_li_dimensions_covered(li):
    cb = _load("vsd-mental-health")

    product = cb.dimension("llm_product")
    assert product.type == "text" and not product.required
    for name in li["product_examples"]:
        assert f'"{name}"' in product.description
    _says(product.description, ("ai or a chatbot", "null"), "llm_product.description")

    impact = cb.dimension("llm_impact")
    assert impact.type == "single" and impact.codable_names() == list(li["impact"])
    for code in impact.codes:
        _says(code.definition, LI_IMPACT[code.name], f"llm_impact.{code.name}")

    mhc = cb.dimension("mental_health_condition")
    _says(mhc.description, ("real human", "figuratively", "other"), "condition description")
    assert set(LI_CONDITION_CODE) | {"Other"} == set(li["conditions"])
    codes = {c.name: c for c in mhc.codes}
    assert list(codes) == list(LI_CONDITION_CODE.values())
    missing = []
    for label, name in LI_CONDITION_CODE.items():
        code = codes[name]
        assert code.label == label and code.definition
        if label == "General":  # no listed terms: "no specific condition is named"
            _says(code.definition, ("in general", "not name any particular condition"), name)
            continue
        missing += [f"{name}: {t}" for t in li["conditions"][label].split(", ")
                    if not _has_term(code.definition, t)]
    assert not missing, "listed condition terms missing from their code's definition:\n" + (
        "\n".join(missing))
    assert mhc.other is not None and mhc.none is not None
    _says(mhc.other.definition, ("outside", "name"), "mental_health_condition.other")
    _says(mhc.none.definition, ("mental health condition",), "mental_health_condition.none")

    upc = cb.dimension("user_perspective_category")
    assert not upc.required and upc.other is not None
    _says(upc.other.definition, ("short label", "initial code", "inductive thematic analysis"),
          "user_perspective_category.other")
    cats = {c.name: c for c in upc.codes}
    assert list(cats) == list(li["perspectives"]) == list(LI_PERSPECTIVE_OTHER)
    for cat, listed in li["perspectives"].items():
        assert not cats[cat].is_codable
        children = cats[cat].codes
        named = [c for c in listed if not c.startswith("other")]
        assert [c.name for c in children if not c.specify] == named
        assert len(named) + 1 == len(listed)  # exactly one "other (...)" per category
        others = [c for c in children if c.specify]
        assert [c.name for c in others] == [LI_PERSPECTIVE_OTHER[cat]]
        _says(others[0].definition, (cat.lower(), "missing from this list"), others[0].name)
        for c in children:
            assert c.definition and c.definition.startswith(f"{cat}: ")

    val = cb.dimension("user_value_expressed")
    assert val.type == "single" and val.none is not None and val.none.definition
    _says(val.description, ("value-sensitive design", "one value", "12"), "value description")
    assert [c.label for c in val.codes] == list(li["values"]) == list(LI_VALUE)
    for code in val.codes:
        name, words = LI_VALUE[code.label]
        assert code.name == name
        _says(code.definition, words, f"user_value_expressed.{name}")


def test_li_system_message_names_every_element(li):
    """The compiled prompt shows every code, category, group, term, value and rule name."""
    msg = _norm(_compiled("vsd-mental-health").system)
    want = [r["name"] for r in li["include"]]
    want += [f"`{c}`" for c in li["impact"]]
    terms = []
    for label, rest in li["conditions"].items():
        if label in LI_CONDITION_CODE:
            want.append(f"`{LI_CONDITION_CODE[label]}` ({label})")
            if label != "General":
                terms += rest.split(", ")
    for cat, listed in li["perspectives"].items():
        want.append(f"{cat} (a category: use one of its codes)")
        want += [f"`{c}`" for c in listed if not c.startswith("other")]
        want.append(f"`{LI_PERSPECTIVE_OTHER[cat]}`")
    want += [f"({name})" for name in li["values"]]
    want += ["`none`", "`other`"]
    missing = [w for w in want if w not in msg] + [t for t in terms if not _has_term(msg, t)]
    assert not missing, "not in the compiled system message:\n" + "\n".join(missing)


def _li_outputs(impacts: list[dict]) -> list[tuple]:
    """The original's few-shot records as this codebook's codes (the product only as named or
    not: the new posts name other products)."""
    out = []
    for imp in impacts:
        persp = imp["user_perspective_category"]
        m = re.fullmatch(r"other \((.+)\)", persp)
        out.append((imp["llm_product"] not in (None, "null"), imp["llm_impact"],
                    CONDITION[imp["mental_health_condition"]],
                    "other" if m else persp, m.group(1) if m else None,
                    VALUE[imp["user_value_expressed"]]))
    return out


def _our_outputs(records: list[dict]) -> list[tuple]:
    return [(r.get("llm_product") is not None, r["llm_impact"], r["mental_health_condition"],
             r.get("user_perspective_category"), r.get("user_perspective_category_specify"),
             r["user_value_expressed"]) for r in records]


def test_li_few_shot_cases_covered(li):
    """Each original few-shot example has a new post with the same records (same codes)."""
    cb = _load("vsd-mental-health")
    assert len(cb.examples) == len(li["examples"])
    for n, (ours, theirs) in enumerate(zip(cb.examples, li["examples"], strict=True), 1):
        assert _norm(ours.text) != _norm(theirs["text"]), f"example {n} is the original post"
        records = ours.output["records"]
        for rec in records:
            assert rec["quote"] in ours.text  # verbatim in the new post
            assert len(rec["quote"].split()) >= cb.segment.quote_min_words
        assert _our_outputs(records) == _li_outputs(theirs["output"]["impacts"]), (
            f"example {n} does not show the case of the original's example {n}")


# --------------------------------------------------------- no prose of the original is copied

#: Shortest run of consecutive words, shared with the original, that counts as copied prose.
COPY_RUN = 8


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _shared_runs(ours: str, theirs: str, exempt: frozenset[str] = frozenset()) -> list[str]:
    """Maximal runs of >= COPY_RUN consecutive words of ``ours`` that also occur in ``theirs``,
    except runs made only of ``exempt`` words."""
    tw = _words(theirs)
    grams = {tuple(tw[i:i + COPY_RUN]) for i in range(len(tw) - COPY_RUN + 1)}
    ow = _words(ours)
    spans: list[list[int]] = []
    for i in range(len(ow) - COPY_RUN + 1):
        if tuple(ow[i:i + COPY_RUN]) in grams:
            if spans and i <= spans[-1][1]:
                spans[-1][1] = i + COPY_RUN
            else:
                spans.append([i, i + COPY_RUN])
    runs = [ow[a:b] for a, b in spans]
    return [" ".join(r) for r in runs if not set(r) <= exempt]


def _li_third_party_text(md_path: Path) -> str:
    """The third-party text of the reference: its fenced blocks (the prompts and the source's
    licence). The file's own introduction is the team's note with the citation, which the
    codebook must carry."""
    md = md_path.read_text(encoding="utf-8")
    blocks = re.findall(r"^```text\n(.*?)\n```$", md, re.S | re.M)
    assert len(blocks) == 3, "expected SYSTEM_PROMPT, TASK_PROMPT and the licence"
    return "\n".join(blocks)


def _li_exempt_words(cb) -> frozenset[str]:
    """Identifiers, not prose: field names, code names and the products named in examples.

    The few-shot outputs keep the original's codes in the original's field order (that is the
    point of the examples), so a record such as ``llm_product: ChatGPT, llm_impact: positive,
    mental_health_condition: adhd, ...`` repeats 8+ of these tokens in a row. A run made only of
    them is exempt; any other word in a run makes it count."""
    words = {"quote", "null"}
    for d in cb.dimensions:
        words.update(_words(d.name))
        for code in d.all_codes():
            words.update(_words(code.name))
    for ex in cb.examples:
        for rec in ex.output.get("records", []):
            words.update(_words(rec.get("llm_product") or ""))
    return frozenset(words)


def test_li_no_prose_copied():
    """Neither the YAML file nor the compiled prompt shares a run of COPY_RUN+ words with the
    original prompt (or its licence)."""
    theirs = _li_third_party_text(need_shared("reference", "li2025_prompt.md"))
    cb = _load("vsd-mental-health")
    exempt = _li_exempt_words(cb)
    found = {}
    for what, ours in (
            ("plugins/codebooks/vsd-mental-health.yaml",
             (BUNDLED / "vsd-mental-health.yaml").read_text(encoding="utf-8")),
            ("compiled system message", compile_codebook(cb).system)):
        runs = _shared_runs(ours, theirs, exempt)
        if runs:
            found[what] = runs
    assert not found, f"runs of {COPY_RUN}+ words shared with li2025_prompt.md:\n" + "\n".join(
        f"{what}: {run}" for what, runs in found.items() for run in runs)


def test_li_copy_check_finds_copies():
    """Guards the check itself: a copied sentence is found, exempt identifiers are not."""
    theirs = "Alpha beta gamma delta epsilon zeta eta theta iota kappa. Code_a x code_b y z w v u."
    assert _shared_runs("we wrote: alpha, BETA gamma delta epsilon zeta eta theta!", theirs) == [
        "alpha beta gamma delta epsilon zeta eta theta"]
    assert _shared_runs("alpha beta gamma delta epsilon zeta eta", theirs) == []
    ids = frozenset(_words("code_a x code_b y z w v u"))
    assert _shared_runs("code_a x code_b y z w v u", theirs, ids) == []
    assert _shared_runs("code_a x code_b y z w v u", theirs) != []


# ------------------------------------------------------------------- answers are checked

# A sentence of the codebook's first (invented) few-shot post.
LI_TEXT = ("I've got ADHD and late at night I dump every half-formed thought into ChatGPT, the "
           "stuff nobody needs a text about at 1am.")


def _record(quote: str) -> dict:
    return {"records": [{
        "quote": quote, "llm_product": "ChatGPT", "llm_impact": "positive",
        "mental_health_condition": "adhd", "mental_health_condition_specify": None,
        "user_perspective_category": "emotional_support",
        "user_perspective_category_specify": None, "user_value_expressed": "human_welfare"}]}


def _errors(compiled, data, text) -> str:
    with pytest.raises(ValidationError) as info:
        compiled.validate(data, text=text)
    return " ".join(answer_errors(info.value))


def test_li_rejects_short_or_invented_quotes():
    compiled = _compiled("vsd-mental-health")
    compiled.validate(_record("I've got ADHD and late at night"), text=LI_TEXT)
    assert "at least 5 words" in _errors(compiled, _record("I've got ADHD"), LI_TEXT)
    assert "not verbatim" in _errors(
        compiled, _record("I have ADHD so at night I use ChatGPT for my thoughts"), LI_TEXT)


def test_li_rejects_other_without_term_and_categories():
    compiled = _compiled("vsd-mental-health")
    data = _record("I've got ADHD and late at night")
    data["records"][0]["user_perspective_category"] = "support_other"
    assert "user_perspective_category_specify" in _errors(compiled, data, LI_TEXT)
    data["records"][0]["user_perspective_category"] = "Support"
    assert "is a category" in _errors(compiled, data, LI_TEXT)


TIKTOK_TEXT = "an AI can't replace a real therapist"


def test_tiktok_gates():
    compiled = _compiled("tiktok-llm-mh")
    ok = {"personal_use": "no", "attitude": None, "benefits": [], "benefits_specify": None,
          "concerns": [], "concerns_specify": None}
    compiled.validate(ok, text=TIKTOK_TEXT)
    msg = _errors(compiled, {**ok, "attitude": "negative"}, TIKTOK_TEXT)
    assert "'attitude' is only answered when 'personal_use'" in msg
    msg = _errors(compiled, {**ok, "concerns": ["privacy"]}, TIKTOK_TEXT)
    assert "'concerns' is only answered when 'personal_use'" in msg
    # open gate: every tier must be answered
    msg = _errors(compiled, {**ok, "personal_use": "yes"}, TIKTOK_TEXT)
    assert "'attitude' is required" in msg and "'benefits' is required" in msg


CONVABUSE_TEXT = "what is the carbon footprint of a flight to paris"


def test_convabuse_gates_and_scale():
    cb = _load("convabuse")
    sev = cb.dimension("severity")
    assert sev.type == "ordinal"
    assert sev.codable_names() == ["not_abusive", "ambiguous", "mildly_abusive",
                                   "strongly_abusive", "very_strongly_abusive"]
    for d in ("type", "target", "directness"):
        assert cb.dimension(d).when.codes == sev.codable_names()[2:]
    assert cb.dimension("type").type == "multi" and cb.dimension("type").none is not None
    compiled = compile_codebook(cb)
    ok = {"severity": "not_abusive", "type": [], "target": None, "directness": None}
    compiled.validate(ok, text=CONVABUSE_TEXT)
    for field, value in (("type", ["racist"]), ("target", "system"), ("directness", "explicit")):
        msg = _errors(compiled, {**ok, "severity": "ambiguous", field: value}, CONVABUSE_TEXT)
        assert f"'{field}' is only answered when 'severity'" in msg


def test_convabuse_codes_match_dataset_columns():
    """Every code of the codebook corresponds to a label column of the released data."""
    split = need_shared("datasets", "convabuse", "2_splits", "ConvAbuseEMNLPtest.csv")
    header = split.read_text(encoding="utf-8").splitlines()[0].split(",")
    cols = {c.removeprefix("Annotator1_") for c in header if c.startswith("Annotator1_")}
    column = {
        "severity": {"not_abusive": "is_abuse.1", "ambiguous": "is_abuse.0",
                     "mildly_abusive": "is_abuse.-1", "strongly_abusive": "is_abuse.-2",
                     "very_strongly_abusive": "is_abuse.-3"},
        "type": {"ableism": "ableist", "homophobic": "homophobic", "intellectual": "intellectual",
                 "racist": "racist", "sexist": "sexist", "sexual_harassment": "sex_harassment",
                 "transphobic": "transphobic"},
        "target": {"generalised": "target.generalised", "individual": "target.individual",
                   "system": "target.system"},
        "directness": {"explicit": "explicit", "implicit": "implicit"},
    }
    cb = _load("convabuse")
    for dim, mapping in column.items():
        names = [c.name for c in cb.dimension(dim).codes]
        assert names == list(mapping)
        assert set(mapping.values()) <= cols
    assert cols == {v for m in column.values() for v in m.values()}
