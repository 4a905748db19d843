"""The batch tables of run.db (``vsdcoder code --batch``): batches and the requests in them.

``batches`` holds one row per provider batch (its ids, state and counts); ``batch_requests``
one row per request of a unit (its attempt, cache key, status and, once the batch is
ingested, the provider's answer). See :mod:`vsdcoder.coding.batch` for how a run uses them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vsdcoder.store.rundb import PseudonymRows, RunDB


@dataclass
class Answer:
    """A stored answer to one attempt of a unit (a batch output line, error, or cache hit)."""

    attempt: int
    key: str
    status: str  # answered | error | cached
    response: dict[str, Any] | None = None
    error: str | None = None
    created: float | None = None
    answered: float | None = None


@dataclass
class PendingRequest:
    """A request a unit needs next: its attempt number, cache key and request body."""

    unit_id: str
    attempt: int
    key: str
    request: dict[str, Any]
    sent: dict[str, Any] | None = None
    est_cost: float | None = None



class BatchStore:
    """The ``batches`` and ``batch_requests`` tables of a run database."""

    def __init__(self, rundb: RunDB):
        self.rundb = rundb
        self.db = rundb.db

    def _tx(self, fn: Any) -> Any:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            out = fn()
            self.db.execute("COMMIT")
            return out
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def new_batch(self, provider: str, attempt: int, reqs: Sequence[PendingRequest],
                  session: int, keep_sent: bool, pseudonyms: PseudonymRows | None = None
                  ) -> tuple[int, list[str]]:
        """Record a batch about to be uploaded and its requests; returns (n, custom ids).

        ``pseudonyms``: the key of the placeholders the requests carry, stored in the same
        transaction, before anything is sent (a resumed run redacts the units the same way,
        so their stored answers match their requests).
        """
        now = time.time()

        def go() -> tuple[int, list[str]]:
            cur = self.db.execute(
                "INSERT INTO batches(provider, round, state, requests, session, created, updated)"
                " VALUES (?, ?, 'uploading', ?, ?, ?, ?)",
                (provider, attempt, len(reqs), session, now, now))
            n = int(cur.lastrowid or 0)
            ids = [f"vsd-{n}-{i}" for i in range(len(reqs))]
            self.db.executemany(
                "INSERT INTO batch_requests(batch_n, custom_id, unit_id, attempt, key, status,"
                " sent, created) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                [(n, cid, r.unit_id, r.attempt, r.key,
                  json.dumps(r.sent, ensure_ascii=False) if keep_sent and r.sent else None, now)
                 for cid, r in zip(ids, reqs, strict=True)])
            self.rundb.insert_pseudonyms(pseudonyms)
            return n, ids

        return self._tx(go)

    def update(self, n: int, **values: Any) -> None:
        """Set columns of batch ``n``."""
        values["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE batches SET {cols} WHERE n=?", (*values.values(), n))

    def abandon(self, n: int) -> None:
        """Forget a batch that was never submitted; its requests will be prepared again."""
        def go() -> None:
            self.db.execute("DELETE FROM batch_requests WHERE batch_n=?", (n,))
            self.db.execute("UPDATE batches SET state='abandoned', updated=? WHERE n=?",
                            (time.time(), n))
        self._tx(go)

    def batches(self, *states: str) -> list[dict[str, Any]]:
        """Batches in any of ``states`` (all without), oldest first."""
        q = ("SELECT n, batch_id, provider, round, input_file_id, output_file_id, error_file_id,"
             " state, status, requests, bytes, request_counts, error, created, updated"
             " FROM batches")
        args: tuple[str, ...] = ()
        if states:
            q += f" WHERE state IN ({','.join('?' * len(states))})"
            args = states
        keys = ("n", "batch_id", "provider", "round", "input_file_id", "output_file_id",
                "error_file_id", "state", "status", "requests", "bytes", "request_counts",
                "error", "created", "updated")
        return [dict(zip(keys, r, strict=True)) for r in self.db.execute(q + " ORDER BY n", args)]

    def requests_of(self, n: int) -> dict[str, int]:
        """custom_id -> row id of the requests in batch ``n``."""
        return {cid: rid for rid, cid in self.db.execute(
            "SELECT id, custom_id FROM batch_requests WHERE batch_n=?", (n,))}

    def ingest(self, n: int, results: dict[int, tuple[str, dict[str, Any] | None, str | None]]
               ) -> None:
        """Store the outcome of every request of batch ``n`` and mark it ingested."""
        now = time.time()

        def go() -> None:
            self.db.executemany(
                "UPDATE batch_requests SET status=?, response=?, error=?, answered=?"
                " WHERE id=?",
                [(st, json.dumps(resp, ensure_ascii=False) if resp is not None else None, err,
                  now, rid) for rid, (st, resp, err) in results.items()])
            self.db.execute("UPDATE batches SET state='ingested', ingested=?, updated=?"
                            " WHERE n=?", (now, now, n))
        self._tx(go)

    def waiting_units(self) -> set[str]:
        """Units with a request in a batch that has not been ingested."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT r.unit_id FROM batch_requests r JOIN batches b ON r.batch_n=b.n"
            " WHERE r.closed=0 AND b.state IN ('uploading', 'submitting', 'submitted')")}

    def answers(self) -> tuple[dict[str, dict[int, Answer]], dict[str, dict[str, Any]]]:
        """Stored answers of the open units (attempt -> answer), and what was sent (if kept)."""
        out: dict[str, dict[int, Answer]] = {}
        sent: dict[str, dict[str, Any]] = {}
        for uid, attempt, key, status, resp, err, s, created, answered in self.db.execute(
                "SELECT unit_id, attempt, key, status, response, error, sent, created, answered"
                " FROM batch_requests WHERE closed=0 ORDER BY id"):
            if s:
                sent[uid] = json.loads(s)
            if status not in ("answered", "error", "cached"):
                continue
            out.setdefault(uid, {})[attempt] = Answer(
                attempt, key, status, json.loads(resp) if resp else None, err, created, answered)
        return out, sent

    def add_cached(self, unit_id: str, a: Answer) -> None:
        """Record that an attempt of a unit was answered from the response cache."""
        self.db.execute(
            "INSERT INTO batch_requests(unit_id, attempt, key, status, response, created,"
            " answered) VALUES (?, ?, ?, 'cached', ?, ?, ?)",
            (unit_id, a.attempt, a.key, json.dumps(a.response, ensure_ascii=False),
             a.created, a.created))

    def close(self, unit_id: str, keep_text: bool) -> None:
        """The unit is saved: its requests are history (their texts dropped without keep_text)."""
        if keep_text:
            self.db.execute("UPDATE batch_requests SET closed=1 WHERE unit_id=? AND closed=0",
                            (unit_id,))
        else:
            self.db.execute("UPDATE batch_requests SET closed=1, response=NULL, sent=NULL"
                            " WHERE unit_id=? AND closed=0", (unit_id,))

    def close_saved(self, keep_text: bool) -> None:
        """Close the requests of units saved after them (a kill between save and close)."""
        extra = "" if keep_text else ", response=NULL, sent=NULL"
        self.db.execute(
            f"UPDATE batch_requests SET closed=1{extra} WHERE closed=0 AND EXISTS (SELECT 1 FROM"
            " units u WHERE u.id=batch_requests.unit_id AND u.finished >= batch_requests.created)"
            " AND (batch_n IS NULL OR batch_n IN (SELECT n FROM batches WHERE state IN"
            " ('ingested', 'abandoned')))")

    def manifest_rows(self) -> list[dict[str, Any]]:
        """The batches of the run, for the manifest."""
        rows = []
        for b in self.batches():
            if b["state"] == "abandoned" and not b["batch_id"]:
                continue
            rows.append({
                "id": b["batch_id"], "round": b["round"], "state": b["state"],
                "status": b["status"], "requests": b["requests"], "bytes": b["bytes"],
                "input_file_id": b["input_file_id"], "output_file_id": b["output_file_id"],
                "error_file_id": b["error_file_id"],
                "request_counts": json.loads(b["request_counts"]) if b["request_counts"]
                else None,
                "created": _iso(b["created"]), "error": b["error"]})
        return rows


def _iso(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None

