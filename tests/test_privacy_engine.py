"""Privacy in coding runs: redaction before sending, pseudonym keys, local-only, purge, hygiene.

Every coding test runs the real LiteLLM -> instructor path against the scripted server
(:class:`~vsdcoder.testing.fake_openai.FakeOpenAI`) and checks what the server received, what
the run directory holds (down to the bytes of run.db and its WAL) and what the cache holds.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.errors import UsageError
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

MODEL = "openai/fake"
KEY = "sk-PLANTED-privacy-key-4242"

#: The dataset: identifiers planted in texts and in a context column.
TEXTS = {
    "u1": "My boss Jake emails me at jake.miller@example.com every night, call me on "
          "+44 7700 900123 if you can help",
    "u2": "Exams are killing me, write to jake.miller@example.com or find u/sad_student_99 here",
    "u3": "Rent is due on 3 March 2024 and my landlord at 12 Baker Street keeps texting "
          "07700 900456 about it",
    "u4": "I just feel tired all the time and nobody listens",
}
CONTEXT = {"u1": "posted by @quietfox_22", "u2": "", "u3": "reply to 10.20.30.40", "u4": ""}
PLANTED = ["jake.miller@example.com", "+44 7700 900123", "7700 900123", "@quietfox_22",
           "quietfox_22", "u/sad_student_99", "sad_student_99", "3 March 2024",
           "12 Baker Street", "07700 900456", "10.20.30.40"]
PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """A private response cache per test, only the built-in plugins, no project file."""
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


# -- helpers ---------------------------------------------------------------------------------


def write_data(path: Path, ids: list[str] | None = None, context: bool = True) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "thread"] if context else ["id", "text"])
        for uid in ids or list(TEXTS):
            w.writerow([uid, TEXTS[uid], CONTEXT[uid]] if context else [uid, TEXTS[uid]])
    return path


def around_placeholder(text: str) -> str:
    """Four words of ``text`` around its first placeholder (else two words)."""
    toks = text.split()
    for i, t in enumerate(toks):
        if PLACEHOLDER.search(t):
            return " ".join(toks[max(0, i - 2):i + 2]).rstrip(".,")
    return " ".join(toks[1:3])


def responder(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
    text = unit_text(req)
    return Reply(completion(req, {"quote": around_placeholder(text), "stressor": "work"}))


def run(data: Path, srv: FakeOpenAI, out: Path | None, **kw: Any):
    kw.setdefault("http_retries", 1)
    kw.setdefault("backoff_base", 0.02)
    kw.setdefault("api_key", KEY)
    kw.setdefault("progress", False)
    kw.setdefault("context_cols", ["thread"])
    return vsdcoder.code(data, "sad-stressors", model=kw.pop("model", MODEL),
                         api_base=kw.pop("api_base", srv.url), out=out, **kw)


def read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    return {ln["id"]: ln for ln in lines}


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def sent(srv: FakeOpenAI) -> str:
    """Everything the server received, as one string."""
    return json.dumps(srv.requests, ensure_ascii=False)


def requests_for(srv: FakeOpenAI, fragment: str) -> list[dict[str, Any]]:
    return [r for r in srv.requests if fragment in unit_text(r)]


def files_under(*dirs: Path) -> list[Path]:
    return [p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()]


def leaks(paths: list[Path], needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for p in paths:
        raw = p.read_bytes()
        for n in needles:
            if n.encode() in raw:
                found.append((p.name, n))
    return found


# -- redaction before sending ----------------------------------------------------------------


def test_no_planted_identifier_reaches_the_server(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, out, redact="patterns")
    assert summary.counts == {"coded": 4}
    body = sent(srv)
    assert srv.requests and not [p for p in PLANTED if p in body]
    # the placeholders did reach it, consistently: the same email in two units is <EMAIL_1>
    (r1,) = requests_for(srv, "My boss Jake")
    (r2,) = requests_for(srv, "Exams are")
    assert "<EMAIL_1>" in unit_text(r1) and "<EMAIL_1>" in unit_text(r2)
    assert "<PHONE_1>" in unit_text(r1) and "<REDDIT_USER_1>" in unit_text(r2)
    assert "posted by <HANDLE_1>" in r1["messages"][1]["content"]  # the context is redacted too
    (r3,) = requests_for(srv, "Rent is due")
    assert unit_text(r3) == ("Rent is due on <DATE_TIME_1> and my landlord at <ADDRESS_1> keeps "
                             "texting <PHONE_2> about it")
    assert "reply to <IP_ADDRESS_1>" in r3["messages"][1]["content"]
    (r4,) = requests_for(srv, "tired")
    assert unit_text(r4) == TEXTS["u4"]  # nothing to redact: sent as it is
    assert summary.privacy["redact"] == ["patterns"]


def test_quotes_and_offsets_refer_to_the_original_text(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out, redact="patterns")
    lines = read_jsonl(out / "codes.jsonl")
    want = {"u1": "me at jake.miller@example.com every",
            "u2": "write to jake.miller@example.com or",
            "u3": "due on 3 March 2024 and",
            "u4": "just feel"}
    for uid, quote in want.items():
        ev = lines[uid]["evidence"]
        assert ev["quote"] == quote, uid
        assert TEXTS[uid][ev["start"]:ev["end"]] == quote
        assert ev["quote_verified"] is True and lines[uid]["quote_verified"] is True
    # codes.csv carries the same original quotes and offsets
    with open(out / "codes.csv", newline="", encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["u1"]["quote"] == want["u1"]
    assert rows["u1"]["quote_start"] == str(TEXTS["u1"].index(want["u1"]))
    # run.db keeps the original text (this machine only) and what was sent, redacted
    assert query(out, "SELECT text, context FROM units WHERE id='u1'") == [
        (TEXTS["u1"], "thread: posted by @quietfox_22")]
    (req,) = query(out, "SELECT request FROM calls WHERE unit_id='u1'")
    assert "jake.miller" not in req[0] and "<EMAIL_1>" in req[0]


def test_quote_validation_and_reasks_run_on_the_redacted_text(tmp_path):
    data = write_data(tmp_path / "d.csv", ["u1"])
    out = tmp_path / "run"

    def script(req, srv):
        # first the model "quotes" the original (which it never saw): not in the sent text
        if not any(m.get("role") == "tool" for m in req["messages"]):
            return Reply(completion(req, {"quote": "me at jake.miller@example.com every",
                                          "stressor": "work"}))
        return responder(req, srv)

    with FakeOpenAI(script) as srv:
        run(data, srv, out, redact="patterns")
    assert len(srv.requests) == 2  # re-asked: the quote is checked against what was sent
    ln = read_jsonl(out / "codes.jsonl")["u1"]
    assert ln["attempts"] == 2 and ln["evidence"]["quote_verified"] is True
    assert ln["evidence"]["quote"] == "me at jake.miller@example.com every"


def test_key_is_owner_only_saved_with_each_unit_and_never_in_the_cache(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    seen: list[tuple[set[str], set[str]]] = []

    def script(req, srv):
        # mid-run: every placeholder in a stored request is in the stored key
        if (out / "run.db").exists():
            con = sqlite3.connect(out / "run.db")
            try:
                sent_ = {p for (r,) in con.execute("SELECT request FROM calls")
                         for p in PLACEHOLDER.findall(r or "")}
                keys = {r[0] for r in con.execute("SELECT placeholder FROM pseudonyms")}
            finally:
                con.close()
            seen.append((sent_, keys))
        return responder(req, srv)

    with FakeOpenAI(script) as srv:
        run(data, srv, out, redact="patterns", concurrency=1)
    assert len(seen) == 4 and all(s <= k for s, k in seen)
    assert seen[-1][0]  # units with placeholders were stored before the last request
    assert not (out / "pseudonyms.json").exists()
    for p in _db_files(out):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    surfaces = dict(query(out, "SELECT placeholder, surface FROM pseudonyms"))
    assert surfaces["<EMAIL_1>"] == "jake.miller@example.com"
    assert surfaces["<PHONE_2>"] == "07700 900456"
    # the cache holds only what the model saw and said: no identifier, no key
    cache_files = files_under(tmp_path / "cache")
    assert cache_files and not any("pseudonym" in p.name for p in cache_files)
    assert leaks(cache_files, PLANTED) == []
    # no API key anywhere
    assert leaks(files_under(out, tmp_path / "cache"), [KEY, "sk-PLANTED"]) == []
    m = json.loads((out / "manifest.json").read_text())
    assert m["privacy"]["key_file"] == "run.db" and m["privacy"]["key_table"] == "pseudonyms"


def test_redaction_counts_per_call_unit_and_manifest(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        summary = run(data, srv, out, redact="patterns")
    calls = {uid: json.loads(r) for uid, r in
             query(out, "SELECT unit_id, redactions FROM calls ORDER BY id")}
    assert calls["u1"] == {"EMAIL": 1, "HANDLE": 1, "PHONE": 1}  # text and context
    assert calls["u3"] == {"ADDRESS": 1, "DATE_TIME": 1, "IP_ADDRESS": 1, "PHONE": 1}
    assert calls["u4"] == {}
    units = {uid: json.loads(r) for uid, r in query(out, "SELECT id, redactions FROM units")}
    assert units == calls
    m = json.loads((out / "manifest.json").read_text())
    assert m["privacy"]["redact"] == ["patterns"]
    from vsdcoder.privacy.phones import DEFAULT_PHONE_REGIONS
    assert m["privacy"]["phone_regions"] == list(DEFAULT_PHONE_REGIONS)
    assert m["privacy"]["redactions"] == {"ADDRESS": 1, "DATE_TIME": 1, "EMAIL": 2, "HANDLE": 1,
                                          "IP_ADDRESS": 1, "PHONE": 2, "REDDIT_USER": 1}
    assert m["privacy"]["units_redacted"] == 3
    assert m["privacy"]["local_only"] is False and m["privacy"]["redacted_output"] is False
    assert summary.privacy["redactions"] == m["privacy"]["redactions"]


def test_resume_keeps_the_numbering_and_refuses_other_privacy_settings(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out, redact="patterns", limit=1)  # u1: <EMAIL_1>, <PHONE_1>
        assert len(srv.requests) == 1
        with pytest.raises(UsageError, match=r"the redaction changed \(--redact patterns -> none"):
            run(data, srv, out)
        with pytest.raises(UsageError, match=r"--redact patterns -> patterns,presidio"):
            run(data, srv, out, redact="patterns,presidio")
        with pytest.raises(UsageError, match="--redacted-output changed"):
            run(data, srv, out, redact="patterns", redacted_output=True)
        assert len(srv.requests) == 1
        summary = run(data, srv, out, redact="patterns")  # resume
    assert summary.counts == {"coded": 4}
    (r2,) = requests_for(srv, "Exams are")
    (r3,) = requests_for(srv, "Rent is due")
    assert "<EMAIL_1>" in unit_text(r2)  # the email seen in the first session
    assert "<PHONE_2>" in unit_text(r3)  # a new phone continues the numbering
    assert len(json.loads((out / "manifest.json").read_text())["sessions"]) == 2


def test_redacted_output_leaves_no_identifier_in_any_file(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    during: list[tuple[str, str]] = []
    seen_wal: list[bool] = []

    def script(req, srv):
        # mid-run, while run.db has a live WAL: neither holds an identifier
        files = files_under(out)
        seen_wal.append(any(p.name == "run.db-wal" for p in files))
        during.extend(leaks(files, PLANTED))
        return responder(req, srv)

    with FakeOpenAI(script) as srv:
        summary = run(data, srv, out, redact="patterns", redacted_output=True, api_key=KEY,
                      concurrency=1)
    assert summary.counts == {"coded": 4}
    assert during == [] and any(seen_wal)
    files = files_under(out)
    assert any(p.name == "run.db" for p in files)
    assert leaks(files, [*PLANTED, KEY]) == []
    assert not (out / "pseudonyms.json").exists()  # no key is kept
    assert query(out, "SELECT COUNT(*) FROM pseudonyms") == [(0,)]
    counters = dict(query(out, "SELECT type, n FROM pseudonym_counters"))
    assert counters["EMAIL"] == 1 and counters["PHONE"] == 2
    lines = read_jsonl(out / "codes.jsonl")
    texts = dict(query(out, "SELECT id, text FROM units"))
    ev = lines["u1"]["evidence"]
    assert ev["quote"] == "me at <EMAIL_1> every"
    assert texts["u1"][ev["start"]:ev["end"]] == ev["quote"]  # offsets into the redacted text
    assert query(out, "SELECT context FROM units WHERE id='u1'") == [
        ("thread: posted by <HANDLE_1>",)]
    m = json.loads((out / "manifest.json").read_text())
    assert m["privacy"]["redacted_output"] is True and m["privacy"]["key_file"] is None
    # a resumed run goes on numbering (no placeholder is reused for another entity)
    more = tmp_path / "more.csv"
    with open(more, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "thread"])
        for uid in TEXTS:
            w.writerow([uid, TEXTS[uid], CONTEXT[uid]])
        w.writerow(["u5", "please ring 07700 900789 tonight, my job is hell", ""])
    with FakeOpenAI(responder) as srv:
        run(more, srv, out, redact="patterns", redacted_output=True)
    (r5,) = requests_for(srv, "please ring")
    assert "<PHONE_3>" in unit_text(r5)
    assert leaks(files_under(out), [*PLANTED, "07700 900789"]) == []


def test_redacted_output_needs_redactors(tmp_path):
    data = write_data(tmp_path / "d.csv")
    with FakeOpenAI(responder) as srv:
        with pytest.raises(UsageError, match="needs redactors"):
            run(data, srv, tmp_path / "run", redacted_output=True)
        assert srv.requests == []


def test_unknown_redactor_is_refused_before_anything(tmp_path):
    data = write_data(tmp_path / "d.csv")
    with FakeOpenAI(responder) as srv:
        with pytest.raises(UsageError, match="unknown redactor 'nope'"):
            run(data, srv, tmp_path / "run", redact="patterns,nope")
        assert srv.requests == []
    assert not (tmp_path / "run").exists()


def test_a_redactor_failure_stops_the_run_without_sending(tmp_path, monkeypatch):
    from vsdcoder.privacy.engine import RunPseudonyms

    data = write_data(tmp_path / "d.csv")
    real = RunPseudonyms.redact_unit

    def flaky(self, text, context):
        if "Rent" in text:
            raise RuntimeError("model crashed")
        return real(self, text, context)

    monkeypatch.setattr(RunPseudonyms, "redact_unit", flaky)
    with FakeOpenAI(responder) as srv:
        with pytest.raises(UsageError, match=r"redaction failed.*unit u3.*model crashed"):
            run(data, srv, tmp_path / "run", redact="patterns", concurrency=1)
        assert not requests_for(srv, "Rent")
        assert "3 March 2024" not in sent(srv)


def test_presidio_names_are_pseudonymised(tmp_path):
    import presidio_analyzer  # noqa: F401  (the ner extra, part of the test extra)
    texts = [("n1", "My boss Jake Miller emails me at jake.miller@example.com every night."),
             ("n2", "I told Jake Miller that the exams are too much for me.")]
    data = tmp_path / "d.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "text"), *texts])
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out, redact="patterns,presidio", context_cols=())
    body = sent(srv)
    assert "Jake" not in body and "Miller" not in body and "jake.miller" not in body
    (r1,) = requests_for(srv, "My boss")
    (r2,) = requests_for(srv, "I told")
    assert "<PERSON_1>" in unit_text(r1) and "<PERSON_1>" in unit_text(r2)
    lines = read_jsonl(out / "codes.jsonl")
    ev = lines["n2"]["evidence"]
    assert ev["quote"] == "I told Jake Miller that"
    assert texts[1][1][ev["start"]:ev["end"]] == ev["quote"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["privacy"]["redactions"]["PERSON"] == 2


def test_cache_key_follows_what_is_sent(tmp_path):
    """The key hashes the sent messages: redacted requests never reuse unredacted answers."""
    data = write_data(tmp_path / "d.csv")
    with FakeOpenAI(responder) as srv:
        run(data, srv, tmp_path / "plain")
        assert len(srv.requests) == 4
        run(data, srv, tmp_path / "red", redact="patterns")
        # u1-u3 had identifiers: new requests; u4 had none: the identical request is a hit
        assert len(srv.requests) == 7
        assert not requests_for(srv, "tired")[1:]
        run(data, srv, tmp_path / "red2", redact="patterns")
        assert len(srv.requests) == 7  # same redacted requests: all from the cache
    hits = query(tmp_path / "red2", "SELECT COUNT(*) FROM calls WHERE cache_hit=1")
    assert hits == [(4,)]
    lines = read_jsonl(tmp_path / "red2" / "codes.jsonl")  # cached answers map back too
    assert lines["u1"]["evidence"]["quote"] == "me at jake.miller@example.com every"


def test_dry_run_shows_the_redacted_prompt_and_writes_nothing(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv")
    with FakeOpenAI(responder) as srv:
        rc = main(["code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
                   "--api-base", srv.url, "--out", str(tmp_path / "run"), "--dry-run",
                   "--redact", "patterns", "--context-cols", "thread"])
        assert srv.requests == []
    outp, err = capsys.readouterr()
    assert rc == 0, err
    assert "<EMAIL_1>" in outp and "jake.miller" not in outp
    assert "would be redacted (patterns): " in outp and "in 3 unit(s)" in outp
    assert not (tmp_path / "run").exists()


def test_to_original_maps_segment_records():
    from vsdcoder.privacy import Pseudonymizer, get_redactor
    from vsdcoder.privacy.engine import to_original

    text = "Mail jo@x.org now. Then call 07700 900123 later"
    red = Pseudonymizer(get_redactor("patterns")).redact(text)
    assert red.text == "Mail <EMAIL_1> now. Then call <PHONE_1> later"
    a = red.text.index("<EMAIL_1> now")
    b = red.text.index("call <PHONE_1>")
    result = {"records": [
        {"quote": "<EMAIL_1> now", "start": a, "end": a + 13, "quote_verified": True},
        {"quote": "call <PHONE_1>", "start": b, "end": b + 14, "quote_verified": True},
        {"quote": "ring <PHONE_1>", "start": None, "end": None, "quote_verified": False},
    ]}
    recs = to_original(result, red)["records"]
    assert [(r["quote"], text[r["start"]:r["end"]]) for r in recs[:2]] == [
        ("jo@x.org now", "jo@x.org now"), ("call 07700 900123", "call 07700 900123")]
    assert recs[2] == {"quote": "ring 07700 900123", "start": None, "end": None,
                       "quote_verified": False}


# -- local only ------------------------------------------------------------------------------


def test_local_only_refuses_a_cloud_model_before_anything(tmp_path, monkeypatch):
    import litellm

    called: list[Any] = []

    async def no_network(*a, **k):  # pragma: no cover - must not be reached
        called.append(k)
        raise AssertionError("a request was attempted")

    monkeypatch.setattr(litellm, "acompletion", no_network)
    data = write_data(tmp_path / "d.csv")
    with pytest.raises(UsageError) as exc:
        vsdcoder.code(data, "sad-stressors", model="openai/gpt-4.1-mini", out=tmp_path / "run",
                      local_only=True, api_key=KEY)
    msg = str(exc.value)
    assert "refusing model 'openai/gpt-4.1-mini'" in msg and "is a cloud API" in msg
    assert "Nothing was sent" in msg
    assert "--model local/smollm2" in msg and "--api-base http://127.0.0.1" in msg
    assert "drop --local-only" in msg
    assert called == [] and not (tmp_path / "run").exists()
    # before even reading the data: a missing file is not what is reported
    with pytest.raises(UsageError, match="refusing model"):
        vsdcoder.code(tmp_path / "missing.csv", "sad-stressors", model="anthropic/claude-x",
                      local_only=True)


def test_local_only_refuses_a_remote_api_base_and_allows_loopback(tmp_path):
    data = write_data(tmp_path / "d.csv", ["u4"])
    with FakeOpenAI(responder) as srv:
        with pytest.raises(UsageError, match=r"http://10\.0\.0\.5/v1 is not a loopback address"):
            run(data, srv, tmp_path / "remote", api_base="http://10.0.0.5/v1", local_only=True)
        assert srv.requests == []
        summary = run(data, srv, tmp_path / "run", local_only=True)  # 127.0.0.1
        assert summary.counts == {"coded": 1} and len(srv.requests) == 1
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["privacy"]["local_only"] is True
    # localhost and ::1 count as this machine (dry run: nothing is sent)
    dry = vsdcoder.code(data, "sad-stressors", model=MODEL, api_base="http://localhost:9/v1",
                        local_only=True, dry_run=True, context_cols=["thread"])
    assert dry.status == "dry-run"
    from vsdcoder.privacy.engine import check_local_only

    check_local_only("openai/x", "http://[::1]:8000/v1")
    check_local_only("local/smollm2", None)
    with pytest.raises(UsageError, match="not a loopback"):
        check_local_only("openai/x", "https://127.0.0.1.example.com/v1")


def test_local_only_on_the_command_line(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv")
    rc = main(["code", str(data), "--codebook", "sad-stressors", "--model",
               "openai/gpt-4.1-mini", "--local-only", "--out", str(tmp_path / "run")])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "refusing model 'openai/gpt-4.1-mini'" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


# -- the project file ------------------------------------------------------------------------


def test_project_file_sets_privacy_and_flags_override(tmp_path, capsys, monkeypatch):
    from vsdcoder.cli.main import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    Path("vsdcoder.toml").write_text('[privacy]\nredact = "patterns"\nlocal_only = true\n')
    data = write_data(tmp_path / "d.csv", ["u1"])
    with pytest.raises(UsageError, match=r"local-only \(set in .*vsdcoder.toml\)"):
        vsdcoder.code(data, "sad-stressors", model="openai/gpt-4.1-mini")
    with FakeOpenAI(responder) as srv:
        run(data, srv, tmp_path / "run")  # loopback: allowed, and redacted by the project
        assert "<EMAIL_1>" in sent(srv) and "jake.miller" not in sent(srv)
        m = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert m["privacy"]["redact"] == ["patterns"]
        assert m["privacy"]["project_file"].endswith("vsdcoder.toml")
        # command-line flags win: --redact none sends the text as it is
        rc = main(["code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
                   "--api-base", srv.url, "--out", str(tmp_path / "plain"), "--redact", "none",
                   "--no-local-only", "--json"])
        assert rc == 0, capsys.readouterr().err
        assert "jake.miller@example.com" in unit_text(srv.requests[-1])
    summary = json.loads(capsys.readouterr().out)
    assert summary["privacy"]["redact"] == [] and summary["privacy"]["local_only"] is False


def test_project_file_yaml_and_errors(tmp_path):
    from vsdcoder.privacy.engine import resolve_settings

    Path("vsdcoder.yaml").write_text("privacy:\n  redact: [patterns, presidio]\n"
                                     "  redacted_output: true\n")
    s = resolve_settings()
    assert s.redact == ("patterns", "presidio") and s.redacted_output and not s.local_only
    assert resolve_settings(redact="none", redacted_output=False).redact == ()
    Path("vsdcoder.yaml").write_text("privacy:\n  redcat: patterns\n")
    with pytest.raises(UsageError, match=r"unknown privacy setting.*redcat.*allowed: redact"):
        resolve_settings()
    Path("vsdcoder.yaml").write_text("privacy:\n  local_only: yes please\n")
    with pytest.raises(UsageError, match="local_only must be true or false"):
        resolve_settings()
    Path("vsdcoder.toml").write_text("[privacy]\n")
    with pytest.raises(UsageError, match="keep one project file"):
        resolve_settings()
    os.remove("vsdcoder.yaml")
    Path("vsdcoder.toml").write_text("[privacy\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        resolve_settings()


# -- purge and --no-store-text ---------------------------------------------------------------


def _db_files(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.iterdir() if p.name.startswith("run.db")]


def test_runs_purge_removes_texts_quotes_and_key(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out, redact="patterns")
    (out / "codes.csv.tmp").write_text("left over")
    assert leaks(_db_files(out), [TEXTS["u4"], "jake.miller@example.com"])  # there before
    (n_keys,), = query(out, "SELECT COUNT(*) FROM pseudonyms")
    assert n_keys >= 5

    # without --yes and without a terminal: refused, nothing touched
    rc = main(["runs", "purge", str(out)])
    _, err = capsys.readouterr()
    assert rc == 2 and "--yes" in err
    assert query(out, "SELECT COUNT(*) FROM pseudonyms") == [(n_keys,)]
    assert main(["runs", "purge", str(tmp_path / "nope"), "--yes"]) == 2
    capsys.readouterr()

    rc = main(["runs", "purge", str(out), "--yes"])
    outp, err = capsys.readouterr()
    assert rc == 0, err
    assert "pseudonym key deleted" in outp
    assert query(out, "SELECT COUNT(*) FROM pseudonyms") == [(0,)]
    assert not (out / "codes.csv.tmp").exists()
    needles = [*TEXTS.values(), "jake.miller@example.com", "quietfox_22", "me at jake",
               "just feel"]
    assert leaks(files_under(out), needles) == []
    assert query(out, "SELECT COUNT(*) FROM units WHERE text IS NOT NULL OR context IS NOT "
                      "NULL") == [(0,)]
    assert query(out, "SELECT COUNT(*) FROM calls WHERE request IS NOT NULL OR response IS NOT "
                      "NULL OR parsed IS NOT NULL") == [(0,)]
    lines = read_jsonl(out / "codes.jsonl")
    ev = lines["u1"]["evidence"]
    assert ev["quote"] is None and ev["start"] == TEXTS["u1"].index("me at jake")
    assert ev["quote_verified"] is True and lines["u1"]["codes"] == {"stressor": "work"}
    with open(out / "codes.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["quote"] for r in rows} == {""} and rows[0]["stressor"] == "work"
    assert rows[0]["quote_start"] == str(ev["start"])
    m = json.loads((out / "manifest.json").read_text())
    (p,) = m["purges"]
    assert p["key_deleted"] is True and p["units"] == 4 and "quotes" in p["removed"]
    # runs show still works on a purged run, and says what happened
    assert main(["runs", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "privacy  redact patterns: 3 unit(s) redacted (ADDRESS 1" in shown
    assert "purged   " in shown and "quotes" in shown


def test_no_store_text_keeps_raw_texts_out_of_run_db(tmp_path):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        s = run(data, srv, out, store_text=False)
        assert s.counts == {"coded": 4}
        assert leaks(_db_files(out), [*TEXTS.values(), "posted by @quietfox_22"]) == []
    assert leaks(_db_files(out), [*TEXTS.values(), "posted by @quietfox_22"]) == []
    assert query(out, "SELECT COUNT(*) FROM units WHERE text IS NOT NULL") == [(0,)]


def test_cli_redact_redacted_output_local_only(tmp_path, capsys, monkeypatch):
    from vsdcoder.cli.main import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        rc = main(["code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
                   "--api-base", srv.url, "--out", str(out), "--context-cols", "thread",
                   "--redact", "patterns", "--redacted-output", "--local-only"])
        outp, err = capsys.readouterr()
        assert rc == 0, err
        assert not [p for p in PLANTED if p in sent(srv)]
    assert "local-only: no text left this machine" in outp
    assert "redacted before sending (patterns): " in outp and "in 3 unit(s)" in outp
    assert "outputs hold redacted text only" in outp
    assert leaks(files_under(out), [*PLANTED, KEY]) == []
    m = json.loads((out / "manifest.json").read_text())
    assert m["privacy"]["local_only"] and m["privacy"]["redacted_output"]
