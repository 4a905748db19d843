"""Read units to code from CSV, TSV, JSONL, Parquet or Excel, one at a time.

Rows are streamed, so a 100,000-row file is never held in memory. Problems with the data are
reported as :class:`~vsdcoder.errors.UsageError` naming the file, the row and what to do
(missing columns list the columns that exist, with a did-you-mean; duplicate ids are listed all
at once), or as skips that the run records and counts (empty texts, duplicate texts when
de-duplicating). :func:`check_data` reads a file once to check all of it before a run starts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
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
    #: The value of the ``stratify`` column ("" when empty), when the data spec names one.
    stratum: str | None = None


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
    #: What a repeated id does: ``"error"`` (refuse the file, listing every repeat) or
    #: ``"first"`` (code the first row of each id; later rows are left out and counted).
    dedupe_ids: str = "error"
    #: A column whose value becomes each unit's ``stratum`` (for a stratified ``--sample``).
    stratify: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.context_cols = tuple(self.context_cols)
        self.meta_cols = tuple(self.meta_cols)
        if self.dedupe_ids not in DEDUPE_IDS:
            from vsdcoder.suggest import did_you_mean

            raise UsageError(f"--dedupe-ids '{self.dedupe_ids}'"
                             f"{did_you_mean(self.dedupe_ids, DEDUPE_IDS)}: use "
                             + " or ".join(DEDUPE_IDS))


#: The choices of :attr:`DataSpec.dedupe_ids`.
DEDUPE_IDS = ("error", "first")
#: How many repeated ids an error or warning names (the rest are counted).
SHOW_DUPLICATES = 10


class DataWarning(UserWarning):
    """Something in the data that does not stop the run (e.g. rows left out by ``first``)."""


@dataclass
class Duplicates:
    """Rows whose id an earlier row already has: how many, the first few, how many differ."""

    count: int = 0
    differing: int = 0
    shown: list[tuple[int, str, int, bool]] = field(default_factory=list)  # row, id, first, diff

    def add(self, row: int, uid: str, first_row: int, differs: bool) -> None:
        """Record one repeated id."""
        self.count += 1
        self.differing += differs
        if len(self.shown) < SHOW_DUPLICATES:
            self.shown.append((row, uid, first_row, differs))

    def lines(self) -> list[str]:
        """One line per shown repeat, then how many more there are."""
        out = [f"row {r}: duplicate id '{u}' (first at row {f})"
               + (", with a different text" if d else "") for r, u, f, d in self.shown]
        if self.count > len(self.shown):
            out.append(f"... and {self.count - len(self.shown):,} more")
        return out

    def summary(self) -> str:
        """``61 rows repeat an earlier row's id (10 with a different text)``."""
        what = (f"{self.count:,} row{'s' if self.count != 1 else ''} repeat"
                f"{'s' if self.count == 1 else ''} an earlier row's id")
        if self.differing:
            what += f" ({self.differing:,} with a different text)"
        return what


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


def cell_value(v: Any) -> str | None:
    """A data cell as text: None for empty or NaN, ``3`` rather than ``3.0`` for whole floats."""
    if v is None:
        return None
    if isinstance(v, float):
        if v != v:  # NaN from pandas/pyarrow
            return None
        if v.is_integer():
            return str(int(v))
    s = str(v)
    return s


