"""The supervised baseline (TF-IDF + logistic regression, k-fold out-of-fold codes) as a run."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import need_shared

import vsdcoder
from vsdcoder import baseline as bl
from vsdcoder.baseline import MODEL, run_baseline
from vsdcoder.cli.main import main
from vsdcoder.errors import UsageError


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("COLUMNS", "200")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        rows = list(r)
        return list(r.fieldnames or []), rows


@pytest.fixture(scope="module")
def sad(tmp_path_factory):
    """The SAD suite (data.csv, gold.csv, layout.yaml) built from the shared copy of SAD."""
    from vsdcoder.suites import build_suite

    return build_suite("sad", source=need_shared("datasets", "sad"),
                       out=tmp_path_factory.mktemp("sad-suite"))


def sad_gold(sad) -> dict[str, str]:
    with open(sad.gold, newline="", encoding="utf-8") as f:
        return {r["id"]: r["stressor"] for r in csv.DictReader(f)}


def sad_texts(sad) -> dict[str, str]:
    with open(sad.data, newline="", encoding="utf-8") as f:
        return {r["id"]: r["text"] for r in csv.DictReader(f)}


#: A small labelled data set for the tests of the baseline's logic, so they need no shared
#: data: our own sentence templates per code of `sad-stressors` (none is a SAD sentence), each
#: filled with a few words of its own.
TEMPLATES = {
    "work": ["my {w} at the office moved the project deadline up",
             "the {w} wants the quarterly report redone before the client meeting",
             "I am covering two shifts because the {w} quit the warehouse"],
    "school": ["the chemistry {w} is next week and I have not opened the textbook",
               "my professor marked the {w} harshly and my grade dropped",
               "I still have to finish the {w} for my history class"],
    "financial_problem": ["the {w} is overdue and my account is nearly empty",
                          "I cannot afford the {w} this month after paying rent",
                          "the bank keeps charging fees on the {w}"],
    "emotional_turmoil": ["I feel {w} all the time and cannot say why",
                          "this heavy {w} feeling keeps coming back at night",
                          "everything makes me {w} inside and I just want to cry"],
    "social_relationships": ["my {w} stopped answering my messages after our argument",
                             "my {w} keeps cancelling our plans at the last minute",
                             "I think my {w} is talking behind my back at parties"],
    "family_issues": ["my {w} keeps criticising how I raise the kids",
                      "my {w} and I fight about the inheritance every holiday",
                      "my {w} moved back home and the house is tense"],
    "health_fatigue_physical_pain": ["my {w} has hurt for days and the doctor cannot see me",
                                     "I am exhausted because my {w} keeps me awake",
                                     "the pills for my {w} make me dizzy and sick"],
    "everyday_decision_making": ["I cannot decide which {w} to choose for the weekend",
                                 "picking a {w} from so many options is overwhelming",
                                 "I keep changing my mind about the {w} and must choose today"],
    "other": ["the {w} outside made me late again",
              "the {w} on the news has me on edge",
              "a {w} blocked my street all morning"],
}
WORDS = {
    "work": ["manager", "supervisor", "team lead", "shift boss"],
    "school": ["exam", "essay", "lab assignment", "midterm"],
    "financial_problem": ["electricity bill", "credit card payment", "car loan", "phone bill"],
    "emotional_turmoil": ["anxious", "empty", "hopeless", "lonely"],
    "social_relationships": ["best friend", "boyfriend", "roommate", "girlfriend"],
    "family_issues": ["mother", "father", "sister", "brother"],
    "health_fatigue_physical_pain": ["back", "migraine", "shoulder", "stomach"],
    "everyday_decision_making": ["restaurant", "paint colour", "sofa", "holiday destination"],
    "other": ["traffic jam", "thunderstorm", "election coverage", "road closure"],
}
TAILS = ["", " this week", " again", " lately", " today"]
PER_CODE = 10  # 2 per fold and code with the default 5 folds
MIXED = 2  # per code: a second stressor of another code added, so some units are ambiguous
STRESS_UNITS = PER_CODE * len(TEMPLATES)  # 90
STRESS_LAYOUT = """\
layout: wide
id: id
coder: gold
kind: gold
columns:
  stressor: stressor
