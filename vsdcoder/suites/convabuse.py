"""Build the ConvAbuse eval suite from the dataset's test split (``ConvAbuseEMNLPtest.csv``).

Deterministic (no sampling): all 853 items of the test split.

- ``data.csv``: ``id`` (= ``example_id``), ``text`` (= ``user``), the context columns
  ``prev_agent``, ``prev_user``, ``agent``, and ``bot`` (E.L.I.Z.A. or CarbonBot).
- ``gold.csv``: the test split file itself, every column and the header unchanged (including
  its misnamed columns, see the suite's ``layout.yaml``), except that ``example_id`` is written
  as an integer (267, not 267.0) so that it matches ``data.csv``.

Checks the facts ``layout.yaml`` relies on and stops if the source file differs.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vsdcoder.errors import UsageError

EXPECTED_ITEMS = 853
EXPECTED_COLUMNS = 143
CONTEXT = ("prev_agent", "prev_user", "agent")
#: (0-based position, header name) of the misnamed transphobic columns of annotators 7 and 8.
MISNAMED = ((120, "Annotator6_transphobic"), (137, "Annotator6_transphobic"))


def _int_id(value: str, source: Path) -> str:
    try:
        f = float(value)
    except ValueError:
        f = float("nan")
    if not f.is_integer():
        raise UsageError(f"{source}: example_id {value!r} is not a whole number")
    return str(int(f))


def make_subset(source: str | Path, out: str | Path) -> int:
    """Write the ConvAbuse suite's ``data.csv`` and ``gold.csv`` into folder ``out``.

    Args:
        source: ``2_splits/ConvAbuseEMNLPtest.csv`` of the dataset.
        out: An existing folder.

    Returns:
        The number of items (853).

    Raises:
        UsageError: The file is not the test split as expected (rows, columns, misnamed
            columns, ids).
    """
    source, out = Path(source), Path(out)
    with open(source, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise UsageError(f"{source}: empty file")
    header, body = rows[0], rows[1:]
    if len(header) != EXPECTED_COLUMNS or len(body) != EXPECTED_ITEMS:
        raise UsageError(f"{source}: expected {EXPECTED_ITEMS} rows of {EXPECTED_COLUMNS} "
                         f"columns, got {len(body)} of {len(header)}")
    for pos, name in MISNAMED:
        if header[pos] != name:
            raise UsageError(f"{source}: column {pos + 1} is {header[pos]!r}, expected "
                             f"{name!r}; check positions in layout.yaml")
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    ids = [_int_id(r[col["example_id"]], source) for r in body]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{source}: example_id is not unique")

    with open(out / "data.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", *CONTEXT, "bot"])
        for uid, r in zip(ids, body, strict=True):
            w.writerow([uid, r[col["user"]], *(r[col[c]] for c in CONTEXT), r[col["bot"]]])

    with open(out / "gold.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for uid, r in zip(ids, body, strict=True):
            w.writerow([uid, *r[1:]])
    return len(ids)
