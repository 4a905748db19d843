"""``vsdcoder plugins``: what plugins are loaded and what they register."""

from __future__ import annotations

import json

import typer


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
            row["registers"] = {
                kind: sorted(e.name for e in getattr(reg, kind).values() if e.plugin == row["name"])
                for kind in ("codebooks", "coders", "redactors", "metrics", "exporters")
            }
            row["registers"] = {k: v for k, v in row["registers"].items() if v}
        if as_json:
            typer.echo(json.dumps({"plugins": rows, "errors": reg.load_errors}, indent=2))
            return
        from rich.table import Table

        from vsdcoder.cli.output import console

        table = Table(title="vsdcoder plugins")
        for col in ("plugin", "distribution", "version", "hooks", "registers"):
            table.add_column(col)
        for r in rows:
            regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registers"].items())
            table.add_row(r["name"], r["distribution"], r["version"], ", ".join(r["hooks"]), regs)
        out = console()
        out.print(table)
        for e in reg.load_errors:
            console(stderr=True).print(f"[yellow]warning:[/] {e}")
