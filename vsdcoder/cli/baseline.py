"""``vsdcoder baseline``: a supervised TF-IDF + logistic regression baseline, as a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``baseline`` command to ``app``."""

    @app.command("baseline")
    def baseline_cmd(
        data: Path = typer.Argument(..., help="CSV, TSV, JSONL, Parquet or Excel file."),
        codebook: str = typer.Option(..., "--codebook", "-c", help="Codebook YAML file or registered name (unit: document)."),
        gold: Path = typer.Option(..., "--gold", "-g", help="Human (gold) codes to train on."),
        layout: Path | None = typer.Option(None, "--layout", help="Layout YAML of the gold file (default: detected)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default under runs/)."),
        folds: int = typer.Option(5, "--folds", help="Cross-validation folds."),
        seed: int = typer.Option(0, "--seed", help="Seed of the folds and the classifiers."),
        id_col: str = typer.Option("id", "--id-col", help="Column with unique ids (as in the gold)."),
        text_col: str = typer.Option("text", "--text-col", help="Column with the text."),
        dimensions: str | None = typer.Option(None, "--dimensions", help="Comma-separated dimensions (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Train TF-IDF + logistic regression on gold codes (k-fold cross-validated); write its out-of-fold codes as a run."""
        from vsdcoder.baseline import MODEL, run_baseline

        if out is None:
            from vsdcoder.coding.runner import default_run_dir

            out = default_run_dir(Path(codebook).stem if codebook.endswith((".yaml", ".yml"))
                                  else codebook, MODEL)
        dims = [d.strip() for d in (dimensions or "").split(",") if d.strip()] or None
        summary = run_baseline(data, codebook, gold, out=out, layout=layout, id_col=id_col,
                               text_col=text_col, folds=folds, seed=seed, dimensions=dims,
                               argv=["vsdcoder", *sys.argv[1:]])
        if as_json:
            typer.echo(json.dumps({"run_dir": str(summary.run_dir), "status": summary.status,
                                   "counts": summary.counts, "cv": summary.cv,
                                   "not_coded": summary.notes}, indent=2, ensure_ascii=False))
            return
        _print(summary)


def _print(summary) -> None:
    from rich.table import Table

    from vsdcoder.cli.output import console

    out = console()
    table = Table(title=f"baseline (TF-IDF + logistic regression), out-of-fold: {summary.run_dir}")
    for col in ("dimension", "units trained on", "folds", "macro-F1", "accuracy"):
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for dim, r in summary.cv.items():
        acc = r.get("accuracy", r.get("exact_match"))
        f1 = "-" if r["macro_f1"] is None else f"{r['macro_f1']:.3f}"
        table.add_row(dim, str(r["n_train"]), str(r["folds"]), f1,
                      f"{acc:.3f}" + (" (exact match)" if "exact_match" in r else ""))
    out.print(table)
    for dim, why in summary.notes.items():
        out.print(f"{dim}: {why}")
    c = summary.counts
    out.print(f"{c.get('coded', 0):,} units coded"
              + (f", {c['skipped']:,} skipped" if c.get("skipped") else "")
              + f" in {summary.elapsed:.1f} s")
    out.print(f"codes: {summary.run_dir}/codes.csv, {summary.run_dir}/codes.jsonl")
