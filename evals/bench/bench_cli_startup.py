"""Cold-start benchmark of the ``vsdcoder`` command (a script, not a test).

Measures the wall time of ``vsdcoder --help`` over N fresh processes, side by side with
``python -c pass`` (the interpreter's own start-up) and a few other commands, then runs
``python -X importtime`` on ``--help`` to list the slowest imports. Commands are run
round-robin so that background load affects all of them alike.

Usage::

    .venv/bin/python evals/bench/bench_cli_startup.py            # 20 runs each
    .venv/bin/python evals/bench/bench_cli_startup.py --runs 50 --check

Writes ``evals/bench/results/cli_startup.json`` and prints a markdown table.
``--check`` exits 1 when the median of ``vsdcoder --help`` is over the target (0.3 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_OUT = HERE / "results" / "cli_startup.json"
TARGET_S = 0.3
REQUIRED = ("python -c pass", "vsdcoder --help")
HELP_CODE = "from vsdcoder.cli.main import main; main(['--help'])"


def vsdcoder_command() -> list[str]:
    """The installed ``vsdcoder`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / ("vsdcoder.exe" if os.name == "nt" else "vsdcoder")
    if script.is_file():
        return [str(script)]
    found = shutil.which("vsdcoder")
    return [found] if found else [sys.executable, "-m", "vsdcoder.cli.main"]


NO_PLUGINS = {"VSDCODER_LOAD_PLUGINS": ""}


def _relative(arg: str) -> str:
    """``arg`` relative to the current directory when it is a path below it (no machine paths
    in recorded results)."""
    try:
        return str(Path(arg).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return Path(arg).name if os.path.isabs(arg) else arg


def commands() -> dict[str, tuple[list[str], dict[str, str]]]:
    """The commands to time with extra environment, by label (first: the interpreter baseline)."""
    py = sys.executable
    vsd = vsdcoder_command()
    return {
        "python -c pass": ([py, "-c", "pass"], {}),
        "python -c 'import vsdcoder'": ([py, "-c", "import vsdcoder"], {}),
        "vsdcoder --version": ([*vsd, "--version"], {}),
        "vsdcoder --help": ([*vsd, "--help"], {}),
        'VSDCODER_LOAD_PLUGINS="" vsdcoder --help': ([*vsd, "--help"], NO_PLUGINS),
        "vsdcoder codebook validate sad-stressors": (
            [*vsd, "codebook", "validate", "sad-stressors"], {}),
    }


def time_once(cmd: list[str], env: dict[str, str], extra: dict[str, str]) -> float:
    """Wall time of one run of ``cmd`` in seconds (output discarded; it must exit 0)."""
    env = {**env, **extra}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                         + proc.stderr.decode(errors="replace"))
    return elapsed


def p90(values: list[float]) -> float:
    """The 90th percentile (nearest rank)."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(0.9 * len(s) + 0.5) - 1))]


def summarize(samples: list[float]) -> dict[str, float]:
    """median/min/p90/max/mean of ``samples``, in seconds."""
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "p90_s": round(p90(samples), 4),
        "max_s": round(max(samples), 4),
        "mean_s": round(statistics.fmean(samples), 4),
    }


def importtime(env: dict[str, str], top: int = 12) -> dict[str, list[dict]]:
    """Slowest imports of ``vsdcoder --help``, by cumulative and by self time."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", HELP_CODE],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT,
                          text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append({"module": m.group(4), "self_ms": int(m.group(1)) / 1000,
                         "cumulative_ms": int(m.group(2)) / 1000,
                         "depth": len(m.group(3)) // 2})
    first_level = [r for r in rows if r["depth"] == 0]
    by_cum = sorted(rows, key=lambda r: -r["cumulative_ms"])[:top]
    by_self = sorted(rows, key=lambda r: -r["self_ms"])[:top]
    total = sum(r["cumulative_ms"] for r in first_level)
    heavy = sorted({r["module"].split(".")[0] for r in rows} & {
        "pydantic", "litellm", "instructor", "jinja2", "yaml", "numpy", "pandas", "rich",
        "click", "httpx", "openai"})
    return {"total_ms": round(total, 1), "by_cumulative": by_cum, "by_self": by_self,
            "heavy_modules_imported": heavy}


def machine() -> dict[str, object]:
    """Where the numbers were measured."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    import vsdcoder

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "vsdcoder": vsdcoder.__version__,
        "git_commit": commit,
    }


def markdown(result: dict) -> str:
    """The result as a markdown table plus the import offenders."""
    base = result["commands"]["python -c pass"]["median_s"]
    lines = [
        f"{result['machine']['date']}, {result['machine']['cpus']} cores, "
        f"Python {result['machine']['python']}, {result['runs']} runs each, "
        f"load average {result['machine']['loadavg_1m_at_start']} at start, "
        f"target for `vsdcoder --help`: < {result['target_s']} s",
        "",
        "| command | median (s) | min (s) | p90 (s) | median over python (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, s in result["commands"].items():
        lines.append(f"| `{label}` | {s['median_s']:.3f} | {s['min_s']:.3f} | "
                     f"{s['p90_s']:.3f} | {s['median_s'] - base:+.3f} |")
    imp = result["importtime"]
    lines += ["", f"`python -X importtime` of `vsdcoder --help` (total {imp['total_ms']:.0f} ms, "
              "inflated by the instrumentation), slowest imports (nested ones indented):", "",
              "| module | cumulative (ms) | self (ms) |", "|---|---:|---:|"]
    for r in imp["by_cumulative"][:10]:
        name = "\u00a0\u00a0" * r["depth"] + f"`{r['module']}`"
        lines.append(f"| {name} | {r['cumulative_ms']:.1f} | {r['self_ms']:.1f} |")
    lines += ["", "Heavy modules imported by `--help`: "
              + (", ".join(imp["heavy_modules_imported"]) or "none")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 with ``--check`` when ``--help`` misses the target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUT, help="JSON result file")
    ap.add_argument("--no-write", action="store_true", help="do not write the JSON file")
    ap.add_argument("--check", action="store_true",
                    help=f"exit 1 if the median of 'vsdcoder --help' is over {TARGET_S} s")
    args = ap.parse_args(argv)

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    cmds = commands()
    skipped = {}
    for label in [k for k in cmds if k not in REQUIRED]:  # optional rows must work, or go
        cmd, extra = cmds[label]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**env, **extra},
                              cwd=ROOT)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            skipped[label] = f"exit {proc.returncode}: {tail}"
            print(f"skipping `{label}`: {skipped[label]}", file=sys.stderr)
            del cmds[label]
    info = machine()  # before timing, so the load average is the one the runs start with
    for _ in range(args.warmup):
        for cmd, extra in cmds.values():
            time_once(cmd, env, extra)
    samples: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(args.runs):
        for label, (cmd, extra) in cmds.items():
            samples[label].append(time_once(cmd, env, extra))

    result = {
        "benchmark": "cli_startup",
        "machine": info,
        "runs": args.runs,
        "target_s": TARGET_S,
        "vsdcoder_command": " ".join(_relative(a) for a in cmds["vsdcoder --help"][0]),
        "commands": {label: summarize(s) for label, s in samples.items()},
        "skipped": skipped,
        "samples_s": {label: [round(x, 4) for x in s] for label, s in samples.items()},
        "importtime": importtime(env),
    }
    help_median = result["commands"]["vsdcoder --help"]["median_s"]
    result["meets_target"] = help_median < TARGET_S
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    if not args.no_write:
        print(f"\nwrote {args.output}")
    return 1 if args.check and not result["meets_target"] else 0


if __name__ == "__main__":
    sys.exit(main())
