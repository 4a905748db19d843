"""Fault injection: a flaky model server, kill -9, a full disk, a read-only run directory and a
second process on the same run directory.

- 2,000 units against a server injecting 20% faults (429, 5xx, timeouts, malformed bodies and
  answers, schema violations, non-verbatim quotes): every unit ends coded or failed with its
  reason, none twice, and run.db agrees with what the server saw, request by request.
- ``kill -9`` at 10 seeded moments (during start-up, at the first write, at the session start,
  after a varying number of stored units), each followed by a resume: exactly once.
- A run directory on a small tmpfs that fills up during the run (``unshare -m``, so these need
  root), a read-only bind mount and a read-only parent: one clear error, exit code 2, the
  store intact, and a resume after freeing space codes every unit exactly once.
- Two processes on one run directory: the second refuses at once, the first is unharmed.

Everything talks to scripted servers on 127.0.0.1. The mount tests skip, naming what is
missing, where a tmpfs cannot be mounted in a private mount namespace (not root, no
``unshare``, or root without the right to mount, as in many containers); CI runs as root and
runs them.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import skip_unprivileged

import vsdcoder
from vsdcoder.errors import UsageError
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text
from vsdcoder.testing.faults import ANSWER_FAULTS, FAULT_KINDS, TRANSPORT_FAULTS, FaultServer

MODEL = "openai/fake"
KEY = "sk-test-faults"
_SCRIPT = shutil.which("vsdcoder", path=str(Path(sys.executable).parent))
VSDCODER = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "vsdcoder.cli.main"]


pytestmark = pytest.mark.usefixtures("isolated_engine")


# -- helpers -----------------------------------------------------------------------------------


def write_units(path: Path, n: int, prefix: str = "u") -> dict[str, str]:
    """A CSV of ``n`` units with distinct texts; returns id -> text."""
    rng = random.Random(n)
    words = ("boss", "rent", "exams", "sleep", "family", "money", "deadline", "friends",
             "doctor", "bus", "landlord", "shift", "grades", "partner")
    texts = {f"{prefix}{i:04d}": f"unit {i} says my {rng.choice(words)} and my "
             f"{rng.choice(words)} stress me out every single day" for i in range(n)}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("id", "text"))
        w.writerows(texts.items())
    return texts


def answer(req: dict[str, Any], delay: float = 0.0) -> Reply:
    """A valid sad-stressors answer quoting words 1-2 of the unit's text."""
    quote = " ".join(unit_text(req).split()[1:3])
    return Reply(completion(req, {"quote": quote, "stressor": "work"}), delay=delay)


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VSDCODER_MODEL", None)
    env.update(VSDCODER_CACHE_DIR=str(tmp_path / "cache"), LITELLM_LOCAL_MODEL_COST_MAP="True",
               VSDCODER_LOAD_PLUGINS="", COLUMNS="200", OPENAI_API_KEY=KEY,
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def code_args(data: Path, url: str, out: Path, *more: str) -> list[str]:
    return [*VSDCODER, "code", str(data), "--codebook", "sad-stressors", "--model", MODEL,
            "--api-base", url, "--out", str(out), "--http-retries", "1", *more]


def cli(tmp_path: Path, args: list[str], timeout: float = 120, **env: str):
    return subprocess.run(args, cwd=tmp_path, env=env_for(tmp_path, **env), capture_output=True,
                          text=True, timeout=timeout)


def query(db_path: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(db_path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def peek(run_dir: Path, sql: str) -> list[tuple] | None:
    """Read run.db read-only while another process may write it (None if not readable yet)."""
    p = run_dir / "run.db"
    if not p.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=2)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None


def snapshot(run_dir: Path, dest: Path) -> Path:
    """Copy run.db and its WAL files as they are (a crashed store, not recovered in place)."""
    dest.mkdir(parents=True)
    for name in ("run.db", "run.db-wal", "run.db-shm"):
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, dest / name)
    return dest / "run.db"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def csv_ids(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [r["id"] for r in csv.DictReader(f)]


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, what: str,
             timeout: float = 90, poll: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        time.sleep(poll)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")


@functools.cache
def mount_missing() -> str | None:
    """Why a tmpfs cannot be mounted in a private mount namespace here, or None if it can."""
    what = "needs root and `unshare -m` to mount a tmpfs"
    if not hasattr(os, "geteuid"):
        return f"{what}: not on Linux"
    if os.geteuid() != 0:
        return f"{what}: running as uid {os.geteuid()}"
    unshare = shutil.which("unshare")
    if unshare is None:
        return f"{what}: util-linux's unshare is not on PATH"
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([unshare, "-m", "sh", "-c",
                            'mount -t tmpfs -o size=64k vsdcoder-probe "$1"', "sh", d],
                           capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        why = p.stderr.strip() or f"exit code {p.returncode}"
        return f"{what}: root may not mount here (no CAP_SYS_ADMIN, e.g. a container): {why}"
    return None


@pytest.fixture
def mounts() -> None:
    """Skip the test, naming what is missing, where it cannot mount a tmpfs."""
    why = mount_missing()
    if why:
        skip_unprivileged(why)


def in_namespace(tmp_path: Path, script: str, *args: str, timeout: float = 180,
                 **env: str) -> subprocess.CompletedProcess:
    """Run ``sh -c script`` in a private mount namespace (its mounts vanish with it).

    Tests that call it use the ``mounts`` fixture (they skip where nothing can be mounted);
    a mount that still fails (the script exits 97) fails the test with the reason.
    """
    unshare = shutil.which("unshare")
    assert unshare, "the mount tests need util-linux's unshare"
    p = subprocess.run([unshare, "-m", "sh", "-c", script, "sh", *args], capture_output=True,
                       text=True, timeout=timeout, cwd=tmp_path, env=env_for(tmp_path, **env))
    if p.returncode == 97 or p.stderr.startswith("unshare:"):
        raise AssertionError("cannot mount in a private mount namespace (the tests need root "
                             f"and unshare -m): {p.stderr.strip()}")
    return p


# -- 2,000 units against a flaky server --------------------------------------------------------

#: what each kind of server reply leaves in calls.status
_CALL_STATUS = {"ok": "ok", **{k: "http_error" for k in TRANSPORT_FAULTS},
                **{k: "invalid" for k in ANSWER_FAULTS}}
#: The client's timeout in the 2,000-unit run. The client is CPU-bound there: with 32 calls in
#: flight a prompt reply waits ~0.5-1 s (up to 2 s on a loaded machine) for the event loop,
#: so a 1 s timeout raced the client's own queue. The server holds every ``timeout`` reply
#: until the client hangs up, so a longer timeout costs only its own length per timeout fault.
_TIMEOUT = 5.0


class _Call(NamedTuple):
    attempt: int
    status: str
    errors: list[str]
    cache_hit: int
    latency: float

    @property
    def timed_out(self) -> bool:
        """The client gave up on this request: a timeout, after at least ``_TIMEOUT`` s."""
        return (self.status == "http_error" and "Timeout" in self.errors[0]
                and self.latency >= _TIMEOUT)


def _as_sent(call: _Call, r: Any) -> bool:
    """Whether ``call`` logged exactly what the server answered to request ``r``."""
    if call.attempt != r.attempt or call.status != _CALL_STATUS[r.kind]:
        return False
    if r.kind == "rate_limit":
        return "injected rate limit" in call.errors[0]
    if r.kind == "server_error":
        return f"injected {r.detail}" in call.errors[0]
    if r.kind == "timeout":
        return call.timed_out
    if r.kind == "malformed_body":
        return "Timeout" not in call.errors[0]
    if r.kind in ANSWER_FAULTS:
        return bool(call.errors)
    return True


def _align(logged: list[_Call], requests: list[Any]) -> tuple[int, list[tuple[Any, str]]] | None:
    """Pair a unit's logged calls, in order, with the requests the server saw for it.

    Each call is the next request, logged as the server answered it; or, only for a call the
    client gave up on after its full timeout, a request whose answer came too late (the
    call counts as a timeout) or one the server never got (the timer fired before the
    starved client had sent it). Every request the server saw must be a call. Returns the
    number of such crossings (as few as possible) and, per call, ``(request or None, what
    the client got)``; None when the log cannot be what the server saw.
    """

    @functools.cache
    def best(i: int, j: int) -> tuple[int, tuple[tuple[Any, str], ...]] | None:
        if i == len(logged):
            return (0, ()) if j == len(requests) else None
        call = logged[i]
        options: list[tuple[int, tuple[Any, str], int]] = []
        if j < len(requests) and _as_sent(call, requests[j]):
            options.append((0, (requests[j], requests[j].kind), j + 1))
        elif j < len(requests) and call.timed_out and call.attempt == requests[j].attempt:
            options.append((1, (requests[j], "timeout"), j + 1))  # answered too late
        if call.timed_out:
            options.append((1, (None, "timeout"), j))  # never reached the server
        found = []
        for cost, pair, nj in options:
            rest = best(i + 1, nj)
            if rest is not None:
                found.append((cost + rest[0], (pair, *rest[1])))
        return min(found, key=lambda f: f[0], default=None)

    got = best(0, 0)
    return None if got is None else (got[0], list(got[1]))


def _cpu_wait() -> float:
    """Seconds this thread was ready to run but waited for a CPU (Linux schedstat; else 0)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def test_2000_units_with_20_percent_injected_faults_each_end_coded_or_failed_once(tmp_path):
    n = 2000
    texts = write_units(tmp_path / "d.csv", n)
    by_text = {t: i for i, t in texts.items()}
    out = tmp_path / "run"
    t0, w0 = time.monotonic(), _cpu_wait()
    with FaultServer(seed=20251122, rate=0.2, timeout_delay=60.0, retry_after=0.05) as srv:
        summary = vsdcoder.code(
            tmp_path / "d.csv", "sad-stressors", model=MODEL, api_base=srv.url, out=out,
            api_key=KEY, concurrency=32, timeout=_TIMEOUT, http_retries=2, max_retries=1,
            backoff_base=0.02, backoff_max=0.2, progress=False)
    elapsed = time.monotonic() - t0
    # the time budget is the client's own: not the time other jobs on a busy machine took its
    # CPU (the event loop runs in this thread), so a loaded machine does not fail the test
    own = elapsed - (_cpu_wait() - w0)
    faults = srv.injector
    seen = faults.by_text()

    # the server injected every kind of fault, about 20% of the time
    total = len(faults.log)
    injected = total - faults.counts["ok"]
    assert 0.17 < injected / total < 0.23, faults.counts
    assert all(faults.counts[k] >= 20 for k in FAULT_KINDS), faults.counts
    assert set(seen) == set(texts.values())  # every unit reached the server

    # every unit ends coded or failed, once, failures with their reason
    assert summary.status == "finished"
    db = out / "run.db"
    units = {r[0]: r[1:] for r in query(
        db, "SELECT id, status, error, quote_verified, session, attempts FROM units")}
    assert set(units) == set(texts) and len(units) == n
    assert {u[0] for u in units.values()} <= {"coded", "failed"}
    failed = {i for i, u in units.items() if u[0] == "failed"}
    assert failed and all(units[i][1] for i in failed)
    assert summary.counts == {"coded": n - len(failed), "failed": len(failed)}
    lines = read_jsonl(out / "codes.jsonl")
    assert sorted(ln["id"] for ln in lines) == sorted(texts)  # each id exactly once
    assert sorted(csv_ids(out / "codes.csv")) == sorted(texts)
    assert all(ln["status"] == units[ln["id"]][0] for ln in lines)

    # one session; every call of a unit belongs to it (the accepted answer has one source)
    assert query(db, "SELECT id, status FROM sessions") == [(1, "finished")]
    assert query(db, "SELECT COUNT(*) FROM calls c JOIN units u ON u.id = c.unit_id"
                 " WHERE c.session != u.session") == [(0,)]

    # the calls logged per attempt are what the server saw, request by request. Only a call
    # the client gave up on after its full timeout may differ: its answer came too late, or
    # the server never got it (a starved client's timer can fire before it sent the request)
    calls: dict[str, list[_Call]] = {}
    for uid, attempt, status, errors, cache_hit, latency in query(
            db, "SELECT unit_id, attempt, status, errors, cache_hit, latency FROM calls"
                " ORDER BY id"):
        calls.setdefault(uid, []).append(
            _Call(attempt, status, json.loads(errors or "[]"), cache_hit, latency))
    assert set(calls) == set(texts)
    crossed = unsent = 0
    effective: dict[str, str] = {}
    for text, requests in seen.items():
        uid = by_text[text]
        logged = calls[uid]
        assert [r.n for r in requests] == list(range(1, len(requests) + 1))
        assert all(c.cache_hit == 0 for c in logged), uid
        aligned = _align(logged, requests)
        assert aligned is not None, (uid, requests, logged)
        crossed += aligned[0]
        unsent += sum(1 for r, _ in aligned[1] if r is None)
        effective[uid] = aligned[1][-1][1]
        assert units[uid][4] == logged[-1].attempt  # attempts
    assert sum(len(c) for c in calls.values()) == total + unsent
    assert crossed <= total // 100, f"{crossed} calls crossed the client's timeout"

    # each unit's outcome follows from the last thing the server said to it; quote_verified
    # is false exactly where a non-verbatim quote was the last answer
    for uid, (status, error, verified, _session, _attempts) in units.items():
        last = effective[uid]
        if last == "ok":
            assert (status, error, verified) == ("coded", None, 1), uid
        elif last == "quote":
            assert (status, verified) == ("coded", 0), uid
            assert error.startswith("quote not verified after re-asks"), error
        elif last in TRANSPORT_FAULTS:
            assert status == "failed" and verified is None, uid
            assert error.split(":")[0] in calls[uid][-1].errors[0], (error, calls[uid][-1])
        else:
            assert status == "failed" and error.startswith("invalid answer after re-asks"), uid
    unverified = {u for u, k in effective.items() if k == "quote"}
    assert unverified == {u for u, v in units.items() if v[2] == 0}
    assert summary.totals["units_quote_unverified"] == len(unverified) > 0
    assert summary.totals["calls"] == total + unsent
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == summary.counts
    assert manifest["calls"]["total"] == total + unsent
    assert own < 120, f"2,000 units took {elapsed:.0f} s ({own:.0f} s not waiting for a CPU)"


# -- kill -9 at 10 moments, resume after each ----------------------------------------------------


def _kill_plan(rng: random.Random) -> list[tuple[str, float]]:
    """Ten seeded kill moments.

    In start-up, at the first write, at the session start, then seven times after 1-30 newly
    stored units (with a few ms of jitter, so some kills land inside a commit).
    """
    plan = [("startup", rng.uniform(0.05, 0.4)), ("first write", 0.0), ("session start", 0.0)]
    plan += [("units", float(rng.randint(1, 30))) for _ in range(7)]
    return plan


def test_sigkill_at_10_random_moments_then_resume_is_exactly_once(tmp_path):
    n = 300  # > 7 x (30 + in flight): units are left for the last resume
    texts = write_units(tmp_path / "d.csv", n)
    out = tmp_path / "run"
    rng = random.Random(4242)
    plan = _kill_plan(rng)
    committed_before: list[set[str]] = []  # per process: ids already in run.db when it started
    sessions_at_kill: list[int] = []
    with FakeOpenAI(lambda req, s: answer(req, delay=0.03)) as srv:
        args = code_args(tmp_path / "d.csv", srv.url, out, "--concurrency", "4")
        committed: set[str] = set()
        for j, (moment, value) in enumerate(plan):
            committed_before.append(set(committed))
            sessions = len(peek(out, "SELECT id FROM sessions") or [])
            stored = len(committed)
            with open(tmp_path / f"kill{j}.err", "w") as err:
                p = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err,
                                     env=env_for(tmp_path, OPENAI_API_KEY=f"sk-proc-{j}"))
            try:
                if moment == "startup":
                    time.sleep(value)
                elif moment == "first write":
                    wait_for(lambda: (out / "run.db").exists(), p, "run.db was created",
                             poll=0.001)
                elif moment == "session start":
                    wait_for(lambda s=sessions: len(peek(out, "SELECT id FROM sessions") or [])
                             > s, p, "the session started", poll=0.001)
                else:
                    target = stored + int(value)
                    wait_for(lambda t=target: len(peek(out, "SELECT id FROM units") or []) >= t,
                             p, f"{int(value)} more units were stored")
                    time.sleep(rng.uniform(0, 0.03))
                assert p.poll() is None, f"kill {j} ({moment}): the run ended before the kill"
            finally:
                p.kill()
                p.wait(timeout=30)
            assert p.returncode == -signal.SIGKILL
            # the store a kill -9 leaves is intact, and that is what the resume starts from
            snap = snapshot(out, tmp_path / f"snap{j}")
            if snap.exists():
                assert query(snap, "PRAGMA integrity_check") == [("ok",)], (j, moment)
                tables = {r[0] for r in query(snap, "SELECT name FROM sqlite_master")}
                if "units" in tables:  # else killed before the first migration committed
                    committed = {r[0] for r in query(snap, "SELECT id FROM units")}
                    sessions_at_kill.append(len(query(snap, "SELECT id FROM sessions")))
            assert committed >= committed_before[-1]  # nothing stored is ever lost
        assert len(committed) < n, "every unit was coded before the last kill"
        committed_before.append(set(committed))
        final = cli(tmp_path, args, OPENAI_API_KEY=f"sk-proc-{len(plan)}")
        assert final.returncode == 0, final.stderr
        requests = [(r["_auth"], unit_text(r)) for r in srv.requests]

    assert "Traceback" not in final.stdout + final.stderr
    db = out / "run.db"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    rows = query(db, "SELECT id, status, session FROM units ORDER BY row")
    assert [r[0] for r in rows] == sorted(texts) and {r[1] for r in rows} == {"coded"}
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT id) FROM units") == [(n, n)]
    lines = read_jsonl(out / "codes.jsonl")
    assert [ln["id"] for ln in lines] == sorted(texts)
    assert csv_ids(out / "codes.csv") == sorted(texts)
    # no unit committed before a process started was asked for again by that process
    for j, before in enumerate(committed_before):
        asked = {t for auth, t in requests if auth == f"Bearer sk-proc-{j}"}
        assert not asked & {texts[i] for i in before}, f"process {j} re-coded stored units"
    # ... and every stored call belongs to the session that committed its unit
    assert query(db, "SELECT COUNT(*) FROM calls c JOIN units u ON u.id = c.unit_id"
                 " WHERE c.session != u.session") == [(0,)]
    # every session but the last was killed, in run.db and in the manifest
    statuses = [r[0] for r in query(db, "SELECT status FROM sessions ORDER BY id")]
    assert statuses == ["killed"] * (len(statuses) - 1) + ["finished"]
    assert len(statuses) == (max(sessions_at_kill) if sessions_at_kill else 0) + 1
    assert len(statuses) >= 9  # the kills at the session start and after units had one
    m = json.loads((out / "manifest.json").read_text())
    ms = [s["status"] for s in m["sessions"]]
    assert ms == ["killed"] * (len(ms) - 1) + ["finished"] and len(ms) <= len(statuses)
    assert m["counts"] == {"coded": n}


# -- a full disk ---------------------------------------------------------------------------------

_FULL_DISK = r"""
set -u
mnt="$1"; copy="$2"; seed="$3"; shift 3
mount -t tmpfs -o size=640k vsdcoder-test "$mnt" || exit 97
cp -a "$seed/." "$mnt/" || exit 98
"$@"; rc=$?
cp -a "$mnt/." "$copy/"
exit $rc
"""


def test_full_disk_stops_with_one_clear_error_and_an_intact_store_then_resumes(tmp_path, mounts):
    n = 150  # the disk fills after ~20 units
    texts = write_units(tmp_path / "d.csv", n)
    mnt, copy, seed = tmp_path / "mnt", tmp_path / "copy", tmp_path / "seed"
    mnt.mkdir()
    copy.mkdir()
    with FakeOpenAI(lambda req, s: answer(req, delay=0.01)) as srv:
        # a first session codes 5 units (so there are codes files to keep intact), then the
        # run directory moves to a 640 kB tmpfs that fills up during the next session
        vsdcoder.code(tmp_path / "d.csv", "sad-stressors", model=MODEL, api_base=srv.url,
                      out=seed / "run", api_key=KEY, limit=5, progress=False)
        args = code_args(tmp_path / "d.csv", srv.url, mnt / "run", "--concurrency", "4")
        p = in_namespace(tmp_path, _FULL_DISK, str(mnt), str(copy), str(seed), *args)
        assert p.returncode != 98, p.stderr
        run = copy / "run"

        # one clear line, exit code 2, no traceback
        assert p.returncode == 2, p.stderr
        assert "Traceback" not in p.stdout + p.stderr
        msg = p.stderr.strip()
        assert len(msg.splitlines()) == 1, msg
        assert msg.startswith(f"error: {mnt / 'run'}: the disk is full"), msg
        assert "Free some disk space and run the same command again to resume." in msg
        saved = {r[0]: r[1:] for r in query(run / "run.db", "SELECT id, status, session,"
                                             " result FROM units")}
        assert f"{len(saved)} unit(s) are saved in run.db" in msg
        # the disk filled during the run, not before it
        assert 5 + 3 <= len(saved) < n, len(saved)

        # the store is intact: run.db, and the manifest and codes files old or complete
        assert query(run / "run.db", "PRAGMA integrity_check") == [("ok",)]
        assert {s for s, *_ in saved.values()} == {"coded"}  # nothing marked failed wrongly
        old = seed / "run"
        old_ids = sorted(ln["id"] for ln in read_jsonl(old / "codes.jsonl"))
        assert len(old_ids) == 5 and set(old_ids) <= set(saved)
        now_ids = sorted(ln["id"] for ln in read_jsonl(run / "codes.jsonl"))
        assert now_ids in (old_ids, sorted(saved))
        assert sorted(csv_ids(run / "codes.csv")) in (old_ids, sorted(saved))
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] in ("running", "disk_full")
        assert not [f.name for f in run.iterdir() if f.name.endswith(".tmp")]
        assert query(run / "run.db", "SELECT status FROM sessions ORDER BY id")[0] == (
            "finished",)

        # after freeing space (here: the copy on a roomy disk) the same command resumes
        resumed = cli(tmp_path, code_args(tmp_path / "d.csv", srv.url, run,
                                          "--concurrency", "4"))
    assert resumed.returncode == 0, resumed.stderr
    assert query(run / "run.db", "PRAGMA integrity_check") == [("ok",)]
    rows = {r[0]: r[1:] for r in query(run / "run.db", "SELECT id, status, session, result"
                                       " FROM units")}
    assert sorted(rows) == sorted(texts) and {r[0] for r in rows.values()} == {"coded"}
    assert all(rows[i] == saved[i] for i in saved)  # saved before the failure: untouched
    assert [ln["id"] for ln in read_jsonl(run / "codes.jsonl")] == sorted(texts)
    assert csv_ids(run / "codes.csv") == sorted(texts)
    statuses = [r[0] for r in query(run / "run.db", "SELECT status FROM sessions ORDER BY id")]
    assert statuses[0] == "finished" and statuses[-1] == "finished"
    assert statuses[1] in ("disk_full", "killed")  # 'killed' if even that could not be written


_FULL_CACHE = r"""
set -u
mnt="$1"; shift
mount -t tmpfs -o size=160k vsdcoder-test "$mnt" || exit 97
exec "$@"
"""


def test_full_cache_disk_warns_once_and_the_run_goes_on(tmp_path, mounts):
    n = 60
    texts = write_units(tmp_path / "d.csv", n)
    mnt = tmp_path / "cache-mnt"
    mnt.mkdir()
    out = tmp_path / "run"
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        args = code_args(tmp_path / "d.csv", srv.url, out, "--concurrency", "4")
        p = in_namespace(tmp_path, _FULL_CACHE, str(mnt), *args,
                         VSDCODER_CACHE_DIR=str(mnt / "cache"))
        assert len(srv.requests) == n
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    warnings = [ln for ln in p.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and "response cache" in warnings[0], p.stderr
    assert "going on without it" in warnings[0]
    rows = query(out / "run.db", "SELECT status, COUNT(*) FROM units GROUP BY status")
    assert rows == [("coded", n)]
    assert [ln["id"] for ln in read_jsonl(out / "codes.jsonl")] == sorted(texts)


# -- disk failures inside the engine (no mount needed) -------------------------------------------


def test_store_failure_mid_run_stops_cleanly_and_loses_nothing(tmp_path, monkeypatch):
    from vsdcoder.store.rundb import RunDB

    n = 60
    texts = write_units(tmp_path / "d.csv", n)
    out = tmp_path / "run"
    real_save = RunDB.save
    saves = Counter()

    def failing_save(self, res, session, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 21:
            raise sqlite3.OperationalError("database or disk is full")
        return real_save(self, res, session, *args, **kwargs)

    monkeypatch.setattr(RunDB, "save", failing_save)
    with FakeOpenAI(lambda req, s: answer(req, delay=0.02)) as srv:
        kw = dict(model=MODEL, api_base=srv.url, out=out, api_key=KEY, concurrency=4,
                  progress=False)
        with pytest.raises(UsageError) as err:
            vsdcoder.code(tmp_path / "d.csv", "sad-stressors", **kw)
        msg = str(err.value)
        assert "\n" not in msg and "the disk is full, so the run stopped" in msg
        assert "20 unit(s) are saved in run.db" in msg
        assert "in flight were not saved and will be coded again" in msg
        assert query(out / "run.db", "SELECT status, COUNT(*) FROM units GROUP BY 1") == [
            ("coded", 20)]
        assert query(out / "run.db", "SELECT status FROM sessions") == [("disk_full",)]
        assert len(read_jsonl(out / "codes.jsonl")) == 20
        assert json.loads((out / "manifest.json").read_text())["status"] == "disk_full"
        monkeypatch.setattr(RunDB, "save", real_save)
        again = vsdcoder.code(tmp_path / "d.csv", "sad-stressors", **kw)
    assert again.status == "finished" and again.counts == {"coded": n}
    assert again.coded_this_session == n - 20
    assert [ln["id"] for ln in read_jsonl(out / "codes.jsonl")] == sorted(texts)


def test_cache_that_cannot_be_written_is_skipped_with_one_warning(tmp_path, monkeypatch,
                                                                   capsys):
    from vsdcoder.coding.cache import ResponseCache

    class FullOnInsert:
        """A cache connection on a full disk: reads work, writes fail."""

        def __init__(self, con: sqlite3.Connection):
            self.con = con

        def execute(self, sql: str, *args: Any) -> Any:
            if sql.lstrip().upper().startswith("INSERT"):
                raise sqlite3.OperationalError("database or disk is full")
            return self.con.execute(sql, *args)

        def close(self) -> None:
            self.con.close()

    real_init = ResponseCache.__init__

    def init(self, directory=None):
        real_init(self, directory)
        if self.db is not None:
            self.db = FullOnInsert(self.db)

    monkeypatch.setattr(ResponseCache, "__init__", init)
    texts = write_units(tmp_path / "d.csv", 10)
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        run = vsdcoder.code(tmp_path / "d.csv", "sad-stressors", model=MODEL, api_base=srv.url,
                            out=tmp_path / "run", api_key=KEY, progress=False)
    assert run.status == "finished" and run.counts == {"coded": len(texts)}
    err = capsys.readouterr().err
    assert err.count("warning: the response cache") == 1, err
    # a cache directory that cannot even be created is skipped the same way
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cache = ResponseCache(blocker / "cache")
    assert cache.disabled and cache.get("k") is None and not cache.contains("k")
    cache.put("k", MODEL, {})
    cache.close()


# -- a read-only run directory -------------------------------------------------------------------

_READ_ONLY = r"""
set -u
ro="$1"; out="$2"; shift 2
mount --bind "$ro" "$ro" && mount -o remount,ro,bind "$ro" || exit 97
"$@" --out "$ro/run" > "$out.1.out" 2> "$out.1.err"; echo $? > "$out.1.rc"
"$@" --out "$ro/new/run" > "$out.2.out" 2> "$out.2.err"; echo $? > "$out.2.rc"
"""


def test_read_only_run_directory_and_parent_are_refused_before_any_call(tmp_path, mounts):
    write_units(tmp_path / "d.csv", 20)
    ro = tmp_path / "ro"
    with FakeOpenAI(lambda req, s: answer(req)) as srv:
        vsdcoder.code(tmp_path / "d.csv", "sad-stressors", model=MODEL, api_base=srv.url,
                      out=ro / "run", api_key=KEY, limit=5, progress=False)
        before = file_hashes(ro)
        asked = len(srv.requests)
        args = code_args(tmp_path / "d.csv", srv.url, ro / "unused")
        args = args[:args.index("--out")] + args[args.index("--out") + 2:]
        res = tmp_path / "res"
        p = in_namespace(tmp_path, _READ_ONLY, str(ro), str(res), *args)
        assert p.returncode == 0, p.stderr
        assert len(srv.requests) == asked  # refused before any model call
    assert file_hashes(ro) == before  # not a byte changed, no file added
    for i, expected in ((1, f"error: {ro / 'run'}: the run directory is not writable "
                            "(Read-only file system), so the run did not start. Nothing was "
                            "written."),
                        (2, f"error: {ro / 'new' / 'run'}: cannot create the run directory "
                            "(Read-only file system); choose another --out")):
        rc = Path(f"{res}.{i}.rc").read_text().strip()
        err = Path(f"{res}.{i}.err").read_text()
        assert rc == "2", err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert err.startswith(expected), err


# -- two processes on one run directory ----------------------------------------------------------


def test_second_process_on_the_same_run_dir_refuses_and_the_first_is_unharmed(tmp_path):
    n = 40
    texts = write_units(tmp_path / "d.csv", n)
    out = tmp_path / "run"
    released = threading.Event()  # slow answers until the second process is done
    with FakeOpenAI(lambda req, s: answer(req, delay=0 if released.is_set() else 0.1)) as srv, \
            FakeOpenAI(lambda req, s: answer(req)) as other:
        first = subprocess.Popen(code_args(tmp_path / "d.csv", srv.url, out, "-j", "2"),
                                 cwd=tmp_path, env=env_for(tmp_path), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(peek(out, "SELECT id FROM units") or []) >= 2, first,
                 "the first run stored units", poll=0.02)
        t0 = time.monotonic()
        second = cli(tmp_path, code_args(tmp_path / "d.csv", other.url, out, "-j", "2"))
        took = time.monotonic() - t0
        assert first.poll() is None, "the first run should still be coding"
        released.set()
        f_out, f_err = first.communicate(timeout=120)
        assert other.requests == []  # the second process never called a model
    assert second.returncode == 2, second.stderr
    assert second.stderr.startswith(f"error: {out} is in use by another vsdcoder process")
    assert "Traceback" not in second.stdout + second.stderr
    assert took < 30, f"the refusal took {took:.1f} s"
    assert first.returncode == 0, f_err
    assert "Traceback" not in f_out + f_err
    assert query(out / "run.db", "SELECT status FROM sessions") == [("finished",)]
    assert query(out / "run.db", "SELECT COUNT(*), COUNT(DISTINCT id) FROM units"
                 " WHERE status='coded'") == [(n, n)]
    assert [ln["id"] for ln in read_jsonl(out / "codes.jsonl")] == sorted(texts)
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "finished" and len(m["sessions"]) == 1


# -- the fault injector itself -------------------------------------------------------------------


def test_fault_injector_is_seeded_and_answers_every_bundled_codebook(tmp_path):
    from vsdcoder.testing.faults import FaultInjector

    a, b, c = FaultInjector(seed=1), FaultInjector(seed=1), FaultInjector(seed=2)
    draws = [(f"text {i}", n) for i in range(2000) for n in (1, 2)]
    kinds = [a.decide(t, n) for t, n in draws]
    assert kinds == [b.decide(t, n) for t, n in draws]  # reproducible
    assert kinds != [c.decide(t, n) for t, n in draws]
    share = 1 - kinds.count("ok") / len(kinds)
    assert 0.18 < share < 0.22 and set(kinds) == {"ok", *FAULT_KINDS}
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultInjector(kinds=("gremlins",))

    # its correct answers validate for every bundled codebook (document and segment, gates,
    # multi-label, "Other (term)" fields) ...
    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.testing.faults import valid_answer

    text = "I used the chatbot when my boss shouted and it helped me calm down a lot"
    for name in ("sad-stressors", "vsd-mental-health", "tiktok-llm-mh", "convabuse"):
        compiled = compile_codebook(vsdcoder.load_codebook(name).codebook)
        model = compiled.response_model
        request = {"messages": compiled.messages(text, None), "tools": [{"type": "function",
                   "function": {"name": model.__name__, "parameters": model.model_json_schema()}}]}
        assert unit_text(request) == text
        model.model_validate_json(json.dumps(valid_answer(request)), context={"text": text})

    # ... and each answer fault is caught by the engine and re-asked
    write_units(tmp_path / "d.csv", 2)
    for kind in ("schema", "malformed_json", "quote"):
        injector = FaultInjector(seed=3, rate=1.0, kinds=(kind,))
        with FakeOpenAI(injector) as srv:
            run = vsdcoder.code(tmp_path / "d.csv", "sad-stressors", model=MODEL,
                                api_base=srv.url, out=tmp_path / kind, api_key=KEY,
                                max_retries=1, cache=False, progress=False)
        assert run.counts == {"coded" if kind == "quote" else "failed": 2}, (kind, run.counts)
        assert [r.attempt for r in injector.log].count(2) == 2  # one re-ask per unit
