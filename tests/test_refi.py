"""REFI-QDA export and import (vsdcoder.codebook.refi) and the `codebook export/import` CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET  # only to read files the tests wrote or the vetted samples
import zipfile
from pathlib import Path

import pytest
from conftest import need_shared, shared_root

from vsdcoder.codebook import refi
from vsdcoder.codebook.load import load_codebook_file, parse_codebook
from vsdcoder.codebook.model import Codebook
from vsdcoder.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "refi"
# The real exports live in the team's shared material; listed at collection time for parametrize.
SAMPLES = sorted(p.name for p in (shared_root() / "refi").glob("*.qd[ce]"))
BUNDLED = sorted((ROOT / "plugins" / "codebooks").glob("*.yaml"))
VSD_CODEBOOKS = [*BUNDLED, DATA / "rich.yaml"]
NS = "urn:QDA-XML:codebook:1.0"


# ------------------------------------------------------------------------------------------
# helpers


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def kids(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == name]


def code_tree(el: ET.Element) -> list[dict]:
    """The Code children of ``el`` as comparable dicts (GUIDs normalised)."""
    out = []
    for c in kids(el, "Code"):
        desc = kids(c, "Description")
        text = (desc[0].text or "").strip() if desc else ""
        out.append({
            "guid": refi.normalize_guid(c.get("guid")),
            "name": (c.get("name") or "").strip(),
            "isCodable": (c.get("isCodable") or "true").strip().lower() in ("true", "1"),
            "color": c.get("color"),
            "description": text or None,
            "codes": code_tree(c),
        })
    return out


def expected_codable(tree: list[dict]) -> list[dict]:
    """What import+export keeps of isCodable: "false" on categories; leaves are always codable
    (an empty category cannot be coded); "true" on parents is kept as is (MAXQDA)."""
    return [{**n, "isCodable": n["isCodable"] or not n["codes"],
             "codes": expected_codable(n["codes"])} for n in tree]


def root_codes(root: ET.Element) -> ET.Element:
    if local(root.tag) == "Project":
        root = kids(root, "CodeBook")[0]
    return kids(root, "Codes")[0]


def code_sets(root: ET.Element) -> dict[str, tuple]:
    """Sets that hold codes: guid -> (name, description, member GUIDs)."""
    out = {}
    for sets in kids(root, "Sets"):
        for s in kids(sets, "Set"):
            members = [refi.normalize_guid(m.get("guid") or m.get("targetGUID"))
                       for m in kids(s, "MemberCode")]
            if local(root.tag) == "Project" and not members:
                continue  # document sets: not part of a codebook
            desc = kids(s, "Description")
            out[refi.normalize_guid(s.get("guid"))] = (
                s.get("name"), (desc[0].text or "").strip() if desc else None, sorted(members))
    return out


def load_text(text: str) -> Codebook:
    loaded = parse_codebook(text, "<import>")
    return loaded.codebook


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("vsdcoder")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "vsdcoder.cli.main"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run([*cli(), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def xsd():
    import xmlschema  # in the test extra
    path = need_shared("refi", "Codebook.repaired.xsd")
    return xmlschema.XMLSchema(str(path))


# ------------------------------------------------------------------------------------------
# the real samples: import -> valid YAML -> export keeps the tree


@pytest.mark.parametrize("sample", SAMPLES or [None])
def test_sample_round_trip(sample, shared, tmp_path, xsd):
    path = need_shared("refi", sample) if sample else need_shared("refi")
    text = refi.import_qdc(path)
    assert text.startswith("# Imported from REFI-QDA")
    assert sample in text.splitlines()[0]
    cb = load_text(text)
    assert [d.name for d in cb.dimensions] == ["codes"]
    assert cb.dimensions[0].type == "multi"

    out = tmp_path / "export.qdc"
    refi.write_qdc(cb, out)
    first = out.read_bytes()
    refi.write_qdc(cb, out)
    assert out.read_bytes() == first == refi.qdc_bytes(cb)
    xsd.validate(str(out))

    original = ET.parse(path).getroot()
    exported = ET.fromstring(first)
    assert exported.tag == f"{{{NS}}}CodeBook"
    assert exported.get("origin").startswith("vsdcoder ")
    (wrapper,) = code_tree(root_codes(exported))
    assert wrapper["name"] == "codes" and wrapper["isCodable"] is False
    assert wrapper["codes"] == expected_codable(code_tree(root_codes(original)))
    assert code_sets(exported) == code_sets(original)

    # importing our own export gives the same codebook back, byte for byte on re-export
    again = load_text(refi.import_qdc(out))
    assert refi.qdc_bytes(again) == first


def test_samples_present(shared):
    names = {p.name for p in (shared / "refi").glob("*.qd[ce]")}
    assert {"taguette-1.4.1_codebook.qdc", "atlasti-23.4_codebook.qdc",
            "maxqda24_project.excerpt.qde"} <= names
    assert set(SAMPLES) == names


def test_maxqda_details(shared):
    text = refi.import_qdc(shared / "refi" / "maxqda24_project.excerpt.qde")
    cb = load_text(text)
    assert cb.name == "maxqda24_project.excerpt"
    assert cb.title == "2025-06-16_ICLS_Conf_Themes_ALL_just10"
    parents = cb.dimensions[0].codes
    assert [p.name for p in parents] == ["Additional Themes and Ideas", "Assessments"]
    # MAXQDA marks parents isCodable="true": kept codable, not guessed to be categories
    assert all(p.codable is True and p.is_codable for p in parents)
    assert parents[0].color == "#ef8256"
    assert parents[0].guid == "C9E3D7E0-4DBF-46E2-96EF-14574ECD3B90"
    assert parents[1].codes[0].definition.startswith("Apply this code when the paper discusses")
    assert "set 'ICLS 2024' holds only documents or notes; skipped" in text
    assert "isCodable=\"true\" in the source and stay codable" in text
    assert cb.sets == []


def test_atlasti_set_and_namespace_quirk(shared):
    # ATLAS.ti writes schemaLocation "codebook:0:4" with xmlns "codebook:1.0"
    cb = load_text(refi.import_qdc(shared / "refi" / "atlasti-23.4_codebook.qdc"))
    (cset,) = cb.sets
    assert (cset.name, cset.description, cset.guid, cset.codes) == (
        "code group 1", "kategorie 1", "ECA18D76-2B8B-4F26-BC1D-19ECA19FB3F0", ["codes.code1"])
    assert cb.dimensions[0].codes[0].color == "#46AA00"


def test_xsd_flags_taguette_empty_sets_but_our_export_omits_them(shared, xsd):
    # <Sets/> without a <Set> breaks the schema (Set has minOccurs 1); we never write it.
    assert not xsd.is_valid(str(shared / "refi" / "taguette-1.4.1_codebook.qdc"))
    cb = load_text(refi.import_qdc(shared / "refi" / "taguette-1.4.1_codebook.qdc"))
    data = refi.qdc_bytes(cb)
    assert b"<Sets" not in data
    assert xsd.is_valid(data.decode("utf-8"))


def test_top_level_as_dimensions_maxqda(shared):
    path = shared / "refi" / "maxqda24_project.excerpt.qde"
    text = refi.import_qdc(path, top_level_as_dimensions=True)
    cb = load_text(text)
    assert [(d.name, d.label, d.type) for d in cb.dimensions] == [
        ("additional_themes_and_ideas", "Additional Themes and Ideas", "multi"),
        ("assessments", "Assessments", "multi")]
    assert cb.dimensions[1].description.startswith("This category focuses on")
    assert "as a dimension it cannot be assigned itself" in text
    original = code_tree(root_codes(ET.parse(path).getroot()))
    exported = code_tree(root_codes(ET.fromstring(refi.qdc_bytes(cb))))
    for orig, exp in zip(original, exported, strict=True):
        assert exp["isCodable"] is False
        assert exp["codes"] == expected_codable(orig["codes"])


def test_top_level_as_dimensions_flat_codes_are_gathered(shared):
    text = refi.import_qdc(shared / "refi" / "taguette-1.4.1_codebook.qdc",
                           top_level_as_dimensions=True)
    cb = load_text(text)
    assert [d.name for d in cb.dimensions] == ["codes"]
    assert [c.name for c in cb.dimensions[0].codes] == ["xsd:element name", "CodeBook",
                                                        "Variables"]
    assert "top-level codes without sub-codes (3) are gathered" in text


def test_top_level_dimension_names_are_slugged_and_unique(tmp_path):
    f = tmp_path / "dims.qdc"
    f.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="{NS}" origin="test"><Codes>
  <Code guid="00000000-0000-0000-0000-000000000001" name="Émotions &amp; feelings"
        isCodable="false">
    <Code guid="00000000-0000-0000-0000-000000000002" name="joy" isCodable="true"/></Code>
  <Code guid="00000000-0000-0000-0000-000000000003" name="Émotions: Feelings!" isCodable="false">
    <Code guid="00000000-0000-0000-0000-000000000004" name="joy" isCodable="true"/></Code>
  <Code guid="00000000-0000-0000-0000-000000000005" name="Text" isCodable="false">
    <Code guid="00000000-0000-0000-0000-000000000006" name="a" isCodable="true"/></Code>
  <Code guid="00000000-0000-0000-0000-000000000007" name="2024 themes" isCodable="false">
    <Code guid="00000000-0000-0000-0000-000000000008" name="b" isCodable="true"/></Code>
</Codes></CodeBook>""", encoding="utf-8")
    cb = load_text(refi.import_qdc(f, top_level_as_dimensions=True))
    assert [d.name for d in cb.dimensions] == [
        "emotions_feelings", "emotions_feelings_2", "text_codes", "d_2024_themes"]


