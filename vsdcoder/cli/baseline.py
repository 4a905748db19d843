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
        context_cols: str | None = typer.Option(None, "--context-cols", help="Comma-separated context columns (as in 'code': their words are features of their own, apart from the text's)."),
        meta_cols: str | None = typer.Option(None, "--meta-cols", help="Comma-separated columns carried into the output."),
        encoding: str = typer.Option("utf-8-sig", "--encoding", help="Encoding of CSV/TSV/JSONL files."),
        dedupe_ids: str = typer.Option("error", "--dedupe-ids", help="A repeated id: 'error' (refuse the file, listing every repeat) or 'first' (use the first row of each id)."),
        dimensions: str | None = typer.Option(None, "--dimensions", help="Comma-separated dimensions (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Train TF-IDF + logistic regression on gold codes (k-fold cross-validated); write its out-of-fold codes as a run."""
        from vsdcoder.baseline import MODEL, run_baseline
        from vsdcoder.cli.code import csv_list
        from vsdcoder.cli.output import data_warnings_to_stderr
        from vsdcoder.data.read import DataSpec

        if out is None:
            from vsdcoder.coding.runner import default_run_dir

            out = default_run_dir(Path(codebook).stem if codebook.endswith((".yaml", ".yml"))
                                  else codebook, MODEL)
        dims = [d.strip() for d in (dimensions or "").split(",") if d.strip()] or None
        spec = DataSpec(data, id_col, text_col, csv_list(context_cols), csv_list(meta_cols),
                        encoding, dedupe_ids=dedupe_ids)
        with data_warnings_to_stderr():
            summary = run_baseline(spec, codebook, gold, out=out, layout=layout, folds=folds,
                                   seed=seed, dimensions=dims, argv=["vsdcoder", *sys.argv[1:]])
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
    longest = max([len(d) for d in summary.cv] + [len("dimension")])
    for col in ("dimension", "units trained on", "folds", "macro-F1", "accuracy"):
        # dimension names stay whole (never broken mid-word)
        table.add_column(col, justify="left" if col == "dimension" else "right",
                         overflow="fold" if col == "dimension" else "ellipsis",
                         min_width=min(longest, max(12, out.width // 3))
                         if col == "dimension" else None)
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
