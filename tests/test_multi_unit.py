"""Multi-unit requests (``--units-per-call K``) over HTTP against the scripted server.

K units go out in one request; each unit's answer is validated on its own and re-asked alone
when it is wrong or missing; the shared call is logged once per unit with split tokens.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.errors import UsageError
from vsdcoder.testing.fake_openai import (
    FakeOpenAI,
    Reply,
    _first_words_answer,
    completion,
    multi_units,
    response_schema,
    unit_text,
)

MODEL = "openai/fake"
KEY = "sk-test-multi-0000"


pytestmark = pytest.mark.usefixtures("isolated_engine")


def data(path: Path, n: int, prefix: str = "id-") -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,text\n")
        for i in range(n):
            f.write(f"{prefix}{i},Message {i}: my boss moved the deadline again today\n")
    return path


def run(path: Path, server: FakeOpenAI, out: Path, **kw: Any):
    kw.setdefault("http_retries", 1)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return vsdcoder.code(path, kw.pop("codebook", "sad-stressors"), model=MODEL,
                         api_base=server.url, api_key=KEY, out=out, progress=False, **kw)


def lines(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for line in (run_dir / "codes.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        assert obj["id"] not in out, "a unit appears twice"
        out[obj["id"]] = obj
    return out


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def is_multi(req: dict[str, Any]) -> bool:
    return "answers" in (response_schema(req).get("properties") or {})


def multi_reply(req: dict[str, Any], fix: Any = None, **kw: Any) -> Reply:
    """Correct answers for every unit; ``fix(uid, text, item)`` may change or drop an item."""
    items = []
    for uid, text in multi_units(req):
        item = {"unit_id": uid, "quote": " ".join(text.split()[1:3]), "stressor": "work"}
        item = fix(uid, text, item) if fix else item
        if item is not None:
            items.append(item)
    return Reply(completion(req, {"answers": items}, **kw))


def single_reply(req: dict[str, Any], stressor: str = "work") -> Reply:
    text = unit_text(req)
    return Reply(completion(req, {"quote": " ".join(text.split()[1:3]), "stressor": stressor}))


# -- the happy path --------------------------------------------------------------------------


def test_k_units_per_call_codes_every_unit_once_with_split_tokens(tmp_path):
    path = data(tmp_path / "d.csv", 23)
    with FakeOpenAI(lambda r, s: multi_reply(r, prompt_tokens=1000, completion_tokens=100)) \
            as server:
        s = run(path, server, tmp_path / "run", units_per_call=5)
        reqs = list(server.requests)
    assert s.counts == {"coded": 23}
    assert len(reqs) == 5  # 5 + 5 + 5 + 5 + 3
    assert sorted(len(multi_units(r)) for r in reqs) == [3, 5, 5, 5, 5]
    # the data's ids never leave the machine: the prompt uses positions 1..K
    assert not any("id-" in json.dumps(r["messages"]) for r in reqs)
    # the system message is the codebook's, byte-identical to a single-unit request's
    compiled = vsdcoder.compile_codebook(vsdcoder.load_codebook("sad-stressors").codebook)
    assert all(r["messages"][0]["content"] == compiled.system for r in reqs)
    got = lines(tmp_path / "run")
    assert sorted(got) == sorted(f"id-{i}" for i in range(23))
    assert all(v["codes"] == {"stressor": "work"} and v["quote_verified"] for v in got.values())
    assert got["id-7"]["evidence"]["quote"] == "7: my"
    # one call counted per request; tokens split so sums are the server's numbers
    assert s.totals["calls"] == 5
    assert s.totals["tokens_in"] == 5000 and s.totals["tokens_out"] == 500
    rows = query(tmp_path / "run", "SELECT unit_id, tokens_in, request IS NOT NULL, call_group"
                 " FROM calls ORDER BY id")
    assert len(rows) == 23
    assert sum(r[2] for r in rows) == 5  # the request is stored once per call
    assert len({r[3] for r in rows}) == 5
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["run"]["units_per_call"] == 5 and m["calls"]["total"] == 5


def test_same_codes_as_one_unit_per_call(tmp_path):
    path = data(tmp_path / "d.csv", 12)
    with FakeOpenAI(_first_words_answer) as server:
        run(path, server, tmp_path / "k1")
        run(path, server, tmp_path / "k4", units_per_call=4)
    a, b = lines(tmp_path / "k1"), lines(tmp_path / "k4")
    strip = lambda d: {k: (v["codes"], v["evidence"]) for k, v in d.items()}  # noqa: E731
    assert strip(a) == strip(b)


# -- per-unit validation and re-asks ---------------------------------------------------------


def test_a_wrong_item_is_reasked_alone_and_the_others_are_kept(tmp_path):
    path = data(tmp_path / "d.csv", 6)

    def fix(uid, text, item):
        if uid == "2":
            item["stressor"] = "workload"  # not a code
        if uid == "4":
            return None  # missing
        if uid == "5":
            item["quote"] = "the deadline moved my boss"  # not verbatim
        return item

    def responder(req, server):
        if is_multi(req):
            return multi_reply(req, fix)
        return single_reply(req)

    with FakeOpenAI(responder) as server:
        s = run(path, server, tmp_path / "run", units_per_call=6)
        reqs = list(server.requests)
    assert s.counts == {"coded": 6}
    singles = [r for r in reqs if not is_multi(r)]
    assert len(reqs) == 4 and len(singles) == 3
    texts = sorted(unit_text(r) for r in singles)
    assert [t.split(":")[0] for t in texts] == ["Message 1", "Message 3", "Message 4"]
    # each re-ask carries that unit's answer and the codebook's message about it
    by_unit = {unit_text(r).split(":")[0]: r["messages"] for r in singles}
    assert by_unit["Message 1"][2]["role"] == "assistant"
    assert "workload" in by_unit["Message 1"][2]["content"]
    assert "unknown code 'workload'" in by_unit["Message 1"][3]["content"]
    assert "no entry with unit_id 4" in by_unit["Message 3"][3]["content"]
    assert "not found in the text" in by_unit["Message 4"][3]["content"] or \
        "verbatim" in by_unit["Message 4"][3]["content"]
    got = lines(tmp_path / "run")
    assert [got[f"id-{i}"]["attempts"] for i in range(6)] == [1, 2, 1, 2, 2, 1]
    # the first (shared) call of a re-asked unit is logged as invalid with its errors
    rows = query(tmp_path / "run", "SELECT attempt, status, errors FROM calls WHERE unit_id=?"
                 " ORDER BY id", "id-1")
    assert [r[:2] for r in rows] == [(1, "invalid"), (2, "ok")]
    assert "workload" in rows[0][2]


def test_without_reasks_a_wrong_item_fails_and_a_bad_quote_is_kept_unverified(tmp_path):
    path = data(tmp_path / "d.csv", 3)

    def fix(uid, text, item):
        if uid == "1":
            item["stressor"] = "nonsense"
        if uid == "2":
            item["quote"] = "words that are not there"
        return item

    with FakeOpenAI(lambda r, s: multi_reply(r, fix)) as server:
        s = run(path, server, tmp_path / "run", units_per_call=3, max_retries=0)
        assert len(server.requests) == 1
    got = lines(tmp_path / "run")
    assert got["id-0"]["status"] == "failed" and "nonsense" in got["id-0"]["error"]
    assert got["id-1"]["status"] == "coded" and got["id-1"]["quote_verified"] is False
    assert got["id-2"]["status"] == "coded" and got["id-2"]["quote_verified"] is True
    assert s.counts == {"coded": 2, "failed": 1}


def test_duplicate_unit_ids_in_the_answer_are_reasked(tmp_path):
    path = data(tmp_path / "d.csv", 2)

    def responder(req, server):
        if not is_multi(req):
            return single_reply(req, "school")
        items = [{"unit_id": "1", "quote": "Message 0:", "stressor": "work"},
                 {"unit_id": "1", "quote": "Message 0:", "stressor": "work"},
                 {"unit_id": "2", "quote": "Message 1:", "stressor": "work"}]
        return Reply(completion(req, {"answers": items}))

    with FakeOpenAI(responder) as server:
        run(path, server, tmp_path / "run", units_per_call=2)
    got = lines(tmp_path / "run")
    assert got["id-0"]["codes"]["stressor"] == "school"  # from its own re-ask
    assert got["id-1"]["codes"]["stressor"] == "work"


def test_an_unparseable_call_falls_back_to_one_unit_per_call(tmp_path):
    path = data(tmp_path / "d.csv", 3)

    def responder(req, server):
        if is_multi(req):
            return Reply(completion(req, "{not json"))
        return single_reply(req)

    with FakeOpenAI(responder) as server:
        s = run(path, server, tmp_path / "run", units_per_call=3, max_retries=1)
        reqs = list(server.requests)
    assert s.counts == {"coded": 3}
    assert sum(is_multi(r) for r in reqs) == 2  # the first ask and one re-ask of the group
    assert sum(not is_multi(r) for r in reqs) == 3
    got = lines(tmp_path / "run")
    assert all(v["attempts"] == 3 for v in got.values())


def test_a_provider_failure_fails_every_unit_of_the_call_with_its_reason(tmp_path):
    path = data(tmp_path / "d.csv", 4)
    with FakeOpenAI(lambda r, s: Reply({"error": {"message": "down"}}, 503)) as server:
        s = run(path, server, tmp_path / "run", units_per_call=4)
        assert len(server.requests) == 2  # the call and its one HTTP retry, not per unit
    got = lines(tmp_path / "run")
    assert s.counts == {"failed": 4}
    assert all(v["error"].startswith("multi-unit call failed: ") for v in got.values())
    # --retry-failed codes them later (here one unit per call)
    with FakeOpenAI(lambda r, s: multi_reply(r)) as server:
        s = run(path, server, tmp_path / "run", units_per_call=4, retry_failed=True)
    assert s.counts == {"coded": 4}


@pytest.mark.parametrize("message", [
    "The response was filtered due to the prompt triggering Azure OpenAI's content management"
    " policy.",
    "This model's maximum context length is 8192 tokens. However, your messages resulted in"
    " 9000 tokens.",
])
def test_a_call_refused_for_its_content_is_coded_one_unit_at_a_time(tmp_path, message):
    """One flagged text must not fail its K-1 neighbours: only the text that causes it fails."""
    path = data(tmp_path / "d.csv", 4)

    def responder(req, server):
        body = json.dumps(req["messages"])
        if "Message 2:" in body:  # the multi-unit call holding it, and its call alone
            return Reply({"error": {"message": message, "type": "invalid_request_error",
                                    "code": "content_filter"}}, 400)
        return multi_reply(req) if is_multi(req) else single_reply(req)

    with FakeOpenAI(responder) as server:
        s = run(path, server, tmp_path / "run", units_per_call=4)
        reqs = list(server.requests)
    assert s.counts == {"coded": 3, "failed": 1}
    assert sum(is_multi(r) for r in reqs) == 1  # a 400 is not retried
    assert sum(not is_multi(r) for r in reqs) == 4
    got = lines(tmp_path / "run")
    assert got["id-2"]["status"] == "failed" and "Error" in got["id-2"]["error"]
    assert not got["id-2"]["error"].startswith("multi-unit call failed")
    assert all(got[f"id-{i}"]["codes"]["stressor"] == "work" for i in (0, 1, 3))
    # the refusal is logged on the shared call of every unit, with what happened next
    rows = query(tmp_path / "run", "SELECT unit_id, errors FROM calls WHERE call_group IS NOT NULL")
    assert len(rows) == 4
    assert all("the provider refused the multi-unit call" in e and "each unit is coded on its"
               " own" in e for _, e in rows)


def test_segment_codebook_several_units_per_call(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,text\na,I talk to the chatbot every night when I feel anxious\n"
                    "b,The bot helped me sleep after a panic attack last week\n",
                    encoding="utf-8")

    def responder(req, server):
        schema = response_schema(req)
        item = schema["properties"]["answers"]["items"]
        assert "records" in item["properties"] and "unit_id" in item["required"]
        answers = [{"unit_id": uid, "records": []} for uid, _ in multi_units(req)]
        return Reply(completion(req, {"answers": answers}))

    with FakeOpenAI(responder) as server:
        s = run(path, server, tmp_path / "run", units_per_call=2,
                codebook="vsd-mental-health")
        assert len(server.requests) == 1
    assert s.counts == {"coded": 2}
    assert lines(tmp_path / "run")["a"]["records"] == []


def test_redacted_texts_are_what_a_multi_unit_call_sends(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,text\na,Write to jane.doe@example.org about the deadline\n"
                    "b,Call 555-123-4567 about the rent please\n", encoding="utf-8")
    with FakeOpenAI(lambda r, s: multi_reply(r)) as server:
        s = run(path, server, tmp_path / "run", units_per_call=2, redact="patterns")
        sent = json.dumps(server.requests)
    assert s.counts == {"coded": 2}
    assert "jane.doe@example.org" not in sent and "555-123-4567" not in sent
    got = lines(tmp_path / "run")
    assert got["a"]["evidence"]["quote"] == "to <EMAIL_1>" or \
        got["a"]["evidence"]["quote"].startswith("to ")


# -- bad input ------------------------------------------------------------------------------


def test_resume_with_another_units_per_call_is_refused(tmp_path):
    path = data(tmp_path / "d.csv", 4)
    with FakeOpenAI(lambda r, s: multi_reply(r)) as server:
        run(path, server, tmp_path / "run", units_per_call=2, limit=2)
        with pytest.raises(UsageError, match="--units-per-call changed"):
            run(path, server, tmp_path / "run", units_per_call=3)


def test_cli_rejects_zero_units_per_call(tmp_path):
    path = data(tmp_path / "d.csv", 2)
    p = subprocess.run([sys.executable, "-m", "vsdcoder", "code", str(path), "-c",
                        "sad-stressors", "-m", MODEL, "--api-base", "http://127.0.0.1:9/v1",
                        "--units-per-call", "0", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert "--units-per-call must be at least 1" in p.stderr
    assert "Traceback" not in p.stderr


def test_a_codebook_with_a_unit_id_dimension_cannot_be_coded_k_at_a_time(tmp_path):
    src = Path(vsdcoder.__file__).parent
    cb = tmp_path / "cb.yaml"
    cb.write_text("""\
