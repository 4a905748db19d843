"""Privacy in a coding run: settings, project file, local-only policy, pseudonyms per unit.

The glue between :class:`~vsdcoder.privacy.pseudonyms.Pseudonymizer` and the coding engine.

- :func:`resolve_settings` merges the arguments of :func:`vsdcoder.code` (or the command line)
  with the ``[privacy]`` section of a project file (``vsdcoder.toml`` or ``vsdcoder.yaml`` in
  the current directory); explicit arguments win.
- :func:`check_local_only` refuses, before anything is read or sent, a model whose endpoint is
  neither the embedded model nor a loopback address.
- :class:`RunPseudonyms` redacts each unit (text and context) with the run's
  :class:`~vsdcoder.privacy.pseudonyms.PseudonymMap` off the event loop (the spans are found
  in a thread, or for a large run in a separate process; placeholders are numbered in file
  order) and says which entities each unit adds to the key, which the run stores in
  ``run.db`` (table ``pseudonyms``, the file owner-only) in the same transaction as the
  unit's result: a unit is never stored without its key, and no key is stored for a unit
  that was not. A run
  directory of an earlier version (``pseudonyms.json``) is migrated on its next session;
  :func:`read_key` reads either, writing nothing (dry runs, ``vsdcoder runs pseudonyms``).
- :func:`apply_redaction` turns a unit's result, whose quotes the model copied from the
  redacted text, into the stored one: quotes and offsets of the original text, or (with
  ``redacted_output``) redacted text everywhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.privacy.pseudonyms import MAP_FORMAT, MAP_VERSION, PseudonymMap, Redacted
from vsdcoder.store.rundb import PseudonymRows

#: Where a run keeps the key to its pseudonyms: a table of ``run.db`` (owner-only).
KEY_TABLE = "pseudonyms"
#: With ``redacted_output`` the key is not kept; only the per-type numbering is (no surfaces).
COUNTERS_TABLE = "pseudonym_counters"
#: The key as earlier versions kept it, in the run directory (migrated into run.db, and the
#: format of ``vsdcoder runs pseudonyms RUN --export FILE``).
MAP_FILE = "pseudonyms.json"
#: The numbering as earlier versions kept it with ``redacted_output`` (migrated into run.db).
COUNTERS_FILE = "pseudonym-counters.json"
#: Project files looked for in the current directory, in this order.
PROJECT_FILES = ("vsdcoder.toml", "vsdcoder.yaml", "vsdcoder.yml")
#: Keys allowed in the project file's ``[privacy]`` section.
PROJECT_KEYS = ("redact", "local_only", "redacted_output")
#: Values of ``--redact`` that mean "no redaction" (to override a project setting).
OFF = ("none", "off", "no", "false")


@dataclass(frozen=True)
class PrivacySettings:
    """The privacy settings of a run, and where they came from."""

    redact: tuple[str, ...] = ()
    local_only: bool = False
    redacted_output: bool = False
    project_file: str | None = None

    def public(self) -> dict[str, Any]:
        """For the manifest."""
        return {"redact": list(self.redact), "local_only": self.local_only,
                "redacted_output": self.redacted_output, "project_file": self.project_file}


# --- the project file ------------------------------------------------------------------------

def find_project_file(directory: str | os.PathLike[str] | None = None) -> Path | None:
    """``vsdcoder.toml`` or ``vsdcoder.yaml`` in ``directory`` (default: the current one)."""
    d = Path(directory) if directory is not None else Path.cwd()
    found = [d / name for name in PROJECT_FILES if (d / name).is_file()]
    if len(found) > 1:
        raise UsageError(f"{found[0]} and {found[1]} both exist; keep one project file")
    return found[0] if found else None


def read_project_privacy(path: Path) -> dict[str, Any]:
    """The ``privacy`` section of a project file, checked.

    Raises:
        UsageError: unreadable file, bad syntax, unknown keys or wrongly typed values.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the project file: {exc}") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(raw.decode("utf-8")) or {}
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with a 'privacy' section")
    section = data.get("privacy")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: 'privacy' must be a section (a mapping of settings)")
    unknown = sorted(set(section) - set(PROJECT_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown privacy setting(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(PROJECT_KEYS)}")
    out: dict[str, Any] = {}
    if "redact" in section:
        v = section["redact"]
        if v is False or v is None:
            v = "none"
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            v = ",".join(v)
        if not isinstance(v, str):
            raise UsageError(f"{path}: privacy.redact must be a string such as "
                             "\"patterns,presidio\" (or \"none\")")
        out["redact"] = v
    for key in ("local_only", "redacted_output"):
        if key in section:
            if not isinstance(section[key], bool):
                raise UsageError(f"{path}: privacy.{key} must be true or false")
            out[key] = section[key]
    return out


def _names(spec: str | Sequence[str] | bool | None) -> tuple[str, ...]:
    from vsdcoder.privacy import parse_redact_spec

    if spec is None or spec is False:
        return ()
    names = parse_redact_spec(spec)  # type: ignore[arg-type]
    if len(names) == 1 and names[0].lower() in OFF:
        return ()
    if any(n.lower() in OFF for n in names):
        raise UsageError(f"--redact '{','.join(names)}': 'none' cannot be combined with "
                         "redactor names")
    return tuple(names)


def resolve_settings(redact: str | Sequence[str] | bool | None = None,
                     local_only: bool | None = None, redacted_output: bool | None = None,
                     directory: str | os.PathLike[str] | None = None,
                     use_project: bool = True) -> PrivacySettings:
    """Privacy settings: explicit arguments, else the project file, else off.

    ``redact=None`` (and ``local_only=None``, ``redacted_output=None``) means "not given": the
    project file decides. ``redact="none"`` turns redaction off whatever the project says.

    Raises:
        UsageError: a bad project file, or ``redacted_output`` without any redactor.
    """
    project: dict[str, Any] = {}
    path = find_project_file(directory) if use_project else None
    if path is not None:
        project = read_project_privacy(path)
    r = redact if redact is not None else project.get("redact")
    lo = local_only if local_only is not None else project.get("local_only", False)
    ro = redacted_output if redacted_output is not None else project.get("redacted_output", False)
    names = _names(r)
    if ro and not names:
        raise UsageError("--redacted-output keeps only redacted text, so it needs redactors: "
                         "add --redact patterns (or patterns,presidio)")
    used = path is not None and bool(project)
    return PrivacySettings(names, bool(lo), bool(ro), str(path) if used else None)


# --- local-only --------------------------------------------------------------------------------

def check_local_only(model: str, api_base: str | None, source: str | None = None) -> None:
    """Refuse a model whose requests would leave this machine.

    Allowed: the embedded model (``local/...``) and servers on a loopback address
    (``localhost``, ``127.0.0.0/8``, ``::1``). Called before any data is read or sent.

    Raises:
        UsageError: the endpoint is elsewhere; the message names it and says how to proceed.
    """
    from vsdcoder.coding.providers import EMBEDDED_MODEL, endpoint

    ep = endpoint(model, api_base)
    if ep.is_local:
        return
    where = f"set in {source}" if source else "--local-only"
    off = (f"remove local_only from {source} or pass --no-local-only" if source
           else "drop --local-only")
    raise UsageError(
        f"local-only ({where}): refusing model '{model}' because {ep.why}. Nothing was sent.\n"
        f"To proceed, use the embedded model (--model {EMBEDDED_MODEL}), a server on this "
        "machine (--model openai/<name> --api-base http://127.0.0.1:<port>/v1, or an Ollama "
        f"model on localhost), or {off} if the text may leave this machine.")


# --- pseudonyms in a run -----------------------------------------------------------------------

def _counts(*redacted: Redacted | None) -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in redacted:
        if r is not None:
            total.update(r.counts)
    return dict(sorted(total.items()))


@dataclass
class RedactedUnit:
    """A unit's text and context as they are sent, with the maps back to the originals."""

    text: Redacted
    context: Redacted | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def send_text(self) -> str:
        """The redacted text."""
        return self.text.text

    @property
    def send_context(self) -> str | None:
        """The redacted context (None without context)."""
        return self.context.text if self.context is not None else None


#: A run with at least this many units to code finds the spans in a separate process: the
#: redactors are CPU-bound Python (libphonenumber, spaCy), and a thread would share the core of
#: the event loop. Smaller runs use one thread (no process start-up to pay).
PROCESS_MIN_UNITS = 500

_FINDER: Any = None  # the redactor of a span-finding process


def _finder_init(names: tuple[str, ...], parent: int) -> None:
    """Start a span-finding process: build the redactors; Ctrl-C is the parent's to handle.

    The process ends by itself if its parent dies (``kill -9``): it would otherwise wait for
    work forever, since it holds its own end of the pipe it reads from.
    """
    import signal
    import threading
    import time

    global _FINDER
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="vsdcoder-parent-watch", daemon=True).start()
    from vsdcoder.privacy import get_redactor

    _FINDER = get_redactor(list(names))


def _find_all(texts: list[str | None]) -> list[Any] | tuple[str, int, str]:
    """The spans of each text (in a span-finding process), or ``("error", index, why)``."""
    out: list[Any] = []
    for i, text in enumerate(texts):
        if not text:
            out.append(None)
            continue
        try:
            out.append(_FINDER.find(text))
        except Exception as exc:
            return ("error", i, f"{type(exc).__name__}: {exc}")
    return out


class RedactionError(Exception):
    """A redactor failed on unit ``index`` of a group; ``error`` is what it raised."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")
        self.index = index
        self.error = error


def _legacy_map(run_dir: Path) -> PseudonymMap | None:
    path = run_dir / MAP_FILE
    return PseudonymMap.load(path) if path.exists() else None


def _legacy_counters(run_dir: Path) -> dict[str, int]:
    path = run_dir / COUNTERS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): int(v) for k, v in data["counters"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: unreadable ({exc}); use a new --out") from None


def read_key(db: sqlite3.Connection | None, run_dir: Path | None = None,
             keep_key: bool = True) -> PseudonymMap:
    """The pseudonym map a run has stored, reading only.

    From ``db`` (the run's ``run.db``; tables missing in a run.db of an earlier version read
    as empty) and from the files of an earlier version in ``run_dir`` that no session has
    migrated yet. Without ``keep_key`` only the numbering is read.

    Raises:
        UsageError: an unreadable key file.
    """
    entities: list[dict[str, Any]] = []
    counters: dict[str, int] = {}
    if run_dir is not None:
        legacy = _legacy_map(run_dir) if keep_key else None
        if legacy is not None:
            d = legacy.to_dict()
            entities += d["entities"]
            counters.update(d["counters"])
        for t, n in _legacy_counters(run_dir).items():
            counters[t] = max(counters.get(t, 0), n)
    if db is not None:
        try:
            if keep_key:
                entities += [{"placeholder": ph, "type": t, "key": k, "surface": s}
                             for ph, t, k, s in db.execute(
                                 f"SELECT placeholder, type, key, surface FROM {KEY_TABLE}"
                                 " ORDER BY rowid")]
            for t, n in db.execute(f"SELECT type, n FROM {COUNTERS_TABLE}"):
                counters[t] = max(counters.get(t, 0), int(n))
        except sqlite3.OperationalError:  # run.db of an earlier version, opened read-only
            pass
    return PseudonymMap.from_dict({"format": MAP_FORMAT, "version": MAP_VERSION,
                                   "counters": counters, "entities": entities})


def migrate_legacy_key(rundb: Any, run_dir: Path) -> list[str]:
    """Move ``pseudonyms.json`` / ``pseudonym-counters.json`` into run.db; returns their names.

    The files are deleted once run.db holds what they held (one committed transaction).
    """
    legacy = _legacy_map(run_dir)
    counters = _legacy_counters(run_dir)
    if legacy is None and not counters:
        return []
    rows = PseudonymRows(counters=dict(counters))
    if legacy is not None:
        d = legacy.to_dict()
        rows.entities = [(e["placeholder"], e["type"], e["key"], e["surface"])
                         for e in d["entities"]]
        for t, n in d["counters"].items():
            rows.counters[t] = max(rows.counters.get(t, 0), int(n))
    db = rundb.db
    db.execute("BEGIN IMMEDIATE")
    try:
        rundb.insert_pseudonyms(rows)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    moved = []
    for name in (MAP_FILE, COUNTERS_FILE):
        if (run_dir / name).exists():
            (run_dir / name).unlink()
            moved.append(name)
    return moved


class RunPseudonyms:
    """The redactors and pseudonym map of one run.

    Args:
        names: Registered redactor names (``("patterns", "presidio")``).
        mapping: The run's map so far (see :meth:`open` and :meth:`read`); a new one without.
        keep_key: Keep the key (the ``pseudonyms`` table of run.db, the file owner-only).
            False with ``redacted_output``: only the per-type numbering is kept
            (``pseudonym_counters``), so a resumed run never reuses a placeholder for
            another entity, though it cannot know an entity seen before.

    Redaction writes nothing: :meth:`rows_for` gives what a unit adds to run.db, to be saved
    with the unit (:meth:`vsdcoder.store.rundb.RunDB.save`), then :meth:`mark_saved`.
    """

    def __init__(self, names: Sequence[str], mapping: PseudonymMap | None = None,
                 keep_key: bool = True):
        from vsdcoder.privacy import get_redactor
        from vsdcoder.privacy.pseudonyms import Pseudonymizer

        self.names = tuple(names)
        self.keep_key = keep_key
        self.pseudonymizer = Pseudonymizer(get_redactor(list(self.names)), mapping)
        self._stored = {e["placeholder"] for e in self.mapping.to_dict()["entities"]}
        self._stored_counts = self.mapping.counts()
        self._executor: Any = None
        self._pool: Any = None  # span-finding processes (see :meth:`use_processes`)
        self._turn: Any = None  # the previous group's placeholders are assigned when done
        #: Units redacted with the spans found in a process / in the redaction thread.
        self.redacted = Counter({"process": 0, "thread": 0})

    @classmethod
    def open(cls, names: Sequence[str], rundb: Any, run_dir: Path, keep_key: bool = True,
             units: int = 0) -> RunPseudonyms:
        """For a coding session: migrate a key of an earlier version, load the stored one.

        With ``keep_key`` run.db (and its WAL files) are made owner-only (mode 0600). With
        ``units`` (to code) of :data:`PROCESS_MIN_UNITS` or more on a machine with several
        cores, spans are found in a separate process (:meth:`use_processes`).
        """
        from vsdcoder.store.rundb import owner_only

        migrate_legacy_key(rundb, Path(run_dir))
        if keep_key:
            owner_only(rundb.path)
        p = cls(names, read_key(rundb.db, None, keep_key), keep_key)
        if units >= PROCESS_MIN_UNITS and (os.cpu_count() or 1) > 1:
            p.use_processes()
        return p

    def use_processes(self, workers: int = 1) -> None:
        """Find spans in ``workers`` separate processes from now on (:meth:`aredact_units`).

        The placeholders are still assigned in this process, in the order the units are
        handed in. If a process cannot start or dies, redaction goes on in a thread.
        """
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_finder_init,
                                         initargs=(self.names, os.getpid()))

    @classmethod
    def read(cls, names: Sequence[str], db: sqlite3.Connection | None, run_dir: Path | None,
             keep_key: bool = True) -> RunPseudonyms:
        """For a dry run: the stored map, read without writing anything."""
        return cls(names, read_key(db, run_dir, keep_key), keep_key)

    @property
    def mapping(self) -> PseudonymMap:
        """The run's map (holds original surfaces: never send it)."""
        return self.pseudonymizer.mapping

    def redact_unit(self, text: str, context: str | None) -> RedactedUnit:
        """Redact a unit's text and context (nothing is written)."""
        rt = self.pseudonymizer.redact(text)
        rc = self.pseudonymizer.redact(context) if context else None
        return RedactedUnit(rt, rc, _counts(rt, rc))

    async def aredact_units(self, units: Sequence[tuple[str, str | None]]
                            ) -> list[RedactedUnit]:
        """Redact ``(text, context)`` pairs in the run's redaction thread, off the event loop.

        One thread, so units are numbered in the order they are handed in.

        Raises:
            RedactionError: a redactor failed; ``index`` says on which unit.
        """
        if self._pool is not None:
            return await self._aredact_in_process(list(units))
        if self._turn is None:
            return await self._aredact_in_thread(list(units))
        # processes were given up: groups still in them are numbered first
        before, mine = self._turn, asyncio.get_running_loop().create_future()
        self._turn = mine
        try:
            await before
            return await self._aredact_in_thread(list(units))
        finally:
            if not mine.done():
                mine.set_result(None)

    async def _aredact_in_thread(self, units: list[tuple[str, str | None]]
                                 ) -> list[RedactedUnit]:
        self.redacted["thread"] += len(units)
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="vsdcoder-redact")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._redact_all, units)

    async def _aredact_in_process(self, units: list[tuple[str, str | None]]
                                  ) -> list[RedactedUnit]:
        from concurrent.futures.process import BrokenProcessPool

        loop = asyncio.get_running_loop()
        before, mine = self._turn, loop.create_future()
        self._turn = mine
        try:
            flat = [x for text, context in units for x in (text, context)]
            try:
                found = await loop.run_in_executor(self._pool, _find_all, flat)
            except (BrokenProcessPool, OSError):  # could not start, or died: go on in a thread
                found = None
            if before is not None:
                await before  # placeholders are numbered in the order units came in
            if found is None:
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
                return await self._aredact_in_thread(units)
            if isinstance(found, tuple):
                raise RedactionError(found[1] // 2, RuntimeError(found[2]))
            out = []
            for i, (text, context) in enumerate(units):
                rt = self.pseudonymizer.redact(text, found[2 * i] or [])
                rc = self.pseudonymizer.redact(context, found[2 * i + 1] or []) \
                    if context else None
                out.append(RedactedUnit(rt, rc, _counts(rt, rc)))
            self.redacted["process"] += len(units)
            return out
        finally:
            if not mine.done():
                mine.set_result(None)

    def _redact_all(self, units: list[tuple[str, str | None]]) -> list[RedactedUnit]:
        out = []
        for i, (text, context) in enumerate(units):
            try:
                out.append(self.redact_unit(text, context))
            except Exception as exc:
                raise RedactionError(i, exc) from exc
        return out

    def rows_for(self, *reds: Any) -> PseudonymRows:
        """What run.db must gain to hold the key of these units (entities, or the numbering).

        Every entity the units' texts use that run.db does not hold yet, including entities
        first seen in units that are not saved yet.
        """
        rows = PseudonymRows()
        seen: set[str] = set()
        for red in reds:
            for r in (getattr(red, "text", None), getattr(red, "context", None)):
                if not isinstance(r, Redacted):
                    continue
                for sp in r.spans:
                    ph = sp.placeholder
                    if ph in seen:
                        continue
                    seen.add(ph)
                    if self.keep_key:
                        if ph not in self._stored:
                            e = self.mapping.entity(ph)
                            if e is not None:
                                rows.entities.append((ph, *e))
                        continue
                    num = ph[len(sp.type) + 2:-1]
                    n = int(num) if num.isdigit() else 0
                    if n > max(self._stored_counts.get(sp.type, 0),
                               rows.counters.get(sp.type, 0)):
                        rows.counters[sp.type] = n
        return rows

    def mark_saved(self, rows: PseudonymRows | None) -> None:
        """Record that ``rows`` are committed to run.db."""
        if not rows:
            return
        self._stored.update(e[0] for e in rows.entities)
        for t, n in rows.counters.items():
            self._stored_counts[t] = max(self._stored_counts.get(t, 0), n)

    def close(self) -> None:
        """Stop the redaction thread and processes (after the redactions under way)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _map_evidence(ev: Mapping[str, Any], red: Redacted) -> dict[str, Any]:
    """Evidence about the redacted text -> evidence about the original text."""
    out = dict(ev)
    quote = ev.get("quote")
    if not quote:
        return out
    if ev.get("start") is not None and ev.get("end") is not None:
        a, b = red.to_original_offsets(int(ev["start"]), int(ev["end"]))
        out.update(quote=red.original[a:b], start=a, end=b)
    else:  # not found in the text: show it with the surfaces put back
        out["quote"] = red.restore(quote)
    return out


def to_original(result: Any, red: Redacted) -> Any:
    """A stored result with quotes and offsets of the original text instead of the redacted one.

    Found quotes become the original passage they stand for (a range touching a placeholder
    widens to the whole entity); quotes not found get the original surfaces put back.
    Rationales and other free text the model wrote keep their placeholders.
    """
    if not isinstance(result, dict):
        return result
    out = dict(result)
    if isinstance(out.get("evidence"), dict):
        out["evidence"] = _map_evidence(out["evidence"], red)
    if isinstance(out.get("records"), list):
        out["records"] = [_map_evidence(r, red) if isinstance(r, dict) else r
                          for r in out["records"]]
    return out


def apply_redaction(res: Any, red: RedactedUnit, redacted_output: bool) -> None:
    """Record the redaction on a unit's result (and its calls) and map its evidence.

    With ``redacted_output`` the unit keeps the redacted text and context and its quotes and
    offsets stay those of the redacted text; otherwise the quotes and offsets are mapped to the
    original text (see :func:`to_original`).
    """
    res.redactions = dict(red.counts)
    for c in res.calls:
        c.redactions = dict(red.counts)
    if redacted_output:
        res.text = red.send_text
        res.context = red.send_context
    elif res.result is not None:
        res.result = to_original(res.result, red.text)


def sum_counts(rows: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    """Counts by type summed over units."""
    total: Counter[str] = Counter()
    for r in rows:
        if r:
            total.update(r)
    return dict(sorted(total.items()))