"""


def stress_units() -> list[tuple[str, str, str]]:
    """(id, code, text) of the written data set: deterministic, every text unique."""
    rng = random.Random(0)
    codes = list(TEMPLATES)
    rows = []
    for ci, code in enumerate(codes):
        texts = [t.format(w=w) for t in TEMPLATES[code] for w in WORDS[code]]
        rng.shuffle(texts)
        for j, text in enumerate(texts[:PER_CODE]):
            if j < MIXED:  # not always told apart: the folds (the seed) change some codes
                other = codes[(ci + 1 + j) % len(codes)]
                text += ", and on top of that " + TEMPLATES[other][j].format(w=WORDS[other][j])
            rows.append((code, text + TAILS[j % len(TAILS)]))
    rng.shuffle(rows)
    return [(f"s{i:03d}", code, text) for i, (code, text) in enumerate(rows)]


@pytest.fixture(scope="module")
def stress(tmp_path_factory) -> SimpleNamespace:
    """data.csv, gold.csv and layout.yaml of the written data set (stressor codes)."""
    folder = tmp_path_factory.mktemp("stress")
    units = stress_units()
    data, gold, layout = folder / "data.csv", folder / "gold.csv", folder / "layout.yaml"
    for path, header, rows in ((data, ["id", "text"], [(i, t) for i, _, t in units]),
                               (gold, ["id", "stressor"], [(i, c) for i, c, _ in units])):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    layout.write_text(STRESS_LAYOUT, encoding="utf-8")
    return SimpleNamespace(data=data, gold=gold, layout=layout)


@pytest.fixture(scope="module")
def sad_run(tmp_path_factory, sad) -> tuple[Path, Any, float]:
    """One baseline run on the SAD subset (306 units, 9 codes of 34 units each)."""
    out = tmp_path_factory.mktemp("sad") / "baseline"
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn convergence or split warnings
        summary = run_baseline(sad.data, "sad-stressors", sad.gold, layout=sad.layout, out=out)
    return out, summary, time.perf_counter() - t0


# -- SAD: the run directory ------------------------------------------------------------------


def test_sad_run_directory_is_a_run(sad_run, sad):
    out, summary, seconds = sad_run
    assert seconds < 20
    assert summary.status == "finished"
    assert summary.counts == {"coded": 306}
    lines = read_jsonl(out / "codes.jsonl")
    assert len(lines) == 306
    codes = set(vsdcoder.load_codebook("sad-stressors").codebook.dimension("stressor")
                .codable_names())
    for u in lines:
        assert u["status"] == "coded"
        assert u["codes"]["stressor"] in codes
        assert u["evidence"] is None and u["quote_verified"] is None
        assert u["attempts"] == 0
    assert [u["id"] for u in lines] == list(sad_texts(sad))  # file order

    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["kind"] == "baseline" and m["status"] == "finished"
    assert m["model"]["model"] == MODEL == "baseline/tfidf-logreg"
    assert m["model"]["kind"] == "baseline"
    params = m["model"]["params"]
    assert params["folds"] == 5 and params["seed"] == 0
    assert params["sklearn"] == m["versions"]["scikit-learn"]
    assert params["cv"]["stressor"]["macro_f1"] == summary.cv["stressor"]["macro_f1"]
    from vsdcoder.codebook.compile import compile_codebook

    compiled = compile_codebook(vsdcoder.load_codebook("sad-stressors").codebook)
    assert m["codebook"]["hash"] == compiled.codebook_hash  # as an LLM run records it
    assert m["codebook"]["name"] == "sad-stressors" and m["codebook"]["version"]
    from vsdcoder.data.read import file_hash

    assert m["data"]["hash"] == file_hash(sad.data)
    assert m["gold"]["hash"] == file_hash(sad.gold)
    assert m["counts"] == {"coded": 306}
    assert m["calls"] == {"total": 0, "cache_hits": 0} and m["cost_usd"] == 0

    con = sqlite3.connect(out / "run.db")
    try:
        assert con.execute("SELECT COUNT(*) FROM units WHERE status='coded'").fetchone() == (306,)
        assert con.execute("SELECT COUNT(*) FROM calls").fetchone() == (0,)
        assert con.execute("SELECT COUNT(*) FROM units WHERE quote_verified IS NOT NULL"
                           ).fetchone() == (0,)
    finally:
        con.close()


def test_sad_csv_has_the_columns_of_an_llm_run(sad_run, sad, tmp_path):
    """codes.csv and codes.jsonl read exactly like those of `vsdcoder code` on sad-stressors."""
    from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

    out, _, _ = sad_run
    texts = list(sad_texts(sad).items())[:3]
    data = tmp_path / "d.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows(texts)

    def responder(req, srv):
        quote = " ".join(unit_text(req).split()[:2])
        return Reply(completion(req, {"quote": quote, "stressor": "work"}))

    with FakeOpenAI(responder) as srv:
        vsdcoder.code(data, "sad-stressors", model="openai/fake", api_base=srv.url,
                      api_key="sk-test", out=tmp_path / "llm", progress=False)
    llm_header, _ = read_csv(tmp_path / "llm" / "codes.csv")
    header, rows = read_csv(out / "codes.csv")
    assert header == llm_header
    assert header[:3] == ["id", "status", "stressor"]
    assert len(rows) == 306
    assert all(r["quote"] == "" and r["quote_verified"] == "" for r in rows)
    llm_line = read_jsonl(tmp_path / "llm" / "codes.jsonl")[0]
    line = read_jsonl(out / "codes.jsonl")[0]
    assert list(line) == list(llm_line)  # same keys, same order

    from vsdcoder.reliability.gold import read_run

    r = read_run(out, "sad-stressors")
    assert r.coders == {MODEL: "baseline"}
    assert len(r.units) == 306 and r.problems == []


def test_sad_accuracy_well_above_chance(sad_run, sad):
    from sklearn.metrics import accuracy_score, f1_score

    out, summary, _ = sad_run
    gold = sad_gold(sad)
    pred = {u["id"]: u["codes"]["stressor"] for u in read_jsonl(out / "codes.jsonl")}
    ids = list(gold)
    f1 = f1_score([gold[i] for i in ids], [pred[i] for i in ids], average="macro")
    acc = accuracy_score([gold[i] for i in ids], [pred[i] for i in ids])
    cv = summary.cv["stressor"]
    print(f"\nSAD baseline out-of-fold: macro-F1 {f1:.3f}, accuracy {acc:.3f} (chance 0.111)")
    assert cv["macro_f1"] == pytest.approx(f1, abs=1e-4)
    assert cv["accuracy"] == pytest.approx(acc, abs=1e-4)
    assert cv["n_train"] == 306 and cv["folds"] == 5
    assert f1 > 1 / 9 + 0.15
    assert acc > 1 / 9 + 0.15


# -- out-of-fold ----------------------------------------------------------------------------


def test_no_unit_is_coded_by_a_model_that_saw_it(tmp_path, monkeypatch, stress):
    """Spy on the TF-IDF vectorizer: the texts it was fitted on vs the texts it then codes."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    fitted: list[tuple[Any, set[str]]] = []
    coded: list[tuple[Any, list[str]]] = []
    orig_fit_transform = TfidfVectorizer.fit_transform
    orig_transform = TfidfVectorizer.transform

    def fit_transform(self, raw_documents, y=None):
        fitted.append((self, set(raw_documents)))
        return orig_fit_transform(self, raw_documents, y)

    def transform(self, raw_documents):
        coded.append((self, list(raw_documents)))
        return orig_transform(self, raw_documents)

    monkeypatch.setattr(TfidfVectorizer, "fit_transform", fit_transform)
    monkeypatch.setattr(TfidfVectorizer, "transform", transform)
    run_baseline(stress.data, "sad-stressors", stress.gold, layout=stress.layout,
                 out=tmp_path / "r")

    texts = {i: t for i, _, t in stress_units()}
    assert len(set(texts.values())) == STRESS_UNITS == 90  # a text identifies its unit
    assert len(fitted) == 5
    training = {id(vec): seen for vec, seen in fitted}
    every_coded: list[str] = []
    for vec, batch in coded:
        assert id(vec) in training
        assert not set(batch) & training[id(vec)], "a unit was coded by a model trained on it"
        every_coded += batch
    assert sorted(every_coded) == sorted(texts.values())  # each unit coded exactly once
    for _, seen in fitted:  # each model trained on the other 4 folds: about 4/5 of the units
        assert 70 <= len(seen) <= 74


