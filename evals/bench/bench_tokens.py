"""Tokens per unit with and without multi-unit requests, and what it does to agreement.

    python evals/bench/bench_tokens.py [--units 300] [--ks 1,5,10,20] [--embedded 40]

The SAD suite comes from ``vsdcoder.suites.build_suite("sad")`` (the data set found as
``vsdcoder evals build sad`` finds it, or ``--source DIR``; ``vsdcoder evals fetch sad``
downloads it).

Part 1 (scripted server, usage counted with tiktoken's cl100k_base on what is actually sent:
messages plus the tools schema; the answer for completion tokens): the SAD suite's sentences
coded with ``sad-stressors`` (short prompt) and ``vsd-mental-health`` (the Li et al. prompt,
~2,500 tokens of instructions and codebook) at ``--units-per-call`` K, each measured in the
same session; tokens per unit and the ratio to K=1.

Part 2 (the embedded SmolLM2-135M, the only real model on a machine without API keys): the
first N SAD sentences coded at K=1 and K=5 and compared with the human majority (Cohen's kappa
and accuracy), so a saving in tokens is not silently paid for in reliability.
Writes evals/bench/results/tokens.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
HERE = Path(__file__).resolve().parent


def start_server() -> tuple[subprocess.Popen, str]:
    """The benchmark server with tiktoken-counted usage, no latency."""
    proc = subprocess.Popen([sys.executable, "-m", "vsdcoder.testing.fake_openai",
                             "--latency", "0", "--count-tokens"], stdout=subprocess.PIPE,
                            text=True)
    return proc, proc.stdout.readline().strip()


def tokens_row(codebook: str, k: int, data: Path, url: str, tmp: Path, limit: int) -> dict:
    import vsdcoder

    s = vsdcoder.code(data, codebook, model="openai/gpt-4o-mini", api_base=url,
                      api_key="sk-bench", out=tmp / f"{codebook}-k{k}", units_per_call=k,
                      cache=False, concurrency=8, limit=limit)
    n = s.counts.get("coded", 0)
    t = s.totals
    import litellm

    pin, pout = litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=t["tokens_in"],
                                       completion_tokens=t["tokens_out"])
    return {"codebook": codebook, "k": k, "units": n, "failed": s.counts.get("failed", 0),
            "calls": t["calls"], "tokens_in_per_unit": round(t["tokens_in"] / n, 1),
            "tokens_out_per_unit": round(t["tokens_out"] / n, 1),
            "usd_per_1000_units_gpt4o_mini": round(1000 * (pin + pout) / n, 4)}


def agreement(k: int, n: int, tmp: Path, sad) -> dict:
    import vsdcoder
    from vsdcoder.reliability.evaluate import evaluate

    out = tmp / f"embedded-k{k}"
    t0 = time.perf_counter()
    s = vsdcoder.code(sad.data, "sad-stressors", model="local/smollm2", out=out,
                      units_per_call=k, limit=n, cache=False, max_tokens=160 * k)
    seconds = time.perf_counter() - t0
    report = evaluate(sad.gold, [out], "sad-stressors", layout=sad.layout,
                      bootstrap=500, permutations=200).to_dict()
    dim = report["preds"][0]["dimensions"][0]
    m = dim["metrics"]
    return {"k": k, "units": n, "coded": s.counts.get("coded", 0),
            "failed": s.counts.get("failed", 0), "calls": s.totals["calls"],
            "tokens_in_per_unit": round(s.totals["tokens_in"] / n, 1),
            "seconds": round(seconds, 1), "kappa": m["kappa"]["value"],
            "kappa_ci": m["kappa"]["ci"], "accuracy": m["agreement"]["value"],
            "n_compared": dim["n"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--ks", default="1,5,10,20")
    ap.add_argument("--embedded", type=int, default=40, help="units for part 2 (0 to skip)")
    ap.add_argument("--work", help="work directory (an earlier one resumes its runs)")
    ap.add_argument("--source", help="the SAD data set's folder (default: looked for as "
                    "`vsdcoder evals build sad` does)")
    args = ap.parse_args()
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vsdtokens-"))
    from vsdcoder.errors import UsageError
    from vsdcoder.suites import build_suite

    try:
        sad = build_suite("sad", source=args.source, out=tmp / "suite-sad")
    except UsageError as exc:
        sys.exit(f"error: {exc}")
    os.environ["VSDCODER_CACHE_DIR"] = str(tmp / "cache")
    ks = [int(x) for x in args.ks.split(",")]
    proc, url = start_server()
    rows = []
    try:
        for codebook in ("sad-stressors", "vsd-mental-health"):
            base = None
            for k in ks:
                r = tokens_row(codebook, k, sad.data, url, tmp, args.units)
                base = base or r["tokens_in_per_unit"] + r["tokens_out_per_unit"]
                r["ratio_to_k1"] = round((r["tokens_in_per_unit"] + r["tokens_out_per_unit"])
                                         / base, 3)
                rows.append(r)
                print(r, flush=True)
    finally:
        proc.terminate()
    agree = [agreement(k, args.embedded, tmp, sad) for k in (1, 5)] if args.embedded else []
    for a in agree:
        print(a, flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, "
              f"{platform.machine()}, Python {platform.python_version()}",
              "tokens": rows, "agreement": agree}
    (HERE / "results" / "tokens.json").write_text(json.dumps(result, indent=2, default=str)
                                                  + "\n")
    print("\n| codebook | K | calls | tokens in / unit | tokens out / unit | ratio to K=1 |"
          " $ per 1,000 units (gpt-4o-mini prices) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['codebook']} | {r['k']} | {r['calls']} | {r['tokens_in_per_unit']} | "
              f"{r['tokens_out_per_unit']} | {r['ratio_to_k1']} | "
              f"{r['usd_per_1000_units_gpt4o_mini']} |")
    if agree:
        print("\n| embedded, K | units | coded | failed | calls | tokens in / unit | seconds |"
              " kappa [95% CI] | accuracy |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for a in agree:
            print(f"| {a['k']} | {a['units']} | {a['coded']} | {a['failed']} | {a['calls']} | "
                  f"{a['tokens_in_per_unit']} | {a['seconds']} | {a['kappa']:.3f} "
                  f"[{a['kappa_ci'][0]:.2f}, {a['kappa_ci'][1]:.2f}] | {a['accuracy']:.3f} |")


if __name__ == "__main__":
    main()
