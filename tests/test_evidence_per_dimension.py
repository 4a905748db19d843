"""Quotes per dimension (``evidence.per_dimension``) and their span scores (``--gold-spans``).

A document codebook can give each dimension its own quote (``<dimension>_quote``); each is
checked verbatim, stored with its offsets as a record of the unit, and ``eval --gold-spans``
scores the quotes per dimension and code, for document and segment codebooks alike, counts
unverified quotes, says "not applicable" for a coder without quotes, and shows it in HTML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import vsdcoder
from vsdcoder.cli.main import main
from vsdcoder.codebook.compile import answer_errors, compile_codebook
from vsdcoder.codebook.load import CodebookError, parse_codebook
from vsdcoder.evidence import dimension_records
from vsdcoder.reliability.evaluate import evaluate
from vsdcoder.reliability.report import render_html
from vsdcoder.reliability.spans import pred_records_from_run
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

pytestmark = pytest.mark.usefixtures("isolated_engine")

CODEBOOK = """\
vsdcoder: 1
name: mechanisms
evidence:
  quote: false
  per_dimension: true
  quote_min_words: 2
scales:
  intensity:
    - {name: none, definition: Not there., quote: false}
    - {name: weak, definition: Brief.}
    - {name: strong, definition: Central.}
dimensions:
  - name: validation
    question: How strongly does the reply validate feelings?
    type: ordinal
    scale: intensity
  - name: advice
    question: How strongly does the reply give advice?
    type: ordinal
    scale: intensity
  - name: disclosure
    question: How strongly does the replier share their own experience?
    type: ordinal
    scale: intensity
