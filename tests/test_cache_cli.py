"""``vsdcoder cache info | clear | purge --run``, and deleting from the cache without a trace."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import vsdcoder
from vsdcoder.coding.cache import ResponseCache
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

MODEL = "openai/fake"
SECRET = "ring me on 07700 900123, @quietfox_22"
NEEDLE = b"quietfox_22"  # in the answer's quote

pytestmark = pytest.mark.usefixtures("isolated_engine")


def answer(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
    words = unit_text(req).split()
    return Reply(completion(req, {"quote": " ".join(words[-4:]), "stressor": "work"}))


def code(tmp_path: Path, name: str, texts: dict[str, str], srv: FakeOpenAI, **kw: Any):
    data = tmp_path / f"{name}.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows(texts.items())
    return vsdcoder.code(data, "sad-stressors", model=MODEL, api_base=srv.url,
                         out=tmp_path / name, api_key="sk-test", progress=False, **kw)


def raw(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.is_file())


def entries(cache: Path) -> int:
    con = sqlite3.connect(cache / "responses.db")
    try:
        return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    finally:
        con.close()


def test_info_clear_and_purge_run(tmp_path, capsys):
    from vsdcoder.cli.main import main

    cache = tmp_path / "cache"
    with FakeOpenAI(answer) as srv:
        code(tmp_path, "a", {"a1": f"My boss says {SECRET}", "a2": "Exams are hard"}, srv)
        code(tmp_path, "b", {"b1": "Rent is due again", "b2": "My sister is cross"}, srv)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"location  {cache / 'responses.db'}" in out and "entries   4" in out
    assert "openai/fake 4" in out
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 4 and info["bytes"] > 0 and info["exists"] is True
    assert info["directory"] == str(cache)

    # purge --run: only that run's answers go
    assert NEEDLE in raw(cache)
    assert main(["cache", "purge", "--run", str(tmp_path / "a")]) == 0
    assert "2 entries of" in capsys.readouterr().out
    assert entries(cache) == 2 and NEEDLE not in raw(cache)
    assert b"due again" in raw(cache)
    assert main(["cache", "purge", "--run", str(tmp_path / "a")]) == 0  # again: nothing left
    assert "0 entries of" in capsys.readouterr().out

    # clear: refused without --yes and a terminal; then everything goes
    assert main(["cache", "clear"]) == 2
    err = capsys.readouterr().err
    assert "--yes" in err and "cannot be undone" in err and "Traceback" not in err
    assert entries(cache) == 2
    assert main(["cache", "clear", "--yes"]) == 0
    assert "2 entries deleted" in capsys.readouterr().out
    assert entries(cache) == 0 and b"due again" not in raw(cache)
    assert main(["cache", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 0


def test_no_cache_yet_and_bad_input(tmp_path, capsys):
    from vsdcoder.cli.main import main

    cache = tmp_path / "cache"  # $VSDCODER_CACHE_DIR, not created yet
    assert main(["cache", "info"]) == 0
    assert "(no cache yet)" in capsys.readouterr().out
    assert main(["cache", "clear", "--yes"]) == 0
    assert "nothing to clear" in capsys.readouterr().out
    assert not cache.exists()  # looking does not create it
    for args in (["cache", "info", "--cache-dir", str(tmp_path / "missing")],
                 ["cache", "clear", "--yes", "--cache-dir", str(tmp_path / "missing")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "no such directory" in err and "Traceback" not in err
    assert main(["cache", "purge", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such run directory" in err and "Traceback" not in err
    (tmp_path / "notarun").mkdir()
    assert main(["cache", "purge", "--run", str(tmp_path / "notarun")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["cache", "purge"]) == 2  # --run is required
    assert "--run" in capsys.readouterr().err
    assert not cache.exists()
    # a run, but no cache: nothing to do
    with FakeOpenAI(answer) as srv:
        code(tmp_path, "r", {"r1": "Exams again"}, srv, cache=False)
    assert main(["cache", "purge", "--run", str(tmp_path / "r")]) == 0
    assert "nothing to remove" in capsys.readouterr().out
    # not a database
    cache.mkdir()
    (cache / "responses.db").write_bytes(b"not sqlite at all" * 100)
    assert main(["cache", "info"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the response cache" in err and "Traceback" not in err


def test_delete_leaves_no_trace_even_without_default_secure_delete(tmp_path):
    """Deleted answers are gone from the file and its WAL, whatever SQLite's build defaults."""
    cache = ResponseCache(tmp_path)
    assert cache.db is not None
    cache.db.execute("PRAGMA secure_delete=OFF")  # as in builds where it is off by default
    for i in range(300):
        cache.put(f"k{i}", MODEL, {"choices": [{"message": {"content": f"{SECRET} #{i}"}}]})
    cache.put("keep", MODEL, {"choices": [{"message": {"content": "nothing personal"}}]})
    other = sqlite3.connect(tmp_path / "responses.db")  # another process has it open
    try:
        other.execute("SELECT COUNT(*) FROM responses").fetchone()
        assert cache.delete([f"k{i}" for i in range(300)]) == 300
        cache.close()
        assert (tmp_path / "responses.db-wal").exists()  # kept open by the other one
        assert b"quietfox" not in raw(tmp_path) and b"07700" not in raw(tmp_path)
        assert other.execute("SELECT key FROM responses").fetchall() == [("keep",)]
    finally:
        other.close()


def test_clear_needs_the_cache_to_itself(tmp_path, monkeypatch, capsys):
    """A reader in the middle of a transaction keeps the WAL: a clear message, exit 2."""
    from vsdcoder.cli.main import main
    from vsdcoder.store import rundb

    cache = ResponseCache(tmp_path / "cache")
    cache.put("k", MODEL, {"choices": [{"message": {"content": SECRET}}]})
    cache.close()

    def busy(db):
        raise sqlite3.OperationalError("database is locked: another process is reading it")

    monkeypatch.setattr(rundb, "checkpoint", busy)
    assert main(["cache", "clear", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "another process" in err and "run this again" in err and "Traceback" not in err
