"""The coding engine over HTTP: the real LiteLLM -> instructor path against a scripted server.

Every test starts :class:`~vsdcoder.testing.fake_openai.FakeOpenAI` on 127.0.0.1 and codes
through :func:`vsdcoder.code`; the server's responder scripts correct answers, invalid JSON,
wrong codes, non-verbatim or short quotes, 429s, 500s and slow answers.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import itertools
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.errors import UsageError
from vsdcoder.testing.fake_openai import (
    FakeOpenAI,
    Reply,
    attempt_number,
    completion,
    response_schema,
    unit_text,
)

MODEL = "openai/fake"
KEY = "sk-test-engine-0000"


pytestmark = pytest.mark.usefixtures("isolated_engine")


# -- helpers ---------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[tuple], header: tuple[str, ...] = ("id", "text")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def words(text: str, a: int, b: int) -> str:
    return " ".join(text.split()[a:b])


def answer(
    req: dict[str, Any], stressor: str = "work", quote: str | None = None, **kw: Any
) -> Reply:
    """A valid sad-stressors answer quoting words 1-2 of the unit's text."""
    text = unit_text(req)
    q = quote if quote is not None else words(text, 1, 3)
    return Reply(completion(req, {"quote": q, "stressor": stressor}, **kw))


def run(data: Path, server: FakeOpenAI, out: Path | None, **kw: Any):
    kw.setdefault("http_retries", 2)
    kw.setdefault("backoff_base", 0.02)
    kw.setdefault("backoff_max", 2.0)
    kw.setdefault("api_key", KEY)
    kw.setdefault("progress", False)
    codebook = kw.pop("codebook", "sad-stressors")
    model = kw.pop("model", MODEL)
    return vsdcoder.code(data, codebook, model=model, api_base=server.url, out=out, **kw)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        rows = list(r)
        return list(r.fieldnames or []), rows


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def calls_of(run_dir: Path, unit_id: str) -> list[dict[str, Any]]:
    rows = query(
        run_dir,
        "SELECT attempt, status, errors, request, response, parsed, latency,"
        " tokens_in, tokens_out, cost, cache_hit FROM calls WHERE unit_id=? ORDER BY id",
        unit_id,
    )
    keys = (
        "attempt",
        "status",
        "errors",
        "request",
        "response",
        "parsed",
        "latency",
        "tokens_in",
        "tokens_out",
        "cost",
        "cache_hit",
    )
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        for k in ("errors", "request", "response", "parsed"):
            d[k] = json.loads(d[k]) if d[k] else None
        out.append(d)
    return out


def reask_messages(server: FakeOpenAI, text: str) -> list[str]:
    """Contents of the tool/user messages the server received after the first ask of ``text``."""
    out = []
    for req in server.requests:
        if unit_text(req) == text and attempt_number(req) > 1:
            out += [
                m.get("content") or ""
                for m in req["messages"][2:]
                if m.get("role") in ("tool", "user")
            ]
    return out


def example(codebook: str, min_records: int = 0):
    cb = vsdcoder.load_codebook(codebook).codebook
    for ex in cb.examples:
        if len((ex.output or {}).get("records", [])) >= min_records:
            return ex
    raise AssertionError("no such example")


def filled(codebook: str, output: dict[str, Any]) -> dict[str, Any]:
    """A complete answer (every schema field present) from a codebook-example-style output."""
    from vsdcoder.codebook.checks import render_example_output

    return json.loads(render_example_output(vsdcoder.load_codebook(codebook).codebook, output))


# -- correct answers, the run store ----------------------------------------------------------