# ------------------------------------------------------------------------------------------
# vsdcoder codebooks: export -> import -> export


@pytest.mark.parametrize("path", VSD_CODEBOOKS, ids=lambda p: p.name)
def test_vsdcoder_round_trip_is_byte_identical(path, tmp_path, xsd):
    original = load_codebook_file(path).codebook
    out = tmp_path / "a.qdc"
    refi.write_qdc(original, out)
    first = out.read_bytes()
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<CodeBook xmlns="' +
                            NS.encode() + b'"')
    xsd.validate(str(out))

    # the file name does not matter: the codebook name travels in the dimension descriptions
    renamed = tmp_path / "Some Other Name.qdc"
    renamed.write_bytes(first)
    text = refi.import_qdc(renamed)
    back = load_text(text)
    assert back.name == original.name and back.version == original.version
    assert refi.qdc_bytes(back) == first
    assert summary(back) == summary(original, generated_guids=True)


def code_summary(cb: Codebook, dim: str, code, generated: bool) -> dict:
    guid = refi.normalize_guid(code.guid) if code.guid else None
    if guid is None and generated:
        guid = refi.deterministic_guid(cb.name, dim, code.name)
    return {
        "name": code.name, "label": code.label, "definition": code.definition,
        "include": code.include, "exclude": code.exclude,
        "examples": code.examples.model_dump(), "codable": code.is_codable,
        "specify": code.specify, "color": code.color, "guid": guid,
        "codes": [code_summary(cb, dim, c, generated) for c in code.codes],
    }


