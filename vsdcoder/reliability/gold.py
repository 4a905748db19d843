"""Read human codes ("gold") in the layouts researchers have, and coded runs, as :class:`Ratings`.

Layouts (described once in a small YAML mapping file, or a dict; see docs/reliability.md):

- ``wide``: an id column and one column per dimension, for one coder; multi-label cells hold
  codes separated by ``;`` (``separator``).
- ``long``: one row per unit, coder, dimension and code (several rows for multi-label codes).
- ``onehot``: per dimension, a column per code holding 1/0 (true/false, yes/no; empty = missing).
- ``coder_blocks``: one block of columns per coder (``Annotator1_...``, ``Annotator2_...``), each
  dimension a value column or one-hot columns; ``{coder}`` in a column name stands for the
  coder, and ``positions`` reads mislabelled or duplicated headers by column position.

A ``value_map`` translates a file's labels into the codebook's code names (``"-1":
mildly_abusive``). Values are code names (str) for single and ordinal dimensions, frozensets of
code names for multi-label dimensions, text for text dimensions, and missing (absent or None)
where a cell is empty: an empty cell is never read as "no code". An explicit empty multi-label
answer is written ``[]`` (or, with a ``none`` option, the ``none`` code).

Problems in the data (codes not in the codebook, several codes in a single-choice dimension,
codes given where a ``when`` gate is closed, duplicate ids, ids on one side only) are listed in
``Ratings.problems`` with unit ids and coders, never raised; problems in the layout itself (a
typo in a key, a column that does not exist, a dimension the codebook does not have) are
:class:`~vsdcoder.errors.UsageError` naming the file and the key.

:func:`read_run` reads a run directory (or its ``codes.jsonl``) as one more coder;
:func:`majority` and :func:`with_majority` derive a majority coder; :func:`check` lists what in
a :class:`Ratings` does not fit a codebook; :func:`combine` merges gold with runs and reports ids
present on one side only.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from vsdcoder.codebook.model import Codebook, Dimension
from vsdcoder.data.read import DataSpec, cell_value, detect_format, raw_rows
from vsdcoder.errors import UsageError
from vsdcoder.reliability.types import Ratings, Value

#: The pseudo-dimension that carries a document codebook's relevance gate ("true"/"false").
RELEVANT = "relevant"
#: How an explicit empty multi-label answer is written in a cell or a value map.
EMPTY = "[]"
#: Coder kinds (see :attr:`Ratings.coders`).
KINDS = ("human", "gold", "llm", "baseline")
Kind = Literal["human", "gold", "llm", "baseline"]

_TRUE = frozenset({"1", "true", "yes", "y", "t", "x"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})
_SHOW = 10  # ids listed per problem


# -- the layout file -------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _keys_to_text(v: Any) -> Any:
    """Mapping keys as text (a dict written in Python may use -1 or 1 as keys)."""
    if isinstance(v, Mapping):
        return {("true" if k is True else "false" if k is False else str(k)): x
                for k, x in v.items()}
    return v


#: A column: its header name, or its 1-based position in the file (an integer).
ColumnRef = StrictStr | Annotated[StrictInt, Field(ge=1)]


class OneHot(_Spec):
    """One-hot columns of a dimension: a column per code (or per label, with a value_map).

    Written ``{onehot: {CODE: COLUMN, ...}, all_zero: CODE}`` or, short, ``{CODE: COLUMN, ...}``.
    """

    onehot: dict[StrictStr, ColumnRef] = Field(min_length=1)
    #: What a coder who marked none of the columns (all 0) answered: a code name (e.g. the
    #: dimension's ``none`` code) or ``[]`` (an explicit empty multi-label answer). Default:
    #: ``[]`` for multi-label dimensions, missing for single-choice ones.
    all_zero: StrictStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        if isinstance(v, Mapping) and "onehot" not in v:
            return {"onehot": _keys_to_text(v)}
        if isinstance(v, Mapping) and isinstance(v.get("onehot"), Mapping):
            return {**v, "onehot": _keys_to_text(v["onehot"])}
        return v


def _source_tag(v: Any) -> str:
    if isinstance(v, (Mapping, OneHot)):
        return "onehot"
    if isinstance(v, int) and not isinstance(v, bool):
        return "position"
    return "column"


#: Where a dimension's codes are: a value column (name or position) or one-hot columns.
DimSource = Annotated[
    Annotated[StrictStr, Tag("column")] | Annotated[StrictInt, Field(ge=1), Tag("position")]
    | Annotated[OneHot, Tag("onehot")],
    Discriminator(_source_tag),
]


class _Layout(_Spec):
    layout: str
    #: csv, tsv, jsonl, parquet or excel (default: from the file suffix).
    format: StrictStr | None = None
    encoding: StrictStr = "utf-8-sig"
    #: The unit id column (default ``id``; ``unit`` for the long layout).
    id: ColumnRef | None = None
    #: A column with the unit's text (optional; kept in ``Ratings.texts``).
    text: ColumnRef | None = None
    #: Separator of several codes in one multi-label cell.
    separator: StrictStr = Field(";", min_length=1)
    #: Per dimension: raw value in the file -> code name (null: missing; ``[]``: empty answer).
    value_map: dict[StrictStr, dict[StrictStr, StrictStr | None]] = Field(default_factory=dict)
    #: Column name -> 1-based position, for headers that are wrong or repeated.
    positions: dict[StrictStr, Annotated[StrictInt, Field(ge=1)]] = Field(default_factory=dict)
    #: What to do with one-hot cells holding repeated annotations ("1, 1", "0, 1").
    repeated: Literal["first", "last", "agreed"] | None = None
    repeat_separator: StrictStr = Field(",", min_length=1)
    #: Set gated dimensions to missing where the codebook's ``when`` gate is closed.
    gates: bool = True

    @field_validator("value_map", mode="before")
    @classmethod
    def _map_keys(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: _keys_to_text(m) for k, m in v.items()}
        return v


class WideLayout(_Layout):
    """One coder; an id column and one column per dimension."""

    layout: Literal["wide"]
    #: The coder's name (default: the file's name without suffix).
    coder: StrictStr | None = None
    kind: Kind = "human"
    #: Dimension -> column (default: every dimension of the codebook that names a column).
    columns: dict[StrictStr, DimSource] | None = None


class OneHotLayout(_Layout):
    """One coder; per dimension a column per code."""

    layout: Literal["onehot"]
    coder: StrictStr | None = None
    kind: Kind = "human"
    columns: dict[StrictStr, OneHot] = Field(min_length=1)


class CoderBlocksLayout(_Layout):
    """Several coders, each with a block of columns."""

    layout: Literal["coder_blocks"]
    #: Coder names, with ``block`` as the columns of each; or coder -> {dimension: source}.
    coders: list[StrictStr] | dict[StrictStr, dict[StrictStr, DimSource]] = Field(min_length=1)
    #: The columns of one coder: dimension -> source; ``{coder}`` stands for the coder's name.
    block: dict[StrictStr, DimSource] | None = None
    #: Coder -> kind ("human" unless listed; "gold" for a majority or adjudicated column).
    kinds: dict[StrictStr, Kind] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _block_or_map(self) -> CoderBlocksLayout:
        if isinstance(self.coders, list) and self.block is None:
            raise ValueError("a list of 'coders' needs a 'block' (the columns of one coder, "
                             "with {coder} standing for its name)")
        if isinstance(self.coders, dict) and self.block is not None:
            raise ValueError("give either 'coders' as a list with a 'block', or 'coders' as "
                             "coder -> {dimension: column}, not both")
        return self


class LongLayout(_Layout):
    """One row per unit, coder, dimension and code."""

    layout: Literal["long"]
    coder_column: ColumnRef = "coder"
    dimension_column: ColumnRef = "dimension"
    code_column: ColumnRef = "code"
    kinds: dict[StrictStr, Kind] = Field(default_factory=dict)


Layout = WideLayout | OneHotLayout | CoderBlocksLayout | LongLayout
_LAYOUTS: dict[str, type[_Layout]] = {
    "wide": WideLayout, "long": LongLayout, "onehot": OneHotLayout,
    "coder_blocks": CoderBlocksLayout,
}
_ALL_KEYS = sorted({k for m in (*_LAYOUTS.values(), OneHot) for k in m.model_fields})


def _data_path(loc: tuple[Any, ...], data: Any, keep_last: bool) -> tuple[Any, ...]:
    """The path in the input data of a pydantic error location (union tags dropped).

    The location may hold names that are not keys of the data (a union member's tag); the
    path that matches the most location parts in the data is taken. With ``keep_last``, a last
    part that is not in the data (a missing key) is kept.
    """

    def best(i: int, node: Any) -> tuple[int, tuple[Any, ...]]:
        if i == len(loc):
            return 0, ()
        part = loc[i]
        options = []
        found = (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if found:
            n, rest = best(i + 1, node[part])
            # finding the last part (the key the error is about) counts most
            options.append((n + (2 if i == len(loc) - 1 else 1), (part, *rest)))
        elif i == len(loc) - 1 and keep_last:
            options.append((0, (part,)))
        options.append(best(i + 1, node))
        return max(options, key=lambda o: o[0])

    return best(0, data)[1]


def _dotted(path: Iterable[Any]) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (("." if s else "") + str(p))
    return s


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_TYPE_WORDS = {"string_type": "text", "int_type": "a whole number", "bool_type": "true or false",
               "dict_type": "a mapping", "list_type": "a list", "model_type": "a mapping",
               "greater_than_equal": "a number from 1", "literal_error": None,
               "string_too_short": "a non-empty text", "too_short": "at least one entry"}


def _layout_errors(exc: ValidationError, data: Mapping[str, Any], where: str, smap: Any,
                   kind: str) -> str:
    own = list(_LAYOUTS[kind].model_fields)
    by_path: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for e in exc.errors():
        keep = e["type"] in ("missing", "extra_forbidden")
        by_path.setdefault(_data_path(tuple(e["loc"]), data, keep), []).append(e)
    lines = []
    for path, errors in by_path.items():
        at = where
        if smap is not None:
            line, _ = smap.locate(path)
            if line is not None:
                at += f":{line}"
        key = _dotted(path)
        e = errors[0]
        if e["type"] == "extra_forbidden":
            name = str(path[-1]) if path else "?"
            if len(path) == 1:
                msg = f"unknown key '{name}' for a '{kind}' layout"
                hint = _did_you_mean(name, [k for k in own if k != name])
                others = [k for k, m in _LAYOUTS.items() if name in m.model_fields]
                if others and not hint:
                    hint = f" (a key of the {', '.join(others)} layout{'s' * (len(others) > 1)})"
                msg += f"{hint}; a '{kind}' layout takes: {', '.join(own)}"
            else:
                msg = f"unknown key '{name}'{_did_you_mean(name, _ALL_KEYS)}"
        elif e["type"] == "missing":
            msg = f"missing key '{path[-1] if path else '?'}'"
        elif len(errors) > 1 or e["type"] in ("string_type", "int_type", "model_type"):
            wants = [_TYPE_WORDS.get(x["type"]) or x["msg"] for x in errors]
            tags = {p for x in errors for p in x["loc"]} - set(path)
            if {"column", "position"} & tags:
                wants = ["a column name (text), a column position (a whole number from 1) or "
                         "one-hot columns ({CODE: COLUMN, ...})"]
            elif {"string_type", "int_type"} <= {x["type"] for x in errors}:
                wants = ["a column name (text) or a column position (a whole number from 1)"]
            elif e["type"] == "model_type":
                wants = ["one-hot columns ({CODE: COLUMN, ...})"]
            msg = f"expected {' or '.join(dict.fromkeys(wants))}, got {e.get('input')!r}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] not in ("value_error", "assertion_error") and "input" in e:
                msg += f" (got {e['input']!r})"
        lines.append(f"{at}: {key}: {msg}" if key else f"{at}: {msg}")
    return "\n".join(lines) + "\nsee docs/reliability.md, 'Gold files and layouts'"


def _load_yaml(path: Path) -> tuple[Any, Any]:
    """The layout file's data and source map; non-text keys ('-1:', '1:') are read as text."""
    from vsdcoder.codebook.yamlsrc import YamlSourceError, load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the layout file ({exc.strerror})") from None
    if not text.strip():
        raise UsageError(f"{path}: the layout file is empty; it is a YAML mapping starting "
                         "with 'layout: wide' (or long, onehot, coder_blocks)")
    try:
        return load_yaml(text, str(path))
    except YamlSourceError as exc:
        # a key such as `-1:` or `1:` is read by YAML as a number; a layout takes it as text
        rest = [p for p in exc.problems if not p.message.startswith("the key '")]
        if not rest and exc.data is not None:
            return exc.data, exc.smap
        raise UsageError("\n".join(str(p) for p in rest)) from None


def load_layout(layout: Mapping[str, Any] | str | Path | BaseModel) -> Layout:
    """Validate a layout given as a dict, a YAML file, or an already built layout model.

    Raises:
        UsageError: naming the file (or "layout" for a dict), the line and the key.
    """
    if isinstance(layout, _Layout):
        return layout  # type: ignore[return-value]
    smap = None
    if isinstance(layout, Mapping):
        data: Any = dict(layout)
        where = "layout"
    else:
        path = Path(layout)
        where = str(path)
        if not path.is_file():
            raise UsageError(f"{path}: no such layout file")
        data, smap = _load_yaml(path)
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: a layout is a mapping of keys (layout: wide, id: ..., ...), "
                         f"not {type(data).__name__}")
    kind = data.get("layout")
    if kind is None:
        raise UsageError(f"{where}: missing key 'layout'; start with 'layout: wide' (or long, "
                         "onehot, coder_blocks)")
    if kind not in _LAYOUTS:
        line = ""
        if smap is not None and smap.locate(("layout",))[0] is not None:
            line = f":{smap.locate(('layout',))[0]}"
        raise UsageError(f"{where}{line}: layout: unknown layout '{kind}'"
                         f"{_did_you_mean(str(kind), _LAYOUTS)}; use one of: "
                         + ", ".join(_LAYOUTS))
    try:
        return _LAYOUTS[kind].model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise UsageError(_layout_errors(exc, data, where, smap, kind)) from None


