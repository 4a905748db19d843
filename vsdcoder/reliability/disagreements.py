"""The disagreement sheet: every unit where a prediction and the gold differ, for adjudication.

:func:`write_sheet` writes one row per (unit, dimension) where the prediction's code differs
from the gold (within the dimension's scope: where the gold gate is open), as CSV or Excel:

    id, dimension, text, gold, human:<name> (one column per human), llm, llm_quote,
    llm_rationale, adjudicated

``adjudicated`` is empty. A researcher fills it in where the gold should change (a code name;
several codes of a multi-label dimension separated by ``;``; ``[]`` for an explicit empty
set; ``true``/``false`` for ``relevant``; ``(gate closed)`` to clear the gold value) and
:func:`apply_adjudication` puts those values into the gold; :func:`write_gold` writes the
updated gold as a wide CSV (plus a layout file that keeps the human coders, see
docs/reliability.md).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.reliability.evaluate import GATE_CLOSED, EvalReport, evaluate
from vsdcoder.reliability.types import Ratings

FIXED = ("id", "dimension", "text", "gold")
TAIL = ("llm", "llm_quote", "llm_rationale", "adjudicated")
HUMAN_PREFIX = "human:"
EMPTY_SET = "[]"


def format_value(v: Any) -> str:
    """A code value as sheet text: codes joined with ';', '[]' for an empty set."""
    if v is None:
        return ""
    if isinstance(v, (set, frozenset, list, tuple)):
        return ";".join(sorted(str(x) for x in v)) if v else EMPTY_SET
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)


def _evidence(ev: dict[str, Any] | None, dimension: str) -> tuple[str, str]:
    """(quote, rationale) of a prediction on a unit; segment records joined with ' | '.

    A document answer with quotes per dimension shows the dimension's own quote (records with
    a ``dimension``), else the answer's quote.
    """
    if not ev:
        return "", ""
    records = [r for r in ev.get("records") or []
               if isinstance(r, dict) and r.get("dimension") in (None, dimension)]
    if records:
        quotes, rats = [], []
        for rec in records:
            codes = (rec.get("codes") or {}).get(dimension)
            tag = f" [{format_value(codes)}]" if codes not in (None, [], "") else ""
            if rec.get("quote"):
                quotes.append(f"{rec['quote']}{tag}")
            if rec.get("rationale"):
                rats.append(str(rec["rationale"]))
        return " | ".join(quotes), " | ".join(rats)
    return str(ev.get("quote") or ""), str(ev.get("rationale") or "")


def _report(report_or_inputs: Any) -> EvalReport:
    if isinstance(report_or_inputs, EvalReport):
        return report_or_inputs
    if isinstance(report_or_inputs, dict):
        kw = dict(report_or_inputs)
        return evaluate(kw.pop("gold"), kw.pop("pred", None) or kw.pop("preds"),
                        kw.pop("codebook"), bootstrap=0, permutations=0, **kw)
    if isinstance(report_or_inputs, (tuple, list)) and len(report_or_inputs) == 3:
        gold, pred, codebook = report_or_inputs
        return evaluate(gold, pred, codebook, bootstrap=0, permutations=0)
    raise TypeError("write_sheet takes an EvalReport, a (gold, pred, codebook) tuple or a dict "
                    "with gold, pred and codebook")


def sheet_rows(report: EvalReport, pred: str | None = None) -> tuple[list[str], list[dict]]:
    """(columns, rows) of the disagreement sheet of one prediction (default: the first)."""
    p = report.pred(pred)
    ratings = p.ratings or Ratings()
    humans = list(report.gold.get("humans") or [])
    columns = [*FIXED, *(HUMAN_PREFIX + h for h in humans), *TAIL]
    ev = ratings.evidence.get(p.name, {})
    rows = []
    for d in p.dimensions:
        human_vals = {h: ratings.values.get(d.name, {}).get(h, {}) for h in humans}
        for u in d.units:
            g = d.gold_values.get(u)
            v = d.pred_values.get(u)
            if v is None or v == g:
                continue
            quote, rationale = _evidence(ev.get(u), d.name)
            row = {"id": u, "dimension": d.name, "text": ratings.texts.get(u, ""),
                   "gold": format_value(g), "llm": format_value(v), "llm_quote": quote,
                   "llm_rationale": rationale, "adjudicated": ""}
            for h in humans:
                hv = human_vals[h].get(u)
                row[HUMAN_PREFIX + h] = format_value(hv)
            rows.append(row)
    return columns, rows


def write_sheet(report_or_inputs: Any, path: str | Path, *, pred: str | None = None) -> int:
    """Write the disagreement sheet (``.csv`` or ``.xlsx``); returns the number of rows.

    Args:
        report_or_inputs: An :class:`EvalReport`, or ``(gold, pred, codebook)`` / a dict with
            those keys (evaluated without bootstrap).
        path: Output file; the suffix chooses CSV or Excel.
        pred: Which prediction of the report (default: the first).
    """
    report = _report(report_or_inputs)
    columns, rows = sheet_rows(report, pred)
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            _write_xlsx(path, columns, rows)
        elif suffix in (".csv", ".tsv"):
            with open(path, "w", newline="", encoding="utf-8-sig") as f:
                w = csv.DictWriter(f, fieldnames=columns, delimiter="\t" if suffix == ".tsv"
                                   else ",")
                w.writeheader()
                w.writerows(rows)
        else:
            raise UsageError(f"{path}: the disagreement sheet is written as .csv, .tsv or .xlsx")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the disagreement sheet ({exc.strerror})") from None
    return len(rows)


def _write_xlsx(path: Path, columns: list[str], rows: list[dict]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = "disagreements"
    ws.append(columns)
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append([_xlsx_safe(r.get(c, "")) for c in columns])
    widths = {"id": 14, "dimension": 16, "text": 60, "llm_quote": 40, "llm_rationale": 40,
              "adjudicated": 18}
    from openpyxl.utils import get_column_letter

    for i, c in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = widths.get(c, 16)
    adj = columns.index("adjudicated") + 1
    fill = PatternFill("solid", fgColor="FFF2CC")
    for row in ws.iter_rows(min_row=2, min_col=adj, max_col=adj):
        for c in row:
            c.fill = fill
    for row in ws.iter_rows(min_row=2):
        for c in row:
            c.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    wb.save(path)


def _xlsx_safe(v: Any) -> str:
    """Text as a literal cell (a leading '=' would be read as a formula)."""
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@") and s != "-" else s


# -- reading the adjudicated sheet ---------------------------------------------------------------


def read_sheet(path: str | Path) -> list[dict[str, str]]:
    """The rows of a disagreement sheet (CSV, TSV or Excel) as dicts of text."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such sheet")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a bad file
            raise UsageError(f"{path}: cannot read the Excel file ({exc})") from None
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(it, [])]
        rows = []
        for vals in it:
            cells = ["" if v is None else str(v) for v in vals]
            cells = [c[1:] if c.startswith("'") else c for c in cells]
            rows.append(dict(zip(header, cells, strict=False)))
        wb.close()
    else:
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                r = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
                header = [h.strip() for h in (r.fieldnames or [])]
                rows = [{k.strip(): (v or "") for k, v in row.items() if k} for row in r]
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text; save the sheet as UTF-8 CSV") from None
    missing = [c for c in ("id", "dimension", "adjudicated") if c not in header]
    if missing:
        raise UsageError(f"{path}: not a disagreement sheet: no column(s) {', '.join(missing)} "
                         "(write one with 'vsdcoder eval ... --disagreements FILE')")
    return rows