def test_correct_answers_store_everything(tmp_path):
    texts = {
        "a1": "My boss keeps yelling at me",
        "a2": "Exams next week scare me",
        "a3": "Rent is due and I am broke",
    }
    codes = {"a1": "work", "a2": "school", "a3": "financial_problem"}
    data = write_csv(tmp_path / "d.csv", list(texts.items()))
    by_text = {t: codes[i] for i, t in texts.items()}

    with FakeOpenAI(lambda req, s: answer(req, by_text[unit_text(req)])) as srv:
        summary = run(data, srv, tmp_path / "run")
    out = tmp_path / "run"

    assert summary.status == "finished"
    assert summary.counts == {"coded": 3}
    assert summary.coded_this_session == 3
    assert len(srv.requests) == 3
    assert {r["_auth"] for r in srv.requests} == {f"Bearer {KEY}"}
    assert {r["model"] for r in srv.requests} == {"fake"}
    assert all(r["temperature"] == 0.0 for r in srv.requests)

    # codes.jsonl: one line per unit in file order, with quote offsets into the text
    lines = read_jsonl(out / "codes.jsonl")
    assert [ln["id"] for ln in lines] == ["a1", "a2", "a3"]
    for ln in lines:
        text = texts[ln["id"]]
        q = words(text, 1, 3)
        start = text.index(q)
        assert ln == {
            "id": ln["id"],
            "status": "coded",
            "codes": {"stressor": codes[ln["id"]]},
            "evidence": {"quote": q, "start": start, "end": start + len(q), "quote_verified": True},
            "attempts": 1,
            "quote_verified": True,
        }
        assert text[ln["evidence"]["start"] : ln["evidence"]["end"]] == q
    assert lines[0]["evidence"]["start"] == 3 and lines[0]["evidence"]["end"] == 13  # "boss keeps"

    # codes.csv: one row per unit
    header, rows = read_csv(out / "codes.csv")
    assert header == [
        "id",
        "status",
        "stressor",
        "quote",
        "quote_start",
        "quote_end",
        "quote_verified",
        "attempts",
        "error",
        "duplicate_of",
    ]
    assert [
        (r["id"], r["status"], r["stressor"], r["quote_verified"], r["attempts"]) for r in rows
    ] == [
        ("a1", "coded", "work", "true", "1"),
        ("a2", "coded", "school", "true", "1"),
        ("a3", "coded", "financial_problem", "true", "1"),
    ]
    assert rows[0]["quote"] == "boss keeps" and rows[0]["quote_start"] == "3"

    # manifest.json
    from vsdcoder.codebook.compile import compile_codebook

    loaded = vsdcoder.load_codebook("sad-stressors")
    compiled = compile_codebook(loaded.codebook, search=[loaded.directory])
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "finished"
    assert m["codebook"]["name"] == "sad-stressors"
    assert m["codebook"]["version"] == loaded.codebook.version
    assert m["codebook"]["hash"] == compiled.codebook_hash
    assert m["prompt"]["hash"] == compiled.hash
    assert m["data"]["hash"] == "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()
    assert m["data"]["id_col"] == "id" and m["data"]["text_col"] == "text"
    assert m["model"]["model"] == MODEL
    assert m["model"]["api_base"] == srv.url
    assert m["model"]["mode"] == "tools"
    assert m["model"]["temperature"] == 0.0
    assert m["model"]["max_retries"] == 2 and m["model"]["http_retries"] == 2
    assert m["model"]["served_models"] == ["fake"]
    for lib in ("python", "vsdcoder", "litellm", "instructor", "pydantic"):
        assert m["versions"][lib], lib
    assert len(m["sessions"]) == 1
    assert m["sessions"][0]["started"] and m["sessions"][0]["ended"]
    assert m["sessions"][0]["status"] == "finished"
    assert m["counts"] == {"coded": 3}
    assert m["tokens"] == {"input": 300, "output": 60, "cached_input": 0}
    assert m["calls"] == {"total": 3, "cache_hits": 0}
    assert m["cost_usd"] == 0
    assert m["units_quote_unverified"] == 0
    assert KEY not in (out / "manifest.json").read_text()

    # run.db: every attempt with request, raw response, parsed output, latency and tokens
    (call,) = calls_of(out, "a1")
    assert call["status"] == "ok" and call["attempt"] == 1 and call["errors"] == []
    assert [m_["role"] for m_ in call["request"]["messages"]] == ["system", "user"]
    assert texts["a1"] in call["request"]["messages"][1]["content"]
    assert "api_key" not in call["request"]
    args = call["response"]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(args) == {"quote": "boss keeps", "stressor": "work"}
    assert call["parsed"] == {"quote": "boss keeps", "stressor": "work"}
    assert call["latency"] > 0
    assert (call["tokens_in"], call["tokens_out"], call["cache_hit"]) == (100, 20, 0)
    assert query(out, "SELECT id, status, attempts, text FROM units ORDER BY row") == [
        ("a1", "coded", 1, texts["a1"]),
        ("a2", "coded", 1, texts["a2"]),
        ("a3", "coded", 1, texts["a3"]),
    ]


# -- re-asks ---------------------------------------------------------------------------------


def test_invalid_answers_are_reasked_with_the_codebook_message(tmp_path):
    texts = {
        "j": "badjson my boss shouts",
        "c": "wrongcode my boss shouts",
        "q": "nonverbatim my boss shouts",
    }
    data = write_csv(tmp_path / "d.csv", list(texts.items()))

    def responder(req, srv):
        t = unit_text(req)
        if attempt_number(req) == 1:
            if t.startswith("badjson"):
                return Reply(completion(req, '{"quote": "my boss", "stressor": '))
            if t.startswith("wrongcode"):
                return Reply(completion(req, {"quote": "my boss", "stressor": "Workz"}))
            if t.startswith("nonverbatim"):
                return Reply(completion(req, {"quote": "my manager yells", "stressor": "work"}))
        return answer(req)

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run")
    out = tmp_path / "run"
    assert summary.counts == {"coded": 3}
    for t in texts.values():
        assert srv.hits[t] == 2, t

    expected = {
        "j": "Invalid JSON",
        "c": "unknown code 'Workz' for 'stressor' (did you mean 'work'?); choose one of: 'work'",
        "q": "the quote is not verbatim: 'my manager yells' does not occur in the text; copy it "
        "exactly",
    }
    for uid, msg in expected.items():
        reask = reask_messages(srv, texts[uid])
        assert len(reask) == 1 and msg in reask[0], (uid, reask)
        calls = calls_of(out, uid)
        assert [(c["attempt"], c["status"]) for c in calls] == [(1, "invalid"), (2, "ok")]
        assert any(msg.split(";")[0] in e for e in calls[0]["errors"]), calls[0]["errors"]
        assert calls[1]["parsed"] == {"quote": "my boss", "stressor": "work"}
    for ln in read_jsonl(out / "codes.jsonl"):
        assert (ln["status"], ln["attempts"], ln["quote_verified"]) == ("coded", 2, True)
        assert ln["codes"] == {"stressor": "work"}