# -- the table -------------------------------------------------------------------------------


class _Table:
    """All rows of a gold file as lists (CSV/TSV keep column positions and repeated names)."""

    def __init__(self, path: Path, fmt: str | None, encoding: str, positions: Mapping[str, int],
                 where: str):
        self.path = path
        self.where = where
        self.positions = dict(positions)
        self.used_positions: set[str] = set()
        if not path.exists():
            raise UsageError(f"{path}: no such gold file")
        kind = detect_format(path, fmt)
        self.rows: list[tuple[int, list[Any]]] = []
        if kind in ("csv", "tsv"):
            self.header = self._read_csv("\t" if kind == "tsv" else ",", encoding)
        else:
            spec = DataSpec(path, encoding=encoding, fmt=kind)
            columns: list[str] = []
            dict_rows = []
            for n, row, cols in raw_rows(spec):
                columns = cols
                dict_rows.append((n, row))
            self.header = [str(c) for c in columns]
            self.rows = [(n, [row.get(c) for c in columns]) for n, row in dict_rows]

    def _read_csv(self, delimiter: str, encoding: str) -> list[str]:
        csv.field_size_limit(1 << 27)
        try:
            f = open(self.path, encoding=encoding, newline="")  # noqa: SIM115 (closed below)
        except LookupError:
            raise UsageError(f"unknown encoding '{encoding}'; try utf-8, latin-1 or "
                             "cp1252") from None
        with f:
            reader = csv.reader(f, delimiter=delimiter)
            try:
                header = next(reader, None)
                if header is None:
                    raise UsageError(f"{self.path}: the file is empty (no header)")
                for n, row in enumerate(reader, 2):
                    if not any(c.strip() for c in row):
                        continue
                    if len(row) > len(header):
                        raise UsageError(f"{self.path}: line {reader.line_num}: more fields "
                                         f"({len(row)}) than the header's {len(header)} columns; "
                                         "check the quoting of that row")
                    self.rows.append((n, row + [""] * (len(header) - len(row))))
            except UnicodeDecodeError as exc:
                raise UsageError(f"{self.path}: the file is not valid {encoding} ({exc.reason}); "
                                 "re-save it as UTF-8 or set 'encoding' in the layout") from None
            except csv.Error as exc:
                raise UsageError(f"{self.path}: line {reader.line_num}: not valid CSV: "
                                 f"{exc}") from None
        return header

    def has(self, name: str) -> bool:
        return name in self.header or name in self.positions

    def col(self, ref: str | int, key: str) -> int:
        """0-based index of a column named or numbered in the layout at ``key``."""
        if isinstance(ref, str) and ref in self.positions:
            self.used_positions.add(ref)
            pos = self.positions[ref]
            key = f"positions.{ref}"
        elif isinstance(ref, int):
            pos = ref
        else:
            found = [i for i, h in enumerate(self.header) if h == ref]
            if not found:
                have = ", ".join(repr(h) for h in self.header[:60])
                more = f", ... ({len(self.header)} columns)" if len(self.header) > 60 else ""
                raise UsageError(f"{self.where}: {key}: column '{ref}' not found in {self.path}"
                                 f"{_did_you_mean(ref, self.header)}; the file has: {have}{more}")
            if len(found) > 1:
                cols = ", ".join(str(i + 1) for i in found)
                raise UsageError(
                    f"{self.where}: {key}: the header of {self.path} names {len(found)} columns "
                    f"'{ref}' (columns {cols}, counting from 1); say which one is meant by "
                    f"position, e.g. 'positions: {{{ref}: {found[0] + 1}}}' (see "
                    "docs/reliability.md)")
            return found[0]
        if not 1 <= pos <= len(self.header):
            raise UsageError(f"{self.where}: {key}: column position {pos} is outside the "
                             f"{len(self.header)} columns of {self.path} (counting from 1)")
        return pos - 1


