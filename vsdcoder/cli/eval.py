"""``vsdcoder eval``: reliability of coding runs against gold codes; ``eval adjudicate``."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Evaluate coding runs against gold codes (human or adjudicated): vsdcoder eval --gold "
         "GOLD --pred RUN [--pred RUN2 ...] --codebook NAME [--json OUT] [--html OUT]; then "
         "'vsdcoder eval adjudicate SHEET ...' to fold adjudicated disagreements into the gold.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    gold: Path | None = typer.Option(None, "--gold", "-g", help="Gold codes: CSV, TSV, JSONL, Parquet or Excel."),
    layout: Path | None = typer.Option(None, "--layout", "-l", help="Layout YAML of the gold file (see docs/reliability.md)."),
    pred: list[Path] | None = typer.Option(None, "--pred", "-p", metavar="RUN_DIR", help="A run directory; repeat to compare several runs."),
    codebook: str | None = typer.Option(None, "--codebook", "-c", help="Codebook YAML file or registered name."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report (schema: docs/reliability.md)."),
    html_out: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report."),
    disagreements: Path | None = typer.Option(None, "--disagreements", "-d", help="Write the disagreement sheet (.csv or .xlsx) of the first --pred."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the confidence intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and the permutation tests."),
    permutations: int = typer.Option(1000, "--permutations", help="Shuffles per code for the permutation test (0: none)."),
    codes: bool = typer.Option(True, "--codes/--no-codes", help="Print the per-code tables."),
    gold_spans: Path | None = typer.Option(None, "--gold-spans", help="Gold spans (CSV: id, code, start, end[, dimension]); also score the quotes (segment records, a document's quote and per-dimension quotes) by span overlap, per dimension and code."),
    min_overlap: float = typer.Option(0.5, "--min-overlap", help="Least IoU of a span match (with --gold-spans)."),
) -> None:
    """Agreement of runs with gold codes, per dimension and code, with CIs and a human baseline."""
    if ctx.invoked_subcommand is not None:
        return
    from vsdcoder.errors import UsageError

    missing = [o for o, v in (("--gold", gold), ("--pred", pred), ("--codebook", codebook))
               if not v]
    if missing:
        raise UsageError(f"vsdcoder eval needs {', '.join(missing)}: e.g. vsdcoder eval --gold "
                         "gold.csv --pred runs/RUN --codebook sad-stressors (see vsdcoder eval "
                         "--help)")
    for p in pred or []:
        if not p.is_dir():
            raise UsageError(f"--pred {p}: no such run directory")
    from vsdcoder.cli.output import console
    from vsdcoder.reliability.evaluate import evaluate
    from vsdcoder.reliability.report import print_report, write_html, write_json

    report = evaluate(gold, list(pred or []), codebook, layout=layout, bootstrap=bootstrap,
                      seed=seed, permutations=permutations, gold_spans=gold_spans,
                      min_overlap=min_overlap)
    out = console()
    print_report(report, out, codes=codes)
    if gold_spans is not None:
        _print_spans(report, out)
    if json_out:
        write_json(report, json_out)
        out.print(f"JSON report: {json_out}", markup=False, highlight=False)
    if html_out:
        write_html(report, html_out)
        out.print(f"HTML report: {html_out}", markup=False, highlight=False)
    if disagreements:
        from vsdcoder.reliability.disagreements import write_sheet

        n = write_sheet(report, disagreements)
        out.print(f"disagreement sheet: {disagreements} ({n} row(s) where "
                  f"{report.preds[0].name} and the gold differ; fill in 'adjudicated', then "
                  "run 'vsdcoder eval adjudicate')", markup=False, highlight=False)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _print_spans(report, out) -> None:
    """A small table of span overlap per prediction, dimension and code."""
    from rich.table import Table

    from vsdcoder.reliability.report import span_summary

    for p in report.preds:
        ov = p.span_overlap or {}
        out.print(f"Span overlap: {p.name}: {span_summary(ov)}", markup=False, highlight=False)
        for dim, sc in (ov.get("dimensions") or {}).items():
            t = Table(title=f"Span overlap: {p.name} / {dim} (IoU >= {sc['min_overlap']})")
            longest = max([len(c) for c in sc["codes"]] + [len("(micro)")])
            for col in ("code", "gold", "pred", "matched", "precision", "recall", "F1",
                        "mean IoU"):
                # code names stay whole (never broken mid-word)
                t.add_column(col, justify="left" if col == "code" else "right",
                             overflow="fold" if col == "code" else "ellipsis",
                             min_width=min(longest, max(12, out.width // 3))
                             if col == "code" else None)
            for code, c in [*sc["codes"].items(), ("(micro)", sc["micro"])]:
                t.add_row(code, str(c["gold"]), str(c["predicted"]), str(c["matched"]),
                          _fmt(c["precision"]), _fmt(c["recall"]), _fmt(c["f1"]),
                          _fmt(c["mean_iou"]))
            out.print(t)


@app.command("adjudicate")
def adjudicate_cmd(
    sheet: Path = typer.Argument(..., help="The disagreement sheet with 'adjudicated' filled in (.csv or .xlsx)."),
    gold: Path = typer.Option(..., "--gold", "-g", help="The gold file the sheet was made from."),
    layout: Path | None = typer.Option(None, "--layout", "-l", help="Layout YAML of the gold file."),
    codebook: str = typer.Option(..., "--codebook", "-c", help="Codebook YAML file or registered name."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the updated gold (wide CSV)."),
) -> None:
    """Put the adjudicated values of a disagreement sheet into the gold and write it as CSV."""
    from vsdcoder.cli.output import console
    from vsdcoder.errors import UsageError
    from vsdcoder.reliability.disagreements import apply_adjudication, read_sheet, write_gold
    from vsdcoder.reliability.gold import read_gold

    if not gold.is_file():
        raise UsageError(f"--gold {gold}: no such file")
    if out.resolve() == gold.resolve():
        raise UsageError(f"--out {out}: this is the gold file itself; write the updated gold to "
                         "a new file")
    n = sum(1 for r in read_sheet(sheet) if (r.get("adjudicated") or "").strip())
    ratings = read_gold(gold, codebook, layout=layout)
    updated = apply_adjudication(sheet, ratings, codebook)
    lay = write_gold(updated, out, codebook)
    c = console()
    c.print(f"{n} adjudicated value(s) from {sheet} put into the gold; written to {out}",
            markup=False, highlight=False)
    if lay is not None:
        c.print(f"read it with: vsdcoder eval --gold {out} --layout {lay} ... (keeps the human "
                "coders for the baseline)", markup=False, highlight=False)
