"""Compiling codebooks: response model shapes, determinism, templates, sandbox, validators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from vsdcoder.codebook.compile import (
    TEXT_PLACEHOLDER,
    CompiledCodebook,
    answer_errors,
    compile_codebook,
    sha256_json,
)
from vsdcoder.codebook.load import load_codebook_file, parse_codebook
from vsdcoder.errors import UsageError

DOCUMENT = """\
vsdcoder: 1
name: full-document
version: 2.0.0
title: Every dimension type
relevance:
  include: [The writer describes something that stresses them.]
  exclude: [The text is an advertisement.]
evidence: {quote: true, quote_min_words: 3, rationale: true}
dimensions:
  - name: stressor
    question: What is the main source of stress?
    other: true
    codes:
      - name: work
        definition: Paid work.
      - name: study
        definition: Education.
        codes:
          - {name: exams, definition: Exams and tests.}
          - {name: homework, definition: Homework and assignments.}
  - name: severity
    type: ordinal
    question: How severe is the stress?
    codes:
      - {name: low, definition: Mild.}
      - {name: medium, definition: Moderate.}
      - {name: high, definition: Severe.}
  - name: feelings
    type: multi
    question: Which feelings does the writer name?
    max_codes: 2
    none: true
    codes:
      - {name: anxious, definition: Anxiety or worry.}
      - {name: sad, definition: Sadness.}
      - {name: angry, definition: Anger.}
  - name: workload
    question: Is the amount of work named as the problem?
    when: {dimension: stressor, codes: [work]}
    codes:
      - {name: named, definition: The amount of work is named.}
      - {name: not_named, definition: Something else about work.}
  - name: summary
    type: text
    question: Summarise the stressor in a few words.
    required: false
examples:
  - text: "My boss gives me too much work and I am anxious."
    output:
      quote: "My boss gives me too much work"
      stressor: work
      severity: medium
      feelings: [anxious]
      workload: named
      summary: Too much work.
"""

SEGMENT = """\
vsdcoder: 1
name: full-segment
unit: segment
segment:
  quote_min_words: 3
  max_records: 2
  record_label: stressor
  rules: [One record per distinct stressor.]
dimensions:
  - name: stressor
    question: What is the source of stress?
    codes:
      - {name: work, definition: Paid work.}
      - {name: school, definition: Classes and exams.}
  - name: intensity
    type: ordinal
    question: How intense?
    required: false
    codes:
      - {name: low, definition: Mild.}
      - {name: high, definition: Severe.}
examples:
  - text: "My boss yells at me and my exams are next week."
    output:
      records:
        - {quote: "My boss yells at me", stressor: work}
        - {quote: "my exams are next week", stressor: school, intensity: high}
