"""Gold input in every layout, runs read as coders, majority votes, and the real eval suites."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import need_shared

import vsdcoder
from vsdcoder.codebook.model import Codebook
from vsdcoder.errors import UsageError
from vsdcoder.reliability.gold import (
    check,
    combine,
    load_layout,
    majority,
    read_gold,
    read_run,
    with_majority,
)
from vsdcoder.reliability.types import Ratings
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

ROOT = Path(__file__).resolve().parent.parent
MODEL = "openai/fake"
KEY = "sk-test-gold-0000"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def cb() -> Codebook:
    """A small codebook: single, multi (with a none option), ordinal, and a gated single."""
    return Codebook.model_validate({
        "name": "toy",
        "dimensions": [
            {"name": "topic", "codes": [{"name": "work"}, {"name": "school"}, {"name": "money"}]},
            {"name": "tags", "type": "multi", "none": True,
             "codes": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
            {"name": "level", "type": "ordinal",
             "codes": [{"name": "low"}, {"name": "mid"}, {"name": "high"}]},
            {"name": "why", "when": {"dimension": "topic", "codes": ["work"]},
             "codes": [{"name": "boss"}, {"name": "load"}]},
        ],
    })


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def val(r: Ratings, dim: str, coder: str, unit: str):
    return r.values.get(dim, {}).get(coder, {}).get(unit)


def problems(r: Ratings) -> str:
    return "\n".join(r.problems)


# -- wide ------------------------------------------------------------------------------------


def test_wide_multi_label_cells_and_missing_values(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "topic", "tags", "level", "text"], [
        ["u1", "work", "a;b", "low", "first"],
        ["u2", "school", "[]", "high", "second"],
        ["u3", "", "", "", "third"],
        ["u4", "money", " b ; a ", "mid", ""],
        ["u5", "work", '["c", "a"]', "mid", "fifth"],
        ["u6", "work", "none", "low", "sixth"],
    ])
    r = read_gold(gold, cb, {"layout": "wide", "coder": "alice", "text": "text"})
    assert r.units == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert r.coders == {"alice": "human"}
    assert val(r, "topic", "alice", "u1") == "work"
    assert val(r, "tags", "alice", "u1") == frozenset({"a", "b"})
    assert val(r, "tags", "alice", "u2") == frozenset()  # explicit empty answer
    assert val(r, "tags", "alice", "u4") == frozenset({"a", "b"})
    assert val(r, "tags", "alice", "u5") == frozenset({"a", "c"})
    assert val(r, "tags", "alice", "u6") == frozenset({"none"})
    # an empty cell stays missing: never "no code"
    for dim in ("topic", "tags", "level"):
        assert "u3" not in r.values[dim]["alice"]
        assert r.matrix(dim, ["alice"], ["u3"]) == [[None]]
    assert r.texts == {"u1": "first", "u2": "second", "u3": "third", "u5": "fifth", "u6": "sixth"}
    assert r.problems == [f"{gold}: no codes for dimension(s) why of codebook 'toy'"]
    assert check(r, cb) == []


def test_wide_separator_and_default_coder_name(tmp_path, cb):
    gold = write_csv(tmp_path / "rater1.csv", ["id", "tags"], [["1", "a|c"], ["2", "b"]])
    r = read_gold(gold, cb, {"layout": "wide", "separator": "|", "kind": "gold"})
    assert r.coders == {"rater1": "gold"}
    assert r.values["tags"]["rater1"] == {"1": frozenset({"a", "c"}), "2": frozenset({"b"})}


def test_wide_other_formats(tmp_path, cb):
    rows = [{"id": 1, "topic": "work", "tags": ["a", "b"]}, {"id": 2, "topic": None, "tags": []}]
    jl = tmp_path / "g.jsonl"
    jl.write_text("".join(json.dumps(x) + "\n" for x in rows), encoding="utf-8")
    r = read_gold(jl, cb, {"layout": "wide", "coder": "c"})
    assert r.units == ["1", "2"]
    assert r.values["tags"]["c"] == {"1": frozenset({"a", "b"}), "2": frozenset()}
    assert r.values["topic"]["c"] == {"1": "work"}
    import openpyxl  # noqa: F401  (a core dependency)
    import pandas as pd  # in the test extra
    xlsx = tmp_path / "g.xlsx"
    pd.DataFrame({"id": [1, 2], "topic": ["work", None], "level": ["low", "high"]}).to_excel(
        xlsx, index=False)
    r = read_gold(xlsx, cb)
    assert r.values["topic"]["g"] == {"1": "work"}
    assert r.values["level"]["g"] == {"1": "low", "2": "high"}


def test_unknown_codes_are_reported_with_ids_not_raised(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "topic", "tags"], [
        ["u1", "finance", "a"], ["u2", "work", "a;zz"], ["u3", "finance", ""],
        ["u4", "Work", "b"],
    ])
    r = read_gold(gold, cb, {"layout": "wide", "coder": "bob"})
    text = problems(r)
    assert "unknown code 'finance' for 'topic'" in text
    assert "coder bob, 2 units: u1, u3" in text
    assert "unknown code 'zz' for 'tags'" in text and "1 unit: u2" in text
    assert "unknown code 'Work' for 'topic' (did you mean 'work'?)" in text
    assert "value_map" in text
    # the value is missing, the rest of the row is read
    assert val(r, "topic", "bob", "u1") is None
    assert val(r, "tags", "bob", "u1") == frozenset({"a"})
    assert val(r, "tags", "bob", "u2") is None
    assert val(r, "topic", "bob", "u2") == "work"


def test_gates_close_gated_dimensions_and_report_codes_given(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "topic", "why"], [
        ["u1", "work", "boss"], ["u2", "school", "load"], ["u3", "school", ""], ["u4", "", "boss"],
    ])
    r = read_gold(gold, cb, {"layout": "wide", "coder": "c"})
    assert r.values["why"]["c"] == {"u1": "boss", "u4": "boss"}  # u4: gate unknown, kept
    assert "'why' is coded although 'topic' is not one of work (coder c, 1 unit: u2)" in \
        problems(r)
    r = read_gold(gold, cb, {"layout": "wide", "coder": "c", "gates": False})
    assert r.values["why"]["c"] == {"u1": "boss", "u2": "load", "u4": "boss"}
    assert "coded although" not in problems(r)


def test_repeated_ids_are_one_grouped_problem(tmp_path, cb):
    rows = [[f"u{i}", "work"] for i in range(15)]
    rows += [[f"u{i}", "work"] for i in range(9)]  # 9 repeats with the same code
    rows += [[f"u{i}", "school"] for i in range(9, 12)]  # 3 repeats with another code
    r = read_gold(write_csv(tmp_path / "g.csv", ["id", "topic"], rows), cb)
    assert r.units == [f"u{i}" for i in range(15)]
    assert all(v == "work" for v in r.values["topic"]["g"].values())
    lines = [x for x in r.problems if "more than one row" in x]
    assert len(lines) == 1 and "duplicate id" not in problems(r)
    line = lines[0]
    assert "12 id(s) are on more than one row (3 of them with different codes)" in line
    assert "u0 (rows 2, 17), u1 (rows 3, 18)" in line and "u9 (rows 11, 26)" in line
    assert "u10 (" not in line and line.endswith("... (2 more)")


def test_duplicate_and_empty_ids_are_reported(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "topic"],
                     [["u1", "work"], ["u1", "school"], ["", "money"], ["u2", "money"]])
    r = read_gold(gold, cb)
    assert r.units == ["u1", "u2"]
    assert r.values["topic"]["g"] == {"u1": "work", "u2": "money"}
    text = problems(r)
    assert ("1 id(s) are on more than one row (1 of them with different codes); only the "
            "first row of each is read: u1 (rows 2, 3)") in text
    assert "1 row(s) with an empty id are ignored (rows 4)" in text


# -- value maps ------------------------------------------------------------------------------


def test_value_map_translates_labels(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "level", "topic", "tags"], [
        ["1", "-1", "Job", "A;B"], ["2", "1", "N/A", "nothing"], ["3", "0", "job", "B"],
        ["4", "2", "Job", ""],
    ])
    layout = {"layout": "wide", "coder": "c",
              "value_map": {"level": {-1: "low", 0: "mid", 1: "high"},
                            "topic": {"Job": "work", "job": "work", "N/A": None},
                            "tags": {"A": "a", "B": "b", "nothing": "[]"}}}
    r = read_gold(gold, cb, layout)
    assert r.values["level"]["c"] == {"1": "low", "2": "high", "3": "mid"}
    assert r.values["topic"]["c"] == {"1": "work", "3": "work", "4": "work"}  # N/A: missing
    assert r.values["tags"]["c"] == {"1": frozenset("ab"), "2": frozenset(), "3": frozenset("b")}
    assert "unknown code '2' for 'level'" in problems(r) and "1 unit: 4" in problems(r)


def test_value_map_to_a_code_the_codebook_lacks_is_a_usage_error(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "level"], [["1", "-1"]])
    with pytest.raises(UsageError) as e:
        read_gold(gold, cb, {"layout": "wide", "value_map": {"level": {"-1": "lowest"}}})
    assert "value_map.level.-1: 'lowest' is not a code of 'level' (did you mean 'low'?)" in \
        str(e.value)
    with pytest.raises(UsageError, match=r"value_map\.levle: 'levle' is not a dimension of "
                                         r"codebook 'toy' \(did you mean 'level'\?\)"):
        read_gold(gold, cb, {"layout": "wide", "value_map": {"levle": {"-1": "low"}}})


# -- long ------------------------------------------------------------------------------------


def test_long_several_coders_and_multi_label_rows(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["unit", "coder", "dimension", "code", "text"], [
        ["u1", "alice", "topic", "work", "hello"],
        ["u1", "alice", "tags", "a", "hello"],
        ["u1", "alice", "tags", "b", "hello"],
        ["u1", "alice", "why", "boss", "hello"],
        ["u1", "bob", "topic", "school", "hello"],
        ["u1", "bob", "tags", "[]", "hello"],
        ["u1", "bob", "why", "load", "hello"],  # gate closed for bob
        ["u2", "alice", "topic", "work", "bye"],
        ["u2", "alice", "topic", "money", "bye"],  # two codes, single choice
        ["u2", "bob", "topic", "", "bye"],  # empty: missing
        ["u2", "bob", "tags", "c;a", "bye"],
        ["u2", "adj", "topic", "work", "bye"],
        ["u3", "alice", "mood", "sad", ""],  # not a dimension of the codebook
    ])
    r = read_gold(gold, cb, {"layout": "long", "text": "text", "kinds": {"adj": "gold"}})
    assert r.units == ["u1", "u2", "u3"]
    assert r.coders == {"alice": "human", "bob": "human", "adj": "gold"}
    assert r.values["topic"] == {"alice": {"u1": "work"}, "bob": {"u1": "school"},
                                 "adj": {"u2": "work"}}
    assert r.values["tags"] == {"alice": {"u1": frozenset("ab")},
                                "bob": {"u1": frozenset(), "u2": frozenset("ac")}}
    assert r.values["why"] == {"alice": {"u1": "boss"}}
    assert r.texts == {"u1": "hello", "u2": "bye"}
    text = problems(r)
    assert "several codes for the single-choice dimension 'topic' (coder alice, 1 unit: u2)" in text
    assert "'why' is coded although 'topic' is not one of work (coder bob, 1 unit: u1)" in text
    assert "dimension 'mood' is not in codebook 'toy' (rows 14); those rows are ignored" in text


def test_long_custom_column_names_and_positions(tmp_path, cb):
    gold = write_csv(tmp_path / "g.tsv", ["item", "who", "what", "value"],
                     [["1", "x", "topic", "work"], ["1", "y", "topic", "work"]])
    gold.write_text(gold.read_text().replace(",", "\t"))
    r = read_gold(gold, cb, {"layout": "long", "id": "item", "coder_column": 2,
                             "dimension_column": "what", "code_column": "value"})
    assert r.values["topic"] == {"x": {"1": "work"}, "y": {"1": "work"}}


# -- onehot ----------------------------------------------------------------------------------


def test_onehot_columns(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv",
                     ["id", "t_work", "t_school", "t_money", "g_a", "g_b", "g_c"], [
                         ["1", "1", "0", "0", "1", "0", "1"],
                         ["2", "false", "TRUE", "", "0", "0", "0"],
                         ["3", "", "", "", "", "", ""],
                         ["4", "1", "1", "0", "yes", "no", ""],
                         ["5", "1.0", "0.0", "0", "0", "1", "maybe"],
                         ["6", "0", "0", "0", "0", "0", "0"],
                     ])
    layout = {"layout": "onehot", "coder": "c", "columns": {
        "topic": {"work": "t_work", "school": "t_school", "money": "t_money"},
        "tags": {"onehot": {"a": "g_a", "b": "g_b", "c": "g_c"}, "all_zero": "none"},
    }}
    r = read_gold(gold, cb, layout)
    assert r.values["topic"]["c"] == {"1": "work", "2": "school", "5": "work"}
    assert r.values["tags"]["c"] == {"1": frozenset("ac"), "2": frozenset({"none"}),
                                     "4": frozenset("a"), "6": frozenset({"none"})}
    text = problems(r)
    assert "several codes for the single-choice dimension 'topic' (coder c, 1 unit: 4)" in text
    assert "no one-hot column of the single-choice dimension 'topic' is marked (coder c, 1 " \
           "unit: 6)" in text
    assert "column 'g_c' holds 'maybe'" in text and "1 unit: 5" in text
    # all-zero multi-label without all_zero: an explicit empty answer
    layout["columns"]["tags"] = {"a": "g_a", "b": "g_b", "c": "g_c"}
    r = read_gold(gold, cb, layout)
    assert r.values["tags"]["c"]["6"] == frozenset()
    assert "3" not in r.values["tags"]["c"]  # all empty: missing


def test_onehot_label_that_is_not_a_code_is_a_usage_error(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "x"], [["1", "1"]])
    with pytest.raises(UsageError, match=r"columns\.topic\.onehot\.wrk: 'wrk' is not a code of "
                                         r"'topic' \(did you mean 'work'\?\)"):
        read_gold(gold, cb, {"layout": "onehot", "columns": {"topic": {"wrk": "x"}}})
    with pytest.raises(UsageError, match=r"column 'y' not found in .*g\.csv.*the file has: 'id', "
                                         r"'x'"):
        read_gold(gold, cb, {"layout": "onehot", "columns": {"topic": {"work": "y"}}})


def test_repeated_annotations_in_onehot_cells(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "w", "s"],
                     [["1", "1, 1", "0, 0"], ["2", "1, 0", "0, 1"], ["3", "0", "1"]])
    cols = {"topic": {"work": "w", "school": "s"}}
    r = read_gold(gold, cb, {"layout": "onehot", "coder": "c", "columns": cols})
    assert r.values["topic"]["c"] == {"3": "school"}
    assert "'1, 1' (repeated annotations?) (2 units: 1, 2)" in problems(r)
    r = read_gold(gold, cb, {"layout": "onehot", "coder": "c", "columns": cols,
                             "repeated": "first"})
    assert r.values["topic"]["c"] == {"1": "work", "2": "work", "3": "school"}
    assert "repeated annotations of coder c disagree (1 unit: 2); kept the first" in problems(r)
    r = read_gold(gold, cb, {"layout": "onehot", "coder": "c", "columns": cols,
                             "repeated": "last"})
    assert r.values["topic"]["c"]["2"] == "school"
    r = read_gold(gold, cb, {"layout": "onehot", "coder": "c", "columns": cols,
                             "repeated": "agreed"})
    assert r.values["topic"]["c"] == {"1": "work", "3": "school"}


# -- coder blocks ----------------------------------------------------------------------------


def blocks_file(tmp_path: Path) -> Path:
    # annotator B's 'school' column is misnamed A_school in the header (as in ConvAbuse)
    return write_csv(tmp_path / "g.csv",
                     ["id", "A_work", "A_school", "A_tags", "B_work", "A_school", "B_tags"], [
                         ["1", "1", "0", "a", "0", "1", "a;b"],
                         ["2", "0", "1", "", "", "", ""],
                         ["3", "", "", "c", "1", "0", "[]"],
                     ])


def test_coder_blocks_with_a_duplicated_header_read_by_position(tmp_path, cb):
    gold = blocks_file(tmp_path)
    layout: dict[str, Any] = {
        "layout": "coder_blocks", "coders": ["A", "B"],
        "block": {"topic": {"work": "{coder}_work", "school": "{coder}_school"},
                  "tags": "{coder}_tags"},
    }
    with pytest.raises(UsageError) as e:
        read_gold(gold, cb, layout)
    msg = str(e.value)
    assert "layout: block.topic.onehot.school (coder A)" in msg
    assert "names 2 columns 'A_school' (columns 3, 6, counting from 1)" in msg
    assert "positions" in msg

    layout["positions"] = {"A_school": 3, "B_school": 6}
    r = read_gold(gold, cb, layout)
    assert r.coders == {"A": "human", "B": "human"}
    assert r.values["topic"] == {"A": {"1": "work", "2": "school"},
                                 "B": {"1": "school", "3": "work"}}
    assert r.values["tags"] == {"A": {"1": frozenset("a"), "3": frozenset("c")},
                                "B": {"1": frozenset("ab"), "3": frozenset()}}
    assert "2" not in r.values["topic"]["B"]  # B did not code unit 2: missing
    assert "several" not in problems(r)


def test_coder_blocks_as_explicit_columns_with_positions_and_a_gold_coder(tmp_path, cb):
    gold = blocks_file(tmp_path)
    r = read_gold(gold, cb, {
        "layout": "coder_blocks",
        "coders": {"A": {"tags": "A_tags"}, "B": {"tags": 7}, "final": {"tags": "B_tags"}},
        "kinds": {"final": "gold"},
    })
    assert r.coders == {"A": "human", "B": "human", "final": "gold"}
    assert r.values["tags"]["B"] == r.values["tags"]["final"]


def test_positions_naming_no_column_is_a_usage_error(tmp_path, cb):
    gold = blocks_file(tmp_path)
    with pytest.raises(UsageError, match=r"positions\.C_tags: no column of the layout is called"):
        read_gold(gold, cb, {"layout": "coder_blocks", "coders": ["A"],
                             "block": {"tags": "{coder}_tags"}, "positions": {"C_tags": 4}})
    with pytest.raises(UsageError, match=r"column position 9 is outside the 7 columns"):
        read_gold(gold, cb, {"layout": "coder_blocks", "coders": ["A"], "block": {"tags": 9}})


# -- auto-detection and layout errors --------------------------------------------------------


def test_auto_detects_wide_and_long(tmp_path, cb):
    wide = write_csv(tmp_path / "mine.csv", ["id", "topic", "level", "notes"],
                     [["1", "work", "low", "x"]])
    r = read_gold(wide, cb)
    assert r.coders == {"mine": "human"}
    assert r.values["topic"]["mine"] == {"1": "work"}
    assert r.values["level"]["mine"] == {"1": "low"}
    long = write_csv(tmp_path / "long.csv", ["unit", "coder", "dimension", "code"],
                     [["1", "x", "topic", "work"], ["1", "y", "tags", "a"]])
    r = read_gold(long, cb)
    assert r.coders == {"x": "human", "y": "human"}
    assert r.values["tags"]["y"] == {"1": frozenset("a")}


def test_undetectable_layout_says_which_keys_to_write(tmp_path, cb):
    gold = write_csv(tmp_path / "odd.csv", ["item", "Topic_1", "Topic_2"], [["1", "1", "0"]])
    with pytest.raises(UsageError) as e:
        read_gold(gold, cb)
    msg = str(e.value)
    assert "odd.csv: cannot tell how this gold file is laid out" in msg
    assert "'item', 'Topic_1', 'Topic_2'" in msg and "topic, tags, level, why" in msg
    for key in ("layout: wide", "id:", "columns:", "onehot", "coder_column", "coder_blocks",
                "value_map", "docs/reliability.md"):
        assert key in msg


def test_yaml_layout_with_a_typo_names_file_line_and_key(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "topic"], [["1", "work"]])
    lay = tmp_path / "layout.yaml"
    lay.write_text("layout: wide\nid: id\ncolums:\n  topic: topic\n", encoding="utf-8")
    with pytest.raises(UsageError) as e:
        read_gold(gold, cb, lay)
    msg = str(e.value)
    assert f"{lay}:3: colums: unknown key 'colums' for a 'wide' layout (did you mean " \
           "'columns'?); a 'wide' layout takes: layout, format" in msg

    lay.write_text("layout: coder_blocks\ncoders: [A]\nblock:\n  topic:\n    onehot: {work: x}\n"
                   "    all_zeros: work\n", encoding="utf-8")
    with pytest.raises(UsageError) as e:
        read_gold(gold, cb, lay)
    assert f"{lay}:6: block.topic.all_zeros: unknown key 'all_zeros' (did you mean " \
           "'all_zero'?)" in str(e.value)

    lay.write_text("layout: wiide\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"layout\.yaml:1: layout: unknown layout 'wiide' "
                                         r"\(did you mean 'wide'\?\)"):
        read_gold(gold, cb, lay)
    lay.write_text("id: id\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"layout\.yaml: missing key 'layout'"):
        read_gold(gold, cb, lay)
    lay.write_text("layout: wide\nrepeated: sometimes\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"layout\.yaml:2: repeated: .*'first', 'last' or "
                                         r"'agreed'"):
        read_gold(gold, cb, lay)
    lay.write_text("layout: coder_blocks\ncoders: [A]\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"needs a 'block'"):
        read_gold(gold, cb, lay)
    with pytest.raises(UsageError, match=r"no such layout file"):
        read_gold(gold, cb, tmp_path / "nope.yaml")


def test_yaml_layout_reads_number_keys_as_text(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "level"], [["1", "-1"], ["2", "1"]])
    lay = tmp_path / "layout.yaml"
    lay.write_text("layout: wide\ncoder: c\nvalue_map:\n  level:\n    -1: low\n    1: high\n",
                   encoding="utf-8")
    assert load_layout(lay).value_map == {"level": {"-1": "low", "1": "high"}}
    r = read_gold(gold, cb, lay)
    assert r.values["level"]["c"] == {"1": "low", "2": "high"}


def test_layout_dimension_not_in_codebook_is_a_usage_error(tmp_path, cb):
    gold = write_csv(tmp_path / "g.csv", ["id", "topic"], [["1", "work"]])
    with pytest.raises(UsageError, match=r"layout: columns\.topc: 'topc' is not a dimension of "
                                         r"codebook 'toy' \(did you mean 'topic'\?\)"):
        read_gold(gold, cb, {"layout": "wide", "columns": {"topc": "topic"}})


# -- check, combine, majority ----------------------------------------------------------------


def test_check_lists_unknown_codes_shapes_and_dimensions(cb):
    r = Ratings(units=["1", "2"], coders={"x": "human", "y": "llm"},
                values={"topic": {"x": {"1": "work", "2": "fun"}},
                        "tags": {"x": {"1": "a"}, "y": {"3": frozenset({"a", "q"})}},
                        "mood": {"x": {"1": "sad"}}})
    out = "\n".join(check(r, cb))
    assert "unknown code 'fun' for 'topic' (coder x, 1 unit: 2)" in out
    assert "unknown code 'q' for 'tags' (coder y, 1 unit: 3)" in out
    assert "'tags' takes a set of codes; coder x has another shape (1 unit: 1)" in out
    assert "dimension 'mood' is not in codebook 'toy'" in out
    assert "values for unit ids not in the list of units (1 unit: 3)" in out


def test_majority_with_ties_and_multi_label(cb):
    r = Ratings(units=["1", "2", "3", "4"], coders={"a": "human", "b": "human", "c": "human",
                                                    "m": "llm"})
    r.values["topic"] = {"a": {"1": "work", "2": "work", "3": "work"},
                         "b": {"1": "work", "2": "school", "3": "school"},
                         "c": {"1": "money", "2": "money"},
                         "m": {"1": "money", "2": "money", "3": "money", "4": "money"}}
    r.values["tags"] = {"a": {"1": frozenset("ab"), "2": frozenset()},
                        "b": {"1": frozenset("a"), "2": frozenset()},
                        "c": {"1": frozenset("bc"), "2": frozenset("c")}}
    m = majority(r, "topic")  # the human coders
    assert dict(m) == {"1": "work", "2": None, "3": None, "4": None}
    assert m.reasons["2"] == "tie between money, school, work (1 vote each)"
    assert m.reasons["3"] == "tie between school, work (1 vote each)"
    assert m.reasons["4"] == "0 of 3 coders answered"
    assert m.counts == {"tie": 2, "no answer": 1}
    assert majority(r, "topic", ["a", "b", "c", "m"])["2"] == "money"
    assert majority(r, "topic", ["a", "b"], min_coders=2)["3"] is None
    t = majority(r, "tags")
    assert t["1"] == frozenset("ab")  # a: 2 of 3, b: 2 of 3, c: 1 of 3
    assert t["2"] == frozenset()
    both = with_majority(r, ["a", "b", "c"])
    assert both.coders["majority"] == "gold"
    assert both.values["topic"]["majority"] == {"1": "work"}
    assert "majority of topic: ties are missing (2 units: 2, 3)" in both.problems


# -- runs ------------------------------------------------------------------------------------


def code(data: Path, server: FakeOpenAI, out: Path, codebook: str, **kw: Any):
    kw.setdefault("http_retries", 0)
    kw.setdefault("backoff_base", 0.01)
    return vsdcoder.code(data, codebook, model=MODEL, api_base=server.url, out=out,
                         api_key=KEY, progress=False, **kw)


def test_read_run_document_codebook(tmp_path):
    texts = {"a1": "My boss keeps yelling at me", "a2": "Exams next week scare me",
             "a3": "Rent is due and I am broke", "a4": "Nothing much"}
    codes = {"a1": "work", "a2": "school", "a3": "financial_problem"}
    data = write_csv(tmp_path / "d.csv", ["id", "text"], [list(x) for x in texts.items()])
    by_text = {t: codes.get(i) for i, t in texts.items()}

    def responder(req, srv):
        t = unit_text(req)
        if by_text[t] is None:  # never a valid code: the unit fails
            return Reply(completion(req, {"quote": "Nothing much", "stressor": "boredom"}))
        return Reply(completion(req, {"quote": " ".join(t.split()[1:3]),
                                      "stressor": by_text[t]}))

    with FakeOpenAI(responder) as srv:
        code(data, srv, tmp_path / "run", "sad-stressors", max_retries=0)
    r = read_run(tmp_path / "run", "sad-stressors")
    assert r.coders == {MODEL: "llm"}
    assert r.units == ["a1", "a2", "a3", "a4"]
    assert r.values["stressor"][MODEL] == codes
    assert r.matrix("stressor", [MODEL], ["a4"]) == [[None]]  # failed: missing
    ev = r.evidence[MODEL]
    assert ev["a1"]["quote"] == "boss keeps" and ev["a1"]["quote_verified"] is True
    assert texts["a1"][ev["a1"]["start"]:ev["a1"]["end"]] == "boss keeps"
    assert ev["a4"]["status"] == "failed" and "boredom" in ev["a4"]["error"]
    assert "a4" not in problems(r)  # the status is in the evidence; evaluate reports it
    # codes.jsonl alone, another name
    r2 = read_run(tmp_path / "run" / "codes.jsonl", "sad-stressors", name="gpt")
    assert r2.coders == {"gpt": "llm"} and r2.values["stressor"]["gpt"] == codes

    # merged with gold: ids on one side only are listed
    gold = write_csv(tmp_path / "gold.csv", ["id", "stressor"],
                     [["a1", "work"], ["a2", "family_issues"], ["a9", "other"]])
    both = combine(read_gold(gold, "sad-stressors", {"layout": "wide", "coder": "majority",
                                                     "kind": "gold"}), r)
    assert both.coders == {"majority": "gold", MODEL: "llm"}
    assert both.units == ["a1", "a2", "a9", "a3", "a4"]
    text = problems(both)
    assert "ids in the gold file only, not in run openai/fake (1 unit: a9)" in text
    assert "ids in run openai/fake only, not in the gold file (2 units: a3, a4)" in text
    assert both.matrix("stressor", ["majority", MODEL], ["a1", "a2", "a9"]) == [
        ["work", "family_issues", "other"], ["work", "school", None]]
    assert check(both, "sad-stressors") == []


def test_read_run_segment_codebook(tmp_path):
    cb = vsdcoder.load_codebook("vsd-mental-health").codebook
    ex = next(e for e in cb.examples if len(e.output.get("records", [])) >= 2)
    from vsdcoder.codebook.checks import render_example_output

    full = json.loads(render_example_output(cb, ex.output))
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "p1", "text": ex.text}) + "\n"
                    + json.dumps({"id": "p2", "text": "I like trains a lot."}) + "\n",
                    encoding="utf-8")

    def responder(req, srv):
        if unit_text(req) == ex.text:
            return Reply(completion(req, full))
        return Reply(completion(req, {"records": []}))

    with FakeOpenAI(responder) as srv:
        code(data, srv, tmp_path / "run", "vsd-mental-health")
    r = read_run(tmp_path / "run", cb)
    assert r.units == ["p1", "p2"]
    recs = full["records"]
    for d in cb.dimensions:
        want = frozenset(x[d.name] for x in recs if x.get(d.name) is not None)
        assert r.values[d.name][MODEL]["p1"] == want, d.name
        assert r.values[d.name][MODEL]["p2"] == frozenset()  # zero records: empty answer
    assert len(r.values["llm_impact"][MODEL]["p1"]) >= 1
    assert [x["quote"] for x in r.evidence[MODEL]["p1"]["records"]] == [x["quote"] for x in recs]
    assert r.evidence[MODEL]["p2"]["records"] == []
    assert check(r, cb) == []


def test_read_run_closed_gate_is_missing_not_an_empty_answer(tmp_path):
    from vsdcoder.codebook.checks import render_example_output

    cb = vsdcoder.load_codebook("tiktok-llm-mh").codebook
    yes = next(e for e in cb.examples if e.output.get("benefits"))
    no = json.loads(render_example_output(cb, {"personal_use": "no"}))
    data = write_csv(tmp_path / "d.csv", ["id", "text"], [["t1", yes.text], ["t2", "meh lol"]])

    def responder(req, srv):
        if unit_text(req) == yes.text:
            return Reply(completion(req, json.loads(render_example_output(cb, yes.output))))
        return Reply(completion(req, no))

    with FakeOpenAI(responder) as srv:
        code(data, srv, tmp_path / "run", "tiktok-llm-mh")
    raw = [json.loads(x) for x in (tmp_path / "run" / "codes.jsonl").read_text().splitlines()]
    assert raw[1]["codes"]["benefits"] == []
    r = read_run(tmp_path / "run", cb)
    assert r.values["benefits"][MODEL] == {"t1": frozenset(yes.output["benefits"])}
    assert r.values["personal_use"][MODEL] == {"t1": "yes", "t2": "no"}


def test_read_run_relevance_gate_and_baseline_kind(tmp_path):
    cbf = tmp_path / "cb.yaml"
    cbf.write_text(
        "vsdcoder: 1\nname: rel\nrelevance:\n  include: [about work]\nevidence: {quote: false}\n"
        "dimensions:\n  - name: topic\n    codes: [{name: pay}, {name: hours}]\n"
        "  - name: tags\n    type: multi\n    codes: [{name: a}, {name: b}]\n", encoding="utf-8")
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({
        "codebook": {"name": "rel", "version": "0.1.0"},
        "model": {"model": "baseline/majority-class"}}))
    lines = [
        {"id": "1", "status": "coded", "relevant": True, "codes": {"topic": "pay", "tags": ["a"]}},
        {"id": "2", "status": "coded", "relevant": False, "codes": {"topic": None, "tags": []}},
        {"id": "3", "status": "coded", "relevant": True, "codes": {"topic": "fun", "tags": []}},
        {"id": "4", "status": "duplicate", "duplicate_of": "1"},
        {"id": "5", "status": "skipped", "error": "empty text"},
    ]
    (run / "codes.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = read_run(run, cbf)
    coder = "baseline/majority-class"
    assert r.coders == {coder: "baseline"}
    assert r.values["relevant"][coder] == {"1": "true", "2": "false", "3": "true", "4": "true"}
    assert r.values["topic"][coder] == {"1": "pay", "4": "pay"}
    assert r.values["tags"][coder] == {"1": frozenset("a"), "3": frozenset(), "4": frozenset("a")}
    text = problems(r)
    assert "unknown code 'fun' for 'topic' (coder baseline/majority-class, 1 unit: 3)" in text
    assert r.evidence[coder]["5"] == {"status": "skipped", "error": "empty text"}
    assert "5" not in r.values["topic"][coder] and "unit: 5" not in text
    # gold may carry the relevance gate as a column too
    gold = write_csv(tmp_path / "g.csv", ["id", "relevant", "topic"],
                     [["1", "yes", "pay"], ["2", "no", "hours"], ["3", "", "hours"]])
    g = read_gold(gold, cbf, {"layout": "wide", "coder": "h"})
    assert g.values["relevant"]["h"] == {"1": "true", "2": "false"}
    assert g.values["topic"]["h"] == {"1": "pay", "3": "hours"}
    assert "'topic' is coded although the unit is not relevant (coder h, 1 unit: 2)" in \
        problems(g)


def test_read_run_errors(tmp_path):
    with pytest.raises(UsageError, match=r"no codes\.jsonl here"):
        read_run(tmp_path, "sad-stressors")
    (tmp_path / "codes.jsonl").write_text('{"id": "1"}\nnot json\n')
    with pytest.raises(UsageError, match=r"codes\.jsonl: line 2: not valid JSON"):
        read_run(tmp_path, "sad-stressors")


# -- the eval suites -------------------------------------------------------------------------


#: The suite folders in the repository (README, layout, run.sh); the data sets are not there.
CONVABUSE = ROOT / "evals" / "convabuse"
SAD = ROOT / "evals" / "sad"
SEVERITY = {"1": "not_abusive", "0": "ambiguous", "-1": "mildly_abusive",
            "-2": "strongly_abusive", "-3": "very_strongly_abusive"}


@pytest.fixture(scope="module")
def convabuse(tmp_path_factory):
    """The ConvAbuse suite built from the shared copy of the data set (vsdcoder.suites)."""
    from vsdcoder.suites import build_suite

    return build_suite("convabuse", source=need_shared("datasets", "convabuse"),
                       out=tmp_path_factory.mktemp("convabuse"))


@pytest.fixture(scope="module")
def sad_suite(tmp_path_factory):
    """The SAD suite built from the shared copy of the data set (vsdcoder.suites)."""
    from vsdcoder.suites import build_suite

    return build_suite("sad", source=need_shared("datasets", "sad"),
                       out=tmp_path_factory.mktemp("sad"))


def test_convabuse_suite_gold_matches_the_raw_csv(convabuse):
    import pandas as pd  # in the test extra
    r = read_gold(convabuse.gold, "convabuse", convabuse.layout)
    raw = pd.read_csv(convabuse.gold, header=None, skiprows=1, dtype=str,
                      keep_default_na=False)
    assert len(r.units) == len(raw) == 853
    assert r.units == raw[0].tolist()
    assert r.coders == {f"Annotator{i}": "human" for i in range(1, 9)}
    first = raw.map(lambda v: v.split(",")[0].strip())  # repeated annotations: the first
    sev = r.values["severity"]
    per_item = Counter()
    for a in range(8):
        base = 7 + 17 * a
        name = f"Annotator{a + 1}"
        labelled = (raw.iloc[:, base:base + 17] != "").any(axis=1)
        # per-annotator severity distribution = a direct count of the one-hot columns
        want = {SEVERITY[lab]: int((first.iloc[:, base + k] == "1").sum())
                for k, lab in enumerate(SEVERITY)}
        got = Counter(sev[name].values())
        assert {k: got.get(k, 0) for k in want} == want, name
        assert len(sev[name]) == int(labelled.sum())
        for uid, is_labelled in zip(raw[0], labelled, strict=True):
            per_item[uid] += int(is_labelled)
        # type: a direct count of each type column among abusive annotations
        abusive = first.iloc[:, base + 2:base + 5].eq("1").any(axis=1)
        for k, code in enumerate(("ableism", "homophobic", "intellectual", "racist", "sexist",
                                  "sexual_harassment", "transphobic")):
            col = first.iloc[:, base + 5 + k]  # by position: three headers say Annotator6_...
            n = int(((col == "1") & abusive).sum())
            assert sum(code in v for v in r.values["type"][name].values()) == n, (name, code)
        assert len(r.values["type"][name]) == int(abusive.sum())
    assert set(per_item.values()) <= set(range(2, 8))
    assert min(per_item.values()) == 2
    assert sum(per_item.values()) == 2547
    # the transphobic columns of annotators 7 and 8 are read from their own positions
    assert list(raw.columns[[103, 120, 137]]) == [103, 120, 137]
    header = convabuse.gold.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert [header[i] for i in (103, 120, 137)] == ["Annotator6_transphobic"] * 3
    # data problems are reported, not raised
    text = problems(r)
    assert "repeated annotations of coder Annotator3 disagree (3 units: 273, 2774, 1274)" in text
    assert "'type' is coded although 'severity' is not one of" in text
    assert check(r, "convabuse") == []


def test_convabuse_suite_data_matches_gold(convabuse):
    with open(convabuse.data, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 853
    assert list(rows[0]) == ["id", "text", "prev_agent", "prev_user", "agent", "bot"]
    r = read_gold(convabuse.gold, "convabuse", convabuse.layout)
    assert [x["id"] for x in rows] == r.units
    assert all(r.texts[x["id"]] == x["text"] for x in rows)
    assert convabuse.layout.read_bytes() == (CONVABUSE / "layout.yaml").read_bytes()


def test_convabuse_suite_readme():
    # the data set is not in the repository: the README says where it comes from and how to get it
    assert not (CONVABUSE / "LICENSE").exists() and not (CONVABUSE / "gold.csv").exists()
    readme = (CONVABUSE / "README.md").read_text()
    for needle in ("CC BY 4.0", "Creative Commons Attribution 4.0",
                   "https://creativecommons.org/licenses/by/4.0/",
                   "10.18653/v1/2021.emnlp-main.587", "Content warning",
                   "github.com/amandacurry/convabuse", "c0a9469f48956e868276c605d499010ea3c7c0d0",
                   "vsdcoder evals fetch convabuse", "SUITE=$(vsdcoder evals build convabuse)",
                   "vsdcoder eval --gold $SUITE/gold.csv"):
        assert needle in readme
    import os

    assert os.access(CONVABUSE / "run.sh", os.X_OK)


def test_sad_suite_gold(sad_suite):
    r = read_gold(sad_suite.gold, "sad-stressors", sad_suite.layout)
    assert r.coders == {"majority": "gold"}
    assert len(r.units) == 306 and r.problems == []
    assert Counter(r.values["stressor"]["majority"].values()) == {
        c: 34 for c in vsdcoder.load_codebook("sad-stressors").codebook.dimension(
            "stressor").codable_names()}
    with open(sad_suite.data, encoding="utf-8", newline="") as f:
        assert [x["id"] for x in csv.DictReader(f)] == r.units
    with open(sad_suite.gold, encoding="utf-8", newline="") as f:
        raw = {x["id"]: x["stressor"] for x in csv.DictReader(f)}
    assert r.values["stressor"]["majority"] == raw
    # the same file without a layout: detected as wide
    auto = read_gold(sad_suite.gold, "sad-stressors")
    assert auto.values["stressor"]["gold"] == raw


def test_sad_suite_readme():
    assert not (SAD / "gold.csv").exists() and not (SAD / "data.csv").exists()
    readme = (SAD / "README.md").read_text()
    assert "MIT License" in readme and "10.1145/3411763.3451799" in readme
    assert "not released" in readme
    for needle in ("github.com/PervasiveWellbeingTech/Stress-Annotated-Dataset-SAD",
                   "1d6aa672c4eeb82e0bbc6533b75e0694da80ae20", "vsdcoder evals fetch sad",
                   "SUITE=$(vsdcoder evals build sad)", "vsdcoder eval --gold $SUITE/gold.csv"):
        assert needle in readme
