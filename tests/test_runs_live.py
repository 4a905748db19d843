"""``vsdcoder runs list/show`` on a run in progress: counts from run.db, status from the lock.

The manifest is rewritten only at the end of a session, so mid-run it says ``running`` with
the counts of the last session; ``runs`` reads run.db (read-only) and probes the run's lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import skip_unprivileged
from test_engine_cli import (
    VSDCODER,
    answer,
    cli,
    code_args,
    coded_ids,
    env_for,
    start,
    wait_for,
    write_csv,
)

from vsdcoder.testing.fake_openai import FakeOpenAI, Reply


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="module")
def _template(tmp_path_factory) -> Path:
    """A real run of 6 units (5 coded, 1 skipped), made once per module."""
    base = tmp_path_factory.mktemp("template")
    rows = [(str(i), f"my boss number {i} shouts at me") for i in range(5)] + [("5", "  ")]
    data = write_csv(base / "d.csv", rows)
    out = base / "r1"
    with FakeOpenAI(lambda req, srv: answer(req)) as srv:
        p = cli(base, code_args(data, srv, out))
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture
def finished_run(_template, tmp_path) -> Path:
    """A copy of the template run, its manifest set back to mid-run (running, coded 0)."""
    out = tmp_path / "runs" / "r1"
    shutil.copytree(_template, out)
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["counts"] == {"coded": 5, "skipped": 1}
    m["status"], m["counts"] = "running", {"coded": 0}
    m["sessions"][-1].update(status="running", ended=None)
    (out / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return out


def listed(capsys, *args: str) -> list[dict]:
    from vsdcoder.cli.main import main

    capsys.readouterr()
    assert main(["runs", "list", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def shown(capsys, run: Path) -> tuple[dict, str]:
    from vsdcoder.cli.main import main

    capsys.readouterr()
    assert main(["runs", "show", str(run), "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(["runs", "show", str(run)]) == 0
    return as_json, capsys.readouterr().out


def test_counts_come_from_run_db_and_status_from_the_lock(tmp_path, finished_run, capsys):
    from vsdcoder.store.rundb import lock_held, lock_run_dir

    out = finished_run
    runs = tmp_path / "runs"
    db_before = (out / "run.db").read_bytes()

    # nobody holds the lock, the manifest says running: the process died
    assert lock_held(out) is False
    [row] = listed(capsys, "--dir", str(runs))
    assert (row["status"], row["counts"]) == ("killed", {"coded": 5, "skipped": 1})
    m, text = shown(capsys, out)
    assert (m["status"], m["counts"]) == ("killed", {"coded": 5, "skipped": 1})
    assert "status killed" in text and "'coded': 5" in text

    # a process holds the lock: running, with the units saved so far
    lock = lock_run_dir(out, "or not")
    try:
        assert lock_held(out) is True
        [row] = listed(capsys, str(runs))  # positional
        assert (row["status"], row["counts"]) == ("running", {"coded": 5, "skipped": 1})
        m, text = shown(capsys, out)
        assert (m["status"], m["counts"]) == ("running", {"coded": 5, "skipped": 1})
        assert "status running" in text and "(from run.db, as of now)" in text
        from vsdcoder.cli.main import main

        capsys.readouterr()
        assert main(["runs", "list", str(runs)]) == 0
        table = capsys.readouterr().out
        assert "running" in table and " 5 " in table
    finally:
        lock.release()
    assert lock_held(out) is False
    assert (out / "run.db").read_bytes() == db_before  # read, never written or migrated
    assert not (out / "run.db-wal").exists() or (out / "run.db-wal").stat().st_size == 0


def test_list_positional_dir_one_run_and_errors(tmp_path, finished_run, capsys):
    from vsdcoder.cli.main import main

    out = finished_run
    runs = tmp_path / "runs"
    assert listed(capsys, str(runs)) == listed(capsys, "--dir", str(runs))
    assert listed(capsys, str(runs), "--dir", str(runs))[0]["run"] == str(out)
    assert [r["run"] for r in listed(capsys, str(out))] == [str(out)]  # one run directory

    capsys.readouterr()
    missing = tmp_path / "nope"
    assert main(["runs", "list", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such directory" in err and "Traceback" not in err
    assert main(["runs", "list", "--dir", str(missing)]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["runs", "list", str(runs), "--dir", str(tmp_path)]) == 2
    assert "give one" in capsys.readouterr().err
    assert main(["runs", "show", str(missing)]) == 2
    assert f"{missing}: no such directory" in capsys.readouterr().err


def test_a_live_run_shows_its_progress_then_killed(tmp_path):
    rows = [(f"u{i:02d}", f"my boss number {i} shouts at me") for i in range(40)]
    data = write_csv(tmp_path / "d.csv", rows)
    out = tmp_path / "runs" / "live"
    with FakeOpenAI(lambda req, srv: Reply(answer(req).body, delay=0.1)) as srv:
        proc = start(tmp_path, code_args(data, srv, out, "--concurrency", "1"))
        try:
            wait_for(lambda: len(coded_ids(out)) >= 3, proc)
            p = cli(tmp_path, ["runs", "list", str(tmp_path / "runs"), "--json"])
            assert p.returncode == 0, p.stderr
            [row] = json.loads(p.stdout)
            assert row["status"] == "running"
            assert 3 <= row["counts"]["coded"] < 40
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["status"] == "running"
            assert manifest.get("counts", {}).get("coded", 0) == 0
        finally:
            proc.kill()
            proc.communicate()
    p = cli(tmp_path, ["runs", "show", str(out), "--json"])
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    assert m["status"] == "killed" and m["counts"]["coded"] >= 3


def _read_only(tmp_path: Path) -> str | None:
    """Why a read-only bind mount cannot be made here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and `unshare -m` for a read-only bind mount"
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1"', "sh", d],
                           capture_output=True, text=True, timeout=60)
    return None if p.returncode == 0 else f"cannot bind-mount read-only here: {p.stderr}"


def test_read_only_run_directory(tmp_path, finished_run):
    out = finished_run
    runs = tmp_path / "runs"
    (out / ".lock").touch()  # a lock file left by the run, nobody holding it
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    if (why := _read_only(tmp_path)) is None:
        pre = ['unshare', '-m', 'sh', '-c',
               'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 97\n'
               'shift; exec "$@"', 'sh', str(runs)]
        outs = []
        for args in (["runs", "list", str(runs), "--json"], ["runs", "show", str(out), "--json"]):
            p = subprocess.run([*pre, *VSDCODER, *args], capture_output=True, text=True,
                               timeout=120, cwd=tmp_path, env=env_for(tmp_path))
            assert p.returncode == 0, p.stderr  # 97: the mount failed
            outs.append(json.loads(p.stdout))
    elif os.name == "posix" and os.geteuid() != 0:
        for d in (out, runs):
            d.chmod(0o555)
        try:
            outs = [json.loads(cli(tmp_path, ["runs", *a, "--json"]).stdout)
                    for a in (["list", str(runs)], ["show", str(out)])]
        finally:
            for d in (out, runs):
                d.chmod(0o755)
    else:
        skip_unprivileged(why)
        return
    [row], m = outs
    assert (row["status"], row["counts"]) == ("killed", {"coded": 5, "skipped": 1})
    assert (m["status"], m["counts"]) == ("killed", {"coded": 5, "skipped": 1})
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
