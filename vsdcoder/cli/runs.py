"""``vsdcoder runs ...``: list, inspect and purge run directories; export a run's pseudonym key."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="List and inspect coding runs.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _manifest(run_dir: Path) -> dict | None:
    p = run_dir / "manifest.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _live(run_dir: Path, m: dict) -> tuple[str | None, dict, str]:
    """A run's status and unit counts as of now, and where the counts come from.

    The manifest is rewritten only at the end of a session, so the counts are read from
    run.db (read-only: no migration, no write), which a live run commits unit by unit. The
    run is ``running`` while a process holds its lock; a manifest still saying ``running``
    with nobody holding the lock was left by a process that died: ``killed``.
    """
    from vsdcoder.store.rundb import lock_held, unit_counts

    status = m.get("status")
    held = lock_held(run_dir)
    if held:
        status = "running"
    elif status == "running" and held is False:
        status = "killed"
    counts = unit_counts(run_dir / "run.db")
    if counts is None:
        return status, m.get("counts") or {}, "manifest.json"
    return status, counts, "run.db"


def _row(d: Path, m: dict) -> dict:
    status, counts, _ = _live(d, m)
    return {"run": str(d), "status": status, "updated": m.get("updated"),
            "codebook": f"{m['codebook']['name']} {m['codebook']['version']}",
            "model": m["model"]["model"], "counts": counts, "cost_usd": m.get("cost_usd")}


@app.command("list")
def list_cmd(
    directory: Path | None = typer.Argument(
        None, help="Folder holding run directories (default: runs), or one run directory.",
        show_default=False),
    dir_opt: Path | None = typer.Option(None, "--dir", help="Same as DIRECTORY.",
                                        show_default=False),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs: status, codebook, model, counts and cost.

    Counts are read from each run's run.db, so a run in progress shows what it has saved so
    far; status is ``running`` while a vsdcoder process holds the run, ``killed`` when the
    process that ran it died. Nothing is written.
    """
    from vsdcoder.errors import UsageError

    if directory is not None and dir_opt is not None and directory != dir_opt:
        raise UsageError(f"two folders given ({directory} and --dir {dir_opt}); give one")
    given = directory if directory is not None else dir_opt
    directory = given if given is not None else Path("runs")
    if given is not None and not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    rows = []
    if (directory / "manifest.json").is_file():  # one run directory
        m = _manifest(directory)
        if m is None:
            raise UsageError(f"{directory}/manifest.json: cannot be read")
        rows.append(_row(directory, m))
    elif directory.is_dir():
        for d in sorted(p for p in directory.iterdir() if p.is_dir()):
            m = _manifest(d)
            if m is None:
                continue
            rows.append(_row(d, m))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from vsdcoder.cli.output import console

    table = Table(title=f"runs in {directory}")
    for col in ("run", "status", "codebook", "model", "coded", "failed", "skipped", "cost"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["run"], r["status"], r["codebook"], r["model"],
                      *(str(r["counts"].get(k, 0)) for k in ("coded", "failed", "skipped")),
                      f"{r['cost_usd'] or 0:.4f}")
    console().print(table)
    if not rows:
        typer.echo(f"no runs in {directory}", err=True)


