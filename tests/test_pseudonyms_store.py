"""The pseudonym key in run.db: saved with each unit, resumed, migrated, exported.

Runs go through the real LiteLLM -> instructor path against the scripted server
(:class:`~vsdcoder.testing.fake_openai.FakeOpenAI`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.privacy.engine import COUNTERS_FILE, MAP_FILE, RunPseudonyms, read_key
from vsdcoder.privacy.pseudonyms import PseudonymMap
from vsdcoder.store.rundb import PseudonymRows, RunDB, UnitResult
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

MODEL = "openai/fake"
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*?_[1-9][0-9]*>")
_SCRIPT = shutil.which("vsdcoder", path=str(Path(sys.executable).parent))
VSDCODER = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "vsdcoder.cli.main"]

pytestmark = pytest.mark.usefixtures("isolated_engine")


def text_of(i: int) -> str:
    """Unit ``i``: a new e-mail and handle, and the e-mail of unit ``i - 1`` again."""
    return (f"msg {i}: my boss mails me at boss{i}@example.com, ping @fox_{i} or "
            f"boss{max(0, i - 1)}@example.com")


def write_data(path: Path, n: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows((f"u{i:03d}", text_of(i)) for i in range(n))
    return path


def answer(req: dict[str, Any], srv: FakeOpenAI, delay: float = 0.0) -> Reply:
    words = unit_text(req).split()
    return Reply(completion(req, {"quote": " ".join(words[1:3]), "stressor": "work"}),
                 delay=delay)


def run(data: Path, srv: FakeOpenAI, out: Path | None, **kw: Any):
    kw.setdefault("http_retries", 1)
    kw.setdefault("backoff_base", 0.02)
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("progress", False)
    kw.setdefault("redact", "patterns")
    return vsdcoder.code(data, "sad-stressors", model=MODEL, api_base=srv.url, out=out, **kw)


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def sent_texts(run_dir: Path) -> dict[str, str]:
    """unit id -> the unit text of its stored request (what was sent, redacted)."""
    out = {}
    for uid, req in query(run_dir, "SELECT unit_id, request FROM calls_full"
                                   " WHERE request IS NOT NULL ORDER BY id"):
        out[uid] = unit_text(json.loads(req))
    return out


def check_key_matches_units(run_dir: Path) -> int:
    """Every stored unit's request restores, through the stored key, to its original text.

    And no entity is in the key that no stored request uses. Returns the entities checked.
    """
    key = dict(query(run_dir, "SELECT placeholder, surface FROM pseudonyms"))
    texts = dict(query(run_dir, "SELECT id, text FROM units"))
    used: set[str] = set()
    for uid, sent in sent_texts(run_dir).items():
        if uid not in texts:  # calls of a unit stopped by a budget: no unit row
            continue
        for ph in PLACEHOLDER.findall(sent):
            assert ph in key, (uid, ph)
            used.add(ph)
        restored = PLACEHOLDER.sub(lambda m: key[m.group(0)], sent)
        assert restored == texts[uid], uid
    assert set(key) == used
    return len(key)


# -- saved with the unit, resumed with the same numbering ----------------------------------


def test_key_in_run_db_numbered_in_file_order_and_redacted_off_the_loop(tmp_path, monkeypatch):
    threads: set[str] = set()
    real = RunPseudonyms.redact_unit

    def spy(self, text, context):
        threads.add(threading.current_thread().name)
        return real(self, text, context)

    monkeypatch.setattr(RunPseudonyms, "redact_unit", spy)
    data = write_data(tmp_path / "d.csv", 30)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        s = run(data, srv, out, concurrency=8)
    assert s.counts == {"coded": 30}
    assert threads and all(t.startswith("vsdcoder-redact") for t in threads)
    sent = sent_texts(out)
    # concurrency 8, yet the numbering follows the file: unit i's new e-mail is <EMAIL_i+1>
    for i in range(1, 30):
        assert f"<EMAIL_{i + 1}>" in sent[f"u{i:03d}"] and f"<EMAIL_{i}>" in sent[f"u{i:03d}"]
    assert check_key_matches_units(out) == 60
    assert not (out / MAP_FILE).exists() and not (out / COUNTERS_FILE).exists()
    for p in out.iterdir():
        if p.name.startswith("run.db"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def _spy_close(monkeypatch) -> list[dict[str, int]]:
    seen: list[dict[str, int]] = []
    real = RunPseudonyms.close

    def close(self):
        seen.append(dict(self.redacted))
        real(self)

    monkeypatch.setattr(RunPseudonyms, "close", close)
    return seen


def test_large_runs_find_spans_in_another_process_numbered_in_file_order(tmp_path,
                                                                          monkeypatch):
    import vsdcoder.privacy.engine as engine

    monkeypatch.setattr(engine, "PROCESS_MIN_UNITS", 10)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    seen = _spy_close(monkeypatch)
    data = write_data(tmp_path / "d.csv", 30)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        s = run(data, srv, out, concurrency=8, limit=12)
        assert seen == [{"process": 12, "thread": 0}]
        s = run(data, srv, out, concurrency=8)  # 18 left: processes again
    assert seen[1] == {"process": 18, "thread": 0}
    assert s.counts == {"coded": 30}
    sent = sent_texts(out)
    for i in range(1, 30):
        assert f"<EMAIL_{i + 1}>" in sent[f"u{i:03d}"] and f"<EMAIL_{i}>" in sent[f"u{i:03d}"]
    assert check_key_matches_units(out) == 60


def test_a_process_that_cannot_start_falls_back_to_the_thread(tmp_path, monkeypatch):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import vsdcoder.privacy.engine as engine

    def broken(self, workers=1):  # the process exits at once: a broken pool
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=os._exit, initargs=(3,))

    monkeypatch.setattr(engine, "PROCESS_MIN_UNITS", 10)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(RunPseudonyms, "use_processes", broken)
    seen = _spy_close(monkeypatch)
    data = write_data(tmp_path / "d.csv", 20)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        s = run(data, srv, out, concurrency=8)
    assert s.counts == {"coded": 20}
    assert seen == [{"process": 0, "thread": 20}]
    sent = sent_texts(out)
    for i in range(1, 20):
        assert f"<EMAIL_{i + 1}>" in sent[f"u{i:03d}"]
    assert check_key_matches_units(out) == 40


def test_resume_gives_the_same_placeholder_to_the_same_identifier(tmp_path):
    data = write_data(tmp_path / "d.csv", 12)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        run(data, srv, out, limit=5)
        first = dict(query(out, "SELECT surface, placeholder FROM pseudonyms"))
        run(data, srv, out)
    again = dict(query(out, "SELECT surface, placeholder FROM pseudonyms"))
    assert {k: again[k] for k in first} == first
    # u005 repeats u004's e-mail: the placeholder of the first session
    assert first["boss4@example.com"] in sent_texts(out)["u005"]
    assert check_key_matches_units(out) == 24


def test_sigkill_never_leaves_a_unit_without_its_key_nor_a_key_without_its_unit(tmp_path):
    n = 160
    data = write_data(tmp_path / "d.csv", n)
    out = tmp_path / "run"
    env = dict(os.environ, VSDCODER_CACHE_DIR=str(tmp_path / "cache"), VSDCODER_LOAD_PLUGINS="",
               LITELLM_LOCAL_MODEL_COST_MAP="True", OPENAI_API_KEY="sk-test")
    with FakeOpenAI(lambda r, s: answer(r, s, delay=0.02)) as srv:
        args = [*VSDCODER, "code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
                "--api-base", srv.url, "--out", str(out), "--redact", "patterns",
                "--concurrency", "8", "--http-retries", "1"]
        p = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        coded = 0
        while coded < n // 3 and time.monotonic() < deadline:
            assert p.poll() is None, p.communicate()[1]
            time.sleep(0.02)
            try:
                con = sqlite3.connect(f"file:{out / 'run.db'}?mode=ro", uri=True, timeout=2)
                try:
                    coded = con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.OperationalError:
                coded = 0
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        assert n // 3 <= len(query(out, "SELECT id FROM units")) < n
        check_key_matches_units(out)  # the killed session: units and key agree
        before = dict(query(out, "SELECT surface, placeholder FROM pseudonyms"))
        s = run(data, srv, out)
    assert s.counts == {"coded": n}
    after = dict(query(out, "SELECT surface, placeholder FROM pseudonyms"))
    assert {k: after[k] for k in before} == before
    assert check_key_matches_units(out) == 2 * n


def test_save_is_one_transaction_with_the_unit(tmp_path):
    db = RunDB(tmp_path / "run.db")
    try:
        s = db.start_session([])
        bad = PseudonymRows(entities=[("<EMAIL_1>", "EMAIL", "a@b.c", "a@b.c")],
                            counters={"PHONE": None})  # type: ignore[dict-item]  # NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            db.save(UnitResult(id="u1", row=1, status="coded"), s, pseudonyms=bad)
        assert db.db.execute("SELECT COUNT(*) FROM units").fetchone() == (0,)
        assert db.db.execute("SELECT COUNT(*) FROM pseudonyms").fetchone() == (0,)
        good = PseudonymRows(entities=[("<EMAIL_1>", "EMAIL", "a@b.c", "a@b.c")],
                             counters={"PHONE": 3})
        db.save(UnitResult(id="u1", row=1, status="coded"), s, pseudonyms=good)
        db.save(UnitResult(id="u2", row=2, status="coded"), s, pseudonyms=good)  # idempotent
        assert db.db.execute("SELECT COUNT(*) FROM pseudonyms").fetchone() == (1,)
        db.save(UnitResult(id="u3", row=3, status="coded"), s,
                pseudonyms=PseudonymRows(counters={"PHONE": 2}))
        assert db.db.execute("SELECT n FROM pseudonym_counters").fetchone() == (3,)
    finally:
        db.close()


def test_rows_for_gives_what_run_db_lacks_once():
    p = RunPseudonyms(("patterns",))
    a = p.redact_unit("mail a@x.org or b@x.org", "ping @fox_1")
    b = p.redact_unit("again a@x.org and c@x.org", None)
    rows = p.rows_for(a, b)  # a shared call: both units' entities
    assert [e[0] for e in rows.entities] == ["<EMAIL_1>", "<EMAIL_2>", "<HANDLE_1>",
                                             "<EMAIL_3>"]
    assert rows.entities[0] == ("<EMAIL_1>", "EMAIL", "a@x.org", "a@x.org")
    p.mark_saved(rows)
    assert not p.rows_for(a, b)
    # --redacted-output: the numbering only
    q = RunPseudonyms(("patterns",), keep_key=False)
    r = q.rows_for(q.redact_unit("a@x.org b@x.org 07700 900123", None))
    assert r.entities == [] and r.counters == {"EMAIL": 2, "PHONE": 1}
    q.mark_saved(r)
    assert not q.rows_for(q.redact_unit("a@x.org", None))


def test_redacted_output_keeps_counters_only_and_resumes_the_numbering(tmp_path):
    data = write_data(tmp_path / "d.csv", 6)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        run(data, srv, out, redacted_output=True, limit=3)
        assert query(out, "SELECT COUNT(*) FROM pseudonyms") == [(0,)]
        assert dict(query(out, "SELECT type, n FROM pseudonym_counters")) == {"EMAIL": 3,
                                                                              "HANDLE": 3}
        run(data, srv, out, redacted_output=True)
    sent = sent_texts(out)
    assert "<EMAIL_4>" in sent["u003"]  # never an old number for a new entity
    raw = b"".join(p.read_bytes() for p in out.iterdir() if p.is_file())
    assert b"boss1@example.com" not in raw and b"fox_2" not in raw


# -- a run directory of an earlier version -------------------------------------------------


def _make_legacy(out: Path) -> dict[str, str]:
    """Turn the key of ``out`` into an earlier version's: pseudonyms.json, none in run.db."""
    con = sqlite3.connect(out / "run.db")
    try:
        mapping = read_key(con)
        con.execute("DELETE FROM pseudonyms")
        con.commit()
    finally:
        con.close()
    mapping.save(out / MAP_FILE)
    return {e["surface"]: e["placeholder"] for e in mapping.to_dict()["entities"]}


