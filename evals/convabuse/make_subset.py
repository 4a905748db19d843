"""Build the ConvAbuse eval suite from the shared copy of the dataset's test split.

Usage: python evals/convabuse/make_subset.py [PATH/TO/ConvAbuseEMNLPtest.csv]

Deterministic (no sampling): all 853 items of the test split.

- data.csv: id (= example_id), text (= user), the context columns prev_agent, prev_user, agent,
  and bot (E.L.I.Z.A. or CarbonBot).
- gold.csv: the test split file itself, every column and the header unchanged (including its
  misnamed columns, see layout.yaml), except that example_id is written as an integer (267, not
  267.0) so that it matches data.csv.

Checks the facts layout.yaml relies on and stops if the source file differs.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPECTED_ITEMS = 853
EXPECTED_COLUMNS = 143
CONTEXT = ("prev_agent", "prev_user", "agent")
#: (0-based position, header name) of the misnamed transphobic columns of annotators 7 and 8.
MISNAMED = ((120, "Annotator6_transphobic"), (137, "Annotator6_transphobic"))


def _int_id(value: str) -> str:
    f = float(value)
    if not f.is_integer():
        raise SystemExit(f"example_id {value!r} is not a whole number")
    return str(int(f))


def main(source: Path) -> None:
    with open(source, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if len(header) != EXPECTED_COLUMNS or len(body) != EXPECTED_ITEMS:
        raise SystemExit(f"{source}: expected {EXPECTED_ITEMS} rows of {EXPECTED_COLUMNS} "
                         f"columns, got {len(body)} of {len(header)}")
    for pos, name in MISNAMED:
        if header[pos] != name:
            raise SystemExit(f"{source}: column {pos + 1} is {header[pos]!r}, expected {name!r}; "
                             "check positions in layout.yaml")
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    ids = [_int_id(r[col["example_id"]]) for r in body]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"{source}: example_id is not unique")

    with open(HERE / "data.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", *CONTEXT, "bot"])
        for uid, r in zip(ids, body, strict=True):
            w.writerow([uid, r[col["user"]], *(r[col[c]] for c in CONTEXT), r[col["bot"]]])

    with open(HERE / "gold.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for uid, r in zip(ids, body, strict=True):
            w.writerow([uid, *r[1:]])
    print(f"data.csv and gold.csv: {len(ids)} items")


if __name__ == "__main__":
    split = Path("datasets", "convabuse", "2_splits", "ConvAbuseEMNLPtest.csv")
    default = ROOT.parent / "shared" / split
    if not default.exists():
        default = Path("/work/shared") / split
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