@app.command("show")
def show_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON (status "
                                 "and counts as of now, as in the text)."),
) -> None:
    """Show a run's manifest: codebook, prompt and data hashes, model, counts, tokens, cost.

    Status and counts are as of now (see ``runs list``): the counts come from run.db, read
    only, so a run in progress shows its units saved so far; tokens and cost are the
    manifest's, written at the end of each session.
    """
    from vsdcoder.errors import UsageError

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such directory")
    m = _manifest(run_dir)
    if m is None:
        raise UsageError(f"{run_dir}: not a run directory (no readable manifest.json)")
    status, counts, source = _live(run_dir, m)
    m = dict(m, status=status, counts=counts)
    if as_json:
        typer.echo(json.dumps(m, indent=2, ensure_ascii=False))
        return
    from vsdcoder.cli.output import console

    out = console()
    out.print(f"[bold]{run_dir}[/]  status {m.get('status')}  updated {m.get('updated')}")
    cb = m["codebook"]
    out.print(f"codebook {cb['name']} {cb['version']}  {cb['hash']}")
    out.print(f"prompt   {m['prompt']['hash']}")
    out.print(f"data     {m['data']['path']}  {m['data']['hash']}")
    md = m["model"]
    out.print(f"model    {md['model']}  mode {md['mode']}  temperature {md['temperature']}  "
              f"seed {md['seed']}  served {', '.join(md.get('served_models', [])) or '-'}")
    out.print(f"counts   {m.get('counts', {})}"
              + ("  (from run.db, as of now)" if source == "run.db" and status == "running"
                 else ""), markup=False)
    calls, rn = m.get("calls") or {}, m.get("run") or {}
    how = f"calls    {calls.get('total', 0):,} ({calls.get('cache_hits', 0):,} from the cache)"
    how += f"  units per call {rn.get('units_per_call', 1)}"
    if rn.get("batch"):
        bt = m.get("batch") or {}
        how += (f"  batch API ({bt.get('provider')}): {len(bt.get('batches') or [])} batch(es), "
                f"{bt.get('in_flight', 0)} unit(s) in flight")
    out.print(how, markup=False)
    tk = m.get("tokens", {})
    out.print(f"tokens   in {tk.get('input', 0):,}  out {tk.get('output', 0):,}  "
              f"cached {tk.get('cached_input', 0):,}   cost ${m.get('cost_usd', 0) or 0:.4f}")
    pv = m.get("privacy") or {}
    if pv.get("redact") or pv.get("local_only"):
        parts = []
        if pv.get("redact"):
            counts = ", ".join(f"{k} {v}" for k, v in (pv.get("redactions") or {}).items())
            parts.append(f"redact {','.join(pv['redact'])}: {pv.get('units_redacted', 0)} "
                         f"unit(s) redacted ({counts or 'nothing found'})")
            parts.append("redacted output only" if pv.get("redacted_output")
                         else f"key {pv.get('key_file')}"
                         + (f" (table {pv['key_table']})" if pv.get("key_table") else ""))
        if pv.get("local_only"):
            parts.append("local only")
        out.print("privacy  " + "; ".join(parts), markup=False)
    for p in m.get("purges", []):
        out.print(f"purged   {p.get('at')}: {', '.join(p.get('removed', []))}", markup=False)
    out.print(f"sessions {len(m.get('sessions', []))}: "
              + ", ".join(f"{s['started']} {s['status']}" for s in m.get("sessions", [])))


