"""The privacy-utility trade-off: agreement with gold codes with and without redaction.

Codes an eval suite twice with the same model, once as it is and once with ``--redact``, then
compares both runs with the gold codes side by side (``vsdcoder.evaluate``), and says how many
units had something redacted, how many of those changed code, and the agreement on just those
units. The response cache makes the second run cheap: a unit with nothing to redact sends the
identical request, so its answer comes from the cache.

    .venv/bin/python evals/privacy/tradeoff.py                       # embedded model, SAD, 20 units
    .venv/bin/python evals/privacy/tradeoff.py --limit all
    .venv/bin/python evals/privacy/tradeoff.py --model openai/gpt-4.1-mini --limit 100

``--suite`` is an eval suite's name (``sad``, ``convabuse``: built with
``vsdcoder.suites.build_suite``, the data set found as ``vsdcoder evals build`` finds it or in
``--source DIR``) or a folder holding ``data.csv``, ``gold.csv`` and ``layout.yaml``.

Writes ``evals/privacy/results/tradeoff.json`` (``--json``) and prints a table. The run
directories (``--out-dir``, default ``runs/privacy-tradeoff-<model>``) are resumed when run
again with the same settings.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("agreement", "kappa", "alpha", "ac1", "f1_macro")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="sad", help="eval suite name (see `vsdcoder evals list`) "
                   "or a folder with data.csv, gold.csv, layout.yaml (default sad)")
    p.add_argument("--source", default=None, help="the suite's data set folder (default: looked "
                   "for as `vsdcoder evals build NAME` does)")
    p.add_argument("--codebook", default="sad-stressors")
    p.add_argument("--limit", default="20", help="first N units, or 'all' (default 20)")
    p.add_argument("--model", default=None, help="LiteLLM model (default: embedded)")
    p.add_argument("--api-base", default=None)
    p.add_argument("--redact", default="patterns,presidio")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--out-dir", default=None, help="where the two runs go")
    p.add_argument("--json", default="evals/privacy/results/tradeoff.json")
    return p.parse_args(argv)


def _codes(run_dir: Path, dim: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in (run_dir / "codes.jsonl").read_text(encoding="utf-8").splitlines():
        u = json.loads(line)
        if u.get("status") == "coded":
            out[u["id"]] = (u.get("codes") or {}).get(dim)
    return out


def _redacted_units(run_dir: Path) -> dict[str, dict[str, int]]:
    import sqlite3

    con = sqlite3.connect(run_dir / "run.db")
    try:
        rows = con.execute("SELECT id, redactions FROM units WHERE redactions IS NOT NULL")
        return {uid: json.loads(r) for uid, r in rows if r and json.loads(r)}
    finally:
        con.close()


def _metrics(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per prediction (by run directory): units evaluated and each dimension's coefficients."""
    out = {}
    for pred in report["preds"]:
        dims = {}
        for d in pred["dimensions"]:
            dims[d["name"]] = {m: {"value": d["metrics"][m]["value"], "ci": d["metrics"][m]["ci"]}
                               for m in METRICS if m in d["metrics"]}
        out[pred["source"]] = {"n": pred["units"]["evaluated"],
                               "not_coded": len(pred["units"].get("not_coded") or []),
                               "dimensions": dims}
    return out


def _run_facts(run_dir: Path) -> dict[str, Any]:
    """Counts by status and quotes left unverified, from the run's manifest."""
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return {"counts": m.get("counts", {}),
            "units_quote_unverified": m.get("units_quote_unverified")}


