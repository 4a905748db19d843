"""``vsdcoder runs ...``: list and inspect run directories."""

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


@app.command("list")
def list_cmd(
    directory: Path = typer.Option(Path("runs"), "--dir", help="Folder holding run directories."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs: status, codebook, model, counts and cost."""
    rows = []
    if directory.is_dir():
        for d in sorted(p for p in directory.iterdir() if p.is_dir()):
            m = _manifest(d)
            if m is None:
                continue
            rows.append({"run": str(d), "status": m.get("status"), "updated": m.get("updated"),
                         "codebook": f"{m['codebook']['name']} {m['codebook']['version']}",
                         "model": m["model"]["model"], "counts": m.get("counts", {}),
                         "cost_usd": m.get("cost_usd")})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from vsdcoder.cli.output import console

    table = Table(title=f"runs in {directory}")
    for col in ("run", "status", "codebook", "model", "coded", "failed", "cost"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["run"], r["status"], r["codebook"], r["model"],
                      str(r["counts"].get("coded", 0)), str(r["counts"].get("failed", 0)),
                      f"{r['cost_usd'] or 0:.4f}")
    console().print(table)
    if not rows:
        typer.echo(f"no runs in {directory}", err=True)


@app.command("show")
def show_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Show a run's manifest: codebook, prompt and data hashes, model, counts, tokens, cost."""
    from vsdcoder.errors import UsageError

    m = _manifest(run_dir)
    if m is None:
        raise UsageError(f"{run_dir}: not a run directory (no readable manifest.json)")
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
    out.print(f"counts   {m.get('counts', {})}")
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
                         else f"key {pv.get('key_file')}")
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
) -> None:
    """Remove a run's stored texts and its pseudonym key; codes and offsets stay.

    Removes from run.db the texts, contexts, requests, responses and parsed answers, and the
    quotes, rationales and error details of every unit (then rebuilds the file so no old page
    keeps them); removes the quotes and rationales from codes.jsonl and codes.csv; deletes
    pseudonyms.json (the key to the placeholders) and leftover temporary files; and records
    the purge in manifest.json. It cannot be undone. The shared response cache is not touched.
    """
    import sys

    from vsdcoder.errors import UsageError

    m = _manifest(run_dir)
    if m is None or not (run_dir / "run.db").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no manifest.json and run.db)")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"purging {run_dir} cannot be undone; pass --yes to confirm "
                             "(no terminal to ask on)")
        typer.confirm(f"Remove the stored texts, quotes and pseudonym key of {run_dir}? "
                      "This cannot be undone", abort=True)
    from vsdcoder.store.purge import purge_run

    done = purge_run(run_dir)
    typer.echo(f"purged {run_dir}: texts of {done['units']} unit(s) removed from run.db"
               + (", pseudonyms.json deleted" if done["key_deleted"] else "")
               + (f", {len(done['temp_files'])} temporary file(s) deleted"
                  if done["temp_files"] else "")
               + "; quotes removed from codes.jsonl and codes.csv")
    typer.echo("note: the response cache (VSDCODER_CACHE_DIR) keeps the model's answers, which "
               "may quote the texts; delete it to remove those too")
