"""``--batch``: provider batch APIs against the scripted server's files and batches endpoints.

The scripted server (:mod:`vsdcoder.testing.fake_batches`) answers every line of an uploaded
batch file with the same responder as its chat completions endpoint, so a batch run and a
synchronous run can be compared answer for answer.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.coding.batch import BatchLimits, split_sizes
from vsdcoder.errors import UsageError
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, attempt_number, completion, unit_text

MODEL = "openai/fake"
KEY = "sk-test-batch-PLANTED-7f3a9c"
TEXTS = {
    "a1": "My boss keeps yelling at me",
    "a2": "Exams next week scare me",
    "a3": "Rent is due and I am broke",
    "a4": "My sister stopped talking to me",
    "a5": "I cannot sleep before the deadline",
}
CODES = {"a1": "work", "a2": "school", "a3": "financial_problem", "a4": "family_issues",
         "a5": "work"}
BY_TEXT = {t: CODES[i] for i, t in TEXTS.items()}

_SCRIPT = shutil.which("vsdcoder", path=str(Path(sys.executable).parent))
VSDCODER = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "vsdcoder.cli.main"]


pytestmark = pytest.mark.usefixtures("isolated_engine")


# -- helpers ---------------------------------------------------------------------------------


def write_csv(path: Path, rows: dict[str, str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("id", "text"))
        w.writerows(rows.items())
    return path


def good(req: dict[str, Any], stressor: str | None = None) -> Reply:
    """A valid sad-stressors answer quoting words 1-2 of the unit's text."""
    text = unit_text(req)
    quote = " ".join(text.split()[1:3])
    return Reply(completion(req, {"quote": quote, "stressor": stressor or BY_TEXT[text]}))