def main(argv: list[str] | None = None) -> int:
    os.chdir(ROOT)
    a = _args(argv)
    import vsdcoder
    from vsdcoder.coding.providers import EMBEDDED_MODEL

    model = a.model or os.environ.get("VSDCODER_MODEL") or EMBEDDED_MODEL
    suite = suite_dir = Path(a.suite)
    if not (suite / "data.csv").is_file():  # a suite's name (or its folder evals/NAME): build it
        from vsdcoder.errors import UsageError
        from vsdcoder.suites import build_suite

        try:
            suite_dir = build_suite(suite.name, source=a.source).dir
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    data, gold, layout = (suite_dir / "data.csv", suite_dir / "gold.csv",
                          suite_dir / "layout.yaml")
    limit = None if a.limit == "all" else int(a.limit)
    slug = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in model)
    out_dir = Path(a.out_dir or f"runs/privacy-tradeoff-{suite.name}-{slug}-{a.limit}")
    runs = {"without": out_dir / "plain", "with": out_dir / "redacted"}
    with open(data, encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    meta = [c for c in header if c not in ("id", "text")]

    timing = {}
    for which, run_dir in runs.items():
        t0 = time.perf_counter()
        s = vsdcoder.code(data, a.codebook, model=model, api_base=a.api_base, out=run_dir,
                          limit=limit, meta_cols=meta, concurrency=a.concurrency,
                          cache=not a.no_cache, progress=sys.stderr.isatty(),
                          redact=a.redact if which == "with" else "none",
                          local_only=False, redacted_output=False)
        timing[which] = round(time.perf_counter() - t0, 1)
        print(f"{which} redaction: {s.status} {s.counts} in {timing[which]} s -> {run_dir}",
              file=sys.stderr)

    report = vsdcoder.evaluate(str(gold), [str(runs["without"]), str(runs["with"])], a.codebook,
                               layout=str(layout), bootstrap=a.bootstrap, permutations=0)
    d = report.to_dict()
    metrics = _metrics(d)
    with open(gold, encoding="utf-8-sig", newline="") as f:
        gold_codes = {r["id"]: r for r in csv.DictReader(f)}
    dims = list(next(iter(metrics.values()))["dimensions"])
    redacted = _redacted_units(runs["with"])
    manifest = json.loads((runs["with"] / "manifest.json").read_text(encoding="utf-8"))

    subset: dict[str, Any] = {}
    for dim in dims:
        plain, red = _codes(runs["without"], dim), _codes(runs["with"], dim)
        both = sorted(set(plain) & set(red))
        changed = [u for u in both if plain[u] != red[u]]
        on_red = [u for u in both if u in redacted and u in gold_codes]
        subset[dim] = {
            "units_compared": len(both),
            "codes_changed_by_redaction": len(changed),
            "changed_units": changed,
            "redacted_units_compared": len(on_red),
            "agreement_on_redacted_units": {
                "without": (sum(plain[u] == gold_codes[u].get(dim) for u in on_red)
                            / len(on_red)) if on_red else None,
                "with": (sum(red[u] == gold_codes[u].get(dim) for u in on_red)
                         / len(on_red)) if on_red else None},
        }

    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "suite": str(suite), "codebook": a.codebook, "model": model, "api_base": a.api_base,
        "limit": a.limit, "redact": a.redact, "bootstrap": a.bootstrap, "seconds": timing,
        "runs": {k: str(v) for k, v in runs.items()},
        "units_redacted": len(redacted),
        "redactions": manifest.get("privacy", {}).get("redactions", {}),
        "redacted_unit_ids": {u: c for u, c in sorted(redacted.items())},
        "without": dict(metrics[str(runs["without"])], **_run_facts(runs["without"])),
        "with": dict(metrics[str(runs["with"])], **_run_facts(runs["with"])),
        "redaction_effect": subset,
    }
    path = Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    def fmt(m: dict[str, Any]) -> str:
        v, ci = m["value"], m["ci"]
        if v is None:
            return "-"
        return f"{v:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{v:.3f}"

    print(f"\n{model} on {suite} ({result['without']['n']} units), --redact {a.redact}")
    print(f"units with something redacted: {len(redacted)}  {result['redactions']}")
    for which in ("without", "with"):
        r = result[which]
        print(f"{which} redaction: {r['counts']}, quote not verified in "
              f"{r['units_quote_unverified']}")
    for dim in dims:
        print(f"\n{dim}:   {'without redaction':>26}   {'with redaction':>26}")
        for m in METRICS:
            w = result["without"]["dimensions"][dim].get(m)
            r = result["with"]["dimensions"][dim].get(m)
            if w and r:
                print(f"  {m:<10} {fmt(w):>26}   {fmt(r):>26}")
        s = subset[dim]
        agr = s["agreement_on_redacted_units"]
        print(f"  codes changed by redaction: {s['codes_changed_by_redaction']} of "
              f"{s['units_compared']}; on the {s['redacted_units_compared']} redacted units "
              f"agreement {agr['without']} -> {agr['with']}")
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
