"""Read units to code from CSV, TSV, JSONL, Parquet or Excel, one at a time.

Rows are streamed, so a 100,000-row file is never held in memory. Problems with the data are
reported as :class:`~vsdcoder.errors.UsageError` naming the file, the row and what to do
(missing columns list the columns that exist), or as skips that the run records and counts
(empty texts, duplicate texts when de-duplicating).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError

FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xlsm": "excel",
}


@dataclass(frozen=True)
class Unit:
    """One text to code, with context shown to the model and metadata carried to the output."""

    id: str
    text: str
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    row: int = 0


@dataclass(frozen=True)
class Skip:
    """A row that is not coded, and why."""

    id: str
    row: int
    reason: str
    duplicate_of: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSpec:
    """Which file and columns to read."""

    path: Path
    id_col: str = "id"
    text_col: str = "text"
    context_cols: tuple[str, ...] = ()
    meta_cols: tuple[str, ...] = ()
    encoding: str = "utf-8-sig"
    dedupe: bool = False
    fmt: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.context_cols = tuple(self.context_cols)
        self.meta_cols = tuple(self.meta_cols)


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The reader for ``path`` (from ``fmt`` or the file suffix)."""
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise UsageError(f"unknown data format '{fmt}'; use one of: "
                             + ", ".join(sorted(set(FORMATS.values()))))
        return fmt
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: cannot tell the format from the suffix '{path.suffix}'; "
                         "use .csv, .tsv, .jsonl, .parquet or .xlsx (or pass --format)")
    return kind