name: clash
version: "1"
dimensions:
  - name: unit_id
    type: single
    question: Which unit?
    codes:
      - name: a
        definition: A.
      - name: b
        definition: B.
""", encoding="utf-8")
    assert src.exists()
    path = data(tmp_path / "d.csv", 2)
    with FakeOpenAI(lambda r, s: multi_reply(r)) as server:
        with pytest.raises(UsageError, match="dimension of that name"):
            run(path, server, tmp_path / "run", units_per_call=2, codebook=cb)
        assert server.requests == []


# -- provider prompt caching -----------------------------------------------------------------


def test_cached_prompt_tokens_are_read_priced_and_shown(tmp_path):
    """usage.prompt_tokens_details.cached_tokens -> manifest, summary, and a lower cost."""
    path = data(tmp_path / "d.csv", 4)
    costs = {}
    for cached in (0, 900):
        def responder(req, server, cached=cached):
            text = unit_text(req)
            return Reply(completion(req, {"quote": " ".join(text.split()[1:3]),
                                          "stressor": "work"}, prompt_tokens=1000,
                                    completion_tokens=50, cached_tokens=cached))

        with FakeOpenAI(responder) as server:
            out = tmp_path / f"run-{cached}"
            p = subprocess.run(
                [sys.executable, "-m", "vsdcoder", "code", str(path), "-c", "sad-stressors",
                 "-m", "openai/gpt-4o-mini", "--api-base", server.url, "--out", str(out),
                 "--no-cache"], capture_output=True, text=True,
                env={**__import__("os").environ, "OPENAI_API_KEY": KEY, "COLUMNS": "200"})
        assert p.returncode == 0, p.stderr
        m = json.loads((out / "manifest.json").read_text())
        assert m["tokens"] == {"input": 4000, "output": 200, "cached_input": 4 * cached}
        costs[cached] = m["cost_usd"]
        if cached:
            assert "3,600 cached by the provider" in p.stdout
        else:
            assert "cached by the provider" not in p.stdout
    # LiteLLM prices cached input tokens lower (gpt-4o-mini: half price)
    assert 0 < costs[900] < costs[0]


def test_dry_run_counts_calls_of_k_units_and_shows_the_multi_unit_prompt(tmp_path):
    path = data(tmp_path / "d.csv", 7)
    with FakeOpenAI(lambda r, s: multi_reply(r)) as server:
        d = run(path, server, tmp_path / "run", units_per_call=3, dry_run=True).dry_run
        assert server.requests == []
        assert (d["units"], d["calls"], d["uncached_calls"]) == (7, 3, 3)
        assert "=== unit_id: 3 ===" in d["messages"][1]["content"]
        run(path, server, tmp_path / "run", units_per_call=3, limit=3)  # caches one call
        d = run(path, server, tmp_path / "other", units_per_call=3, dry_run=True).dry_run
        assert (d["calls"], d["cached_calls"], d["uncached_calls"]) == (3, 1, 2)
    p = subprocess.run([sys.executable, "-m", "vsdcoder", "code", str(path), "-c",
                        "sad-stressors", "-m", MODEL, "-k", "3", "--dry-run"],
                       capture_output=True, text=True, env={**__import__("os").environ,
                                                           "COLUMNS": "200"})
    assert p.returncode == 0, p.stderr
    assert "7 units to code in 3 calls of up to 3" in p.stdout


# -- the static part of requests is stored once ---------------------------------------------


def test_static_prompt_parts_are_stored_once_and_calls_full_shows_requests_whole(tmp_path):
    path = data(tmp_path / "d.csv", 6)
    with FakeOpenAI(_first_words_answer) as server:
        run(path, server, tmp_path / "run")
        sent = {unit_text(r): r for r in server.requests}
    rows = query(tmp_path / "run", "SELECT request FROM calls")
    assert len(rows) == 6
    stored = [json.loads(r[0]) for r in rows]
    # system message and tools are references, the unit's message is inline
    assert all("content_ref" in s_["messages"][0] and "tools_ref" in s_ for s_ in stored)
    assert query(tmp_path / "run", "SELECT COUNT(*) FROM prompt_parts") == [(2,)]
    compiled = vsdcoder.compile_codebook(vsdcoder.load_codebook("sad-stressors").codebook)
    for (req,) in query(tmp_path / "run", "SELECT request FROM calls_full"):
        full = json.loads(req)
        assert full["messages"][0] == {"role": "system", "content": compiled.system}
        original = sent[unit_text(full)]
        assert full["tools"] == original["tools"]
        assert full["messages"] == original["messages"]
        assert "tools_ref" not in full


def test_dry_run_on_a_read_only_run_directory_writes_nothing(tmp_path):
    path = data(tmp_path / "d.csv", 5)
    out = tmp_path / "run dir #1"
    with FakeOpenAI(_first_words_answer) as server:
        run(path, server, out, limit=2)
        before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
        mode = out.stat().st_mode
        ro = subprocess.run(["mount", "--bind", "-o", "ro", str(out), str(out)],
                            capture_output=True)
        try:
            if ro.returncode != 0:  # not root: permissions do it
                out.chmod(0o555)
            d = run(path, server, out, dry_run=True).dry_run
        finally:
            if ro.returncode == 0:
                subprocess.run(["umount", str(out)], check=True)
            out.chmod(mode)
        assert (d["calls"], d["units"]) == (3, 3)
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


# -- regressions found in review ---------------------------------------------------------------


def test_budget_stop_during_a_reask_keeps_the_answers_the_shared_call_paid_for(tmp_path):
    """The budget stops the re-ask of one unit: the group's valid answers are still saved."""
    path = data(tmp_path / "d.csv", 3)

    def responder(req, server):  # ~$0.0156 per call at gpt-4o-mini prices
        kw = {"prompt_tokens": 100_000, "completion_tokens": 1000}
        if is_multi(req):
            return multi_reply(req, lambda u, t, item: dict(
                item, stressor="bogus" if u == "2" else "work"), **kw)
        text = unit_text(req)
        return Reply(completion(req, {"quote": " ".join(text.split()[1:3]),
                                      "stressor": "school"}, **kw))

    with FakeOpenAI(responder) as server:
        s = vsdcoder.code(path, "sad-stressors", model="openai/gpt-4o-mini",
                          api_base=server.url, api_key=KEY, out=tmp_path / "run",
                          progress=False, units_per_call=3, concurrency=1, budget=0.02,
                          cache=False)
        assert len(server.requests) == 1  # the re-ask of unit 2 would cross the budget
    assert s.status == "budget"
    assert s.counts == {"coded": 2}
    assert s.totals["calls"] == 1 and s.totals["cost_usd"] > 0  # the money spent is logged
    got = lines(tmp_path / "run")
    assert sorted(got) == ["id-0", "id-2"]
    # resuming with more budget codes only the unit that was left
    with FakeOpenAI(responder) as server:
        s = vsdcoder.code(path, "sad-stressors", model="openai/gpt-4o-mini",
                          api_base=server.url, api_key=KEY, out=tmp_path / "run",
                          progress=False, units_per_call=3, budget=1.0, cache=False)
        assert [unit_text(r).split(":")[0] for r in server.requests] == ["Message 1"]
    assert s.counts == {"coded": 3}
    assert lines(tmp_path / "run")["id-1"]["codes"]["stressor"] == "school"


