"""``vsdcoder codebook ...``: list, validate, show, export and import codebooks."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Write, check and inspect codebooks.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List every registered codebook: name, version, title and source plugin."""
    from vsdcoder.codebook.load import load_codebook_file
    from vsdcoder.errors import UsageError
    from vsdcoder.plugins import get_registry

    rows = []
    for name, entry in sorted(get_registry().codebooks.items()):
        try:
            cb = load_codebook_file(entry.path).codebook
            rows.append({"name": name, "version": cb.version, "title": cb.title or "",
                         "plugin": entry.plugin, "path": str(entry.path), "ok": True})
        except UsageError as exc:
            rows.append({"name": name, "version": "?", "title": f"INVALID: {exc}".splitlines()[0],
                         "plugin": entry.plugin, "path": str(entry.path), "ok": False})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from vsdcoder.cli.output import console

    table = Table(title="codebooks")
    for col in ("name", "version", "title", "plugin"):
        # names whole (never broken mid-word); titles wrap at spaces
        table.add_column(col, no_wrap=col in ("name", "version"),
                         min_width=max([len(r[col]) for r in rows] + [len(col)])
                         if col in ("name", "version") else None)
    for r in rows:
        table.add_row(r["name"], r["version"], r["title"], r["plugin"])
    console().print(table)


@app.command("validate")
def validate_cmd(
    codebook: str = typer.Argument(..., help="A codebook YAML file or a registered name."),
    strict: bool = typer.Option(False, "--strict", help="Treat lint warnings as errors."),
) -> None:
    """Check a codebook: exit 0 with a summary, or 2 with every error.

    Each error reads ``file:line:col: field: what to do``.
    """
    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.codebook.load import load_codebook

    loaded = load_codebook(codebook, strict=strict)
    compiled = compile_codebook(loaded.codebook,
                                search=[loaded.directory] if loaded.directory else None)
    cb = loaded.codebook
    for w in loaded.warnings:
        typer.echo(str(w), err=True)
    n_codes = sum(len(d.codable_names()) for d in cb.dimensions)
    typer.echo(f"OK {cb.name} {cb.version}: unit {cb.unit}, {len(cb.dimensions)} dimension"
               f"{'s' if len(cb.dimensions) != 1 else ''}, {n_codes} codable codes, "
               f"{len(cb.examples)} example{'s' if len(cb.examples) != 1 else ''}, "
               f"{len(loaded.warnings)} warning{'s' if len(loaded.warnings) != 1 else ''}")
    for d in cb.dimensions:
        gate = f" when {d.when.dimension} in {d.when.codes}" if d.when else ""
        typer.echo(f"  {d.name}: {d.type}, {len(d.codable_names())} codes{gate}")
    typer.echo(f"  prompt {compiled.hash}")


@app.command("show")
def show_cmd(
    codebook: str = typer.Argument(..., help="A codebook YAML file or a registered name."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print name, version, hash, messages, schema as JSON."),
    plain: bool = typer.Option(False, "--plain",
                               help="Plain text, full lines, no boxes (the default when the "
                                    "output is not a terminal)."),
) -> None:
    """Print the compiled prompt and the response schema.

    On a terminal each message is in a box; redirected to a file or a pipe (or with --plain)
    it is plain text with every line whole, whatever the width.
    """
    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.codebook.load import load_codebook

    loaded = load_codebook(codebook)
    compiled = compile_codebook(loaded.codebook,
                                search=[loaded.directory] if loaded.directory else None)
    if as_json:
        typer.echo(json.dumps(compiled.to_json(), indent=2, ensure_ascii=False))
        return
    from rich.panel import Panel
    from rich.syntax import Syntax

    from vsdcoder.cli.output import console

    out = console()
    cb = loaded.codebook
    if plain or not out.is_terminal:
        _show_plain(cb, compiled)
        return
    out.print(f"[bold]{cb.name}[/] {cb.version}  {cb.title or ''}")
    out.print(f"prompt {compiled.hash}  (codebook {compiled.codebook_hash})")
    for m in compiled.messages():
        out.print(Panel(m["content"], title=f"{m['role']} message", title_align="left",
                        expand=True), markup=False)
    out.print(Panel(Syntax(json.dumps(compiled.schema, indent=2, ensure_ascii=False), "json",
                           word_wrap=True), title="response schema", title_align="left"))


def _show_plain(cb, compiled) -> None:
    """The prompt and schema as plain text: no box, no wrapping, no truncation."""
    typer.echo(f"{cb.name} {cb.version}  {cb.title or ''}".rstrip())
    typer.echo(f"prompt {compiled.hash}  (codebook {compiled.codebook_hash})")
    for m in compiled.messages():
        typer.echo(f"\n===== {m['role']} message =====")
        typer.echo(m["content"])
    typer.echo("\n===== response schema =====")
    typer.echo(json.dumps(compiled.schema, indent=2, ensure_ascii=False))


def _export_formats() -> list[str]:
    from vsdcoder.plugins import get_registry

    return sorted(get_registry().exporters)


@app.command("export")
def export_cmd(
    codebook: str = typer.Argument(..., help="A codebook YAML file or a registered name."),
    fmt: str = typer.Option("qdc", "--format", "-f", help="Export format (e.g. qdc for REFI-QDA)."),
    out: Path = typer.Option(..., "--output", "-o", help="File to write."),
) -> None:
    """Export a codebook to another format (REFI-QDA .qdc for NVivo, ATLAS.ti, MAXQDA, ...)."""
    from vsdcoder.codebook.load import load_codebook
    from vsdcoder.errors import UsageError
    from vsdcoder.plugins import get_registry
    from vsdcoder.suggest import did_you_mean

    exporters = get_registry().exporters
    if fmt not in exporters:
        raise UsageError(f"unknown export format '{fmt}'; "
                         f"available: {', '.join(_export_formats())}"
                         f"{did_you_mean(fmt, exporters)}")
    loaded = load_codebook(codebook)
    exporters[fmt].obj(loaded.codebook, out)
    typer.echo(f"wrote {out}")


@app.command("import")
def import_cmd(
    source: Path = typer.Argument(..., help="A REFI-QDA codebook (.qdc) or project (.qde/.qdpx)."),
    out: Path = typer.Option(..., "--output", "-o", help="Codebook YAML to write."),
    name: str | None = typer.Option(None, "--name",
                                    help="Codebook name (default: from the file name)."),
    top_level_as_dimensions: bool = typer.Option(
        False, "--top-level-as-dimensions",
        help="Make each top-level code a dimension (default: one multi-label dimension)."),
) -> None:
    """Import a REFI-QDA codebook into vsdcoder YAML (hierarchy, descriptions, colours, sets)."""
    from vsdcoder.codebook.refi import import_qdc

    text = import_qdc(source, name=name, top_level_as_dimensions=top_level_as_dimensions)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")
