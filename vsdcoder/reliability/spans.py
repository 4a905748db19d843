"""Span overlap of coded quotes: predicted quotes against gold spans, per dimension and code.

The gold may give, per unit, character spans with a code (``read_gold_spans``: a CSV with
``id``, ``code``, ``start``, ``end`` and optionally ``dimension`` and a coder column; offsets
into the unit's text, ``end`` exclusive). The prediction's quotes are records ``{"start",
"end", "codes": {dimension: code(s)}}``:

- segment codebooks: each record with its quote;
- document codebooks: the answer's ``quote`` with the codes of every dimension that has no
  quote of its own, and each per-dimension quote (``evidence.per_dimension``) with its own
  dimension's code only.

A gold span of code *c* is matched by a predicted record of the same unit that has *c* in the
dimension and whose ``[start, end)`` overlaps the span with character-level IoU (intersection
over union) of at least ``min_overlap``. Matching is one-to-one and greedy by IoU (highest
first), per unit and code. From the matches: precision (matched predicted records / predicted
records), recall (matched gold spans / gold spans) and F1 per code, micro over codes, and the
mean IoU of the matches. Quotes are counted as read; ``unverified`` ones failed the quote check
(not found in the text, or too short), and those without offsets (not found) are skipped.
A coder without quotes (a supervised baseline, a codebook that asks for none) is "not
applicable" (:func:`span_overlap`).
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
    """Unit id -> list of records ({"start", "end", "codes"}) with offsets.

    ``quotes``: the quotes read; ``unverified``: those that failed the quote check (not found in
    the text, or shorter than the minimum); ``skipped``: those without offsets (not found), left
    out of the records.
    """

    def __init__(self) -> None:
        super().__init__()
        self.quotes = 0
        self.unverified = 0
        self.skipped = 0

    def add(self, unit: str, record: Mapping[str, Any]) -> None:
        """Count one quote of ``unit`` and keep it when it has offsets."""
        recs = self.setdefault(unit, [])
        self.quotes += 1
        no_offsets = record.get("start") is None or record.get("end") is None
        if no_offsets or record.get("quote_verified") is False:
            self.unverified += 1
        if no_offsets:
            self.skipped += 1
            return
        recs.append(record)


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


def records_from_evidence(evidence: Mapping[str, Mapping[str, Any]],
                          values: Mapping[str, Mapping[str, Any]] | None = None,
                          codebook: Any = None,
                          units: Iterable[str] | None = None) -> PredRecords:
    """Unit id -> records with offsets, from one coder's evidence.

    The evidence is ``Ratings.evidence[coder]``, or the lines of ``codes.jsonl``.

    Args:
        evidence: unit -> evidence: ``{"records": [...]}`` (segments, and per-dimension quotes
            of documents) and/or ``{"quote", "start", "end", "quote_verified"}`` (a document
            answer's quote).
        values: dimension -> unit -> the coder's value (``Ratings.values[dim][coder]``): the
            codes a document answer's quote supports. Without it, an answer's quote is read
            only where its evidence carries ``codes``.
        codebook: Tells which dimensions have quotes of their own (their values are not
            credited to the answer's quote); without it, those of the unit's records.
        units: The units read (default: every unit of ``evidence``).
    """
    out = PredRecords()
    own = set(codebook.quote_dimensions()) if codebook is not None and hasattr(
        codebook, "quote_dimensions") else None
    for uid in (evidence if units is None else units):
        ev = evidence.get(uid) or {}
        uid = str(uid)
        out.setdefault(uid, [])
        records = [r for r in ev.get("records") or [] if isinstance(r, Mapping)]
        if ev.get("quote") or ev.get("start") is not None:  # a document answer's quote
            by_dim = {r.get("dimension") for r in records if r.get("dimension")}
            skip = own if own is not None else by_dim
            if values is not None:
                codes = {d: by_unit.get(uid) for d, by_unit in values.items() if d not in skip}
            else:
                codes = {d: v for d, v in (ev.get("codes") or {}).items() if d not in skip}
            out.add(uid, {"quote": ev.get("quote"), "start": ev.get("start"),
                          "end": ev.get("end"), "quote_verified": ev.get("quote_verified"),
                          "codes": codes})
        for rec in records:
            out.add(uid, rec)
    return out


def pred_records_from_run(run_dir: str | Path, codebook: Any = None) -> PredRecords:
    """Unit id -> records with offsets, from a run directory's ``codes.jsonl`` (or the file).

    Only coded units are read (a duplicate unit takes the records of its first copy); quotes
    without offsets are skipped and counted (see :class:`PredRecords`). Document answers give
    their quote and their per-dimension quotes (see :func:`records_from_evidence`).
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
        if src.get("status", "coded") != "coded":
            continue
        ev[uid] = {"records": src.get("records") or []}
        quote = src.get("evidence")
        if isinstance(quote, Mapping):
            ev[uid].update(quote, codes=src.get("codes") or {})
    return records_from_evidence(ev, codebook=codebook)


def not_applicable(codebook: Any, kind: str | None) -> str | None:
    """Why span overlap does not apply to a coder of ``kind`` (None when it does)."""
    if kind == "baseline":
        return "a supervised baseline gives codes without quotes"
    if getattr(codebook, "unit", "segment") == "document" and not codebook.evidence.quote \
            and not codebook.quote_dimensions():
        return "the codebook asks for no quotes (evidence.quote: false, no per_dimension)"
    return None


def span_overlap(gold_spans: Mapping[str, Iterable[Span]], codebook: Any,
                 evidence: Mapping[str, Mapping[str, Any]],
                 values: Mapping[str, Mapping[str, Any]] | None, *, kind: str | None = None,
                 units: Iterable[str], dimensions: Iterable[str] | None = None,
                 min_overlap: float = 0.5) -> dict[str, Any]:
    """Span overlap of one coder's quotes on ``units``, per dimension (``PredEval.span_overlap``).

    Returns ``{"applicable": true, "reason": null, "quotes", "unverified", "skipped",
    "dimensions": {dim: span_scores(...)}}``, or ``{"applicable": false, "reason": why, ...}``
    with no dimensions for a coder without quotes.
    """
    units = list(units)
    dims = list(dimensions) if dimensions is not None else span_dimensions(gold_spans, codebook)
    why = not_applicable(codebook, kind)
    if why is not None:
        return {"applicable": False, "reason": why, "quotes": 0, "unverified": 0, "skipped": 0,
                "dimensions": {}}
    recs = records_from_evidence(evidence, values, codebook, units)
    return {"applicable": True, "reason": None, "quotes": recs.quotes,
            "unverified": recs.unverified, "skipped": recs.skipped,
            "dimensions": {d: span_scores(gold_spans, recs, dimension=d,
                                          min_overlap=min_overlap, units=units) for d in dims}}


def span_dimensions(gold_spans: Mapping[str, Iterable[Span]], codebook: Any) -> list[str]:
    """The dimensions to score: those named in the spans, else every non-text dimension."""
    named = {s.dimension for spans in gold_spans.values() for s in spans if s.dimension}
    dims = [d.name for d in codebook.dimensions if getattr(d, "type", None) != "text"]
    if named:
        return [d for d in dims if d in named] + sorted(named - set(dims))
    return dims


__all__ = ["PredRecords", "Span", "iou", "not_applicable", "pred_records_from_run",
           "read_gold_spans", "records_from_evidence", "span_dimensions", "span_overlap",
           "span_scores"]