def test_old_pseudonyms_json_is_read_by_a_dry_run_and_migrated_on_resume(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv", 8)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        run(data, srv, out, limit=4)
        legacy = _make_legacy(out)
        db_bytes = (out / "run.db").read_bytes()
        # a dry run reads the old key and writes nothing
        rc = main(["code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
                   "--api-base", srv.url, "--out", str(out), "--dry-run",
                   "--redact", "patterns"])
        outp, err = capsys.readouterr()
        assert rc == 0, err
        assert legacy["boss3@example.com"] in outp  # u004 repeats u003's e-mail
        assert (out / MAP_FILE).exists() and (out / "run.db").read_bytes() == db_bytes
        run(data, srv, out)
    assert not (out / MAP_FILE).exists()  # migrated into run.db
    stored = dict(query(out, "SELECT surface, placeholder FROM pseudonyms"))
    assert {k: stored[k] for k in legacy} == legacy
    assert legacy["boss3@example.com"] in sent_texts(out)["u004"]
    assert check_key_matches_units(out) == 16


def test_old_counters_file_is_migrated(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / COUNTERS_FILE).write_text(json.dumps({"format": "vsdcoder-pseudonym-counters",
                                                 "counters": {"EMAIL": 7}}))
    db = RunDB(out / "run.db")
    try:
        p = RunPseudonyms.open(("patterns",), db, out, keep_key=False)
        assert p.redact_unit("a@x.org", None).send_text == "<EMAIL_8>"
        assert db.db.execute("SELECT type, n FROM pseudonym_counters").fetchall() == [
            ("EMAIL", 7)]
    finally:
        db.close()
    assert not (out / COUNTERS_FILE).exists()
    (out / COUNTERS_FILE).write_text("{not json")
    db = RunDB(out / "run.db")
    try:
        with pytest.raises(vsdcoder.UsageError, match="unreadable"):
            RunPseudonyms.open(("patterns",), db, out, keep_key=False)
    finally:
        db.close()


# -- vsdcoder runs pseudonyms ----------------------------------------------------------------


def test_runs_pseudonyms_shows_counts_and_exports_the_key(tmp_path, capsys):
    from vsdcoder.cli.main import main

    data = write_data(tmp_path / "d.csv", 5)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        run(data, srv, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name.startswith("run.db")}

    assert main(["runs", "pseudonyms", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "10 pseudonym(s) (EMAIL 5, HANDLE 5)" in shown and "boss" not in shown
    assert main(["runs", "pseudonyms", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"entities": 10,
                                                   "by_type": {"EMAIL": 5, "HANDLE": 5}}
    key = tmp_path / "exported" / "key.json"
    assert main(["runs", "pseudonyms", str(out), "--export", str(key)]) == 0
    assert "exported 10 pseudonym(s)" in capsys.readouterr().out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    m = PseudonymMap.load(key)
    assert m.surface("<EMAIL_1>") == "boss0@example.com" and len(m) == 10
    # run.db was only read (a read-only reader of a WAL database may leave an empty WAL)
    assert (out / "run.db").read_bytes() == before["run.db"]
    assert not (out / "run.db-wal").exists() or not (out / "run.db-wal").stat().st_size


def test_runs_pseudonyms_bad_input(tmp_path, capsys):
    from vsdcoder.cli.main import main

    assert main(["runs", "pseudonyms", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such run directory" in err and "Traceback" not in err
    data = write_data(tmp_path / "d.csv", 3)
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        run(data, srv, out, redacted_output=True)
        run(data, srv, tmp_path / "plain", redact="none")
    assert main(["runs", "pseudonyms", str(out), "--export", str(tmp_path / "k.json")]) == 2
    err = capsys.readouterr().err
    assert "--redacted-output, which keeps no key" in err and "Traceback" not in err
    assert not (tmp_path / "k.json").exists()
    assert main(["runs", "pseudonyms", str(tmp_path / "plain")]) == 0
    assert "no pseudonym key" in capsys.readouterr().out
    assert main(["runs", "pseudonyms", str(tmp_path / "plain"), "--export",
                 str(tmp_path)]) == 2
    assert "nothing to export" in capsys.readouterr().err