"""

NO_RELEVANCE = DOCUMENT.replace(
    "relevance:\n  include: [The writer describes something that stresses them.]\n"
    "  exclude: [The text is an advertisement.]\n", "")
assert NO_RELEVANCE != DOCUMENT

TEXT = "My boss gives me too much work and I am anxious."
GOOD = {
    "relevant": True, "quote": "My boss gives me too much work", "rationale": None,
    "stressor": "work", "stressor_specify": None, "severity": "low",
    "feelings": ["anxious"], "workload": "named", "summary": None,
}


def load(tmp_path: Path, source: str, name: str = "cb.yaml"):
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return load_codebook_file(path, strict=True)


@pytest.fixture
def doc(tmp_path) -> CompiledCodebook:
    loaded = load(tmp_path, DOCUMENT)
    return compile_codebook(loaded.codebook, search=[loaded.directory])


@pytest.fixture
def seg(tmp_path) -> CompiledCodebook:
    loaded = load(tmp_path, SEGMENT)
    return compile_codebook(loaded.codebook, search=[loaded.directory])


def errors_of(compiled: CompiledCodebook, data, text: str | None = TEXT) -> list[str]:
    with pytest.raises(ValidationError) as info:
        compiled.validate(data, text=text)
    return answer_errors(info.value)


def nonnull(prop: dict) -> dict:
    """The non-null branch of a nullable property."""
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    assert len(options) == 1
    return options[0]


def is_nullable(prop: dict) -> bool:
    return any(o.get("type") == "null" for o in prop.get("anyOf", []))


# --- response model shapes ---------------------------------------------------------------


def test_document_schema_fields_in_order(doc):
    schema = doc.schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == [
        "relevant", "quote", "rationale", "stressor", "stressor_specify", "severity",
        "feelings", "workload", "summary"]
    assert schema["required"] == list(schema["properties"])


def test_relevance_gate_field(doc):
    assert doc.schema["properties"]["relevant"]["type"] == "boolean"


def test_single_is_a_literal_enum_of_codable_codes(doc):
    prop = doc.schema["properties"]["stressor"]
    # the category 'study' is not codable; its codes and the 'other' option are
    assert nonnull(prop) == {"enum": ["work", "exams", "homework", "other"], "type": "string"}


def test_ordinal_keeps_the_codebook_order(doc):
    prop = doc.schema["properties"]["severity"]
    assert nonnull(prop)["enum"] == ["low", "medium", "high"]
    assert "low < medium < high" in prop["description"]


def test_multi_is_an_array_of_unique_codes(doc):
    arr = nonnull(doc.schema["properties"]["feelings"])
    assert arr["type"] == "array"
    assert arr["uniqueItems"] is True
    assert arr["maxItems"] == 2
    assert arr["items"] == {"enum": ["anxious", "sad", "angry", "none"], "type": "string"}


def test_text_is_a_string(doc):
    assert nonnull(doc.schema["properties"]["summary"]) == {"type": "string"}


def test_gated_dimension_is_nullable_and_says_when(doc):
    prop = doc.schema["properties"]["workload"]
    assert is_nullable(prop)
    assert "Only answered when stressor is one of work" in prop["description"]


def test_specify_field_for_other(doc):
    prop = doc.schema["properties"]["stressor_specify"]
    assert nonnull(prop) == {"type": "string"}
    assert is_nullable(prop)


def test_required_dimension_without_gates_is_not_nullable(tmp_path):
    src = NO_RELEVANCE
    loaded = load(tmp_path, src)
    schema = compile_codebook(loaded.codebook).schema
    assert "relevant" not in schema["properties"]
    assert schema["properties"]["stressor"] == {
        "description": "What is the main source of stress?",
        "enum": ["work", "exams", "homework", "other"], "title": "Stressor", "type": "string"}
    assert not is_nullable(schema["properties"]["feelings"])
    assert is_nullable(schema["properties"]["workload"])  # gated
    assert is_nullable(schema["properties"]["summary"])  # required: false


def test_segment_schema_is_records_with_quote(seg):
    schema = seg.schema
    assert list(schema["properties"]) == ["records"]
    records = schema["properties"]["records"]
    assert records["type"] == "array"
    assert records["maxItems"] == 2
    ref = records["items"]["$ref"].rsplit("/", 1)[-1]
    record = schema["$defs"][ref]
    assert list(record["properties"]) == ["quote", "stressor", "intensity"]
    assert record["properties"]["quote"]["type"] == "string"
    assert "at least 3 words" in record["properties"]["quote"]["description"]
    assert record["additionalProperties"] is False
    assert nonnull(record["properties"]["intensity"])["enum"] == ["low", "high"]


def test_the_answer_model_accepts_a_good_answer(doc):
    obj = doc.validate(GOOD, text=TEXT)
    assert obj.model_dump() == GOOD
    # a JSON string works too, and a multi-code null reads as []
    obj = doc.validate(json.dumps({**GOOD, "relevant": False, "quote": None, "stressor": None,
                                   "severity": None, "feelings": None, "workload": None}),
                       text=TEXT)
    assert obj.model_dump()["feelings"] == []


def test_single_element_list_is_accepted_for_single_choice(doc):
    assert doc.validate({**GOOD, "stressor": ["work"]}, text=TEXT).stressor == "work"


# --- validator messages ------------------------------------------------------------------


def test_unknown_code_with_did_you_mean(doc):
    (msg,) = errors_of(doc, {**GOOD, "stressor": "wrok"})
    assert msg == ("stressor: unknown code 'wrok' for 'stressor' (did you mean 'work'?); "
                   "choose one of: 'work', 'exams', 'homework', 'other'")


def test_code_names_are_case_sensitive(doc):
    (msg,) = errors_of(doc, {**GOOD, "stressor": "Work"})
    assert "did you mean 'work'? names are case-sensitive" in msg


def test_category_instead_of_code(doc):
    (msg,) = errors_of(doc, {**GOOD, "stressor": "study"})
    assert ("'study' is a category of 'stressor', not a code; choose one of its codes: "
            "'exams', 'homework'") in msg


def test_two_codes_in_single_choice(doc):
    (msg,) = errors_of(doc, {**GOOD, "stressor": ["work", "exams"]})
    assert "'stressor' is single-choice and takes exactly one code, got 2" in msg
    assert "choose the one that fits best" in msg


def test_duplicate_code_in_multi(doc):
    assert errors_of(doc, {**GOOD, "feelings": ["sad", "sad"]}) == [
        "'feelings' lists 'sad' twice; list each code once"]


def test_none_combined_with_others(doc):
    (msg,) = errors_of(doc, {**GOOD, "feelings": ["none", "sad"]})
    assert "'none' means no code applies and cannot be combined with other codes" in msg


def test_max_codes(doc):
    (msg,) = errors_of(doc, {**GOOD, "feelings": ["sad", "angry", "anxious"]})
    assert msg == "'feelings' takes at most 2 codes, got 3; keep the ones that fit best"


def test_unknown_code_in_multi(doc):
    (msg,) = errors_of(doc, {**GOOD, "feelings": ["sad", "anxios"]})
    assert msg.startswith("feelings: unknown code 'anxios' for 'feelings' (did you mean "
                          "'anxious'?)")


def test_gated_dimension_answered_while_closed(doc):
    (msg,) = errors_of(doc, {**GOOD, "stressor": "exams"})
    assert msg == ("'workload' is only answered when 'stressor' is one of 'work'; 'stressor' "
                   "is \"exams\", so set 'workload' to null")
    # null while closed is fine
    doc.validate({**GOOD, "stressor": "exams", "workload": None}, text=TEXT)


def test_gated_dimension_required_when_open(doc):
    (msg,) = errors_of(doc, {**GOOD, "workload": None})
    assert msg == "'workload' is required: choose one of: 'named', 'not_named'"


def test_required_missing(doc):
    msgs = errors_of(doc, {**GOOD, "severity": None, "feelings": []})
    assert msgs == [
        "'severity' is required: choose one of: 'low', 'medium', 'high'",
        "'feelings' is required: choose at least one of: 'anxious', 'sad', 'angry' "
        "(or 'none' if none applies)",
    ]


def test_required_null_without_gates_gets_a_codebook_message(tmp_path):
    src = NO_RELEVANCE
    loaded = load(tmp_path, src)
    compiled = compile_codebook(loaded.codebook)
    good = {k: v for k, v in GOOD.items() if k != "relevant"}
    msgs = errors_of(compiled, {**good, "severity": None})
    assert msgs == ["severity: 'severity' is required: choose one of: 'low', 'medium', 'high'"]


def test_missing_field(doc):
    msgs = errors_of(doc, {k: v for k, v in GOOD.items() if k != "summary"})
    assert msgs == ["summary: 'summary' is missing; every field of the schema must be present"]


def test_unknown_field(doc):
    msgs = errors_of(doc, {**GOOD, "topic": "work"})
    assert msgs == ["topic: 'topic' is not a field of the answer; remove it"]


def test_specify_missing(doc):
    msgs = errors_of(doc, {**GOOD, "stressor": "other", "workload": None})
    assert msgs == ["'stressor' is 'other': name it in 'stressor_specify' with a short term"]
    ok = doc.validate({**GOOD, "stressor": "other", "workload": None,
                       "stressor_specify": "traffic"}, text=TEXT)
    assert ok.stressor_specify == "traffic"


def test_specify_present_when_not_allowed(doc):
    msgs = errors_of(doc, {**GOOD, "stressor_specify": "traffic"})
    assert msgs == ["'stressor_specify' is only filled when 'stressor' is one of 'other'; "
                    "set it to null"]


def test_not_relevant_with_codes(doc):
    (msg,) = errors_of(doc, {**GOOD, "relevant": False})
    assert msg.startswith("the text is marked not relevant, so it gets no codes: set "
                          "'stressor', 'severity', 'feelings', 'workload' to null")
    assert "or set 'relevant' to true" in msg


def test_quote_too_short(doc):
    msgs = errors_of(doc, {**GOOD, "quote": "My boss"})
    assert msgs == ["the quote has 2 words; it must be at least 3 words copied verbatim from "
                    "the text: quote a longer passage"]


def test_quote_not_verbatim_only_checked_with_text(doc):
    bad = {**GOOD, "quote": "My manager gives me too much work"}
    (msg,) = errors_of(doc, bad)
    assert msg.startswith("the quote is not verbatim: 'My manager gives me too much work' "
                          "does not occur in the text; copy it exactly")
    doc.validate(bad)  # no text: only the length is checked


def test_quote_verbatim_after_normalisation(doc):
    text = "My boss \u201cgives\u201d me\u00a0too   much work."
    doc.validate({**GOOD, "quote": 'My boss "gives" me too much work'}, text=text)


def test_missing_quote(doc):
    assert errors_of(doc, {**GOOD, "quote": None}) == [
        "'quote' is required: copy a passage from the text word for word"]


def test_several_errors_are_reported_together(doc):
    msgs = errors_of(doc, {**GOOD, "stressor": "exams", "severity": None,
                           "feelings": ["none", "sad"], "quote": "x"})
    assert len(msgs) == 5
    assert any(m.startswith("the quote is not verbatim: 'x'") for m in msgs)
    assert any(m.startswith("'severity' is required") for m in msgs)
    assert any(m.startswith("'feelings': 'none' means") for m in msgs)
    assert any(m.startswith("'workload' is only answered") for m in msgs)
    assert any(m.startswith("the quote has 1 word;") for m in msgs)


def test_the_exception_text_carries_every_message(doc):
    with pytest.raises(ValidationError) as info:
        doc.validate({**GOOD, "severity": None, "feelings": []}, text=TEXT)
    text = str(info.value)
    assert "(1) 'severity' is required" in text
    assert "(2) 'feelings' is required" in text


def test_invalid_json_and_wrong_types(doc):
    assert errors_of(doc, '{"relevant": tru')[0].startswith("the answer is not valid JSON")
    assert errors_of(doc, [1, 2]) == [
        "the answer must be one JSON object with the fields of the schema"]
    assert errors_of(doc, {**GOOD, "relevant": "maybe"}) == [
        "relevant: 'relevant' must be true or false"]


SEG_TEXT = "My boss yells at me and my exams are next week."
SEG_GOOD = {"records": [{"quote": "My boss yells at me", "stressor": "work", "intensity": None},
                        {"quote": "my exams are next week", "stressor": "school",
                         "intensity": "high"}]}


def test_segment_good_answer(seg):
    obj = seg.validate(SEG_GOOD, text=SEG_TEXT)
    assert [r.stressor for r in obj.records] == ["work", "school"]
    assert seg.validate({"records": []}, text=SEG_TEXT).records == []


def test_segment_record_errors(seg):
    bad = {"records": [
        {"quote": "My boss", "stressor": "work", "intensity": None},
        {"quote": "my tests are next week", "stressor": "school", "intensity": None},
        {"quote": "My boss yells at me", "stressor": "job", "intensity": None},
    ]}
    msgs = errors_of(seg, bad, text=SEG_TEXT)
    assert ("records.0: the quote has 2 words; it must be at least 3 words copied verbatim "
            "from the text: quote a longer passage") in msgs
    assert any(m.startswith("records.1: the quote is not verbatim") for m in msgs)
    assert any(m.startswith("records.2.stressor: unknown code 'job' for 'stressor'")
               for m in msgs)


def test_segment_record_missing_quote_and_max_records(seg):
    msgs = errors_of(seg, {"records": [{"stressor": "work", "intensity": None}]},
                     text=SEG_TEXT)
    assert msgs == ["records.0.quote: 'quote' is missing; every field of the schema must be "
                    "present"]
    three = {"records": [SEG_GOOD["records"][0]] * 3}
    assert errors_of(seg, three, text=SEG_TEXT) == [
        "give at most 2 stressors, got 3; keep the ones the text supports best"]


def test_lenient_quotes_context_skips_quote_checks(doc):
    bad = {**GOOD, "quote": "not in the text at all"}
    obj = doc.response_model.model_validate(bad, context={"text": TEXT, "quotes": "lenient"})
    assert obj.quote == "not in the text at all"


# --- messages, examples, templates -------------------------------------------------------


def test_messages_have_system_and_user_with_placeholder(doc):
    msgs = doc.messages()
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert TEXT_PLACEHOLDER in msgs[1]["content"]
    assert TEXT_PLACEHOLDER not in msgs[0]["content"]
    unit = doc.messages("Some text.", context="Earlier post.")
    assert unit[0] == msgs[0]  # the system message is the same for every unit
    assert "Some text." in unit[1]["content"]
    assert "Earlier post." in unit[1]["content"]


def test_system_message_has_codebook_and_few_shot_examples(doc):
    system = doc.system
    for piece in ("## `stressor`", "- `work`: Paid work.",
                  "study (a category: use one of its codes)", "`stressor_specify`",
                  "Only answer `workload` when `stressor` is `work`",
                  "ordered scale, from low to high", "(at most 2)",
                  "Code the text ONLY if one of these is true",
                  "# Examples", 'Text: """My boss gives me too much work and I am anxious."""'):
        assert piece in system, piece
    example = json.loads(system.split("Output:\n", 1)[1])
    assert example == {**GOOD, "severity": "medium", "summary": "Too much work."}


def test_segment_messages(seg):
    system = seg.system
    assert "extract every distinct stressor" in system
    assert "- One record per distinct stressor." in system
    assert "Give at most 2." in system
    assert '"records": [' in system


def test_codebook_names_its_own_template_next_to_it(tmp_path):
    (tmp_path / "mine.v1.system.jinja").write_text(
        "Codebook {{ codebook.name }} {{ codebook.version }} ({{ unit }})\n"
        "{% for d in dimensions %}{{ d.name }}={{ d.codable | join('|') }}\n{% endfor %}"
        "{{ examples | length }} example(s)\n", encoding="utf-8")
    (tmp_path / "mine.v1.user.jinja").write_text("TEXT: {{ text }}", encoding="utf-8")
    loaded = load(tmp_path, DOCUMENT.replace("name: full-document\n",
                                             "name: full-document\ntemplate: mine.v1\n"))
    compiled = compile_codebook(loaded.codebook, search=[loaded.directory])
    assert compiled.template == "mine.v1"
    assert compiled.system.startswith("Codebook full-document 2.0.0 (document)\n"
                                      "stressor=work|exams|homework|other\n")
    assert compiled.messages("hello")[1]["content"] == "TEXT: hello"
    assert compiled.template_paths[0] == str(tmp_path / "mine.v1.system.jinja")
    # without the search folder the template cannot be found
    with pytest.raises(UsageError, match=r"template .mine\.v1. not found"):
        compile_codebook(loaded.codebook)


EVIL_TEMPLATES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ self.__init__.__globals__ }}",
    "{% for d in dimensions %}{{ d.__class__ }}{% endfor %}",
]


@pytest.mark.parametrize("source", EVIL_TEMPLATES)
def test_templates_are_sandboxed(tmp_path, source):
    marker = tmp_path / "MARKER"
    (tmp_path / "evil.v1.system.jinja").write_text(source.replace("MARKER", str(marker)),
                                                   encoding="utf-8")
    (tmp_path / "evil.v1.user.jinja").write_text("{{ text }}", encoding="utf-8")
    loaded = load(tmp_path, DOCUMENT.replace("name: full-document\n",
                                             "name: full-document\ntemplate: evil.v1\n"))
    with pytest.raises(UsageError) as info:
        compile_codebook(loaded.codebook, search=[loaded.directory])
    assert "evil.v1.system.jinja" in str(info.value)
    assert "sandbox" in str(info.value) or "unknown variable" in str(info.value)
    assert not marker.exists()


def test_template_errors_are_usage_errors(tmp_path):
    (tmp_path / "bad.v1.system.jinja").write_text("line one\n{% if %}\n", encoding="utf-8")
    (tmp_path / "bad.v1.user.jinja").write_text("{{ text }}", encoding="utf-8")
    (tmp_path / "rand.v1.system.jinja").write_text("{{ lipsum() }}", encoding="utf-8")
    (tmp_path / "rand.v1.user.jinja").write_text("{{ text }}", encoding="utf-8")
    bad = load(tmp_path, DOCUMENT.replace("name: full-document\n",
                                          "name: full-document\ntemplate: bad.v1\n"))
    with pytest.raises(UsageError, match=r"bad.v1.system.jinja:2: template syntax error"):
        compile_codebook(bad.codebook, search=[bad.directory])
    rand = load(tmp_path, DOCUMENT.replace("name: full-document\n",
                                           "name: full-document\ntemplate: rand.v1\n"))
    # lipsum() would make the prompt random: it is not available
    with pytest.raises(UsageError, match="unknown variable"):
        compile_codebook(rand.codebook, search=[rand.directory])


# --- determinism and hashes --------------------------------------------------------------


def test_compiling_twice_is_byte_identical(tmp_path):
    loaded = load(tmp_path, DOCUMENT)
    a = compile_codebook(loaded.codebook)
    b = compile_codebook(load(tmp_path, DOCUMENT, "again.yaml").codebook)
    assert json.dumps(a.to_json()) == json.dumps(b.to_json())
    assert a.hash == b.hash and a.schema_hash == b.schema_hash
    assert a.prompt_hash == b.prompt_hash and a.codebook_hash == b.codebook_hash


def test_hashes_are_sha256_of_canonical_json(doc):
    assert doc.prompt_hash == sha256_json(doc.messages())
    assert doc.schema_hash == sha256_json(doc.schema)
    assert doc.hash == sha256_json({"messages": doc.messages(), "schema": doc.schema})
    assert doc.codebook_hash == sha256_json(doc.codebook.model_dump(mode="json"))
    for h in (doc.hash, doc.prompt_hash, doc.schema_hash, doc.codebook_hash):
        assert h.startswith("sha256:") and len(h) == 7 + 64


def test_comments_and_formatting_do_not_change_hashes(tmp_path):
    a = compile_codebook(load(tmp_path, DOCUMENT).codebook)
    reformatted = "# a comment\n" + DOCUMENT.replace("version: 2.0.0", "version: '2.0.0'  # v")
    b = compile_codebook(load(tmp_path, reformatted, "b.yaml").codebook)
    assert a.to_json() == b.to_json()


def test_a_definition_change_changes_the_hashes(tmp_path):
    a = compile_codebook(load(tmp_path, DOCUMENT).codebook)
    b = compile_codebook(load(tmp_path, DOCUMENT.replace("Paid work.", "Paid employment."),
                              "b.yaml").codebook)
    assert a.codebook_hash != b.codebook_hash
    assert a.prompt_hash != b.prompt_hash
    assert a.schema_hash == b.schema_hash


SNAPSHOT = textwrap.dedent("""\
    import json, sys
    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.codebook.load import load_codebook_file
    loaded = load_codebook_file(sys.argv[1])
    sys.stdout.write(json.dumps(compile_codebook(loaded.codebook).to_json(), indent=1,
                                ensure_ascii=False))
