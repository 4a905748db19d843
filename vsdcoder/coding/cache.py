"""A response cache shared across runs: an identical request is never paid for twice.

The key is a hash of everything that determines the answer: model string, API base, messages,
tools / response format (the schema) and sampling parameters. API keys are never part of the
key or the stored value. The cache lives in ``$VSDCODER_CACHE_DIR`` (default: the user cache
directory, e.g. ``~/.cache/vsdcoder``) as SQLite (``responses.db``). It holds model answers,
which may quote the coded texts: treat it like the data. ``vsdcoder cache info`` shows where it
is and how big; ``vsdcoder cache clear`` empties it; ``vsdcoder cache purge --run RUN`` (and
``vsdcoder runs purge``) removes the entries a run used: each call in a run's ``run.db`` records
its cache key. Deleted entries are overwritten, the file rebuilt and its write-ahead log
emptied (:meth:`ResponseCache.delete`), so no deleted answer stays in the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Request fields that change the answer and therefore the cache key.
KEY_FIELDS = ("model", "api_base", "messages", "tools", "tool_choice", "response_format",
              "temperature", "top_p", "seed", "max_tokens", "stop")


def default_cache_dir() -> Path:
    """``$VSDCODER_CACHE_DIR`` or the platform's user cache directory for vsdcoder."""
    env = os.environ.get("VSDCODER_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsdcoder", appauthor=False))


#: The cache's database file in its directory.
CACHE_FILE = "responses.db"


def request_key(kwargs: dict[str, Any]) -> str:
    """Hash of the answer-determining fields of a completion request."""
    picked = {k: kwargs.get(k) for k in KEY_FIELDS if kwargs.get(k) is not None}
    raw = json.dumps(picked, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ResponseCache:
    """SQLite-backed map from request key to the raw completion (as JSON).

    The cache is an optimisation, so it never stops a run: if its directory cannot be
    created or written (a full disk, a read-only or foreign directory) or its database is
    unreadable, one warning goes to stderr and the run goes on without it (every request then
    goes to the model; nothing is lost). :attr:`disabled` says why it is off.
    """

    def __init__(self, directory: Path | None = None, warn: bool = True):
        d = Path(directory) if directory else default_cache_dir()
        self.path = d / CACHE_FILE
        self.db: sqlite3.Connection | None = None
        self.disabled: str | None = None
        self.warn = warn
        try:
            d.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL: safe against crashes, no fsync per put
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY,"
                            " model TEXT, created REAL, response TEXT)")
        except (OSError, sqlite3.Error) as exc:
            self._disable(exc)

    def _disable(self, exc: BaseException) -> None:
        """Stop using the cache for the rest of this run, with one warning."""
        if self.disabled is not None:
            return
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.disabled = detail
        if self.warn:
            print(f"warning: the response cache {self.path} cannot be used ({detail}); going on "
                  "without it (answers are not cached). Free space or set VSDCODER_CACHE_DIR, "
                  "or pass --no-cache.", file=sys.stderr, flush=True)
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
            self.db = None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored completion for ``key``, or None (also when the cache is off)."""
        if self.db is None:
            return None
        try:
            row = self.db.execute("SELECT response FROM responses WHERE key=?",
                                  (key,)).fetchone()
        except sqlite3.Error as exc:
            self._disable(exc)
            return None
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        """Store a completion (the first one stored for a key wins); a failure turns it off."""
        if self.db is None:
            return
        try:
            self.db.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)",
                            (key, model, time.time(), json.dumps(response, ensure_ascii=False)))
        except sqlite3.Error as exc:
            self._disable(exc)

    def contains(self, key: str) -> bool:
        """Whether ``key`` is cached."""
        if self.db is None:
            return False
        try:
            return self.db.execute("SELECT 1 FROM responses WHERE key=?",
                                   (key,)).fetchone() is not None
        except sqlite3.Error as exc:
            self._disable(exc)
            return False

    @classmethod
    def open_existing(cls, directory: Path | None = None) -> ResponseCache | None:
        """The cache in ``directory`` if it has one (nothing is created), else None.

        Raises:
            OSError: the cache exists but cannot be opened.
        """
        d = Path(directory) if directory else default_cache_dir()
        if not (d / CACHE_FILE).is_file():
            return None
        cache = cls(d, warn=False)
        if cache.db is None:
            raise OSError(f"{cache.path}: cannot open the response cache ({cache.disabled})")
        return cache

    def _conn(self) -> sqlite3.Connection:
        if self.db is None:
            raise OSError(f"{self.path}: cannot open the response cache ({self.disabled})")
        return self.db

    def info(self) -> dict[str, Any]:
        """Location, size on disk (with the WAL files), entries, entries by model, dates."""
        db = self._conn()
        n, first, last = db.execute(
            "SELECT COUNT(*), MIN(created), MAX(created) FROM responses").fetchone()
        models = dict(db.execute("SELECT COALESCE(model, '?'), COUNT(*) FROM responses"
                                 " GROUP BY model ORDER BY COUNT(*) DESC"))
        return {"path": str(self.path), "directory": str(self.path.parent),
                "bytes": files_size(self.path), "entries": n, "models": models,
                "oldest": _iso(first), "newest": _iso(last)}

    def clear(self) -> int:
        """Delete every cached response, leaving no trace in the file; returns how many.

        Raises:
            OSError: the cache cannot be opened (see :attr:`disabled`).
            sqlite3.OperationalError: another process holds the cache open (see
                :meth:`delete`).
        """
        db = self._conn()
        db.execute("PRAGMA secure_delete=ON")
        n = db.execute("DELETE FROM responses").rowcount
        self._scrub()
        return n

    def delete(self, keys: Iterable[str]) -> int:
        """Delete the entries of ``keys``, leaving no trace in the file; returns how many.

        Freed space is overwritten (``secure_delete``), the file is rebuilt (``VACUUM``) and
        its write-ahead log copied back and truncated to zero bytes.

        Raises:
            OSError: the cache cannot be opened (see :attr:`disabled`).
            sqlite3.OperationalError: another process reads the cache, so its log could not
                be emptied (the entries are deleted; run it again once that process ends).
        """
        db = self._conn()
        db.execute("PRAGMA secure_delete=ON")
        keys = list(dict.fromkeys(keys))
        n = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                n += db.execute(f"DELETE FROM responses WHERE key IN "
                                f"({','.join('?' * len(chunk))})", chunk).rowcount
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._scrub()
        return n

    def _scrub(self) -> None:
        """Rebuild the file and empty the WAL, so no deleted entry stays in either."""
        from vsdcoder.store.rundb import checkpoint

        db = self._conn()
        db.execute("VACUUM")
        checkpoint(db)

    def close(self) -> None:
        """Close the database."""
        if self.db is not None:
            self.db.close()
            self.db = None


def files_size(path: Path) -> int:
    """Bytes of a SQLite database with its ``-wal``, ``-shm`` and ``-journal`` files."""
    total = 0
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            total += Path(str(path) + suffix).stat().st_size
    return total


def _iso(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None
