"""``vsdcoder code`` in a subprocess against a scripted server running in the test process.

Kill -9 and resume, Ctrl-C, two processes on one run directory, a planted API key, bad inputs.
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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, attempt_number, completion, unit_text

_SCRIPT = shutil.which("vsdcoder", path=str(Path(sys.executable).parent))
VSDCODER = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "vsdcoder.cli.main"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "200")


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VSDCODER_MODEL", None)
    env.update(
        VSDCODER_CACHE_DIR=str(tmp_path / "cache"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        VSDCODER_LOAD_PLUGINS="",
        COLUMNS="200",
        OPENAI_API_KEY="sk-test-cli",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start(tmp_path: Path, args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*VSDCODER, *args],
        cwd=tmp_path,
        env=env_for(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(tmp_path: Path, args: list[str], timeout: float = 120, **env: str):
    return subprocess.run(
        [*VSDCODER, *args],
        cwd=tmp_path,
        env=env_for(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def code_args(
    data: Path,
    server: FakeOpenAI,
    out: Path,
    *more: str,
    codebook: str = "sad-stressors",
    model: str = "openai/fake",
) -> list[str]:
    return [
        "code",
        str(data),
        "--codebook",
        codebook,
        "--model",
        model,
        "--api-base",
        server.url,
        "--out",
        str(out),
        "--http-retries",
        "1",
        *more,
    ]


def write_csv(path: Path, rows: list[tuple], header: tuple[str, ...] = ("id", "text")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def answer(req: dict[str, Any], delay: float = 0.0) -> Reply:
    quote = " ".join(unit_text(req).split()[1:3])
    return Reply(completion(req, {"quote": quote, "stressor": "work"}), delay=delay)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def query(run_dir: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(run_dir / "run.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def coded_ids(run_dir: Path) -> set[str]:
    """Ids coded so far, read while another process may be writing (0 before run.db exists)."""
    p = run_dir / "run.db"
    if not p.exists():
        return set()
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=2)
        try:
            return {r[0] for r in con.execute("SELECT id FROM units WHERE status='coded'")}
        finally:
            con.close()
    except sqlite3.OperationalError:
        return set()


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended early ({proc.returncode}):\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("timed out waiting")


# -- end to end --------------------------------------------------------------------------------


def test_cli_code_end_to_end_then_runs_list_and_show_and_no_key_stored(tmp_path, capsys):
    from vsdcoder.cli.main import main

    planted = f"sk-PLANTED-{uuid.uuid4().hex}"
    data = write_csv(
        tmp_path / "d.csv",
        [
            ("1", "my boss shouts at me", "sms", "34"),
            ("2", "my exams scare me", "", "19"),
            ("3", "   ", "web", "50"),
            ("4", "bad request here", "", "20"),
            ("5", "wrongcode my rent", "", "21"),
            ("6", "flaky my rent is due", "", "22"),
        ],
        header=("id", "text", "channel", "age"),
    )

    def responder(req, srv):
        t = unit_text(req)
        if t.startswith("bad"):
            return Reply({"error": {"message": "nope"}}, 400)
        if t.startswith("wrongcode") and attempt_number(req) == 1:
            return Reply(completion(req, {"quote": "my rent", "stressor": "nah"}))
        if t.startswith("flaky") and srv.hits[t] == 1:
            return Reply({"error": {"message": "hiccup"}}, 500)
        return answer(req)

    out = tmp_path / "runs" / "r1"
    with FakeOpenAI(responder) as srv:
        p = cli(
            tmp_path,
            code_args(data, srv, out, "--context-cols", "channel", "--meta-cols", "age"),
            OPENAI_API_KEY=planted,
        )
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stdout + p.stderr
        assert f"run finished: {out}" in p.stdout
        # the failed unit is counted once (in the table, coded and failed apart), then only
        # what to do about it
        assert "4 coded, 1 failed" in p.stdout and "unit(s) failed" not in p.stdout
        assert "--retry-failed" in p.stdout
        assert len(srv.requests) == 7  # 1 + 1 (400) + 2 (re-ask) + 2 (500, retry) + 1
        first = next(r for r in srv.requests if unit_text(r) == "my boss shouts at me")
        assert (
            'Context (for understanding only; do not code it):\n"""\nchannel: sms\n"""'
            in (first["messages"][1]["content"])
        )
        assert {r["_auth"] for r in srv.requests} == {f"Bearer {planted}"}  # the key was sent

        # resuming with another model or codebook is refused, before any request
        bad_model = cli(
            tmp_path,
            code_args(
                data,
                srv,
                out,
                "--context-cols",
                "channel",
                "--meta-cols",
                "age",
                model="openai/other",
            ),
        )
        bad_cb = cli(tmp_path, code_args(data, srv, out, codebook="tiktok-llm-mh"))
        assert len(srv.requests) == 7
    assert bad_model.returncode == 2
    assert (
        "cannot resume this run: the model changed (openai/fake -> openai/other)"
        in bad_model.stderr
    )
    assert bad_cb.returncode == 2 and "the codebook changed" in bad_cb.stderr
    assert "Traceback" not in bad_model.stderr + bad_cb.stderr

    # the key is nowhere: not in any file of the run directory (run.db, its WAL if any, the
    # exports, the manifest), not in the response cache, not on the terminal
    files = [f for d in (out, tmp_path / "cache") for f in d.rglob("*") if f.is_file()]
    assert {"run.db", "manifest.json", "codes.jsonl", "codes.csv", "responses.db"} <= {
        f.name for f in files
    }
    for f in files:
        raw = f.read_bytes()
        assert planted.encode() not in raw, f
        assert b"PLANTED" not in raw, f
    assert "PLANTED" not in p.stdout + p.stderr

    lines = read_jsonl(out / "codes.jsonl")
    assert [(ln["id"], ln["status"], ln.get("meta")) for ln in lines] == [
        ("1", "coded", {"age": "34"}),
        ("2", "coded", {"age": "19"}),
        ("3", "skipped", {"age": "50"}),
        ("4", "failed", {"age": "20"}),
        ("5", "coded", {"age": "21"}),
        ("6", "coded", {"age": "22"}),
    ]
    assert lines[0]["codes"] == {"stressor": "work"} and lines[0]["evidence"]["start"] == 3
    assert lines[4]["attempts"] == 2 and "nope" in lines[3]["error"]
    with open(out / "codes.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["age"], r["stressor"], r["quote"]) for r in rows][:4] == [
        ("1", "34", "work", "boss shouts"),
        ("2", "19", "work", "exams scare"),
        ("3", "50", "", ""),
        ("4", "20", "", ""),
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["counts"] == {"coded": 4, "failed": 1, "skipped": 1}

    capsys.readouterr()
    assert main(["runs", "list", "--dir", str(tmp_path / "runs"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run"], r["status"], r["codebook"], r["model"], r["counts"]) for r in listed] == [
        (
            str(out),
            "finished",
            f"sad-stressors {manifest['codebook']['version']}",
            "openai/fake",
            {"coded": 4, "failed": 1, "skipped": 1},
        )
    ]
    assert main(["runs", "list", "--dir", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert str(out) in table and "openai/fake" in table and "finished" in table
    assert main(["runs", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    for value in (
        manifest["codebook"]["hash"],
        manifest["prompt"]["hash"],
        manifest["data"]["hash"],
        "openai/fake",
    ):
        assert value in shown
    assert main(["runs", "show", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == manifest
    assert main(["runs", "show", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


# -- crashes and signals -----------------------------------------------------------------------


def test_sigkill_then_resume_codes_every_unit_exactly_once(tmp_path):
    n = 200
    ids = [f"u{i:03d}" for i in range(n)]
    texts = {i: f"unit {i} my boss shouts" for i in ids}
    data = write_csv(tmp_path / "d.csv", list(texts.items()))
    out = tmp_path / "run"
    with FakeOpenAI(lambda req, s: answer(req, delay=0.05)) as srv:
        args = code_args(data, srv, out, "--concurrency", "8")
        p = start(tmp_path, args)
        wait_for(lambda: len(coded_ids(out)) >= n // 2, p)
        p.kill()
        p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL
        before = coded_ids(out)
        assert n // 2 <= len(before) < n
        asked_before = len(srv.requests)

        p2 = cli(tmp_path, args)
        assert p2.returncode == 0, p2.stderr
        later = [unit_text(r) for r in srv.requests[asked_before:]]

    assert query(out, "PRAGMA integrity_check") == [("ok",)]
    rows = query(out, "SELECT id, status FROM units ORDER BY row")
    assert [r[0] for r in rows] == ids
    assert {r[1] for r in rows} == {"coded"}
    assert query(out, "SELECT COUNT(*), COUNT(DISTINCT id) FROM units") == [(n, n)]
    lines = read_jsonl(out / "codes.jsonl")
    assert len(lines) == n and [ln["id"] for ln in lines] == ids
    assert all(ln["status"] == "coded" for ln in lines)
    # the resumed session asked only for units that were not yet in run.db
    assert not set(later) & {texts[i] for i in before}
    resumed = {r[0] for r in query(out, "SELECT DISTINCT unit_id FROM calls WHERE session = 2")}
    assert resumed == set(ids) - before
    assert all(1 <= srv.hits[t] <= 2 for t in texts.values())
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {"coded": n}
    assert [s["status"] for s in m["sessions"]] == ["killed", "finished"]
    assert m["sessions"][0]["ended"] is None
    assert query(out, "SELECT status FROM sessions ORDER BY id") == [("killed",), ("finished",)]


def test_second_process_is_refused_and_sigint_stops_cleanly(tmp_path):
    n = 60
    data = write_csv(
        tmp_path / "d.csv", [(f"u{i:02d}", f"unit {i} my boss shouts") for i in range(n)]
    )
    out = tmp_path / "run"
    with FakeOpenAI(lambda req, s: answer(req, delay=0.2)) as srv:
        args = code_args(data, srv, out, "--concurrency", "2")
        a = start(tmp_path, args)
        wait_for(lambda: len(coded_ids(out)) >= 4, a)

        b = cli(tmp_path, args)
        assert b.returncode == 2
        assert "is in use by another vsdcoder process" in b.stderr
        assert "Traceback" not in b.stdout + b.stderr
        assert a.poll() is None

        a.send_signal(signal.SIGINT)
        a_out, a_err = a.communicate(timeout=30)
    assert a.returncode == 130, a_err
    assert "Traceback" not in a_out + a_err
    assert "Interrupted" in a_out
    done = coded_ids(out)
    assert 4 <= len(done) < n
    lines = read_jsonl(out / "codes.jsonl")
    assert sorted(ln["id"] for ln in lines) == sorted(done)
    assert query(out, "SELECT status FROM sessions") == [("interrupted",)]
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["counts"] == {"coded": len(done)}


# -- bad inputs ----------------------------------------------------------------------------------


def test_bad_inputs_exit_2_with_a_message_and_no_traceback(tmp_path):
    (tmp_path / "cols.csv").write_text("id,body\n1,hello\n", encoding="utf-8")
    (tmp_path / "dup.csv").write_text("id,text\n1,a b\n2,c d\n1,e f\n", encoding="utf-8")
    (tmp_path / "latin.csv").write_bytes("id,text\n1,caf\u00e9 au lait\n".encode("latin-1"))
    (tmp_path / "bad.jsonl").write_text(
        '{"id": 1, "text": "a"}\n{"id": 2, "text": \n', encoding="utf-8"
    )
    (tmp_path / "ragged.csv").write_text("id,text\n1,a\n2,b,extra\n", encoding="utf-8")
    cases = {
        "cols.csv": ["column 'text' (set --text-col) not found; the file has: 'id', 'body'"],
        "dup.csv": ["row 4: duplicate id '1' (first at row 2)"],
        "latin.csv": ["not valid utf-8", "--encoding"],
        "bad.jsonl": ["line 2: not valid JSON"],
        "ragged.csv": ["line 3: more fields than the header's 2 columns"],
        "missing.csv": ["no such data file"],
    }
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        procs = {
            name: start(tmp_path, code_args(tmp_path / name, srv, tmp_path / f"out-{name}"))
            for name in cases
        }
        results = {}
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=120)
            results[name] = (p.returncode, stdout, stderr)
        assert srv.requests == []
    for name, (rc, stdout, stderr) in results.items():
        assert rc == 2, (name, stderr)
        assert "Traceback" not in stdout + stderr, name
        assert stderr.startswith("error: "), (name, stderr)
        for part in cases[name]:
            assert part in stderr, (name, stderr)
    # a failed start leaves no half-written run behind
    assert not (tmp_path / "out-dup.csv" / "manifest.json").exists()