def test_wrong_code_every_time_fails_and_is_never_coerced(tmp_path):
    data = write_csv(
        tmp_path / "d.csv", [("1", "my boss shouts at me"), ("2", "my exams scare me")]
    )

    def responder(req, srv):
        if "boss" in unit_text(req):
            return Reply(completion(req, {"quote": "boss shouts", "stressor": "Work stuff"}))
        return answer(req, "school")

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", max_retries=1)
    assert summary.counts == {"coded": 1, "failed": 1}
    assert srv.hits["my boss shouts at me"] == 2  # first ask + max_retries re-asks
    bad, good = read_jsonl(tmp_path / "run" / "codes.jsonl")
    assert bad["status"] == "failed" and "codes" not in bad and "evidence" not in bad
    assert bad["error"].startswith("invalid answer after re-asks: ")
    assert "unknown code 'Work stuff' for 'stressor'" in bad["error"]
    assert bad["attempts"] == 2
    assert good["codes"] == {"stressor": "school"}
    _, rows = read_csv(tmp_path / "run" / "codes.csv")
    assert (
        rows[0]["status"] == "failed"
        and rows[0]["stressor"] == ""
        and "Work stuff" in rows[0]["error"]
    )


def test_quote_never_verbatim_is_kept_flagged_and_counted(tmp_path):
    data = write_csv(
        tmp_path / "d.csv", [("1", "my boss shouts at me"), ("2", "my exams scare me")]
    )

    def responder(req, srv):
        if "boss" in unit_text(req):
            return Reply(completion(req, {"quote": "the boss yells", "stressor": "work"}))
        return answer(req, "school")

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", max_retries=2)
    out = tmp_path / "run"
    assert summary.counts == {"coded": 2}
    assert summary.totals["units_quote_unverified"] == 1
    assert srv.hits["my boss shouts at me"] == 3
    ln = read_jsonl(out / "codes.jsonl")[0]
    assert ln["status"] == "coded" and ln["quote_verified"] is False
    assert ln["codes"] == {"stressor": "work"}
    assert ln["evidence"] == {
        "quote": "the boss yells",
        "start": None,
        "end": None,
        "quote_verified": False,
    }
    assert ln["attempts"] == 3
    assert "quote not verified after re-asks" in ln["error"] and "not verbatim" in ln["error"]
    assert json.loads((out / "manifest.json").read_text())["units_quote_unverified"] == 1
    _, rows = read_csv(out / "codes.csv")
    assert rows[0]["quote_verified"] == "false" and rows[1]["quote_verified"] == "true"
    assert query(out, "SELECT quote_verified FROM units ORDER BY row") == [(0,), (1,)]


def test_segment_codebook_short_quote_reasked_then_one_row_per_record(tmp_path):
    ex = example("vsd-mental-health", min_records=2)
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": "p1", "text": ex.text}])
    full = filled("vsd-mental-health", ex.output)
    short = dict(full["records"][0], quote=" ".join(full["records"][0]["quote"].split()[:3]))

    def responder(req, srv):
        if attempt_number(req) == 1:
            return Reply(completion(req, {"records": [short]}))
        return Reply(completion(req, full))

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", codebook="vsd-mental-health")
    assert summary.counts == {"coded": 1}
    (reask,) = reask_messages(srv, ex.text)
    assert "the quote has 3 words; it must be at least 5 words copied verbatim" in reask
    (ln,) = read_jsonl(tmp_path / "run" / "codes.jsonl")
    recs = ln["records"]
    assert len(recs) == len(ex.output["records"]) >= 2
    for rec, want in zip(recs, ex.output["records"], strict=True):
        assert rec["quote"] == want["quote"]
        assert ex.text[rec["start"] : rec["end"]] == want["quote"]
        assert rec["quote_verified"] is True
        assert rec["codes"]["llm_impact"] == want["llm_impact"]
    _, rows = read_csv(tmp_path / "run" / "codes.csv")
    assert [(r["id"], r["record"]) for r in rows] == [("p1", str(i + 1)) for i in range(len(recs))]
    assert rows[1]["quote"] == ex.output["records"][1]["quote"]
    assert rows[1]["quote_start"] == str(recs[1]["start"])


def test_segment_quote_too_short_every_time_is_kept_unverified(tmp_path):
    ex = example("vsd-mental-health", min_records=1)
    data = write_csv(tmp_path / "d.csv", [("p1", ex.text)])
    full = filled("vsd-mental-health", ex.output)
    rec = dict(full["records"][0], quote=" ".join(full["records"][0]["quote"].split()[:3]))

    with FakeOpenAI(lambda req, s: Reply(completion(req, {"records": [rec]}))) as srv:
        summary = run(data, srv, tmp_path / "run", codebook="vsd-mental-health", max_retries=1)
    assert srv.hits[ex.text] == 2
    assert summary.counts == {"coded": 1}
    assert summary.totals["units_quote_unverified"] == 1
    (ln,) = read_jsonl(tmp_path / "run" / "codes.jsonl")
    assert ln["quote_verified"] is False
    (r,) = ln["records"]
    assert r["quote_verified"] is False and ex.text[r["start"] : r["end"]] == rec["quote"]
    assert "at least 5 words" in ln["error"]


