"""Write ``codes.jsonl`` and ``codes.csv`` from the run database, atomically."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any

from vsdcoder.codebook.model import SPECIFY_SUFFIX, Codebook
from vsdcoder.store.rundb import RunDB


def atomic_write(path: Path, write) -> None:
    """Write via a temporary file and ``os.replace`` so readers never see half a file.

    If the write fails (a full disk, a read-only directory) the temporary file is removed
    and ``path`` keeps its previous content; the error is raised.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def unit_line(u: dict[str, Any]) -> dict[str, Any]:
    """The codes.jsonl object of one stored unit."""
    out: dict[str, Any] = {"id": u["id"], "status": u["status"]}
    if u["result"] is not None:
        out.update(u["result"])
    out["attempts"] = u["attempts"]
    if u["status"] == "coded":
        out["quote_verified"] = u["quote_verified"]
    if u["error"]:
        out["error"] = u["error"]
    if u["duplicate_of"]:
        out["duplicate_of"] = u["duplicate_of"]
    if u["meta"]:
        out["meta"] = u["meta"]
    return out


def _csv_columns(codebook: Codebook, meta_cols: list[str]) -> list[str]:
    cols = ["id", "status", *meta_cols]
    if codebook.unit == "segment":
        cols += ["record"]
    elif codebook.relevance is not None:
        cols += ["relevant"]
    for d in codebook.dimensions:
        cols.append(d.name)
        if d.specify_names():
            cols.append(d.name + SPECIFY_SUFFIX)
    cols += ["quote", "quote_start", "quote_end", "quote_verified"]
    if codebook.evidence.rationale:
        cols.append("rationale")
    return [*cols, "attempts", "error", "duplicate_of"]


def _fmt(v: Any) -> Any:
    if isinstance(v, list):
        return ";".join(str(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else v


def csv_rows(codebook: Codebook, u: dict[str, Any], meta_cols: list[str]) -> list[dict[str, Any]]:
    """The codes.csv rows of one unit (one per record for segment codebooks)."""
    base = {"id": u["id"], "status": u["status"], "attempts": u["attempts"],
            "error": u["error"] or "", "duplicate_of": u["duplicate_of"] or ""}
    for c in meta_cols:
        base[c] = _fmt(u["meta"].get(c))
    res = u["result"] or {}
    if codebook.unit == "segment":
        records = res.get("records") or []
        if not records:
            return [base]
        rows = []
        for i, rec in enumerate(records):
            row = dict(base, record=i + 1)
            row.update({k: _fmt(v) for k, v in rec.get("codes", {}).items()})
            row.update(quote=rec.get("quote", ""), quote_start=_fmt(rec.get("start")),
                       quote_end=_fmt(rec.get("end")),
                       quote_verified=_fmt(rec.get("quote_verified")),
                       rationale=rec.get("rationale") or "")
            rows.append(row)
        return rows
    row = dict(base)
    if res:
        if "relevant" in res:
            row["relevant"] = _fmt(res["relevant"])
        row.update({k: _fmt(v) for k, v in res.get("codes", {}).items()})
        ev = res.get("evidence") or {}
        row.update(quote=ev.get("quote") or "", quote_start=_fmt(ev.get("start")),
                   quote_end=_fmt(ev.get("end")), quote_verified=_fmt(ev.get("quote_verified")),
                   rationale=res.get("rationale") or "")
    return [row]


def write_exports(db: RunDB, run_dir: Path, codebook: Codebook, meta_cols: list[str]) -> None:
    """(Re)write codes.jsonl and codes.csv from run.db."""

    def jsonl(f) -> None:
        for u in db.iter_units():
            f.write(json.dumps(unit_line(u), ensure_ascii=False) + "\n")

    cols = _csv_columns(codebook, meta_cols)

    def csvw(f) -> None:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for u in db.iter_units():
            for row in csv_rows(codebook, u, meta_cols):
                w.writerow(row)

    atomic_write(run_dir / "codes.jsonl", jsonl)
    atomic_write(run_dir / "codes.csv", csvw)


def read_codes_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    """The lines of a ``codes.jsonl`` by unit id (bad lines are errors with their number)."""
    from vsdcoder.errors import UsageError

    lines: dict[str, dict[str, Any]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict) or "id" not in obj:
                    raise UsageError(f"{path}: line {n}: expected an object with an 'id'")
                lines[str(obj["id"])] = obj
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    return lines
