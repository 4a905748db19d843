"""Entry point of the ``vsdcoder`` command: builds the typer app and reports user errors."""

from __future__ import annotations

import sys

import typer

from vsdcoder import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="vsdcoder",
    help="LLM-based qualitative coding from a YAML codebook, with verified quotes and "
         "reliability against human gold codes.",
    context_settings=CONTEXT,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vsdcoder {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """LLM-based qualitative coding from a YAML codebook."""


def build_app() -> typer.Typer:
    """Attach the built-in command groups, then let plugins add theirs."""
    from vsdcoder.cli import codebook, demo, plugins

    app.add_typer(codebook.app, name="codebook")
    plugins.register(app)
    demo.register(app)
    from vsdcoder.plugins import call_register_commands

    call_register_commands(app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print a message and exit 2, never a traceback."""
    from vsdcoder.cli.output import run_guarded

    return run_guarded(build_app(), argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
