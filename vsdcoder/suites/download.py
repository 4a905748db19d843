"""Download a suite's data set from its public source, verified against pinned SHA-256s.

Every file goes to ``<name>.part`` first and only becomes its final name once its checksum is
right, so an interrupted or wrong download never leaves a file that looks fetched. A file
inside a zip archive (SAD's ``SAD_v1.xlsx`` in ``SAD_v1.zip``) is extracted alone, to the
suite's own path (never to a path taken from the archive), and its checksum checked there; the
archive is then deleted. The base URL (``https://raw.githubusercontent.com``) can be replaced
with ``$VSDCODER_DATASETS_URL`` or ``base_url=``, e.g. a mirror with the same layout
``<base>/<owner>/<repo>/<commit>/<path>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from vsdcoder.errors import UsageError
from vsdcoder.suites.lookup import fetch_dir
from vsdcoder.suites.registry import SourceFile, Suite, get_suite

#: Replaces ``https://raw.githubusercontent.com`` as the base of the download URLs.
URL_ENV = "VSDCODER_DATASETS_URL"
#: The largest download or archive member accepted (bytes); the data sets are a few MB.
MAX_BYTES = 200 * 1024 * 1024
#: Written into the source folder after a fetch: what came from where, with checksums.
RECORD = "FETCHED.json"
_CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _download(url: str, part: Path, timeout: float) -> str:
    """Stream ``url`` into ``part``; return its SHA-256. Removes ``part`` on any failure."""
    h = hashlib.sha256()
    size = 0
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "vsdcoder"})
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(part, "wb") as out:
            expected = resp.headers.get("Content-Length")
            while True:
                block = resp.read(_CHUNK)
                if not block:
                    break
                size += len(block)
                if size > MAX_BYTES:
                    raise UsageError(f"{url}: larger than {MAX_BYTES // 2**20} MB, which no "
                                     "data set of vsdcoder is; refusing it")
                h.update(block)
                out.write(block)
            if expected is not None and expected.isdigit() and size != int(expected):
                raise http.client.IncompleteRead(b"", int(expected) - size)
    except UsageError:
        _remove(part)
        raise
    except urllib.error.HTTPError as exc:
        _remove(part)
        raise UsageError(f"download failed: HTTP {exc.code} {exc.reason} from {url}") from None
    except urllib.error.URLError as exc:
        _remove(part)
        raise UsageError(f"download failed: cannot reach {url} ({exc.reason}); check the network "
                         f"connection (or ${URL_ENV}), or copy the data set by hand and pass "
                         "--source DIR") from None
    except (http.client.HTTPException, OSError) as exc:
        _remove(part)
        what = ("the connection closed before the whole file arrived"
                if isinstance(exc, http.client.IncompleteRead) else f"{type(exc).__name__}: {exc}")
        raise UsageError(f"download failed: {url}: {what}; nothing was kept, try again") from None
    return h.hexdigest()


def _safe_member(info: zipfile.ZipInfo, wanted: str) -> bool:
    """Whether ``info`` is the regular file ``wanted`` at a harmless path in the archive."""
    if info.is_dir():
        return False
    name = info.filename.replace("\\", "/")
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        return False
    if p.parts and p.parts[0] == "__MACOSX":
        return False
    return p.name == wanted


def extract_member(archive: Path, member: str, out: Path) -> str:
    """Extract the one file called ``member`` from zip ``archive`` into the file ``out``.

    Only that member is read, and it is written to ``out`` (the archive's paths are never used
    to build a path on disk), so a member named ``../x`` cannot write outside. Members with
    absolute paths, ``..`` or under ``__MACOSX/`` are ignored.

    Args:
        archive: The zip file.
        member: File name of the member (its last path component), e.g. ``SAD_v1.xlsx``.
        out: The file to write (removed again if anything fails).

    Returns:
        The SHA-256 of the extracted file.

    Raises:
        UsageError: Not a zip, no such member (or more than one), or the member is too large.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            found = [i for i in zf.infolist() if _safe_member(i, member)]
            if len(found) != 1:
                raise UsageError(f"{archive.name}: expected one file {member} in the archive, "
                                 f"found {len(found)}; the download is not the expected archive")
            info = found[0]
            h = hashlib.sha256()
            size = 0
            with zf.open(info) as src, open(out, "wb") as dst:
                for block in iter(lambda: src.read(_CHUNK), b""):
                    size += len(block)
                    if size > MAX_BYTES:
                        raise UsageError(f"{archive.name}: {info.filename} is larger than "
                                         f"{MAX_BYTES // 2**20} MB; refusing it")
                    h.update(block)
                    dst.write(block)
    except UsageError:
        _remove(out)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        _remove(out)
        raise UsageError(f"{archive.name}: not a readable zip archive ({exc}); the download is "
                         "not the expected archive") from None
    return h.hexdigest()


