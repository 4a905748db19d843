"""``vsdcoder evals ...``: the eval suites: where their data sets are, fetch them, build them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Eval suites built from public human-coded data sets (SAD, ConvAbuse): list them, "
         "fetch a data set from its source, build a suite's data.csv, gold.csv and layout.yaml.",
    no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def register(root: typer.Typer) -> None:
    """Add the ``evals`` command group to ``root``."""
    root.add_typer(app, name="evals")


def _say(line: str) -> None:
    typer.echo(line, err=True)


@app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Each suite: where its data set was found (or how to fetch it), licence and citation."""
    from vsdcoder.suites import SUITES, locate

    rows = []
    for suite in SUITES.values():
        found = locate(suite.name)
        rows.append({
            "name": suite.name, "title": suite.title, "codebook": suite.codebook,
            "units": suite.units,
            "source": str(found[1]) if found else None, "found_via": found[0] if found else None,
            "origin": suite.repository, "licence": suite.licence,
            "licence_url": suite.licence_url, "citation": suite.citation,
            "doi": f"https://doi.org/{suite.doi}", "note": suite.note or None})
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for i, r in enumerate(rows):
        if i:
            typer.echo("")
        typer.echo(f"{r['name']}: {r['title']}")
        typer.echo(f"  units:    {r['units']}, codebook {r['codebook']}")
        if r["source"]:
            typer.echo(f"  source:   {r['source']} ({r['found_via']})")
        else:
            typer.echo(f"  source:   not found: run `vsdcoder evals fetch {r['name']}`")
        typer.echo(f"  origin:   {r['origin']}")
        typer.echo(f"  licence:  {r['licence']} ({r['licence_url']})")
        typer.echo(f"  cite:     {r['citation']} {r['doi']}")
        if r["note"]:
            typer.echo(f"  note:     {r['note']}")


@app.command("fetch")
def fetch_cmd(
    name: str = typer.Argument(..., help="The suite (see 'vsdcoder evals list')."),
    dest: Path | None = typer.Option(None, "--dest", help="Folder for the data set's files (default: DATA_DIR/datasets/NAME, DATA_DIR being $VSDCODER_DATA_DIR or the user data dir)."),
    base_url: str | None = typer.Option(None, "--base-url", envvar="VSDCODER_DATASETS_URL", help="Replaces https://raw.githubusercontent.com (a mirror with the same <owner>/<repo>/<commit>/<path> layout)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where to build the suite (default: CACHE_DIR/evals/NAME, CACHE_DIR being $VSDCODER_CACHE_DIR or the user cache dir)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the server."),
) -> None:
    """Download a data set from its public source (checksums verified), then build the suite; print the suite's folder."""
    from vsdcoder.suites import build_suite, fetch_suite

    folder = fetch_suite(name, dest=dest, base_url=base_url, timeout=timeout, log=_say)
    _say(f"data set: {folder}" + ("" if dest is None else
         f" (build from it later with --source {folder})"))
    built = build_suite(name, source=folder, out=out)
    _say(f"built {built.name}: {built.units} units (data.csv, gold.csv, layout.yaml)")
    typer.echo(str(built.dir))


@app.command("build")
def build_cmd(
    name: str = typer.Argument(..., help="The suite (see 'vsdcoder evals list')."),
    source: Path | None = typer.Option(None, "--source", help="The data set's folder, e.g. holding 2_splits/ConvAbuseEMNLPtest.csv (default: looked for as said above)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: CACHE_DIR/evals/NAME, CACHE_DIR being $VSDCODER_CACHE_DIR or the user cache dir)."),
) -> None:
    """Write a suite's data.csv, gold.csv and layout.yaml and print their folder: DIR=$(vsdcoder evals build sad).

    The data set is looked for in: --source DIR; $VSDCODER_DATASETS/NAME; ../shared/datasets/NAME
    beside the repository checkout, then relative to the current directory; the folder
    'vsdcoder evals fetch NAME' fills. Its file must match the pinned SHA-256.
    """
    from vsdcoder.suites import build_suite

    built = build_suite(name, source=source, out=out)
    _say(f"built {built.name} from {built.source}: {built.units} units; code it with "
         f"--codebook {built.codebook}")
    typer.echo(str(built.dir))
