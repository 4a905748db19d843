"""Coding-engine benchmarks against the scripted server (not a test; results are recorded).

    python evals/bench/bench_engine.py [--units 1000] [--latencies 0.2,1.0] [--embedded 5]

The scripted server runs in its own process with a fixed latency per request. For each
concurrency level the run's units/s is compared with the ideal ``concurrency / latency``
(measured side by side in one run, so the ratio is meaningful on a noisy machine). Also: a
fully cached re-run, the client CPU time per unit (everything in the vsdcoder process:
vsdcoder, instructor, LiteLLM, SQLite), the embedded model's units/s, and two ceilings: bare
``litellm.acompletion`` with the same requests in one process, and in two processes at once
(one per core: what this machine can do with LiteLLM at all).
Writes evals/bench/results/engine.json and prints a markdown table.
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


def make_data(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,text\n")
        for i in range(n):
            f.write(f"u{i},Message {i}: my manager moved the deadline again and I am exhausted\n")


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "vsdcoder.testing.fake_openai",
                             "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def run(data: Path, out: Path, url: str, concurrency: int, cache_dir: Path, cache: bool = True,
        model: str = "openai/fake", **kw) -> dict:
    import vsdcoder

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    s = vsdcoder.code(data, "sad-stressors", model=model, api_base=url, api_key="sk-bench",
                      out=out, concurrency=concurrency, cache=cache, cache_dir=cache_dir, **kw)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    n = s.counts.get("coded", 0)
    return {"units": n, "failed": s.counts.get("failed", 0), "seconds": round(wall, 3),
            "units_per_s": round(n / wall, 2), "cpu_ms_per_unit": round(1000 * cpu / max(n, 1), 2)}


def bare_litellm(url: str, n: int, concurrency: int) -> dict:
    """The same requests through litellm.acompletion alone (no instructor, no vsdcoder)."""
    import asyncio

    import litellm

    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.codebook.load import load_codebook

    c = compile_codebook(load_codebook("sad-stressors").codebook)
    tools = [{"type": "function", "function": {"name": "Answer", "parameters": c.schema}}]
    choice = {"type": "function", "function": {"name": "Answer"}}

    async def one(i: int, sem: asyncio.Semaphore) -> None:
        async with sem:
            await litellm.acompletion(
                model="openai/fake", api_base=url, api_key="sk-bench", tools=tools,
                tool_choice=choice, messages=c.messages(f"Message {i}: my manager moved it"),
                num_retries=0, max_retries=0)

    async def go() -> None:
        sem = asyncio.Semaphore(concurrency)
        await asyncio.gather(*[one(i, sem) for i in range(n)])

    asyncio.run(one(-1, asyncio.Semaphore(1)))  # warm-up: LiteLLM's lazy imports
    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(go())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"units": n, "failed": 0, "seconds": round(wall, 3), "units_per_s": round(n / wall, 2),
            "cpu_ms_per_unit": round(1000 * cpu / n, 2)}


def bare_two_processes(url: str, n: int, concurrency: int) -> dict:
    """The machine's ceiling: bare LiteLLM in two processes at once (one per core)."""
    cmd = [sys.executable, __file__, "--bare-child", url, str(n // 2), str(concurrency // 2)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - t0
    done = sum(o["units"] for o in outs)
    # each child's own wall time excludes its interpreter start; use the slower child's
    inner = max(o["seconds"] for o in outs)
    return {"units": done, "failed": 0, "seconds": round(inner, 3),
            "units_per_s": round(done / inner, 2),
            "cpu_ms_per_unit": round(sum(o["cpu_ms_per_unit"] * o["units"] for o in outs)
                                     / done, 2), "wall_with_startup_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--latencies", default="0.2,1.0",
                    help="server latencies in seconds, each measured in this run")
    ap.add_argument("--levels", default="1,8,32,64,128")
    ap.add_argument("--embedded", type=int, default=5,
                    help="units for the embedded model (0 to skip)")
    ap.add_argument("--bare-child", nargs=3, metavar=("URL", "UNITS", "CONCURRENCY"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_child:
        url, n, c = args.bare_child
        print(json.dumps(bare_litellm(url, int(n), int(c))), flush=True)
        return
    tmp = Path(tempfile.mkdtemp(prefix="vsdbench-"))
    data = tmp / "data.csv"
    make_data(data, args.units)
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    warm = tmp / "warm.csv"  # imports and LiteLLM's lazy loading, before anything is timed
    make_data(warm, 10)
    proc, url = start_server(0.0)
    try:
        run(warm, tmp / "run-warm", url, 2, tmp / "cache-warm")
    finally:
        proc.terminate()
    for latency in [float(x) for x in args.latencies.split(",")]:
        proc, url = start_server(latency)
        tag = f"latency {latency:g} s"
        try:
            for c in levels:
                # at most ~30 s of ideal time per row (1,000 units at concurrency 1 and 1 s
                # latency would take 17 minutes), at least 100 units
                n = min(args.units, max(100, int(30 * c / latency)))
                rdata = tmp / f"data-{n}.csv"
                if not rdata.exists():
                    make_data(rdata, n)
                r = run(rdata, tmp / f"run-{latency}-c{c}", url, c, tmp / f"cache-{latency}-c{c}")
                ideal = c / latency
                r.update(case=f"{tag}, concurrency {c}", latency=latency, concurrency=c,
                         ideal_units_per_s=round(ideal, 2),
                         ratio=round(r["units_per_s"] / ideal, 3))
                rows.append(r)
                print(r, flush=True)
            c = 64 if 64 in levels else max(levels)  # the target is at 64
            ideal = c / latency
            r = bare_litellm(url, args.units, c)
            r.update(case=f"{tag}, bare litellm.acompletion, concurrency {c} (one process)",
                     latency=latency, concurrency=c, ideal_units_per_s=round(ideal, 2),
                     ratio=round(r["units_per_s"] / ideal, 3))
            rows.append(r)
            print(r, flush=True)
            r = bare_two_processes(url, args.units, c)
            r.update(case=f"{tag}, bare litellm.acompletion, 2 processes x {c // 2} "
                     "(the machine's ceiling)", latency=latency, concurrency=c,
                     ideal_units_per_s=round(ideal, 2), ratio=round(r["units_per_s"] / ideal, 3))
            rows.append(r)
            print(r, flush=True)
            n = min(args.units, max(100, int(30 * c / latency)))
            r = run(tmp / f"data-{n}.csv", tmp / f"run-{latency}-cached", url, c,
                    tmp / f"cache-{latency}-c{c}")
            r.update(case=f"{tag}, fully cached re-run (concurrency {c})", latency=latency,
                     concurrency=c, ideal_units_per_s=None, ratio=None)
            rows.append(r)
            print(r, flush=True)
        finally:
            proc.terminate()
    if args.embedded:
        edata = tmp / "emb.csv"
        make_data(edata, args.embedded)
        r = run(edata, tmp / "run-emb", None, 1, tmp / "cache-emb", model="local/smollm2",
                max_retries=0, max_tokens=120)
        r.update(case="embedded SmolLM2-135M (in-process, no re-asks)", latency=None,
                 concurrency=1, ideal_units_per_s=None, ratio=None)
        rows.append(r)
        print(r, flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, "
              f"{platform.machine()}, Python {platform.python_version()}",
              "load_average_at_end": os.getloadavg(), "units": args.units, "rows": rows}
    out = HERE / "results" / "engine.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| case | units | units/s | ideal | ratio | client CPU ms/unit |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ideal = r["ideal_units_per_s"] or "-"
        print(f"| {r['case']} | {r['units']} | {r['units_per_s']} | {ideal} "
              f"| {r['ratio'] if r['ratio'] is not None else '-'} | {r['cpu_ms_per_unit']} |")


if __name__ == "__main__":
    main()
