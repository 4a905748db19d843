"""``vsdcoder runs purge``: remove a run's stored texts, its answers and the key to its pseudonyms.

What stays: codes, quote offsets and verification flags, statuses, tokens, costs, the manifest,
the cache keys (hashes) of the calls.
What goes: texts, contexts, requests, responses, parsed answers and call errors in run.db; batch
requests with their answers and what was sent; the quotes and rationales of every unit (run.db,
codes.jsonl, codes.csv); error details, which may quote an answer; the key to the pseudonyms
(run.db table ``pseudonyms``, or ``pseudonyms.json`` of an earlier version); leftover ``*.tmp``
files; and the run's entries in the shared response cache (see :func:`run_cache_keys`).
run.db and the cache are rebuilt with freed space overwritten and their WAL truncated, so no old
page keeps a text.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.store.exports import atomic_write, unit_line
from vsdcoder.store.rundb import RunDB, scrub_error


def _lock(run_dir: Path):
    from vsdcoder.store.rundb import lock_run_dir

    return lock_run_dir(run_dir, "then purge")


def _rewrite_csv(path: Path) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        for col in ("quote", "rationale"):
            if col in row:
                row[col] = ""
        if row.get("error"):
            row["error"] = scrub_error(row["error"]) or ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def check_run_dir(run_dir: Path) -> None:
    """Refuse a path that is not a run directory.

    Raises:
        UsageError: no such directory, or no run.db in it.
    """
    if not Path(run_dir).is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    if not (Path(run_dir) / "run.db").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no run.db)")


def run_cache_keys(db: sqlite3.Connection) -> set[str]:
    """The response-cache keys of every request a run made (read only).

    Each call records its key (``calls.cache_key``); for calls stored by an earlier version
    the key is computed again from the stored request; batch requests record theirs.
    """
    from vsdcoder.coding.cache import request_key

    def rows(*queries: str) -> list[tuple[Any, ...]]:
        for q in queries:  # the first one this run.db's schema can answer
            try:
                return db.execute(q).fetchall()
            except sqlite3.OperationalError:
                continue
        return []

    keys = {r[0] for r in rows("SELECT DISTINCT cache_key FROM calls WHERE cache_key IS NOT NULL")}
    for (req,) in rows("SELECT request FROM calls_full WHERE cache_key IS NULL"
                       " AND request IS NOT NULL",
                       "SELECT request FROM calls_full WHERE request IS NOT NULL",
                       "SELECT request FROM calls WHERE request IS NOT NULL"):
        try:
            keys.add(request_key(json.loads(req)))
        except (ValueError, TypeError):
            continue
    keys |= {r[0] for r in rows("SELECT DISTINCT key FROM batch_requests WHERE key IS NOT NULL")}
    return keys


def purge_cache(keys: set[str], cache_dir: Path | None = None) -> dict[str, Any]:
    """Delete ``keys`` from the response cache in ``cache_dir`` (default: the usual one).

    Returns:
        ``path`` of the cache (None if there is none), ``deleted`` entries.

    Raises:
        OSError, sqlite3.Error: the cache cannot be opened or emptied of them.
    """
    from vsdcoder.coding.cache import ResponseCache

    cache = ResponseCache.open_existing(cache_dir)
    if cache is None:
        return {"path": None, "deleted": 0}
    try:
        return {"path": str(cache.path), "deleted": cache.delete(keys)}
    finally:
        cache.close()


def purge_run(run_dir: Path, cache_dir: Path | None = None,
              keep_cache: bool = False) -> dict[str, Any]:
    """Purge ``run_dir`` (see the module docs); returns what was done.

    Args:
        run_dir: The run directory.
        cache_dir: The response cache to remove the run's entries from (default:
            ``$VSDCODER_CACHE_DIR`` or the user cache directory).
        keep_cache: Leave the response cache alone.

    Raises:
        UsageError: not a run directory, in use, or the response cache could not be purged
            (the run itself is purged then; ``vsdcoder cache purge --run`` retries the cache).
    """
    from vsdcoder.privacy.engine import migrate_legacy_key
    from vsdcoder.store import manifest as mf

    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    lock = _lock(run_dir)
    cache_error: str | None = None
    cache_done: dict[str, Any] = {"path": None, "deleted": 0}
    try:
        db = RunDB(run_dir / "run.db")
        try:
            legacy = migrate_legacy_key(db, run_dir)  # an old pseudonyms.json goes with the key
            if not keep_cache:
                try:
                    cache_done = purge_cache(run_cache_keys(db.db), cache_dir)
                except (OSError, sqlite3.Error) as exc:
                    cache_error = str(exc)
            done = db.purge_texts()
            units = list(db.iter_units())
        finally:
            db.close()
        if (run_dir / "codes.jsonl").exists():
            atomic_write(run_dir / "codes.jsonl", lambda f: f.writelines(
                json.dumps(unit_line(u), ensure_ascii=False) + "\n" for u in units))
        if (run_dir / "codes.csv").exists():
            _rewrite_csv(run_dir / "codes.csv")
        key_deleted = bool(done["pseudonyms"]) or "pseudonyms.json" in legacy
        temps = sorted({*run_dir.glob("*.tmp"), *run_dir.glob(".*.tmp")})
        for t in temps:
            t.unlink(missing_ok=True)
        manifest = mf.read(run_dir) or {}
        removed = ["texts", "contexts", "requests", "responses", "parsed answers", "quotes",
                   "rationales", "error details"]
        if done["batch_requests"]:
            removed.append("batch requests and answers")
        if key_deleted:
            removed.append("pseudonym key")
        if cache_done["deleted"]:
            removed.append("response cache entries")
        record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "units": done["units"], "key_deleted": key_deleted,
                  "pseudonyms_deleted": done["pseudonyms"],
                  "batch_requests_deleted": done["batch_requests"],
                  "cache_entries_deleted": cache_done["deleted"], "removed": removed}
        if cache_error:
            record["cache_error"] = cache_error
        manifest["purges"] = [*manifest.get("purges", []), record]
        mf.write(run_dir, manifest)
        for leftover in ("run.db-wal", "run.db-shm"):  # closed cleanly: normally gone already
            p = run_dir / leftover
            if p.exists() and leftover.endswith("-wal") and p.stat().st_size:
                raise UsageError(f"{p}: could not be checkpointed; close other readers of "
                                 "run.db and purge again")
    finally:
        lock.release()
    if cache_error:
        raise UsageError(f"{run_dir} was purged, but its entries in the response cache were "
                         f"not: {cache_error}. Close other vsdcoder processes, then run "
                         f"'vsdcoder cache purge --run {run_dir}'.")
    return {"units": done["units"], "key_deleted": key_deleted,
            "pseudonyms": done["pseudonyms"], "batch_requests": done["batch_requests"],
            "cache": cache_done, "temp_files": [str(t) for t in temps]}