def _codes(codebook: Any, gold: Ratings, dimension: str) -> tuple[str, list[str] | None]:
    """(type, allowed codes) of a dimension; codes None when unknown (no codebook)."""
    if dimension == "relevant":
        return "relevance", ["true", "false"]
    if codebook is not None:
        try:
            d = codebook.dimension(dimension)
        except KeyError:
            return "", None
        typ = "multi" if (d.type == "multi" or codebook.unit == "segment") else d.type
        return typ, d.codable_names()
    seen: set[str] = set()
    typ = "single"
    for by_unit in gold.values.get(dimension, {}).values():
        for v in by_unit.values():
            if isinstance(v, (set, frozenset)):
                typ = "multi"
                seen |= {str(x) for x in v}
            elif v is not None:
                seen.add(str(v))
    return typ, sorted(seen)


def _parse(cell: str, typ: str, allowed: list[str] | None) -> tuple[Any, list[str]]:
    """(value, unknown codes) of an adjudicated cell."""
    s = cell.strip()
    if s == GATE_CLOSED:
        return None, []
    if typ == "relevance":
        low = s.lower()
        if low in ("true", "yes", "1"):
            return "true", []
        if low in ("false", "no", "0"):
            return "false", []
        return None, [s]
    if typ == "multi":
        if s == EMPTY_SET:
            return frozenset(), []
        parts = [p.strip() for p in s.replace(",", ";").split(";") if p.strip()]
        bad = [p for p in parts if allowed is not None and p not in allowed]
        return frozenset(parts), bad
    if allowed is not None and s not in allowed:
        return None, [s]
    return s, []