def file_hash(path: Path) -> str:
    """``sha256:`` digest of the file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        if v != v:  # NaN from pandas/pyarrow
            return None
        if v.is_integer():
            return str(int(v))
    s = str(v)
    return s


def _rows(spec: DataSpec) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    """Yield ``(row_number, row, columns)``; row numbers are 1-based data rows as a human counts."""
    kind = detect_format(spec.path, spec.fmt)
    p = spec.path
    if not p.exists():
        raise UsageError(f"{p}: no such data file")
    if kind in ("csv", "tsv"):
        yield from _csv_rows(spec, "\t" if kind == "tsv" else ",")
    elif kind == "jsonl":
        yield from _jsonl_rows(spec)
    elif kind == "parquet":
        yield from _parquet_rows(spec)
    else:
        yield from _excel_rows(spec)


def _csv_rows(spec: DataSpec, delimiter: str):
    csv.field_size_limit(1 << 27)
    try:
        f = open(spec.path, encoding=spec.encoding, newline="")  # noqa: SIM115 (closed below)
    except LookupError:
        raise UsageError(f"unknown encoding '{spec.encoding}'; try utf-8, latin-1 or "
                         "cp1252") from None
    with f:
        reader = csv.DictReader(f, delimiter=delimiter)
        row_no = 1
        try:
            columns = list(reader.fieldnames or [])
            for row in reader:
                row_no += 1
                if None in row:
                    raise UsageError(f"{spec.path}: line {reader.line_num}: more fields than "
                                     f"the header's {len(columns)} columns; check the quoting "
                                     "of that row")
                yield row_no, row, columns
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{spec.path}: after line {reader.line_num}: the file is not valid "
                f"{spec.encoding} ({exc.reason}); re-save it as UTF-8 or pass --encoding "
                "(e.g. --encoding latin-1)") from None
        except csv.Error as exc:
            raise UsageError(f"{spec.path}: line {reader.line_num}: not valid "
                             f"{'TSV' if delimiter == chr(9) else 'CSV'}: {exc}") from None


def _jsonl_rows(spec: DataSpec):
    columns: list[str] = []
    try:
        with open(spec.path, encoding=spec.encoding) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{spec.path}: line {n}: not valid JSON ({exc.msg} at column "
                                     f"{exc.colno}); each line must be one JSON object") from None
                if not isinstance(obj, dict):
                    raise UsageError(f"{spec.path}: line {n}: expected a JSON object per line, "
                                     f"got {type(obj).__name__}")
                for k in obj:
                    if k not in columns:
                        columns.append(k)
                yield n, obj, columns
    except UnicodeDecodeError as exc:
        raise UsageError(f"{spec.path}: the file is not valid {spec.encoding} ({exc.reason}); "
                         "re-save it as UTF-8 or pass --encoding") from None


def _parquet_rows(spec: DataSpec):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("reading Parquet needs pyarrow: pip install 'vsdcoder[data]'") from None
    try:
        pf = pq.ParquetFile(spec.path)
    except Exception as exc:
        raise UsageError(f"{spec.path}: not a readable Parquet file: {exc}") from None
    columns = list(pf.schema_arrow.names)
    n = 0
    for batch in pf.iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            n += 1
            yield n, row, columns


def _excel_rows(spec: DataSpec):
    try:
        import openpyxl
    except ImportError:
        raise UsageError("reading Excel needs openpyxl: pip install 'vsdcoder[data]'") from None
    try:
        wb = openpyxl.load_workbook(spec.path, read_only=True, data_only=True)
    except Exception as exc:
        raise UsageError(f"{spec.path}: not a readable Excel file: {exc}") from None
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header = next(it, None)
        if header is None:
            return
        columns = [str(h) if h is not None else "" for h in header]
        for n, values in enumerate(it, 2):
            if values is None or all(v is None for v in values):
                continue
            yield n, dict(zip(columns, values, strict=False)), columns
    finally:
        wb.close()


def _header(spec: DataSpec) -> list[str] | None:
    """Column names of a file with no data rows (None when there is not even a header)."""
    kind = detect_format(spec.path, spec.fmt)
    if kind in ("csv", "tsv"):
        with open(spec.path, encoding=spec.encoding, newline="") as f:
            first = next(csv.reader(f, delimiter="\t" if kind == "tsv" else ","), None)
        return [c for c in first] if first else None
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(spec.path).schema_arrow.names)
    if kind == "excel":
        import openpyxl

        wb = openpyxl.load_workbook(spec.path, read_only=True)
        try:
            row = next(wb.worksheets[0].iter_rows(values_only=True), None)
        finally:
            wb.close()
        return [str(h) for h in row if h is not None] if row else None
    return None  # JSONL has no header


class UnitReader:
    """Iterate the units of a data file, checking columns and ids as it goes.

    After iteration, :attr:`skips` lists rows that were not coded and why, and
    :attr:`columns` the columns the file has.
    """

    def __init__(self, spec: DataSpec):
        self.spec = spec
        self.skips: list[Skip] = []
        self.columns: list[str] = []
        self.count = 0

    def _check_columns(self, columns: list[str]) -> None:
        s = self.spec
        missing = [c for c in (s.id_col, s.text_col, *s.context_cols, *s.meta_cols)
                   if c not in columns]
        if missing:
            flag = {s.id_col: "--id-col", s.text_col: "--text-col"}
            hints = ", ".join(f"'{m}'" + (f" (set {flag[m]})" if m in flag else "")
                              for m in missing)
            have = ", ".join(repr(c) for c in columns) or "(no columns)"
            raise UsageError(f"{s.path}: column{'s' if len(missing) > 1 else ''} {hints} not "
                             f"found; the file has: {have}")

    def __iter__(self) -> Iterator[Unit]:
        seen = SeenIndex()  # ids (and text hashes) on disk: memory stays flat for any file size
        try:
            yield from self._iter(seen)
        finally:
            seen.close()

    def _iter(self, seen: SeenIndex) -> Iterator[Unit]:
        s = self.spec
        checked = False
        for row_no, row, columns in _rows(s):
            if not checked:
                self.columns = list(columns)
                self._check_columns(columns)
                checked = True
            uid = _cell(row.get(s.id_col))
            if uid is None or not uid.strip():
                raise UsageError(f"{s.path}: row {row_no}: empty id in column '{s.id_col}'; every "
                                 "unit needs an id (or choose another --id-col)")
            uid = uid.strip()
            first = seen.add("id", uid, row_no)
            if first is not None:
                raise UsageError(f"{s.path}: row {row_no}: duplicate id '{uid}' (first at row "
                                 f"{first[0]}); ids must be unique — fix the file or choose "
                                 "another --id-col")
            text = _cell(row.get(s.text_col))
            meta = {c: _jsonable(row.get(c)) for c in s.meta_cols}
            if text is None or not text.strip():
                self.skips.append(Skip(uid, row_no, "empty text", meta=meta))
                continue
            if s.dedupe:
                key = hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()
                first = seen.add("text", key, row_no, uid)
                if first is not None:
                    self.skips.append(Skip(uid, row_no, "duplicate text", first[1], meta))
                    continue
            context = None
            if s.context_cols:
                parts = [f"{c}: {v}" for c in s.context_cols if (v := _cell(row.get(c)))]
                context = "\n".join(parts) or None
            self.count += 1
            yield Unit(uid, text, context, meta, row_no)
        if not checked:  # no data rows: still check the header, so a typo is not a silent no-op
            columns = _header(s)
            if columns is None:
                raise UsageError(f"{s.path}: the file has no header and no rows; nothing to code")
            self.columns = columns
            self._check_columns(columns)


class SeenIndex:
    """Ids and text hashes already read, kept in a temporary SQLite file, not in memory.

    A dict of 100,000 ids costs ~10 MB and grows with the file; this index keeps the reader's
    memory flat (SQLite's page cache is capped at ~2 MB). Only ids, row numbers and hashes of
    texts are written, never texts; the file is deleted when the pass ends.
    """

    def __init__(self) -> None:
        import sqlite3
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="vsdcoder-seen-")
        self.db = sqlite3.connect(Path(self._dir.name) / "seen.db", isolation_level=None,
                                  check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-2000",
                       "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE seen (kind TEXT, key TEXT, row INTEGER, id TEXT,"
                        " PRIMARY KEY (kind, key)) WITHOUT ROWID")
        self.db.execute("BEGIN")

    def add(self, kind: str, key: str, row: int, uid: str | None = None
            ) -> tuple[int, str | None] | None:
        """Record ``key``; returns ``(row, id)`` of its first occurrence if it was seen before."""
        cur = self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                              (kind, key, row, uid))
        if cur.rowcount:
            return None
        r = self.db.execute("SELECT row, id FROM seen WHERE kind=? AND key=?",
                            (kind, key)).fetchone()
        return int(r[0]), r[1]

    def close(self) -> None:
        """Drop the index and its file."""
        try:
            self.db.close()
        finally:
            self._dir.cleanup()


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, bool)):
        return v
    if isinstance(v, float):
        return None if v != v else v
    if isinstance(v, (list, tuple)):  # JSONL arrays, Parquet lists: keep them lists
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if hasattr(v, "isoformat"):  # dates and times from Excel or Parquet
        return v.isoformat()
    return str(v)


def sample_units(units: Iterator[Unit], n: int, seed: int) -> list[Unit]:
    """A reproducible simple random sample of ``n`` units (reservoir sampling), in file order."""
    rng = random.Random(seed)
    reservoir: list[Unit] = []
    for i, u in enumerate(units):
        if i < n:
            reservoir.append(u)
        else:
            j = rng.randint(0, i)
            if j < n:
                reservoir[j] = u
    return sorted(reservoir, key=lambda u: u.row)
