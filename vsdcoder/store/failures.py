"""A run directory that cannot be written: a full disk, a read-only directory, an I/O error.

The engine turns these into one clear :class:`~vsdcoder.errors.UsageError` (exit code 2): what
happened, how many units are saved, and what to do. The store stays intact: every unit is
committed in its own SQLite transaction, and the manifest and ``codes.*`` files are replaced
atomically, so a failed write leaves the previous version (see "Failures and recovery" in
docs/coding.md).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from vsdcoder.errors import UsageError

#: The disk (or the user's quota) is full.
FULL = "full"
#: The directory or a file in it cannot be written (read-only file system, permissions).
READ_ONLY = "read-only"
#: Another input/output error.
IO = "io"

_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
#: Less free space than this (or 1% of the file system) after an I/O error means "full".
_NEARLY_FULL = 64 * 1024


def storage_problem(exc: BaseException, where: Path | None = None) -> str | None:
    """What kind of storage failure ``exc`` is: :data:`FULL`, :data:`READ_ONLY`, :data:`IO`.

    Args:
        exc: An exception raised while writing the run directory.
        where: The directory written to; an I/O error on a nearly full file system there is
            reported as :data:`FULL` (SQLite says "disk I/O error" when it cannot grow its
            shared-memory file).

    Returns:
        The kind, or None when ``exc`` is not a storage failure.
    """
    kind: str | None = None
    if isinstance(exc, sqlite3.Error):
        msg = str(exc).lower()
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary == 13 or "database or disk is full" in msg:  # SQLITE_FULL
            kind = FULL
        elif primary == 8 or "readonly database" in msg:  # SQLITE_READONLY
            kind = READ_ONLY
        elif primary in (10, 14) or "disk i/o error" in msg or "unable to open" in msg:
            kind = IO  # SQLITE_IOERR, SQLITE_CANTOPEN
    elif isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            kind = FULL
        elif exc.errno in _READ_ONLY_ERRNOS:
            kind = READ_ONLY
        elif exc.errno == errno.EIO:
            kind = IO
    if kind == IO and where is not None and _nearly_full(where):
        kind = FULL
    return kind


def _nearly_full(where: Path) -> bool:
    try:
        st = os.statvfs(where)
    except OSError:
        return False
    free = st.f_bavail * st.f_frsize
    return free < max(_NEARLY_FULL, st.f_blocks * st.f_frsize // 100)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def saved_units(run_dir: Path) -> int | None:
    """Units stored in ``run_dir/run.db`` (read-only; None if it cannot be read)."""
    p = Path(run_dir) / "run.db"
    if not p.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM units").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return None


def store_error(exc: BaseException, run_dir: Path, *, in_flight: int = 0,
                started: bool = True) -> UsageError:
    """The one-line error for a run directory that could not be written.

    Args:
        exc: The storage failure (see :func:`storage_problem`).
        run_dir: The run directory.
        in_flight: Units being coded when the run stopped; they were not saved and are coded
            again by the next run.
        started: False when the failure came before anything was written (the directory is
            unchanged).

    Returns:
        A :class:`~vsdcoder.errors.UsageError` (exit code 2) to raise.
    """
    kind = storage_problem(exc, Path(run_dir)) or IO
    detail = _detail(exc)
    if not started:
        saved = "Nothing was written."
    else:
        n = saved_units(run_dir)
        saved = ("The units saved before are kept in run.db." if n is None
                 else f"{n} unit(s) are saved in run.db.")
        if in_flight:
            saved += f" The {in_flight} in flight were not saved and will be coded again."
    if kind == FULL:
        full_msg = isinstance(exc, sqlite3.Error) and "full" in detail.lower()
        what, todo = ("the disk is full" if full_msg else f"the disk is full ({detail})",
                      "Free some disk space and run the same command again to resume.")
    elif kind == READ_ONLY:
        what, todo = (f"the run directory is not writable ({detail})",
                      "Make it writable (or copy it to a writable place and use that as "
                      "--out) and run the same command again.")
    else:
        what, todo = (f"cannot write the run directory ({detail})",
                      "Check the disk, then run the same command again to resume.")
    stopped = "so the run stopped" if started else "so the run did not start"
    return UsageError(f"{run_dir}: {what}, {stopped}. {saved} {todo}")


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage failure (see :func:`storage_problem`)."""
    return storage_problem(exc) is not None