def test_gate_broken_is_reasked_and_multi_label_joined_in_csv(tmp_path):
    yes = next(e for e in example_list("tiktok-llm-mh") if e.output.get("benefits"))
    data = write_csv(tmp_path / "d.csv", [("t1", yes.text), ("t2", "who even uses this lol")])

    def responder(req, srv):
        t = unit_text(req)
        if t == yes.text:
            return Reply(completion(req, filled("tiktok-llm-mh", yes.output)))
        no = filled("tiktok-llm-mh", {"personal_use": "no"})
        if attempt_number(req) == 1:  # gate broken: attitude given although personal_use is no
            return Reply(completion(req, dict(no, attitude="positive")))
        return Reply(completion(req, no))

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", codebook="tiktok-llm-mh")
    assert summary.counts == {"coded": 2}
    (reask,) = reask_messages(srv, "who even uses this lol")
    assert "'attitude' is only answered when 'personal_use' is one of" in reask
    lines = read_jsonl(tmp_path / "run" / "codes.jsonl")
    assert lines[0]["codes"]["benefits"] == yes.output["benefits"]
    assert lines[1]["codes"]["attitude"] is None
    _, rows = read_csv(tmp_path / "run" / "codes.csv")
    assert len(yes.output["benefits"]) >= 2
    assert rows[0]["benefits"] == ";".join(yes.output["benefits"])
    assert rows[1]["personal_use"] == "no" and rows[1]["attitude"] == ""


def example_list(codebook: str):
    return vsdcoder.load_codebook(codebook).codebook.examples


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- transient failures ---------------------------------------------------------------------


def test_429_retry_after_is_honoured(tmp_path):
    data = write_csv(tmp_path / "d.csv", [("1", "my boss shouts at me")])
    times: list[float] = []

    def responder(req, srv):
        times.append(time.monotonic())
        if len(times) == 1:
            return Reply(
                {"error": {"message": "rate limited", "type": "rate_limit_error"}},
                429,
                {"Retry-After": "1"},
            )
        return answer(req)

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", backoff_base=0.01)
    assert summary.counts == {"coded": 1}
    assert len(times) == 2
    assert times[1] - times[0] >= 1.0  # backoff alone would wait ~0.01 s
    calls = calls_of(tmp_path / "run", "1")
    assert [c["status"] for c in calls] == ["http_error", "ok"]
    assert "RateLimitError" in calls[0]["errors"][0]
    assert [c["attempt"] for c in calls] == [1, 1]  # an HTTP retry is not a re-ask
    assert read_jsonl(tmp_path / "run" / "codes.jsonl")[0]["attempts"] == 1


def test_500s_then_success_and_permanent_failures(tmp_path):
    data = write_csv(
        tmp_path / "d.csv",
        [
            ("flaky", "flaky my boss shouts"),
            ("down", "down my boss"),
            ("bad", "bad request my boss"),
            ("ok", "ok my boss shouts"),
        ],
    )

    def responder(req, srv):
        t = unit_text(req)
        if t.startswith("flaky") and srv.hits[t] <= 2:
            return Reply({"error": {"message": "upstream hiccup"}}, 500)
        if t.startswith("down"):
            return Reply({"error": {"message": "server on fire"}}, 503)
        if t.startswith("bad"):
            return Reply(
                {"error": {"message": "malformed request", "type": "invalid_request_error"}}, 400
            )
        return answer(req)

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", http_retries=3)
    out = tmp_path / "run"
    assert summary.status == "finished"
    assert summary.counts == {"coded": 2, "failed": 2}
    assert srv.hits["flaky my boss shouts"] == 3
    assert srv.hits["down my boss"] == 4  # first try + 3 retries
    assert srv.hits["bad request my boss"] == 1  # 400 is not transient: no retry
    lines = {ln["id"]: ln for ln in read_jsonl(out / "codes.jsonl")}
    assert lines["flaky"]["status"] == "coded"
    assert [c["status"] for c in calls_of(out, "flaky")] == ["http_error", "http_error", "ok"]
    assert lines["down"]["status"] == "failed" and "server on fire" in lines["down"]["error"]
    assert "codes" not in lines["down"]
    assert lines["bad"]["status"] == "failed" and "malformed request" in lines["bad"]["error"]
    assert len(calls_of(out, "down")) == 4
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {"coded": 2, "failed": 2}


def test_a_request_too_large_is_not_retried_and_a_multi_unit_one_is_split(tmp_path):
    """LiteLLM reports a 413 as a 429; the server's own status decides: no retry."""
    data = write_csv(tmp_path / "d.csv", [(c, f"unit {c} my boss shouts") for c in "abcd"])

    def responder(req, server):
        if _is_multi(req) or "unit d" in unit_text(req):
            return Reply({"error": {"message": "Request too large"}}, 413)
        return answer(req)

    with FakeOpenAI(responder) as srv:
        s1 = run(data, srv, tmp_path / "one", http_retries=3)
        assert len(srv.requests) == 4  # one each: the 413 is not retried
        s2 = run(data, srv, tmp_path / "k", http_retries=3, units_per_call=4, cache=False)
        assert len(srv.requests) == 4 + 1 + 4  # the shared call, then each unit alone
    assert s1.counts == s2.counts == {"coded": 3, "failed": 1}
    for run_dir in ("one", "k"):
        got = {ln["id"]: ln for ln in read_jsonl(tmp_path / run_dir / "codes.jsonl")}
        assert "Request too large" in got["d"]["error"]


def test_timeouts_are_retried(tmp_path):
    data = write_csv(
        tmp_path / "d.csv", [("slow", "slow my boss shouts"), ("never", "never my boss")]
    )

    def responder(req, srv):
        t = unit_text(req)
        if t.startswith("never") or srv.hits[t] == 1:
            # held until the client gives up: a timeout however slow the machine
            return Reply(completion(req, {"quote": "my boss", "stressor": "work"}), delay=60,
                         until_hangup=True)
        return answer(req)

    with FakeOpenAI(responder) as srv:
        # long enough that a loaded machine never gives up on the prompt second answer
        summary = run(data, srv, tmp_path / "run", timeout=2.0, http_retries=1)
    assert summary.counts == {"coded": 1, "failed": 1}
    lines = {ln["id"]: ln for ln in read_jsonl(tmp_path / "run" / "codes.jsonl")}
    assert lines["slow"]["status"] == "coded"
    assert srv.hits["slow my boss shouts"] == 2
    calls = calls_of(tmp_path / "run", "slow")
    assert calls[0]["status"] == "http_error" and "Timeout" in calls[0]["errors"][0]
    assert lines["never"]["status"] == "failed" and "Timeout" in lines["never"]["error"]
    assert srv.hits["never my boss"] == 2