# -- problems --------------------------------------------------------------------------------


def _ids(units: list[str]) -> str:
    units = list(dict.fromkeys(units))
    shown = ", ".join(units[:_SHOW])
    more = f", ... ({len(units) - _SHOW} more)" if len(units) > _SHOW else ""
    return f"{len(units)} unit{'s' if len(units) != 1 else ''}: {shown}{more}"


class _Report:
    """Collects data problems while reading and renders them as sentences."""

    def __init__(self, where: str, codebook: Codebook):
        self.where = where
        self.codebook = codebook
        self.unknown: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.several: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.gated: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.unmarked: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.bad_cells: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.repeats: dict[str, list[str]] = defaultdict(list)
        self.repeat_conflicts: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.other: list[str] = []

    def lines(self) -> list[str]:
        w = self.where
        out = []
        for (dim, coder, code), units in self.unknown.items():
            names = _codes_of(self.codebook, dim)
            out.append(f"{w}: unknown code '{code}' for '{dim}'{_did_you_mean(code, names)} "
                       f"(coder {coder}, {_ids(units)}); read as missing. The codebook's codes "
                       f"are: {', '.join(names)}; fix the file or map it with 'value_map'")
        for (dim, coder), units in self.several.items():
            out.append(f"{w}: several codes for the single-choice dimension '{dim}' (coder "
                       f"{coder}, {_ids(units)}); read as missing")
        for (dim, coder, why), units in self.gated.items():
            out.append(f"{w}: '{dim}' is coded although {why} (coder {coder}, {_ids(units)}); "
                       "read as missing (not asked), as the codebook's gate says")
        for (dim, coder), units in self.unmarked.items():
            out.append(f"{w}: no one-hot column of the single-choice dimension '{dim}' is marked "
                       f"(coder {coder}, {_ids(units)}); read as missing (set 'all_zero' to a "
                       "code if all-0 means one)")
        for (col, raw), units in self.bad_cells.items():
            out.append(f"{w}: column '{col}' holds '{raw}', which is not 1/0, true/false or "
                       f"empty ({_ids(units)}); read as missing")
        for coder, units in self.repeats.items():
            out.append(f"{w}: cells of coder {coder} hold several values such as '1, 1' "
                       f"(repeated annotations?) ({_ids(units)}); read as missing. Set "
                       "'repeated: first', 'last' or 'agreed' in the layout")
        for (coder, policy), units in self.repeat_conflicts.items():
            what = {"first": "kept the first", "last": "kept the last",
                    "agreed": "read as missing"}[policy]
            out.append(f"{w}: repeated annotations of coder {coder} disagree ({_ids(units)}); "
                       f"{what} ('repeated: {policy}')")
        return out + self.other


def _codes_of(codebook: Codebook, dim: str) -> list[str]:
    if dim == RELEVANT:
        return ["true", "false"]
    try:
        return codebook.dimension(dim).codable_names()
    except KeyError:
        return []


def _dims(codebook: Codebook) -> dict[str, Dimension | None]:
    """Dimensions a gold file may give, with the relevance pseudo-dimension (None)."""
    out: dict[str, Dimension | None] = {}
    if codebook.relevance is not None and codebook.unit == "document":
        out[RELEVANT] = None
    for d in codebook.dimensions:
        out[d.name] = d
    return out