def test_same_seed_same_codes_other_seed_other_folds(stress, tmp_path):
    out = tmp_path / "first"
    summary = run_baseline(stress.data, "sad-stressors", stress.gold, layout=stress.layout,
                           out=out, seed=0)
    again = run_baseline(stress.data, "sad-stressors", stress.gold, layout=stress.layout,
                         out=tmp_path / "again", seed=0)
    assert (tmp_path / "again" / "codes.jsonl").read_bytes() == (out / "codes.jsonl").read_bytes()
    assert (tmp_path / "again" / "codes.csv").read_bytes() == (out / "codes.csv").read_bytes()
    assert again.cv == summary.cv
    other = run_baseline(stress.data, "sad-stressors", stress.gold, layout=stress.layout,
                         out=tmp_path / "other", seed=1)
    assert (tmp_path / "other" / "codes.jsonl").read_bytes() != (out / "codes.jsonl").read_bytes()
    assert other.cv["stressor"]["macro_f1"] > 1 / 9 + 0.15
    # the same --out again replaces the earlier baseline run
    run_baseline(stress.data, "sad-stressors", stress.gold, layout=stress.layout,
                 out=tmp_path / "other", seed=0)
    assert (tmp_path / "other" / "codes.jsonl").read_bytes() == (out / "codes.jsonl").read_bytes()


