"""Span overlap of segment codes: predicted records against gold spans.

For segment codebooks the gold may give, per unit, character spans with a code
(``read_gold_spans``: a CSV with ``id``, ``code``, ``start``, ``end`` and optionally
``dimension`` and a coder column; offsets into the unit's text, ``end`` exclusive). A gold span
of code *c* is matched by a predicted record of the same unit that has *c* in the dimension and
whose ``[start, end)`` overlaps the span with character-level IoU (intersection over union) of at
least ``min_overlap``. Matching is one-to-one and greedy by IoU (highest first), per unit and
code. From the matches: precision (matched predicted records / predicted records), recall
(matched gold spans / gold spans) and F1 per code, micro over codes, and the mean IoU of the
matches. Predicted records whose quote was not found in the text (``start`` is None) have no
offsets: they are skipped and counted (``unverified``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError


@dataclass(frozen=True)
class Span:
    """One gold span: ``[start, end)`` of unit ``unit`` has ``code`` (in ``dimension``)."""

    unit: str
    code: str
    start: int
    end: int
    dimension: str | None = None
    coder: str | None = None


class PredRecords(dict):
    """Unit id -> list of records ({"start", "end", "codes"}).

    ``unverified``: how many records had no offsets (quote not found in the text) and were
    skipped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unverified = 0


