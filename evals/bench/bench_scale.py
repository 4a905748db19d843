"""Scale benchmarks: peak memory vs units, and the time to resume a large run (not a test).

    python evals/bench/bench_scale.py [--sizes 1000,10000,100000] [--concurrency 32]

Each size is a synthetic CSV (seeded, varied texts of 12-60 words) coded by ``vsdcoder code``
in its own process against the scripted server (its own process, no latency: the client is
the bottleneck, the worst case for memory growth). Peak memory is the client process's maximum
resident set size (``ru_maxrss`` from ``wait4``). After the largest run: a resume with nothing
left to do, and a resume after 1% of the units were removed from ``run.db``; both timed and
compared with the full run in the same session. Writes evals/bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
HERE = Path(__file__).resolve().parent
WORDS = " ".join((
    "work deadline manager exam family money rent sleep tired anxious worried partner",
    "friend school job boss test grades bills landlord sick doctor appointment lonely",
    "moving house car broke late again week month today tomorrow called said told asked",
    "stress stressed overwhelmed cannot keep up with everything and I am so done")).split()


def make_data(path: Path, n: int, seed: int = 1) -> None:
    """A CSV of ``n`` units with seeded, varied texts."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,text\n")
        for i in range(n):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 60)))
            f.write(f"u{i:07d},Message {i}: {words}\n")


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    """The scripted benchmark server in its own process; returns it and its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "vsdcoder.testing.fake_openai",
                             "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def code(data: Path, out: Path, url: str, concurrency: int, cache_dir: Path,
         extra: list[str] | None = None) -> dict:
    """Run ``vsdcoder code`` in a child process; wall time, peak RSS and the JSON summary."""
    cmd = [sys.executable, "-m", "vsdcoder", "code", str(data), "-c", "sad-stressors",
           "-m", "openai/fake", "--api-base", url, "--out", str(out), "-j", str(concurrency),
           "--json", *(extra or [])]
    env = dict(os.environ, VSDCODER_CACHE_DIR=str(cache_dir), OPENAI_API_KEY="sk-bench")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stdout, stderr = b"", b""
    # read while waiting (a full pipe would block the child), then reap with wait4 for rusage
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"vsdcoder failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    summary = json.loads(stdout)
    return {"seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "counts": summary["counts"], "calls": summary["totals"]["calls"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--keep", help="keep the work directory here")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="vsdscale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    sizes = [int(x) for x in args.sizes.split(",")]
    proc, url = start_server(args.latency)
    rows = []
    try:
        for n in sizes:
            data = tmp / f"data-{n}.csv"
            make_data(data, n)
            out = tmp / f"run-{n}"
            shutil.rmtree(out, ignore_errors=True)
            r = code(data, out, url, args.concurrency, tmp / f"cache-{n}")
            r.update(case=f"code {n:,} units", units=n,
                     units_per_s=round(n / r["seconds"], 1),
                     run_db_mb=round((out / "run.db").stat().st_size / 2**20, 1),
                     data_mb=round(data.stat().st_size / 2**20, 2))
            rows.append(r)
            print(r, flush=True)
        n = sizes[-1]
        data, out = tmp / f"data-{n}.csv", tmp / f"run-{n}"
        full = rows[-1]["seconds"]
        r = code(data, out, url, args.concurrency, tmp / f"cache-{n}")
        r.update(case=f"resume the finished {n:,}-unit run (nothing to do)", units=n,
                 ratio_to_full_run=round(r["seconds"] / full, 4))
        rows.append(r)
        print(r, flush=True)
        db = sqlite3.connect(out / "run.db")
        with db:
            removed = db.execute("DELETE FROM units WHERE row % 100 = 0").rowcount
        db.close()
        r = code(data, out, url, args.concurrency, tmp / "cache-empty", ["--no-cache"])
        r.update(case=f"resume the {n:,}-unit run with 1% ({removed:,}) missing", units=n,
                 ratio_to_full_run=round(r["seconds"] / full, 4))
        rows.append(r)
        print(r, flush=True)
    finally:
        proc.terminate()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, "
              f"{platform.machine()}, Python {platform.python_version()}",
              "concurrency": args.concurrency, "latency_s": args.latency, "rows": rows}
    dest = HERE / "results" / "scale.json"
    dest.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| case | seconds | units/s | peak RSS (MB) | run.db (MB) | ratio to full run |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['seconds']} | {r.get('units_per_s', '-')} | "
              f"{r['peak_rss_mb']} | {r.get('run_db_mb', '-')} | "
              f"{r.get('ratio_to_full_run', '-')} |")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