# -- multi-label, gates, several coders ------------------------------------------------------

SYNTH = """\
vsdcoder: 1
name: synth-pets
version: 0.1.0
evidence: {quote: true}
dimensions:
  - name: topics
    type: multi
    codes: [{name: money}, {name: weather}, {name: food}]
  - name: pet
    type: single
    codes: [{name: "yes"}, {name: "no"}]
  - name: pet_kind
    type: single
    when: {dimension: pet, codes: ["yes"]}
    codes: [{name: cat}, {name: dog}]
"""
VOCAB = {
    "money": ["rent", "salary", "bills", "debt", "bank"],
    "weather": ["rain", "storm", "snow", "sunny", "wind"],
    "food": ["pizza", "soup", "bread", "pasta", "salad"],
    "cat": ["cat", "kitten", "meow", "purr", "litter"],
    "dog": ["dog", "puppy", "bark", "leash", "fetch"],
}
FILLER = ["today", "really", "again", "think", "about", "the", "my", "and", "so", "very"]


def synth(tmp_path: Path, n: int = 90) -> tuple[Path, Path, Path, dict[str, dict[str, Any]]]:
    rng = random.Random(7)
    topics = list(VOCAB)[:3]
    data_rows, gold_rows, truth = [], [], {}
    for i in range(n):
        chosen = sorted(rng.sample(topics, rng.choice([1, 1, 2])), key=topics.index)
        pet = "yes" if i % 2 == 0 else "no"
        kind = ("cat" if i % 4 == 0 else "dog") if pet == "yes" else None
        words = [w for t in chosen for w in rng.sample(VOCAB[t], 2)]
        if kind:
            words += rng.sample(VOCAB[kind], 2)
        words += rng.sample(FILLER, 3)
        rng.shuffle(words)
        uid = f"u{i:03d}"
        data_rows.append((uid, " ".join(words) + f" n{i}"))
        gold_rows.append((uid, ";".join(chosen), pet, kind or ""))
        truth[uid] = {"topics": chosen, "pet": pet, "pet_kind": kind}
    cb = tmp_path / "synth.yaml"
    cb.write_text(SYNTH, encoding="utf-8")
    data = tmp_path / "data.csv"
    gold = tmp_path / "gold.csv"
    for path, header, rows in ((data, ["id", "text"], data_rows),
                               (gold, ["id", "topics", "pet", "pet_kind"], gold_rows)):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    return cb, data, gold, truth