def read_gold_spans(path: str | Path, *, id_col: str = "id", dimension_col: str = "dimension",
                    code_col: str = "code", start_col: str = "start", end_col: str = "end",
                    coder_col: str | None = None,
                    coder: str | None = None) -> dict[str, list[Span]]:
    """Read gold spans from a CSV: unit id -> its spans, in file order.

    ``dimension_col`` is optional (spans without a dimension count for every dimension).
    With ``coder_col``, each span keeps its coder; ``coder`` keeps only that coder's rows.

    Raises:
        UsageError: missing file or column, or a row with a bad offset or an empty id/code
            (the message names the file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--gold-spans {p}: no such file")
    out: dict[str, list[Span]] = defaultdict(list)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            need = [id_col, code_col, start_col, end_col] + ([coder_col] if coder_col else [])
            missing = [c for c in need if c not in header]
            if missing:
                raise UsageError(f"{p}: line 1: missing column(s) {', '.join(missing)} "
                                 f"(have: {', '.join(header) or 'none'})")
            has_dim = dimension_col in header
            for row in reader:
                line = reader.line_num
                uid = (row.get(id_col) or "").strip()
                code = (row.get(code_col) or "").strip()
                if not uid or not code:
                    raise UsageError(f"{p}: line {line}: empty '{id_col if not uid else code_col}'")
                try:
                    start = int((row.get(start_col) or "").strip())
                    end = int((row.get(end_col) or "").strip())
                except ValueError:
                    raise UsageError(f"{p}: line {line}: '{start_col}' and '{end_col}' must be "
                                     f"whole numbers (got {row.get(start_col)!r}, "
                                     f"{row.get(end_col)!r})") from None
                if start < 0 or end <= start:
                    raise UsageError(f"{p}: line {line}: need 0 <= {start_col} < {end_col} "
                                     f"(got {start}, {end})")
                who = (row.get(coder_col) or "").strip() or None if coder_col else None
                if coder is not None and who != coder:
                    continue
                dim = (row.get(dimension_col) or "").strip() or None if has_dim else None
                out[uid].append(Span(uid, code, start, end, dim, who))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{p}: not valid UTF-8 ({exc.reason})") from None
    except csv.Error as exc:
        raise UsageError(f"{p}: not a readable CSV ({exc})") from None
    return dict(out)


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Character-level intersection over union of ``[a0, a1)`` and ``[b0, b1)``."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def _codes(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple, set, frozenset)):
        return {str(v) for v in value if v is not None}
    return {str(value)}


def _prf(gold: int, pred: int, matched: int, ious: list[float]) -> dict[str, Any]:
    p = matched / pred if pred else None
    r = matched / gold if gold else None
    f = (2 * p * r / (p + r) if p + r else 0.0) if p is not None and r is not None else None
    return {"gold": gold, "predicted": pred, "matched": matched, "precision": p, "recall": r,
            "f1": f, "mean_iou": sum(ious) / len(ious) if ious else None}


def span_scores(gold_spans: Mapping[str, Iterable[Span]],
                pred_records: Mapping[str, Iterable[Mapping[str, Any]]], *, dimension: str,
                min_overlap: float = 0.5, units: Iterable[str] | None = None) -> dict[str, Any]:
    """Precision, recall and F1 of predicted records against gold spans, per code and micro.

    Args:
        gold_spans: unit -> spans (from :func:`read_gold_spans`); spans of another dimension
            are ignored, spans without a dimension count.
        pred_records: unit -> records {"start", "end", "codes": {dimension: str | list}};
            records without offsets are ignored.
        dimension: The dimension scored.
        min_overlap: The least IoU of a match (0 < min_overlap <= 1).
        units: The units scored (default: the units of ``gold_spans``).

    Returns:
        {"dimension", "min_overlap", "n_units", "codes": {code: {"gold", "predicted",
        "matched", "precision", "recall", "f1", "mean_iou"}}, "micro": {same keys}}.
        A coefficient is None where it is undefined (no gold or no predicted span).
    """
    if not 0 < min_overlap <= 1:
        raise UsageError("the minimum span overlap must be in (0, 1], e.g. 0.5")
    scope = list(dict.fromkeys(gold_spans if units is None else units))
    gold: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    pred: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for u in scope:
        for s in gold_spans.get(u, ()):
            if s.dimension in (None, dimension):
                gold[(u, s.code)].append((s.start, s.end))
        for rec in pred_records.get(u, ()):
            if rec.get("start") is None or rec.get("end") is None:
                continue
            for c in _codes((rec.get("codes") or {}).get(dimension)):
                pred[(u, c)].append((int(rec["start"]), int(rec["end"])))
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    ious: dict[str, list[float]] = defaultdict(list)
    for key in sorted(set(gold) | set(pred)):
        g, p = gold.get(key, []), pred.get(key, [])
        pairs = sorted(((iou(a, b), i, j) for i, a in enumerate(g) for j, b in enumerate(p)),
                       key=lambda t: (-t[0], t[1], t[2]))
        used_g: set[int] = set()
        used_p: set[int] = set()
        for v, i, j in pairs:
            if v < min_overlap:
                break
            if i in used_g or j in used_p:
                continue
            used_g.add(i)
            used_p.add(j)
            ious[key[1]].append(v)
        c = per[key[1]]
        c[0] += len(g)
        c[1] += len(p)
        c[2] += len(used_g)
    codes = {c: _prf(*per[c], ious[c]) for c in sorted(per)}
    tot = [sum(per[c][k] for c in per) for k in range(3)]
    return {"dimension": dimension, "min_overlap": min_overlap, "n_units": len(scope),
            "codes": codes, "micro": _prf(*tot, [v for c in ious for v in ious[c]])}


def records_from_evidence(evidence: Mapping[str, Mapping[str, Any]]) -> PredRecords:
    """Unit id -> records with offsets, from ``Ratings.evidence[coder]`` of a segment run."""
    out = PredRecords()
    for uid, ev in evidence.items():
        recs = []
        for rec in (ev or {}).get("records") or []:
            if not isinstance(rec, Mapping):
                continue
            if rec.get("start") is None or rec.get("end") is None:
                out.unverified += 1
                continue
            recs.append(rec)
        out[str(uid)] = recs
    return out


def pred_records_from_run(run_dir: str | Path) -> PredRecords:
    """Unit id -> records with offsets, from a run directory's ``codes.jsonl`` (or the file).

    Only coded units are read (a duplicate unit takes the records of its first copy); records
    without offsets are skipped and counted in ``.unverified``.
    """
    p = Path(run_dir)
    path = p / "codes.jsonl" if p.is_dir() else p
    if not path.is_file():
        raise UsageError(f"{p}: no codes.jsonl here; pass a run directory written by "
                         "'vsdcoder code --out DIR'")
    from vsdcoder.store.exports import read_codes_jsonl

    lines = read_codes_jsonl(path)
    ev: dict[str, dict[str, Any]] = {}
    for uid, obj in lines.items():
        src = obj
        if obj.get("status") == "duplicate" and obj.get("duplicate_of") in lines:
            src = lines[obj["duplicate_of"]]
        if src.get("status", "coded") == "coded":
            ev[uid] = {"records": src.get("records") or []}
    return records_from_evidence(ev)


def span_dimensions(gold_spans: Mapping[str, Iterable[Span]], codebook: Any) -> list[str]:
    """The dimensions to score: those named in the spans, else every non-text dimension."""
    named = {s.dimension for spans in gold_spans.values() for s in spans if s.dimension}
    dims = [d.name for d in codebook.dimensions if getattr(d, "type", None) != "text"]
    if named:
        return [d for d in dims if d in named] + sorted(named - set(dims))
    return dims


__all__ = ["PredRecords", "Span", "iou", "pred_records_from_run", "read_gold_spans",
           "records_from_evidence", "span_dimensions", "span_scores"]
