"""``vsdcoder runs purge`` leaves nothing behind: not in the run directory, not in the cache.

Identifiers are planted in the texts *and* in the model's answers (quotes, a quote that is
not in the text, a re-ask), coded synchronously and through the batch API, with and without
``--redact``; after the purge no byte of any file of the run directories or the cache
directories (``-wal``, ``-shm`` and ``-journal`` files included) holds any of them.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.store.rundb import MIGRATIONS, RunDB, UnitResult
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, attempt_number, completion, unit_text

MODEL = "openai/fake"
NAME, EMAIL, PHONE, HANDLE = "Jake Miller", "jake.miller@example.com", "07700 900123", \
    "@quietfox_22"
TEXTS = {
    "p1": f"{NAME} keeps emailing {EMAIL} about work, text me on {PHONE} or DM {HANDLE}",
    "p2": f"My boss {NAME} wants the report tonight, ring {PHONE} if you can",
    "p3": f"Exams stress me out and {HANDLE} knows it",
    "p4": "Nothing identifying here, just tired of the deadlines",
}
NEEDLES = [NAME, EMAIL, PHONE, "quietfox_22", "Miller", *TEXTS.values()]

pytestmark = pytest.mark.usefixtures("isolated_engine")


def write_data(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows(TEXTS.items())
    return path


def responder(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
    """Quotes that carry the identifiers (or their placeholders), a bad quote, a re-ask."""
    text = unit_text(req)
    words = text.split()
    if text.startswith("My boss") and attempt_number(req) == 1:
        # not in the text: re-asked; the error and the answer are stored
        quote = f"{NAME} at {PHONE} and {EMAIL}"
    elif text.startswith("Exams"):
        quote = " ".join(words[-4:-2])  # "<HANDLE_1> knows" or "@quietfox_22 knows"
    else:
        quote = " ".join(words[:5])
    return Reply(completion(req, {"quote": quote, "stressor": "work"}))


def run(data: Path, srv: FakeOpenAI, out: Path, **kw: Any):
    kw.setdefault("http_retries", 1)
    kw.setdefault("backoff_base", 0.02)
    kw.setdefault("api_key", "sk-test-purge")
    kw.setdefault("progress", False)
    kw.setdefault("batch_poll", 0.02)
    return vsdcoder.code(data, "sad-stressors", model=MODEL, api_base=srv.url, out=out, **kw)


def files_under(*dirs: Path) -> list[Path]:
    return [p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()]


def leaks(dirs: list[Path], needles: list[str] = NEEDLES) -> list[tuple[str, str]]:
    found = []
    for p in files_under(*dirs):
        raw = p.read_bytes()
        for n in needles:
            if n.encode() in raw:
                found.append((str(p), n))
    return found


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def cache_count(cache_dir: Path) -> int:
    con = sqlite3.connect(cache_dir / "responses.db")
    try:
        return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    finally:
        con.close()


def test_purge_leaves_no_identifier_in_any_byte_of_runs_or_caches(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv")
    default_cache = tmp_path / "cache"  # $VSDCODER_CACHE_DIR (the isolated_engine fixture)
    other_cache = tmp_path / "cache-sync"
    runs = {"batch": tmp_path / "batch", "sync": tmp_path / "sync",
            "redact": tmp_path / "redact", "redact-batch": tmp_path / "redact-batch"}
    with FakeOpenAI(responder) as srv:
        b = run(data, srv, runs["batch"], batch=True)
        s = run(data, srv, runs["sync"], cache_dir=other_cache)
        r = run(data, srv, runs["redact"], redact="patterns")
        rb = run(data, srv, runs["redact-batch"], redact="patterns", batch=True)
        assert srv.batch_api.uploads  # the batch run did go through the batch endpoints
    for summary in (b, s, r, rb):
        assert summary.counts == {"coded": 4}, summary.counts
    caches = [default_cache, other_cache]
    everything = [*runs.values(), *caches]
    # there before: in texts, answers, errors, batch answers and both caches
    assert leaks([runs["batch"]], [EMAIL, PHONE])
    assert query(runs["batch"], "SELECT COUNT(*) FROM batch_requests WHERE response LIKE ?",
                 f"%{NAME}%")[0][0] > 0
    assert query(runs["sync"], "SELECT COUNT(*) FROM calls WHERE errors LIKE ?",
                 f"%{PHONE}%")[0][0] > 0
    assert leaks([other_cache], [EMAIL, PHONE]) and leaks([default_cache], [NAME])
    assert cache_count(default_cache) and cache_count(other_cache)

    for name, out in runs.items():
        args = ["runs", "purge", str(out), "--yes"]
        if name == "sync":
            args += ["--cache-dir", str(other_cache)]
        assert main(args) == 0, capsys.readouterr().err
        said = capsys.readouterr().out
        assert f"purged {out}" in said and "of this run deleted" in said
    assert leaks(everything) == []
    assert cache_count(default_cache) == 0 and cache_count(other_cache) == 0
    for out in runs.values():
        assert query(out, "SELECT COUNT(*) FROM pseudonyms") == [(0,)]
        assert query(out, "SELECT COUNT(*) FROM batch_requests") == [(0,)]
        assert query(out, "PRAGMA integrity_check") == [("ok",)]
        # what a report needs stays
        assert query(out, "SELECT COUNT(*) FROM units WHERE status='coded'") == [(4,)]
        m = json.loads((out / "manifest.json").read_text())
        assert m["purges"][-1]["units"] == 4
    m = json.loads((runs["batch"] / "manifest.json").read_text())
    p = m["purges"][-1]
    assert p["batch_requests_deleted"] > 0 and p["cache_entries_deleted"] > 0
    assert "batch requests and answers" in p["removed"]
    m = json.loads((runs["redact"] / "manifest.json").read_text())
    assert m["purges"][-1]["key_deleted"] is True
    # the numbering survives the key: a resumed run never reuses a placeholder
    counters = dict(query(runs["redact"], "SELECT type, n FROM pseudonym_counters"))
    assert counters["EMAIL"] == 1 and counters["HANDLE"] == 1


def test_keep_cache_then_cache_purge_run(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out)
    cache = tmp_path / "cache"
    assert main(["runs", "purge", str(out), "--yes", "--keep-cache"]) == 0
    assert "--keep-cache" in capsys.readouterr().out
    assert leaks([out]) == [] and leaks([cache], [EMAIL])
    assert cache_count(cache) == 5  # 4 units, one re-asked
    # the purged run still knows its cache keys
    assert main(["cache", "purge", "--run", str(out)]) == 0
    assert "5 entries of" in capsys.readouterr().out
    assert leaks([cache]) == [] and cache_count(cache) == 0


def test_cache_keys_of_calls_stored_without_them_are_computed_again(tmp_path):
    from vsdcoder.store.purge import run_cache_keys

    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out)
    con = sqlite3.connect(out / "run.db")
    try:
        stored = run_cache_keys(con)
        assert len(stored) == 5
        con.execute("UPDATE calls SET cache_key=NULL")  # as stored by an earlier version
        con.commit()
        assert run_cache_keys(con) == stored
        cache = sqlite3.connect(tmp_path / "cache" / "responses.db")
        try:
            assert {r[0] for r in cache.execute("SELECT key FROM responses")} == stored
        finally:
            cache.close()
    finally:
        con.close()


def test_an_old_run_db_gains_the_new_tables_and_columns(tmp_path, monkeypatch):
    import vsdcoder.store.rundb as rundb

    monkeypatch.setattr(rundb, "MIGRATIONS", MIGRATIONS[:4])  # as an earlier version made it
    db = RunDB(tmp_path / "run.db")
    s = db.start_session([])
    req = {"model": "openai/fake", "messages": [{"role": "system", "content": "x" * 300},
                                                {"role": "user", "content": "hi"}]}
    db.db.execute("INSERT INTO calls(unit_id, attempt, session, request) VALUES (?, 1, ?, ?)",
                  ("u1", s, json.dumps(db._shrink(req))))
    db.close()
    monkeypatch.setattr(rundb, "MIGRATIONS", MIGRATIONS)
    db = RunDB(tmp_path / "run.db")
    try:
        (got,), = db.db.execute("SELECT request FROM calls_full").fetchall()
        assert json.loads(got) == req
        cols = [r[1] for r in db.db.execute("PRAGMA table_info(calls_full)")]
        assert cols[-1] == "cache_key" and cols[7] == "request"
        db.save(UnitResult(id="u2", row=2, status="coded"), s)
        assert db.db.execute("SELECT COUNT(*) FROM pseudonyms").fetchone() == (0,)
    finally:
        db.close()


def test_purge_keeps_only_the_ids_of_requests_in_batches_still_running(tmp_path):
    db = RunDB(tmp_path / "run.db")
    try:
        x = db.db.execute
        x("INSERT INTO batches(n, batch_id, state) VALUES (1, 'b1', 'ingested')")
        x("INSERT INTO batches(n, batch_id, state) VALUES (2, 'b2', 'submitted')")
        secret = json.dumps({"choices": [{"message": {"content": EMAIL}}]})
        for n, closed in ((1, 0), (1, 1), (2, 0)):
            x("INSERT INTO batch_requests(batch_n, custom_id, unit_id, key, status, response,"
              " sent, error, closed) VALUES (?, 'c', 'u', 'k', 'answered', ?, ?, ?, ?)",
              (n, secret, json.dumps({"text": PHONE}), f"error about {NAME}", closed))
        x("INSERT INTO batch_requests(unit_id, key, status, response) VALUES"
          " ('u', 'k2', 'cached', ?)", (secret,))
        done = db.purge_texts()
        assert done["batch_requests"] == 3
        assert x("SELECT batch_n, custom_id, key, response, sent, error FROM batch_requests"
                 ).fetchall() == [(2, "c", "k", None, None, None)]
    finally:
        db.close()
    assert leaks([tmp_path]) == []


def test_runs_purge_bad_input(tmp_path, capsys):
    from vsdcoder.cli.main import main

    assert main(["runs", "purge", str(tmp_path / "nope"), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "no such run directory" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["runs", "purge", str(tmp_path / "empty"), "--yes"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(responder) as srv:
        run(data, srv, out)
    assert main(["runs", "purge", str(out), "--yes", "--cache-dir",
                 str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "--cache-dir" in err and "no such directory" in err and "Traceback" not in err
    assert leaks([out], [EMAIL])  # refused before anything was touched
    # no cache at all: the run is purged, and the output says there was nothing to remove
    import shutil

    shutil.rmtree(tmp_path / "cache")
    assert main(["runs", "purge", str(out), "--yes"]) == 0
    assert "no response cache found" in capsys.readouterr().out
    assert leaks([out]) == [] and not (tmp_path / "cache").exists()


def test_purge_removes_the_key_file_of_an_earlier_version(tmp_path):
    from vsdcoder.privacy.pseudonyms import PseudonymMap
    from vsdcoder.store.purge import purge_run

    out = tmp_path / "run"
    out.mkdir()
    RunDB(out / "run.db").close()
    m = PseudonymMap()
    m.placeholder("EMAIL", EMAIL)
    m.placeholder("PHONE", PHONE)
    m.save(out / "pseudonyms.json")
    done = purge_run(out)
    assert done["key_deleted"] is True and not (out / "pseudonyms.json").exists()
    assert query(out, "SELECT type, n FROM pseudonym_counters ORDER BY type") == [
        ("EMAIL", 1), ("PHONE", 1)]
    assert leaks([out]) == []
