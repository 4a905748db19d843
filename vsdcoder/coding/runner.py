"""Run a codebook over a data file: bounded concurrency, rate limits, budget, resume, progress.

Units stream from the file through a bounded queue to ``concurrency`` workers; each finished
unit is committed to ``run.db`` at once, so stopping (Ctrl-C, budget, kill -9) loses at most
the units in flight, and the same command with the same ``--out`` codes only what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
import time
import warnings
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.coding.coder import (
    BudgetExceeded,
    LLMCoder,
    ModelSettings,
    ProviderRejected,
    run_sync,
)
from vsdcoder.data.read import (
    DataSpec,
    DataWarning,
    Skip,
    Unit,
    UnitReader,
    check_data,
    file_hash,
    sample_units,
)
from vsdcoder.errors import UsageError
from vsdcoder.privacy.engine import PrivacySettings, RunPseudonyms
from vsdcoder.store.rundb import DoneLookup, RunDB, UnitResult


@dataclass
class CodeConfig:
    """Everything a coding run needs (the CLI and :func:`vsdcoder.code` build one)."""

    data: DataSpec
    codebook: str | Path
    settings: ModelSettings
    out: Path | None = None
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    retry_failed: bool = False
    use_cache: bool = True
    cache_dir: Path | None = None
    dry_run: bool = False
    limit: int | None = None
    sample: int | None = None
    sample_seed: int = 0
    budget: float | None = None
    store_text: bool = True
    progress: bool = True
    units_per_call: int = 1
    argv: list[str] = field(default_factory=list)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    batch: bool = False  # submit through the provider's batch API (vsdcoder.coding.batch)
    batch_poll: float = 30.0  # seconds between polls of submitted batches
    batch_size: int | None = None  # at most this many requests per batch (default: provider's)


@dataclass
class RunSummary:
    """What a run did; ``status`` is finished, interrupted, budget or dry-run."""

    run_dir: Path | None
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)
    coded_this_session: int = 0
    elapsed: float = 0.0
    dry_run: dict[str, Any] | None = None
    privacy: dict[str, Any] | None = None


class Budget:
    """A hard spending limit: no call starts once spent + the expected cost of a call > limit."""

    def __init__(self, limit: float | None, spent: float = 0.0):
        self.limit = limit
        self.spent = spent
        self.calls = 0

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` if the next call could cross the limit."""
        if self.limit is None:
            return
        expected = self.spent / self.calls if self.calls else 0.0
        if self.spent + expected > self.limit:
            raise BudgetExceeded(f"budget ${self.limit:.4f} reached (spent ${self.spent:.4f})")

    def add(self, cost: float) -> None:
        """Record the cost of a finished call."""
        self.spent += cost
        self.calls += 1


class RateLimiter:
    """Requests-per-minute and estimated tokens-per-minute limits (aiolimiter leaky buckets)."""

    def __init__(self, rpm: float | None, tpm: float | None):
        from aiolimiter import AsyncLimiter

        # one request per 60/rpm seconds: a bucket of size rpm would let a burst of rpm requests
        # through at the start and so up to 2 x rpm in the first minute
        self.rpm = AsyncLimiter(1, 60 / rpm) if rpm else None
        self.tpm = AsyncLimiter(tpm, 60) if tpm else None
        self.tpm_max = tpm

    async def acquire(self, kwargs: dict[str, Any]) -> None:
        """Wait until one more request (of its estimated token size) is allowed."""
        if self.rpm:
            await self.rpm.acquire()
        if self.tpm:
            chars = sum(len(str(m.get("content") or "")) for m in kwargs.get("messages", []))
            expected = chars / 4 + (kwargs.get("max_tokens") or 256)
            tokens = min(float(self.tpm_max or 1), max(1.0, expected))
            await self.tpm.acquire(tokens)


def default_run_dir(codebook: str, model: str) -> Path:
    """``runs/<codebook>-<model>-<UTC time>``."""
    slug = "".join(ch if ch.isalnum() or ch in "-._" else "-" for ch in f"{codebook}-{model}")
    return Path("runs") / f"{slug}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def _lock(run_dir: Path):
    from vsdcoder.store.rundb import lock_run_dir

    return lock_run_dir(run_dir, "or use another --out")


