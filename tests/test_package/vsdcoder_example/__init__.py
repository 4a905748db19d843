"""vsdcoder-example: a third-party vsdcoder plugin in one module.

It registers, through vsdcoder's hooks, a codebook (``example-sentiment``), a folder of prompt
templates (``example.v1``, which that codebook uses), a metric, an exporter and a CLI command
(``vsdcoder example-hello``). The entry point in ``pyproject.toml`` makes vsdcoder load it:

    [project.entry-points.vsdcoder]
    example = "vsdcoder_example"
"""

from __future__ import annotations

import json
from pathlib import Path

from vsdcoder.hookspecs import hookimpl

HERE = Path(__file__).parent


@hookimpl
def register_codebooks(register):
    """Register the codebooks shipped in this package."""
    for path in sorted((HERE / "codebooks").glob("*.yaml")):
        register(path)


@hookimpl
def register_template_dirs(register):
    """Register this package's prompt templates (``example.v1``)."""
    register(HERE / "templates")


def percent_agreement(a, b):
    """Share of units on which two coders gave the same code (0.0 to 1.0)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError("both coders must code the same units")
    if not a:
        raise ValueError("no units to compare")
    return sum(x == y for x, y in zip(a, b)) / len(a)


@hookimpl
def register_metrics(register):
    """Register ``example_percent_agreement``."""
    register("example_percent_agreement", percent_agreement)


def export_json(codebook, path):
    """Write a codebook as plain JSON."""
    data = codebook.model_dump(mode="json", exclude_none=True)
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@hookimpl
def register_exporters(register):
    """Register the ``example-json`` codebook exporter."""
    register("example-json", export_json)


@hookimpl
def register_commands(cli):
    """Add ``vsdcoder example-hello``."""
    import typer

    @cli.command("example-hello")
    def example_hello(name: str = typer.Option("world", "--name", help="Who to greet.")) -> None:
        """Say hello from the example plugin."""
        typer.echo(f"Hello, {name}, from vsdcoder-example!")