def summary(cb: Codebook, generated_guids: bool = False) -> dict:
    dims = []
    for d in cb.dimensions:
        dims.append({
            "name": d.name, "label": d.label, "question": d.question,
            "description": d.description, "type": d.type, "required": d.required,
            "max_codes": d.max_codes,
            "when": d.when.model_dump() if d.when else None,
            "none": d.none.model_dump() if d.none else None,
            "other": d.other.model_dump() if d.other else None,
            "codes": [code_summary(cb, d.name, c, generated_guids) for c in d.codes],
        })
    sets = []
    for s in cb.sets:
        members = [m for ref in s.codes for m in refi._resolve_set_member(cb, ref)]
        sets.append((s.name, s.description, members))
    return {"dimensions": dims, "sets": sets}


def test_rich_fixture_details():
    cb = load_codebook_file(DATA / "rich.yaml").codebook
    data = refi.qdc_bytes(cb)
    root = ET.fromstring(data)
    tree = code_tree(root_codes(root))
    topic = tree[0]
    assert topic["name"] == "topic" and topic["isCodable"] is False
    assert "Type: multi" in topic["description"] and "Max codes: 3" in topic["description"]
    health = topic["codes"][0]
    # own GUID kept, normalised (braces and lower case in the YAML)
    assert health["guid"] == "1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294"
    assert 'guid="1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294"' in data.decode()
    assert health["isCodable"] is False and health["color"] == "#1f77b4"
    illness, caring = health["codes"]
    assert illness["isCodable"] is True and caring["isCodable"] is True
    assert illness["description"].endswith("Not an example: My mother is in hospital")
    assert "Include: Chronic conditions." in illness["description"]
    # options are codes at the end of their dimension
    assert [c["name"] for c in topic["codes"]][-2:] == ["other_topic", "none"]
    assert tree[2]["codes"][-1]["description"].endswith("Option: none")
    assert tree[3]["codes"] == []  # a text dimension
    sets = code_sets(root)
    assert sets["ECA18D76-2B8B-4F26-BC1D-19ECA19FB3F0"][2] == sorted(
        [illness["guid"], caring["guid"], tree[1]["codes"][0]["guid"]])
    assert len(sets) == 4  # same set name twice still gives two GUIDs


