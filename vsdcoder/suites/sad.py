"""Build the SAD eval suite (306 messages, 34 per stressor category) from ``SAD_v1.xlsx``.

Deterministic (seeded): keeps sentences the crowd judged to be stressors (``is_stressor`` = 1)
longer than 10 characters, drops duplicate sentences, and draws 34 per ``top_label`` category
(seed 20211), then shuffles them (same seed). Gold is the 5-rater majority ``top_label``, the
``second_label`` and each category's share of the votes.

This is the subset the recorded SAD results were measured on. It was first drawn with pandas
(``groupby("stressor").sample(n=34, random_state=20211)`` then ``sample(frac=1.0,
random_state=20211)``); this module draws the same rows with NumPy's ``RandomState`` (which is
what pandas uses), reads the sheet as ``pandas.read_excel`` does and writes the CSVs as
``DataFrame.to_csv`` does, so pandas is not needed and the files are byte-identical.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError

#: ``top_label`` / ``second_label`` (and the vote-share column names) -> code names of the
#: codebook ``sad-stressors``, in the order of the ``share_<code>`` columns.
LABELS = {
    "Work": "work",
    "School": "school",
    "Financial Problem": "financial_problem",
    "Emotional Turmoil": "emotional_turmoil",
    "Social Relationships": "social_relationships",
    "Family Issues": "family_issues",
    "Health, Fatigue, or Physical Pain": "health_fatigue_physical_pain",
    "Everyday Decision Making": "everyday_decision_making",
    "Other": "other",
}
SEED = 20211
PER_CATEGORY = 34
#: The sheet's columns the subset reads.
COLUMNS = ("sID", "sentence", "is_stressor", "top_label", "second_label", "Votes", "Source",
           *LABELS)
#: Cell texts ``pandas.read_excel`` reads as missing (its default ``na_values``).
_NA_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                      "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                      "nan", "null"})


def _cell(cell: Any) -> Any:
    """A cell as ``pandas.read_excel`` reads it: whole numbers as int, missing as None."""
    value = cell.value
    if value is None or getattr(cell, "data_type", None) == "e":  # empty, or an error (#DIV/0!)
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return None
        as_int = int(value)
        return as_int if as_int == value else float(value)
    if isinstance(value, str) and value in _NA_TEXT:
        return None
    return value


def read_sheet(xlsx: Path) -> dict[str, list[Any]]:
    """The first sheet's columns the subset needs, as lists (missing cells are None).

    Rows as ``pandas.read_excel`` gives them: blank rows in the middle are kept (all None),
    trailing blank rows are dropped.

    Raises:
        UsageError: Not a readable workbook, or a needed column is missing.
    """
    from openpyxl import load_workbook

    try:
        wb = load_workbook(xlsx, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises several kinds for a damaged file
        raise UsageError(f"{xlsx}: not a readable Excel workbook ({exc})") from None
    try:
        ws = wb.worksheets[0]
        ws.reset_dimensions()  # declared dimensions can be wrong; read what is there
        rows = ws.rows
        header = [str(h) if h is not None else "" for h in (_cell(c) for c in next(rows, ()))]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UsageError(f"{xlsx}: no column(s) {', '.join(missing)}; is this SAD_v1.xlsx?")
        pos = {c: header.index(c) for c in COLUMNS}
        table: list[list[Any]] = []
        last = -1
        for row in rows:
            cells = [_cell(c) for c in row]
            table.append(cells)
            if any(v is not None for v in cells):
                last = len(table) - 1
        del table[last + 1:]
    finally:
        wb.close()
    return {c: [r[i] if i < len(r) else None for r in table] for c, i in pos.items()}


def _numeric_kind(values: list[Any]) -> str:
    """``int`` or ``float``: the dtype pandas gives a numeric column (``float`` if any blank)."""
    if any(v is None or isinstance(v, float) for v in values):
        return "float"
    return "int"


def _number(value: Any, kind: str) -> str:
    """A number as ``DataFrame.to_csv`` writes a value of a column of that dtype."""
    if value is None:
        return ""
    return repr(float(value)) if kind == "float" else str(int(value))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def make_subset(xlsx: str | Path, out: str | Path) -> int:
    """Write the SAD suite's ``data.csv`` and ``gold.csv`` into folder ``out``.

    Args:
        xlsx: ``SAD_v1.xlsx`` from the dataset's ``SAD_v1.zip``.
        out: An existing folder.

    Returns:
        The number of units (306).

    Raises:
        UsageError: The workbook is not SAD v1 as expected (columns, categories too small).
    """
    import numpy as np

    xlsx, out = Path(xlsx), Path(out)
    cols = read_sheet(xlsx)
    n = len(cols["sID"])
    id_kind, votes_kind = _numeric_kind(cols["sID"]), _numeric_kind(cols["Votes"])
    share_kind = {c: _numeric_kind(cols[c]) for c in LABELS}

    # filters, in the order of the original pandas code: stressors with more than 10
    # characters, then first occurrence of each sentence, then a known top_label
    seen: set[Any] = set()
    kept: list[int] = []
    for i in range(n):
        sentence = cols["sentence"][i]
        if cols["is_stressor"][i] != 1 or sentence is None or len(str(sentence).strip()) <= 10:
            continue
        if sentence in seen:
            continue
        seen.add(sentence)
        kept.append(i)
    stressor = {i: LABELS.get(cols["top_label"][i]) if isinstance(cols["top_label"][i], str)
                else None for i in kept}
    kept = [i for i in kept if stressor[i] is not None]

    # groupby("stressor").sample(n=34, random_state=SEED): groups in sorted order, one
    # RandomState for all, each drawing choice(size, 34, replace=False) = permutation[:34]
    rs = np.random.RandomState(SEED)
    drawn: list[int] = []
    for code in sorted(set(stressor[i] for i in kept)):
        members = [i for i in kept if stressor[i] == code]
        if len(members) < PER_CATEGORY:
            raise UsageError(f"{xlsx}: only {len(members)} usable sentences of category {code}, "
                             f"need {PER_CATEGORY}; is this SAD_v1.xlsx?")
        drawn += [members[k] for k in rs.permutation(len(members))[:PER_CATEGORY]]
    # sample(frac=1.0, random_state=SEED): a fresh RandomState, permutation of all rows
    order = np.random.RandomState(SEED).permutation(len(drawn))[:len(drawn)]
    rows = [drawn[k] for k in order]

    def second(i: int) -> str:
        v = cols["second_label"][i]
        return LABELS.get(str(v).strip(), "") if v is not None else ""

    def share(c: str, i: int) -> str:
        v = cols[c][i]
        if v is None or share_kind[c] == "int":
            return _number(v, share_kind[c])
        return repr(float(np.round(np.float64(v), 3)))  # Series.round(3) is np.round

    ids = [f"sad-{_number(cols['sID'][i], id_kind)}" for i in rows]
    with open(out / "data.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "text", "source"])
        for uid, i in zip(ids, rows, strict=True):
            w.writerow([uid, _text(cols["sentence"][i]), _text(cols["Source"][i])])
    with open(out / "gold.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "stressor", "second_stressor", "votes",
                    *(f"share_{code}" for code in LABELS.values())])
        for uid, i in zip(ids, rows, strict=True):
            w.writerow([uid, stressor[i], second(i), _number(cols["Votes"][i], votes_kind),
                        *(share(c, i) for c in LABELS)])
    return len(rows)
