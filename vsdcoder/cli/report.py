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
    table.add_row("coded this session", f"{summary.coded_this_session:,}")
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
    if c.get("failed"):
        out.print(f"{c['failed']} unit(s) failed (see codes.jsonl 'error'); rerun with "
                  "--retry-failed to try them again.")
    out.print(f"codes: {summary.run_dir}/codes.csv, {summary.run_dir}/codes.jsonl")


def print_dry_run(info: dict[str, Any]) -> None:
    """What a run would do."""
    from rich.panel import Panel

    out = console()
    for m in info["messages"]:
        out.print(Panel(m["content"], title=f"{m['role']} message (unit {info['first_unit']})",
                        title_align="left"), markup=False)
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