def test_guids_are_deterministic_and_pinned(tmp_path):
    # pinned: changing the namespace or path scheme would break users' re-imports
    assert refi.deterministic_guid("sad-stressors", "stressor", "work") == \
        "56CA3113-B9B7-5852-86D0-87440437D2B8"
    cb = load_codebook_file(ROOT / "plugins" / "codebooks" / "sad-stressors.yaml").codebook
    here = hashlib.sha256(refi.qdc_bytes(cb)).hexdigest()
    code = ("import hashlib, sys\n"
            "from vsdcoder.codebook.load import load_codebook\n"
            "from vsdcoder.codebook.refi import qdc_bytes\n"
            "cb = load_codebook('sad-stressors').codebook\n"
            "print(hashlib.sha256(qdc_bytes(cb)).hexdigest())\n")
    for seed in ("1", "2"):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == here


def test_generated_guid_never_collides_with_an_explicit_one():
    taken = refi.deterministic_guid("cb", "d", "work")
    cb = load_text(f"""
vsdcoder: 1
name: cb
dimensions:
  - name: d
    question: q?
    codes:
      - {{name: job, definition: renamed code that kept its old GUID, guid: "{taken}"}}
      - {{name: work, definition: new code with the old name}}
""")
    tree = code_tree(root_codes(ET.fromstring(refi.qdc_bytes(cb))))
    guids = [c["guid"] for c in tree[0]["codes"]]
    assert guids[0] == taken and guids[1] != taken


def _two_code_codebook() -> Codebook:
    return load_text("vsdcoder: 1\nname: cb\ndimensions:\n  - name: d\n    question: q?\n"
                     "    codes:\n      - {name: a, definition: x}\n"
                     "      - {name: b, definition: y}\n")


@pytest.mark.parametrize("guids, message", [
    (("not-a-guid", None), "is not a GUID"),
    (("1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294", "{1ff58b12-6f6f-4b0c-8be5-bbdc91f55294}"),
     "is also the guid of"),
])
def test_export_rejects_bad_guids(guids, message):
    # the loader rejects these already; a codebook built in code reaches the exporter directly
    cb = _two_code_codebook()
    cb.dimensions[0].codes[0].guid, cb.dimensions[0].codes[1].guid = guids
    with pytest.raises(UsageError, match=message):
        refi.qdc_bytes(cb)