""")


def test_compiling_in_two_processes_is_byte_identical(tmp_path):
    path = tmp_path / "cb.yaml"
    path.write_text(DOCUMENT, encoding="utf-8")
    outs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "VSDCODER_LOAD_PLUGINS": ""}
        proc = subprocess.run([sys.executable, "-c", SNAPSHOT, str(path)], capture_output=True,
                              env=env, timeout=120, check=True)
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    data = json.loads(outs[0])
    assert data["hash"] == sha256_json({"messages": data["messages"], "schema": data["schema"]})


def test_show_json_output_shape(tmp_path):
    path = tmp_path / "cb.yaml"
    path.write_text(SEGMENT, encoding="utf-8")
    script = Path(sys.executable).with_name("vsdcoder")
    cmd = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from vsdcoder.cli.main import main; sys.exit(main())"]
    proc = subprocess.run([*cmd, "codebook", "show", "--json", str(path)], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "VSDCODER_LOAD_PLUGINS": ""})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"name", "version", "hash", "messages", "schema"} <= set(data)
    assert data["name"] == "full-segment" and data["version"] == "0.1.0"
    assert [m["role"] for m in data["messages"]] == ["system", "user"]
    assert all(set(m) == {"role", "content"} for m in data["messages"])
    assert "{text}" in data["messages"][1]["content"]
    compiled = compile_codebook(load_codebook_file(path).codebook)
    assert data["schema"] == compiled.schema
    assert data["messages"] == compiled.messages()
    assert data["hash"] == compiled.hash


def test_parse_codebook_from_a_string():
    loaded = parse_codebook(SEGMENT, "<string>")
    assert loaded.directory is None
    assert compile_codebook(loaded.codebook).codebook.name == "full-segment"


# --- the documented template variables ---------------------------------------------------

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "codebook.md"


def _braced(page: str, lead: str) -> set[str]:
    after = " ".join(page.split(lead, 1)[1].split("`{", 1)[1].split("}`", 1)[0].split())
    return {k.strip() for k in after.split(",")}


def test_documented_template_variables_are_the_real_ones(doc):
    from vsdcoder.codebook.compile import template_context

    page = DOCS_PAGE.read_text(encoding="utf-8")
    table = page.split("### Variables of the system template", 1)[1].split("\nA dimension", 1)[0]
    documented = set(re_findall(r"^\| `([a-z_]+)` \|", table))
    ctx = template_context(doc.codebook)
    assert documented == set(ctx)
    assert _braced(page, "A dimension is ") == set(ctx["dimensions"][0])
    assert _braced(page, "A code is ") == set(ctx["dimensions"][0]["codes"][0])
    assert _braced(page, "| `codebook` | ") == set(ctx["codebook"])
    user = page.split("### Variables of the user template", 1)[1].split("\n## ", 1)[0]
    assert set(re_findall(r"^\| `([a-z_]+)` \|", user)) == {"text", "context"}


def re_findall(pattern: str, text: str) -> list[str]:
    import re

    return re.findall(pattern, text, re.M)
