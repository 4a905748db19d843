"""The run database (``run.db``): every unit's result and every model call, crash-safe.

SQLite in WAL mode. A unit's result and all its calls are written in one transaction when the
unit finishes, so a ``kill -9`` loses at most the units in flight and never leaves half a unit.
The ``units`` table has the unit id as primary key: a unit is stored exactly once (a retry of a
failed unit replaces its row). Schema changes are append-only migrations (``m001_...``), as in
simonw/llm.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []
migration = MIGRATIONS.append


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    """Units, calls and sessions."""
    _script(db, """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY, started REAL, ended REAL, status TEXT, argv TEXT
        );
        CREATE TABLE units (
            id TEXT PRIMARY KEY, row INTEGER, status TEXT NOT NULL, result TEXT, error TEXT,
            attempts INTEGER, quote_verified INTEGER, tokens_in INTEGER, tokens_out INTEGER,
            cost REAL, cached INTEGER, session INTEGER, finished REAL, text TEXT, context TEXT,
            meta TEXT, duplicate_of TEXT, redactions TEXT
        );
        CREATE INDEX units_row ON units(row);
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY, unit_id TEXT, attempt INTEGER, session INTEGER,
            started REAL, latency REAL, model TEXT, request TEXT, response TEXT,
            parsed TEXT, errors TEXT, tokens_in INTEGER, tokens_out INTEGER,
            cached_tokens INTEGER, cost REAL, cache_hit INTEGER, status TEXT, redactions TEXT
        );
        CREATE INDEX calls_unit ON calls(unit_id);
        """)


@migration
def m002_batches(db: sqlite3.Connection) -> None:
    """Provider batch jobs (``--batch``) and the requests in them (vsdcoder.coding.batch)."""
    _script(db, """
        CREATE TABLE batches (
            n INTEGER PRIMARY KEY, batch_id TEXT UNIQUE, provider TEXT, round INTEGER,
            input_file_id TEXT, output_file_id TEXT, error_file_id TEXT, state TEXT,
            status TEXT, requests INTEGER, bytes INTEGER, request_counts TEXT, error TEXT,
            session INTEGER, created REAL, updated REAL, ingested REAL
        );
        CREATE TABLE batch_requests (
            id INTEGER PRIMARY KEY, batch_n INTEGER, custom_id TEXT, unit_id TEXT NOT NULL,
            attempt INTEGER, key TEXT, status TEXT, response TEXT, error TEXT, sent TEXT,
            closed INTEGER NOT NULL DEFAULT 0, created REAL, answered REAL
        );
        CREATE INDEX batch_requests_unit ON batch_requests(unit_id, closed);
        CREATE INDEX batch_requests_batch ON batch_requests(batch_n, custom_id);
        """)


@migration
def m003_call_groups(db: sqlite3.Connection) -> None:
    """Calls shared by several units (``--units-per-call``): one group id on each unit's row."""
    db.execute("ALTER TABLE calls ADD COLUMN call_group TEXT")
    db.execute("CREATE INDEX calls_group ON calls(call_group)")


@migration
def m004_prompt_parts(db: sqlite3.Connection) -> None:
    """The static part of requests stored once; ``calls_full`` shows requests whole.

    The system message (instructions, codebook, examples) and the tools / response format
    (the schema) are the same in every request of a run: thousands of tokens that would
    otherwise be stored again for every call (~20 KB a call with the Li et al. codebook).
    ``calls.request`` keeps a reference (``content_ref``, ``tools_ref``,
    ``response_format_ref``: a sha256 key of ``prompt_parts``); the view puts them back.
    """
    db.execute("CREATE TABLE prompt_parts (hash TEXT PRIMARY KEY, content TEXT NOT NULL)")
    _calls_full_view(db, CALL_COLUMNS[:-1])


@migration
def m005_pseudonyms(db: sqlite3.Connection) -> None:
    """The key to the pseudonyms (``--redact``), formerly ``pseudonyms.json``.

    Written in the transaction of the unit that first used an entity (or, with ``--batch``,
    of the batch that first sends it), so a unit is never stored without its key. With
    ``--redacted-output`` only ``pseudonym_counters`` is kept (numbers, no surfaces).
    """
    _script(db, """
        CREATE TABLE pseudonyms (
            placeholder TEXT PRIMARY KEY, type TEXT NOT NULL, key TEXT NOT NULL,
            surface TEXT NOT NULL
        );
        CREATE UNIQUE INDEX pseudonyms_entity ON pseudonyms(type, key);
        CREATE TABLE pseudonym_counters (type TEXT PRIMARY KEY, n INTEGER NOT NULL)
        """)


