"""``vsdcoder eval`` / ``vsdcoder.evaluate``: scores, human baseline, gates, reports, sheets, CLI.

Metric-level checks build :class:`Ratings` directly; end-to-end checks code small files through
the real engine against the scripted server (as tests/test_engine.py does).
"""

from __future__ import annotations

import csv
import json
import random
import re
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

import vsdcoder
from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError
from vsdcoder.reliability import metrics as M
from vsdcoder.reliability.disagreements import (
    apply_adjudication,
    read_sheet,
    write_gold,
    write_sheet,
)
from vsdcoder.reliability.evaluate import GATE_CLOSED, EvalReport, evaluate, quote_overlap
from vsdcoder.reliability.gold import read_gold
from vsdcoder.reliability.report import print_report, render_html, write_html, write_json
from vsdcoder.reliability.types import Ratings
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

KEY = "sk-test-eval-0000"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


# -- helpers ------------------------------------------------------------------------------------

TOY = """
vsdcoder: 1
name: toy
dimensions:
  - name: topic
    type: single
    codes: [{name: work}, {name: school}, {name: other}]
  - name: cause
    type: single
    when: {dimension: topic, codes: [work, school]}
    codes: [{name: boss}, {name: deadline}]
  - name: level
    type: ordinal
    codes: [{name: low}, {name: mid}, {name: high}]
  - name: themes
    type: multi
    codes: [{name: a}, {name: b}, {name: c}]
  - name: note
    type: text
"""

RELEVANT = """
vsdcoder: 1
name: toy-rel
relevance:
  include: ["talks about work"]
dimensions:
  - name: topic
    type: single
    codes: [{name: boss}, {name: pay}]
"""

SEGMENT = """
vsdcoder: 1
name: toy-seg
unit: segment
dimensions:
  - name: value
    type: single
    codes: [{name: privacy}, {name: autonomy}, {name: trust}]
"""


