"""``vsdcoder demo``: the README's main job, on the embedded model by default."""

from __future__ import annotations

import csv
from pathlib import Path

import typer


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
        """Code 30 bundled SAD stress messages with the sad-stressors codebook and compare with the human codes."""
        from vsdcoder._paths import bundled_dir
        from vsdcoder.cli.output import console
        from vsdcoder.cli.report import print_summary
        from vsdcoder.coding.api import code
        from vsdcoder.coding.providers import EMBEDDED_MODEL

        sample = bundled_dir("plugins") / "samples" / "sad-demo.csv"
        used = model or EMBEDDED_MODEL
        out_console = console()
        out_console.print(f"Coding {sample.name} (SAD, Mauriello et al. 2021, MIT) with codebook "
                          f"sad-stressors on [bold]{used}[/].")
        if used == EMBEDDED_MODEL:
            out_console.print("The embedded SmolLM2-135M runs offline on the CPU; it is tiny and "
                              "codes poorly. It shows the whole path works; pass --model for a "
                              "capable model (see README).")
        summary = code(sample, "sad-stressors", model=used, api_base=api_base, out=out,
                       meta_cols=["human_stressor"], limit=limit, max_retries=max_retries,
                       progress=True)
        print_summary(summary)
        _compare(summary.run_dir, sample)
        _evaluate(summary.run_dir, sample)


def _compare(run_dir: Path, sample: Path) -> None:
    import json

    from rich.table import Table

    from vsdcoder.cli.output import console

    human = {r["id"]: r for r in csv.DictReader(sample.open(encoding="utf-8"))}
    table = Table(title="LLM codes beside the human (5-rater majority) codes")
    for col in ("id", "text", "LLM", "human", "quote verified"):
        table.add_column(col, overflow="fold")
    agree = n = 0
    for line in (run_dir / "codes.jsonl").read_text(encoding="utf-8").splitlines():
        u = json.loads(line)
        h = human.get(u["id"], {})
        llm = (u.get("codes") or {}).get("stressor") if u["status"] == "coded" else f"[{u['status']}]"
        if u["status"] == "coded":
            n += 1
            agree += llm == h.get("human_stressor")
        text = h.get("text", "")
        table.add_row(u["id"], text[:70] + ("…" if len(text) > 70 else ""), str(llm),
                      h.get("human_stressor", ""), str(u.get("quote_verified", "")))
    out = console()
    out.print(table)
    if n:
        out.print(f"LLM = human code on {agree} of {n} coded messages ({agree / n:.0%}).")



def _evaluate(run_dir: Path, sample: Path) -> None:
    """The eval of the sample: the run against the human codes (``vsdcoder eval``, compact)."""
    import json

    from vsdcoder.cli.output import console
    from vsdcoder.reliability.evaluate import evaluate
    from vsdcoder.reliability.report import print_report
    from vsdcoder.reliability.types import Ratings

    coded = {json.loads(line)["id"] for line in
             (run_dir / "codes.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    rows = [r for r in csv.DictReader(sample.open(encoding="utf-8")) if r["id"] in coded]
    name = "human majority"
    gold = Ratings(units=[r["id"] for r in rows], coders={name: "gold"},
                   values={"stressor": {name: {r["id"]: r["human_stressor"] for r in rows
                                               if r["human_stressor"]}}},
                   texts={r["id"]: r["text"] for r in rows})
    out = console()
    out.print()
    out.print("Reliability of this run against the human codes (the same as 'vsdcoder eval'; "
              "bootstrap 500):", markup=False, highlight=False)
    report = evaluate(gold, [run_dir], "sad-stressors", bootstrap=500, permutations=500)
    print_report(report, out, compact=True)
