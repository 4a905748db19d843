"""Broken codebooks: every error is reported, at once, as FILE:LINE:COL: path: message.

Each file in ``tests/data/broken/`` states what it expects in header comments:

    # expect: LINE: SUBSTRING          an error on LINE whose text contains SUBSTRING
    # expect-strict: LINE: SUBSTRING   the same, but only with strict=True (a lint warning)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vsdcoder.codebook.load import CodebookError, load_codebook, load_codebook_file, parse_codebook

BROKEN = Path(__file__).parent / "data" / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))
EXPECT = re.compile(r"^# (expect|expect-strict): (\d+): (.+?)\s*$", re.M)
LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")


def expectations(path: Path) -> list[tuple[str, int, str]]:
    head = path.read_bytes().decode("utf-8", errors="replace")
    return [(kind, int(line), text) for kind, line, text in EXPECT.findall(head)]


def vsdcoder_cmd() -> list[str]:
    script = Path(sys.executable).with_name("vsdcoder")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from vsdcoder.cli.main import main; "
                                  "sys.exit(main())"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vsdcoder_cmd(), *args], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ,
                                            "VSDCODER_LOAD_PLUGINS": ""})


def test_corpus_is_large_and_every_case_states_its_expectations():
    assert len(CASES) >= 30
    for path in CASES:
        assert expectations(path), f"{path.name} has no '# expect:' header"
        kinds = {k for k, _, _ in expectations(path)}
        assert len(kinds) == 1, f"{path.name} mixes expect and expect-strict"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_codebook_reports_expected_errors(path: Path):
    exp = expectations(path)
    strict = exp[0][0] == "expect-strict"
    if strict:
        # a lint warning only: the codebook loads without --strict, with that warning
        loaded = load_codebook_file(path)
        warned = [w for w in loaded.warnings if w.severity == "warning"]
        for _, line, text in exp:
            assert any(w.line == line and text in f"{w.path}: {w.message}" for w in warned), (
                line, text, [str(w) for w in warned])
    with pytest.raises(CodebookError) as info:
        load_codebook_file(path, strict=strict)
    problems = info.value.problems
    shown = [str(p) for p in problems]
    for _, line, text in exp:
        hits = [p for p in problems
                if p.line == line and p.severity == "error" and text in str(p)]
        assert hits, f"{path.name}: no error on line {line} containing {text!r}; got:\n" + (
            "\n".join(shown))
    for p in problems:
        s = str(p)
        m = LOCATION.match(s)
        assert m, f"not FILE:LINE:COL: {s}"
        assert m["file"] == str(path)
        assert "Traceback" not in s
        # every message says what to do: it has a suggestion after what is wrong
        assert any(w in p.message for w in (";", " e.g. ", "did you mean", ": ")), s
    # the summary line of the exception counts the errors
    n = sum(p.severity == "error" for p in problems)
    assert str(info.value).endswith(f"{n} error{'s' if n != 1 else ''} in codebook")


def test_all_errors_are_reported_at_once():
    """Independent errors of the schema stage and the whole-codebook stage come together."""
    path = BROKEN / "many_errors.yaml"
    with pytest.raises(CodebookError) as info:
        load_codebook_file(path)
    errors = [p for p in info.value.problems if p.severity == "error"]
    assert len(errors) >= 6
    assert {p.rule for p in errors} >= {"extra_forbidden", "when-unknown", "uncodable-leaf",
                                       "duplicate-code", "set-unknown"}
    # sorted by position in the file
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)


def test_yaml_problems_and_schema_problems_come_together():
    src = ("vsdcoder: 1\nname: a\nname: b\ndimensions:\n  - name: topic\n    type: singel\n"
           "    question: q\n    codes:\n      - name: work\n        definition: d\n"
           "        colour: red\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(src, "cb.yaml")
    got = {(p.line, p.path) for p in info.value.problems if p.severity == "error"}
    assert got == {(3, "name"), (6, "dimensions[0].type"), (11, "dimensions[0].codes[0].colour")}


def test_several_problems_in_one_dimension_are_each_placed_at_their_key():
    src = ("name: x\ndimensions:\n  - name: summary\n    type: text\n    question: q\n"
           "    max_codes: 2\n    other: true\n    codes:\n      - name: a\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(src, "cb.yaml")
    placed = {(p.line, p.path) for p in info.value.problems}
    assert placed == {(6, "dimensions[0].max_codes"), (7, "dimensions[0].other"),
                      (8, "dimensions[0].codes")}


@pytest.mark.parametrize(("src", "want"), [
    # a misspelt type must not make max_codes look misplaced
    ("name: x\ndimensions:\n  - name: a\n    question: q\n    type: mutli\n    max_codes: 2\n"
     "    codes:\n      - {name: b, definition: d}\n      - {name: b, definition: e}\n",
     {(5, "dimensions[0].type"), (9, "dimensions[0].codes[1].name")}),
    # a misspelt unit must not make the segment rules look misplaced
    ("name: x\nunit: segmnet\nsegment: {quote_min_words: 2}\ndimensions:\n  - name: a\n"
     "    question: q\n    codes:\n      - {name: b, definition: d}\n",
     {(2, "unit")}),
])
def test_no_follow_on_errors_from_left_out_values(src, want):
    with pytest.raises(CodebookError) as info:
        parse_codebook(src, "cb.yaml")
    assert {(p.line, p.path) for p in info.value.problems if p.severity == "error"} == want


def test_python_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    src = (f"name: x\ntitle: !!python/object/apply:os.system ['touch {marker}']\n"
           "dimensions:\n  - name: topic\n    question: q\n    codes:\n"
           "      - !!python/object/new:os.system ['touch " + str(marker) + "']\n"
           "      - name: work\n        definition: d\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(src, "cb.yaml")
    assert not marker.exists()
    msgs = [str(p) for p in info.value.problems]
    assert any(":2:8: title: the tag '!!python/object/apply:os.system' is not allowed" in m
               for m in msgs), msgs
    assert any(":7:9: dimensions[0].codes[0]: the tag '!!python/object/new:os.system'" in m
               for m in msgs), msgs


def test_unknown_key_suggestions_come_from_the_keys_allowed_there():
    src = ("name: x\ndimensions:\n  - name: topic\n    questoin: q\n    codes:\n"
           "      - name: work\n        definiton: d\n        dimension: no\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(src, "cb.yaml")
    msgs = {p.path: p.message for p in info.value.problems}
    assert msgs["dimensions[0].questoin"] == "unknown key 'questoin'; did you mean 'question'?"
    assert "did you mean 'definition'?" in msgs["dimensions[0].codes[0].definiton"]
    # 'dimension' is a key of 'when', not of a code: the message lists a code's keys
    assert msgs["dimensions[0].codes[0].dimension"].startswith(
        "'dimension' is not a key of a code; check the indentation, or use one of: codable,")


def test_a_valid_codebook_loads_with_no_problems(root):
    loaded = load_codebook(root / "plugins" / "codebooks" / "sad-stressors.yaml", strict=True)
    assert loaded.codebook.name == "sad-stressors"
    assert loaded.warnings == []
    assert loaded.directory == (root / "plugins" / "codebooks").resolve()


def test_missing_file_and_unknown_name_are_usage_errors(tmp_path):
    from vsdcoder.errors import UsageError

    with pytest.raises(UsageError, match="no such codebook file"):
        load_codebook(tmp_path / "nope.yaml")
    with pytest.raises(UsageError, match=r"registered: .*sad-stressors"):
        load_codebook("no-such-codebook")


# --- the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["many_errors", "yaml_unclosed_quote", "non_utf8",
                                  "python_tag", "example_gate_closed", "empty_file"])
def test_cli_validate_reports_errors_with_exit_2(name):
    path = BROKEN / f"{name}.yaml"
    proc = run_cli("codebook", "validate", str(path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(str(path) + ":")]
    assert errors, out
    for ln in errors:
        assert LOCATION.match(ln), ln
    for kind, line, text in expectations(path):
        assert any(f"{path}:{line}:" in ln and text in ln for ln in errors), (line, text, out)
    assert re.search(r"^\d+ errors? in codebook$", proc.stderr, re.M)


def test_cli_validate_valid_codebook_prints_summary(root):
    proc = run_cli("codebook", "validate", "sad-stressors")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK sad-stressors 1.1.0: unit document, 1 dimension, "
                                  "9 codable codes, 2 examples, 0 warnings")
    assert "prompt sha256:" in proc.stdout


def test_cli_strict_turns_warnings_into_exit_2():
    path = BROKEN / "strict_missing_definition.yaml"
    lax = run_cli("codebook", "validate", str(path))
    assert lax.returncode == 0, lax.stderr
    assert "warning: code 'work' has no definition" in lax.stderr
    assert "[missing-definition]" in lax.stderr
    assert "2 warnings" in lax.stdout
    strict = run_cli("codebook", "validate", "--strict", str(path))
    assert strict.returncode == 2
    assert "Traceback" not in strict.stdout + strict.stderr
    assert f"{path}:10:9: dimensions[0].codes[0]: code 'work' has no definition" in strict.stderr
    assert "2 errors in codebook" in strict.stderr


# --- the documentation's annotated codebook ----------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_annotated_example_validates_strictly():
    loaded = load_codebook(DOCS / "examples" / "annotated.yaml", strict=True)
    cb = loaded.codebook
    assert loaded.warnings == []
    assert {d.type for d in cb.dimensions} == {"single", "multi", "ordinal", "text"}
    assert cb.relevance and cb.examples and cb.sets
    proc = run_cli("codebook", "validate", "--strict", str(DOCS / "examples" / "annotated.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK workplace-stress 1.2.0:")


def test_docs_show_the_annotated_example_verbatim():
    example = (DOCS / "examples" / "annotated.yaml").read_text(encoding="utf-8")
    page = (DOCS / "codebook.md").read_text(encoding="utf-8")
    assert f"```yaml\n{example}```\n" in page


def test_docs_answer_examples_are_valid_answers():
    import json

    from vsdcoder.codebook.compile import compile_codebook

    page = (DOCS / "codebook.md").read_text(encoding="utf-8")
    section = page.split("### `unit: document`", 1)[1]
    answer = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    compiled = compile_codebook(load_codebook(DOCS / "examples" / "annotated.yaml").codebook)
    compiled.validate(answer, text="My manager checks every email I send before it goes out.")


def test_docs_list_every_rule_id():
    import inspect

    from vsdcoder.codebook import checks, load

    page = (DOCS / "codebook.md").read_text(encoding="utf-8")
    source = inspect.getsource(checks) + inspect.getsource(load)
    # rule ids are the last argument of err(...), warn(...) and smap.problem(...)
    rules = set(re.findall(r'"([a-z]+(?:-[a-z]+)+)"\)', source))
    # and every rule the corpus produces is among them
    for path in CASES:
        try:
            load_codebook_file(path, strict=True)
        except CodebookError as exc:
            seen = {p.rule for p in exc.problems if "-" in p.rule}
            assert seen <= rules, (path.name, seen - rules)
    assert {"missing-definition", "duplicate-definition", "when-unknown", "bad-example",
            "unknown-template"} <= rules
    for rule in rules:
        assert f"`{rule}`" in page, rule


def test_anchors_aliases_and_merge_keys_work():
    src = ("name: x\nshared: &def {definition: Shared wording.}\n"
           "dimensions:\n  - name: a\n    question: q\n    codes:\n"
           "      - {<<: *def, name: b}\n      - name: c\n        <<: *def\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(src, "cb.yaml")
    # 'shared' is not a key of a codebook, and the merged definitions are duplicates
    got = {(p.path, p.severity, p.rule) for p in info.value.problems}
    assert got == {("shared", "error", "extra_forbidden"),
                   ("dimensions[0].codes[1].definition", "warning", "duplicate-definition")}
    src = src.replace("shared: &def {definition: Shared wording.}\n", "")
    src = src.replace("<<: *def", "definition: Own wording")
    loaded = parse_codebook(src.replace("Own wording", "B", 1), "cb.yaml", strict=True)
    assert [c.definition for c in loaded.codebook.dimensions[0].codes] == ["B", "Own wording"]
