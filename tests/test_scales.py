"""Shared ordinal scales: ``scales:`` declared once, ``scale: NAME`` in ordinal dimensions.

Repeated level names across ordinal dimensions are not a lint finding, ``--strict`` passes,
and every bad input is an error with file:line:col, the field and what to do (exit 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsdcoder.codebook.compile import compile_codebook
from vsdcoder.codebook.load import CodebookError, load_codebook_file, parse_codebook
from vsdcoder.codebook.model import Codebook

DOCS = Path(__file__).resolve().parent.parent / "docs"

SHARED = """\
vsdcoder: 1
name: mechanisms
scales:
  intensity:
    - {name: none, label: None, definition: The reply does not show it.}
    - {name: weak, label: Weak, definition: It is there but brief.}
    - {name: strong, label: Strong, definition: It carries the reply.}
dimensions:
  - name: validation
    question: How strongly does the reply validate feelings?
    type: ordinal
    scale: intensity
  - name: advice
    question: How strongly does the reply give advice?
    type: ordinal
    scale: intensity
    levels:
      weak: One suggestion, without detail.
      strong: {examples: {positive: ["Call this number, they can help."]}}
  - name: disclosure
    question: How strongly does the replier share their own experience?
    type: ordinal
    scale: intensity
"""

WRITTEN_OUT = """\
vsdcoder: 1
name: mechanisms
dimensions:
  - name: validation
    question: How strongly does the reply validate feelings?
    type: ordinal
    codes:
      - {name: none, label: None, definition: The reply does not show it.}
      - {name: weak, label: Weak, definition: It is there but brief.}
      - {name: strong, label: Strong, definition: It carries the reply.}
  - name: advice
    question: How strongly does the reply give advice?
    type: ordinal
    codes:
      - {name: none, label: None, definition: The reply does not show it.}
      - {name: weak, label: Weak, definition: "One suggestion, without detail."}
      - name: strong
        label: Strong
        definition: It carries the reply.
        examples: {positive: ["Call this number, they can help."]}
  - name: disclosure
    question: How strongly does the replier share their own experience?
    type: ordinal
    codes:
      - {name: none, label: None, definition: The reply does not show it.}
      - {name: weak, label: Weak, definition: It is there but brief.}
      - {name: strong, label: Strong, definition: It carries the reply.}
"""


def vsdcoder_cmd() -> list[str]:
    script = Path(sys.executable).with_name("vsdcoder")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from vsdcoder.cli.main import main; "
                                  "sys.exit(main())"]


def validate_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vsdcoder_cmd(), "codebook", "validate", *args, str(path)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "VSDCODER_LOAD_PLUGINS": ""})


def write(tmp_path: Path, text: str, name: str = "cb.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def errors_of(text: str, strict: bool = False) -> list:
    with pytest.raises(CodebookError) as info:
        parse_codebook(text, "cb.yaml", strict=strict)
    return [p for p in info.value.problems if p.severity == "error"]


# --- resolution ------------------------------------------------------------------------------


def test_scale_levels_become_the_codes_with_the_dimensions_own_wording():
    cb = parse_codebook(SHARED, "cb.yaml", strict=True).codebook
    validation, advice, disclosure = cb.dimensions
    assert [c.name for c in validation.codes] == ["none", "weak", "strong"]
    assert validation.codable_names() == disclosure.codable_names() == ["none", "weak", "strong"]
    weak = advice.codes[1]
    assert weak.definition == "One suggestion, without detail." and weak.label == "Weak"
    strong = advice.codes[2]  # a mapping replaces only the keys it gives
    assert strong.definition == "It carries the reply."
    assert strong.examples.positive == ["Call this number, they can help."]
    assert validation.codes[1].definition == "It is there but brief."  # others unchanged


def test_a_shared_scale_compiles_like_the_codes_written_out():
    shared = compile_codebook(parse_codebook(SHARED, "cb.yaml").codebook)
    written = compile_codebook(parse_codebook(WRITTEN_OUT, "cb.yaml").codebook)
    assert shared.messages() == written.messages()
    assert shared.schema == written.schema
    assert shared.prompt_hash == written.prompt_hash
    # the codebook hash counts the scale as written, not the codes it gives
    assert shared.codebook_hash != written.codebook_hash
    dumped = shared.codebook.model_dump(mode="json")
    assert "codes" not in dumped["dimensions"][0]
    assert dumped["dimensions"][0]["scale"] == "intensity"
    assert dumped["dimensions"][1]["levels"] == {
        "weak": {"definition": "One suggestion, without detail."},
        "strong": {"examples": {"positive": ["Call this number, they can help."],
                                "negative": []}}}
    # a dump reads back as the same codebook
    again = Codebook.model_validate(json.loads(json.dumps(dumped)))
    assert again.dimensions[1].codes == shared.codebook.dimensions[1].codes


def test_levels_written_as_plain_names():
    text = SHARED.replace(
        """    - {name: none, label: None, definition: The reply does not show it.}
    - {name: weak, label: Weak, definition: It is there but brief.}
    - {name: strong, label: Strong, definition: It carries the reply.}
