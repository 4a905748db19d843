"""Bad inputs a new user meets first (issue 11, item 7).

Did-you-mean for every name typed (columns, options, redactors, export formats, dimensions);
nothing on disk and no model loaded before the inputs are checked; a file with no units; every
repeated id listed at once and ``--dedupe-ids first``; ``--sample N --stratify COL``;
``baseline --context-cols``; the wording of the run summary and the eval report.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.data.read import DataSpec, DataWarning, UnitReader, allocate, check_data, sample_units
from vsdcoder.errors import UsageError
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

KEY = "sk-test-inputs-0000"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("VSDCODER_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)  # a default run directory would be made under ./runs


def write_csv(path: Path, rows: list[tuple], header: tuple[str, ...] = ("id", "text")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def answer(req: dict[str, Any]) -> Reply:
    text = unit_text(req)
    return Reply(completion(req, {"quote": " ".join(text.split()[:2]), "stressor": "work"}))


def main(capsys, *argv: str) -> tuple[int, str, str]:
    from vsdcoder.cli.main import main as cli_main

    rc = cli_main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def code(capsys, data: Path, *more: str, out: Path | None = None,
         model: str = "openai/fake", api_base: str = "http://127.0.0.1:9/v1"):
    args = ["code", str(data), "--codebook", "sad-stressors", "--model", model,
            "--api-base", api_base]
    if out is not None:
        args += ["--out", str(out)]
    return main(capsys, *args, *more)


def nothing_made(tmp_path: Path, out: Path | None = None) -> None:
    """No run directory: neither ``out`` nor a default one under ./runs."""
    if out is not None:
        assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert not (tmp_path / "runs").exists()


# -- did you mean -------------------------------------------------------------------------------


def test_misspelt_columns_get_a_suggestion_and_leave_nothing_behind(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", [("1", "my boss", "sms", "34")],
                     header=("id", "text", "channel", "age"))
    cases = [
        (("--text-col", "txt"), "column 'txt' (set --text-col) not found; the file has: 'id', "
                                "'text', 'channel', 'age' (did you mean 'text'?)"),
        (("--id-col", "ID"), "(did you mean 'id'?)"),
        (("--meta-cols", "agee"), "column 'agee' not found"),
        (("--context-cols", "chanel,agee"), "(did you mean 'channel' for 'chanel', 'age' for "
                                            "'agee'?)"),
        (("--sample", "1", "--stratify", "chanel"), "'chanel' (set --stratify) not found"),
    ]
    for more, expected in cases:
        for out in (tmp_path / "out", None):  # an explicit and a default run directory
            rc, _, err = code(capsys, data, *more, out=out)
            assert rc == 2, (more, err)
            assert err.startswith("error: ") and expected in err, (more, err)
            nothing_made(tmp_path, tmp_path / "out")
    # nothing close: no suggestion
    rc, _, err = code(capsys, data, "--text-col", "zzz", out=tmp_path / "out")
    assert rc == 2 and "did you mean" not in err


def test_option_names_get_a_suggestion(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", [("1", "my boss")])
    rc, _, err = code(capsys, data, "--mode", "tool", out=tmp_path / "out")
    assert rc == 2 and "unknown --mode 'tool' (did you mean 'tools'?)" in err
    rc, _, err = code(capsys, data, "--redact", "patern", out=tmp_path / "out")
    assert rc == 2 and "unknown redactor 'patern' (did you mean 'patterns'?)" in err
    rc, _, err = code(capsys, data, "--dedupe-ids", "frist", out=tmp_path / "out")
    assert rc == 2 and "--dedupe-ids 'frist' (did you mean 'first'?)" in err
    nothing_made(tmp_path, tmp_path / "out")
    rc, _, err = main(capsys, "codebook", "export", "sad-stressors", "-f", "qdx", "-o",
                      str(tmp_path / "x.qdc"))
    assert rc == 2 and "(did you mean 'qdc'?)" in err


def test_suggestions_ignore_case_and_skip_exact_names():
    from vsdcoder.suggest import close_matches, did_you_mean

    assert did_you_mean("Text", ["id", "text"]) == " (did you mean 'text'?)"
    assert did_you_mean("stresor", ["stressor", "relevant"]) == " (did you mean 'stressor'?)"
    assert did_you_mean("zzz", ["stressor"]) == ""
    assert close_matches("text", ["text"]) == []


# -- nothing on disk, no model, before the inputs are checked ----------------------------------


def test_header_only_and_textless_files_exit_2_before_any_model_loads(tmp_path, capsys,
                                                                      monkeypatch):
    from vsdcoder.coding import local

    def no_model(*a, **k):  # pragma: no cover (the point is that it is never called)
        raise AssertionError("a model was loaded for a file with nothing to code")

    monkeypatch.setattr(local, "load_llama", no_model)
    header_only = tmp_path / "h.csv"
    header_only.write_text("id,text\n", encoding="utf-8")
    textless = write_csv(tmp_path / "t.csv", [("1", ""), ("2", "   ")])
    for data, expected in ((header_only, "the file has a header but no rows; there is nothing "
                                         "to code"),
                           (textless, "none of the 2 row(s) has a text in column 'text'")):
        for model in ("local/smollm2", "openai/fake"):
            rc, out, err = code(capsys, data, out=tmp_path / "out", model=model)
            assert rc == 2, (data, model, err)
            assert err.startswith("error: ") and expected in err, err
            assert "run finished" not in out
            nothing_made(tmp_path, tmp_path / "out")
    with pytest.raises(UsageError, match="no rows"):
        vsdcoder.code(header_only, "sad-stressors", model="openai/fake", out=tmp_path / "out")
    nothing_made(tmp_path, tmp_path / "out")


def test_bad_data_with_a_default_run_directory_makes_no_runs_folder(tmp_path, capsys):
    dup = write_csv(tmp_path / "dup.csv", [("1", "a b"), ("1", "c d")])
    rc, _, err = code(capsys, dup)
    assert rc == 2 and "duplicate id '1'" in err
    nothing_made(tmp_path)
    # and 'runs list' finds no half-made run
    rc, out, _ = main(capsys, "runs", "list", "--dir", str(tmp_path / "runs"), "--json")
    assert json.loads(out or "[]") == []


# -- repeated ids -------------------------------------------------------------------------------


def repeated(tmp_path: Path) -> Path:
    """200 units, 61 of them repeating an earlier id, 10 of those with another text."""
    rows = [(f"u{i:03d}", f"text number {i}") for i in range(200)]
    for j in range(61):
        i = j * 3
        rows.append((f"u{i:03d}", f"another text {i}" if j < 10 else f"text number {i}"))
    return write_csv(tmp_path / "rep.csv", rows)


def test_every_repeated_id_is_listed_at_once(tmp_path, capsys):
    data = repeated(tmp_path)
    with pytest.raises(UsageError) as info:
        list(UnitReader(DataSpec(data)))
    msg = str(info.value)
    assert msg.startswith(f"{data}: 61 rows repeat an earlier row's id (10 with a different "
                          "text); ids must be unique")
    assert "--dedupe-ids first" in msg and "The first 10:" in msg
    assert "  row 202: duplicate id 'u000' (first at row 2), with a different text" in msg
    assert msg.count("duplicate id") == 10 and msg.rstrip().endswith("... and 51 more")
    # no unit is handed out after the first repeat (the rest of the file is only scanned)
    reader = UnitReader(DataSpec(data))
    got = []
    with pytest.raises(UsageError):
        for u in reader:
            got.append(u.id)
    assert len(got) == 200 and reader.duplicates.count == 61
    rc, _, err = code(capsys, data, out=tmp_path / "out")
    assert rc == 2 and err.startswith(f"error: {data}: 61 rows repeat")
    nothing_made(tmp_path, tmp_path / "out")


def test_one_repeated_id_is_one_line(tmp_path):
    data = write_csv(tmp_path / "d.csv", [("1", "a"), ("2", "b"), ("1", "a")])
    with pytest.raises(UsageError) as info:
        list(UnitReader(DataSpec(data)))
    assert "\n" not in str(info.value)
    assert "row 4: duplicate id '1' (first at row 2); ids must be unique" in str(info.value)


def test_dedupe_ids_first_codes_the_first_row_and_warns(tmp_path, capsys):
    data = repeated(tmp_path)
    check = check_data(DataSpec(data, dedupe_ids="first"))
    assert (check.units, check.duplicates.count, check.duplicates.differing) == (200, 61, 10)
    units = list(UnitReader(DataSpec(data, dedupe_ids="first")))
    assert [u.id for u in units] == [f"u{i:03d}" for i in range(200)]
    assert units[0].text == "text number 0"  # the first row, not the repeat

    small = write_csv(tmp_path / "small.csv", [("1", "my boss yells"), ("2", "exams soon"),
                                               ("1", "rent is due")])
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        with pytest.warns(DataWarning, match="1 row repeats an earlier row's id"):
            summary = vsdcoder.code(small, "sad-stressors", model="openai/fake",
                                    api_base=srv.url, api_key=KEY, out=tmp_path / "py",
                                    dedupe_ids="first", http_retries=1)
        assert summary.counts == {"coded": 2}
        rc, _, err = code(capsys, small, "--dedupe-ids", "first", out=tmp_path / "cli",
                          api_base=srv.url)
        assert sorted(unit_text(r) for r in srv.requests) == ["exams soon", "my boss yells"]
    assert rc == 0, err
    assert "warning: " in err and "row 4: duplicate id '1' (first at row 2), with a " \
                                  "different text" in err


# -- stratified sample --------------------------------------------------------------------------


def test_allocate_is_proportional_with_one_per_stratum():
    assert allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    assert allocate({"a": 97, "b": 2, "c": 1}, 10) == {"a": 8, "b": 1, "c": 1}
    assert allocate({"a": 5, "b": 5}, 20) == {"a": 5, "b": 5}  # everything
    assert allocate({"a": 100, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1}, 6) == \
        {s: 1 for s in "abcdef"}  # the minimum of one wins over the proportion
    # more strata than units: the largest strata get one each
    assert allocate({"a": 10, "b": 5, "c": 1, "d": 1}, 2) == {"a": 1, "b": 1, "c": 0, "d": 0}
    rng = random.Random(3)
    for _ in range(200):
        sizes = {f"s{i}": rng.randint(1, 50) for i in range(rng.randint(1, 8))}
        n = rng.randint(1, sum(sizes.values()))
        got = allocate(sizes, n)
        assert sum(got.values()) == n
        assert all(0 <= got[s] <= sizes[s] for s in sizes)
        if len(sizes) <= n:
            assert all(got[s] >= 1 for s in sizes)


def test_stratified_sample_is_seeded_and_keeps_every_stratum(tmp_path):
    rows = [(f"u{i:03d}", f"text {i}", "big" if i < 90 else ("mid" if i < 98 else "rare"))
            for i in range(100)]
    data = write_csv(tmp_path / "d.csv", rows, header=("id", "text", "grp"))

    def sample(seed: int) -> list[str]:
        return [u.id for u in sample_units(UnitReader(DataSpec(data, stratify="grp")), 10,
                                           seed)]

    a, b = sample(1), sample(1)
    assert a == b and a != sample(2)
    strata = Counter("big" if int(i[1:]) < 90 else ("mid" if int(i[1:]) < 98 else "rare")
                     for i in a)
    assert strata == {"big": 8, "mid": 1, "rare": 1}
    assert a == sorted(a)  # in file order
    # without --stratify the sample is the simple random one it always was
    plain = [u.id for u in sample_units(UnitReader(DataSpec(data)), 10, 1)]
    assert Counter(int(i[1:]) >= 90 for i in plain)[True] <= 10


def test_stratify_through_the_cli_and_the_api(tmp_path, capsys):
    rows = [(f"u{i:02d}", f"my boss number {i}", "sms" if i < 16 else "web") for i in range(20)]
    data = write_csv(tmp_path / "d.csv", rows, header=("id", "text", "channel"))
    rc, _, err = code(capsys, data, "--stratify", "channel", out=tmp_path / "out")
    assert rc == 2 and "--stratify needs --sample N" in err
    nothing_made(tmp_path, tmp_path / "out")
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        summary = vsdcoder.code(data, "sad-stressors", model="openai/fake", api_base=srv.url,
                                api_key=KEY, out=tmp_path / "run", sample=5, sample_seed=4,
                                stratify="channel", meta_cols=["channel"], http_retries=1)
    lines = [json.loads(x) for x in (tmp_path / "run" / "codes.jsonl").read_text().splitlines()]
    assert summary.counts == {"coded": 5}
    assert Counter(x["meta"]["channel"] for x in lines) == {"sms": 4, "web": 1}
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())["data"]
    assert (m["sample"], m["stratify"], m["sample_seed"], m["dedupe_ids"]) == (5, "channel", 4,
                                                                                "error")
    rc, out, err = code(capsys, data, "--sample", "5", "--seed", "4", "--stratify", "channel",
                        "--dry-run", out=tmp_path / "dry")
    assert rc == 0, err
    assert "5 units to code" in out


# -- baseline --context-cols --------------------------------------------------------------------


def test_baseline_context_cols_are_features_and_stored(tmp_path, capsys):
    from vsdcoder.baseline import _document, run_baseline
    from vsdcoder.data.read import Unit

    assert _document(Unit("1", "my boss", "channel: SMS")) == "my boss\nctx_channel ctx_sms"
    assert _document(Unit("1", "my boss")) == "my boss"
    # the code is only in the context: with it the baseline learns it, without it cannot
    rows, gold = [], []
    for i in range(40):
        code = "work" if i % 2 else "school"
        rows.append((f"u{i}", f"a message number {i}", f"{code}place"))
        gold.append((f"u{i}", code))
    data = write_csv(tmp_path / "d.csv", rows, header=("id", "text", "where"))
    gold_csv = write_csv(tmp_path / "g.csv", gold, header=("id", "stressor"))
    with_ctx = run_baseline(data, "sad-stressors", gold_csv, out=tmp_path / "b1",
                            context_cols=["where"], folds=4)
    without = run_baseline(data, "sad-stressors", gold_csv, out=tmp_path / "b2", folds=4)
    assert with_ctx.cv["stressor"]["accuracy"] == 1.0
    assert without.cv["stressor"]["accuracy"] < 0.8
    manifest = json.loads((tmp_path / "b1" / "manifest.json").read_text())
    assert manifest["data"]["context_cols"] == ["where"]
    rc, out, err = main(capsys, "baseline", str(data), "-c", "sad-stressors", "-g", str(gold_csv),
                        "--context-cols", "where", "--folds", "4", "--out",
                        str(tmp_path / "b3"), "--json")
    assert rc == 0, err
    assert json.loads(out)["cv"]["stressor"]["accuracy"] == 1.0
    # a misspelt column or dimension: a suggestion, exit 2, no run directory
    rc, _, err = main(capsys, "baseline", str(data), "-c", "sad-stressors", "-g", str(gold_csv),
                      "--context-cols", "wher", "--out", str(tmp_path / "b4"))
    assert rc == 2 and "(did you mean 'where'?)" in err
    rc, _, err = main(capsys, "baseline", str(data), "-c", "sad-stressors", "-g", str(gold_csv),
                      "--dimensions", "stresor", "--out", str(tmp_path / "b4"))
    assert rc == 2 and "(did you mean 'stressor'?)" in err
    assert not (tmp_path / "b4").exists()


# -- wording ------------------------------------------------------------------------------------


def test_eval_report_says_the_once(tmp_path):
    from rich.console import Console

    from vsdcoder.reliability.evaluate import evaluate
    from vsdcoder.reliability.report import print_report, render_html
    from vsdcoder.reliability.types import Ratings

    units = [f"u{i}" for i in range(6)]
    codes = ["work", "school", "work", "family_issues", "school", "work"]
    gold = Ratings(units=units, coders={"ann": "human"},
                   values={"stressor": {"ann": dict(zip(units, codes, strict=True))}})
    pred = Ratings(units=units, coders={"llm": "llm"},
                   values={"stressor": {"llm": dict(zip(units, codes, strict=True))}})
    rep = evaluate(gold, [pred], "sad-stressors", bootstrap=0, permutations=0)
    con = Console(record=True, width=120)
    print_report(rep, con)
    text = con.export_text()
    assert "Evaluation against the one human coder 'ann'" in text
    assert "the the" not in text and "the the" not in render_html(rep)
