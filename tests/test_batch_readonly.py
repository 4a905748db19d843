"""``--batch``: the dry run only reads run.db; finished units are looked up, not held in memory."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_unprivileged

import vsdcoder
from vsdcoder.store.rundb import RunDB
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text

MODEL = "openai/fake"
TEXTS = {f"a{i}": f"My boss number {i} keeps yelling at me" for i in range(6)}
_SCRIPT = shutil.which("vsdcoder", path=str(Path(sys.executable).parent))
VSDCODER = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "vsdcoder.cli.main"]

pytestmark = pytest.mark.usefixtures("isolated_engine")


def answer(req: dict[str, Any], srv: FakeOpenAI) -> Reply:
    words = unit_text(req).split()
    return Reply(completion(req, {"quote": " ".join(words[1:3]), "stressor": "work"}))


def write_data(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows(TEXTS.items())
    return path


def run(data: Path, srv: FakeOpenAI, out: Path, **kw: Any):
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("batch_poll", 0.02)
    kw.setdefault("progress", False)
    return vsdcoder.code(data, "sad-stressors", model=MODEL, api_base=srv.url, out=out,
                         batch=True, **kw)


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_batch_dry_run_only_reads_run_db(tmp_path, monkeypatch):
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        run(data, srv, out, limit=2, redact="patterns")
        before = file_hashes(out)

        def refuse(*a, **k):
            raise AssertionError("the dry run opened run.db read-write")

        monkeypatch.setattr(RunDB, "__init__", refuse)
        dry = run(data, srv, out, dry_run=True, redact="patterns")
        assert srv.batch_api.uploads and len(srv.batch_api.uploads) == 1  # the first run's
    assert dry.status == "dry-run"
    assert dry.dry_run["batch"]["requests"] == 4  # the 2 coded units are not counted
    after = file_hashes(out)
    # nothing written; a read-only reader of a WAL database may leave an empty WAL behind
    added = {k: v for k, v in after.items() if k not in before}
    assert {k: after[k] for k in before} == before
    assert set(added) <= {"run.db-wal", "run.db-shm"}
    assert not (out / "run.db-wal").exists() or not (out / "run.db-wal").stat().st_size


def test_batch_run_looks_finished_units_up_in_run_db(tmp_path, monkeypatch):
    def no_set(*a, **k):
        raise AssertionError("done_ids loads every id into memory")

    monkeypatch.setattr(RunDB, "done_ids", no_set)
    data = write_data(tmp_path / "d.csv")
    out = tmp_path / "run"
    with FakeOpenAI(answer) as srv:
        first = run(data, srv, out, limit=3)
        second = run(data, srv, out)
        lines = [ln for up in srv.batch_api.uploads for ln in up["lines"]]
    assert first.counts == {"coded": 3} and second.counts == {"coded": 6}
    assert len(lines) == 6  # a unit coded in the first session is never sent again


def _can_mount() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and `unshare -m` for a read-only bind mount"
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1"', "sh", d],
                           capture_output=True, text=True, timeout=60)
    return None if p.returncode == 0 else f"cannot bind-mount read-only here: {p.stderr}"


def test_batch_dry_run_works_on_a_read_only_directory(tmp_path):
    why = _can_mount()
    if why:
        skip_unprivileged(why)
    data = write_data(tmp_path / "d.csv")
    ro = tmp_path / "ro"
    with FakeOpenAI(answer) as srv:
        run(data, srv, ro / "run", limit=2)
        before = file_hashes(ro)
        script = ('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 97\n'
                  'shift; exec "$@"')
        env = dict(os.environ, VSDCODER_CACHE_DIR=str(tmp_path / "cache"),
                   VSDCODER_LOAD_PLUGINS="", LITELLM_LOCAL_MODEL_COST_MAP="True",
                   OPENAI_API_KEY="sk-test")
        p = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(ro), *VSDCODER,
                            "code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
                            "--api-base", srv.url, "--out", str(ro / "run"), "--batch",
                            "--dry-run", "--json"],
                           capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert '"requests": 4' in p.stdout
    assert file_hashes(ro) == before
