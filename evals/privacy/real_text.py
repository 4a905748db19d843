"""What a redactor finds in real text that has no planted identifiers: SAD and ConvAbuse.

Nothing in these texts is labelled, so there is no recall; every span found is either a real
identifier or a false alarm, and `--show` prints them (on the terminal only) to judge which.
The texts are read from where the eval suites find them (`$VSDCODER_DATASETS/NAME`,
`../shared/datasets/NAME`, or the copy `vsdcoder evals fetch NAME` downloads): the suites'
subsets (the 306 SAD sentences and the 853 ConvAbuse user turns that `vsdcoder evals build`
writes) and the whole data sets (every SAD `sentence`, every ConvAbuse `user` turn of the three
splits, duplicates dropped).

    python evals/privacy/real_text.py                       # patterns
    python evals/privacy/real_text.py --redact patterns,presidio --show

Writes `results/real-text-<redactor>.json`: counts by type only, never a text or a span.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _suite_texts(name: str) -> list[str]:
    from vsdcoder.suites import build_suite

    with tempfile.TemporaryDirectory() as tmp:
        suite = build_suite(name, out=tmp)
        with open(suite.data, encoding="utf-8", newline="") as f:
            return [row["text"] for row in csv.DictReader(f)]


def _whole_sets() -> dict[str, list[str]]:
    from openpyxl import load_workbook

    from vsdcoder.suites.lookup import find_source

    sad = find_source("sad")
    wb = load_workbook(sad / "SAD_v1_unzipped" / "SAD_v1.xlsx", read_only=True, data_only=True)
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        col = list(next(rows)).index("sentence")
        sad_texts = [str(r[col]) for r in rows if r and len(r) > col and r[col] is not None]
    finally:
        wb.close()
    conv = find_source("convabuse")
    turns: list[str] = []
    for split in ("train", "valid", "test"):
        with open(conv / "2_splits" / f"ConvAbuseEMNLP{split}.csv", encoding="utf-8",
                  newline="") as f:
            turns += [r["user"] for r in csv.DictReader(f) if r["user"]]
    return {"sad (all sentences)": list(dict.fromkeys(sad_texts)),
            "convabuse (all user turns)": list(dict.fromkeys(turns))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redact", default="patterns")
    p.add_argument("--show", action="store_true", help="print each span with its context")
    p.add_argument("--results", type=Path, default=HERE / "results")
    args = p.parse_args(argv)

    from vsdcoder.privacy import get_redactor

    redactor = get_redactor(args.redact)
    sets = {"sad (suite, 306)": _suite_texts("sad"),
            "convabuse (suite, 853)": _suite_texts("convabuse"), **_whole_sets()}
    out: dict[str, dict] = {}
    for name, texts in sets.items():
        counts: Counter[str] = Counter()
        with_spans = 0
        for text in texts:
            spans = redactor.find(text)
            with_spans += bool(spans)
            counts.update(s.type for s in spans)
            if args.show:
                for s in spans:
                    print(f"  [{name}] {s.type}: …{text[max(0, s.start - 30):s.start]}"
                          f"[[{s.text}]]{text[s.end:s.end + 30]}…")
        out[name] = {"texts": len(texts), "texts_with_spans": with_spans,
                     "spans": sum(counts.values()), "by_type": dict(sorted(counts.items()))}
        print(f"{name}: {len(texts)} texts, {sum(counts.values())} spans in {with_spans} "
              f"({dict(sorted(counts.items()))})")
    name = args.redact.replace(",", "+")
    path = args.results / f"real-text-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"redactor": args.redact, "sets": out}, indent=1) + "\n",
                    encoding="utf-8")
    print(f"-> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    raise SystemExit(main())