@migration
def m006_call_cache_keys(db: sqlite3.Connection) -> None:
    """Each call's response-cache key, so that the run's cache entries can be found."""
    db.execute("ALTER TABLE calls ADD COLUMN cache_key TEXT")
    db.execute("DROP VIEW calls_full")
    _calls_full_view(db, CALL_COLUMNS)


#: Columns of ``calls`` besides ``request``, in the order of the ``calls_full`` view.
CALL_COLUMNS = ("id", "unit_id", "attempt", "session", "started", "latency", "model",
                "response", "parsed", "errors", "tokens_in", "tokens_out", "cached_tokens",
                "cost", "cache_hit", "status", "redactions", "call_group", "cache_key")


def _calls_full_view(db: sqlite3.Connection, columns: tuple[str, ...]) -> None:
    """``calls_full``: ``calls`` with each request's static parts put back."""
    cols = ", ".join(columns)
    q = f"SELECT {cols}, request AS r FROM calls"
    for path, ref, as_json in PROMPT_PART_REFS:
        value = f"(SELECT content FROM prompt_parts WHERE hash = json_extract(r, '$.{ref}'))"
        if as_json:
            value = f"json({value})"
        q = (f"SELECT {cols}, CASE WHEN json_extract(r, '$.{ref}') IS NULL THEN r ELSE "
             f"json_remove(json_set(r, '$.{path}', {value}), '$.{ref}') END AS r FROM ({q})")
    head = ", ".join(columns[:7])
    tail = ", ".join(columns[7:])
    db.execute(f"CREATE VIEW calls_full AS SELECT {head}, r AS request, {tail} FROM ({q})")


#: Where the static parts of a request go: (JSON path, reference key, stored as JSON).
PROMPT_PART_REFS = (("messages[0].content", "messages[0].content_ref", False),
                    ("tools", "tools_ref", True),
                    ("response_format", "response_format_ref", True))
#: Static parts shorter than this are stored inline.
PROMPT_PART_MIN = 200