def codebook(tmp_path: Path, text: str = TOY, name: str = "toy.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def ratings(coders: dict[str, str], units: list[str], **dims: dict[str, list]) -> Ratings:
    """Ratings from per-dimension {coder: values aligned with units} (None = missing)."""
    r = Ratings(units=list(units), coders=dict(coders))
    for d, by in dims.items():
        r.values[d] = {c: {u: v for u, v in zip(units, vals, strict=True) if v is not None}
                       for c, vals in by.items()}
    return r


def ids(n: int) -> list[str]:
    return [f"u{i:02d}" for i in range(1, n + 1)]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# Twelve units with a known confusion (sad-stressors codes):
#   units 1-5 gold work:    pred work x4, school
#   units 6-10 gold school: pred work x2, school x3
#   units 11-12 gold family_issues: pred family_issues, school
GOLD12 = ["work"] * 5 + ["school"] * 5 + ["family_issues"] * 2
PRED12 = ["work"] * 4 + ["school"] + ["work"] * 2 + ["school"] * 3 + ["family_issues", "school"]
DIFFER12 = ["u05", "u06", "u07", "u12"]


def confusion12() -> tuple[Ratings, Ratings]:
    u = ids(12)
    gold = ratings({"gold": "gold"}, u, stressor={"gold": GOLD12})
    gold.texts = {x: f"text of {x}" for x in u}
    pred = ratings({"llm": "llm"}, u, stressor={"llm": PRED12})
    pred.evidence = {"llm": {x: {"quote": f"quote {x}", "rationale": f"why {x}"} for x in u}}
    return gold, pred


# -- scores -------------------------------------------------------------------------------------


def test_perfect_llm_kappa_one_and_cis_collapse():
    codes = ["work", "school", "financial_problem", "family_issues"]
    u = ids(40)
    vals = [codes[i % 4] for i in range(40)]
    gold = ratings({"gold": "gold"}, u, stressor={"gold": vals})
    pred = ratings({"llm": "llm"}, u, stressor={"llm": vals})
    rep = evaluate(gold, pred, "sad-stressors", bootstrap=300, permutations=200)
    d = rep.pred().dimension("stressor")
    assert d.n == 40
    for k in ("agreement", "kappa", "alpha", "ac1", "f1_macro", "f1_micro"):
        m = d.metrics[k]
        assert m.value == pytest.approx(1.0), k
        assert m.ci == pytest.approx((1.0, 1.0)), k
    assert [c.code for c in d.codes] == codes
    for c in d.codes:
        assert c.metrics["kappa"].value == pytest.approx(1.0)
        assert c.metrics["kappa"].ci == pytest.approx((1.0, 1.0))
        assert c.p_value < 0.01  # a perfect coder beats chance
    assert rep.pred().headline["alpha_mean"].value == pytest.approx(1.0)


def test_known_confusion_gives_hand_computed_per_code_f1_and_kappa():
    gold, pred = confusion12()
    d = evaluate(gold, pred, "sad-stressors", bootstrap=200).pred().dimension("stressor")
    f1 = {c.code: c.metrics["f1"].value for c in d.codes}
    # work: tp 4, fp 2, fn 1; school: tp 3, fp 2, fn 2; family_issues: tp 1, fp 0, fn 1
    assert f1 == pytest.approx({"work": 8 / 11, "school": 6 / 10, "family_issues": 2 / 3})
    by = {c.code: c for c in d.codes}
    assert by["work"].metrics["precision"].value == pytest.approx(4 / 6)
    assert by["work"].metrics["recall"].value == pytest.approx(4 / 5)
    assert (by["school"].support, by["school"].predicted) == (5, 5)
    assert d.metrics["f1_macro"].value == pytest.approx((8 / 11 + 0.6 + 2 / 3) / 3)
    assert d.metrics["f1_micro"].value == pytest.approx(8 / 12)
    assert d.metrics["agreement"].value == pytest.approx(8 / 12)
    # po = 8/12; pe = (5*6 + 5*5 + 2*1) / 144 = 57/144
    assert d.metrics["kappa"].value == pytest.approx(float(Fraction(96 - 57, 144 - 57)))
    lo, hi = d.metrics["kappa"].ci
    assert lo < d.metrics["kappa"].value < hi
    conf = d.confusion
    i = {lab: k for k, lab in enumerate(conf["labels"])}
    assert conf["matrix"][i["work"]][i["work"]] == 4
    assert conf["matrix"][i["work"]][i["school"]] == 1
    assert conf["matrix"][i["school"]][i["work"]] == 2
    assert conf["matrix"][i["family_issues"]][i["school"]] == 1


def test_point_values_match_sklearn_and_krippendorff():
    import krippendorff  # in the test extra
    from sklearn.metrics import cohen_kappa_score, f1_score

    rng = random.Random(7)
    codes = ["work", "school", "financial_problem", "emotional_turmoil", "family_issues"]
    u = ids(80)
    g = [rng.choice(codes) for _ in u]
    p = [x if rng.random() < 0.6 else rng.choice(codes) for x in g]
    rep = evaluate(ratings({"gold": "gold"}, u, stressor={"gold": g}),
                   ratings({"llm": "llm"}, u, stressor={"llm": p}), "sad-stressors",
                   bootstrap=0, permutations=0)
    d = rep.pred().dimension("stressor")
    assert d.metrics["kappa"].value == pytest.approx(cohen_kappa_score(g, p))
    assert d.metrics["f1_macro"].value == pytest.approx(f1_score(g, p, average="macro"))
    idx = {c: i for i, c in enumerate(codes)}
    ka = krippendorff.alpha(reliability_data=[[idx[x] for x in g], [idx[x] for x in p]],
                            level_of_measurement="nominal")
    assert d.metrics["alpha"].value == pytest.approx(ka)
    for c in d.codes:
        gb, pb = [x == c.code for x in g], [x == c.code for x in p]
        assert c.metrics["kappa"].value == pytest.approx(cohen_kappa_score(gb, pb))
    assert all(m.ci is None for m in d.metrics.values())  # bootstrap 0: no intervals


def test_cis_are_seeded_and_cover_the_point():
    gold, pred = confusion12()
    a = evaluate(gold, pred, "sad-stressors", bootstrap=300, seed=3).pred().dimension("stressor")
    b = evaluate(gold, pred, "sad-stressors", bootstrap=300, seed=3).pred().dimension("stressor")
    c = evaluate(gold, pred, "sad-stressors", bootstrap=300, seed=4).pred().dimension("stressor")
    assert a.metrics["alpha"].ci == b.metrics["alpha"].ci
    assert a.metrics["alpha"].ci != c.metrics["alpha"].ci
    for m in a.metrics.values():
        assert m.ci[0] <= m.value <= m.ci[1]


def test_ordinal_dimension_uses_ordinal_alpha_and_weighted_kappa(tmp_path):
    cb = codebook(tmp_path)
    u = ids(8)
    g = ["low", "low", "mid", "mid", "high", "high", "low", "high"]
    p = ["low", "mid", "mid", "mid", "high", "mid", "low", "high"]
    rep = evaluate(ratings({"gold": "gold"}, u, level={"gold": g}),
                   ratings({"llm": "llm"}, u, level={"llm": p}), cb, bootstrap=0)
    d = rep.pred().dimension("level")
    assert (d.level, d.kappa_weights) == ("ordinal", "quadratic")
    cats = ["low", "mid", "high"]
    assert d.metrics["alpha"].value == pytest.approx(
        M.krippendorff_alpha([g, p], level="ordinal", categories=cats).value)
    assert d.metrics["kappa"].value == pytest.approx(
        M.cohen_kappa(g, p, weights="quadratic", categories=cats).value)
    skipped = {s["name"]: s["reason"] for s in rep.pred().skipped_dimensions}
    assert skipped["note"].startswith("text dimension")
    assert skipped["topic"] == "not in the gold codes"


def test_multi_label_dimension_masi_alpha_and_per_code_presence(tmp_path):
    cb = codebook(tmp_path)
    u = ids(6)
    S = frozenset
    g = [S("a"), S("ab"), S(), S("c"), S("bc"), S("a")]
    p = [S("a"), S("a"), S("b"), S("c"), S("bc"), S("ac")]
    rep = evaluate(ratings({"gold": "gold"}, u, themes={"gold": g}),
                   ratings({"llm": "llm"}, u, themes={"llm": p}), cb, bootstrap=100)
    d = rep.pred().dimension("themes")
    assert d.level == "masi" and d.type == "multi"
    assert d.metrics["agreement"].value == pytest.approx(3 / 6)  # same set on u1, u4, u5
    assert d.metrics["alpha"].value == pytest.approx(
        M.krippendorff_alpha([g, p], distance="masi").value)
    assert d.metrics["kappa"].value is None and "per-code" in d.metrics["kappa"].reason
    by = {c.code: c for c in d.codes}
    # a: gold u1 u2 u6, pred u1 u2 u6 -> perfect; b: gold u2 u5, pred u3 u5 -> tp 1 fp 1 fn 1
    assert by["a"].metrics["f1"].value == pytest.approx(1.0)
    assert by["b"].metrics["f1"].value == pytest.approx(2 / 4)
    # c: gold u4 u5, pred u4 u5 u6 -> tp 2, fp 1
    assert by["c"].metrics["f1"].value == pytest.approx(4 / 5)
    assert d.confusion["kind"] == "co-occurrence" and d.confusion["labels"][-1] == "(none)"


# -- gates and segments ---------------------------------------------------------------------------


def test_gated_dimension_is_scored_where_the_gold_gate_is_open(tmp_path):
    cb = codebook(tmp_path)
    u = ids(10)
    g_topic = ["work", "work", "school", "school", "work", "school", "other", "other", "other",
               "other"]
    g_cause = ["boss", "boss", "deadline", "deadline", "boss", "deadline", None, None, None, None]
    p_topic = ["work", "work", "school", "other", "work", "school", "work", "other", "other",
               "other"]
    # u04: the LLM closed the gate the gold left open (a disagreement); u07: the LLM opened a
    # gate the gold closed (not scored for cause)
    p_cause = ["boss", "deadline", "deadline", None, "boss", "deadline", "boss", None, None, None]
    gold = ratings({"gold": "gold"}, u, topic={"gold": g_topic}, cause={"gold": g_cause})
    pred = ratings({"llm": "llm"}, u, topic={"llm": p_topic}, cause={"llm": p_cause})
    rep = evaluate(gold, pred, cb, bootstrap=100)
    topic = rep.pred().dimension("topic")
    cause = rep.pred().dimension("cause")
    assert topic.n == 10 and topic.gate is None
    open_units = [x for x, t in zip(u, g_topic, strict=True) if t in ("work", "school")]
    assert cause.n == len(open_units) == 6
    assert cause.gate == {"dimension": "topic", "codes": ["work", "school"], "n_open": 6}
    assert set(cause.units) == set(open_units)
    assert cause.pred_values["u04"] == GATE_CLOSED
    # agreement on the 6 open units: u01 u03 u05 u06 agree; u02 (boss/deadline), u04 (closed)
    assert cause.metrics["agreement"].value == pytest.approx(4 / 6)
    assert "u07" not in cause.units
    assert "(gate closed)" in cause.confusion["labels"]
    assert [c.code for c in cause.codes] == ["boss", "deadline"]


def test_relevance_gate_is_a_dimension_and_gates_the_others(tmp_path):
    cb = codebook(tmp_path, RELEVANT, "rel.yaml")
    u = ids(6)
    g_rel = ["true", "true", "true", "false", "false", "true"]
    g_top = ["boss", "pay", "boss", None, None, "pay"]
    p_rel = ["true", "true", "false", "false", "true", "true"]
    p_top = ["boss", "pay", None, None, "boss", "boss"]
    rep = evaluate(ratings({"gold": "gold"}, u, relevant={"gold": g_rel}, topic={"gold": g_top}),
                   ratings({"llm": "llm"}, u, relevant={"llm": p_rel}, topic={"llm": p_top}),
                   cb, bootstrap=0)
    p = rep.pred()
    assert [d.name for d in p.dimensions] == ["relevant", "topic"]
    assert p.dimension("relevant").n == 6
    assert p.dimension("relevant").metrics["agreement"].value == pytest.approx(4 / 6)
    top = p.dimension("topic")
    assert top.n == 4 and top.gate["dimension"] == "relevant"
    assert top.pred_values["u03"] == GATE_CLOSED  # the LLM called a relevant unit irrelevant
    assert top.metrics["agreement"].value == pytest.approx(2 / 4)


def test_segment_codebook_is_scored_per_unit_by_code_presence(tmp_path):
    cb = codebook(tmp_path, SEGMENT, "seg.yaml")
    S = frozenset
    u = ids(4)
    g = [S({"privacy"}), S({"privacy", "trust"}), S(), S({"autonomy"})]
    p = [S({"privacy"}), S({"trust"}), S({"trust"}), S({"autonomy"})]
    rep = evaluate(ratings({"gold": "gold"}, u, value={"gold": g}),
                   ratings({"llm": "llm"}, u, value={"llm": p}), cb, bootstrap=0)
    d = rep.pred().dimension("value")
    assert d.type == "multi"
    by = {c.code: c for c in d.codes}
    assert by["privacy"].metrics["recall"].value == pytest.approx(1 / 2)
    assert by["trust"].metrics["precision"].value == pytest.approx(1 / 2)
    assert by["autonomy"].metrics["f1"].value == pytest.approx(1.0)
    assert any("no quote spans" in n for n in rep.notes)
    assert rep.to_dict()["preds"][0]["quote_overlap"] is None


def test_quote_overlap_with_gold_spans():
    text = "my boss yells and the pay is bad"
    gold_ev = {"u1": {"records": [{"quote": "boss yells", "codes": {"value": "privacy"}}]}}
    pred_ev = {"u1": {"records": [{"start": 3, "end": 17, "codes": {"value": "privacy"}}]}}
    ov = quote_overlap(gold_ev, pred_ev, {"u1": text}, ["u1"])
    # gold "boss yells" = chars 3..13 (10); pred 3..17 (14): overlap 10
    assert ov["precision"] == pytest.approx(10 / 14) and ov["recall"] == pytest.approx(1.0)
    assert ov["codes"]["privacy"]["f1"] == pytest.approx(20 / 24)
    assert quote_overlap({}, pred_ev, {"u1": text}, ["u1"]) is None


# -- human baseline -------------------------------------------------------------------------------


def alpha_binary(rows: list[list[str]]) -> Fraction:
    """Krippendorff's nominal alpha of complete two-category data, by hand.

    With m coders per unit, x_a and x_b the unit's votes: sum of o_ab + o_ba over units =
    sum x_a x_b * 2 / (m - 1); n_a, n_b totals; alpha = 1 - (N - 1) * that / (2 n_a n_b).
    """
    m = len(rows)
    n_units = len(rows[0])
    dis = Fraction(0)
    for j in range(n_units):
        xa = sum(r[j] == "a" for r in rows)
        dis += Fraction(2 * xa * (m - xa), m - 1)
    na = sum(v == "a" for r in rows for v in r)
    nb = m * n_units - na
    return 1 - (m * n_units - 1) * dis / (2 * na * nb)


def test_human_baseline_leave_one_out_by_hand(tmp_path):
    cb = tmp_path / "ab.yaml"
    cb.write_text("vsdcoder: 1\nname: ab\ndimensions:\n  - name: x\n    codes: [{name: a}, "
                  "{name: b}]\n", encoding="utf-8")
    u = ids(8)
    h = {"h1": list("aabbabab"), "h2": list("aabbbbab"), "h3": list("abbbabab")}
    llm = list("aabaabab")
    gold = ratings({k: "human" for k in h}, u, x=h)
    rep = evaluate(gold, ratings({"llm": "llm"}, u, x={"llm": llm}), cb, bootstrap=100)
    d = rep.pred().dimension("x")
    b = d.baseline
    assert b is not None and b.humans == ["h1", "h2", "h3"]
    assert b.alpha_humans.value == pytest.approx(float(alpha_binary(list(h.values()))))
    loo = {r["replaced"]: r for r in b.leave_one_out}
    for gone in h:
        others = [v for k, v in h.items() if k != gone]
        assert loo[gone]["alpha_without"] == pytest.approx(float(alpha_binary(others)))
        assert loo[gone]["alpha_llm_in_place"] == pytest.approx(
            float(alpha_binary([*others, llm])))
    in_place = [float(alpha_binary([*[v for k, v in h.items() if k != g], llm])) for g in h]
    assert b.llm_in_place_range == pytest.approx([min(in_place), max(in_place)])
    pairs = {(p["a"], p["b"]): p for p in b.pairwise}
    assert set(pairs) == {("h1", "h2"), ("h1", "h3"), ("h2", "h3")}
    assert pairs[("h1", "h2")]["alpha"] == pytest.approx(float(alpha_binary([h["h1"], h["h2"]])))
    assert pairs[("h1", "h2")]["agreement"] == pytest.approx(7 / 8)
    assert len(b.llm_vs_humans) == 3
    # the gold is the humans' majority (no gold coder): a a b b a b a b
    assert "majority of 3 human coders" in rep.gold["reference"]
    assert d.gold_values == dict(zip(u, list("aabbabab"), strict=True))
    # the per-code baseline is there too
    assert all(c.baseline is not None for c in d.codes)
    js = rep.to_dict()["preds"][0]["dimensions"][0]["baseline"]
    assert js["llm_in_place_range"] == pytest.approx(b.llm_in_place_range)


def test_no_baseline_with_one_human_is_said():
    gold, pred = confusion12()
    rep = evaluate(gold, pred, "sad-stressors", bootstrap=0)
    assert rep.pred().dimension("stressor").baseline is None
    assert any("human baseline" in n for n in rep.notes)


# -- inputs and problems --------------------------------------------------------------------------


def test_ids_on_one_side_only_are_listed():
    gold = ratings({"gold": "gold"}, ["a", "b", "c", "d", "e"],
                   stressor={"gold": ["work", "school", "work", "school", "work"]})
    pred = ratings({"llm": "llm"}, ["c", "d", "e", "f", "g"],
                   stressor={"llm": ["work", "school", "school", "work", "work"]})
    rep = evaluate(gold, pred, "sad-stressors", bootstrap=0)
    p = rep.pred()
    assert p.units["only_gold"] == ["a", "b"] and p.units["only_pred"] == ["f", "g"]
    assert p.units["evaluated"] == 3 and p.dimension("stressor").n == 3
    text = "\n".join(rep.problems)
    assert "only in the gold" in text and "a, b" in text
    assert "only in llm" in text and "f, g" in text
    assert rep.to_dict()["preds"][0]["units"]["only_pred"] == ["f", "g"]


def test_gold_units_a_run_did_not_code_are_listed_once_by_status():
    u = ["a", "b", "c", "d", "e", "f"]
    gold = ratings({"gold": "gold"}, u, stressor={"gold": ["work", "school"] * 3})
    pred = ratings({"llm": "llm"}, [*u, "x"],
                   stressor={"llm": ["work", None, None, "work", None, "school", None]})
    pred.evidence["llm"] = {"b": {"status": "failed"}, "c": {"status": "skipped"},
                            "x": {"status": "failed"}}  # as read_run keeps it
    rep = evaluate(gold, pred, "sad-stressors", bootstrap=0)
    p = rep.pred()
    assert p.units["not_coded"] == ["b", "c", "e"] and p.units["evaluated"] == 3
    assert p.units["not_coded_by_status"] == {"failed": ["b"], "skipped": ["c"],
                                              "without codes": ["e"]}
    line = ("3 gold unit(s) that llm did not code are left out: failed (b), skipped (c), "
            "without codes (e)")
    assert line in p.problems
    text = "\n".join(x.split(": ", 1)[-1] for x in p.problems)
    for uid in "bcex":  # each id once among the problems
        assert len(re.findall(rf"\b{uid}\b", text)) == 1, (uid, text)


def test_a_missing_prediction_inside_the_scope_is_left_out(tmp_path):
    cb = codebook(tmp_path)
    u = ids(6)
    g_topic = ["work", "school", "other", "work", "school", "other"]
    p_topic = ["work", "school", None, "work", "work", "other"]  # u03: e.g. an unknown code
    lv = ["low", "mid", "high", "low", "mid", "high"]
    gold = ratings({"gold": "gold"}, u, topic={"gold": g_topic}, level={"gold": lv})
    pred = ratings({"llm": "llm"}, u, topic={"llm": p_topic}, level={"llm": lv})
    rep = evaluate(gold, pred, cb, bootstrap=200, permutations=50)
    d = rep.pred().dimension("topic")
    assert (d.n, d.n_scope) == (5, 6)
    assert d.metrics["agreement"].value == pytest.approx(4 / 5)
    assert d.metrics["f1_micro"].value == pytest.approx(4 / 5)
    assert d.metrics["f1_macro"].ci is not None
    assert {c.code: c.metrics["f1"].value for c in d.codes}["work"] == pytest.approx(4 / 5)
    assert any("1 of 6 units in scope have no code" in n for n in d.notes)


def test_bad_inputs_are_usage_errors(tmp_path):
    gold, pred = confusion12()
    with pytest.raises(UsageError, match="no such run directory"):
        evaluate(gold, [tmp_path / "nope"], "sad-stressors")
    with pytest.raises(UsageError, match="no such gold file"):
        evaluate(tmp_path / "nope.csv", [pred], "sad-stressors")
    with pytest.raises(UsageError, match="at least one prediction"):
        evaluate(gold, [], "sad-stressors")
    with pytest.raises(UsageError, match="no human or gold coder"):
        evaluate(ratings({"x": "llm"}, ["a"], stressor={"x": ["work"]}), [pred], "sad-stressors")


def test_python_api_is_lazy_and_the_same():
    assert vsdcoder.evaluate is evaluate


# -- reports ---------------------------------------------------------------------------------------


def three_humans_report(tmp_path: Path) -> EvalReport:
    cb = codebook(tmp_path)
    rng = random.Random(1)
    u = ids(40)
    truth_t = [rng.choice(["work", "school", "other"]) for _ in u]

    def noisy(vals, choices, p):
        return [v if rng.random() < p else rng.choice(choices) for v in vals]

    topics = {h: noisy(truth_t, ["work", "school", "other"], 0.85) for h in ("h1", "h2", "h3")}
    levels = {h: noisy(["low", "mid", "high"] * 13 + ["low"], ["low", "mid", "high"], 0.8)
              for h in topics}
    gold = ratings({h: "human" for h in topics}, u, topic=topics, level=levels)
    gold.texts = {x: f"text <{x}> & more" for x in u}
    pred = ratings({"gpt": "llm"}, u, topic={"gpt": noisy(truth_t, ["work", "school"], 0.7)},
                   level={"gpt": noisy(levels["h1"], ["low", "mid", "high"], 0.7)})
    return evaluate(gold, pred, cb, bootstrap=200, permutations=200)


def test_json_report_schema(tmp_path):
    rep = three_humans_report(tmp_path)
    out = write_json(rep, tmp_path / "r.json")
    js = json.loads(out.read_text(encoding="utf-8"))
    assert js["format"] == 1
    assert set(js) == {"format", "vsdcoder", "created", "elapsed_seconds", "codebook", "gold",
                       "settings", "preds", "leaderboard", "problems", "notes"}
    assert set(js["settings"]) == {"bootstrap", "seed", "permutations", "ci_level", "ci_method"}
    assert set(js["gold"]) == {"source", "coders", "reference", "humans", "n_units"}
    p = js["preds"][0]
    assert set(p) == {"name", "kind", "source", "units", "run", "headline", "dimensions",
                      "skipped_dimensions", "quote_overlap", "problems"}
    assert set(p["units"]) == {"evaluated", "gold", "only_gold", "only_pred", "not_coded",
                               "not_coded_by_status"}
    assert set(p["run"]) == {"model", "cost_usd", "seconds", "counts", "failed", "total",
                             "failure_rate"}
    assert set(p["headline"]) == {"alpha_mean", "kappa_mean", "f1_macro_mean"}
    d = p["dimensions"][0]
    assert set(d) == {"name", "type", "level", "kappa_weights", "gate", "n_scope", "n",
                      "metrics", "codes", "confusion", "baseline", "notes"}
    assert set(d["metrics"]) == {"agreement", "kappa", "alpha", "ac1", "f1_macro", "f1_micro"}
    m = d["metrics"]["kappa"]
    assert {"value", "ci", "reason", "n"} <= set(m) and len(m["ci"]) == 2
    c = d["codes"][0]
    assert set(c) == {"code", "n", "support", "predicted", "metrics", "p_value", "baseline"}
    assert set(c["metrics"]) == {"agreement", "kappa", "alpha", "ac1", "precision", "recall",
                                 "f1"}
    assert set(d["confusion"]) == {"kind", "labels", "matrix"}
    assert set(d["baseline"]) == {"humans", "alpha_humans", "pairwise", "llm_vs_humans",
                                  "leave_one_out", "human_kappa_range", "human_alpha_range",
                                  "llm_kappa_range", "llm_in_place_range"}
    assert set(js["leaderboard"][0]) == {"name", "kind", "model", "n", "alpha_mean",
                                         "kappa_mean", "f1_macro_mean", "cost_usd", "seconds",
                                         "failed", "total", "failure_rate"}
    # the numbers are the report's
    assert d["metrics"]["kappa"]["value"] == pytest.approx(
        rep.pred().dimensions[0].metrics["kappa"].value)


def test_html_report_is_self_contained(tmp_path):
    rep = three_humans_report(tmp_path)
    page = write_html(rep, tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and " src=" not in page and "<link" not in page
    assert page.count("<svg") >= 4  # confusion heat maps and per-code charts
    assert "text &lt;u01&gt;" not in page  # unit texts are not in the report
    assert "Leaderboard" in page and "human" in page
    import xml.dom.minidom

    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        xml.dom.minidom.parseString(svg)  # well-formed


def test_terminal_report_shows_dimensions_codes_and_baseline(tmp_path):
    from rich.console import Console

    rep = three_humans_report(tmp_path)
    for width in (80, 200):
        con = Console(record=True, width=width)
        print_report(rep, con)
        out = con.export_text()
        assert "per dimension" in out and "per code" in out
        assert "α humans" in out and "α LLM in place" in out
        assert "[" in out and "kappa" in out
    con = Console(record=True, width=100)
    print_report(rep, con, compact=True)
    assert "per code" not in con.export_text()


# -- runs through the engine: leaderboard, sheet, CLI ------------------------------------------

SAD = [("s1", "my boss keeps yelling at me", "work"),
       ("s2", "three finals next week", "school"),
       ("s3", "cannot pay rent this month", "financial_problem"),
       ("s4", "my mother is sick again", "family_issues"),
       ("s5", "so anxious all the time", "emotional_turmoil"),
       ("s6", "deadline at work tomorrow", "work")]


def coded_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(gold.csv, run_a, run_b): a codes everything right; b gets s2 wrong and fails on s3."""
    data = write_csv(tmp_path / "data.csv", ["id", "text"], [[i, t] for i, t, _ in SAD])
    gold = write_csv(tmp_path / "gold.csv", ["id", "text", "stressor"], [list(r) for r in SAD])
    truth = {t: c for _, t, c in SAD}

    def responder(req, srv):
        text = unit_text(req)
        code = truth[text]
        if req.get("model") == "fake-b":
            if text == "three finals next week":
                code = "work"
            elif text == "cannot pay rent this month":
                code = "Money"  # never a code: the unit fails after the re-asks
        return Reply(completion(req, {"quote": " ".join(text.split()[:2]), "stressor": code}))

    with FakeOpenAI(responder) as srv:
        for name in ("a", "b"):
            vsdcoder.code(data, "sad-stressors", model=f"openai/fake-{name}", api_base=srv.url,
                          api_key=KEY, out=tmp_path / f"run_{name}", max_retries=1,
                          http_retries=1, progress=False)
    return gold, tmp_path / "run_a", tmp_path / "run_b"


def test_leaderboard_from_two_runs_lists_cost_time_and_failures(tmp_path):
    gold, run_a, run_b = coded_runs(tmp_path)
    rep = evaluate(gold, [run_b, run_a], "sad-stressors", bootstrap=100, permutations=100)
    board = rep.leaderboard
    assert [r["name"] for r in board] == ["openai/fake-a", "openai/fake-b"]  # best alpha first
    for r, run in zip(board, (run_a, run_b), strict=True):
        m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        assert r["model"] == m["model"]["model"]
        assert r["cost_usd"] == m["cost_usd"]
        assert r["seconds"] == pytest.approx(sum(s["seconds"] for s in m["sessions"]))
        assert r["total"] == sum(m["counts"].values())
    a, b = board
    assert a["failure_rate"] == 0 and a["alpha_mean"]["value"] == pytest.approx(1.0)
    assert b["failed"] == 1 and b["failure_rate"] == pytest.approx(1 / 6)
    pb = rep.pred("openai/fake-b")
    assert pb.units["not_coded"] == ["s3"] and pb.dimension("stressor").n == 5
    assert pb.units["evaluated"] == 5
    assert pb.units["not_coded_by_status"] == {"failed": ["s3"]}
    # each failed gold unit is listed once, with its status
    assert [x for x in pb.problems if "s3" in x] == [
        "1 gold unit(s) that openai/fake-b did not code are left out: failed (s3)"]
    assert sum("s3" in x for x in rep.problems) == 1
    # the gold file was read with its detected (wide) layout, one human coder
    assert rep.gold["reference"] == "the one human coder 'gold'"
    page = render_html(rep)
    assert "openai/fake-a" in page and "$0.0000" in page


def test_disagreement_sheet_rows_csv_and_xlsx(tmp_path):
    gold, pred = confusion12()
    # two humans beside the gold coder: their codes go into the sheet
    gold.coders.update({"ann": "human", "bob": "human"})
    gold.values["stressor"]["ann"] = dict(zip(ids(12), GOLD12, strict=True))
    gold.values["stressor"]["bob"] = dict(zip(ids(12), PRED12, strict=True))
    rep = evaluate(gold, pred, "sad-stressors", bootstrap=0, permutations=0)
    for suffix in (".csv", ".xlsx"):
        path = tmp_path / f"sheet{suffix}"
        assert write_sheet(rep, path) == 4
        rows = read_sheet(path)
        assert [r["id"] for r in rows] == DIFFER12
        assert list(rows[0]) == ["id", "dimension", "text", "gold", "human:ann", "human:bob",
                                 "llm", "llm_quote", "llm_rationale", "adjudicated"]
        r5 = rows[0]
        assert (r5["dimension"], r5["gold"], r5["llm"]) == ("stressor", "work", "school")
        assert (r5["human:ann"], r5["human:bob"]) == ("work", "school")
        assert (r5["text"], r5["llm_quote"], r5["llm_rationale"]) == ("text of u05", "quote u05",
                                                                      "why u05")
        assert all(r["adjudicated"] == "" for r in rows)
    # from (gold, pred, codebook) directly
    assert write_sheet((gold, pred, "sad-stressors"), tmp_path / "again.csv") == 4


def fill(path: Path, values: dict[str, str]) -> None:
    """Fill the adjudicated column of a CSV sheet: unit id -> value."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["adjudicated"] = values.get(r["id"], "")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_adjudication_round_trip_updates_the_gold(tmp_path):
    gold, pred = confusion12()
    rep = evaluate(gold, pred, "sad-stressors", bootstrap=0, permutations=0)
    sheet = tmp_path / "sheet.csv"
    write_sheet(rep, sheet)
    fill(sheet, {"u05": "school", "u12": "school"})  # the LLM was right on u05 and u12
    new = apply_adjudication(sheet, gold, "sad-stressors")
    assert new.values["stressor"]["gold"]["u05"] == "school"
    assert new.values["stressor"]["gold"]["u12"] == "school"
    assert new.values["stressor"]["gold"]["u06"] == "school"  # empty cell: unchanged
    assert gold.values["stressor"]["gold"]["u05"] == "work"  # the input is not changed
    out = tmp_path / "new_gold.csv"
    write_gold(new, out, "sad-stressors")
    back = read_gold(out, "sad-stressors")
    assert back.values["stressor"]["new_gold"]["u05"] == "school"
    after = evaluate(back, pred, "sad-stressors", bootstrap=0).pred().dimension("stressor")
    assert after.metrics["agreement"].value == pytest.approx(10 / 12)
    # an unknown code is reported with its row, and nothing is applied
    fill(sheet, {"u05": "wrk", "u06": "school"})
    with pytest.raises(UsageError, match=r"row 2 .*'wrk' \(did you mean 'work'\?\) is not a code"):
        apply_adjudication(sheet, gold, "sad-stressors")


def test_adjudication_of_humans_majority_writes_a_layout_that_keeps_the_humans(tmp_path):
    cb = tmp_path / "ab.yaml"
    cb.write_text("vsdcoder: 1\nname: ab\ndimensions:\n  - name: x\n    codes: [{name: a}, "
                  "{name: b}]\n", encoding="utf-8")
    u = ids(4)
    gold = ratings({"h1": "human", "h2": "human", "h3": "human"}, u,
                   x={"h1": list("aabb"), "h2": list("abbb"), "h3": list("aaba")})
    pred = ratings({"llm": "llm"}, u, x={"llm": list("bbbb")})
    rep = evaluate(gold, pred, cb, bootstrap=0)
    sheet = tmp_path / "sheet.xlsx"
    assert write_sheet(rep, sheet) == 2  # majority a a b b; the LLM differs on u01, u02
    from openpyxl import load_workbook

    wb = load_workbook(sheet)
    ws = wb.active
    col = [c.value for c in ws[1]].index("adjudicated") + 1
    ws.cell(row=2, column=col, value="b")
    wb.save(sheet)
    new = apply_adjudication(sheet, gold, cb)
    assert new.coders["gold"] == "gold"
    assert new.values["x"]["gold"] == {"u01": "b", "u02": "a", "u03": "b", "u04": "b"}
    layout = write_gold(new, tmp_path / "g.csv", cb)
    back = read_gold(tmp_path / "g.csv", cb, layout=layout)
    assert back.coders == {"gold": "gold", "h1": "human", "h2": "human", "h3": "human"}
    assert back.values["x"]["h2"] == gold.values["x"]["h2"]
    rep2 = evaluate(tmp_path / "g.csv", pred, cb, layout=layout, bootstrap=0)
    assert rep2.gold["reference"] == "gold coder 'gold'"
    assert rep2.pred().dimension("x").baseline is not None


def test_cli_eval_end_to_end(tmp_path, capsys):
    gold, run_a, run_b = coded_runs(tmp_path)
    js, page, sheet = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "d.csv"
    rc = main(["eval", "--gold", str(gold), "--pred", str(run_b), "--pred", str(run_a),
               "--codebook", "sad-stressors", "--json", str(js), "--html", str(page),
               "--disagreements", str(sheet), "--bootstrap", "100", "--permutations", "100"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "per dimension" in out and "Leaderboard" in out and "kappa" in out
    assert json.loads(js.read_text(encoding="utf-8"))["format"] == 1
    assert "<svg" in page.read_text(encoding="utf-8")
    rows = read_sheet(sheet)
    assert [r["id"] for r in rows] == ["s2"]  # run_b said work; s3 failed (not a disagreement)
    assert rows[0]["llm"] == "work" and rows[0]["gold"] == "school"
    assert rows[0]["llm_quote"] == "three finals" and rows[0]["text"] == "three finals next week"

    # adjudicate: the gold changes on s2
    fill(sheet, {"s2": "work"})
    new = tmp_path / "new_gold.csv"
    rc = main(["eval", "adjudicate", str(sheet), "--gold", str(gold), "--codebook",
               "sad-stressors", "-o", str(new)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "1 adjudicated value" in out
    back = read_gold(new, "sad-stressors")
    assert back.values["stressor"]["new_gold"]["s2"] == "work"


def test_cli_eval_errors_exit_2_without_traceback(tmp_path, capsys):
    gold, run_a, _ = coded_runs(tmp_path)
    bad_gold = write_csv(tmp_path / "bad.csv", ["key", "label"], [["s1", "work"]])
    cases = [
        ["eval", "--gold", str(gold), "--pred", str(tmp_path / "missing"), "--codebook",
         "sad-stressors"],
        ["eval", "--gold", str(bad_gold), "--pred", str(run_a), "--codebook", "sad-stressors"],
        ["eval", "--gold", str(tmp_path / "nope.csv"), "--pred", str(run_a), "--codebook",
         "sad-stressors"],
        ["eval", "--gold", str(gold), "--pred", str(run_a), "--codebook", "no-such-codebook"],
        ["eval", "--gold", str(gold), "--codebook", "sad-stressors"],
        ["eval", "adjudicate", str(tmp_path / "none.csv"), "--gold", str(gold), "--codebook",
         "sad-stressors", "-o", str(tmp_path / "o.csv")],
    ]
    for argv in cases:
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc == 2, (argv, out, err)
        assert "Traceback" not in out + err and err.strip(), argv
    main(cases[1])
    assert "cannot tell how this gold file is laid out" in capsys.readouterr().err


def test_demo_ends_with_the_eval_of_its_sample(tmp_path, capsys, monkeypatch):
    from vsdcoder._paths import bundled_dir

    sample = bundled_dir("plugins") / "samples" / "stress-demo.csv"
    with open(sample, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    human = {r["text"]: r["label"] for r in rows}
    # the project's own sample: 4 written messages per stressor code, none repeated
    assert len(rows) == 36 and len(human) == 36
    assert sorted(Counter(human.values()).values()) == [4] * 9

    def responder(req, srv):
        text = unit_text(req)
        return Reply(completion(req, {"quote": text.split()[0], "stressor": human[text]}))

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(responder) as srv:
        rc = main(["demo", "--model", "openai/fake", "--api-base", srv.url, "--out",
                   str(tmp_path / "demo"), "--limit", "8"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "written for this demo" in out
    tail = out[out.index("Agreement of this run with the written labels"):]
    assert "per dimension" in tail and "stressor" in tail
    assert "1.00" in tail  # the scripted model gives the written labels
    assert "per code" not in tail  # compact


@pytest.mark.slow
def test_300_units_3_coders_4_dimensions_bootstrap_1000_is_quick(tmp_path):
    cb = codebook(tmp_path)
    rng = random.Random(5)
    u = [f"u{i}" for i in range(300)]
    topics, levels, themes = ["work", "school", "other"], ["low", "mid", "high"], list("abc")

    def coder(p):
        t = [rng.choice(topics) for _ in u]
        return {"topic": t,
                "cause": [rng.choice(["boss", "deadline"]) if x != "other" else None for x in t],
                "level": [rng.choice(levels) for _ in u],
                "themes": [frozenset(rng.sample(themes, rng.randint(0, 2))) for _ in u]}

    coders = {f"h{i}": coder(0.8) for i in range(3)}
    gold = ratings({h: "human" for h in coders}, u,
                   **{d: {h: coders[h][d] for h in coders} for d in coders["h0"]})
    llm = coder(0.7)
    pred = ratings({"llm": "llm"}, u, **{d: {"llm": v} for d, v in llm.items()})
    t0 = time.perf_counter()
    rep = evaluate(gold, pred, cb, bootstrap=1000, permutations=1000)
    elapsed = time.perf_counter() - t0
    assert len(rep.pred().dimensions) == 4
    assert elapsed < 20, elapsed  # ~1.5 s on an idle laptop core


def test_demo_sample_shares_no_phrase_with_the_codebook_examples():
    """The demo's messages are the test items: no example of the codebook may give them away."""
    import yaml

    from vsdcoder._paths import bundled_dir

    def runs(text: str, n: int = 4) -> set[tuple[str, ...]]:
        w = re.findall(r"[a-z0-9']+", text.lower())
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    cb = yaml.safe_load((bundled_dir("plugins") / "codebooks" / "sad-stressors.yaml")
                        .read_text(encoding="utf-8"))
    examples = [e["text"] for e in cb["examples"]]
    examples += [t for c in cb["dimensions"][0]["codes"]
                 for t in (c.get("examples") or {}).get("positive", [])]
    assert len(examples) >= 11
    shown = set().union(*(runs(t) for t in examples))
    with open(bundled_dir("plugins") / "samples" / "stress-demo.csv", encoding="utf-8") as f:
        shared = {r["id"]: runs(r["text"]) & shown for r in csv.DictReader(f)}
    assert not {k: v for k, v in shared.items() if v}