def test_export_strips_characters_xml_cannot_carry():
    cb = load_text('vsdcoder: 1\nname: cb\ndimensions:\n  - name: d\n    question: q?\n'
                   '    codes:\n      - {name: a, definition: "bell\\x07 and\\x0b tab"}\n')
    root = ET.fromstring(refi.qdc_bytes(cb))
    assert code_tree(root_codes(root))[0]["codes"][0]["description"] == "bell and tab"


def test_write_qdc_to_missing_folder_is_a_usage_error(tmp_path):
    cb = load_codebook_file(ROOT / "plugins" / "codebooks" / "sad-stressors.yaml").codebook
    with pytest.raises(UsageError, match="cannot write"):
        refi.write_qdc(cb, tmp_path / "no" / "such" / "dir" / "x.qdc")


# ------------------------------------------------------------------------------------------
# import details: names, GUIDs, colours, sets, namespaces, containers


MESSY = f"""<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="{NS}" origin="Messy 1.0">
  <Codes>
    <Code guid="{{aaaaaaaa-0000-0000-0000-000000000001}}" name="Parent" isCodable="false"
          color="ABC">
      <Description>  A category.  </Description>
      <Code guid="aaaaaaaa-0000-0000-0000-000000000002" name="a;b" isCodable="true" color="red"/>
      <Code guid="AAAAAAAA000000000000000000000003" name="dup" isCodable="1"/>
      <Code guid="AAAAAAAA-0000-0000-0000-000000000004" name="dup" isCodable="true"/>
      <Code guid="AAAAAAAA-0000-0000-0000-000000000004" name="dup (2)" isCodable="true"/>
      <Code guid="nope" name="{"x" * 90}" isCodable="true"/>
      <Code name="two&#10;lines" isCodable="true"/>
      <Code guid="AAAAAAAA-0000-0000-0000-000000000007" name="empty category" isCodable="false"/>
      <Code guid="AAAAAAAA-0000-0000-0000-000000000008" name="Sub" isCodable="0">
        <Code guid="AAAAAAAA-0000-0000-0000-000000000009" name="dup" isCodable="true"/>
      </Code>
    </Code>
  </Codes>
  <Sets>
    <Set guid="BBBBBBBB-0000-0000-0000-000000000001" name="S">
      <MemberCode guid="aaaaaaaa-0000-0000-0000-000000000002"/>
      <MemberCode guid="{{AAAAAAAA-0000-0000-0000-000000000009}}"/>
      <MemberCode guid="CCCCCCCC-0000-0000-0000-000000000000"/>
    </Set>
  </Sets>
</CodeBook>
"""


def test_messy_codebook_is_repaired_and_reported(tmp_path, xsd):
    f = tmp_path / "Messy Export (v2).qdc"
    f.write_text(MESSY, encoding="utf-8")
    text = refi.import_qdc(f)
    cb = load_text(text)
    assert cb.name == "messy-export-v2"
    (parent,) = cb.dimensions[0].codes
    assert parent.guid == "AAAAAAAA-0000-0000-0000-000000000001"
    assert parent.codable is False and parent.color == "#ABC"
    assert parent.definition == "A category."
    names = [c.name for c in parent.codes]
    assert names == ["a,b", "dup", "dup (3)", "dup (2)", "x" * 80, "two lines",
                     "empty category", "Sub"]
    assert parent.codes[1].guid == "AAAAAAAA-0000-0000-0000-000000000003"
    assert parent.codes[3].guid is None  # its GUID repeated an earlier code's
    assert parent.codes[4].guid is None  # 'nope' is no GUID
    assert parent.codes[0].color is None
    assert parent.codes[6].codable is None and parent.codes[6].is_codable
    sub = parent.codes[7]
    assert sub.codable is False and [c.name for c in sub.codes] == ["dup (4)"]
    assert cb.sets[0].codes == ["codes.a,b", "codes.dup (4)"]
    for fragment in ["renamed 'a,b'", "';' became ','", "duplicate code name 'dup'",
                     "'dup (3)'", "longer than 80", "several lines", "has no guid",
                     "is used by an earlier code too", "'nope' is not a GUID",
                     "colour 'red' is not", "colour 'ABC' lacks '#'",
                     "marked isCodable=\"false\" but has no sub-codes",
                     "member CCCCCCCC-0000-0000-0000-000000000000 is not a code"]:
        assert fragment in text, fragment
    assert "WARNING" not in text
    data = refi.qdc_bytes(cb)
    assert xsd.is_valid(data.decode())
    guids = [n.get("guid") for n in ET.fromstring(data).iter(f"{{{NS}}}Code")]
    assert len(guids) == len(set(guids))