#: Files of a run directory written in place (the others are replaced, which needs only the
#: directory to be writable).
_WRITTEN_IN_PLACE = ("run.db", "run.db-wal", "run.db-shm")


def _check_writable(run_dir: Path) -> None:
    """Refuse, before anything is written or sent, a run directory that cannot be written.

    Raises:
        UsageError: the directory cannot be created, is read-only (or not ours), or the disk
            is full.
    """
    import os

    from vsdcoder.store.failures import store_error

    if not run_dir.exists():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{run_dir}: cannot create the run directory "
                             f"({exc.strerror or exc}); choose another --out") from None
    probe = run_dir / f".write-test-{os.getpid()}"  # per process: two may probe at once
    try:
        probe.write_bytes(b"ok")
        for name in _WRITTEN_IN_PLACE:
            p = run_dir / name
            if p.exists() and not os.access(p, os.W_OK):
                raise PermissionError(13, "Permission denied", str(p))
    except OSError as exc:
        raise store_error(exc, run_dir, started=False) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _from_store(exc: BaseException, run_dir: Path) -> bool:
    """Whether ``exc`` is a failure to write the run directory (not e.g. the data file)."""
    from vsdcoder.store.failures import storage_problem

    if storage_problem(exc, run_dir) is None:
        return False
    name = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and name:
        try:
            return Path(name).resolve().is_relative_to(run_dir.resolve())
        except (OSError, ValueError):
            return False
    return True