def test_runs_show_says_how_many_calls_and_units_per_call(tmp_path, capsys):
    from vsdcoder.cli.main import main

    path = data(tmp_path / "d.csv", 5)
    with FakeOpenAI(_first_words_answer) as server:
        run(path, server, tmp_path / "run", units_per_call=2)  # 2 + 2 + 1
    capsys.readouterr()
    assert main(["runs", "show", str(tmp_path / "run")]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "calls 3 (0 from the cache) units per call 2" in shown


def test_a_cut_off_multi_unit_answer_falls_back_and_says_why(tmp_path):
    path = data(tmp_path / "d.csv", 2)

    def responder(req, server):
        if is_multi(req):
            body = completion(req, '{"answers": [{"unit_id": "1", "quo')
            body["choices"][0]["finish_reason"] = "length"
            return Reply(body)
        return single_reply(req)

    with FakeOpenAI(responder) as server:
        s = run(path, server, tmp_path / "run", units_per_call=2)
    assert s.counts == {"coded": 2}
    rows = query(tmp_path / "run", "SELECT attempt, status, errors, call_group FROM calls"
                 " WHERE unit_id='id-1' ORDER BY id")
    assert rows[0][1] == "invalid" and "cut off" in rows[0][2] and rows[0][3]
    assert rows[-1][:2] == (2, "ok") and rows[-1][3] is None


def test_a_model_that_ignores_the_multi_unit_format_is_reported(tmp_path):
    path = data(tmp_path / "d.csv", 4)

    def responder(req, server):
        if is_multi(req):  # answers with unit_ids that match nothing
            return multi_reply(req, lambda uid, text, item: dict(item, unit_id=","))
        return single_reply(req)

    with FakeOpenAI(responder) as server:
        p = subprocess.run([sys.executable, "-m", "vsdcoder", "code", str(path), "-c",
                            "sad-stressors", "-m", MODEL, "--api-base", server.url, "-k", "2",
                            "--out", str(tmp_path / "run")], capture_output=True, text=True,
                           env={**__import__("os").environ, "OPENAI_API_KEY": KEY,
                                "COLUMNS": "200"})
    assert p.returncode == 0, p.stderr
    assert "4 of 4" in p.stdout and "--units-per-call 1 is likely cheaper" in p.stdout
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["calls"]["units_reasked_alone"] == 4 and m["calls"]["units_in_shared_calls"] == 4
    assert m["counts"] == {"coded": 4}


@pytest.mark.parametrize("k", [1, 3])
def test_a_budget_stop_logs_every_call_paid_for_so_the_cost_is_what_was_spent(tmp_path, k):
    """Calls paid for units that are not finished are logged (and in the cost)."""
    path = data(tmp_path / "d.csv", 3)
    kw = {"prompt_tokens": 100_000, "completion_tokens": 1000}  # ~$0.0156 per call

    def responder(req, server):
        if is_multi(req):  # every item wrong: each unit needs a re-ask alone
            return multi_reply(req, lambda u, t, item: dict(item, stressor="bogus"), **kw)
        return Reply(completion(req, {"quote": "not in the text", "stressor": "bogus"}, **kw))

    with FakeOpenAI(responder) as server:
        s = vsdcoder.code(path, "sad-stressors", model="openai/gpt-4o-mini",
                          api_base=server.url, api_key=KEY, out=tmp_path / "run",
                          progress=False, units_per_call=k, concurrency=1, budget=0.02,
                          cache=False)
        paid = len(server.requests)
    assert s.status == "budget" and paid == 1
    assert s.counts == {}  # no unit finished
    per_call = s.totals["cost_usd"]
    assert per_call > 0.015 and s.totals["calls"] == 1  # the one call paid is in the cost
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["cost_usd"] == pytest.approx(per_call)
    rows = query(tmp_path / "run", "SELECT DISTINCT unit_id FROM calls")
    assert rows and all(r[0].startswith("id-") for r in rows)
