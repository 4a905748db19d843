"""The codebooks bundled in plugins/codebooks/: they load strictly, compile deterministically,
are registered, their examples validate, and vsd-mental-health is faithful to Li et al.'s prompt.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
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
def li(shared):
    path = shared / "reference" / "li2025_prompt.md"
    if not path.is_file():
        pytest.fail(f"{path} is missing: this test needs shared/ beside the repository (CI has it)")
    return _li(shared)


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


def test_li_system_message_carries_the_prompt(li):
    compiled = _compiled("vsd-mental-health")
    msg = _norm(compiled.system)
    missing: list[str] = []

    def has(text: str) -> None:
        if _norm(text) not in msg:
            missing.append(text)

    assert compiled.system.startswith(li["system"] + "\n")
    has(li["include_lead"])
    for rule in li["include"]:
        has(f"{rule['name']}: {rule['description']}")
        for ex in rule["examples"]:
            has(f'Example: "{ex}"')
    for rule in li["exclude"]:
        has(rule["description"])
        for ex in rule["examples"]:
            has(f'Example: "{ex}"')
    for g in li["quote_guidelines"]:
        has(g)
    has("one distinct use case")
    for p in li["product_examples"]:
        has(f'"{p}"')
    for code, definition in li["impact"].items():
        has(f"`{code}`: {definition}")
    has(li["condition_rule"])
    for label, rest in li["conditions"].items():
        has(f"({label}): {rest}")  # "- `code` (Label): listed terms / definition"
        for term in rest.split(", "):
            has(term)
    has(li["perspective_lead"])
    for cat, codes in li["perspectives"].items():
        has(f"{cat} (a category: use one of its codes)")
        for c in codes:
            has(f"{cat}: {c}" if c.startswith("other") else f"`{c}`")
    has(li["perspective_other"])
    has(li["value_leads"][0])
    has(li["value_leads"][1])
    has('"none" if no value is implied')
    for name, definition in li["values"].items():
        has(f"({name}): {definition}")
    for ex in li["examples"]:
        has(ex["text"])
    assert not missing, "not in the compiled system message:\n" + "\n".join(missing)


def test_li_structure(li):
    cb = _load("vsd-mental-health")
    assert cb.unit == "segment" and cb.segment.quote_min_words == 5
    assert cb.segment.record_label == "impact"
    assert cb.license == "MIT" and "10.1145/3774904.3793025" in cb.citation
    assert [d.name for d in cb.dimensions] == [
        "llm_product", "llm_impact", "mental_health_condition", "user_perspective_category",
        "user_value_expressed"]
    product = cb.dimension("llm_product")
    assert product.type == "text" and not product.required
    assert cb.dimension("llm_impact").codable_names() == list(li["impact"])

    mhc = cb.dimension("mental_health_condition")
    labels = {c.label: c for c in mhc.codes}
    assert set(labels) | {"Other"} == set(li["conditions"])
    for label, code in labels.items():
        assert _norm(code.definition) == _norm(li["conditions"][label])
    assert mhc.other is not None and mhc.none is not None

    upc = cb.dimension("user_perspective_category")
    assert not upc.required and upc.other is not None
    cats = {c.name: c for c in upc.codes}
    assert list(cats) == list(li["perspectives"])
    for cat, codes in li["perspectives"].items():
        assert not cats[cat].is_codable
        children = cats[cat].codes
        assert [c.name for c in children if not c.specify] == [
            c for c in codes if not c.startswith("other")]
        assert [c.specify for c in children].count(True) == 1

    val = cb.dimension("user_value_expressed")
    assert val.none is not None
    assert {c.label: _norm(c.definition) for c in val.codes} == {
        k: _norm(v) for k, v in li["values"].items()}

    rel = cb.relevance
    assert [(r.name, r.description, r.examples) for r in rel.include] == [
        (r["name"], r["description"], r["examples"]) for r in li["include"]]
    assert [(r.description, r.examples) for r in rel.exclude] == [
        (r["description"], r["examples"]) for r in li["exclude"]]


# How the released few-shot outputs map onto this codebook's codes.
CONDITION = {"ADHD": "adhd", "anxiety": "anxiety", "none": "none"}
VALUE = {"human welfare": "human_welfare", "fairness": "fairness", "autonomy": "autonomy",
         "none": "none"}


def test_li_few_shot_examples_match(li):
    cb = _load("vsd-mental-health")
    assert len(cb.examples) == len(li["examples"])
    for ours, theirs in zip(cb.examples, li["examples"], strict=True):
        assert _norm(ours.text) == _norm(theirs["text"])
        records = ours.output["records"]
        impacts = theirs["output"]["impacts"]
        assert len(records) == len(impacts)
        for rec, imp in zip(records, impacts, strict=True):
            assert rec["quote"] == imp["supporting_quote"]
            assert rec["llm_product"] == imp["llm_product"]
            assert rec["llm_impact"] == imp["llm_impact"]
            assert rec["mental_health_condition"] == CONDITION[imp["mental_health_condition"]]
            assert rec["user_value_expressed"] == VALUE[imp["user_value_expressed"]]
            persp = imp["user_perspective_category"]
            m = re.fullmatch(r"other \((.+)\)", persp)
            if m:
                assert rec["user_perspective_category"] == "other"
                assert rec["user_perspective_category_specify"] == m.group(1)
            else:
                assert rec["user_perspective_category"] == persp


# ------------------------------------------------------------------- answers are checked

LI_TEXT = ("I have ADHD and sometimes I just use ChatGPT to blurt my random thoughts to, stuff I "
           "wanna say that's not worth texting to someone.")


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
    compiled.validate(_record("I have ADHD and sometimes I just use ChatGPT"), text=LI_TEXT)
    assert "at least 5 words" in _errors(compiled, _record("I have ADHD and"), LI_TEXT)
    assert "not verbatim" in _errors(
        compiled, _record("I have ADHD so I always use ChatGPT for my thoughts"), LI_TEXT)


def test_li_rejects_other_without_term_and_categories():
    compiled = _compiled("vsd-mental-health")
    data = _record("I have ADHD and sometimes I just use ChatGPT")
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


def test_convabuse_codes_match_dataset_columns(shared):
    """Every code of the codebook corresponds to a label column of the released data."""
    split = shared / "datasets" / "convabuse" / "2_splits" / "ConvAbuseEMNLPtest.csv"
    if not split.is_file():
        pytest.fail(f"{split} is missing: this test needs shared/ beside the repository "
                    "(CI has it)")
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