def test_multi_label_and_gated_dimensions(tmp_path, monkeypatch):
    cb, data, gold, truth = synth(tmp_path)
    texts = {r["id"]: r["text"] for r in read_csv(data)[1]}
    trained_on: list[tuple[list[str], list[Any]]] = []
    orig = bl._fit_single

    def spy(x, y, seed):
        trained_on.append((list(x), list(y)))
        return orig(x, y, seed)

    monkeypatch.setattr(bl, "_fit_single", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = run_baseline(data, cb, gold, out=tmp_path / "run", folds=5, seed=3)
    assert summary.counts == {"coded": 90}
    assert set(summary.cv) == {"topics", "pet", "pet_kind"}
    print("\nsynthetic CV:", {d: r["macro_f1"] for d, r in summary.cv.items()})
    for r in summary.cv.values():
        assert r["macro_f1"] > 0.8
    assert "exact_match" in summary.cv["topics"]
    # the gated dimension is trained on the units whose gold gate is open only
    assert summary.cv["pet_kind"]["n_train"] == 45
    pet_yes_texts = {texts[u] for u, t in truth.items() if t["pet"] == "yes"}
    kind_fits = [x for x, y in trained_on if set(y) <= {"cat", "dog"}]
    assert len(kind_fits) == 5
    for x in kind_fits:
        assert set(x) <= pet_yes_texts

    lines = {u["id"]: u for u in read_jsonl(tmp_path / "run" / "codes.jsonl")}
    order = ["money", "weather", "food"]
    for uid, u in lines.items():
        c = u["codes"]
        assert isinstance(c["topics"], list) and c["topics"]  # required: never empty
        assert c["topics"] == sorted(c["topics"], key=order.index)
        if c["pet"] == "no":
            assert c["pet_kind"] is None  # predicted gate closed: not coded
        else:
            assert c["pet_kind"] in ("cat", "dog")
        assert set(c) == {"topics", "pet", "pet_kind"}
    assert any(len(u["codes"]["topics"]) == 2 for u in lines.values())
    assert sum(u["codes"]["topics"] == truth[i]["topics"] for i, u in lines.items()) > 70
    _, rows = read_csv(tmp_path / "run" / "codes.csv")
    two = next(r for r in rows if len(lines[r["id"]]["codes"]["topics"]) == 2)
    assert two["topics"] == ";".join(lines[two["id"]]["codes"]["topics"])

    # the run reads back as a coder with the same values
    from vsdcoder.reliability.gold import read_run

    r = read_run(tmp_path / "run", cb)
    assert r.coders == {MODEL: "baseline"}
    u0 = next(iter(lines))
    assert r.values["topics"][MODEL][u0] == frozenset(lines[u0]["codes"]["topics"])


def test_several_coders_majority_ties_not_trained_on_rare_codes(tmp_path, monkeypatch):
    """Two human coders (long layout): disagreements are ties, never trained on but coded."""
    cb, data, _, truth = synth(tmp_path, n=60)
    texts = {r["id"]: r["text"] for r in read_csv(data)[1]}
    long = tmp_path / "long.csv"
    ties = set()
    with open(long, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["unit", "coder", "dimension", "code"])
        for i, (uid, t) in enumerate(truth.items()):
            w.writerow([uid, "ann1", "pet", t["pet"]])
            other = t["pet"]
            if i % 10 == 3:
                other = "no" if t["pet"] == "yes" else "yes"
                ties.add(uid)
            w.writerow([uid, "ann2", "pet", other])
    trained_on: list[set[str]] = []
    orig = bl._fit_single

    def spy(x, y, seed):
        trained_on.append(set(x))
        return orig(x, y, seed)

    monkeypatch.setattr(bl, "_fit_single", spy)
    summary = run_baseline(data, cb, long, out=tmp_path / "run", folds=4)
    assert ties and summary.cv["pet"]["n_train"] == 60 - len(ties)
    tie_texts = {texts[u] for u in ties}
    assert trained_on and all(not (x & tie_texts) for x in trained_on)
    lines = {u["id"]: u for u in read_jsonl(tmp_path / "run" / "codes.jsonl")}
    assert all(lines[u]["codes"]["pet"] in ("yes", "no") for u in ties)  # still coded
    # dimensions the gold does not code are left null (or [] for multi) and reported
    assert summary.notes == {
        "topics": "0 gold-coded unit(s) to learn from (need at least 2); not coded",
        "pet_kind": "0 gold-coded unit(s) to learn from (need at least 2); not coded"}
    assert all(u["codes"]["topics"] == [] and u["codes"]["pet_kind"] is None
               for u in lines.values())
    m = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert m["gold"]["coders"] == ["ann1", "ann2"]
    assert m["model"]["params"]["not_coded"] == summary.notes


def test_rare_codes_are_trained_on_and_reported(tmp_path):
    cb, data, gold, _ = synth(tmp_path, n=60)
    rows = read_csv(gold)[1]
    rare = [r["id"] for r in rows if r["pet_kind"] == "cat"][:2]
    with open(gold, "w", newline="", encoding="utf-8") as f:  # only 2 cats left: < 5 folds
        w = csv.DictWriter(f, fieldnames=["id", "topics", "pet", "pet_kind"])
        w.writeheader()
        for r in rows:
            if r["pet_kind"] == "cat" and r["id"] not in rare:
                r["pet_kind"] = ""
            w.writerow(r)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = run_baseline(data, cb, gold, out=tmp_path / "run", folds=5)
    cv = summary.cv["pet_kind"]
    assert cv["classes"] == {"cat": 2, "dog": 15}
    assert cv["rare_classes"] == ["cat"]
    assert summary.counts == {"coded": 60}


REL = """\
vsdcoder: 1
name: synth-rel
version: 0.1.0
relevance:
  include: ["The text is about a pet."]
dimensions:
  - name: pet_kind
    codes: [{name: cat}, {name: dog}]
"""


def test_relevance_gate_is_learned_and_closes_the_codes(tmp_path):
    rng = random.Random(11)
    cb = tmp_path / "rel.yaml"
    cb.write_text(REL, encoding="utf-8")
    data_rows, gold_rows = [], []
    for i in range(60):
        kind = ["cat", "dog", None][i % 3]
        words = rng.sample(VOCAB[kind or "weather"], 3) + rng.sample(FILLER, 3)
        data_rows.append((f"r{i}", " ".join(words)))
        gold_rows.append((f"r{i}", "false" if kind is None else "true", kind or ""))
    for name, header, rows in (("data.csv", ["id", "text"], data_rows),
                               ("gold.csv", ["id", "relevant", "pet_kind"], gold_rows)):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    summary = run_baseline(tmp_path / "data.csv", cb, tmp_path / "gold.csv",
                           out=tmp_path / "run")
    assert set(summary.cv) == {"relevant", "pet_kind"}
    assert summary.cv["pet_kind"]["n_train"] == 40  # the gold-relevant units only
    assert summary.cv["relevant"]["macro_f1"] > 0.8
    lines = read_jsonl(tmp_path / "run" / "codes.jsonl")
    assert {type(u["relevant"]) for u in lines} == {bool}
    for u in lines:
        if u["relevant"]:
            assert u["codes"]["pet_kind"] in ("cat", "dog")
        else:
            assert u["codes"]["pet_kind"] is None
    header, rows = read_csv(tmp_path / "run" / "codes.csv")
    assert header[:4] == ["id", "status", "relevant", "pet_kind"]
    assert {r["relevant"] for r in rows} == {"true", "false"}


# -- refusals --------------------------------------------------------------------------------


def test_segment_codebooks_are_refused(tmp_path, stress):
    with pytest.raises(UsageError, match="the baseline codes documents"):
        run_baseline(stress.data, "vsd-mental-health", stress.gold, out=tmp_path / "r")


def test_bad_inputs_are_usage_errors(tmp_path, stress):
    with pytest.raises(UsageError, match="no such gold file"):
        run_baseline(stress.data, "sad-stressors", tmp_path / "nope.csv", out=tmp_path / "r")
    with pytest.raises(UsageError, match="no such data file"):
        run_baseline(tmp_path / "nope.csv", "sad-stressors", stress.gold, out=tmp_path / "r")
    with pytest.raises(UsageError, match="at least 2"):
        run_baseline(stress.data, "sad-stressors", stress.gold, out=tmp_path / "r", folds=1)
    with pytest.raises(UsageError, match="no dimension 'stresor'"):
        run_baseline(stress.data, "sad-stressors", stress.gold, out=tmp_path / "r",
                     dimensions=["stresor"])
    other_ids = tmp_path / "gold.csv"
    other_ids.write_text("id,stressor\nx1,work\nx2,school\n", encoding="utf-8")
    with pytest.raises(UsageError, match="ids match"):
        run_baseline(stress.data, "sad-stressors", other_ids, out=tmp_path / "r")
    # a directory holding an LLM run is not overwritten
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "manifest.json").write_text(json.dumps({"model": {"model": "openai/x"}}))
    with pytest.raises(UsageError, match="not a baseline"):
        run_baseline(stress.data, "sad-stressors", stress.gold, out=llm)