""", "    [none, weak, strong]\n").replace("  intensity:\n    [", "  intensity: [")
    cb = parse_codebook(text, "cb.yaml").codebook
    assert cb.scales["intensity"][0].name == "none"
    assert [c.name for c in cb.dimensions[0].codes] == ["none", "weak", "strong"]


def test_codebooks_without_the_new_keys_dump_as_before():
    cb = parse_codebook(WRITTEN_OUT, "cb.yaml").codebook
    dumped = cb.model_dump(mode="json")
    assert "scales" not in dumped
    assert "per_dimension" not in dumped["evidence"]
    for d in dumped["dimensions"]:
        assert "scale" not in d and "levels" not in d
        assert all("quote" not in c for c in d["codes"])


# --- lint: repeated levels are not a finding ---------------------------------------------------


@pytest.mark.parametrize("text", [SHARED, WRITTEN_OUT], ids=["shared", "written-out"])
def test_three_ordinal_dimensions_on_one_scale_pass_strict(tmp_path, text):
    loaded = parse_codebook(text, "cb.yaml", strict=True)
    assert loaded.warnings == []
    proc = validate_cli(write(tmp_path, text), "--strict")
    assert proc.returncode == 0, proc.stderr
    assert "duplicate-name" not in proc.stdout + proc.stderr
    assert "0 warnings" in proc.stdout


def test_a_name_shared_by_an_ordinal_and_a_single_dimension_still_warns():
    text = WRITTEN_OUT + """\
  - name: topic
    question: What is it about?
    codes:
      - {name: weak, definition: The topic is weakness.}
      - {name: health, definition: Health.}
