"""``vsdcoder models pull``: fetch a catalogue file once, resumably, and verify it.

The file is written to ``FILE.part`` in the models directory. A cut connection keeps what
arrived; the next attempt (a retry within the same pull, or a later ``pull``) asks the server
for the rest with an HTTP ``Range`` request. A server that ignores ``Range`` (answers 200
instead of 206) makes the download start over from zero. When all bytes are there, the size and
the sha256 are checked against the catalogue: a mismatch removes the file and fails; a match
renames ``FILE.part`` to ``FILE`` atomically (``os.replace``), so a file under its final name is
always a complete, verified one.

A full disk (ENOSPC) stops the pull with a message and no final file (the partial download is
kept, ready to resume once there is room). Ctrl-C leaves the partial download for resuming.
Plain :mod:`urllib` does the HTTP (no extra dependency); ``https_proxy`` and friends apply.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.models.catalogue import ModelEntry
from vsdcoder.models.store import MODELS_DIR_ENV, final_path, models_dir, part_path

CHUNK = 1 << 20
#: Seconds without data before a connection counts as cut.
TIMEOUT = 60.0
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _open_part(path: Path) -> Any:
    """The partial file, opened for appending (a seam for tests that simulate a full disk)."""
    return path.open("ab")


class _Cut(Exception):
    """The transfer stopped before the end; what arrived is kept and the next try resumes."""


class _NoProgress:
    """Stands in for a rich Progress when progress is off."""

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress_bar(console: Any) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=console)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _disk_full(entry: ModelEntry, part: Path, exc: OSError) -> UsageError:
    have = part.stat().st_size if part.is_file() else 0
    return UsageError(
        f"disk full while pulling {entry.name} into {part.parent} ({exc.strerror}): "
        f"{_gb(have)} of {_gb(entry.size)} written. Free some space, or set "
        f"{MODELS_DIR_ENV} to a folder on a larger disk, then run `vsdcoder models pull "
        f"{entry.name}` again (it resumes from {part.name}; `vsdcoder models remove "
        f"{entry.name}` deletes it). No model file was installed.")


class _Pull:
    """One pull of one entry: state shared by the attempts (bytes so far, running sha256)."""

    def __init__(self, entry: ModelEntry, url: str, bar: Any, say: Callable[[str], None],
                 timeout: float):
        self.entry = entry
        self.url = url
        self.bar = bar
        self.say = say
        self.timeout = timeout
        self.part = part_path(entry)
        self.have = 0
        self.sha = hashlib.sha256()
        self.task = bar.add_task(f"pull {entry.name}", total=entry.size)

    # -- the partial file ----------------------------------------------------------------

    def start_over(self) -> None:
        """Forget the partial download (truncate it)."""
        self.part.write_bytes(b"")
        self.have = 0
        self.sha = hashlib.sha256()
        self.bar.update(self.task, completed=0)

    def load_partial(self) -> None:
        """Hash what an earlier pull left in ``FILE.part`` (to resume after it)."""
        if not self.part.is_file():
            return
        size = self.part.stat().st_size
        if size > self.entry.size:  # not ours: larger than the whole file
            self.start_over()
            return
        if size == 0:
            return
        check = self.bar.add_task("check the partial download", total=size)
        with self.part.open("rb") as f:
            while chunk := f.read(CHUNK):
                self.sha.update(chunk)
                self.bar.advance(check, len(chunk))
        self.have = size
        self.bar.update(self.task, completed=size)
        self.say(f"resuming {self.entry.name} at {_gb(size)} of {_gb(self.entry.size)}")

    # -- one HTTP request ----------------------------------------------------------------

    def _open(self) -> Any:
        from vsdcoder import __version__

        headers = {"User-Agent": f"vsdcoder/{__version__}", "Accept-Encoding": "identity"}
        if self.have:
            headers["Range"] = f"bytes={self.have}-"
        req = urllib.request.Request(self.url, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and self.have:  # our offset is past the server's file
                self.say("the server refused to resume; starting over")
                self.start_over()
                return None
            if exc.code == 404:
                raise UsageError(f"{self.url}: not found (HTTP 404). The catalogue entry "
                                 f"'{self.entry.name}' may be out of date, or "
                                 "$VSDCODER_MODELS_BASE_URL points to a server without it."
                                 ) from None
            if exc.code >= 500 or exc.code == 429:
                raise _Cut(f"HTTP {exc.code} {exc.reason}") from None
            raise UsageError(f"{self.url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise _Cut(f"cannot reach {self.url}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Cut(f"{type(exc).__name__}: {exc}") from None

    def attempt(self) -> None:
        """One request, appending what arrives to ``FILE.part``.

        Raises:
            _Cut: The transfer stopped early (what arrived is kept).
            UsageError: A refusal that retrying will not change (404, too many bytes, ...).
        """
        resp = self._open()
        if resp is None:
            return
        with resp:
            if self.have:
                if resp.status == 206:
                    m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range") or "")
                    if not m or int(m.group(1)) != self.have:
                        self.say("the server resumed at the wrong offset; starting over")
                        self.start_over()
                        return
                else:  # 200: the server ignores Range and sends the whole file
                    self.say("the server does not support resuming; starting over from zero")
                    self.start_over()
            self._copy(resp)
        if self.have < self.entry.size:
            raise _Cut(f"the server closed the connection after {self.have} bytes")

    def _copy(self, resp: Any) -> None:
        try:
            with _open_part(self.part) as out:
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Cut(f"{type(exc).__name__}: {exc}") from None
                    if not chunk:
                        return
                    if self.have + len(chunk) > self.entry.size:
                        out.close()
                        self.part.unlink()
                        raise UsageError(f"{self.url} sent more than the {self.entry.size} "
                                         f"bytes the catalogue pins for {self.entry.file}; "
                                         "the download was removed")
                    out.write(chunk)
                    self.sha.update(chunk)
                    self.have += len(chunk)
                    self.bar.advance(self.task, len(chunk))
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise _disk_full(self.entry, self.part, exc) from None
            raise

    # -- the end -------------------------------------------------------------------------

    def finish(self) -> Path:
        """Check size and sha256; rename ``FILE.part`` to ``FILE`` if both match."""
        size = self.part.stat().st_size
        got = self.sha.hexdigest()
        if size != self.entry.size or got != self.entry.sha256:
            self.part.unlink()
            what = (f"size {size} bytes, expected {self.entry.size}" if size != self.entry.size
                    else f"sha256 {got}, expected {self.entry.sha256}")
            raise UsageError(f"checksum mismatch for {self.entry.file} from {self.url}: {what}. "
                             "The file was refused and removed; nothing was installed.")
        with self.part.open("rb") as f:
            os.fsync(f.fileno())
        final = final_path(self.entry)
        os.replace(self.part, final)
        return final


def pull(entry: ModelEntry, *, retries: int = 3, progress: bool = True, console: Any = None,
         base_url: str | None = None, timeout: float = TIMEOUT, backoff: float = 1.0,
         say: Callable[[str], None] | None = None) -> Path:
    """Download ``entry`` into the models directory (if not there yet) and verify it.

    Args:
        entry: The catalogue entry.
        retries: Resume this many times within this pull after a cut connection.
        progress: Show a progress bar (rich, on ``console`` or stderr).
        console: A rich console for the bar and messages.
        base_url: Replaces ``https://huggingface.co`` (default ``$VSDCODER_MODELS_BASE_URL``).
        timeout: Seconds without data before the connection counts as cut.
        backoff: Seconds before the first retry (doubling, at most 30).
        say: Where notes go (resuming, starting over); default: the console.

    Returns:
        The path of the verified file.

    Raises:
        UsageError: Not found (404), checksum mismatch (file removed), disk full, or still cut
            after ``retries`` resumptions (the partial file is kept for the next pull).
        KeyboardInterrupt: Ctrl-C; the partial file is kept for the next pull.
    """
    final = final_path(entry)
    if final.is_file() and final.stat().st_size == entry.size:
        return final
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    if say is None:
        def say(msg: str) -> None:
            console.print(msg, markup=False, highlight=False)
    folder = models_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the models folder {folder}: {exc.strerror}; set "
                         f"{MODELS_DIR_ENV} to a writable folder") from None
    part = part_path(entry)
    have = part.stat().st_size if part.is_file() else 0
    need = entry.size - min(have, entry.size)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise UsageError(f"not enough disk space to pull {entry.name}: {_gb(need)} needed, "
                         f"{_gb(free)} free in {folder}. Free some space or set "
                         f"{MODELS_DIR_ENV} to a folder on a larger disk.")
    url = entry.url(base_url)
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / (entry.file + ".lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"another `vsdcoder models pull {entry.name}` is running (lock "
                         f"{lock.lock_file}); wait for it to finish") from None
    try:
        return _pull_locked(entry, url, progress, console, say, timeout, retries, backoff)
    finally:
        lock.release()


def _pull_locked(entry: ModelEntry, url: str, progress: bool, console: Any,
                 say: Callable[[str], None], timeout: float, retries: int,
                 backoff: float) -> Path:
    final = final_path(entry)
    if final.is_file() and final.stat().st_size == entry.size:
        return final  # another pull finished while this one waited
    part = part_path(entry)
    with (_progress_bar(console) if progress else _NoProgress()) as bar:
        job = _Pull(entry, url, bar, say, timeout)
        try:
            job.load_partial()
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise _disk_full(entry, part, exc) from None
            raise
        cuts = 0
        while job.have < entry.size:
            try:
                job.attempt()
            except _Cut as exc:
                cuts += 1
                if cuts > retries:
                    kept = (f"the partial download ({_gb(job.have)} of {_gb(entry.size)}) is "
                            f"kept in {part}: run `vsdcoder models pull {entry.name}` again to "
                            "resume" if job.have else "nothing was kept")
                    raise UsageError(f"download of {entry.name} failed: {exc}; {kept}") from None
                say(f"{exc}; retrying ({cuts}/{retries})")
                if backoff:
                    time.sleep(min(backoff * 2 ** (cuts - 1), 30.0))
        return job.finish()