# -- plugin and CLI --------------------------------------------------------------------------


def test_registered_as_a_coder_plugin():
    from vsdcoder.plugins import get_registry

    entry = get_registry().coders["baseline"]
    assert entry.plugin == "vsdcoder.builtins.coders"
    assert callable(entry.obj)


def test_cli_end_to_end(tmp_path, capsys, stress):
    out = tmp_path / "cli"
    rc = main(["baseline", str(stress.data), "--codebook", "sad-stressors",
               "--gold", str(stress.gold), "--layout", str(stress.layout),
               "--out", str(out), "--folds", "5", "--seed", "0",
               "--id-col", "id", "--text-col", "text"])
    o, e = capsys.readouterr()
    assert rc == 0, e
    assert "stressor" in o and "macro-F1" in o
    assert len(read_jsonl(out / "codes.jsonl")) == 90
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["kind"] == "baseline" and m["status"] == "finished"

    rc = main(["baseline", str(stress.data), "-c", "sad-stressors", "-g", str(stress.gold),
               "--out", str(tmp_path / "j"), "--json"])
    o, e = capsys.readouterr()
    assert rc == 0, e
    data = json.loads(o)
    assert data["counts"] == {"coded": 90} and data["cv"]["stressor"]["macro_f1"] > 0.26

    rc = main(["baseline", str(stress.data), "--codebook", "sad-stressors", "--gold",
               str(tmp_path / "missing.csv"), "--out", str(tmp_path / "bad")])
    o, e = capsys.readouterr()
    assert rc == 2
    assert "no such gold file" in e and "Traceback" not in e + o


def test_cli_help_lists_baseline(capsys):
    assert main(["--help"]) == 0
    assert "  baseline " in capsys.readouterr()[0]
