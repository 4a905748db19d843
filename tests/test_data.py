"""Reading units from CSV, TSV, JSONL, Parquet and Excel, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from vsdcoder.data.read import DataSpec, Skip, Unit, UnitReader, file_hash, sample_units
from vsdcoder.errors import UsageError

ROWS = [
    {"uid": 101, "body": "My boss keeps yelling at me", "channel": "sms", "age": 34, "grp": "a"},
    {"uid": 102, "body": "Exams next week, café closed", "channel": "web", "age": 19, "grp": "b"},
    {"uid": 103, "body": "Rent is due and I am broke", "channel": "sms", "age": 50, "grp": "a"},
]


def write(path: Path, rows: list[dict] | pd.DataFrame) -> Path:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".parquet":
        df.to_parquet(path, index=False, engine="pyarrow")
    elif suffix == ".xlsx":
        df.to_excel(path, index=False, engine="openpyxl")
    else:
        raise AssertionError(suffix)
    return path


def read(path: Path, **kw) -> tuple[list[Unit], list[Skip]]:
    reader = UnitReader(DataSpec(path, **kw))
    units = list(reader)
    return units, reader.skips


def error(path: Path, **kw) -> str:
    with pytest.raises(UsageError) as info:
        read(path, **kw)
    return str(info.value)


FORMATS = [".csv", ".tsv", ".jsonl", ".parquet", ".xlsx"]
#: Number of the first data row as a person finds it: a spreadsheet line (the header is line 1),
#: a JSONL line, a Parquet row.
FIRST_ROW = {".csv": 2, ".tsv": 2, ".jsonl": 1, ".parquet": 1, ".xlsx": 2}


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_reads_the_same_units(tmp_path, suffix):
    path = write(tmp_path / f"d{suffix}", ROWS)
    units, skips = read(
        path, id_col="uid", text_col="body", context_cols=("channel",), meta_cols=("age", "grp")
    )
    assert skips == []
    first = FIRST_ROW[suffix]
    assert [(u.id, u.text, u.context, u.row) for u in units] == [
        ("101", "My boss keeps yelling at me", "channel: sms", first),
        ("102", "Exams next week, café closed", "channel: web", first + 1),
        ("103", "Rent is due and I am broke", "channel: sms", first + 2),
    ]
    ages = [u.meta["age"] for u in units]
    assert [str(a) for a in ages] == ["34", "19", "50"]
    assert [u.meta["grp"] for u in units] == ["a", "b", "a"]


def test_defaults_are_id_and_text_and_a_bom_is_ignored(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffid,text\n1,hello there\n".encode())
    units, _ = read(p)
    assert [(u.id, u.text) for u in units] == [("1", "hello there")]


def test_context_with_several_columns_and_empty_values(tmp_path):
    rows = [
        {"id": 1, "text": "hi there", "a": "x", "b": "y"},
        {"id": 2, "text": "hello", "a": "", "b": "z"},
        {"id": 3, "text": "hey", "a": "", "b": ""},
    ]
    units, _ = read(write(tmp_path / "c.csv", rows), context_cols=("a", "b"))
    assert [u.context for u in units] == ["a: x\nb: y", "b: z", None]


@pytest.mark.parametrize("suffix", FORMATS)
def test_missing_columns_list_the_columns_there_are(tmp_path, suffix):
    path = write(tmp_path / f"d{suffix}", ROWS)
    msg = error(path)
    assert "columns 'id' (set --id-col), 'text' (set --text-col) not found" in msg
    assert "the file has: 'uid', 'body', 'channel', 'age', 'grp'" in msg
    msg = error(path, id_col="uid", text_col="body", meta_cols=("agee",))
    assert "column 'agee' not found; the file has: 'uid', 'body'" in msg


@pytest.mark.parametrize("suffix", FORMATS)
def test_duplicate_ids_name_both_rows(tmp_path, suffix):
    rows = [{"id": 1, "text": "a b"}, {"id": 2, "text": "c d"}, {"id": 1, "text": "e f"}]
    msg = error(write(tmp_path / f"d{suffix}", rows))
    first = FIRST_ROW[suffix]
    assert f"row {first + 2}: duplicate id '1' (first at row {first})" in msg


def test_ids_are_compared_as_text_after_trimming(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,text\n7,a\n 7 ,b\n", encoding="utf-8")
    assert "row 3: duplicate id '7' (first at row 2)" in error(p)


def test_empty_id_is_an_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,text\n1,a\n,b\n", encoding="utf-8")
    assert "row 3: empty id in column 'id'" in error(p)


def test_latin1_bytes_in_a_utf8_csv_suggest_encoding(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes("id,text\n1,plain\n2,caf\u00e9 au lait\n".encode("latin-1"))
    msg = error(p)
    assert "is not valid utf-8-sig" in msg and "--encoding latin-1" in msg
    units, _ = read(p, encoding="latin-1")
    assert [u.text for u in units] == ["plain", "café au lait"]
    assert "unknown encoding 'klingon'" in error(p, encoding="klingon")


def test_latin1_bytes_in_a_utf8_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_bytes('{"id": 1, "text": "caf\u00e9"}\n'.encode("latin-1"))
    assert "--encoding" in error(p)
    assert [u.text for u in read(p, encoding="latin-1")[0]] == ["café"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_empty_texts_are_reported_skips(tmp_path, suffix):
    df = pd.DataFrame({"id": [1, 2, 3, 4], "text": ["hello there", None, "   ", "bye now"]})
    units, skips = read(write(tmp_path / f"d{suffix}", df))
    first = FIRST_ROW[suffix]
    assert [u.id for u in units] == ["1", "4"]
    assert skips == [Skip("2", first + 1, "empty text"), Skip("3", first + 2, "empty text")]


def test_skips_carry_meta(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,text,age\n1,,30\n", encoding="utf-8")
    _, skips = read(p, meta_cols=("age",))
    assert skips == [Skip("1", 2, "empty text", meta={"age": "30"})]


def test_malformed_jsonl_names_the_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"id": 1, "text": "a"}\n\n{"id": 2, "text": "b"\n', encoding="utf-8")
    msg = error(p)
    assert "line 3: not valid JSON" in msg and "each line must be one JSON object" in msg
    p.write_text('{"id": 1, "text": "a"}\n["not", "an", "object"]\n', encoding="utf-8")
    assert "line 2: expected a JSON object per line, got list" in error(p)


def test_jsonl_blank_lines_are_ignored_and_keys_may_vary(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(
        '\n{"id": "a", "text": "x y"}\n{"text": "z w", "id": "b", "extra": 1}\n', encoding="utf-8"
    )
    units, _ = read(p)
    assert [(u.id, u.text, u.row) for u in units] == [("a", "x y", 2), ("b", "z w", 3)]


def test_ragged_csv_row(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,text\n1,a\n2,b,extra\n", encoding="utf-8")
    assert "line 3: more fields than the header's 2 columns" in error(p)


def test_quoted_newlines_in_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('id,text\n1,"line one\nline two"\n2,x\n', encoding="utf-8")
    units, _ = read(p)
    assert [(u.id, u.text) for u in units] == [("1", "line one\nline two"), ("2", "x")]


def test_unknown_suffix_and_missing_file(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("id,text\n1,a\n", encoding="utf-8")
    assert "cannot tell the format from the suffix '.txt'" in error(p)
    assert [u.id for u in read(p, fmt="csv")[0]] == ["1"]
    assert "no such data file" in error(tmp_path / "nope.csv")


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_corrupt_binary_files(tmp_path, suffix):
    p = tmp_path / f"d{suffix}"
    p.write_bytes(b"this is not a real file")
    kind = "Parquet" if suffix == ".parquet" else "Excel"
    assert f"not a readable {kind} file" in error(p)


def test_dedupe_keeps_the_first_copy(tmp_path):
    rows = [
        {"id": 1, "text": "Same text here"},
        {"id": 2, "text": "other"},
        {"id": 3, "text": "  Same   text here "},
        {"id": 4, "text": "same text here"},
    ]
    units, skips = read(write(tmp_path / "d.csv", rows), dedupe=True)
    assert [u.id for u in units] == ["1", "2", "4"]  # case is kept: "same" differs from "Same"
    assert skips == [Skip("3", 4, "duplicate text", "1")]
    units, skips = read(write(tmp_path / "d.csv", rows))
    assert [u.id for u in units] == ["1", "2", "3", "4"] and skips == []


def test_sample_is_reproducible_and_in_file_order(tmp_path):
    path = write(tmp_path / "d.csv", [{"id": i, "text": f"t {i}"} for i in range(100)])

    def sample(n: int, seed: int) -> list[str]:
        return [u.id for u in sample_units(iter(UnitReader(DataSpec(path))), n, seed)]

    a = sample(10, 1)
    assert a == sample(10, 1)
    assert len(set(a)) == 10
    assert a == sorted(a, key=int)
    assert a != sample(10, 2)
    assert sample(500, 1) == [str(i) for i in range(100)]


def test_large_integer_ids_and_float_formatting(tmp_path):
    df = pd.DataFrame({"id": [1.0, 2.5, 1e15], "text": ["a", "b", "c"]})
    units, _ = read(write(tmp_path / "d.parquet", df))
    assert [u.id for u in units] == ["1", "2.5", "1000000000000000"]


def test_file_hash(tmp_path):
    import hashlib

    p = tmp_path / "d.csv"
    p.write_bytes(b"id,text\n1,a\n")
    assert file_hash(p) == "sha256:" + hashlib.sha256(b"id,text\n1,a\n").hexdigest()


# -- through the CLI: exit code 2 and a message, never a traceback ---------------------------


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    from vsdcoder.cli.main import main

    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))

    def run(data: Path, *more: str) -> tuple[int, str]:
        rc = main(
            [
                "code",
                str(data),
                "--codebook",
                "sad-stressors",
                "--model",
                "openai/fake",
                "--api-base",
                "http://127.0.0.1:9/v1",
                "--out",
                str(tmp_path / "out"),
                *more,
            ]
        )
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return rc, err

    return run


def test_cli_bad_inputs(tmp_path, cli):
    cases: list[tuple[str, bytes, tuple[str, ...], str]] = [
        ("cols.csv", b"id,body\n1,a\n", (), "the file has: 'id', 'body'"),
        ("cols.xlsx", b"", ("--text-col", "nope"), "'nope' (set --text-col) not found"),
        ("dup.tsv", b"id\ttext\n1\ta\n1\tb\n", (), "row 3: duplicate id '1' (first at row 2)"),
        ("enc.csv", "id,text\n1,caf\u00e9\n".encode("latin-1"), (), "--encoding"),
        ("bad.jsonl", b'{"id": 1, "text": "a"}\n{oops}\n', (), "line 2: not valid JSON"),
        ("ragged.csv", b"id,text\n1,a,b\n", (), "line 2: more fields"),
        ("what.txt", b"id,text\n", (), "cannot tell the format"),
        ("none.csv", None, (), "no such data file"),
        ("ok.csv", b"id,text\n1,a\n", ("--concurrency", "0"), "--concurrency must be at least 1"),
        ("ok.csv", b"id,text\n1,a\n", ("--mode", "telepathy"), "unknown --mode 'telepathy'"),
    ]
    for name, content, more, expected in cases:
        p = tmp_path / name
        if name.endswith(".xlsx"):
            write(p, [{"id": 1, "text": "a"}])
        elif content is not None:
            p.write_bytes(content)
        rc, err = cli(p, *more)
        assert rc == 2, (name, err)
        assert expected in err, (name, err)
        assert err.startswith("error: "), (name, err)
    # nothing half-written: no manifest and no session was left 'running'
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_cli_unknown_codebook(tmp_path, cli, capsys):
    from vsdcoder.cli.main import main

    p = tmp_path / "d.csv"
    p.write_text("id,text\n1,a\n", encoding="utf-8")
    rc = main(["code", str(p), "--codebook", "no-such-codebook", "--model", "openai/fake"])
    out, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in out + err
    assert "no-such-codebook" in err


def test_jsonl_numbers_and_nested_values_survive_as_meta(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(
        json.dumps({"id": 5, "text": "hello there", "tags": ["x", "y"], "n": 2.5}) + "\n",
        encoding="utf-8",
    )
    (u,) = read(p, meta_cols=("tags", "n"))[0]
    assert u.id == "5"
    assert u.meta == {"tags": ["x", "y"], "n": 2.5}


def test_header_only_file_still_checks_columns(tmp_path):
    from vsdcoder.data.read import DataSpec, UnitReader
    from vsdcoder.errors import UsageError

    p = tmp_path / "h.csv"
    p.write_text("id,body\n")
    msg = "'text' \\(set --text-col\\) not found; the file has: 'id', 'body'"
    with pytest.raises(UsageError, match=msg):
        list(UnitReader(DataSpec(p)))
    assert list(UnitReader(DataSpec(p, text_col="body"))) == []
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(UsageError, match="no header and no rows"):
        list(UnitReader(DataSpec(empty)))