def test_missing_api_key_stops_the_run_with_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = write_csv(tmp_path / "d.csv", [("1", "my boss shouts"), ("2", "rent is due")])
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        t0 = time.monotonic()
        with pytest.raises(UsageError, match="refused the request") as err:
            run(data, srv, tmp_path / "run", api_key=None, http_retries=4, backoff_base=0.5,
                concurrency=1)
        elapsed = time.monotonic() - t0
    assert "API key" in str(err.value) and "resume" in str(err.value)
    assert len(srv.requests) == 0
    assert elapsed < 5  # no backoff on a configuration error
    # nothing is recorded as coded or failed: the units are still to do on resume
    assert read_jsonl(tmp_path / "run" / "codes.jsonl") == []
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "rejected"


def test_provider_401_stops_the_run(tmp_path):
    data = write_csv(tmp_path / "d.csv", [(str(i), f"unit {i} my boss") for i in range(5)])
    bad = lambda req, s: Reply({"error": {"message": "Incorrect API key provided"}}, 401)  # noqa: E731
    with FakeOpenAI(bad) as srv:
        with pytest.raises(UsageError, match="AuthenticationError"):
            run(data, srv, tmp_path / "run", concurrency=1)
    assert len(srv.requests) == 1  # the first 401 stops everything; no retries, no other units


# -- runner ----------------------------------------------------------------------------------


def test_concurrency_bounds_requests_in_flight(tmp_path):
    data = write_csv(tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(12)])
    cond = threading.Condition()
    state = {"now": 0, "max": 0}

    def responder(req, srv):
        with cond:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            cond.notify_all()
            # the first requests wait (at most 10 s) until three are in flight, so the bound is
            # reached however late a loaded machine sends them
            cond.wait_for(lambda: state["max"] >= 3, timeout=10)
        time.sleep(0.15)
        with cond:
            state["now"] -= 1
        return answer(req)

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", concurrency=3)
    assert summary.counts == {"coded": 12}
    assert len(srv.requests) == 12
    assert state["max"] == 3


def test_rpm_spaces_requests(tmp_path):
    data = write_csv(tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(6)])
    times: list[float] = []

    def responder(req, srv):
        times.append(time.monotonic())
        return answer(req)

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", concurrency=6, rpm=300)  # one per 0.2 s
    assert summary.counts == {"coded": 6}
    assert len(times) == 6
    # when the engine sent each request: the server's clock would add the delivery jitter of
    # a loaded machine (a late request and a prompt one arrive closer than they were sent)
    sent = sorted(t for (t,) in query(tmp_path / "run", "SELECT started FROM calls"))
    assert len(sent) == 6
    assert sent[-1] - sent[0] >= 5 * 0.2 * 0.9
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.15


def test_budget_is_a_hard_stop(tmp_path):
    import litellm

    model = "openai/fake-priced"
    litellm.register_model(
        {
            model: {
                "input_cost_per_token": 1e-4,
                "output_cost_per_token": 2e-4,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        }
    )
    per_call = 100 * 1e-4 + 20 * 2e-4  # the fake server reports 100 + 20 tokens
    try:
        data = write_csv(
            tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(20)]
        )
        with FakeOpenAI(lambda req, s: answer(req)) as srv:
            s1 = run(data, srv, tmp_path / "run", model=model, budget=0.05, concurrency=1)
            assert s1.status == "budget"
            assert s1.counts == {"coded": 3}  # 3 * 0.014 = 0.042; a 4th call could cross 0.05
            assert len(srv.requests) == 3
            assert s1.totals["cost_usd"] == pytest.approx(3 * per_call)
            m = json.loads((tmp_path / "run" / "manifest.json").read_text())
            assert m["status"] == "budget" and m["cost_usd"] == pytest.approx(3 * per_call)
            assert len(read_jsonl(tmp_path / "run" / "codes.jsonl")) == 3

            # with 4 calls in flight the overshoot is at most those calls
            s2 = run(
                data, srv, tmp_path / "run4", model=model, budget=0.05, concurrency=4, cache=False
            )
            assert s2.status == "budget"
            assert s2.totals["cost_usd"] <= 0.05 + 4 * per_call + 1e-9
            assert s2.counts["coded"] < 20

            # resuming with a larger budget codes the rest (the first 3 from run.db, not again)
            before = len(srv.requests)
            s3 = run(data, srv, tmp_path / "run", model=model, budget=1.0, cache=False)
            assert s3.status == "finished" and s3.counts == {"coded": 20}
            assert len(srv.requests) - before == 17
    finally:
        litellm.model_cost.pop(model, None)


