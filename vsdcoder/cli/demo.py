"""``vsdcoder demo``: the README's main job."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command("demo")
    def demo_cmd(
        codebook: str = typer.Option("sad-stressors", "--codebook", help="Codebook to show."),
    ) -> None:
        """Show what vsdcoder asks a model for a bundled codebook (the coding engine comes next)."""
        from vsdcoder.cli.codebook import show_cmd

        show_cmd(codebook=codebook, as_json=False)
