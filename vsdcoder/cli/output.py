"""Shared CLI helpers: error reporting and consoles."""

from __future__ import annotations

import sys
from typing import Any


def err(message: str) -> None:
    """Print ``message`` to stderr."""
    print(message, file=sys.stderr)


def run_guarded(app: Any, argv: list[str]) -> int:
    """Run a typer app; a :class:`UsageError` becomes a message on stderr and exit code 2."""
    import click

    from vsdcoder.errors import UsageError

    try:
        app(args=argv, prog_name="vsdcoder", standalone_mode=False)
    except UsageError as exc:
        err(f"error: {exc}" if "\n" not in str(exc) else str(exc))
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        err("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    return 0


def console(stderr: bool = False):
    """A rich console (imported lazily)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)