def test_header_names_source_and_origin(shared):
    text = refi.import_qdc(shared / "refi" / "taguette-1.4.1_codebook.qdc")
    head = [line for line in text.splitlines() if line.startswith("#")]
    assert "taguette-1.4.1_codebook.qdc" in head[0] and "Taguette 1.4.1" in head[0]


def test_name_argument(shared):
    path = shared / "refi" / "atlasti-23.4_codebook.qdc"
    assert load_text(refi.import_qdc(path, name="my-book")).name == "my-book"
    with pytest.raises(UsageError, match="not a codebook name"):
        refi.import_qdc(path, name="My Book")


@pytest.mark.parametrize("ns", ["urn:QDA-XML:codebook:1:0", "urn:QDA-XML:codebook:0.4",
                                "urn:qda-xml:codebook:1.0", None])
def test_namespace_variants_are_accepted(ns, tmp_path):
    xmlns = f' xmlns="{ns}"' if ns else ""
    f = tmp_path / "v.qdc"
    f.write_text(f'<CodeBook{xmlns}><Codes><Code guid="{"1" * 8}-1111-1111-1111-{"1" * 12}" '
                 'name="c" isCodable="true"/></Codes></CodeBook>', encoding="utf-8")
    cb = load_text(refi.import_qdc(f))
    assert cb.dimensions[0].codes[0].guid == "11111111-1111-1111-1111-111111111111"


def test_project_sets_use_target_guid(tmp_path):
    f = tmp_path / "p.qde"
    f.write_text("""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1:0" name="P" origin="QualCoder 3.5">
  <CodeBook><Codes>
    <Code guid="11111111-1111-1111-1111-111111111111" name="c1" isCodable="true">
      <NoteRef targetGUID="22222222-2222-2222-2222-222222222222"/>
    </Code>
  </Codes></CodeBook>
  <Sets>
    <Set guid="33333333-3333-3333-3333-333333333333" name="mixed">
      <MemberCode targetGUID="11111111-1111-1111-1111-111111111111"/>
      <MemberSource targetGUID="44444444-4444-4444-4444-444444444444"/>
    </Set>
  </Sets>
</Project>""", encoding="utf-8")
    text = refi.import_qdc(f)
    cb = load_text(text)
    assert [(s.name, s.guid, s.codes) for s in cb.sets] == [
        ("mixed", "33333333-3333-3333-3333-333333333333", ["codes.c1"])]
    assert "document or note member(s) are not kept" in text


def maxqda_qdpx(shared, tmp_path, inner: str = "project.qde") -> Path:
    qde = (shared / "refi" / "maxqda24_project.excerpt.qde").read_bytes()
    path = tmp_path / "maxqda.qdpx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(inner, qde)
        # MAXQDA writes a lowercase sources/ folder (the spec says Sources/)
        zf.writestr("sources/C5E4C960-5296-4FDE-8C63-DEABA4E17F92.txt", "text one")
        zf.writestr("sources/7391D47A-323D-4291-8202-ED599C250828.txt", "text two")
    return path