# -- cell values -----------------------------------------------------------------------------


def _text(raw: Any) -> str | None:
    """A cell as stripped text (None when empty); floats such as 1.0 become '1'."""
    if isinstance(raw, (list, tuple)):
        return None
    s = cell_value(raw)
    if s is None:
        return None
    s = s.strip()
    return s or None


def _truth(s: str) -> bool | None:
    low = s.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    try:
        f = float(low)
    except ValueError:
        return None
    return True if f == 1 else False if f == 0 else None


class _Reader:
    """Turns raw cells into values of one codebook, reporting problems."""

    def __init__(self, codebook: Codebook, layout: _Layout | None, report: _Report):
        self.cb = codebook
        self.dims = _dims(codebook)
        self.vmap = layout.value_map if layout else {}
        self.sep = layout.separator if layout else ";"
        self.report = report
        #: problems of the current coder and unit, reported unless a gate closes the dimension
        self.pending: list[tuple[str, str]] = []

    def flush(self, closed: set[str], coder: str, uid: str) -> None:
        """Report the pending problems of dimensions whose gate is not closed."""
        for kind, dim in self.pending:
            if dim not in closed:
                target = self.report.several if kind == "several" else self.report.unmarked
                target[(dim, coder)].append(uid)
        self.pending.clear()

    def _map(self, dim: str, s: str) -> tuple[bool, str | None]:
        m = self.vmap.get(dim, {})
        if s in m:
            return True, m[s]
        return False, s

    def cell(self, dim: str, raw: Any, coder: str, uid: str) -> tuple[Value, bool]:
        """``(value, given)`` of a value cell; given = the coder wrote a code there."""
        d = self.dims[dim]
        if isinstance(raw, (list, tuple)) and d is not None and d.type == "multi":
            return self._codes(dim, [str(x) for x in raw if _text(x)], coder, uid)
        s = _text(raw)
        if s is None:
            return None, False
        mapped, s2 = self._map(dim, s)
        if s2 is None:
            return None, False
        if d is None:  # relevant
            t = _truth(s2)
            if t is None:
                self.report.unknown[(dim, coder, s)].append(uid)
                return None, False
            return ("true" if t else "false"), True
        if d.type == "text":
            return s2, True
        if d.type == "multi":
            if s2 == EMPTY:
                return frozenset(), False
            parts: list[str] | None = None
            if s2.startswith("[") and not mapped:
                try:
                    loaded = json.loads(s2)
                    if isinstance(loaded, list):
                        parts = [str(x).strip() for x in loaded if str(x).strip()]
                except json.JSONDecodeError:
                    parts = None
            if parts is None:
                parts = [p.strip() for p in s2.split(self.sep) if p.strip()]
            return self._codes(dim, parts, coder, uid)
        if s2 in d.codable_names():
            return s2, True
        self.report.unknown[(dim, coder, s)].append(uid)
        return None, False

    def _codes(self, dim: str, parts: list[str], coder: str, uid: str) -> tuple[Value, bool]:
        d = self.dims[dim]
        assert d is not None
        names = set(d.codable_names())
        codes: set[str] = set()
        bad = False
        for p in parts:
            _, c = self._map(dim, p)
            if c is None or c == EMPTY:
                continue
            if c not in names:
                self.report.unknown[(dim, coder, p)].append(uid)
                bad = True
            codes.add(c)
        if bad:
            return None, False
        return frozenset(codes), bool(codes)

    def label_code(self, dim: str, label: str) -> str | None:
        """The code a one-hot column's label stands for (after the value map)."""
        return self._map(dim, label)[1]


def _as_set(v: Value) -> set[str]:
    if v is None:
        return set()
    if isinstance(v, (set, frozenset, list, tuple)):
        return set(v)
    return {v}


def _apply_gates(cb: Codebook, vals: dict[str, tuple[Value, bool]], coder: str, uid: str,
                 report: _Report | None) -> set[str]:
    """Set gated dimensions to missing where their gate is closed (reporting given codes).

    Returns the names of the dimensions whose gate is closed.
    """
    closed: set[str] = set()
    rel = vals.get(RELEVANT, (None, False))[0]
    if rel == "false":
        closed = {d.name for d in cb.dimensions}
        for d in cb.dimensions:
            given = vals.get(d.name, (None, False))[1]
            if given and report is not None:
                report.gated[(d.name, coder, "the unit is not relevant")].append(uid)
            if d.name in vals:
                vals[d.name] = (None, False)
    state: dict[str, bool | None] = {}
    for d in cb.dimensions:
        if d.when is None:
            continue
        gate = d.when.dimension
        gv = vals.get(gate, (None, False))[0]
        if state.get(gate, True) is False:
            is_open: bool | None = False
        elif gv is None:
            is_open = None  # the gate is not known: keep what was given
        else:
            is_open = bool(_as_set(gv) & set(d.when.codes))
        state[d.name] = is_open
        if is_open is False:
            closed.add(d.name)
            given = vals.get(d.name, (None, False))[1]
            if given and report is not None:
                why = f"'{gate}' is not one of {', '.join(d.when.codes)}"
                report.gated[(d.name, coder, why)].append(uid)
            if d.name in vals:
                vals[d.name] = (None, False)
    return closed


# -- compiled plans --------------------------------------------------------------------------


class _Cell:
    def __init__(self, index: int):
        self.index = index


class _OneHotPlan:
    def __init__(self, columns: list[tuple[str, str | None, int]], all_zero: str | None):
        self.columns = columns  # (column label for messages, code or None, index)
        self.all_zero = all_zero


def _check_dim(name: str, cb: Codebook, where: str, key: str) -> Dimension | None:
    dims = _dims(cb)
    if name not in dims:
        raise UsageError(f"{where}: {key}: '{name}' is not a dimension of codebook '{cb.name}'"
                         f"{_did_you_mean(name, dims)}; its dimensions are: "
                         + ", ".join(dims))
    return dims[name]


def _compile_source(src: Any, dim: str, cb: Codebook, table: _Table, reader: _Reader,
                    where: str, key: str, coder: str | None = None) -> _Cell | _OneHotPlan:
    def sub(col: str | int) -> str | int:
        return col.replace("{coder}", coder) if isinstance(col, str) and coder else col

    if not isinstance(src, OneHot):
        return _Cell(table.col(sub(src), key + (f" (coder {coder})" if coder else "")))
    d = _check_dim(dim, cb, where, key)
    names = ["true", "false"] if d is None else d.codable_names()
    if d is not None and d.type == "text":
        raise UsageError(f"{where}: {key}: '{dim}' is a text dimension; give it a column, not "
                         "one-hot columns")
    cols = []
    for label, col in src.onehot.items():
        code = reader.label_code(dim, label)
        if code is not None and code not in names:
            raise UsageError(f"{where}: {key}.onehot.{label}: '{label}' is not a code of '{dim}'"
                             f"{_did_you_mean(label, names)}; use one of: {', '.join(names)}, or "
                             f"map it in 'value_map: {{{dim}: {{\"{label}\": CODE}}}}'")
        at = f"{key}.onehot.{label}" + (f" (coder {coder})" if coder else "")
        cols.append((str(sub(col)), code, table.col(sub(col), at)))
    az = src.all_zero
    if az is not None:
        if az == EMPTY:
            if d is None or d.type != "multi":
                raise UsageError(f"{where}: {key}.all_zero: '[]' (an empty answer) only applies "
                                 f"to multi-label dimensions; '{dim}' is single-choice")
        elif az not in names:
            raise UsageError(f"{where}: {key}.all_zero: '{az}' is not a code of '{dim}'"
                             f"{_did_you_mean(az, names)}; use one of: {', '.join(names)}")
    return _OneHotPlan(cols, az)


