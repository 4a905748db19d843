"""Redaction at scale: what ``--redact patterns`` costs a run (not a test; results are recorded).

    python evals/bench/bench_redact.py [--units 3000] [--concurrency 16] [--repeats 2]
                                       [--tag after] [--out evals/bench/results/redact.json]

Every unit brings new identifiers (an e-mail address, a handle, a Reddit user name and a phone
number of its own), so the run's pseudonym key grows by four entities a unit: the worst case
for keeping the key.

1. **Pseudonymisation alone**, as the issue measured it: the units' texts redacted with the
   run's key kept as a run keeps it (before: ``pseudonyms.json`` rewritten whole, with an
   fsync, for every new entity; after: the unit's entities appended to run.db in one
   transaction) against redaction with nothing kept, at 1/3 and all of ``--units``.
2. **Whole runs** against the scripted server (:mod:`vsdcoder.testing.fake_openai`) at 0
   latency, so that the client is all there is: runs without and with ``--redact patterns``
   alternate (``--repeats`` of each, fresh run and cache directories each time), measured side
   by side in one process so that the ratio is meaningful on a noisy machine. Client CPU is
   the vsdcoder process's; a run of 500 units or more finds the spans in a separate process,
   whose CPU is reported apart (the server's is in neither).

Writes the results as JSON (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("VSDCODER_LOAD_PLUGINS", "")
HERE = Path(__file__).resolve().parent


def unit_text(i: int) -> str:
    """A unit with identifiers of its own: e-mail, handle, Reddit user, phone number."""
    return (f"Message {i}: my manager moved the deadline again, write to worker{i}@example.com, "
            f"DM @fox_{i} or u/sad_worker_{i}, or call +44 7700 9{i % 100000:05d} tonight")


def make_data(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,text\n")
        for i in range(n):
            f.write(f'u{i},"{unit_text(i)}"\n')


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "vsdcoder.testing.fake_openai",
                             "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def run(data: Path, out: Path, url: str, concurrency: int, cache_dir: Path,
        redact: str | None) -> dict:
    import resource

    import vsdcoder

    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    s = vsdcoder.code(data, "sad-stressors", model="openai/fake", api_base=url,
                      api_key="sk-bench", out=out, concurrency=concurrency, cache_dir=cache_dir,
                      progress=False, redact=redact or "none")
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the redaction process, once ended
    kids = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    n = s.counts.get("coded", 0)
    red = (s.privacy or {}).get("redactions") or {}
    return {"units": n, "failed": s.counts.get("failed", 0), "seconds": round(wall, 3),
            "units_per_s": round(n / wall, 2), "cpu_ms_per_unit": round(1000 * cpu / max(n, 1), 3),
            "child_cpu_ms_per_unit": round(1000 * kids / max(n, 1), 3), "redactions": red}


def pseudonymise(n: int, run_dir: Path | None) -> dict:
    """Redact ``n`` units; with ``run_dir``, keep the key as a coding run does."""
    from vsdcoder.privacy.engine import RunPseudonyms

    texts = [unit_text(i) for i in range(n)]
    db = None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    if run_dir is not None and hasattr(RunPseudonyms, "rows_for"):  # the key in run.db
        from vsdcoder.store.rundb import RunDB, UnitResult

        db = RunDB(run_dir / "run.db")
        p = RunPseudonyms.open(("patterns",), db, run_dir)
        session = db.start_session(["bench"])
    else:  # before: pseudonyms.json, saved by redact_unit
        p = RunPseudonyms(("patterns",), run_dir)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i, t in enumerate(texts):
        red = p.redact_unit(t, None)
        if db is not None:
            rows = p.rows_for(red)
            db.save(UnitResult(id=f"u{i}", row=i, status="coded"), session, pseudonyms=rows)
            p.mark_saved(rows)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    entities = len(p.mapping)
    if db is not None:
        db.close()
    return {"units": n, "entities": entities, "seconds": round(wall, 3),
            "ms_per_unit": round(1000 * wall / n, 3), "cpu_ms_per_unit": round(1000 * cpu / n, 3)}


def _commit() -> str | None:
    """The commit of the vsdcoder package measured (and whether its tree had changes)."""
    import vsdcoder

    root = Path(vsdcoder.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "vsdcoder"], cwd=root,
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else str(root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each kind, alternating")
    ap.add_argument("--tag", default="after", help="label of this measurement (before/after)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "redact.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vsdbench-redact-"))
    os.environ["VSDCODER_CACHE_DIR"] = str(tmp / "cache-default")

    rows_p = []
    for n in sorted({max(1, args.units // 3), args.units}):
        for kept in (False, True):
            r = pseudonymise(n, tmp / f"pseud-{n}" if kept else None)
            r["case"] = (f"pseudonymise {n:,} units, key kept" if kept
                         else f"pseudonymise {n:,} units, nothing kept")
            r["key_kept"] = kept
            rows_p.append(r)
            print(r, flush=True)

    data = tmp / "data.csv"
    make_data(data, args.units)
    warm = tmp / "warm.csv"
    make_data(warm, 20)
    proc, url = start_server(0.0)
    runs: dict[str, list[dict]] = {"plain": [], "redact": []}
    try:
        run(warm, tmp / "run-warm", url, 4, tmp / "cache-warm", "patterns")  # imports, lazy loads
        for k in range(args.repeats):
            for kind in ("plain", "redact"):
                r = run(data, tmp / f"run-{kind}-{k}", url, args.concurrency,
                        tmp / f"cache-{kind}-{k}", "patterns" if kind == "redact" else None)
                r["case"] = f"{kind} #{k + 1}"
                runs[kind].append(r)
                print(r, flush=True)
    finally:
        proc.terminate()
    plain = statistics.median(r["seconds"] for r in runs["plain"])
    redact = statistics.median(r["seconds"] for r in runs["redact"])
    result = {
        "tag": args.tag, "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
                   f"Python {platform.python_version()}",
        "load_average_at_end": os.getloadavg(), "units": args.units,
        "concurrency": args.concurrency, "server_latency_s": 0.0,
        "pseudonymise": rows_p, "runs": runs["plain"] + runs["redact"],
        "median_seconds": {"plain": plain, "redact": redact},
        "ratio_redact_over_plain": round(redact / plain, 3),
        "cpu_ms_per_unit": {k: statistics.median(r["cpu_ms_per_unit"] for r in v)
                            for k, v in runs.items()},
        "vsdcoder": _commit(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{args.tag}: {args.units:,} units, concurrency {args.concurrency}")
    print("\n| case | units | entities | seconds | ms/unit | CPU ms/unit |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows_p:
        print(f"| {r['case']} | {r['units']} | {r['entities']} | {r['seconds']} "
              f"| {r['ms_per_unit']} | {r['cpu_ms_per_unit']} |")
    print("\n| run | units | seconds | units/s | client CPU ms/unit | redaction process CPU "
          "ms/unit |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs["plain"] + runs["redact"]:
        print(f"| {r['case']} | {r['units']} | {r['seconds']} | {r['units_per_s']} "
              f"| {r['cpu_ms_per_unit']} | {r.get('child_cpu_ms_per_unit', '-')} |")
    print(f"\nmedian: without {plain:.2f} s, with --redact patterns {redact:.2f} s, "
          f"ratio {redact / plain:.2f}")


if __name__ == "__main__":
    main()