def raw_rows(spec: DataSpec) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
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

    After iteration, :attr:`skips` lists rows that were not coded and why, :attr:`columns` the
    columns the file has, :attr:`rows` the number of data rows and :attr:`duplicates` the rows
    whose id an earlier row has. With ``dedupe_ids="error"`` (the default) the first repeated
    id stops the units (none is yielded after it), the rest of the file is still read to find
    every other repeat, and one :class:`~vsdcoder.errors.UsageError` lists them all.
    """

    def __init__(self, spec: DataSpec):
        self.spec = spec
        self.skips: list[Skip] = []
        self.columns: list[str] = []
        self.count = 0
        self.rows = 0
        self.duplicates = Duplicates()

    def _check_columns(self, columns: list[str]) -> None:
        from vsdcoder.suggest import close_matches

        s = self.spec
        wanted = [s.id_col, s.text_col, *s.context_cols, *s.meta_cols]
        if s.stratify:
            wanted.append(s.stratify)
        missing = list(dict.fromkeys(c for c in wanted if c not in columns))
        if missing:
            flag = {s.id_col: "--id-col", s.text_col: "--text-col"}
            if s.stratify:
                flag.setdefault(s.stratify, "--stratify")
            hints = ", ".join(f"'{m}'" + (f" (set {flag[m]})" if m in flag else "")
                              for m in missing)
            have = ", ".join(repr(c) for c in columns) or "(no columns)"
            close = {m: c[0] for m in missing if (c := close_matches(m, columns))}
            if len(close) == 1 and len(missing) == 1:
                have += f" (did you mean '{next(iter(close.values()))}'?)"
            elif close:
                have += " (did you mean " + ", ".join(f"'{c}' for '{m}'"
                                                      for m, c in close.items()) + "?)"
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
        refusing = False  # a repeated id was found: read on only to list every other repeat
        for row_no, row, columns in raw_rows(s):
            if not checked:
                self.columns = list(columns)
                self._check_columns(columns)
                checked = True
            self.rows += 1
            uid = cell_value(row.get(s.id_col))
            if uid is None or not uid.strip():
                if refusing:
                    continue
                raise UsageError(f"{s.path}: row {row_no}: empty id in column '{s.id_col}'; every "
                                 "unit needs an id (or choose another --id-col)")
            uid = uid.strip()
            text = cell_value(row.get(s.text_col))
            has_text = text is not None and bool(text.strip())
            # enough to tell whether a repeated id has another text (the index lives one pass)
            same = str(hash(text.strip())) if has_text and text is not None else None
            first = seen.add("id", uid, row_no, same)
            if first is not None:
                self.duplicates.add(row_no, uid, first[0], differs=first[1] != same)
                refusing = refusing or s.dedupe_ids == "error"
                continue  # "first": the first row of the id is the one coded
            if refusing:
                continue
            meta = {c: _jsonable(row.get(c)) for c in s.meta_cols}
            if not has_text:
                self.skips.append(Skip(uid, row_no, "empty text", meta=meta))
                continue
            assert text is not None
            if s.dedupe:
                first = seen.add("text", _text_key(text), row_no, uid)
                if first is not None:
                    self.skips.append(Skip(uid, row_no, "duplicate text", first[1], meta))
                    continue
            context = None
            if s.context_cols:
                parts = [f"{c}: {v}" for c in s.context_cols if (v := cell_value(row.get(c)))]
                context = "\n".join(parts) or None
            stratum = None
            if s.stratify:
                stratum = (cell_value(row.get(s.stratify)) or "").strip()
            self.count += 1
            yield Unit(uid, text, context, meta, row_no, stratum)
        if refusing:
            raise duplicate_ids_error(s, self.duplicates)
        if not checked:  # no data rows: still check the header, so a typo is not a silent no-op
            columns = _header(s)
            if columns is None:
                raise UsageError(f"{s.path}: the file has no header and no rows; nothing to code")
            self.columns = columns
            self._check_columns(columns)


def _text_key(text: str) -> str:
    """Hash of a text after whitespace normalisation (``--dedupe`` and id-repeat checks)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def duplicate_ids_error(spec: DataSpec, dups: Duplicates) -> UsageError:
    """The error listing every repeated id (count, the first few, how many differ)."""
    fix = ("ids must be unique: fix the file, choose another --id-col, or pass --dedupe-ids "
           "first to code only the first row of each id")
    if dups.count == 1:
        return UsageError(f"{spec.path}: {dups.lines()[0]}; {fix}")
    which = f"The first {len(dups.shown)}" if dups.count > len(dups.shown) else "They"
    exc = UsageError(f"{spec.path}: {dups.summary()}; {fix}. {which}:\n"
                     + "\n".join(f"  {ln}" for ln in dups.lines()))
    exc.headed = True  # type: ignore[attr-defined]  # the CLI prefixes "error: " all the same
    return exc


@dataclass
class DataCheck:
    """What :func:`check_data` found: rows, units to code, skips, left-out repeated ids."""

    rows: int
    units: int
    skipped: int
    duplicates: Duplicates
    columns: list[str]
    strata: dict[str, int] = field(default_factory=dict)

    def warnings(self, spec: DataSpec) -> list[str]:
        """Messages about what is left out without stopping the run."""
        out = []
        if self.duplicates.count:  # only with dedupe_ids="first"
            out.append(f"{spec.path}: {self.duplicates.summary()}; --dedupe-ids first codes the "
                       "first row of each id and leaves out:\n"
                       + "\n".join(f"  {ln}" for ln in self.duplicates.lines()))
        return out