def test_cache_makes_a_second_run_free_and_no_cache_bypasses_it(tmp_path):
    data = write_csv(tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(4)])
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        first = run(data, srv, tmp_path / "run1")
        assert len(srv.requests) == 4
        second = run(data, srv, tmp_path / "run2")
        assert len(srv.requests) == 4  # zero HTTP requests
        third = run(data, srv, tmp_path / "run3", cache=False)
        assert len(srv.requests) == 8
    assert first.totals["cache_hits"] == 0
    assert second.counts == {"coded": 4}
    assert second.totals["cache_hits"] == 4 and second.totals["cost_usd"] == 0
    assert third.totals["cache_hits"] == 0
    assert read_jsonl(tmp_path / "run1" / "codes.jsonl") == read_jsonl(
        tmp_path / "run2" / "codes.jsonl"
    )
    assert query(
        tmp_path / "run2",
        "SELECT DISTINCT cache_hit, cached FROM calls JOIN units ON units.id = calls.unit_id",
    ) == [(1, 1)]
    assert (tmp_path / "cache" / "responses.db").exists()
    assert KEY.encode() not in (tmp_path / "cache" / "responses.db").read_bytes()


def _is_multi(req: dict[str, Any]) -> bool:
    """A multi-unit request (``--units-per-call`` > 1): its answer schema is a list."""
    return "answers" in (response_schema(req).get("properties") or {})


def _without_answer(req: dict[str, Any], kind: str) -> Reply:
    body = completion(req, {"quote": "x", "stressor": "work"})
    if kind == "no choices":
        body["choices"] = []
        return Reply(body)
    msg = body["choices"][0]["message"]
    msg["content"] = None
    msg.pop("tool_calls", None)
    if kind == "refusal":
        msg["refusal"] = "I can't help with that request."
    return Reply(body)


@pytest.mark.parametrize("kind, error", [
    ("no choices", "no answer: the server's response had no choices"),
    ("empty", "no answer: the model's answer was empty (finish_reason="),
    ("refusal", "no answer: the model refused to answer: I can't help with that"),
])
def test_a_response_without_an_answer_fails_with_why_and_is_never_cached(tmp_path, kind, error):
    data = write_csv(tmp_path / "d.csv", [("a", "unit a my boss shouts"),
                                          ("b", "unit b exams all week")])
    broken = {"on": True}

    def responder(req, server):
        if broken["on"] and "unit a" in unit_text(req):
            return _without_answer(req, kind)
        return answer(req)

    with FakeOpenAI(responder) as srv:
        s1 = run(data, srv, tmp_path / "run", max_retries=1)
        # a: the ask and one re-ask (none without a message to re-ask about); b: one
        assert len(srv.requests) == (2 if kind == "no choices" else 3)
        got = {ln["id"]: ln for ln in read_jsonl(tmp_path / "run" / "codes.jsonl")}
        assert s1.counts == {"coded": 1, "failed": 1}
        assert got["a"]["status"] == "failed" and got["a"]["error"].startswith(error)
        # the server is mended: the failed unit is asked again, not answered from the cache
        broken["on"] = False
        s2 = run(data, srv, tmp_path / "run", retry_failed=True)
        assert len(srv.requests) == (3 if kind == "no choices" else 4)
    assert s2.counts == {"coded": 2} and s2.totals["cache_hits"] == 0


def test_a_multi_unit_call_without_an_answer_codes_each_unit_alone(tmp_path):
    data = write_csv(tmp_path / "d.csv", [(c, f"unit {c} my boss shouts") for c in "abc"])

    def responder(req, server):
        if _is_multi(req):
            return _without_answer(req, "no choices")
        return answer(req)

    with FakeOpenAI(responder) as srv:
        s = run(data, srv, tmp_path / "run", units_per_call=3, max_retries=0)
    assert s.counts == {"coded": 3}
    errs = query(tmp_path / "run", "SELECT errors FROM calls WHERE call_group IS NOT NULL")
    assert len(errs) == 3 and all("had no choices (no answer at all); each unit is coded" in e[0]
                                  for e in errs)


def test_resume_codes_only_what_is_missing(tmp_path):
    data = write_csv(tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(6)])
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        s1 = run(data, srv, tmp_path / "run", limit=2, cache=False)
        assert s1.counts == {"coded": 2}
        assert len(srv.requests) == 2
        s2 = run(data, srv, tmp_path / "run", cache=False)
        assert s2.coded_this_session == 4
        assert len(srv.requests) == 6
        assert all(n == 1 for n in srv.hits.values())
        s3 = run(data, srv, tmp_path / "run", cache=False)
        assert s3.coded_this_session == 0 and len(srv.requests) == 6
    assert s2.counts == {"coded": 6}
    assert [ln["id"] for ln in read_jsonl(tmp_path / "run" / "codes.jsonl")] == [
        str(i) for i in range(6)
    ]
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["status"] for s in m["sessions"]] == ["finished"] * 3
    assert query(tmp_path / "run", "SELECT COUNT(*) FROM sessions") == [(3,)]


def test_retry_failed(tmp_path):
    data = write_csv(tmp_path / "d.csv", [("1", "down my boss shouts"), ("2", "my exams scare me")])
    state = {"down": True}

    def responder(req, srv):
        if "down" in unit_text(req) and state["down"]:
            return Reply({"error": {"message": "bad gateway"}}, 400)
        return answer(req)

    with FakeOpenAI(responder) as srv:
        s1 = run(data, srv, tmp_path / "run")
        assert s1.counts == {"coded": 1, "failed": 1}
        state["down"] = False
        s2 = run(data, srv, tmp_path / "run")  # failures are not retried without the flag
        assert s2.coded_this_session == 0 and len(srv.requests) == 2
        s3 = run(data, srv, tmp_path / "run", retry_failed=True)
        assert s3.coded_this_session == 1 and len(srv.requests) == 3
    assert s3.counts == {"coded": 2}
    assert query(tmp_path / "run", "SELECT id, status, error FROM units ORDER BY row") == [
        ("1", "coded", None),
        ("2", "coded", None),
    ]
    # the failed attempt of the first session is still in the log
    assert [c["status"] for c in calls_of(tmp_path / "run", "1")] == ["http_error", "ok"]