def responder(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
    """Valid answers, except a wrong code for the exams text on the first ask."""
    if unit_text(req).startswith("Exams") and attempt_number(req) == 1:
        return good(req, "homework")
    return good(req)


def run(data: Path, srv: FakeOpenAI, out: Path, **kw: Any):
    kw.setdefault("http_retries", 1)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("api_key", KEY)
    kw.setdefault("batch_poll", 0.02)
    kw.setdefault("batch", True)
    model = kw.pop("model", MODEL)
    return vsdcoder.code(data, "sad-stressors", model=model, api_base=srv.url, out=out, **kw)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def public(req: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in req.items() if not k.startswith("_")}


def canon(reqs: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(public(r), sort_keys=True) for r in reqs)


def lines_of(srv: FakeOpenAI) -> list[dict[str, Any]]:
    return [ln for up in srv.batch_api.uploads for ln in up["lines"]]


def assert_no_key(run_dir: Path, key: str = KEY) -> None:
    for p in run_dir.rglob("*"):
        if p.is_file():
            assert key.encode() not in p.read_bytes(), f"API key written to {p}"


# -- the same results as a synchronous run ---------------------------------------------------


def test_batch_run_equals_sync_run_and_reasks_in_a_second_round(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(responder) as srv:
        sync = run(data, srv, tmp_path / "sync", batch=False, cache=False)
        sync_reqs = list(srv.requests)
        srv.requests.clear()
        summary = run(data, srv, tmp_path / "batch")
        batch_reqs = list(srv.requests)
        srv.requests.clear()
        # the batch answers went into the response cache: a synchronous run is now free
        again = run(data, srv, tmp_path / "again", batch=False)
        assert srv.requests == []
    out = tmp_path / "batch"
    assert summary.status == "finished" and summary.counts == {"coded": 5}
    assert sync.counts == again.counts == {"coded": 5}

    # codes.jsonl / codes.csv as the synchronous run writes them
    assert read_jsonl(out / "codes.jsonl") == read_jsonl(tmp_path / "sync" / "codes.jsonl")
    assert (out / "codes.csv").read_text() == (tmp_path / "sync" / "codes.csv").read_text()
    assert read_jsonl(out / "codes.jsonl")[1]["attempts"] == 2

    # every request body is the one the synchronous path sent, re-ask included
    assert len(batch_reqs) == len(sync_reqs) == 6
    assert canon(batch_reqs) == canon(sync_reqs)
    lines = lines_of(srv)
    assert [r["_path"] for r in batch_reqs] == ["/v1/chat/completions"] * 6
    assert {ln["url"] for ln in lines} == {"/v1/chat/completions"}
    assert {ln["body"]["model"] for ln in lines} == {"fake"}
    assert len({ln["custom_id"] for ln in lines}) == 6
    assert {u["_auth"] for u in srv.batch_api.uploads} == {f"Bearer {KEY}"}

    # two rounds: the five first asks, then the re-ask of the wrong code
    assert [len(u["lines"]) for u in srv.batch_api.uploads] == [5, 1]
    reask = srv.batch_api.uploads[1]["lines"][0]["body"]["messages"]
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "tool"]
    assert "unknown code 'homework'" in reask[3]["content"]

    # run.db: every attempt logged as a call, with the raw response and the errors
    calls = query(out, "SELECT unit_id, attempt, status, errors, response, tokens_in,"
                       " tokens_out FROM calls ORDER BY unit_id, attempt")
    assert len(calls) == 6
    a2 = [c for c in calls if c[0] == "a2"]
    assert [(c[1], c[2]) for c in a2] == [(1, "invalid"), (2, "ok")]
    assert "homework" in json.loads(a2[0][3])[0]
    assert all(json.loads(c[4])["choices"] for c in calls)
    assert all(c[5] == 100 and c[6] == 20 for c in calls)
    rows = query(out, "SELECT round, state, status, requests FROM batches ORDER BY n")
    assert rows == [(1, "ingested", "completed", 5), (2, "ingested", "completed", 1)]

    # the manifest records batch mode and the batch ids
    m = json.loads((out / "manifest.json").read_text())
    assert m["run"]["batch"] is True
    assert [b["id"] for b in m["batch"]["batches"]] == [c["id"] for c in srv.batch_api.created]
    assert m["batch"]["provider"] == "openai" and m["batch"]["in_flight"] == 0
    assert m["counts"] == {"coded": 5} and m["status"] == "finished"
    assert m["calls"]["total"] == 6
    assert_no_key(out)


def test_batch_price_is_half_the_ordinary_price(tmp_path):
    data = write_csv(tmp_path / "d.csv", dict(list(TEXTS.items())[:2]))
    with FakeOpenAI(lambda req, s: good(req)) as srv:
        sync = run(data, srv, tmp_path / "sync", batch=False, cache=False,
                   model="openai/gpt-4.1-mini")
        batch = run(data, srv, tmp_path / "batch", cache=False, model="openai/gpt-4.1-mini")
    assert sync.totals["cost_usd"] > 0
    assert batch.totals["cost_usd"] == pytest.approx(sync.totals["cost_usd"] / 2)
    m = json.loads((tmp_path / "batch" / "manifest.json").read_text())
    assert m["cost_usd"] == pytest.approx(sync.totals["cost_usd"] / 2)
    assert "batch" in m["batch"]["pricing"]


# -- failures ----------------------------------------------------------------------------------


def test_error_lines_and_invalid_answers_after_the_last_round_fail_with_a_reason(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)

    def script(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
        text = unit_text(req)
        if text.startswith("Rent"):
            return Reply({"error": {"message": "scripted overload", "type": "server_error"}},
                         500)
        if text.startswith("Exams"):
            return good(req, "homework")  # wrong every time: never coerced
        if text.startswith("My sister"):  # the quote is never verbatim: kept, flagged
            return Reply(completion(req, {"quote": "sister went silent",
                                          "stressor": "family_issues"}))
        return good(req)

    with FakeOpenAI(script) as srv:
        summary = run(data, srv, tmp_path / "run", max_retries=1)
    out = tmp_path / "run"
    by_id = {u["id"]: u for u in read_jsonl(out / "codes.jsonl")}
    assert summary.status == "finished"
    assert summary.counts == {"coded": 3, "failed": 2}
    assert by_id["a3"]["status"] == "failed"
    assert "scripted overload" in by_id["a3"]["error"] and "HTTP 500" in by_id["a3"]["error"]
    assert by_id["a2"]["status"] == "failed" and by_id["a2"]["attempts"] == 2
    assert by_id["a2"]["error"].startswith("invalid answer after re-asks")
    assert "homework" in by_id["a2"]["error"] and "codes" not in by_id["a2"]
    assert by_id["a4"]["status"] == "coded" and by_id["a4"]["quote_verified"] is False
    assert by_id["a4"]["codes"] == {"stressor": "family_issues"}
    # max_retries=1: two rounds at most
    assert [len(u["lines"]) for u in srv.batch_api.uploads] == [5, 2]
    # the error line is in the batch's error file, and logged as a call
    calls = query(out, "SELECT status, errors FROM calls WHERE unit_id='a3'")
    assert calls[0][0] == "http_error" and "scripted overload" in calls[0][1]


@pytest.mark.parametrize("outcome", ["expired", "failed"])
def test_expired_or_failed_batch_fails_its_units_and_retry_failed_codes_them(tmp_path,
                                                                             outcome):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(lambda req, s: good(req)) as srv:
        srv.batch_api.outcome = outcome
        srv.batch_api.expire_keep = 2
        summary = run(data, srv, tmp_path / "run")
        units = {u["id"]: u for u in read_jsonl(tmp_path / "run" / "codes.jsonl")}
        if outcome == "expired":  # the lines answered before the expiry are kept
            assert summary.counts == {"coded": 2, "failed": 3}
            assert "expired" in units["a5"]["error"] and "--retry-failed" in units["a5"]["error"]
        else:
            assert summary.counts == {"failed": 5}
            assert "failed" in units["a1"]["error"]
            assert "scripted failure of the whole batch" in units["a1"]["error"]
        assert len(srv.batch_api.uploads) == 1  # no automatic resubmission

        srv.batch_api.outcome = "completed"
        again = run(data, srv, tmp_path / "run")  # without --retry-failed: nothing to do
        assert len(srv.batch_api.uploads) == 1 and again.counts == summary.counts
        retried = run(data, srv, tmp_path / "run", retry_failed=True)
    assert retried.counts == {"coded": 5}
    assert len(srv.batch_api.uploads[1]["lines"]) == (3 if outcome == "expired" else 5)


def test_a_server_without_batch_endpoints_is_a_clear_error(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(lambda req, s: good(req)) as srv:
        srv.batch_api.post = lambda path, headers, raw: Reply(  # type: ignore[method-assign]
            {"error": {"message": "Not Found", "type": "invalid_request_error"}}, 404)
        with pytest.raises(UsageError, match="files and batches endpoints"):
            run(data, srv, tmp_path / "run")
    rows = query(tmp_path / "run", "SELECT state FROM batches")
    assert rows == [("abandoned",)]
    assert query(tmp_path / "run", "SELECT COUNT(*) FROM batch_requests") == [(0,)]


def test_batch_creation_is_never_doubled_by_a_lost_answer_or_a_restart(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(responder) as srv:
        api = srv.batch_api
        real_post = api.post
        mode = {"lose": 1, "refuse": 0}

        def flaky(path: str, headers: Any, raw: bytes) -> Reply:
            creating = path.rstrip("/").endswith("/batches")
            if creating and mode["refuse"]:
                mode["refuse"] -= 1
                return Reply({"error": {"message": "overloaded"}}, 503)
            reply = real_post(path, headers, raw)
            if creating and mode["lose"]:  # created, but the answer is lost
                mode["lose"] -= 1
                return Reply({"error": {"message": "gateway timeout"}}, 504)
            return reply

        api.post = flaky  # type: ignore[method-assign]
        # a lost answer: the batch is found among the provider's batches, not created again
        summary = run(data, srv, tmp_path / "a")
        assert summary.counts == {"coded": 5}
        assert len(api.created) == 2 and len(api.uploads) == 2  # round 1, round 2

        # killed (here: refused) between upload and creation: the restart creates the batch
        # from the file already uploaded
        mode["refuse"] = 2
        with pytest.raises(UsageError, match="could not create the batch"):
            run(data, srv, tmp_path / "b", cache=False)
        assert query(tmp_path / "b", "SELECT state, batch_id FROM batches") == [
            ("submitting", None)]
        summary = run(data, srv, tmp_path / "b", cache=False)
    assert summary.counts == {"coded": 5}
    assert len(api.uploads) == 4 and len(api.created) == 4
    assert api.created[2]["input_file_id"] == api.uploads[2]["id"]


# -- splitting, budget, dry run ----------------------------------------------------------------


def test_requests_are_split_above_the_limit(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", batch_size=2)
    assert summary.counts == {"coded": 5}
    assert [len(u["lines"]) for u in srv.batch_api.uploads] == [2, 2, 1, 1]
    assert query(tmp_path / "run", "SELECT round, requests FROM batches ORDER BY n") == [
        (1, 2), (1, 2), (1, 1), (2, 1)]


def test_split_sizes_respects_requests_and_bytes():
    lim = BatchLimits(max_requests=3, max_bytes=100)
    assert split_sizes([10] * 7, lim) == [range(0, 3), range(3, 6), range(6, 7)]
    assert split_sizes([40, 40, 40, 90, 10], lim) == [range(0, 2), range(2, 3), range(3, 5)]
    assert split_sizes([150, 10], lim) == [range(0, 1), range(1, 2)]  # too big: alone
    assert split_sizes([], lim) == []


def test_budget_limits_what_is_submitted_and_dry_run_counts_batches(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(lambda req, s: good(req)) as srv:
        dry = run(data, srv, tmp_path / "run", dry_run=True, batch_size=2,
                  model="openai/gpt-4.1-mini")
        assert srv.requests == [] and srv.batch_api.uploads == []
        info = dry.dry_run
        assert info["batch"]["requests"] == 5 and info["batch"]["files"] == 3
        assert info["estimated_cost_usd"] == pytest.approx(info["estimated_cost_usd_sync"] / 2,
                                                           rel=1e-3)
        assert info["estimated_cost_usd"] == info["batch"]["estimated_cost_usd"] > 0

        tiny = run(data, srv, tmp_path / "run", budget=1e-9, model="openai/gpt-4.1-mini")
        assert tiny.status == "budget" and srv.batch_api.uploads == []
        per_unit = info["batch"]["estimated_cost_usd"] / 5
        some = run(data, srv, tmp_path / "run", budget=per_unit * 2.5,
                   model="openai/gpt-4.1-mini")
        assert some.status == "budget"
        assert 1 <= len(srv.batch_api.uploads[0]["lines"]) < 5
        rest = run(data, srv, tmp_path / "run", model="openai/gpt-4.1-mini")
    assert rest.status == "finished" and rest.counts == {"coded": 5}


# -- unsupported providers, CLI, restarts ------------------------------------------------------


def env_for(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VSDCODER_MODEL", None)
    env.update(VSDCODER_CACHE_DIR=str(tmp_path / "cache"), LITELLM_LOCAL_MODEL_COST_MAP="True",
               VSDCODER_LOAD_PLUGINS="", COLUMNS="200", OPENAI_API_KEY=KEY,
               PYTHONUNBUFFERED="1")
    return env


def cli_args(data: Path, out: Path, model: str = MODEL, *more: str) -> list[str]:
    return ["code", str(data), "-c", "sad-stressors", "--model", model, "--out", str(out),
            "--batch", "--batch-poll", "0.05", *more]


@pytest.mark.parametrize("model", ["ollama/llama3.1", "local/smollm2"])
def test_unsupported_provider_is_refused_before_anything(tmp_path, model, capsys):
    from vsdcoder.cli.main import main

    data = write_csv(tmp_path / "d.csv", TEXTS)
    with pytest.raises(UsageError, match="--batch"):
        vsdcoder.code(data, "sad-stressors", model=model, out=tmp_path / "run", batch=True)
    assert not (tmp_path / "run").exists()
    # the CLI: exit 2, one message, no traceback
    capsys.readouterr()
    assert main(cli_args(data, tmp_path / "run", model)) == 2
    err = capsys.readouterr().err
    assert ("no batch API for 'ollama/llama3.1'" if model.startswith("ollama")
            else "embedded model") in err
    assert "drop --batch" in err.lower() and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def _wait(cond: Any, timeout: float = 60.0) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_ctrl_c_then_kill_then_resume_polls_the_same_batch(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        api = srv.batch_api
        api.polls_to_complete = 10**9  # hold the batch in progress
        args = [*VSDCODER, *cli_args(data, out, MODEL, "--api-base", srv.url)]

        # Ctrl-C while polling: exit 130, the batch stays submitted and recorded
        p = subprocess.Popen(args, cwd=tmp_path, env=env_for(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait(lambda: api.created and api.polls[api.created[0]["id"]] >= 2)
        bid = api.created[0]["id"]
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=60)
        assert p.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert query(out, "SELECT batch_id, state FROM batches") == [(bid, "submitted")]
        m = json.loads((out / "manifest.json").read_text())
        assert m["status"] == "interrupted" and m["batch"]["batches"][0]["id"] == bid
        assert m["batch"]["in_flight"] == 5
        with pytest.raises(UsageError, match="resume it with --batch"):  # no paying twice
            run(data, srv, out, batch=False)

        # kill -9 while polling the same batch again: nothing resubmitted
        polls = api.polls[bid]
        p = subprocess.Popen(args, cwd=tmp_path, env=env_for(tmp_path),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: api.polls[bid] >= polls + 2)
        p.kill()
        p.wait(timeout=30)
        assert len(api.uploads) == 1 and len(api.created) == 1

        # resume: the same batch is polled to its end, then the re-ask round
        api.polls_to_complete = 0
        summary = run(data, srv, out)
    assert summary.status == "finished" and summary.counts == {"coded": 5}
    assert [len(u["lines"]) for u in api.uploads] == [5, 1]
    assert api.created[0]["id"] == bid
    units = read_jsonl(out / "codes.jsonl")
    assert [u["codes"]["stressor"] for u in units] == [CODES[i] for i in TEXTS]
    sessions = query(out, "SELECT status FROM sessions ORDER BY id")
    assert sessions == [("interrupted",), ("killed",), ("finished",)]
    assert_no_key(out)


def test_no_store_text_drops_batch_answers_once_units_are_saved(tmp_path):
    data = write_csv(tmp_path / "d.csv", TEXTS)
    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, tmp_path / "run", store_text=False)
    assert summary.counts == {"coded": 5}
    rows = query(tmp_path / "run", "SELECT closed, response, sent FROM batch_requests")
    assert rows and all(r == (1, None, None) for r in rows)
    assert query(tmp_path / "run", "SELECT COUNT(*) FROM units WHERE text IS NOT NULL") == [(0,)]


def test_redaction_applies_to_batch_files(tmp_path):
    texts = {"r1": "Email jane.doe@example.com about the rent I owe",
             "r2": "My boss yells at me every day"}
    data = write_csv(tmp_path / "d.csv", texts)
    with FakeOpenAI(lambda req, s: good(req, "work")) as srv:
        summary = run(data, srv, tmp_path / "run", redact="patterns")
    assert summary.counts == {"coded": 2}
    uploaded = json.dumps(srv.batch_api.uploads)
    assert "jane.doe@example.com" not in uploaded and "<EMAIL_1>" in uploaded
    units = {u["id"]: u for u in read_jsonl(tmp_path / "run" / "codes.jsonl")}
    ev = units["r1"]["evidence"]
    assert texts["r1"][ev["start"]:ev["end"]] == ev["quote"]