def _script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one (executescript would commit the migration's transaction)."""
    for stmt in script.split(";"):
        if stmt.strip():
            db.execute(stmt)


@dataclass
class CallLog:
    """One request to the model (or the cache) for one unit."""

    attempt: int
    started: float
    model: str
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    parsed: Any = None
    errors: list[str] = field(default_factory=list)
    latency: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    cache_hit: bool = False
    status: str = "ok"
    redactions: dict[str, int] | None = None
    #: Set on calls shared by several units (``--units-per-call``): the same id on every
    #: unit's row; request and response are stored on the first unit's row only, and tokens
    #: and cost are split between the units so that sums over ``calls`` stay exact.
    group: str | None = None
    #: The response-cache key of the request (computed from ``request`` when stored if unset).
    cache_key: str | None = None


@dataclass
class PseudonymRows:
    """Pseudonyms to store with a unit (see :meth:`RunDB.save`): what run.db lacks so far.

    ``entities``: ``(placeholder, type, key, surface)`` of entities new to run.db;
    ``counters``: per-type numbering to keep (``--redacted-output``, which keeps no key).
    """

    entities: list[tuple[str, str, str, str]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.entities or self.counters)


@dataclass
class UnitResult:
    """The outcome of coding one unit."""

    id: str
    row: int
    status: str  # coded | failed | skipped | duplicate
    result: Any = None
    error: str | None = None
    attempts: int = 0
    quote_verified: bool | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    cached: bool = False
    text: str | None = None
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    duplicate_of: str | None = None
    redactions: dict[str, int] | None = None
    calls: list[CallLog] = field(default_factory=list)


def _dumps(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, ensure_ascii=False, default=str)


class RunDB:
    """Open (creating or migrating) the run database of a run directory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
            self._parts: set[str] = set()  # prompt_parts keys known to be stored
        except BaseException:  # e.g. a full disk: do not leak the connection
            self.db.close()
            raise

    def _migrate(self) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS _vsdcoder_migrations"
                   " (name TEXT PRIMARY KEY, applied REAL)")
        done = {r[0] for r in db.execute("SELECT name FROM _vsdcoder_migrations")}
        for fn in MIGRATIONS:
            if fn.__name__ not in done:
                db.execute("BEGIN")
                try:
                    fn(db)
                    db.execute("INSERT INTO _vsdcoder_migrations VALUES (?, ?)",
                               (fn.__name__, time.time()))
                    db.execute("COMMIT")
                except BaseException:
                    _rollback(db)
                    raise

    def close(self) -> None:
        """Checkpoint the WAL and close.

        A checkpoint that cannot be written (a full disk) is left for the next open: the WAL
        keeps every committed transaction.
        """
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        finally:
            self.db.close()

    def start_session(self, argv: list[str]) -> int:
        """Record the start of a (possibly resumed) coding session; returns its id.

        Sessions still marked ``running`` were killed (the caller holds the run's lock), and
        are marked ``killed``.
        """
        self.db.execute("UPDATE sessions SET status='killed' WHERE status='running'")
        cur = self.db.execute("INSERT INTO sessions(started, status, argv)"
                              " VALUES (?, 'running', ?)",
                              (time.time(), _dumps(argv)))
        return int(cur.lastrowid or 0)

    def end_session(self, session: int, status: str) -> None:
        """Record how a session ended (finished, interrupted, budget, failed)."""
        self.db.execute("UPDATE sessions SET ended=?, status=? WHERE id=?",
                        (time.time(), status, session))

    def done_ids(self, retry_failed: bool = False) -> set[str]:
        """Ids that need no more work: coded/skipped/duplicate, and failed unless retrying."""
        statuses = ("coded", "skipped", "duplicate") + (() if retry_failed else ("failed",))
        q = f"SELECT id FROM units WHERE status IN ({','.join('?' * len(statuses))})"
        return {r[0] for r in self.db.execute(q, statuses)}

    def _shrink(self, request: dict[str, Any] | None) -> dict[str, Any] | None:
        """``request`` with its static parts replaced by references to ``prompt_parts``.

        Called inside :meth:`save`'s transaction, so a part and the calls that refer to it
        are committed together.
        """
        if not request:
            return request
        out = dict(request)
        msgs = out.get("messages")
        if isinstance(msgs, list) and msgs and isinstance(msgs[0], dict) \
                and msgs[0].get("role") == "system" and isinstance(msgs[0].get("content"), str) \
                and len(msgs[0]["content"]) >= PROMPT_PART_MIN:
            out["messages"] = [{"role": "system",
                                "content_ref": self._part(msgs[0]["content"])}, *msgs[1:]]
        for key in ("tools", "response_format"):
            if out.get(key) is not None:
                raw = json.dumps(out[key], ensure_ascii=False, sort_keys=True)
                if len(raw) >= PROMPT_PART_MIN:
                    del out[key]
                    out[key + "_ref"] = self._part(raw)
        return out

    def _part(self, content: str) -> str:
        import hashlib

        key = "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()
        if key not in self._parts:
            self.db.execute("INSERT OR IGNORE INTO prompt_parts VALUES (?, ?)", (key, content))
            self._parts.add(key)
        return key

    def done_lookup(self, retry_failed: bool = False,
                    session: int | None = None) -> DoneLookup:
        """Like :meth:`done_ids`, but queried per id instead of loaded (flat memory).

        With ``session``, a unit saved in that session counts as done whatever its status
        (with ``retry_failed``, a unit that failed again in this session is not retried in it).
        """
        return DoneLookup(self.db, retry_failed, session)

    def _insert_calls(self, unit_id: str, calls: list[CallLog], session: int,
                      store_text: bool) -> None:
        from vsdcoder.coding.cache import request_key

        db = self.db
        for c in calls:
            key = c.cache_key or (request_key(c.request) if c.request else None)
            db.execute(
                "INSERT INTO calls(unit_id, attempt, session, started, latency, model, request,"
                " response, parsed, errors, tokens_in, tokens_out, cached_tokens, cost,"
                " cache_hit, status, redactions, call_group, cache_key)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (unit_id, c.attempt, session, c.started, c.latency, c.model,
                 _dumps(self._shrink(c.request if store_text or c.request is None
                                     else _strip_request(c.request))),
                 _dumps(c.response if store_text else None), _dumps(c.parsed),
                 _dumps(c.errors), c.tokens_in, c.tokens_out, c.cached_tokens, c.cost,
                 int(c.cache_hit), c.status, _dumps(c.redactions), c.group, key),
            )

    def insert_pseudonyms(self, rows: PseudonymRows | None) -> None:
        """Add pseudonyms (inside the caller's transaction); known entities are ignored."""
        if not rows:
            return
        if rows.entities:
            self.db.executemany("INSERT OR IGNORE INTO pseudonyms(placeholder, type, key,"
                                " surface) VALUES (?, ?, ?, ?)", rows.entities)
        if rows.counters:
            self.db.executemany(
                "INSERT INTO pseudonym_counters(type, n) VALUES (?, ?) ON CONFLICT(type)"
                " DO UPDATE SET n = max(n, excluded.n)", sorted(rows.counters.items()))

    def save_calls(self, unit_id: str, calls: list[CallLog], session: int,
                   store_text: bool = True, pseudonyms: PseudonymRows | None = None) -> None:
        """Log calls already paid for a unit that is not finished (e.g. at a budget stop).

        The unit gets no row: it is coded again next time, and these calls stay in the log
        (and in the run's tokens and cost), since they were paid for, with the pseudonyms
        their requests used.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._insert_calls(unit_id, calls, session, store_text)
            self.insert_pseudonyms(pseudonyms)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            self._parts.clear()
            raise

    def save(self, res: UnitResult, session: int, store_text: bool = True,
             pseudonyms: PseudonymRows | None = None) -> None:
        """Write a unit's result, its calls and the pseudonyms it used in one transaction.

        ``pseudonyms``: the entities of the unit's redacted text and context that run.db does
        not hold yet (``--redact``), so a unit is never stored without its key, nor a key
        of a unit that was not stored.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM calls WHERE unit_id=? AND session=?", (res.id, session))
            self._insert_calls(res.id, res.calls, session, store_text)
            self.insert_pseudonyms(pseudonyms)
            db.execute(
                "INSERT OR REPLACE INTO units(id, row, status, result, error, attempts,"
                " quote_verified, tokens_in, tokens_out, cost, cached, session, finished, text,"
                " context, meta, duplicate_of, redactions)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (res.id, res.row, res.status, _dumps(res.result), res.error, res.attempts,
                 None if res.quote_verified is None else int(res.quote_verified),
                 res.tokens_in, res.tokens_out, res.cost, int(res.cached), session, time.time(),
                 res.text if store_text else None, res.context if store_text else None,
                 _dumps(res.meta), res.duplicate_of, _dumps(res.redactions)),
            )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            self._parts.clear()  # parts inserted in the rolled-back transaction are gone
            raise

    def counts(self) -> dict[str, int]:
        """Number of units per status."""
        q = "SELECT status, COUNT(*) FROM units GROUP BY status"
        return {s: n for s, n in self.db.execute(q)}

    def totals(self) -> dict[str, Any]:
        """Tokens, cost and calls summed over every call of the run.

        A call shared by several units (``--units-per-call``) counts once; its tokens and
        cost are split between the units' rows, so the sums are the call's.
        """
        r = self.db.execute(
            "SELECT COUNT(DISTINCT COALESCE(call_group, 'row:' || id)),"
            " COALESCE(SUM(tokens_in),0), COALESCE(SUM(tokens_out),0),"
            " COALESCE(SUM(cached_tokens),0), COALESCE(SUM(cost),0),"
            " COUNT(DISTINCT CASE WHEN cache_hit THEN COALESCE(call_group, 'row:' || id) END)"
            " FROM calls").fetchone()
        unverified = self.db.execute(
            "SELECT COUNT(*) FROM units WHERE quote_verified = 0").fetchone()[0]
        out = {"calls": r[0], "tokens_in": r[1], "tokens_out": r[2], "cached_tokens": r[3],
               "cost_usd": round(r[4], 6), "cache_hits": r[5],
               "units_quote_unverified": unverified}
        grouped, alone = self.db.execute(
            "SELECT COUNT(DISTINCT unit_id),"
            " COUNT(DISTINCT CASE WHEN status = 'invalid' THEN unit_id END)"
            " FROM calls WHERE call_group IS NOT NULL").fetchone()
        if grouped:  # --units-per-call: how often an answer had to be asked for alone
            out.update(units_in_shared_calls=grouped, units_reasked_alone=alone)
        return out

    def iter_units(self) -> Iterator[dict[str, Any]]:
        """Every stored unit in file order, as dicts with parsed JSON fields."""
        cur = self.db.execute(
            "SELECT id, row, status, result, error, attempts, quote_verified, meta, duplicate_of,"
            " tokens_in, tokens_out, cost, cached FROM units ORDER BY row")
        for r in cur:
            yield {
                "id": r[0], "row": r[1], "status": r[2],
                "result": json.loads(r[3]) if r[3] else None, "error": r[4], "attempts": r[5],
                "quote_verified": None if r[6] is None else bool(r[6]),
                "meta": json.loads(r[7]) if r[7] else {}, "duplicate_of": r[8],
                "tokens_in": r[9], "tokens_out": r[10], "cost": r[11], "cached": bool(r[12]),
            }

    def purge_texts(self) -> dict[str, int]:
        """Remove every stored copy of the coded texts and the key to the pseudonyms.

        Texts, contexts, requests, responses, parsed answers and call errors are removed;
        in each unit's result the quotes and rationales are removed and error messages are
        cut to their first part (they can quote the answer). Batch requests go with their
        answers and what was sent (a request of a batch still running keeps only its ids, so
        that its answer is not paid for twice). The key to the pseudonyms goes; their
        numbering stays in ``pseudonym_counters``, so a resumed run never gives an old
        placeholder to a new entity. Codes, offsets, verification flags, tokens, costs and
        the cache keys of the calls stay. Freed space is overwritten (``secure_delete``), the
        database is rebuilt (``VACUUM``) and the WAL checkpointed and truncated, so no old
        page keeps a text.

        Returns:
            ``units`` touched, ``batch_requests`` deleted, ``pseudonyms`` deleted.
        """
        db = self.db
        db.execute("PRAGMA secure_delete=ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            n = db.execute("UPDATE units SET text=NULL, context=NULL").rowcount
            db.execute("UPDATE calls SET request=NULL, response=NULL, parsed=NULL, errors=NULL")
            db.execute("DELETE FROM prompt_parts")  # the requests' static parts go with them
            self._parts.clear()
            rows = db.execute("SELECT id, result, error FROM units").fetchall()
            for uid, result, error in rows:
                new_result = _dumps(scrub_result(json.loads(result))) if result else None
                db.execute("UPDATE units SET result=?, error=? WHERE id=?",
                           (new_result, scrub_error(error), uid))
            batch = db.execute(
                "DELETE FROM batch_requests WHERE closed=1 OR batch_n IS NULL OR batch_n NOT IN"
                " (SELECT n FROM batches WHERE state IN ('uploading', 'submitting',"
                " 'submitted'))").rowcount
            db.execute("UPDATE batch_requests SET response=NULL, sent=NULL, error=NULL")
            keys = self._drop_key()
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        db.execute("VACUUM")
        checkpoint(db)
        return {"units": n, "batch_requests": batch, "pseudonyms": keys}

    def _drop_key(self) -> int:
        """Delete the pseudonym key, keeping its numbering (inside a transaction)."""
        top: dict[str, int] = {}
        for ph, type_ in self.db.execute("SELECT placeholder, type FROM pseudonyms"):
            num = ph[len(type_) + 2:-1]
            if num.isdigit():
                top[type_] = max(top.get(type_, 0), int(num))
        self.insert_pseudonyms(PseudonymRows(counters=top))
        return self.db.execute("DELETE FROM pseudonyms").rowcount


def checkpoint(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database and truncate it to zero bytes.

    Raises:
        sqlite3.OperationalError: another connection kept the WAL from being emptied (its
            old pages, which may hold deleted text, would stay in the file).
    """
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise sqlite3.OperationalError("database is locked: another process is reading it, "
                                       "so its write-ahead log could not be emptied")


def open_readonly(path: Path) -> sqlite3.Connection:
    """``path`` opened read-only: no migration, no write, works in a read-only directory.

    Raises:
        sqlite3.Error: not a readable SQLite database.
    """
    uri = Path(path).resolve().as_uri()
    db = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:  # a read-only directory: the WAL index cannot be made
        db.close()
        db = sqlite3.connect(uri + "?immutable=1", uri=True, check_same_thread=False)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return db


def owner_only(db_path: Path) -> None:
    """Make the database file and its WAL files readable by the owner only (POSIX)."""
    import os

    if os.name != "posix":
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db_path) + suffix)
        try:
            if p.exists() and p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)
        except OSError:
            pass


class DoneLookup:
    """``uid in lookup``: the unit needs no more work (see :meth:`RunDB.done_ids`).

    One indexed query per id, so resuming a 100,000-unit run holds no set of ids in memory.
    With ``session``, units saved in that session are done too, whatever their status.
    """

    def __init__(self, db: sqlite3.Connection, retry_failed: bool = False,
                 session: int | None = None):
        self.db = db
        self.statuses = {"coded", "skipped", "duplicate"} | (set() if retry_failed
                                                              else {"failed"})
        self.session = session

    def __contains__(self, uid: object) -> bool:
        r = self.db.execute("SELECT status, session FROM units WHERE id=?", (uid,)).fetchone()
        return r is not None and (r[0] in self.statuses
                                  or (self.session is not None and r[1] == self.session))


#: What replaces a removed quote or rationale after ``vsdcoder runs purge``.
PURGED = None


def scrub_result(result: Any) -> Any:
    """A stored result without quote or rationale text (codes and offsets kept)."""
    if not isinstance(result, dict):
        return result
    out = dict(result)
    if isinstance(out.get("evidence"), dict):
        out["evidence"] = dict(out["evidence"], quote=PURGED)
    if "rationale" in out:
        out["rationale"] = PURGED
    if isinstance(out.get("records"), list):
        out["records"] = [dict(r, quote=PURGED, **({"rationale": PURGED} if "rationale" in r
                                                   else {}))
                          if isinstance(r, dict) else r for r in out["records"]]
    return out


def scrub_error(error: str | None) -> str | None:
    """An error message cut before its details, which may quote the text or the answer."""
    if not error or ": " not in error:
        return error
    return error.split(": ", 1)[0] + " (details removed by purge)"


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so.

    After some errors (``SQLITE_FULL``, I/O errors) SQLite rolls the transaction back itself,
    and a ``ROLLBACK`` would raise and hide the original error.
    """
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _strip_request(req: dict[str, Any]) -> dict[str, Any]:
    out = dict(req)
    if "messages" in out:
        out["messages"] = [{"role": m.get("role"), "content": "[not stored: --no-store-text]"}
                           for m in out["messages"]]
    return out


def lock_run_dir(run_dir: Path, then: str):
    """Take the run directory's writer lock or refuse; ``then`` says what to do after waiting."""
    from filelock import FileLock, Timeout

    from vsdcoder.errors import UsageError

    lock = FileLock(str(Path(run_dir) / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"{run_dir} is in use by another vsdcoder process; wait for it to "
                         f"finish, {then}") from None
    return lock


def lock_held(run_dir: Path) -> bool | None:
    """Whether a process holds ``run_dir``'s writer lock (see :func:`lock_run_dir`).

    Probes the lock file without creating or writing anything (a shared, non-blocking
    ``flock`` on a read-only descriptor, released at once). None when it cannot tell (no
    ``fcntl``, as on Windows, or a file system without ``flock``).
    """
    import errno
    import os

    p = Path(run_dir) / ".lock"
    if not p.exists():
        return False
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return True if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES) else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def unit_counts(db_path: Path) -> dict[str, int] | None:
    """Units per status in the run.db at ``db_path``, read-only (no migration, no write).

    Reads what a live run has committed so far. None when there is no such file or it cannot
    be read (not a run database, or no ``units`` table).
    """
    if not Path(db_path).is_file():
        return None
    try:
        db = open_readonly(db_path)
    except sqlite3.Error:
        return None
    try:
        rows = db.execute("SELECT status, COUNT(*) FROM units GROUP BY status").fetchall()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return {s: n for s, n in rows}