"""

TEXTS = {
    "u1": "That sounds exhausting, anyone would be worn down. Maybe talk to your GP?",
    "u2": "I went through the same thing last year. It gets better, I promise.",
    "u3": "You should see a doctor. Honestly I had this too.",
}

#: What the scripted model answers; u3's disclosure quote is never verbatim.
ANSWERS = {
    "u1": {"validation_quote": "anyone would be worn down", "validation": "strong",
           "advice_quote": "Maybe talk to your GP?", "advice": "weak",
           "disclosure_quote": None, "disclosure": "none"},
    "u2": {"validation_quote": "It gets better, I promise.", "validation": "weak",
           "advice_quote": None, "advice": "none",
           "disclosure_quote": "I went through the same thing last year.",
           "disclosure": "strong"},
    "u3": {"validation_quote": None, "validation": "none",
           "advice_quote": "You should see a doctor.", "advice": "strong",
           "disclosure_quote": "I had this tooo", "disclosure": "weak"},
}


def span(uid: str, passage: str) -> tuple[int, int]:
    start = TEXTS[uid].index(passage)
    return start, start + len(passage)


def compiled(text: str = CODEBOOK):
    return compile_codebook(parse_codebook(text, "cb.yaml", strict=True).codebook)


def messages(exc: ValidationError) -> list[str]:
    return answer_errors(exc)


# --- the schema and the prompt ---------------------------------------------------------------


def test_schema_has_a_quote_field_before_each_dimension():
    c = compiled()
    assert list(c.schema["properties"]) == [
        "validation_quote", "validation", "advice_quote", "advice", "disclosure_quote",
        "disclosure"]
    assert c.schema["properties"]["advice_quote"]["anyOf"] == [{"type": "string"},
                                                               {"type": "null"}]
    assert "null when advice is null or none" in c.schema["properties"]["advice_quote"][
        "description"]
    system = c.messages()[0]["content"]
    assert "Each dimension has a quote of its own" in system
    assert ("Give `advice_quote`: the words of the text that support your answer to `advice`, "
            "copied word for word; null when `advice` is null or `none`.") in system
    assert ("with the fields `validation_quote`, `validation`, `advice_quote`, `advice`, "
            "`disclosure_quote`, `disclosure`.") in system


def test_a_list_of_dimensions_and_the_answer_quote_together():
    text = CODEBOOK.replace("  quote: false\n  per_dimension: true\n",
                            "  quote: true\n  per_dimension: [advice]\n")
    c = compiled(text)
    assert list(c.schema["properties"]) == ["quote", "validation", "advice_quote", "advice",
                                            "disclosure"]
    system = c.messages()[0]["content"]
    assert "`advice` has a quote of its own" in system
    assert "validation_quote" not in system


def test_a_string_names_one_dimension():
    c = compiled(CODEBOOK.replace("per_dimension: true", "per_dimension: advice"))
    assert c.codebook.quote_dimensions() == ["advice"]


# --- checking answers ----------------------------------------------------------------------


def test_a_valid_answer_and_null_quotes_for_none():
    c = compiled()
    c.validate(ANSWERS["u1"], text=TEXTS["u1"])
    c.validate(ANSWERS["u2"], text=TEXTS["u2"])


def test_missing_not_verbatim_short_and_unanswered_quotes_are_reasked():
    c = compiled()
    bad = dict(ANSWERS["u1"], advice_quote=None)
    with pytest.raises(ValidationError) as info:
        c.validate(bad, text=TEXTS["u1"])
    assert messages(info.value) == [
        "'advice_quote' is required: 'advice' is \"weak\", so copy the words of the text that "
        "show it, word for word"]
    bad = dict(ANSWERS["u1"], validation_quote="anyone would be worn out")
    with pytest.raises(ValidationError) as info:
        c.validate(bad, text=TEXTS["u1"])
    (msg,) = messages(info.value)
    assert msg.startswith("'validation_quote' is not verbatim: 'anyone would be worn out'")
    bad = dict(ANSWERS["u1"], advice_quote="GP?")
    with pytest.raises(ValidationError) as info:
        c.validate(bad, text=TEXTS["u1"])
    assert messages(info.value) == [
        "'advice_quote' has 1 word; it must be at least 2 words copied verbatim from the text: "
        "quote a longer passage"]
    # a quote for an answer that needs none is allowed (and checked)
    c.validate(dict(ANSWERS["u1"], disclosure_quote="Maybe talk"), text=TEXTS["u1"])


def test_quote_of_an_unanswered_dimension_must_be_null():
    text = CODEBOOK.replace("    question: How strongly does the reply give advice?\n",
                            "    question: How strongly does the reply give advice?\n"
                            "    required: false\n")
    c = compiled(text)
    bad = dict(ANSWERS["u1"], advice=None)
    with pytest.raises(ValidationError) as info:
        c.validate(bad, text=TEXTS["u1"])
    assert messages(info.value) == [
        "'advice_quote' must be null, because 'advice' is not answered"]
    c.validate(dict(bad, advice_quote=None), text=TEXTS["u1"])


def test_not_relevant_text_gets_no_quotes():
    text = CODEBOOK.replace("dimensions:\n", "relevance:\n  include: [A reply to a post.]\n"
                                             "dimensions:\n", 1)
    c = compiled(text)
    empty = {k: None for k in ANSWERS["u1"]}
    c.validate({"relevant": False, **empty}, text=TEXTS["u1"])
    with pytest.raises(ValidationError) as info:
        c.validate({"relevant": False, **dict(empty, advice_quote="Maybe talk")},
                   text=TEXTS["u1"])
    assert "set 'advice_quote' to null" in messages(info.value)[0]


def test_lenient_validation_keeps_the_codes_of_a_bad_quote():
    c = compiled()
    c.response_model.model_validate(ANSWERS["u3"], context={"text": TEXTS["u3"],
                                                            "quotes": "lenient"})
    with pytest.raises(ValidationError):
        c.validate(ANSWERS["u3"], text=TEXTS["u3"])


def test_records_are_stored_with_offsets():
    cb = compiled().codebook
    recs = dimension_records(cb, ANSWERS["u3"], TEXTS["u3"])
    assert recs == [
        {"dimension": "advice", "quote": "You should see a doctor.", "start": 0, "end": 24,
         "quote_verified": True, "codes": {"advice": "strong"}},
        {"dimension": "disclosure", "quote": "I had this tooo", "start": None, "end": None,
         "quote_verified": False, "codes": {"disclosure": "weak"}}]


# --- bad codebooks -------------------------------------------------------------------------


@pytest.mark.parametrize("old,new,path,rule,part", [
    ("per_dimension: true", "per_dimension: [validaton, advice]", "evidence.per_dimension[0]",
     "per-dimension-unknown", "'per_dimension' names unknown dimension 'validaton' (did you "
     "mean 'validation'?)"),
    ("per_dimension: true", "per_dimension: 3", "evidence.per_dimension", "value_error",
     "'per_dimension' is true"),
    ("per_dimension: true", "per_dimension: false", "scales.intensity[0].quote", "quote-unused",
     "'quote' on a code says whether an answer with it needs a quote of its own"),
    ("    scale: intensity\n  - name: advice",
     "    scale: intensity\n  - name: validation_quote\n    question: Q?\n"
     "    codes: [{name: a, definition: A.}]\n  - name: advice",
     "dimensions[1].name", "quote-clash", "'validation_quote' is the name of the quote field"),
    ("name: mechanisms\n", "name: mechanisms\nunit: segment\n", "evidence.per_dimension",
     "shape", "per-dimension quotes are for 'unit: document' answers"),
])
def test_bad_per_dimension_settings(old, new, path, rule, part):
    assert old in CODEBOOK
    with pytest.raises(CodebookError) as info:
        parse_codebook(CODEBOOK.replace(old, new), "cb.yaml")
    hits = [p for p in info.value.problems if p.path == path and part in p.message]
    assert hits, [str(p) for p in info.value.problems]
    assert hits[0].rule == rule and hits[0].line is not None


def test_text_dimension_cannot_have_its_own_quote():
    text = CODEBOOK.replace("per_dimension: true", "per_dimension: [advice, summary]") + (
        "  - name: summary\n    type: text\n    question: Summarise it.\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(text, "cb.yaml")
    (p,) = info.value.problems
    assert (p.path, p.rule) == ("evidence.per_dimension[1]", "per-dimension-text")


def test_a_few_shot_example_needs_its_dimension_quotes():
    text = CODEBOOK + ("examples:\n  - text: \"Maybe talk to your GP, it helps.\"\n"
                       "    output: {validation: none, advice: weak, disclosure: none}\n")
    with pytest.raises(CodebookError) as info:
        parse_codebook(text, "cb.yaml")
    (p,) = info.value.problems
    assert p.rule == "bad-example" and p.path == "examples[0].output.advice_quote"
    assert "'advice_quote' is required" in p.message
    ok = text.replace("{validation: none,", "{advice_quote: Maybe talk, validation: none,")
    shown = compile_codebook(parse_codebook(ok, "cb.yaml").codebook).messages()[0]["content"]
    assert '"advice_quote": "Maybe talk"' in shown and '"validation_quote": null' in shown


# --- redaction, purge and the disagreement sheet read the records ----------------------------


def test_redaction_purge_and_sheet_handle_dimension_records():
    from vsdcoder.reliability.disagreements import _evidence
    from vsdcoder.store.rundb import scrub_result

    cb = compiled().codebook
    result = {"codes": {k: v for k, v in ANSWERS["u1"].items() if not k.endswith("_quote")},
              "records": dimension_records(cb, ANSWERS["u1"], TEXTS["u1"])}
    scrubbed = scrub_result(result)
    assert [r["quote"] for r in scrubbed["records"]] == [None, None]
    assert [r["start"] for r in scrubbed["records"]] == [24, 51]
    ev = {"records": result["records"]}
    assert _evidence(ev, "advice")[0] == "Maybe talk to your GP? [weak]"
    assert _evidence(ev, "disclosure")[0] == ""


# --- end to end: code, store, evaluate with gold spans -------------------------------------


def code_run(tmp_path: Path) -> Path:
    cb = tmp_path / "cb.yaml"
    cb.write_text(CODEBOOK, encoding="utf-8")
    data = tmp_path / "data.csv"
    data.write_text("id,text\n" + "".join(f'{u},"{t}"\n' for u, t in TEXTS.items()),
                    encoding="utf-8")
    by_text = {t: ANSWERS[u] for u, t in TEXTS.items()}

    def responder(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
        return Reply(completion(req, by_text[unit_text(req)]))

    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        summary = vsdcoder.code(data, str(cb), model="openai/fake", api_base=srv.url, out=out,
                                api_key="sk-test", progress=False, max_retries=1,
                                http_retries=1, backoff_base=0.01)
    assert summary.counts == {"coded": 3}
    assert summary.totals["units_quote_unverified"] == 1
    return out


GOLD = "id,validation,advice,disclosure\nu1,strong,weak,none\nu2,weak,none,strong\n" \
       "u3,none,strong,weak\n"


def gold_spans(tmp_path: Path) -> Path:
    rows = [("u1", "validation", "strong", span("u1", "anyone would be worn down")),
            ("u1", "advice", "weak", span("u1", "Maybe talk to your GP?")),
            ("u2", "validation", "weak", span("u2", "It gets better, I promise.")),
            # partial overlap with the predicted quote: IoU 29/40
            ("u2", "disclosure", "strong", span("u2", "I went through the same thing")),
            ("u3", "advice", "strong", span("u3", "You should see a doctor.")),
            ("u3", "disclosure", "weak", span("u3", "I had this too"))]
    p = tmp_path / "spans.csv"
    p.write_text("id,dimension,code,start,end\n" + "".join(
        f"{u},{d},{c},{a},{b}\n" for u, d, c, (a, b) in rows), encoding="utf-8")
    return p


def test_quotes_are_stored_with_offsets_in_codes_jsonl(tmp_path):
    run = code_run(tmp_path)
    lines = {json.loads(x)["id"]: json.loads(x)
             for x in (run / "codes.jsonl").read_text(encoding="utf-8").splitlines()}
    u1 = lines["u1"]
    assert u1["quote_verified"] is True and "evidence" not in u1
    assert u1["codes"] == {"validation": "strong", "advice": "weak", "disclosure": "none"}
    assert u1["records"] == [
        {"dimension": "validation", "quote": "anyone would be worn down", "start": 24,
         "end": 49, "quote_verified": True, "codes": {"validation": "strong"}},
        {"dimension": "advice", "quote": "Maybe talk to your GP?", "start": 51, "end": 73,
         "quote_verified": True, "codes": {"advice": "weak"}}]
    u3 = lines["u3"]
    assert u3["status"] == "coded" and u3["quote_verified"] is False
    assert "disclosure_quote" in u3["error"]
    assert u3["records"][1] == {"dimension": "disclosure", "quote": "I had this tooo",
                                "start": None, "end": None, "quote_verified": False,
                                "codes": {"disclosure": "weak"}}
    recs = pred_records_from_run(run, compiled().codebook)
    assert (recs.quotes, recs.unverified, recs.skipped) == (6, 1, 1)


def test_gold_spans_are_scored_per_dimension_and_code(tmp_path, capsys):
    run = code_run(tmp_path)
    gold = tmp_path / "gold.csv"
    gold.write_text(GOLD, encoding="utf-8")
    cb = tmp_path / "cb.yaml"
    spans = gold_spans(tmp_path)
    rep = evaluate(gold, run, cb, bootstrap=0, permutations=0, gold_spans=spans)
    ov = rep.to_dict()["preds"][0]["span_overlap"]
    assert ov["applicable"] is True and ov["reason"] is None
    assert (ov["quotes"], ov["unverified"], ov["skipped"]) == (6, 1, 1)
    dims = ov["dimensions"]
    assert set(dims) == {"validation", "advice", "disclosure"}
    v = dims["validation"]
    assert (v["micro"]["gold"], v["micro"]["predicted"], v["micro"]["matched"]) == (2, 2, 2)
    assert v["codes"]["strong"]["f1"] == 1.0 and v["codes"]["strong"]["mean_iou"] == 1.0
    a = dims["advice"]
    assert a["codes"]["weak"]["matched"] == 1 and a["codes"]["strong"]["matched"] == 1
    d = dims["disclosure"]
    assert d["codes"]["strong"]["matched"] == 1
    assert d["codes"]["strong"]["mean_iou"] == pytest.approx(29 / 40)
    # the unverified quote is skipped: its gold span is not found
    assert d["codes"]["weak"] == {"gold": 1, "predicted": 0, "matched": 0, "precision": None,
                                  "recall": 0.0, "f1": None, "mean_iou": None}
    assert d["micro"]["recall"] == pytest.approx(0.5)

    html = render_html(rep)
    assert "Span overlap with the gold spans" in html
    assert "5 quote(s) scored; 1 unverified quote(s), 1 of them not found" in html
    assert html.count("(micro)") == 3

    out_html = tmp_path / "report.html"
    rc = main(["eval", "--gold", str(gold), "--pred", str(run), "--codebook", str(cb),
               "--gold-spans", str(spans), "--bootstrap", "0", "--permutations", "0",
               "--html", str(out_html)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "5 quote(s) scored; 1 unverified quote(s), 1 of them not found" in out
    assert "Span overlap: openai/fake / disclosure" in out
    assert "Span overlap with the gold spans" in out_html.read_text(encoding="utf-8")


def write_doc_run(tmp_path: Path, name: str, manifest: dict[str, Any],
                  lines: list[dict[str, Any]]) -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (run / "codes.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines),
                                     encoding="utf-8")
    return run


ONE_QUOTE = CODEBOOK.replace("  quote: false\n  per_dimension: true\n", "").replace(
    ", quote: false}", "}")


def test_a_document_answers_one_quote_is_scored_for_every_dimension(tmp_path):
    """The reported bug: 0 predicted spans and recall 0 although quotes were verified."""
    cb = tmp_path / "one.yaml"
    cb.write_text(ONE_QUOTE, encoding="utf-8")
    a, b = span("u1", "anyone would be worn down")
    lines = [
        {"id": "u1", "status": "coded",
         "codes": {"validation": "strong", "advice": "weak", "disclosure": "none"},
         "evidence": {"quote": "anyone would be worn down", "start": a, "end": b,
                      "quote_verified": True}, "quote_verified": True},
        {"id": "u2", "status": "coded",
         "codes": {"validation": "weak", "advice": "none", "disclosure": "strong"},
         "evidence": {"quote": "not in the text", "start": None, "end": None,
                      "quote_verified": False}, "quote_verified": False},
        {"id": "u3", "status": "coded",
         "codes": {"validation": "none", "advice": "strong", "disclosure": "weak"},
         "evidence": {"quote": "Honestly", "start": 25, "end": 33, "quote_verified": False},
         "quote_verified": False},
    ]
    run = write_doc_run(tmp_path, "run", {"model": {"model": "test/llm"},
                                          "codebook": {"name": "mechanisms"}}, lines)
    gold = tmp_path / "gold.csv"
    gold.write_text(GOLD, encoding="utf-8")
    spans = tmp_path / "spans.csv"
    spans.write_text(f"id,dimension,code,start,end\nu1,validation,strong,{a},{b}\n",
                     encoding="utf-8")
    ov = evaluate(gold, run, cb, bootstrap=0, permutations=0,
                  gold_spans=spans).to_dict()["preds"][0]["span_overlap"]
    # u3's quote is found but too short: unverified, yet it has offsets and is scored
    assert (ov["quotes"], ov["unverified"], ov["skipped"]) == (3, 2, 1)
    v = ov["dimensions"]["validation"]
    assert v["codes"]["strong"] == {"gold": 1, "predicted": 1, "matched": 1, "precision": 1.0,
                                    "recall": 1.0, "f1": 1.0, "mean_iou": 1.0}
    assert v["micro"]["predicted"] == 2  # u1 strong, u3 none
    # the one quote counts for the other dimensions too (the spans name only 'validation')
    recs = pred_records_from_run(run, parse_codebook(ONE_QUOTE, "cb.yaml").codebook)
    assert recs["u1"][0]["codes"] == lines[0]["codes"]


def test_a_baseline_without_quotes_is_not_applicable(tmp_path):
    cb = tmp_path / "cb.yaml"
    cb.write_text(CODEBOOK, encoding="utf-8")
    lines = [{"id": u, "status": "coded",
              "codes": {k: v for k, v in ANSWERS[u].items() if not k.endswith("_quote")}}
             for u in TEXTS]
    base = write_doc_run(tmp_path, "base", {"kind": "baseline",
                                            "model": {"model": "baseline/tfidf-logreg"},
                                            "codebook": {"name": "mechanisms"}}, lines)
    llm = write_doc_run(tmp_path, "llm", {"model": {"model": "test/llm"},
                                          "codebook": {"name": "mechanisms"}},
                        [dict(x, records=dimension_records(
                            compiled().codebook, ANSWERS[x["id"]], TEXTS[x["id"]]))
                         for x in lines])
    gold = tmp_path / "gold.csv"
    gold.write_text(GOLD, encoding="utf-8")
    spans = gold_spans(tmp_path)
    rep = evaluate(gold, [llm, base], cb, bootstrap=0, permutations=0, gold_spans=spans)
    by_name = {p["name"]: p["span_overlap"] for p in rep.to_dict()["preds"]}
    b = by_name["baseline/tfidf-logreg"]
    assert b == {"applicable": False,
                 "reason": "a supervised baseline gives codes without quotes",
                 "quotes": 0, "unverified": 0, "skipped": 0, "dimensions": {}}
    assert by_name["test/llm"]["applicable"] is True
    assert by_name["test/llm"]["dimensions"]["advice"]["micro"]["matched"] == 2
    html = render_html(rep)
    assert "not applicable: a supervised baseline gives codes without quotes" in html


def test_a_codebook_without_quotes_is_not_applicable(tmp_path):
    text = CODEBOOK.replace("  per_dimension: true\n", "").replace(", quote: false}", "}")
    cb = tmp_path / "cb.yaml"
    cb.write_text(text, encoding="utf-8")
    lines = [{"id": u, "status": "coded",
              "codes": {k: v for k, v in ANSWERS[u].items() if not k.endswith("_quote")}}
             for u in TEXTS]
    run = write_doc_run(tmp_path, "run", {"model": {"model": "test/llm"}}, lines)
    gold = tmp_path / "gold.csv"
    gold.write_text(GOLD, encoding="utf-8")
    ov = evaluate(gold, run, cb, bootstrap=0, permutations=0,
                  gold_spans=gold_spans(tmp_path)).pred().span_overlap
    assert ov["applicable"] is False and "asks for no quotes" in ov["reason"]