def apply_adjudication(sheet_path: str | Path, gold_ratings: Ratings, codebook: Any = None,
                       *, gold_name: str = "gold") -> Ratings:
    """The gold with the adjudicated values of a disagreement sheet put in.

    The adjudicated value replaces the gold for that unit and dimension; empty cells are
    ignored. The gold is the coder of kind "gold" if there is one; otherwise a new coder
    ``gold_name`` (kind "gold") is made from the majority of the human coders first.

    Args:
        sheet_path: A sheet written by :func:`write_sheet`, with ``adjudicated`` filled in.
        gold_ratings: The gold the sheet was made from.
        codebook: The codebook (name, path or Codebook) the codes are checked against; without
            it, codes are checked against those seen in the gold.
        gold_name: Name of the gold coder made from the humans' majority (when the gold has
            no coder of kind "gold").

    Raises:
        UsageError: unknown codes, dimensions or ids, each with its row (nothing is applied).
    """
    from vsdcoder.reliability.gold import with_majority

    cb = None
    if codebook is not None:
        from vsdcoder.reliability.evaluate import resolve_codebook

        cb = resolve_codebook(codebook)
    rows = read_sheet(sheet_path)
    golds = [c for c, k in gold_ratings.coders.items() if k == "gold"]
    if golds:
        out = gold_ratings.merge(Ratings())
        name = golds[0]
    else:
        humans = [c for c, k in gold_ratings.coders.items() if k == "human"]
        if not humans:
            raise UsageError("the gold has no human or gold coder to adjudicate")
        name = gold_name
        while name in gold_ratings.coders:
            name += "_adjudicated"
        out = with_majority(gold_ratings, humans, name=name)
    out.values = {d: {c: dict(v) for c, v in by.items()} for d, by in out.values.items()}
    known = set(out.units)
    errors: list[str] = []
    changes: list[tuple[str, str, Any]] = []
    for i, row in enumerate(rows, start=2):
        cell = (row.get("adjudicated") or "").strip()
        if not cell:
            continue
        uid = (row.get("id") or "").strip()
        dim = (row.get("dimension") or "").strip()
        if uid not in known:
            errors.append(f"row {i}: unit id '{uid}' is not in the gold")
            continue
        typ, allowed = _codes(cb, out, dim)
        if not typ:
            errors.append(f"row {i}: '{dim}' is not a dimension of codebook '{cb.name}'")
            continue
        value, bad = _parse(cell, typ, allowed)
        if bad:
            from difflib import get_close_matches

            hints = []
            for b in bad:
                close = get_close_matches(b, allowed or [], n=1)
                hints.append(f"'{b}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            errors.append(f"row {i} (unit {uid}, {dim}): {', '.join(hints)} is not a code of "
                          f"'{dim}'; codes: {', '.join(allowed or [])}")
            continue
        changes.append((uid, dim, value))
    if errors:
        raise UsageError(f"{sheet_path}: {len(errors)} problem(s) in the adjudicated column; "
                         "nothing was applied:\n  " + "\n  ".join(errors))
    for uid, dim, value in changes:
        by_unit = out.values.setdefault(dim, {}).setdefault(name, {})
        if value is None:
            by_unit.pop(uid, None)
        else:
            by_unit[uid] = value
    out.problems = [*out.problems, f"{sheet_path}: {len(changes)} adjudicated value(s) applied "
                    f"to coder '{name}'"]
    return out


def write_gold(ratings: Ratings, path: str | Path, codebook: Any = None) -> Path | None:
    """Write gold Ratings as a wide CSV: id, text, one column per dimension (the gold coder).

    The columns of the gold coder are named like the dimensions, so ``read_gold`` reads the
    file without a layout (as one coder). Each human's codes follow as ``DIMENSION__CODER``;
    a layout file ``<name>.layout.yaml`` written beside the CSV reads every coder back (the
    gold as kind "gold", the humans for the baseline). Returns the layout file's path (None
    when there is only the gold coder).
    """
    path = Path(path)
    golds = [c for c, k in ratings.coders.items() if k == "gold"]
    humans = [c for c, k in ratings.coders.items() if k == "human"]
    if not golds:
        raise UsageError("no gold coder to write (adjudicate first)")
    gold = golds[0]
    dims = list(ratings.values)
    if codebook is not None:
        from vsdcoder.reliability.evaluate import resolve_codebook

        cb = resolve_codebook(codebook)
        order = (["relevant"] if "relevant" in ratings.values else []) + \
            [d.name for d in cb.dimensions]
        dims = [d for d in order if d in ratings.values]
    cols = ["id", "text", *dims, *(f"{d}__{h}" for h in humans for d in dims)]
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for u in ratings.units:
                row = [u, ratings.texts.get(u, "")]
                row += [format_value(ratings.values[d].get(gold, {}).get(u)) for d in dims]
                row += [format_value(ratings.values[d].get(h, {}).get(u))
                        for h in humans for d in dims]
                w.writerow(row)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the gold ({exc.strerror})") from None
    if not humans:
        return None
    layout = {"layout": "coder_blocks", "id": "id", "text": "text",
              "coders": {gold: {d: d for d in dims},
                         **{h: {d: f"{d}__{h}" for d in dims} for h in humans}},
              "kinds": {gold: "gold"}}
    lay_path = path.with_name(path.stem + ".layout.yaml")
    lay_path.write_text("# read with: vsdcoder eval --gold " + path.name + " --layout "
                        + lay_path.name + "\n" + json.dumps(layout, indent=2) + "\n",
                        encoding="utf-8")
    return lay_path


__all__ = ["apply_adjudication", "format_value", "read_sheet", "sheet_rows", "write_gold",
           "write_sheet"]
