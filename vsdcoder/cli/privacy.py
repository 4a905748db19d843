"""``vsdcoder privacy ...``: measure the redactors that pseudonymise text before it leaves."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Privacy: measure how well redactors find identifying details.",
                  no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

#: The labelled set shipped in the repository (evals/privacy/, built by make_dataset.py).
DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "evals" / "privacy" / "dataset.jsonl"


def register(root: typer.Typer) -> None:
    """Add the ``privacy`` command group to ``root``."""
    root.add_typer(app, name="privacy")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


@app.command("eval")
def eval_cmd(
    redact: str = typer.Option("patterns", "--redact", "-r", help="Redactor names, comma-separated (e.g. patterns,presidio)."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Labelled JSON Lines set (default: evals/privacy/dataset.jsonl)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report (counts, rates, examples) as JSON to this file ('-' for stdout)."),
    min_overlap: float = typer.Option(0.5, "--min-overlap", help="Share of a span's non-space characters that must be covered to count."),
    misses: int = typer.Option(0, "--misses", help="Also print this many missed identifiers."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the table as Markdown."),
) -> None:
    """Recall and precision per entity type of the named redactors on a labelled set."""
    from vsdcoder.errors import UsageError
    from vsdcoder.privacy import get_redactor
    from vsdcoder.privacy.quality import evaluate_redactor

    path = dataset or DEFAULT_DATASET
    if not path.is_file():
        raise UsageError(f"{path}: no labelled set there; pass --dataset FILE.jsonl")
    redactor = get_redactor(redact)
    report = evaluate_redactor(redactor, path, min_overlap=min_overlap)
    if json_out is not None:
        data = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
        if str(json_out) == "-":
            typer.echo(data)
            return
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(data + "\n", encoding="utf-8")
    if markdown:
        typer.echo(report.to_markdown())
    else:
        _print_table(report, path)
    if misses:
        typer.echo(f"\nmissed identifiers (first {misses}):")
        for m in report.misses[:misses]:
            typer.echo(f"  {m['id']}  {m['type']:<12} {m.get('case') or '':<24} {m['context']}")
    if json_out is not None:
        typer.echo(f"report written to {json_out}", err=True)


def _print_table(report, path: Path) -> None:
    from rich.table import Table

    from vsdcoder.cli.output import console

    table = Table(title=f"redactor {report.redactor} on {path.name} ({report.texts} texts, "
                        f"overlap >= {report.min_overlap:g})")
    for col in ("type", "support", "recall", "exact", "masked", "predicted", "precision", "F1"):
        table.add_column(col, justify="left" if col == "type" else "right", no_wrap=True,
                         min_width=len(col))
    for name, s in [*report.per_type.items(), ("all (micro)", report.overall)]:
        table.add_row(name, str(s.support), _pct(s.recall), _pct(s.exact_recall),
                      _pct(s.masked_recall), str(s.predicted - s.neutral), _pct(s.precision),
                      _pct(s.f1))
    out = console()
    out.print(table)
    a = report.any_identifier
    n_sup = sum(v["support"] for v in report.neutral.values())
    n_mask = sum(v["masked"] for v in report.neutral.values())
    d_sup = sum(v["support"] for v in report.decoys.values())
    d_mask = sum(v["masked"] for v in report.decoys.values())
    out.print(f"any identifier masked {a['masked']}/{a['support']} ({_pct(a['masked_recall'])}%), "
              f"fully {a['fully_masked']} ({_pct(a['fully_masked_recall'])}%); texts with every "
              f"identifier masked {a['texts_clean']}/{a['texts_with_identifiers']}; masking "
              f"precision {_pct(a['masking_precision'])}%")
    out.print(f"neutral spans masked (cost to coding) {n_mask}/{n_sup}; decoys masked (false "
              f"alarms) {d_mask}/{d_sup}; {report.seconds:.1f} s")
