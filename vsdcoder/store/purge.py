"""``vsdcoder runs purge``: remove a run's stored texts and the key to its pseudonyms.

What stays: codes, quote offsets and verification flags, statuses, tokens, costs, the manifest.
What goes: texts, contexts, requests, responses, parsed answers and call errors in run.db; the
quotes and rationales of every unit (run.db, codes.jsonl, codes.csv); error details, which may
quote an answer; ``pseudonyms.json``; leftover ``*.tmp`` files. run.db is rebuilt with freed
space overwritten and its WAL truncated, so no old page keeps a text.
"""

from __future__ import annotations

import csv
import io
import json
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


def purge_run(run_dir: Path) -> dict[str, Any]:
    """Purge ``run_dir`` (see the module docs); returns what was done."""
    from vsdcoder.privacy.engine import MAP_FILE
    from vsdcoder.store import manifest as mf

    run_dir = Path(run_dir)
    lock = _lock(run_dir)
    try:
        db = RunDB(run_dir / "run.db")
        try:
            n = db.purge_texts()
            units = list(db.iter_units())
        finally:
            db.close()
        if (run_dir / "codes.jsonl").exists():
            atomic_write(run_dir / "codes.jsonl", lambda f: f.writelines(
                json.dumps(unit_line(u), ensure_ascii=False) + "\n" for u in units))
        if (run_dir / "codes.csv").exists():
            _rewrite_csv(run_dir / "codes.csv")
        key = run_dir / MAP_FILE
        key_deleted = key.exists()
        if key_deleted:
            key.unlink()
        temps = sorted({*run_dir.glob("*.tmp"), *run_dir.glob(".*.tmp")})
        for t in temps:
            t.unlink(missing_ok=True)
        manifest = mf.read(run_dir) or {}
        record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "units": n, "key_deleted": key_deleted,
                  "removed": ["texts", "contexts", "requests", "responses", "parsed answers",
                              "quotes", "rationales", "error details"]
                  + (["pseudonyms.json"] if key_deleted else [])}
        manifest["purges"] = [*manifest.get("purges", []), record]
        mf.write(run_dir, manifest)
        for leftover in ("run.db-wal", "run.db-shm"):  # closed cleanly: normally gone already
            p = run_dir / leftover
            if p.exists() and leftover.endswith("-wal") and p.stat().st_size:
                raise UsageError(f"{p}: could not be checkpointed; close other readers of "
                                 "run.db and purge again")
    finally:
        lock.release()
    return {"units": n, "key_deleted": key_deleted, "temp_files": [str(t) for t in temps]}
