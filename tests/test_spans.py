"""Span overlap of segment codes (vsdcoder.reliability.spans) and eval --gold-spans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.reliability.evaluate import evaluate
from vsdcoder.reliability.spans import (
    Span,
    iou,
    pred_records_from_run,
    read_gold_spans,
    span_scores,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


SEGMENT = """
vsdcoder: 1
name: toy-seg
unit: segment
dimensions:
  - name: value
    type: single
    codes: [{name: privacy}, {name: autonomy}, {name: trust}]
"""


def rec(start, end, code):
    return {"start": start, "end": end, "codes": {"value": code}}


def score(gold, pred, **kw):
    spans = {"u1": [Span("u1", c, s, e) for s, e, c in gold]}
    return span_scores(spans, {"u1": [rec(*r) for r in pred]}, dimension="value", **kw)


def test_iou_by_hand():
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 10), (2, 12)) == pytest.approx(8 / 12)
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (10, 20)) == 0.0


def test_exact_match():
    s = score([(0, 10, "privacy")], [(0, 10, "privacy")])
    c = s["codes"]["privacy"]
    assert (c["precision"], c["recall"], c["f1"], c["mean_iou"]) == (1.0, 1.0, 1.0, 1.0)


def test_partial_overlap_above_and_below_the_threshold():
    above = score([(0, 10, "privacy")], [(2, 12, "privacy")])["codes"]["privacy"]
    assert above["matched"] == 1 and above["mean_iou"] == pytest.approx(8 / 12)
    below = score([(0, 10, "privacy")], [(5, 15, "privacy")])["codes"]["privacy"]
    assert below["matched"] == 0 and below["f1"] == 0.0 and below["mean_iou"] is None
    # a lower threshold lets 1/3 through
    low = score([(0, 10, "privacy")], [(5, 15, "privacy")], min_overlap=0.3)
    assert low["codes"]["privacy"]["matched"] == 1


def test_wrong_code_does_not_match():
    s = score([(0, 10, "privacy")], [(0, 10, "trust")])
    assert s["codes"]["privacy"] == {"gold": 1, "predicted": 0, "matched": 0, "precision": None,
                                     "recall": 0.0, "f1": None, "mean_iou": None}
    assert s["codes"]["trust"]["precision"] == 0.0 and s["codes"]["trust"]["recall"] is None
    assert s["micro"]["f1"] == 0.0


def test_two_predictions_one_gold_is_matched_once_by_the_best():
    s = score([(0, 10, "privacy")], [(0, 8, "privacy"), (0, 10, "privacy")])
    c = s["codes"]["privacy"]
    assert c["matched"] == 1 and c["mean_iou"] == 1.0
    assert c["precision"] == pytest.approx(1 / 2) and c["recall"] == 1.0
    assert c["f1"] == pytest.approx(2 / 3)


def test_per_code_and_micro_numbers():
    # privacy: gold 2, pred 1 (matches one) -> P 1, R 1/2, F1 2/3
    # trust:   gold 1, pred 2 (one matches, one elsewhere) -> P 1/2, R 1, F1 2/3
    # autonomy: gold 1, pred 1 at IoU 0.25 -> 0
    gold = [(0, 10, "privacy"), (20, 30, "privacy"), (40, 50, "trust"), (60, 70, "autonomy")]
    pred = [(0, 10, "privacy"), (40, 50, "trust"), (80, 90, "trust"), (65, 80, "autonomy")]
    s = score(gold, pred)
    assert s["codes"]["privacy"]["f1"] == pytest.approx(2 / 3)
    assert s["codes"]["trust"]["precision"] == pytest.approx(1 / 2)
    assert s["codes"]["trust"]["f1"] == pytest.approx(2 / 3)
    assert s["codes"]["autonomy"]["f1"] == 0.0
    m = s["micro"]  # gold 4, pred 4, matched 2
    assert (m["gold"], m["predicted"], m["matched"]) == (4, 4, 2)
    assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(0.5)


def test_multi_label_record_value_and_other_dimension_spans_ignored():
    spans = {"u1": [Span("u1", "privacy", 0, 10, "value"), Span("u1", "x", 0, 10, "other")]}
    s = span_scores(spans, {"u1": [rec(0, 10, ["privacy", "trust"])]}, dimension="value")
    assert set(s["codes"]) == {"privacy", "trust"}
    assert s["codes"]["privacy"]["matched"] == 1 and s["codes"]["trust"]["precision"] == 0.0


def write_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps(
        {"model": {"model": "test/llm"}, "codebook": {"name": "toy-seg"}}), encoding="utf-8")
    lines = [
        {"id": "u1", "status": "coded", "records": [
            {"quote": "my privacy", "start": 0, "end": 10, "codes": {"value": "privacy"}},
            {"quote": "not in text", "start": None, "end": None, "quote_verified": False,
             "codes": {"value": "trust"}}]},
        {"id": "u2", "status": "coded", "records": [
            {"quote": "x", "start": 2, "end": 12, "codes": {"value": "trust"}}]},
        {"id": "u3", "status": "failed", "error": "boom"},
    ]
    (run / "codes.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines),
                                     encoding="utf-8")
    return run


def test_unverified_records_are_skipped_and_counted(tmp_path):
    recs = pred_records_from_run(write_run(tmp_path))
    assert recs.unverified == 1
    assert [r["codes"]["value"] for r in recs["u1"]] == ["privacy"]
    assert "u3" not in recs


def test_bad_csv_rows_are_usage_errors_with_the_line(tmp_path):
    p = tmp_path / "spans.csv"
    p.write_text("id,code,start,end\nu1,privacy,0,10\nu2,trust,abc,5\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"spans\.csv: line 3"):
        read_gold_spans(p)
    p.write_text("id,code,start,end\nu1,privacy,10,5\n", encoding="utf-8")
    with pytest.raises(UsageError, match="line 2"):
        read_gold_spans(p)
    p.write_text("id,code,begin,end\nu1,privacy,0,5\n", encoding="utf-8")
    with pytest.raises(UsageError, match="missing column"):
        read_gold_spans(p)
    p.write_text("id,code,start,end,who\nu1,privacy,0,5,ann\nu1,trust,0,5,bob\n",
                 encoding="utf-8")
    got = read_gold_spans(p, coder_col="who", coder="ann")
    assert got == {"u1": [Span("u1", "privacy", 0, 5, None, "ann")]}


def test_evaluate_and_cli_with_gold_spans(tmp_path, capsys):
    cb = tmp_path / "seg.yaml"
    cb.write_text(SEGMENT, encoding="utf-8")
    run = write_run(tmp_path)
    gold = tmp_path / "gold.csv"
    gold.write_text("id,value\nu1,privacy\nu2,trust\n", encoding="utf-8")
    spans = tmp_path / "spans.csv"
    spans.write_text("id,dimension,code,start,end\nu1,value,privacy,0,10\nu1,value,trust,20,30\n"
                     "u2,value,trust,0,10\n", encoding="utf-8")
    rep = evaluate(gold, run, cb, bootstrap=0, permutations=0, gold_spans=spans)
    ov = rep.to_dict()["preds"][0]["span_overlap"]
    assert ov["unverified"] == 1
    sc = ov["dimensions"]["value"]
    # privacy: 1/1 matched; trust: gold 2, pred 1 at IoU 8/12 -> P 1, R 1/2
    assert sc["codes"]["privacy"]["f1"] == 1.0
    assert sc["codes"]["trust"]["recall"] == pytest.approx(0.5)
    assert sc["micro"]["matched"] == 2 and sc["micro"]["gold"] == 3
    assert rep.to_dict()["preds"][0]["span_overlap"] is not None
    assert evaluate(gold, run, cb, bootstrap=0, permutations=0).pred().span_overlap is None

    rc = main(["eval", "--gold", str(gold), "--pred", str(run), "--codebook", str(cb),
               "--gold-spans", str(spans), "--bootstrap", "0", "--permutations", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Span overlap" in out and "(micro)" in out and "0.667" in out

    bad = tmp_path / "bad.csv"
    bad.write_text("id,code,start,end\nu1,privacy,x,10\n", encoding="utf-8")
    rc = main(["eval", "--gold", str(gold), "--pred", str(run), "--codebook", str(cb),
               "--gold-spans", str(bad)])
    out, err = capsys.readouterr()
    assert rc == 2 and "line 2" in err and "Traceback" not in out + err
