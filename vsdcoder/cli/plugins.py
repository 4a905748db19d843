"""``vsdcoder plugins``: what plugins are loaded and what they register."""

from __future__ import annotations

import json

import typer

KINDS = ("codebooks", "coders", "redactors", "metrics", "exporters")


def register(app: typer.Typer) -> None:
    """Add the ``plugins`` command to ``app``."""

    @app.command("plugins")
    def plugins_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List loaded plugins, their versions, hooks and what they register."""
        from vsdcoder.plugins import get_registry, list_plugins

        reg = get_registry()
        rows = list_plugins()
        for row in rows:
            regs = {kind: sorted(e.name for e in getattr(reg, kind).values()
                                 if e.plugin == row["name"]) for kind in KINDS}
            regs["templates"] = reg.templates_of(row["name"])
            row["registers"] = {k: v for k, v in regs.items() if v}
        from vsdcoder.cli.output import err

        for e in reg.load_errors:  # on stderr, so --json output stays parseable
            err(f"warning: {e}")
        if as_json:
            typer.echo(json.dumps({"plugins": rows, "errors": reg.load_errors}, indent=2))
            return
        from rich.table import Table

        from vsdcoder.cli.output import console

        table = Table(title="vsdcoder plugins")
        for col in ("plugin", "distribution", "version", "hooks", "registers"):
            table.add_column(col, overflow="fold")
        for r in rows:
            regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registers"].items())
            table.add_row(r["name"], r["distribution"], r["version"], ", ".join(r["hooks"]), regs)
        console().print(table)