@app.command("purge")
def purge_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="The response cache to remove the run's entries from "
        "(default: $VSDCODER_CACHE_DIR or the user cache directory)."),
    keep_cache: bool = typer.Option(False, "--keep-cache",
                                    help="Leave the run's entries in the response cache."),
) -> None:
    """Remove a run's stored texts, answers and pseudonym key; codes and offsets stay.

    Removes from run.db the texts, contexts, requests, responses and parsed answers, the
    batch requests and their answers, the quotes, rationales and error details of every unit,
    and the key to the pseudonyms (then rebuilds the file so no old page keeps them); removes
    the quotes and rationales from codes.jsonl and codes.csv; deletes leftover temporary
    files; removes from the shared response cache the answers to the run's requests (unless
    --keep-cache); and records the purge in manifest.json. It cannot be undone.
    """
    import sys

    from vsdcoder.errors import UsageError
    from vsdcoder.store.purge import check_run_dir

    check_run_dir(run_dir)
    if _manifest(run_dir) is None:
        raise UsageError(f"{run_dir}: not a run directory (no readable manifest.json)")
    if cache_dir is not None and not cache_dir.is_dir():
        raise UsageError(f"--cache-dir {cache_dir}: no such directory")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"purging {run_dir} cannot be undone; pass --yes to confirm "
                             "(no terminal to ask on)")
        typer.confirm(f"Remove the stored texts, answers, quotes and pseudonym key of "
                      f"{run_dir}{'' if keep_cache else ' and its response cache entries'}? "
                      "This cannot be undone", abort=True)
    from vsdcoder.store.purge import purge_run

    done = purge_run(run_dir, cache_dir=cache_dir, keep_cache=keep_cache)
    parts = [f"texts of {done['units']} unit(s) removed from run.db"]
    if done["batch_requests"]:
        parts.append(f"{done['batch_requests']} batch request(s) and answers deleted")
    if done["key_deleted"]:
        parts.append("pseudonym key deleted")
    if done["temp_files"]:
        parts.append(f"{len(done['temp_files'])} temporary file(s) deleted")
    parts.append("quotes removed from codes.jsonl and codes.csv")
    typer.echo(f"purged {run_dir}: " + ", ".join(parts))
    cache = done["cache"]
    if keep_cache:
        typer.echo("response cache left alone (--keep-cache): it keeps the model's answers to "
                   f"this run's requests; 'vsdcoder cache purge --run {run_dir}' removes them")
    elif cache["path"] is None:
        typer.echo("no response cache found: nothing to remove there")
    else:
        typer.echo(f"response cache {cache['path']}: {cache['deleted']} entr"
                   f"{'y' if cache['deleted'] == 1 else 'ies'} of this run deleted")


@app.command("pseudonyms")
def pseudonyms_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory (coded with --redact)."),
    export: Path | None = typer.Option(
        None, "--export", help="Write the key (placeholder -> original) to this JSON file, "
        "owner-only (mode 0600)."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Show how many pseudonyms a run has by type, or export its key with --export FILE.

    The key lives in the run's run.db (table pseudonyms, owner-only). The export is the JSON
    map that vsdcoder.privacy.PseudonymMap.load reads (and the pseudonyms.json of earlier
    versions). It re-identifies the placeholders: keep it on this machine. run.db is only
    read.
    """
    import sqlite3

    from vsdcoder.errors import UsageError
    from vsdcoder.privacy.engine import read_key
    from vsdcoder.store.purge import check_run_dir
    from vsdcoder.store.rundb import open_readonly

    check_run_dir(run_dir)
    try:
        db = open_readonly(run_dir / "run.db")
    except sqlite3.Error as exc:
        raise UsageError(f"{run_dir / 'run.db'}: cannot be read ({exc})") from None
    try:
        mapping = read_key(db, run_dir)
    finally:
        db.close()
    from collections import Counter

    entities = mapping.to_dict()["entities"]
    counts = {"entities": len(entities),
              "by_type": dict(sorted(Counter(e["type"] for e in entities).items()))}
    if export is not None:
        if not len(mapping):
            privacy = (_manifest(run_dir) or {}).get("privacy") or {}
            why = ("it was coded with --redacted-output, which keeps no key"
                   if privacy.get("redacted_output")
                   else "it has no key (not coded with --redact, or purged)")
            raise UsageError(f"{run_dir}: nothing to export: {why}")
        if export.is_dir():
            raise UsageError(f"--export {export}: is a directory; give a file name")
        try:
            mapping.save(export)
        except OSError as exc:
            raise UsageError(f"--export {export}: cannot write ({exc.strerror or exc})"
                             ) from None
        typer.echo(f"exported {len(mapping)} pseudonym(s) of {run_dir} to {export} (mode "
                   "0600; it re-identifies the placeholders: keep it on this machine)")
        return
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
        return
    if not len(mapping):
        typer.echo(f"{run_dir}: no pseudonym key (not coded with --redact, coded with "
                   "--redacted-output, or purged)")
        return
    by_type = ", ".join(f"{t} {n}" for t, n in counts["by_type"].items())
    typer.echo(f"{run_dir}: {len(mapping)} pseudonym(s) ({by_type}); key in run.db (table "
               "pseudonyms, owner-only). Export it with --export FILE.")
