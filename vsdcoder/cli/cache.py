"""``vsdcoder cache ...``: where the shared response cache is, and removing what it holds."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Inspect and empty the shared response cache (the model's answers).",
                  no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})

_CACHE_DIR_HELP = ("The cache directory (default: $VSDCODER_CACHE_DIR or the user cache "
                   "directory).")


def _directory(cache_dir: Path | None) -> Path:
    """The cache directory; a ``--cache-dir`` that does not exist is an error."""
    from vsdcoder.coding.cache import default_cache_dir
    from vsdcoder.errors import UsageError

    if cache_dir is not None:
        if not cache_dir.is_dir():
            raise UsageError(f"--cache-dir {cache_dir}: no such directory")
        return cache_dir
    return default_cache_dir()


def _open(directory: Path):
    """The cache in ``directory``, or None if it has none (nothing is created)."""
    import sqlite3

    from vsdcoder.coding.cache import ResponseCache
    from vsdcoder.errors import UsageError

    try:
        return ResponseCache.open_existing(directory)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(str(exc)) from None


def _scrub_failed(exc: Exception, path: object) -> Exception:
    from vsdcoder.errors import UsageError

    return UsageError(f"{path}: {exc}. Close other vsdcoder processes using the cache "
                      "and run this again.")


@app.command("info")
def info_cmd(
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Where the response cache is, its size on disk and how many answers it holds."""
    from vsdcoder.coding.cache import CACHE_FILE

    directory = _directory(cache_dir)
    cache = _open(directory)
    if cache is None:
        info = {"path": str(directory / CACHE_FILE), "directory": str(directory), "bytes": 0,
                "entries": 0, "models": {}, "oldest": None, "newest": None, "exists": False}
    else:
        try:
            info = dict(cache.info(), exists=True)
        finally:
            cache.close()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"location  {info['path']}" + ("" if info["exists"] else "  (no cache yet)"))
    typer.echo(f"size      {info['bytes']:,} bytes")
    typer.echo(f"entries   {info['entries']:,}")
    if info["models"]:
        typer.echo("models    " + ", ".join(f"{m} {n:,}" for m, n in info["models"].items()))
    if info["oldest"]:
        typer.echo(f"dates     {info['oldest']} to {info['newest']}")


@app.command("clear")
def clear_cmd(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_DIR_HELP),
) -> None:
    """Delete every cached answer (of every run), leaving no trace in the file.

    Deleted entries are overwritten, the file rebuilt and its write-ahead log emptied. Later
    runs ask the model again for everything.
    """
    import sqlite3
    import sys

    from vsdcoder.errors import UsageError

    directory = _directory(cache_dir)
    cache = _open(directory)
    if cache is None:
        typer.echo(f"no response cache in {directory}: nothing to clear")
        return
    try:
        n = cache.info()["entries"]
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"clearing the response cache {cache.path} ({n:,} entries) "
                                 "cannot be undone; pass --yes to confirm (no terminal to "
                                 "ask on)")
            typer.confirm(f"Delete all {n:,} cached answers in {cache.path}? This cannot be "
                          "undone", abort=True)
        try:
            deleted = cache.clear()
        except sqlite3.OperationalError as exc:
            raise _scrub_failed(exc, cache.path) from None
        path = cache.path
    finally:
        cache.close()
    typer.echo(f"cleared {path}: {deleted:,} entr{'y' if deleted == 1 else 'ies'} deleted")


@app.command("purge")
def purge_cmd(
    run: Path = typer.Option(..., "--run", help="A run directory: remove the answers to its "
                             "requests."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_DIR_HELP),
) -> None:
    """Delete the cached answers to one run's requests, leaving no trace in the file.

    The run's calls record their cache keys in its run.db (read only here, also after
    'vsdcoder runs purge'). An identical request made by another run has the same entry,
    which goes too.
    """
    import sqlite3

    from vsdcoder.errors import UsageError
    from vsdcoder.store.purge import check_run_dir, run_cache_keys
    from vsdcoder.store.rundb import open_readonly

    check_run_dir(run)
    directory = _directory(cache_dir)
    try:
        db = open_readonly(run / "run.db")
    except sqlite3.Error as exc:
        raise UsageError(f"{run / 'run.db'}: cannot be read ({exc})") from None
    try:
        keys = run_cache_keys(db)
    finally:
        db.close()
    cache = _open(directory)
    if cache is None:
        typer.echo(f"no response cache in {directory}: nothing to remove")
        return
    try:
        try:
            deleted = cache.delete(keys)
        except sqlite3.OperationalError as exc:
            raise _scrub_failed(exc, cache.path) from None
        path = cache.path
    finally:
        cache.close()
    typer.echo(f"{path}: {deleted:,} entr{'y' if deleted == 1 else 'ies'} of {run} deleted "
               f"({len(keys):,} request key(s) in the run)")