def test_dry_run_makes_no_request_and_counts_only_uncached_calls(tmp_path):
    import litellm

    model = "openai/fake-dry"
    litellm.register_model(
        {
            model: {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        }
    )
    try:
        data = write_csv(
            tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(5)]
        )
        with FakeOpenAI(lambda req, s: answer(req)) as srv:
            d1 = run(data, srv, tmp_path / "dry", model=model, dry_run=True)
            assert srv.requests == []
            assert not (tmp_path / "dry").exists()
            info = d1.dry_run
            assert d1.status == "dry-run"
            assert (info["calls"], info["cached_calls"], info["uncached_calls"]) == (5, 0, 5)
            assert info["first_unit"] == "0"
            assert info["messages"][1]["content"].endswith('"""\nunit 0 my boss shouts\n"""')
            assert info["messages"][0]["role"] == "system"
            assert info["estimated_input_tokens"] > 5 * 100
            assert info["estimated_output_tokens"] == 5 * 150
            assert info["estimated_cost_usd"] == pytest.approx(
                info["estimated_input_tokens"] * 1e-6 + 750 * 2e-6, rel=1e-3
            )

            run(data, srv, tmp_path / "run", model=model, limit=2)  # fills the cache for 2 units
            assert len(srv.requests) == 2
            d2 = run(data, srv, tmp_path / "other", model=model, dry_run=True)
            assert len(srv.requests) == 2
            i2 = d2.dry_run
            assert (i2["calls"], i2["cached_calls"], i2["uncached_calls"]) == (5, 2, 3)
            assert i2["estimated_input_tokens"] == pytest.approx(
                info["estimated_input_tokens"] * 3 / 5, rel=0.05
            )
            assert i2["estimated_output_tokens"] == 3 * 150
            # resuming a run: what is done is not counted at all
            d3 = run(data, srv, tmp_path / "run", model=model, dry_run=True)
            assert (d3.dry_run["calls"], d3.dry_run["uncached_calls"]) == (3, 3)
            assert len(srv.requests) == 2
    finally:
        litellm.model_cost.pop(model, None)


def test_limit_and_seeded_sample(tmp_path):
    from vsdcoder.data.read import DataSpec, UnitReader, sample_units

    data = write_csv(tmp_path / "d.csv", [(str(i), f"unit {i} my boss shouts") for i in range(30)])
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        run(data, srv, tmp_path / "lim", limit=3)
        run(data, srv, tmp_path / "s1", sample=5, sample_seed=7)
        run(data, srv, tmp_path / "s2", sample=5, sample_seed=7)
        run(data, srv, tmp_path / "s3", sample=5, sample_seed=8)

    def ids(name: str) -> list[str]:
        return [ln["id"] for ln in read_jsonl(tmp_path / name / "codes.jsonl")]

    assert ids("lim") == ["0", "1", "2"]
    want = [u.id for u in sample_units(iter(UnitReader(DataSpec(data))), 5, 7)]
    assert ids("s1") == ids("s2") == want
    assert len(set(want)) == 5
    assert ids("s3") != want
    m = json.loads((tmp_path / "s1" / "manifest.json").read_text())
    assert (m["data"]["sample"], m["data"]["sample_seed"]) == (5, 7)


def test_refuses_to_resume_with_another_codebook_or_model(tmp_path):
    data = write_csv(tmp_path / "d.csv", [("1", "my boss shouts at me")])
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        run(data, srv, tmp_path / "run")
        with pytest.raises(
            vsdcoder.UsageError, match=r"cannot resume this run: .*codebook changed"
        ):
            run(data, srv, tmp_path / "run", codebook="tiktok-llm-mh")
        with pytest.raises(
            vsdcoder.UsageError, match=r"model changed \(openai/fake -> openai/other\)"
        ):
            run(data, srv, tmp_path / "run", model="openai/other")
        assert len(srv.requests) == 1
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert len(m["sessions"]) == 1 and m["model"]["model"] == MODEL


def test_run_dir_in_use_is_refused(tmp_path):
    from filelock import FileLock

    data = write_csv(tmp_path / "d.csv", [("1", "my boss shouts at me")])
    (tmp_path / "run").mkdir()
    lock = FileLock(str(tmp_path / "run" / ".lock"))
    lock.acquire()
    try:
        with FakeOpenAI(lambda req, s: answer(req)) as srv:
            with pytest.raises(vsdcoder.UsageError, match="in use by another vsdcoder process"):
                run(data, srv, tmp_path / "run")
            assert srv.requests == []
    finally:
        lock.release()


