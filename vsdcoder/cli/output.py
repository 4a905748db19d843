"""Shared CLI helpers: error reporting and consoles."""

from __future__ import annotations

import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
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
        # a multi-line message is a list of located errors ("file:line:col: ...") printed as
        # is, unless it is one error with details under it (``headed``)
        headed = "\n" not in str(exc) or getattr(exc, "headed", False)
        err(f"error: {exc}" if headed else str(exc))
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


@contextlib.contextmanager
def data_warnings_to_stderr() -> Iterator[None]:
    """Show :class:`~vsdcoder.data.read.DataWarning` (e.g. ids left out) as ``warning: ...``."""
    import warnings

    from vsdcoder.data.read import DataWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        previous = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, DataWarning):
                err(f"warning: {message}")
            else:
                previous(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


# -- progress of a coding run -------------------------------------------------------------------


class EtaEstimator:
    """Time left from a moving average of the most recent units.

    The rate is the number of the last ``window`` units over the time they took, measured up
    to now (so a stall makes the estimate grow): early bursts (concurrent requests finishing
    together) and the first minutes no longer set the estimate for the whole run. Units
    answered from the response cache take no time and are left out of the window.
    """

    def __init__(self, window: int = 50, clock: Callable[[], float] = time.monotonic):
        self.window = max(2, window)
        self.clock = clock
        self.started = clock()
        self.times: deque[float] = deque(maxlen=self.window)
        self.done = 0

    def update(self, n: int = 1, cached: bool = False) -> None:
        """Count ``n`` finished units (``cached``: answered from the cache, not timed)."""
        self.done += n
        if not cached:
            now = self.clock()
            for _ in range(n):
                self.times.append(now)

    def rate(self) -> float | None:
        """Units per second over the window (None before the first timed unit)."""
        if not self.times:
            return None
        # the window starts at the unit before its first one (or the start of the run)
        if len(self.times) == self.window:
            n, since = self.window - 1, self.times[0]
        else:
            n, since = len(self.times), self.started
        span = self.clock() - since
        if n <= 0 or span <= 0:
            return None
        return n / span

    def remaining(self, left: int) -> float | None:
        """Seconds until ``left`` more units are done (None when unknown)."""
        if left <= 0:
            return 0.0
        r = self.rate()
        return None if not r else left / r


def fmt_duration(seconds: float | None) -> str:
    """``0:19:02``; ``-:--:--`` when unknown."""
    if seconds is None:
        return "-:--:--"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


#: The parts of the progress line, from the first to drop when the terminal is narrow.
_DROP_ORDER = ("label", "elapsed", "tokens", "cost", "rate", "unverified")
#: Narrowest bar worth drawing; widest bar drawn.
_MIN_BAR, _MAX_BAR = 10, 40


def progress_line(done: int, total: int, *, width: int, rate: float | None = None,
                  elapsed: float | None = None, eta: float | None = None, tokens: int = 0,
                  cost: float = 0.0, failed: int = 0, unverified: int = 0) -> Any:
    """The coding progress line, fitted to ``width`` cells (a rich ``Text``).

    The counts (done/total), the ETA and the failures always stay; as the terminal narrows the
    bar shrinks, then goes, then the label, elapsed time, tokens, cost and rate go, in that
    order.
    """
    from rich.text import Text

    parts: dict[str, str] = {
        "label": "coding",
        "count": f"{done:,}/{total:,}",
        "rate": f"{rate:.2f} u/s" if rate else "",
        "elapsed": fmt_duration(elapsed) if elapsed is not None else "",
        "eta": f"ETA {fmt_duration(eta)}",
        "tokens": f"{tokens:,} tok",
        "cost": f"${cost:.4f}",
        "failed": f"{failed:,} failed",
        "unverified": f"{unverified:,} quote unverified" if unverified else "",
    }
    order = ("label", "count", "rate", "elapsed", "eta", "tokens", "cost", "failed", "unverified")
    keep = [k for k in order if parts[k]]

    def length(keys: list[str]) -> int:
        return sum(len(parts[k]) for k in keys) + max(0, len(keys) - 1)

    bar = 0
    room = width - 1 - length(keep) - 1  # one space around the bar, one cell of margin
    if room >= _MIN_BAR:
        bar = min(_MAX_BAR, room)
    else:
        for k in _DROP_ORDER:
            if length(keep) <= width - 1:
                break
            if k in keep:
                keep.remove(k)
    line = Text()
    for i, k in enumerate(keep):
        if i:
            line.append(" ")
        style = {"count": "bold", "failed": "red" if failed else "", "eta": "cyan"}.get(k, "")
        line.append(parts[k], style=style)
        if bar and k == "label":  # the bar goes only after the label has gone
            filled = min(bar, round(bar * done / total)) if total else 0
            line.append(" ")
            line.append("━" * filled, style="bar.complete")
            line.append("━" * (bar - filled), style="bar.back")
    return line


class CodingProgress:
    """The progress line of a coding run: counts, rate, elapsed, ETA, tokens, cost, failures.

    It fits the terminal (see :func:`progress_line`) and its ETA comes from
    :class:`EtaEstimator`. The runner calls :meth:`advance` with each finished unit's result
    (anything with ``tokens_in``, ``tokens_out``, ``cost``, ``status``, ``quote_verified``
    and ``cached``) and :meth:`close` at the end.
    """

    def __init__(self, total: int, enabled: bool, console: Any = None, window: int = 50):
        self.total = total
        self.done = 0
        self.tokens = 0
        self.cost = 0.0
        self.failed = 0
        self.unverified = 0
        self.eta = EtaEstimator(window)
        self.started = time.monotonic()
        self.live = None
        if enabled and total:
            from rich.live import Live

            self.console = console if console is not None else _progress_console()
            self.live = Live(self, console=self.console, refresh_per_second=4, transient=False,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    def __rich__(self) -> Any:
        width = getattr(getattr(self, "console", None), "width", None) or 80
        return self.line(width)

    def line(self, width: int) -> Any:
        """The progress line at ``width`` cells."""
        return progress_line(self.done, self.total, width=width, rate=self.eta.rate(),
                             elapsed=time.monotonic() - self.started,
                             eta=self.eta.remaining(self.total - self.done),
                             tokens=self.tokens, cost=self.cost, failed=self.failed,
                             unverified=self.unverified)

    def advance(self, res: Any) -> None:
        """Count one finished unit."""
        self.done += 1
        self.tokens += (getattr(res, "tokens_in", 0) or 0) + (getattr(res, "tokens_out", 0) or 0)
        self.cost += getattr(res, "cost", 0.0) or 0.0
        self.failed += getattr(res, "status", None) == "failed"
        self.unverified += getattr(res, "quote_verified", None) is False
        self.eta.update(1, cached=bool(getattr(res, "cached", False)))

    def close(self) -> None:
        """Draw the last state and stop."""
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None


def _progress_console() -> Any:
    """The console progress is drawn on: stderr, as the summary on stdout may be piped."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)