def _wrong_checksum(suite: Suite, file: SourceFile, url: str, got: str) -> UsageError:
    what = f"{file.member} in {url}" if file.member else url
    return UsageError(
        f"checksum mismatch for {what}: SHA-256 {got}, expected {file.sha256} (pinned for "
        f"{suite.name} at commit {suite.commit}); the file was removed. The source may have "
        "changed or the download was altered; nothing wrong was kept.")


def fetch_suite(name: str, dest: str | Path | None = None, base_url: str | None = None,
                timeout: float = 60.0, log: Callable[[str], None] | None = None) -> Path:
    """Download suite ``name``'s data set and verify it.

    Files already present with the right checksum are not downloaded again.

    Args:
        name: The suite's name (see ``vsdcoder evals list``).
        dest: The source folder to fill (default: ``DATA_DIR/datasets/NAME``, see
            :mod:`vsdcoder.suites.lookup`).
        base_url: Replaces ``https://raw.githubusercontent.com`` (default
            ``$VSDCODER_DATASETS_URL``).
        timeout: Seconds to wait for the server on each read.
        log: Called with a line of progress per file (default: print to stderr).

    Returns:
        The source folder, ready for :func:`vsdcoder.suites.build_suite` (``source=``).

    Raises:
        UsageError: Unknown suite, HTTP error, no network, an interrupted download, or a file
            whose checksum is not the pinned one (the file is removed).
    """
    suite = get_suite(name)
    say = log or (lambda line: print(line, file=sys.stderr))
    folder = Path(dest).expanduser() if dest is not None else fetch_dir(suite.name)
    base = base_url or os.environ.get(URL_ENV) or None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {folder}: {exc.strerror}; pass --dest DIR") from None
    record = []
    for file in suite.files:
        target = folder / file.path
        url = suite.url(file, base)
        entry = {"path": file.path, "url": url, "sha256": file.sha256}
        if target.is_file() and sha256_file(target) == file.sha256:
            say(f"{file.path}: already there, checksum verified")
            record.append(entry)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        say(f"downloading {url}")
        if file.member:
            archive = folder / (PurePosixPath(file.download).name + ".part")
            entry.update(member=file.member, download_sha256=_download(url, archive, timeout))
            try:
                got = extract_member(archive, file.member, part)
            finally:
                _remove(archive)
        else:
            got = _download(url, part, timeout)
        if got != file.sha256:
            _remove(part)
            raise _wrong_checksum(suite, file, url, got)
        os.replace(part, target)
        say(f"{file.path}: checksum verified ({file.sha256[:16]}...)")
        record.append(entry)
    info = {"suite": suite.name, "repository": f"https://github.com/{suite.github}",
            "commit": suite.commit, "licence": suite.licence, "licence_url": suite.licence_url,
            "citation": suite.citation, "doi": suite.doi, "files": record}
    tmp = folder / (RECORD + ".part")
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, folder / RECORD)
    return folder