"""
    warnings = parse_codebook(text, "cb.yaml").warnings
    assert [w.rule for w in warnings] == ["duplicate-name"]
    assert warnings[0].path == "dimensions[3].codes[0].name"
    assert "['validation', 'advice', 'disclosure', 'topic']" in warnings[0].message


def test_same_definition_in_one_ordinal_dimension_still_warns():
    text = SHARED.replace("It is there but brief.", "It carries the reply.")
    warnings = parse_codebook(text, "cb.yaml").warnings
    assert {w.rule for w in warnings} == {"duplicate-definition"}


def test_a_level_without_definition_is_reported_once_at_the_scale():
    text = SHARED.replace("{name: none, label: None, definition: The reply does not show it.}",
                          "{name: none, label: None}")
    warnings = parse_codebook(text, "cb.yaml").warnings
    assert [(w.rule, w.path, w.line) for w in warnings] == [
        ("missing-definition", "scales.intensity[0]", 5)]
    assert "level 'none' of scale 'intensity' has no definition" in warnings[0].message


def test_an_unused_scale_is_a_warning():
    text = SHARED.replace("scales:\n", "scales:\n  spare: [low, high]\n")
    warnings = parse_codebook(text, "cb.yaml").warnings
    assert [(w.rule, w.path) for w in warnings] == [("unused-scale", "scales.spare")]
    assert errors_of(text, strict=True)


# --- bad input ------------------------------------------------------------------------------

BAD = [
    # (name, replace old, with new, line, path, message part)
    ("unknown scale", "    scale: intensity\n  - name: advice",
     "    scale: intensty\n  - name: advice", 12, "dimensions[0].scale",
     "unknown scale 'intensty' (did you mean 'intensity'?); the declared scales are: intensity"),
    ("one level", "    - {name: weak, label: Weak, definition: It is there but brief.}\n"
                  "    - {name: strong, label: Strong, definition: It carries the reply.}\n",
     "", 4, "scales.intensity", "scale 'intensity' has 1 level; a scale needs at least 2"),
    ("scale and codes", "    scale: intensity\n  - name: advice",
     "    scale: intensity\n    codes: [{name: a, definition: A.}, {name: b, definition: B.}]\n"
     "  - name: advice", 12, "dimensions[0].scale",
     "a dimension takes its codes from 'scale' or from 'codes', not both; remove 'codes'"),
    ("unknown level", "      weak: One suggestion", "      wek: One suggestion", 18,
     "dimensions[1].levels.wek",
     "scale 'intensity' has no level 'wek' (did you mean 'weak'?); reword one of its levels: "
     "none, weak, strong"),
    ("not ordinal", "    type: ordinal\n    scale: intensity\n  - name: advice",
     "    scale: intensity\n  - name: advice", 11, "dimensions[0].scale",
     "'scale' gives the levels of an ordinal dimension, but 'validation' is 'single'; set "
     "'type: ordinal'"),
    ("duplicate level", "{name: strong, label: Strong,", "{name: weak, label: Strong,", 7,
     "scales.intensity[2].name", "level 'weak' is listed twice in scale 'intensity'"),
    ("levels without scale", "    type: ordinal\n    scale: intensity\n  - name: advice",
     "    type: ordinal\n    codes: [{name: a, definition: A.}, {name: b, definition: B.}]\n"
     "    levels: {a: Other A.}\n  - name: advice", 13, "dimensions[0].levels",
     "'levels' rewords the levels of a shared scale and needs 'scale: NAME'"),
    ("typo in a level key", "{name: none, label: None,", "{name: none, lable: None,", 5,
     "scales.intensity[0].lable", "unknown key 'lable'; did you mean 'label'?"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_scales_are_errors_with_place_and_advice(tmp_path, case):
    _, old, new, line, path, part = case
    assert old in SHARED
    text = SHARED.replace(old, new)
    problems = errors_of(text)
    hits = [p for p in problems if p.path == path and part in p.message]
    assert hits, [str(p) for p in problems]
    assert hits[0].line == line, str(hits[0])
    f = write(tmp_path, text)
    proc = validate_cli(f)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert any(ln.startswith(f"{f}:{line}:") and f"{path}: " in ln and part in ln
               for ln in proc.stderr.splitlines()), proc.stderr


def test_every_scale_problem_is_reported_at_once():
    text = (SHARED.replace("    scale: intensity\n  - name: advice",
                           "    scale: intensty\n  - name: advice")
            .replace("      weak: One suggestion", "      wek: One suggestion")
            .replace("scales:\n", "scales:\n  tiny: [only]\n"))
    got = {(p.path, p.rule) for p in errors_of(text)}
    assert {("dimensions[0].scale", "scale-unknown"), ("dimensions[1].levels.wek",
                                                        "level-unknown"),
            ("scales.tiny", "scale-levels")} <= got


def test_no_scales_section_at_all():
    text = SHARED.split("dimensions:", 1)[1].split("  - name: advice", 1)[0]
    text = "name: x\ndimensions:" + text
    (p,) = errors_of(text)
    assert "unknown scale 'intensity'; the codebook declares none" in p.message


# --- the documented example ------------------------------------------------------------------


def test_docs_scales_example_validates_strictly_and_is_shown_verbatim():
    path = DOCS / "examples" / "scales.yaml"
    loaded = load_codebook_file(path, strict=True)
    assert loaded.warnings == []
    cb = loaded.codebook
    assert cb.scales and all(d.scale == "intensity" for d in cb.dimensions)
    assert cb.quote_dimensions() == ["validation", "advice", "disclosure"]
    page = (DOCS / "codebook.md").read_text(encoding="utf-8")
    assert f"```yaml\n{path.read_text(encoding='utf-8')}```\n" in page
    proc = validate_cli(path, "--strict")
    assert proc.returncode == 0, proc.stderr
