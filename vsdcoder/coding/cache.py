"""A response cache shared across runs: an identical request is never paid for twice.

The key is a hash of everything that determines the answer: model string, API base, messages,
tools / response format (the schema) and sampling parameters. API keys are never part of the
key or the stored value. The cache lives in ``$VSDCODER_CACHE_DIR`` (default: the user cache
directory, e.g. ``~/.cache/vsdcoder``) as SQLite. It holds model answers, which may quote the
coded texts: treat it like the data (``vsdcoder cache clear`` removes it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
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
    """SQLite-backed map from request key to the raw completion (as JSON)."""

    def __init__(self, directory: Path | None = None):
        d = Path(directory) if directory else default_cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / "responses.db"
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: safe against crashes, no fsync per put
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT,"
                        " created REAL, response TEXT)")

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored completion for ``key``, or None."""
        row = self.db.execute("SELECT response FROM responses WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        """Store a completion (the first one stored for a key wins)."""
        self.db.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)",
                        (key, model, time.time(), json.dumps(response, ensure_ascii=False)))

    def contains(self, key: str) -> bool:
        """Whether ``key`` is cached."""
        return self.db.execute("SELECT 1 FROM responses WHERE key=?", (key,)).fetchone() is not None

    def clear(self) -> int:
        """Delete every cached response; returns how many there were."""
        n = self.db.execute("DELETE FROM responses").rowcount
        self.db.execute("VACUUM")
        return n

    def close(self) -> None:
        """Close the database."""
        self.db.close()