def body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_qdpx_archive(shared, tmp_path, xsd):
    qdpx = maxqda_qdpx(shared, tmp_path)
    text = refi.import_qdc(qdpx, name="maxqda24_project.excerpt")
    assert "REFI-QDA project archive 'maxqda.qdpx'" in text.splitlines()[0]
    plain = refi.import_qdc(shared / "refi" / "maxqda24_project.excerpt.qde")
    assert body(text).replace("maxqda.qdpx", "X") == body(plain).replace(
        "maxqda24_project.excerpt.qde", "X")
    cb = load_text(text)
    assert load_text(refi.import_qdc(qdpx)).name == "maxqda"
    xsd.validate(refi.qdc_bytes(cb).decode())


def test_qdpx_without_project_qde(shared, tmp_path):
    path = tmp_path / "x.qdpx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("sources/a.txt", "text")
    with pytest.raises(UsageError, match=r"no project\.qde"):
        refi.import_qdc(path)


# ------------------------------------------------------------------------------------------
# safety and bad input

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE CodeBook [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes>
<Code guid="11111111-1111-1111-1111-111111111111" name="&lol9;" isCodable="true"/>
</Codes></CodeBook>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE CodeBook [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes>
<Code guid="11111111-1111-1111-1111-111111111111" name="c" isCodable="true">
<Description>&xxe;</Description></Code>
</Codes></CodeBook>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE CodeBook SYSTEM "http://127.0.0.1:9/evil.dtd">
<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes>
<Code guid="11111111-1111-1111-1111-111111111111" name="c" isCodable="true"/>
</Codes></CodeBook>
"""


@pytest.mark.parametrize("content", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD],
                         ids=["billion-laughs", "external-entity", "external-dtd"])
def test_unsafe_xml_is_refused(content, tmp_path):
    f = tmp_path / "evil.qdc"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as info:
        refi.import_qdc(f)
    msg = str(info.value)
    assert str(f) in msg and "DTD" in msg and "refused" in msg
    assert "root:" not in msg


def test_unsafe_xml_inside_qdpx_is_refused(tmp_path):
    path = tmp_path / "evil.qdpx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", BILLION_LAUGHS.replace("CodeBook", "Project"))
    with pytest.raises(UsageError, match="DTD"):
        refi.import_qdc(path)


BAD_INPUTS = {
    "not-xml.qdc": ("this is not XML at all\n", "not well-formed XML"),
    "truncated.qdc": (f'<CodeBook xmlns="{NS}"><Codes>', "not well-formed XML"),
    "wrong-root.qdc": (f'<Codes xmlns="{NS}"/>', "not <CodeBook> or <Project>"),
    "wrong-ns.qdc": ('<CodeBook xmlns="http://example.org/x"><Codes/></CodeBook>',
                     "not a REFI-QDA one"),
    "no-codes.qdc": (f'<CodeBook xmlns="{NS}"><Sets/></CodeBook>', "has no <Codes>"),
    "empty-codes.qdc": (f'<CodeBook xmlns="{NS}"><Codes/></CodeBook>', "holds no <Code>"),
    "no-codebook.qde": ('<Project xmlns="urn:QDA-XML:project:1.0" name="p"/>',
                        "has no <CodeBook>"),
    "bad-zip.qdpx": ("PK\x03\x04 this is not really a zip", "not a readable .qdpx"),
}


@pytest.mark.parametrize("fname", sorted(BAD_INPUTS))
def test_bad_input_is_a_usage_error(fname, tmp_path):
    content, message = BAD_INPUTS[fname]
    f = tmp_path / fname
    f.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message) as info:
        refi.import_qdc(f)
    assert str(f) in str(info.value)


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        refi.import_qdc(tmp_path / "missing.qdc")


def test_truncated_qdpx_is_a_usage_error(shared, tmp_path):
    good = maxqda_qdpx(shared, tmp_path).read_bytes()
    f = tmp_path / "cut.qdpx"
    f.write_bytes(good[: len(good) // 2])
    with pytest.raises(UsageError, match="qdpx"):
        refi.import_qdc(f)


# ------------------------------------------------------------------------------------------
# structured descriptions and GUID helpers


@pytest.mark.parametrize("raw, expected", [
    ("1ff58b12-6f6f-4b0c-8be5-bbdc91f55294", "1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294"),
    (" {1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294} ", "1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294"),
    ("1ff58b126f6f4b0c8be5bbdc91f55294", "1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294"),
    ("1FF58B12-6F6F-4B0C-8BE5", None), ("", None), (None, None),
])
def test_normalize_guid(raw, expected):
    assert refi.normalize_guid(raw) == expected


@pytest.mark.parametrize("fields", [
    [("Include", "one")],
    [("Label", "L"), ("Include", "a\n  b\n\nc"), ("Example", ""), ("Not an example", "x: y")],
    [("Exclude", "Include: not a key here\nExample: nor here")],
])
def test_description_block_round_trip(fields):
    for definition in (None, "Plain.", "Two\n\nparagraphs.\nInclude: mid-text line"):
        text = refi._join(definition, refi._format_block(fields))
        assert refi._split_description(text, refi._CODE_KEYS) == (definition, fields)


def test_foreign_descriptions_are_not_parsed(tmp_path):
    f = tmp_path / "f.qdc"
    f.write_text(f'<CodeBook xmlns="{NS}" origin="NVivo"><Codes><Code '
                 'guid="11111111-1111-1111-1111-111111111111" name="c" isCodable="true">'
                 '<Description>Text.\n\nInclude: stays in the definition</Description>'
                 '</Code></Codes></CodeBook>', encoding="utf-8")
    code = load_text(refi.import_qdc(f)).dimensions[0].codes[0]
    assert code.definition == "Text.\n\nInclude: stays in the definition"
    assert code.include == []


# ------------------------------------------------------------------------------------------
# CLI end to end


def test_cli_export_import_validate(tmp_path, xsd):
    qdc = tmp_path / "sad.qdc"
    res = run_cli("codebook", "export", "sad-stressors", "--format", "qdc", "-o", str(qdc))
    assert res.returncode == 0, res.stderr
    xsd.validate(str(qdc))
    out = tmp_path / "out.yaml"
    res = run_cli("codebook", "import", str(qdc), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text(encoding="utf-8").startswith("# Imported from REFI-QDA codebook")
    res = run_cli("codebook", "validate", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("OK sad-stressors 1.1.0")
    again = tmp_path / "again.qdc"
    res = run_cli("codebook", "export", str(out), "-o", str(again))
    assert res.returncode == 0, res.stderr
    assert again.read_bytes() == qdc.read_bytes()


def test_cli_import_sample_with_top_level_flag(shared, tmp_path):
    out = tmp_path / "m.yaml"
    res = run_cli("codebook", "import", str(shared / "refi" / "maxqda24_project.excerpt.qde"),
                  "-o", str(out), "--name", "icls", "--top-level-as-dimensions")
    assert res.returncode == 0, res.stderr
    res = run_cli("codebook", "validate", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "additional_themes_and_ideas: multi" in res.stdout


@pytest.mark.parametrize("fname", ["not-xml.qdc", "no-codes.qdc", "bad-zip.qdpx", "evil.qdc",
                                   "missing.qdc"])
def test_cli_bad_input_exits_2_without_traceback(fname, tmp_path):
    f = tmp_path / fname
    if fname == "evil.qdc":
        f.write_text(BILLION_LAUGHS, encoding="utf-8")
    elif fname != "missing.qdc":
        f.write_text(BAD_INPUTS[fname][0], encoding="utf-8")
    out = tmp_path / "out.yaml"
    res = run_cli("codebook", "import", str(f), "-o", str(out))
    assert res.returncode == 2
    assert "Traceback" not in res.stdout + res.stderr
    assert "error:" in res.stderr and fname in res.stderr
    assert not out.exists()


def test_cli_export_to_missing_folder_exits_2(tmp_path):
    res = run_cli("codebook", "export", "sad-stressors", "-o", str(tmp_path / "no" / "x.qdc"))
    assert res.returncode == 2
    assert "Traceback" not in res.stdout + res.stderr
    assert "cannot write" in res.stderr
