"""A response cache shared across runs: an identical request is never paid for twice.

The key is a hash of everything that determines the answer: model string, API base, messages,
tools / response format (the schema) and sampling parameters. API keys are never part of the
key or the stored value. The cache lives in ``$VSDCODER_CACHE_DIR`` (default: the user cache
directory, e.g. ``~/.cache/vsdcoder``) as SQLite. It holds model answers, which may quote the
coded texts: treat it like the data (``vsdcoder cache clear`` removes it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
import time
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

    def __init__(self, directory: Path | None = None):
        d = Path(directory) if directory else default_cache_dir()
        self.path = d / "responses.db"
        self.db: sqlite3.Connection | None = None
        self.disabled: str | None = None
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

    def clear(self) -> int:
        """Delete every cached response; returns how many there were.

        Raises:
            OSError: the cache cannot be opened (see :attr:`disabled`).
        """
        if self.db is None:
            raise OSError(f"{self.path}: cannot open the response cache ({self.disabled})")
        n = self.db.execute("DELETE FROM responses").rowcount
        self.db.execute("VACUUM")
        return n

    def close(self) -> None:
        """Close the database."""
        if self.db is not None:
            self.db.close()
            self.db = None