def test_context_and_meta_columns(tmp_path):
    data = write_csv(
        tmp_path / "d.csv",
        [
            ("1", "my boss shouts at me", "sms", "34", "g1"),
            ("2", "my exams scare me", "", "19", "g2"),
        ],
        header=("id", "text", "channel", "age", "group"),
    )
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        run(data, srv, tmp_path / "run", context_cols=["channel"], meta_cols=["age", "group"])
    users = {unit_text(r): r["messages"][1]["content"] for r in srv.requests}
    assert users["my boss shouts at me"] == (
        "Context (for understanding only; do not code it):\n"
        '"""\nchannel: sms\n"""\n\nText to code:\n"""\n'
        'my boss shouts at me\n"""'
    )
    assert "Context" not in users["my exams scare me"]  # empty context is not shown
    lines = read_jsonl(tmp_path / "run" / "codes.jsonl")
    assert [ln["meta"] for ln in lines] == [
        {"age": "34", "group": "g1"},
        {"age": "19", "group": "g2"},
    ]
    assert lines[0]["evidence"]["quote"] == "boss shouts"  # offsets are into the text, not context
    assert lines[0]["evidence"]["start"] == 3
    header, rows = read_csv(tmp_path / "run" / "codes.csv")
    assert header[:4] == ["id", "status", "age", "group"]
    assert "channel" not in header
    assert [(r["age"], r["group"]) for r in rows] == [("34", "g1"), ("19", "g2")]


def test_empty_texts_skipped_and_duplicates_deduped(tmp_path):
    data = write_csv(
        tmp_path / "d.csv",
        [
            ("1", "my boss shouts at me"),
            ("2", "   "),
            ("3", "my  boss shouts at me "),
            ("4", "my exams scare me"),
        ],
    )
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        s = run(data, srv, tmp_path / "run", dedupe=True)
        assert len(srv.requests) == 2
    assert s.counts == {"coded": 2, "skipped": 1, "duplicate": 1}
    lines = {ln["id"]: ln for ln in read_jsonl(tmp_path / "run" / "codes.jsonl")}
    assert lines["2"] == {"id": "2", "status": "skipped", "attempts": 0, "error": "empty text"}
    assert lines["3"]["status"] == "duplicate" and lines["3"]["duplicate_of"] == "1"
    _, rows = read_csv(tmp_path / "run" / "codes.csv")
    assert [(r["id"], r["status"], r["duplicate_of"]) for r in rows] == [
        ("1", "coded", ""),
        ("2", "skipped", ""),
        ("3", "duplicate", "1"),
        ("4", "coded", ""),
    ]
    # without --dedupe the copy is coded (from the cache: same request)
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        s2 = run(data, srv, tmp_path / "run2")
    assert s2.counts == {"coded": 3, "skipped": 1}


def test_api_key_is_never_stored(tmp_path, monkeypatch):
    planted = "sk-PLANTED-inprocess-7f3a9c"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-PLANTED-env-should-not-be-used")
    data = write_csv(
        tmp_path / "d.csv",
        [("1", "my boss shouts at me"), ("2", "bad my exams"), ("3", "wrongcode my exams")],
    )

    def responder(req, srv):
        t = unit_text(req)
        if t.startswith("bad"):
            return Reply({"error": {"message": "nope"}}, 400)
        if t.startswith("wrongcode"):
            return Reply(completion(req, {"quote": "my exams", "stressor": "nah"}))
        return answer(req)

    with FakeOpenAI(responder) as srv:
        s = run(data, srv, tmp_path / "run", api_key=planted, max_retries=1)
    assert s.counts == {"coded": 1, "failed": 2}
    assert {r["_auth"] for r in srv.requests} == {f"Bearer {planted}"}  # the key was used
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert any(p.name == "run.db" for p in files) and any(p.name == "responses.db" for p in files)
    for p in files:
        raw = p.read_bytes()
        assert planted.encode() not in raw, p
        assert b"sk-PLANTED" not in raw, p


def test_works_inside_a_running_event_loop(tmp_path):
    """As in a Jupyter notebook, where an event loop is already running."""
    data = write_csv(
        tmp_path / "d.csv", [("1", "my boss shouts at me"), ("2", "my exams scare me")]
    )
    with FakeOpenAI(lambda req, s: answer(req)) as srv:

        async def notebook_cell():
            dry = run(data, srv, tmp_path / "dry", dry_run=True)
            return dry, run(data, srv, tmp_path / "run")

        dry, summary = asyncio.run(notebook_cell())
    assert dry.dry_run["calls"] == 2
    assert summary.counts == {"coded": 2}


def test_exponential_backoff_between_retries(tmp_path):
    data = write_csv(tmp_path / "d.csv", [("1", "flaky my boss shouts")])
    times: list[float] = []

    def responder(req, srv):
        times.append(time.monotonic())
        if len(times) <= 3:
            return Reply({"error": {"message": "busy"}}, 503)
        return answer(req)

    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", http_retries=3, backoff_base=0.2, backoff_max=10)
    assert summary.counts == {"coded": 1}
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    # waits drawn from [base * 2^k / 2, base * 2^k]: 0.1-0.2, 0.2-0.4, 0.4-0.8 s
    for k, gap in enumerate(gaps):
        assert gap >= 0.2 * 2**k / 2 - 0.01, gaps
    assert gaps[2] > gaps[0]


def test_cli_dry_run_prints_the_prompt_and_makes_no_request(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_csv(
        tmp_path / "d.csv", [("1", "my boss shouts at me"), ("2", "my exams scare me")]
    )
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        rc = main(
            [
                "code",
                str(data),
                "--codebook",
                "sad-stressors",
                "--model",
                MODEL,
                "--api-base",
                srv.url,
                "--out",
                str(tmp_path / "run"),
                "--dry-run",
            ]
        )
        assert srv.requests == []
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "user message (unit 1)" in out and "my boss shouts at me" in out
    assert "2 units to code, 0 answered from the cache, 2 calls to pay for" in out
    assert "estimated cost: unknown (LiteLLM has no price for this model)" in out
    assert not (tmp_path / "run").exists()