def _check_value_map(layout: _Layout, cb: Codebook, where: str) -> None:
    for dim, m in layout.value_map.items():
        d = _check_dim(dim, cb, where, f"value_map.{dim}")
        if d is not None and d.type == "text":
            continue
        names = ["true", "false"] if d is None else d.codable_names()
        for raw, code in m.items():
            if code is None or code in names or (code == EMPTY and d is not None
                                                  and d.type == "multi"):
                continue
            raise UsageError(f"{where}: value_map.{dim}.{raw}: '{code}' is not a code of "
                             f"'{dim}'{_did_you_mean(code, names)}; use one of: "
                             + ", ".join(names))


# -- reading rows ----------------------------------------------------------------------------


def _onehot_value(plan: _OneHotPlan, dim: str, row: list[Any], coder: str, uid: str,
                  reader: _Reader, layout: _Layout) -> tuple[Value, bool]:
    report = reader.report
    cells: list[list[str] | None] = []
    for _, _, idx in plan.columns:
        s = _text(row[idx])
        if s is None:
            cells.append(None)
            continue
        parts = [p.strip() for p in s.split(layout.repeat_separator)]
        if len(parts) > 1 and layout.repeated is None:
            report.repeats[coder].append(uid)
            return None, False
        cells.append(parts)
    if all(c is None for c in cells):
        return None, False
    n = max(len(c) for c in cells if c is not None)
    marks: list[list[str]] = []
    for p in range(n):
        marked = []
        for (label, code, _), c in zip(plan.columns, cells, strict=True):
            if c is None:
                continue
            if len(c) not in (1, n):
                report.bad_cells[(label, ", ".join(c))].append(uid)
                return None, False
            raw = c[p] if len(c) > 1 else c[0]
            t = _truth(raw)
            if t is None:
                report.bad_cells[(label, raw)].append(uid)
                return None, False
            if t and code is not None:
                marked.append(code)
        marks.append(marked)
    if n > 1:
        policy = layout.repeated or "first"
        values = {_marked_value(plan, dim, m, coder, uid, reader, False)[0] for m in marks}
        if len(values) > 1:
            report.repeat_conflicts[(coder, policy)].append(uid)
            if policy == "agreed":
                return None, False
    chosen = marks[-1] if layout.repeated == "last" else marks[0]
    return _marked_value(plan, dim, chosen, coder, uid, reader, True)


def _marked_value(plan: _OneHotPlan, dim: str, marked: list[str], coder: str, uid: str,
                  reader: _Reader, report_now: bool) -> tuple[Value, bool]:
    d = reader.dims[dim]
    codes = list(dict.fromkeys(marked))
    if d is not None and d.type == "multi":
        if codes:
            return frozenset(codes), True
        if plan.all_zero is None or plan.all_zero == EMPTY:
            return frozenset(), False
        return frozenset({plan.all_zero}), False
    if len(codes) == 1:
        v = codes[0]
        return v, True
    if len(codes) > 1:
        if report_now:
            reader.pending.append(("several", dim))
        return None, True
    if plan.all_zero is not None:
        return plan.all_zero, False
    if report_now:
        reader.pending.append(("unmarked", dim))
    return None, False


def _store(out: Ratings, vals: dict[str, tuple[Value, bool]], coder: str, uid: str) -> None:
    for dim, (v, _) in vals.items():
        if v is not None:
            out.values.setdefault(dim, {}).setdefault(coder, {})[uid] = v


def _read_blocks(table: _Table, plans: dict[str, dict[str, _Cell | _OneHotPlan]], id_idx: int,
                 text_idx: int | None, reader: _Reader, layout: _Layout, out: Ratings) -> None:
    report = reader.report
    seen: dict[str, tuple[int, list[str | None]]] = {}
    repeats: dict[str, list[int]] = {}  # repeated id -> its row numbers
    conflicts: set[str] = set()  # repeated ids whose rows differ in a coded cell
    code_idx = sorted({i for dims in plans.values() for plan in dims.values()
                       for i in ([plan.index] if isinstance(plan, _Cell)
                                 else [c[2] for c in plan.columns])})
    empty_rows: list[str] = []
    for row_no, row in table.rows:
        uid = _text(row[id_idx])
        if uid is None:
            empty_rows.append(str(row_no))
            continue
        cells = [_text(row[i]) for i in code_idx]
        if uid in seen:
            first_row, first_cells = seen[uid]
            repeats.setdefault(uid, [first_row]).append(row_no)
            if cells != first_cells:
                conflicts.add(uid)
            continue
        seen[uid] = (row_no, cells)
        out.units.append(uid)
        if text_idx is not None:
            t = cell_value(row[text_idx])
            if t:
                out.texts[uid] = t
        for coder, dims in plans.items():
            vals: dict[str, tuple[Value, bool]] = {}
            for dim, plan in dims.items():
                if isinstance(plan, _Cell):
                    vals[dim] = reader.cell(dim, row[plan.index], coder, uid)
                else:
                    vals[dim] = _onehot_value(plan, dim, row, coder, uid, reader, layout)
            closed = _apply_gates(reader.cb, vals, coder, uid, report) if layout.gates else set()
            reader.flush(closed, coder, uid)
            _store(out, vals, coder, uid)
    if repeats:
        shown = ", ".join(f"{u} (rows {', '.join(map(str, rows))})"
                          for u, rows in list(repeats.items())[:_SHOW])
        more = f", ... ({len(repeats) - _SHOW} more)" if len(repeats) > _SHOW else ""
        report.other.append(f"{report.where}: {len(repeats)} id(s) are on more than one row "
                            f"({len(conflicts)} of them with different codes); only the first "
                            f"row of each is read: {shown}{more}")
    if empty_rows:
        report.other.append(f"{report.where}: {len(empty_rows)} row(s) with an empty id are "
                            f"ignored (rows {', '.join(empty_rows[:_SHOW])})")


