"""``vsdcoder demo``: the README's main job, on the embedded model by default."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

#: The demo sample (plugins/samples/): messages the project wrote, each with the label it was
#: written to carry.
DEMO_SAMPLE = "stress-demo.csv"
#: The column holding that label.
LABEL = "label"


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command("demo")
    def demo_cmd(
        model: str | None = typer.Option(None, "--model", "-m", envvar="VSDCODER_MODEL",
                                         help="LiteLLM model string (default: embedded local/smollm2)."),
        api_base: str | None = typer.Option(None, "--api-base"),
        out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default under runs/)."),
        limit: int | None = typer.Option(None, "--limit", help="Code only the first N messages."),
        max_retries: int = typer.Option(1, "--max-retries", help="Re-asks after an invalid answer."),
    ) -> None:
        """Code 36 messages written for this demo with the sad-stressors codebook and compare with the labels they were written to carry."""
        from vsdcoder._paths import bundled_dir
        from vsdcoder.cli.output import console
        from vsdcoder.cli.report import print_summary
        from vsdcoder.coding.api import code
        from vsdcoder.coding.providers import EMBEDDED_MODEL

        sample = bundled_dir("plugins") / "samples" / DEMO_SAMPLE
        used = model or EMBEDDED_MODEL
        out_console = console()
        out_console.print(f"Coding {sample.name} with codebook sad-stressors on [bold]{used}[/]. "
                          "Its messages were written for this demo, each to carry one stressor "
                          "category (its label); none is real data. For real human-coded "
                          "messages run the SAD suite: 'vsdcoder evals fetch sad'.")
        if used == EMBEDDED_MODEL:
            out_console.print("The embedded SmolLM2-135M runs offline on the CPU; it is tiny and "
                              "codes poorly. It shows the whole path works; pass --model for a "
                              "capable model (see README).")
        summary = code(sample, "sad-stressors", model=used, api_base=api_base, out=out,
                       meta_cols=[LABEL], limit=limit, max_retries=max_retries,
                       progress=True)
        print_summary(summary)
        _compare(summary.run_dir, sample)
        _evaluate(summary.run_dir, sample)


def _compare(run_dir: Path, sample: Path) -> None:
    import json

    from rich.table import Table

    from vsdcoder.cli.output import console

    human = {r["id"]: r for r in csv.DictReader(sample.open(encoding="utf-8"))}
    table = Table(title="LLM codes beside the labels the messages were written to carry")
    for col in ("id", "text", "LLM", "label", "quote verified"):
        table.add_column(col, overflow="fold")
    agree = n = 0
    for line in (run_dir / "codes.jsonl").read_text(encoding="utf-8").splitlines():
        u = json.loads(line)
        h = human.get(u["id"], {})
        llm = (u.get("codes") or {}).get("stressor") if u["status"] == "coded" else f"[{u['status']}]"
        if u["status"] == "coded":
            n += 1
            agree += llm == h.get(LABEL)
        text = h.get("text", "")
        table.add_row(u["id"], text[:70] + ("…" if len(text) > 70 else ""), str(llm),
                      h.get(LABEL, ""), str(u.get("quote_verified", "")))
    out = console()
    out.print(table)
    if n:
        out.print(f"LLM code = label on {agree} of {n} coded messages ({agree / n:.0%}).")


def _evaluate(run_dir: Path, sample: Path) -> None:
    """The eval of the sample: the run against the written labels (``vsdcoder eval``, compact)."""
    import json

    from vsdcoder.cli.output import console
    from vsdcoder.reliability.evaluate import evaluate
    from vsdcoder.reliability.report import print_report
    from vsdcoder.reliability.types import Ratings

    coded = {json.loads(line)["id"] for line in
             (run_dir / "codes.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    rows = [r for r in csv.DictReader(sample.open(encoding="utf-8")) if r["id"] in coded]
    name = "written label"
    gold = Ratings(units=[r["id"] for r in rows], coders={name: "gold"},
                   values={"stressor": {name: {r["id"]: r[LABEL] for r in rows if r[LABEL]}}},
                   texts={r["id"]: r["text"] for r in rows})
    out = console()
    out.print()
    out.print("Agreement of this run with the written labels (the same as 'vsdcoder eval'; "
              "bootstrap 500):", markup=False, highlight=False)
    report = evaluate(gold, [run_dir], "sad-stressors", bootstrap=500, permutations=500)
    print_report(report, out, compact=True)