def _quiet_cancelled_calls() -> None:
    """Hide the warning a cancelled LiteLLM call leaves behind.

    ``litellm.acompletion`` builds the request coroutine in a thread; when the worker is
    cancelled meanwhile (Ctrl-C, a stop after a full disk) nobody awaits it, and Python would
    print "RuntimeWarning: coroutine '...acompletion' was never awaited" under the message.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r"coroutine '.*acompletion' was never awaited",
                            category=RuntimeWarning)


class _StoreFailed(Exception):
    """A write to the run directory failed during a session (carried out of the workers)."""

    def __init__(self, exc: BaseException, in_flight: int = 0):
        super().__init__(str(exc))
        self.exc = exc
        self.in_flight = in_flight


def units_to_code(cfg: CodeConfig, reader: UnitReader) -> Iterator[Unit]:
    """The units of the data file this run codes: all, the first ``limit``, or the sample."""
    it: Iterator[Unit] = iter(reader)
    if cfg.sample:
        it = iter(sample_units(it, cfg.sample, cfg.sample_seed))
    if cfg.limit is not None:
        def limited(src: Iterator[Unit], n: int) -> Iterator[Unit]:
            for i, u in enumerate(src):
                if i >= n:
                    return
                yield u
        it = limited(it, cfg.limit)
    return it


def run_coding(cfg: CodeConfig) -> RunSummary:
    """Code every unit of ``cfg.data`` (see module docs); returns a summary.

    Raises:
        UsageError: bad data, codebook, options, or a run directory in use / incompatible.
    """
    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.codebook.load import load_codebook
    from vsdcoder.store import manifest as mf

    if cfg.privacy.local_only:  # before anything is read, let alone sent
        from vsdcoder.privacy.engine import check_local_only

        check_local_only(cfg.settings.model, cfg.settings.api_base, cfg.privacy.project_file)
    if cfg.privacy.redact:  # unknown names and missing extras fail before any work
        from vsdcoder.privacy import get_redactor

        get_redactor(list(cfg.privacy.redact))
    loaded = load_codebook(cfg.codebook)
    compiled = compile_codebook(loaded.codebook,
                                search=[loaded.directory] if loaded.directory else None)
    if cfg.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if cfg.units_per_call < 1:
        raise UsageError("--units-per-call must be at least 1")
    if cfg.units_per_call > 1:
        from vsdcoder.codebook.multi import MultiCodebook

        MultiCodebook(compiled)  # a codebook that cannot be coded K at a time fails now
    if cfg.batch:  # refused before any work if the provider has no batch API
        from vsdcoder.coding.batch import check_batch

        check_batch(cfg)
    if cfg.settings.model.startswith("local/"):
        cfg.concurrency = 1  # one llama.cpp context in this process
    data_hash = file_hash(cfg.data.path) if cfg.data.path.exists() else None
    if data_hash is None:
        raise UsageError(f"{cfg.data.path}: no such data file")

    # the whole file is checked (every problem at once) before anything is made on disk or a
    # model is loaded; repeated ids left out by dedupe_ids="first" are reported as warnings
    for message in check_data(cfg.data).warnings(cfg.data):
        warnings.warn(message, DataWarning, stacklevel=2)

    cache = None
    if cfg.use_cache:
        from vsdcoder.coding.cache import ResponseCache

        cache = ResponseCache(cfg.cache_dir)

    if cfg.dry_run:
        if cfg.batch:
            from vsdcoder.coding.batch_dry import batch_dry_run

            return batch_dry_run(cfg, compiled, cache)
        return dry_run_summary(cfg, compiled, cache)

    run_dir = cfg.out or default_run_dir(loaded.codebook.name, cfg.settings.model)
    _check_writable(run_dir)
    lock = _lock(run_dir)
    try:
        prior = mf.read(run_dir)
        if prior is not None:
            mf.check_compatible(prior, compiled, cfg, data_hash)
            if not cfg.batch and (prior.get("batch") or {}).get("in_flight"):
                from vsdcoder.coding.batch import in_flight_error

                raise in_flight_error(prior, run_dir)
        try:
            db = RunDB(run_dir / "run.db")
            try:
                if cfg.batch:
                    from vsdcoder.coding.batch import run_batch

                    return run_batch(cfg, compiled, loaded, db, run_dir, cache, data_hash,
                                     prior)
                return _run(cfg, compiled, loaded, db, run_dir, cache, data_hash, prior)
            finally:
                db.close()
        except (OSError, sqlite3.Error) as exc:  # a full disk, a read-only directory...
            if not _from_store(exc, run_dir):
                raise
            from vsdcoder.store.failures import store_error

            raise store_error(exc, run_dir) from None
    finally:
        lock.release()
        if cache is not None:
            cache.close()


def _run(cfg, compiled, loaded, db: RunDB, run_dir: Path, cache, data_hash: str,
         prior: dict[str, Any] | None) -> RunSummary:
    from vsdcoder.store import manifest as mf

    done = db.done_lookup(cfg.retry_failed)
    reader = UnitReader(cfg.data)
    # a first streaming pass counts the work for the progress bar (and validates the file
    # before any call is paid for, and before the session and manifest are written: bad data
    # must not leave a session 'running' forever)
    todo = sum(1 for u in units_to_code(cfg, reader) if u.id not in done)

    pseudonyms = None
    if cfg.privacy.redact:  # loads the key of a resumed run: the numbering goes on
        pseudonyms = RunPseudonyms.open(cfg.privacy.redact, db, run_dir,
                                        keep_key=not cfg.privacy.redacted_output, units=todo)

    session = db.start_session(cfg.argv)
    started = time.time()
    manifest = mf.build(cfg, compiled, loaded, data_hash, run_dir, prior)
    mf.write(run_dir, manifest)
    for skip in reader.skips:
        save_skip(db, skip, session, cfg.store_text)

    budget = Budget(cfg.budget, 0.0)
    limiter = RateLimiter(cfg.rpm, cfg.tpm) if (cfg.rpm or cfg.tpm) else None
    coder = LLMCoder(compiled, cfg.settings, cache=cache, limiter=limiter, budget=budget)
    status = "finished"
    coded = 0
    from vsdcoder.cli.output import CodingProgress  # counts stay visible at 80 columns

    progress = CodingProgress(todo, cfg.progress)
    control: dict[str, Any] = {}

    def interrupt() -> None:  # Ctrl-C while the loop runs in a worker thread (a notebook)
        if "loop" in control:
            control["loop"].call_soon_threadsafe(control["interrupt"])

    failure: _StoreFailed | None = None
    try:
        coded, status = run_sync(_work(cfg, coder, db, session, done, progress, control,
                                       pseudonyms), on_interrupt=interrupt)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        progress.close()
        if pseudonyms is not None:
            pseudonyms.close()
        failure = control.get("store_failure")
        if failure is not None:
            from vsdcoder.store.failures import FULL, storage_problem

            full = storage_problem(failure.exc, run_dir) == FULL
            status = "disk_full" if full else "store_failed"
        manifest, late = _end_session(db, session, status, run_dir, compiled, cfg, manifest,
                                      started)
        failure = failure or late
    if failure is not None:
        from vsdcoder.store.failures import store_error

        raise store_error(failure.exc, run_dir, in_flight=failure.in_flight)
    if status == "redaction_failed":
        raise UsageError(
            f"redaction failed, so the run stopped before sending that unit: "
            f"{control.get('error')}\nUnits coded so far are saved in {run_dir}.")
    if status == "rejected":
        raise UsageError(
            f"the provider refused the request: {control.get('error')}\nCheck the API key "
            "(e.g. OPENAI_API_KEY), the model name and --api-base. Units coded so far are saved "
            f"in {run_dir}; run the same command again to resume.")
    return RunSummary(run_dir, status, db.counts(), db.totals(), coded, time.time() - started,
                      privacy=manifest.get("privacy"))


def _end_session(db: RunDB, session: int, status: str, run_dir: Path, compiled,
                 cfg: CodeConfig, manifest: dict[str, Any],
                 started: float) -> tuple[dict[str, Any], _StoreFailed | None]:
    """Record how the session ended, then rewrite ``codes.*`` and the manifest.

    A step that cannot write the run directory (disk full, read-only) does not stop the next
    ones; each leaves the previous version of what it writes. Returns the manifest and the
    first such failure, if any.
    """
    from vsdcoder.store import manifest as mf
    from vsdcoder.store.exports import write_exports

    failure: _StoreFailed | None = None

    def step(fn: Any) -> None:
        nonlocal failure
        try:
            fn()
        except (OSError, sqlite3.Error) as exc:
            if not _from_store(exc, run_dir):
                raise
            failure = failure or _StoreFailed(exc)

    step(lambda: db.end_session(session, status))
    step(lambda: write_exports(db, run_dir, compiled.codebook, list(cfg.data.meta_cols)))
    manifest = mf.finish(manifest, db, status, started)
    step(lambda: mf.write(run_dir, manifest))
    return manifest, failure


def save_skip(db: RunDB, skip: Skip, session: int, store_text: bool) -> None:
    """Store a unit the reader skipped (empty text, duplicate, ...) with its reason."""
    status = "duplicate" if skip.duplicate_of else "skipped"
    db.save(UnitResult(id=skip.id, row=skip.row, status=status, error=skip.reason,
                       duplicate_of=skip.duplicate_of, meta=skip.meta), session, store_text)


async def _work(cfg: CodeConfig, coder: LLMCoder, db: RunDB, session: int, done: Container[str],
                progress: Any, control: dict[str, Any] | None = None,
                pseudonyms: RunPseudonyms | None = None) -> tuple[int, str]:
    queue: asyncio.Queue[list[Unit] | None] = asyncio.Queue(maxsize=cfg.concurrency * 2)
    k = max(1, cfg.units_per_call)
    stop = asyncio.Event()
    state: dict[str, Any] = {"status": "finished", "coded": 0, "error": None, "in_flight": 0}
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task] = []

    def on_sigint() -> None:
        _quiet_cancelled_calls()
        if state["status"] == "finished":
            state["status"] = "interrupted"
            stop.set()
            for t in tasks:
                t.cancel()

    def on_store_failure(exc: BaseException) -> None:
        """A write to the run directory failed (disk full, read-only...): stop everything.

        The units in flight are not saved (the next run codes them); the other workers are
        cancelled, so no further unit is saved, or marked failed, after the failure.
        """
        _quiet_cancelled_calls()
        if "store_failure" not in state:
            state["store_failure"] = _StoreFailed(exc, state["in_flight"])
            state["status"] = "store_failed"
        stop.set()
        me = asyncio.current_task()
        for t in tasks:
            if t is not me:
                t.cancel()

    if control is not None:
        control.update(loop=loop, interrupt=on_sigint)
    installed = False
    if sys.platform != "win32":
        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
        except (RuntimeError, ValueError):  # not the main thread
            pass

    async def produce() -> None:
        reader = UnitReader(cfg.data)
        group: list[Unit] = []
        try:
            for unit in units_to_code(cfg, reader):
                if stop.is_set():
                    break
                if unit.id in done:
                    continue
                group.append(unit)
                if len(group) == k:
                    await queue.put(group)
                    group = []
            if group and not stop.is_set():
                await queue.put(group)
        finally:
            # one end marker per worker; once stopped (Ctrl-C, budget) the workers may be gone,
            # so never wait on a full queue then (that would hang the run forever)
            for _ in range(cfg.concurrency):
                if stop.is_set():
                    try:
                        queue.put_nowait(None)
                    except asyncio.QueueFull:
                        break
                else:
                    await queue.put(None)

    async def work() -> None:
        while True:
            units = await queue.get()
            if units is None or stop.is_set():
                return
            state["in_flight"] += len(units)
            reds: list[Any] = []
            if pseudonyms is not None:  # off the event loop; the key is saved with the units
                try:
                    reds = await pseudonyms.aredact_units([(u.text, u.context) for u in units])
                except Exception as exc:  # never send a text that could not be redacted
                    from vsdcoder.privacy.engine import RedactionError

                    uid, err = units[0].id, exc
                    if isinstance(exc, RedactionError):
                        uid, err = units[exc.index].id, exc.error
                    if state["status"] == "finished":
                        state["status"] = "redaction_failed"
                        state["error"] = f"unit {uid}: {type(err).__name__}: {str(err)[:300]}"
                    stop.set()
                    return
            try:
                if len(units) > 1:
                    results = await coder.code_group(
                        units, [(r.send_text, r.send_context) for r in reds] or None)
                elif reds:
                    results = [await coder.code(units[0], send_text=reds[0].send_text,
                                                send_context=reds[0].send_context)]
                else:
                    results = [await coder.code(units[0])]
            except BudgetExceeded as exc:
                if state["status"] == "finished":
                    state["status"] = "budget"
                stop.set()
                # calls already paid for units that are not finished: logged, so the run's
                # cost is what was spent (the units are coded on the next run)
                for uid, paid in getattr(exc, "spent", []):
                    rows = pseudonyms.rows_for(*reds) if pseudonyms is not None else None
                    try:
                        if rows is None:
                            db.save_calls(uid, paid, session, cfg.store_text)
                        else:
                            db.save_calls(uid, paid, session, cfg.store_text, pseudonyms=rows)
                    except (OSError, sqlite3.Error) as store_exc:
                        if not _from_store(store_exc, db.path.parent):
                            raise
                        on_store_failure(store_exc)
                        return
                    if pseudonyms is not None:
                        pseudonyms.mark_saved(rows)
                # a multi-unit call stopped by the budget: keep the answers it already paid for
                results = list(exc.partial or [])
                if not any(r is not None for r in results):
                    return
            except ProviderRejected as exc:
                if state["status"] == "finished":
                    state["status"] = "rejected"
                    state["error"] = str(exc)
                stop.set()
                return
            for i, res in enumerate(results):
                if res is None:  # not finished before the budget stop: coded next time
                    continue
                rows = None
                if reds and pseudonyms is not None:
                    from vsdcoder.privacy.engine import apply_redaction

                    apply_redaction(res, reds[i], cfg.privacy.redacted_output)
                    # every entity of the request: a shared call stores all units' texts
                    rows = pseudonyms.rows_for(*reds)
                try:
                    if rows is None:
                        db.save(res, session, cfg.store_text)
                    else:
                        db.save(res, session, cfg.store_text, pseudonyms=rows)
                except (OSError, sqlite3.Error) as exc:
                    if not _from_store(exc, db.path.parent):
                        raise
                    on_store_failure(exc)  # the unit was not saved: coded again next time
                    return
                if rows is not None and pseudonyms is not None:
                    pseudonyms.mark_saved(rows)
                state["in_flight"] -= 1
                state["coded"] += 1
                progress.advance(res)

    producer = asyncio.create_task(produce())
    tasks = [asyncio.create_task(work()) for _ in range(cfg.concurrency)]
    try:
        await asyncio.gather(*tasks, return_exceptions=False)
    except asyncio.CancelledError:
        pass
    finally:
        stop.set()
        producer.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(producer, *tasks, return_exceptions=True)
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
    if control is not None:
        control["error"] = state["error"]
        control["store_failure"] = state.get("store_failure")
    return state["coded"], state["status"]


def dry_run_summary(cfg: CodeConfig, compiled, cache) -> RunSummary:
    """Prompt of the first unit, number of calls, estimated tokens and cost of uncached calls."""
    reader = UnitReader(cfg.data)
    db = open_run_readonly(cfg.out)  # a dry run writes nothing, even to a run directory
    done: Container[str] = set() if db is None else DoneLookup(db, cfg.retry_failed)
    coder = LLMCoder(compiled, cfg.settings, cache=None)
    pseudonyms = None
    if cfg.privacy.redact:  # what would be sent; the run's key is read, never written
        pseudonyms = RunPseudonyms.read(cfg.privacy.redact, db,
                                        cfg.out if cfg.out and cfg.out.is_dir() else None,
                                        keep_key=not cfg.privacy.redacted_output)
    first: tuple[Unit, str, str | None] | None = None
    n_calls = 0
    n_cached = 0
    tokens_in = 0
    counts: list[dict[str, int]] = []
    sys_tokens = count_tokens(cfg.settings.model, compiled.system)
    k = max(1, cfg.units_per_call)
    group: list[tuple[str, str | None]] = []
    first_messages: list[dict[str, str]] = []
    n_units = uncached_units = 0

    def count_call() -> None:  # one request for the units in ``group``
        nonlocal n_calls, n_cached, tokens_in, n_units, uncached_units
        if not first_messages:
            first_messages.extend(compiled.messages(*group[0]) if len(group) == 1 else
                                  coder.multi.messages([(str(i + 1), t, c)
                                                        for i, (t, c) in enumerate(group)]))
        n_calls += 1
        n_units += len(group)
        if cache is not None and cache.contains(coder.group_request_key(group)):
            n_cached += 1
        else:
            uncached_units += len(group)
            tokens_in += sys_tokens + sum(len(compiled.user_message(t, c)) // 4
                                          for t, c in group)
        group.clear()

    try:
        for unit in units_to_code(cfg, reader):
            if unit.id in done:
                continue
            text, context = unit.text, unit.context
            if pseudonyms is not None:
                red = pseudonyms.redact_unit(unit.text, unit.context)
                text, context = red.send_text, red.send_context
                counts.append(red.counts)
            first = first or (unit, text, context)
            group.append((text, context))
            if len(group) == k:
                count_call()
        if group:
            count_call()
    finally:
        if db is not None:
            db.close()
    est_out = 150 * uncached_units
    cost = estimate_cost(cfg.settings.model, tokens_in, est_out)
    info = {
        "first_unit": first[0].id if first else None,
        "messages": first_messages, "units": n_units,
        "calls": n_calls, "cached_calls": n_cached, "uncached_calls": n_calls - n_cached,
        "estimated_input_tokens": tokens_in, "estimated_output_tokens": est_out,
        "estimated_cost_usd": cost, "skipped_rows": len(reader.skips),
        "model": cfg.settings.model, "units_per_call": k,
    }
    privacy = None
    if pseudonyms is not None:
        from vsdcoder.privacy.engine import sum_counts

        privacy = dict(cfg.privacy.public(), redactions=sum_counts(counts),
                       units_redacted=sum(1 for c in counts if c))
        info["privacy"] = privacy
    return RunSummary(cfg.out, "dry-run", dry_run=info, privacy=privacy)


def open_run_readonly(run_dir: Path | None) -> sqlite3.Connection | None:
    """The run.db of ``run_dir`` opened read-only (no migration), or None if there is none.

    Raises:
        UsageError: run.db exists but cannot be read.
    """
    if not run_dir or not (run_dir / "run.db").exists():
        return None
    from vsdcoder.store.rundb import open_readonly

    try:
        return open_readonly(run_dir / "run.db")
    except sqlite3.Error as exc:
        raise UsageError(f"{run_dir / 'run.db'}: cannot be read ({exc})") from None


def count_tokens(model: str, text: str) -> int:
    """Tokens of ``text`` for ``model`` (LiteLLM's counter; an estimate when it has none)."""
    try:
        import litellm

        return int(litellm.token_counter(model=model, text=text))
    except Exception:
        return len(text) // 4


def estimate_cost(model: str, tokens_in: int, tokens_out: int) -> float | None:
    """Cost in USD from LiteLLM's price table; 0 for local models, None when unpriced."""
    if model.startswith("local/"):
        return 0.0
    try:
        import litellm

        pin, pout = litellm.cost_per_token(model=model, prompt_tokens=tokens_in,
                                           completion_tokens=tokens_out)
        return round(pin + pout, 6)
    except Exception:
        return None  # price unknown to LiteLLM