def check_data(spec: DataSpec, *, require_units: bool = True) -> DataCheck:
    """Read the whole file once and check it, before a run makes anything on disk.

    Checks the format, the columns (with a did-you-mean), every id (all repeats listed at
    once) and, with ``require_units``, that there is at least one text to code.

    Raises:
        UsageError: what is wrong, naming the file and the rows.
    """
    reader = UnitReader(spec)
    strata: Counter[str] = Counter()
    for u in reader:
        if u.stratum is not None:
            strata[u.stratum] += 1
    check = DataCheck(reader.rows, reader.count, len(reader.skips), reader.duplicates,
                      reader.columns, dict(strata))
    if require_units and not check.units:
        if not check.rows:
            raise UsageError(f"{spec.path}: the file has a header but no rows; there is "
                             "nothing to code")
        raise UsageError(f"{spec.path}: none of the {check.rows:,} row(s) has a text in column "
                         f"'{spec.text_col}'; there is nothing to code (is --text-col right? the "
                         "file has: " + ", ".join(repr(c) for c in check.columns) + ")")
    return check


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
        """Record ``key``; returns ``(row, uid)`` of its first occurrence if it was seen before.

        ``uid`` is free: the unit's id for text hashes, the text's hash for ids.
        """
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


def sample_units(units: Iterable[Unit], n: int, seed: int) -> list[Unit]:
    """A reproducible random sample of ``n`` units (reservoir sampling), in file order.

    A simple random sample, unless the units carry a ``stratum`` (the data spec names a
    ``stratify`` column): then a stratified one, see :func:`allocate`.
    """
    rng = random.Random(seed)
    it = iter(units)
    head = next(it, None)
    if head is None:
        return []
    if head.stratum is not None:
        return _stratified_sample(head, it, n, rng)
    reservoir: list[Unit] = []
    for i, u in enumerate(_chain(head, it)):
        if i < n:
            reservoir.append(u)
        else:
            j = rng.randint(0, i)
            if j < n:
                reservoir[j] = u
    return sorted(reservoir, key=lambda u: u.row)


def _chain(head: Unit, rest: Iterator[Unit]) -> Iterator[Unit]:
    yield head
    yield from rest


def _stratified_sample(head: Unit, rest: Iterator[Unit], n: int,
                       rng: random.Random) -> list[Unit]:
    """A reservoir of up to ``n`` units per stratum, then :func:`allocate`'s share of each.

    A uniform subset of a uniform reservoir is a uniform sample of the stratum, so each
    stratum's units are a simple random sample of it. Memory: at most ``n`` units per stratum.
    """
    counts: Counter[str] = Counter()
    pools: dict[str, list[Unit]] = {}
    for u in _chain(head, rest):
        s = u.stratum or ""
        i = counts[s]
        counts[s] += 1
        pool = pools.setdefault(s, [])
        if i < n:
            pool.append(u)
        else:
            j = rng.randint(0, i)
            if j < n:
                pool[j] = u
    shares = allocate(counts, n)
    out: list[Unit] = []
    for s in sorted(pools):
        pool, k = pools[s], shares[s]
        out.extend(pool if k >= len(pool) else rng.sample(pool, k))
    return sorted(out, key=lambda u: u.row)


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """How many of ``n`` to draw from each stratum: proportional, at least one each if possible.

    Each stratum gets the whole part of its proportional share ``n * size / total``, raised to
    one when there are no more strata than ``n``; the rest goes to the largest remainders
    (ties: the larger stratum, then the stratum name), and if the minimum of one overshoots
    ``n``, units are taken back from the strata furthest above their share. Never more than a
    stratum has; everything when ``n`` is at least the total.
    """
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    if n <= 0:
        return {s: 0 for s in sizes}
    floor = 1 if len(sizes) <= n else 0
    quota = {s: n * c / total for s, c in sizes.items()}
    alloc = {s: min(c, max(floor, int(quota[s]))) for s, c in sizes.items()}
    order = sorted(sizes)
    while sum(alloc.values()) < n:
        s = max((s for s in order if alloc[s] < sizes[s]),
                key=lambda s: (quota[s] - alloc[s], sizes[s], -order.index(s)))
        alloc[s] += 1
    while sum(alloc.values()) > n:
        s = max((s for s in order if alloc[s] > floor),
                key=lambda s: (alloc[s] - quota[s], alloc[s], -order.index(s)))
        alloc[s] -= 1
    return alloc