def _read_long(table: _Table, layout: LongLayout, cb: Codebook, reader: _Reader, where: str,
               out: Ratings) -> None:
    report = reader.report
    id_idx = table.col(layout.id or ("unit" if table.has("unit") else "id"), "id")
    c_idx = table.col(layout.coder_column, "coder_column")
    d_idx = table.col(layout.dimension_column, "dimension_column")
    k_idx = table.col(layout.code_column, "code_column")
    t_idx = table.col(layout.text, "text") if layout.text is not None else None
    dims = _dims(cb)
    cells: dict[tuple[str, str], dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    coders: dict[str, None] = {}
    bad_dims: dict[str, list[str]] = defaultdict(list)
    for row_no, row in table.rows:
        uid = _text(row[id_idx])
        coder = _text(row[c_idx])
        dim = _text(row[d_idx])
        if uid is None or coder is None or dim is None:
            report.other.append(f"{where}: row {row_no}: empty unit, coder or dimension; ignored")
            continue
        if uid not in out.texts and t_idx is not None and cell_value(row[t_idx]):
            out.texts[uid] = cell_value(row[t_idx]) or ""
        out.units.append(uid)
        coders.setdefault(coder)
        if dim not in dims:
            bad_dims[dim].append(str(row_no))
            continue
        cells[(coder, uid)][dim].append(row[k_idx])
    out.units[:] = list(dict.fromkeys(out.units))
    for dim, rows in bad_dims.items():
        report.other.append(f"{where}: dimension '{dim}'{_did_you_mean(dim, dims)} is not in "
                            f"codebook '{cb.name}' (rows {', '.join(rows[:_SHOW])}"
                            f"{', ...' if len(rows) > _SHOW else ''}); those rows are ignored")
    for coder in coders:
        out.coders[coder] = layout.kinds.get(coder, "human")
    for name in layout.kinds:
        if name not in coders:
            report.other.append(f"{where}: kinds.{name}: no coder '{name}' in the file"
                                f"{_did_you_mean(name, coders)}")
    for (coder, uid), by_dim in cells.items():
        vals: dict[str, tuple[Value, bool]] = {}
        for dim, raws in by_dim.items():
            d = dims[dim]
            parsed = [reader.cell(dim, r, coder, uid) for r in raws]
            texts = [_text(r) for r in raws]
            if d is not None and d.type == "multi":
                if any(_text(r) is not None and v is None for r, v in zip(raws, parsed,
                                                                          strict=True)):
                    vals[dim] = (None, False)  # an unknown code: already reported
                    continue
                sets = [v for v, _ in parsed if v is not None]
                vals[dim] = ((frozenset().union(*sets), any(g for _, g in parsed)) if sets
                             else (None, False))
                continue
            if any(t is not None and v is None for t, v in zip(texts, parsed, strict=True)):
                vals[dim] = (None, False)
                continue
            distinct = list(dict.fromkeys(v for v, _ in parsed if v is not None))
            if len(distinct) > 1:
                reader.pending.append(("several", dim))
                vals[dim] = (None, True)
            else:
                vals[dim] = (distinct[0], True) if distinct else (None, False)
        closed = _apply_gates(cb, vals, coder, uid, report) if layout.gates else set()
        reader.flush(closed, coder, uid)
        _store(out, vals, coder, uid)


# -- read_gold -------------------------------------------------------------------------------


def _codebook(codebook: Codebook | str | Path) -> Codebook:
    if isinstance(codebook, Codebook):
        return codebook
    from vsdcoder.codebook.load import load_codebook

    return load_codebook(codebook).codebook


def _auto_layout(table: _Table, cb: Codebook, path: Path) -> dict[str, Any]:
    header = set(table.header)
    dims = _dims(cb)
    if {"unit", "coder", "dimension", "code"} <= header:
        return {"layout": "long", **({"text": "text"} if "text" in header else {})}
    present = [d for d in dims if d in header]
    if "id" in header and present:
        lay: dict[str, Any] = {"layout": "wide", "columns": {d: d for d in present}}
        if "text" in header:
            lay["text"] = "text"
        return lay
    shown = ", ".join(repr(h) for h in table.header[:30])
    more = f", ... ({len(table.header)} columns)" if len(table.header) > 30 else ""
    raise UsageError(
        f"{path}: cannot tell how this gold file is laid out: its columns ({shown}{more}) are "
        f"not 'id' plus dimensions of codebook '{cb.name}' ({', '.join(dims)}), nor 'unit, "
        "coder, dimension, code'. Describe it in a layout file (--layout FILE.yaml), e.g.\n"
        "  layout: wide            # or long, onehot, coder_blocks\n"
        "  id: ID_COLUMN\n"
        "  columns: {DIMENSION: COLUMN}            # wide: a column per dimension\n"
        "  # onehot:       columns: {DIMENSION: {CODE: COLUMN, ...}}\n"
        "  # long:         coder_column, dimension_column, code_column\n"
        "  # coder_blocks: coders: [A1, A2], block: {DIMENSION: '{coder}_COLUMN'}\n"
        "  value_map: {DIMENSION: {LABEL_IN_FILE: CODE}}\n"
        "(see docs/reliability.md, 'Gold files and layouts')")


def read_gold(path: str | Path, codebook: Codebook | str | Path,
              layout: Mapping[str, Any] | str | Path | None = None) -> Ratings:
    """Read human codes from a gold file as :class:`Ratings`.

    Args:
        path: CSV, TSV, JSONL, Parquet or Excel file.
        codebook: The codebook (a :class:`Codebook`, a name or a YAML file).
        layout: A layout dict, a layout YAML file, or None to detect the simple cases (``id``
            plus columns named like the codebook's dimensions: wide; ``unit, coder, dimension,
            code``: long).

    Returns:
        Ratings with one coder per human (kind "human", or as the layout says) and
        ``problems`` listing codes not in the codebook, duplicate ids and the like.

    Raises:
        UsageError: the layout does not fit the file or the codebook (naming file and key).
    """
    cb = _codebook(codebook)
    path = Path(path)
    lay = load_layout(layout) if layout is not None else None
    where_layout = str(layout) if isinstance(layout, (str, Path)) else "layout"
    table = _Table(path, lay.format if lay else None, lay.encoding if lay else "utf-8-sig",
                   lay.positions if lay else {}, where_layout)
    if lay is None:
        lay = load_layout(_auto_layout(table, cb, path))
        where_layout = f"{path} (detected layout)"
        table.where = where_layout
    _check_value_map(lay, cb, where_layout)
    report = _Report(str(path), cb)
    reader = _Reader(cb, lay, report)
    out = Ratings()
    if isinstance(lay, LongLayout):
        _read_long(table, lay, cb, reader, str(path), out)
    else:
        plans: dict[str, dict[str, _Cell | _OneHotPlan]] = {}
        if isinstance(lay, (WideLayout, OneHotLayout)):
            coder = lay.coder or path.stem
            out.coders[coder] = lay.kind
            columns: Mapping[str, Any]
            if lay.columns is None:
                columns = {d: d for d in _dims(cb) if table.has(d)}
                if not columns:
                    raise UsageError(f"{where_layout}: no column of {path} is named like a "
                                     f"dimension of codebook '{cb.name}' ("
                                     f"{', '.join(_dims(cb))}); list them in 'columns: "
                                     "{DIMENSION: COLUMN}'")
            else:
                columns = lay.columns
            plans[coder] = {}
            for dim, src in columns.items():
                _check_dim(dim, cb, where_layout, f"columns.{dim}")
                plans[coder][dim] = _compile_source(src, dim, cb, table, reader, where_layout,
                                                    f"columns.{dim}")
        else:
            assert isinstance(lay, CoderBlocksLayout)
            if isinstance(lay.coders, list):
                dup = [c for c, n in Counter(lay.coders).items() if n > 1]
                if dup:
                    raise UsageError(f"{where_layout}: coders: '{dup[0]}' is listed twice")
                blocks = {c: (lay.block or {}) for c in lay.coders}
                base = "block"
            else:
                blocks = lay.coders
                base = "coders.{coder}"
            for coder, block in blocks.items():
                out.coders[coder] = lay.kinds.get(coder, "human")
                plans[coder] = {}
                for dim, src in block.items():
                    key = f"{base.replace('{coder}', coder)}.{dim}"
                    _check_dim(dim, cb, where_layout, key)
                    plans[coder][dim] = _compile_source(src, dim, cb, table, reader,
                                                        where_layout, key, coder)
            for name in lay.kinds:
                if name not in blocks:
                    raise UsageError(f"{where_layout}: kinds.{name}: no coder '{name}' in "
                                     f"'coders'{_did_you_mean(name, blocks)}")
        id_idx = table.col(lay.id if lay.id is not None else "id", "id")
        text_idx = table.col(lay.text, "text") if lay.text is not None else None
        _read_blocks(table, plans, id_idx, text_idx, reader, lay, out)
    unused = set(lay.positions) - table.used_positions
    if unused:
        name = sorted(unused)[0]
        raise UsageError(f"{where_layout}: positions.{name}: no column of the layout is called "
                         f"'{name}'; 'positions' maps a column name used in the layout (after "
                         "{coder} is filled in) to its position in the file")
    given = set(out.values)
    missing = [d.name for d in cb.dimensions if d.name not in given]
    if missing and out.units:
        report.other.append(f"{path}: no codes for dimension(s) {', '.join(missing)} of "
                            f"codebook '{cb.name}'")
    out.problems = report.lines()
    return out


# -- read_run --------------------------------------------------------------------------------


def _run_value(d: Dimension, v: Any) -> tuple[Value, str | None]:
    """A run's stored answer as a value, or a problem (an unknown code)."""
    if v is None:
        return None, None
    if d.type == "text":
        return (str(v) if str(v).strip() else None), None
    names = d.codable_names()
    if d.type == "multi":
        items = v if isinstance(v, list) else [v]
        bad = [x for x in items if x not in names]
        return (None, str(bad[0])) if bad else (frozenset(items), None)
    return (v, None) if v in names else (None, str(v))


def read_run(run: str | Path, codebook: Codebook | str | Path, name: str | None = None) -> Ratings:
    """Read a run directory (or its ``codes.jsonl``) as one coder.

    The coder is named ``name``, else the run's model string from ``manifest.json``, else the
    directory's name; its kind is "llm", or "baseline" when the manifest says so (``kind``, or
    ``model.kind``, or a model string starting with ``baseline/``). Failed and skipped units
    are missing (None) and have their status in ``Ratings.evidence[coder][uid]["status"]``
    ("failed", "skipped", ...), not in ``problems``: the caller says which of them matter
    (``evaluate`` lists the gold units left out, by status); a duplicate takes the codes and
    status of the unit it duplicates.

    Document codebooks: a dimension's value is the code (a frozenset for multi-label); a
    relevance gate appears as the pseudo-dimension ``relevant`` ("true"/"false"), and the
    dimensions of an irrelevant unit, or of a closed ``when`` gate, are missing. Segment
    codebooks: a unit's value per dimension is the frozenset of codes over its records, and a
    unit with zero records is an explicit empty answer (``frozenset()``).

    Quotes, offsets, rationales, records and "Other" terms are kept in ``Ratings.evidence``.
    """
    cb = _codebook(codebook)
    p = Path(run)
    codes_path = p / "codes.jsonl" if p.is_dir() else p
    run_dir = codes_path.parent
    if not codes_path.is_file():
        raise UsageError(f"{p}: no codes.jsonl here; pass a run directory written by "
                         "'vsdcoder code --out DIR' (or its codes.jsonl)")
    manifest: dict[str, Any] = {}
    mpath = run_dir / "manifest.json"
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{mpath}: unreadable manifest ({exc})") from None
    model = (manifest.get("model") or {}).get("model")
    coder = name or model or run_dir.name
    kind = manifest.get("kind") or (manifest.get("model") or {}).get("kind")
    if kind not in KINDS:
        kind = "baseline" if str(model or "").startswith("baseline/") else "llm"
    out = Ratings(coders={coder: kind})
    out.evidence[coder] = {}
    where = str(codes_path)
    cb_name = (manifest.get("codebook") or {}).get("name")
    if cb_name and cb_name != cb.name:
        out.problems.append(f"{where}: the run was coded with codebook '{cb_name}', not "
                            f"'{cb.name}'; its codes are compared as they are")
    elif cb_name and (manifest.get("codebook") or {}).get("version") not in (None, cb.version):
        out.problems.append(f"{where}: the run was coded with version "
                            f"{manifest['codebook']['version']} of codebook '{cb.name}', this is "
                            f"version {cb.version}")
    unknown: dict[tuple[str, str], list[str]] = defaultdict(list)
    from vsdcoder.store.exports import read_codes_jsonl

    lines = read_codes_jsonl(codes_path)
    relevance = cb.relevance is not None and cb.unit == "document"
    for uid, obj in lines.items():
        out.units.append(uid)
        status = obj.get("status", "coded")
        src = obj
        if status == "duplicate" and obj.get("duplicate_of") in lines:
            src = lines[obj["duplicate_of"]]
            status = src.get("status", "coded")
        if status != "coded":
            ev = {"status": status}
            if obj.get("error"):
                ev["error"] = obj["error"]
            out.evidence[coder][uid] = ev
            continue
        vals: dict[str, tuple[Value, bool]] = {}
        ev: dict[str, Any] = {}
        if cb.unit == "segment":
            records = src.get("records") or []
            sets: dict[str, set[str]] = {d.name: set() for d in cb.dimensions}
            bad_dims: set[str] = set()
            for rec in records:
                rec_vals = rec.get("codes") or {}
                gates = {k: (v, v not in (None, [])) for k, v in rec_vals.items()}
                _apply_gates(cb, gates, coder, uid, None)
                for d in cb.dimensions:
                    v, problem = _run_value(d, gates.get(d.name, (None, False))[0])
                    if problem is not None:
                        unknown[(d.name, problem)].append(uid)
                        bad_dims.add(d.name)
                    sets[d.name] |= _as_set(v)
            for d in cb.dimensions:
                vals[d.name] = (None if d.name in bad_dims else frozenset(sets[d.name]), True)
            ev["records"] = records
        else:
            codes = src.get("codes") or {}
            if relevance:
                r = src.get("relevant")
                vals[RELEVANT] = (None if r is None else ("true" if r else "false"), True)
            for d in cb.dimensions:
                v, problem = _run_value(d, codes.get(d.name))
                if problem is not None:
                    unknown[(d.name, problem)].append(uid)
                vals[d.name] = (v, v is not None and v != frozenset())
            _apply_gates(cb, vals, coder, uid, None)
            evidence = src.get("evidence") or {}
            for k in ("quote", "start", "end", "quote_verified"):
                if evidence.get(k) is not None:
                    ev[k] = evidence[k]
            if src.get("rationale"):
                ev["rationale"] = src["rationale"]
            if src.get("records"):  # quotes per dimension (evidence.per_dimension)
                ev["records"] = src["records"]
            spec = {k: v for k, v in codes.items() if k.endswith("_specify") and v}
            if spec:
                ev["specify"] = spec
        if ev:
            out.evidence[coder][uid] = ev
        _store(out, vals, coder, uid)
    for (dim, code), units in unknown.items():
        names = _codes_of(cb, dim)
        out.problems.append(f"{where}: unknown code '{code}' for '{dim}'"
                            f"{_did_you_mean(code, names)} (coder {coder}, {_ids(units)}); "
                            "read as missing")
    if not out.units:
        out.problems.append(f"{where}: the run has no units")
    return out


# -- majority, check, combine ----------------------------------------------------------------


class Majority(dict):
    """unit -> majority value (None where there is none), with why and how often.

    Attributes:
        reasons: unit -> why its value is None ("tie between a and b (2 votes each)", ...).
        counts: reason kind ("tie", "no answer") -> number of units.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[str, str] = {}
        self.counts: Counter[str] = Counter()


def majority(ratings: Ratings, dimension: str, coders: Iterable[str] | None = None,
             *, min_coders: int = 1) -> Majority:
    """The majority code of ``coders`` per unit for one dimension.

    Single-choice and ordinal values: the most frequent code among the coders who answered; a
    tie is None (reason counted under "tie"). Multi-label values: the codes chosen by at least
    half of the coders who answered (possibly the empty set). Units with fewer than
    ``min_coders`` answers are None ("no answer"). ``coders`` defaults to every human coder.
    """
    names = list(coders) if coders is not None else [
        c for c, k in ratings.coders.items() if k == "human"]
    dim = ratings.values.get(dimension, {})
    out = Majority()
    for u in ratings.units:
        vals = [v for c in names if (v := dim.get(c, {}).get(u)) is not None]
        if len(vals) < max(1, min_coders):
            out[u] = None
            out.reasons[u] = f"{len(vals)} of {len(names)} coders answered"
            out.counts["no answer"] += 1
            continue
        if any(isinstance(v, (set, frozenset)) for v in vals):
            sets = [frozenset(_as_set(v)) for v in vals]
            votes = Counter(c for s in sets for c in s)
            out[u] = frozenset(c for c, k in votes.items() if 2 * k >= len(sets))
            continue
        ranked = Counter(vals).most_common()
        top = [v for v, k in ranked if k == ranked[0][1]]
        if len(top) > 1:
            out[u] = None
            out.reasons[u] = (f"tie between {', '.join(map(str, sorted(top)))} "
                              f"({ranked[0][1]} vote{'s' if ranked[0][1] != 1 else ''} each)")
            out.counts["tie"] += 1
        else:
            out[u] = top[0]
    return out


def with_majority(ratings: Ratings, coders: Iterable[str] | None = None, name: str = "majority",
                  dimensions: Iterable[str] | None = None, *, min_coders: int = 1) -> Ratings:
    """A copy of ``ratings`` with a coder ``name`` (kind "gold") holding the majority codes."""
    if name in ratings.coders:
        raise ValueError(f"coder name '{name}' is already used")
    names = list(coders) if coders is not None else None
    extra = Ratings(units=list(ratings.units), coders={name: "gold"})
    for dim in (list(dimensions) if dimensions is not None else list(ratings.values)):
        m = majority(ratings, dim, names, min_coders=min_coders)
        extra.values[dim] = {name: {u: v for u, v in m.items() if v is not None}}
        if m.counts["tie"]:
            ties = [u for u, r in m.reasons.items() if r.startswith("tie")]
            extra.problems.append(f"majority of {dim}: ties are missing ({_ids(ties)})")
    return ratings.merge(extra)


def check(ratings: Ratings, codebook: Codebook | str | Path) -> list[str]:
    """What in ``ratings`` does not fit ``codebook``, as sentences (nothing is raised).

    Lists dimensions the codebook does not have, codes not in the codebook (with coder and
    unit ids), values of the wrong shape (a set for a single-choice dimension, a single code
    for a multi-label one) and unit ids that are not in ``ratings.units``.
    """
    cb = _codebook(codebook)
    dims = _dims(cb)
    out: list[str] = []
    known = set(ratings.units)
    unknown: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    shape: dict[tuple[str, str], list[str]] = defaultdict(list)
    stray: set[str] = set()
    for dim, by_coder in ratings.values.items():
        if dim not in dims:
            out.append(f"dimension '{dim}' is not in codebook '{cb.name}'"
                       f"{_did_you_mean(dim, dims)} (coders {', '.join(by_coder)})")
            continue
        d = dims[dim]
        names = set(_codes_of(cb, dim))
        for coder, by_unit in by_coder.items():
            for u, v in by_unit.items():
                if u not in known:
                    stray.add(u)
                if v is None or (d is not None and d.type == "text"):
                    continue
                is_set = isinstance(v, (set, frozenset))
                multi = d is not None and (d.type == "multi" or cb.unit == "segment")
                if is_set != multi:
                    shape[(dim, coder)].append(u)
                for code in (v if is_set else [v]):
                    if code not in names:
                        unknown[(dim, coder, str(code))].append(u)
    for (dim, coder, code), units in unknown.items():
        out.append(f"unknown code '{code}' for '{dim}'{_did_you_mean(code, _codes_of(cb, dim))} "
                   f"(coder {coder}, {_ids(units)})")
    for (dim, coder), units in shape.items():
        d = dims[dim]
        want = "a set of codes" if d is not None and d.type == "multi" else "one code"
        out.append(f"'{dim}' takes {want}; coder {coder} has another shape ({_ids(units)})")
    if stray:
        out.append(f"values for unit ids not in the list of units ({_ids(sorted(stray))})")
    for coder in ratings.coders:
        if not any(coder in by_coder for by_coder in ratings.values.values()):
            out.append(f"coder {coder} has no codes")
    return out


def combine(gold: Ratings, *runs: Ratings) -> Ratings:
    """Gold merged with runs; ids present on one side only are listed in ``problems``."""
    out = gold
    gold_ids = set(gold.units)
    for run in runs:
        out = out.merge(run)
        run_ids = set(run.units)
        names = ", ".join(run.coders)
        only_gold = [u for u in gold.units if u not in run_ids]
        only_run = [u for u in run.units if u not in gold_ids]
        if only_gold:
            out.problems.append(f"ids in the gold file only, not in run {names} "
                                f"({_ids(only_gold)})")
        if only_run:
            hint = ""
            norm = {u.removesuffix(".0") for u in gold_ids}
            if any(u.removesuffix(".0") in norm for u in only_run[:50]):
                hint = "; the ids differ only by '.0' (numbers read as decimals?)"
            out.problems.append(f"ids in run {names} only, not in the gold file "
                                f"({_ids(only_run)}){hint}")
    return out
