"""Terminal rendering of run summaries."""

from __future__ import annotations

from typing import Any

from vsdcoder.cli.output import console


def print_summary(summary: Any) -> None:
    """Counts, tokens, cost and where the run is, after ``vsdcoder code``."""
    from rich.table import Table

    out = console()
    c = summary.counts
    t = summary.totals
    table = Table(title=f"run {summary.status}: {summary.run_dir}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k in ("coded", "failed", "skipped", "duplicate"):
        if c.get(k):
            table.add_row(k, f"{c[k]:,}")
    if t.get("units_quote_unverified"):
        table.add_row("coded, quote not verified", f"{t['units_quote_unverified']:,}")
    table.add_row("this session", _this_session(summary))
    table.add_row("model calls (cache hits)", f"{t.get('calls', 0):,} ({t.get('cache_hits', 0):,})")
    tokens_in = f"{t.get('tokens_in', 0):,}"
    if t.get("cached_tokens"):  # prompt tokens the provider served from its prompt cache
        tokens_in += f" ({t['cached_tokens']:,} cached by the provider)"
    table.add_row("tokens in / out", f"{tokens_in} / {t.get('tokens_out', 0):,}")
    table.add_row("cost (USD)", f"{t.get('cost_usd', 0):.4f}")
    if t.get("units_in_shared_calls"):
        table.add_row("units re-asked alone after a multi-unit call",
                      f"{t['units_reasked_alone']:,} of {t['units_in_shared_calls']:,}")
    table.add_row("time (s)", f"{summary.elapsed:.1f}")
    out.print(table)
    if summary.status == "budget":
        out.print("[yellow]Stopped at the budget.[/] Run the same command with a higher --budget "
                  "to code the rest.")
    elif summary.status == "interrupted":
        out.print("[yellow]Interrupted.[/] Everything finished so far is saved; run the same "
                  "command to resume.")
    if t.get("units_in_shared_calls") and \
            t["units_reasked_alone"] > t["units_in_shared_calls"] / 2:
        out.print("[yellow]Most answers from multi-unit calls had to be asked for again one "
                  "unit at a time:[/] this model does not follow the multi-unit format well, "
                  "so --units-per-call 1 is likely cheaper and faster.")
    if c.get("failed"):  # counted in the table above; say only what to do about them
        out.print("The failed units have their reason in codes.jsonl ('error'); rerun with "
                  "--retry-failed to try them again.")
    out.print(f"codes: {summary.run_dir}/codes.csv, {summary.run_dir}/codes.jsonl")


def session_counts(run_dir: Any) -> dict[str, int] | None:
    """Units finished in the run's last session, by status (None if run.db cannot say)."""
    import sqlite3
    from pathlib import Path

    path = Path(run_dir) / "run.db" if run_dir else None
    if path is None or not path.is_file():
        return None
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT status, COUNT(*) FROM units WHERE session = "
                              "(SELECT MAX(id) FROM sessions) GROUP BY status").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return {str(k): int(v) for k, v in rows}


def _this_session(summary: Any) -> str:
    """``12 coded, 3 failed`` in this session (units finished, not only those coded)."""
    n = summary.coded_this_session  # every unit finished this session, failed ones too
    counts = session_counts(summary.run_dir)
    if counts is None or sum(counts.get(k, 0) for k in ("coded", "failed")) != n:
        return f"{n:,} unit(s) finished"
    parts = [f"{counts.get('coded', 0):,} coded"]
    if counts.get("failed"):
        parts.append(f"{counts['failed']:,} failed")
    return ", ".join(parts)


def print_dry_run(info: dict[str, Any]) -> None:
    """What a run would do."""
    from rich.panel import Panel

    out = console()
    for m in info["messages"]:
        title = f"{m['role']} message (unit {info['first_unit']})"
        if out.is_terminal:
            out.print(Panel(m["content"], title=title, title_align="left"), markup=False)
        else:  # redirected: full lines, no box (a box cuts every line at its edge)
            out.print(f"===== {title} =====\n{m['content']}", markup=False, highlight=False,
                      crop=False, soft_wrap=True)
    cost = info["estimated_cost_usd"]
    k = info.get("units_per_call", 1)
    what = (f"{info['calls']:,} units to code" if k == 1 else
            f"{info.get('units', 0):,} units to code in {info['calls']:,} calls of up to {k}")
    out.print(f"model {info['model']}: {what}, {info['cached_calls']:,} answered from the "
              f"cache, {info['uncached_calls']:,} calls to pay for")
    out.print(f"estimated tokens: {info['estimated_input_tokens']:,} in, "
              f"~{info['estimated_output_tokens']:,} out (first attempts only)")
    out.print("estimated cost: " + (f"${cost:.4f}" if cost is not None else
                                    "unknown (LiteLLM has no price for this model)"))
