"""Shared CLI helpers: error reporting and consoles."""

from __future__ import annotations

import sys
from typing import Any


def err(message: str) -> None:
    """Print ``message`` to stderr."""
    print(message, file=sys.stderr)


def _click_exception() -> type[Exception]:
    """Click's ``ClickException``, wherever this typer takes click from.

    Older typer releases use the ``click`` package; newer ones ship their own copy, so the class
    is found through typer's public ``BadParameter`` rather than ``import click``.
    """
    import typer

    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return typer.BadParameter  # pragma: no cover


def run_guarded(app: Any, argv: list[str]) -> int:
    """Run a typer app and return its exit code.

    A :class:`vsdcoder.errors.UsageError` becomes a message on stderr and its exit code (2);
    command-line mistakes (unknown command or option) print click's usage message and give 2.
    """
    import typer

    from vsdcoder.errors import UsageError

    click_exception = _click_exception()
    try:
        # without standalone mode click *returns* the code of a ``typer.Exit(n)`` raised in a
        # command (e.g. 130 after Ctrl-C) instead of raising it
        rc = app(args=argv, prog_name="vsdcoder", standalone_mode=False)
    except UsageError as exc:
        err(f"error: {exc}" if "\n" not in str(exc) else str(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err("aborted")
        return 130
    except click_exception as exc:
        exc.show()  # type: ignore[attr-defined]
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else 0


def console(stderr: bool = False):
    """A rich console (imported lazily)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)
