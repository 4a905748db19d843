"""Entry point of the ``vsdcoder`` command: builds the typer app and reports user errors.

:func:`build_app` makes a fresh app on every call (so :func:`main` can run many times in one
process, as the tests do); ``vsdcoder.cli.main.app`` is the app built on first access.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from vsdcoder import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}
HELP = ("LLM-based qualitative coding from a YAML codebook, with verified quotes and "
        "reliability against human gold codes.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vsdcoder {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """LLM-based qualitative coding from a YAML codebook."""


def build_app() -> typer.Typer:
    """A new app with the built-in command groups, then whatever the plugins add."""
    from vsdcoder.cli import baseline, code, codebook, demo, plugins, runs
    from vsdcoder.cli import cache as cache_cli
    from vsdcoder.cli import eval as eval_cli
    from vsdcoder.cli import evals as evals_cli
    from vsdcoder.cli import models as models_cli
    from vsdcoder.cli import privacy as privacy_cli
    from vsdcoder.plugins import call_register_commands

    app = typer.Typer(
        name="vsdcoder",
        help=HELP,
        context_settings=CONTEXT,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    app.add_typer(codebook.app, name="codebook")
    code.register(app)
    app.add_typer(runs.app, name="runs")
    app.add_typer(cache_cli.app, name="cache")
    app.add_typer(eval_cli.app, name="eval")
    evals_cli.register(app)
    plugins.register(app)
    demo.register(app)
    privacy_cli.register(app)
    models_cli.register(app)
    baseline.register(app)
    call_register_commands(app)
    return app


_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """``app``: the CLI app, built on first access (for ``typer.testing.CliRunner``)."""
    global _app
    if name == "app":
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    User errors print a message and give exit code 2, never a traceback.
    """
    from vsdcoder.cli.output import run_guarded

    return run_guarded(build_app(), argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
