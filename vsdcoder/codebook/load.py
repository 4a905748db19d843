"""Read a codebook file, validate it, and report every problem with file, line and field.

Problems are found in three stages: YAML (syntax, duplicate keys, refused tags), the pydantic
models (unknown keys, wrong types, bad names) and whole-codebook checks (unique names,
``when`` references, examples, lint). A problem in an early stage does not hide the others:
entries the YAML stage refused are left out, and optional keys the models reject are pruned,
so that the later stages can still run and every problem is reported at once.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vsdcoder.codebook import model as m
from vsdcoder.codebook.checks import check_codebook
from vsdcoder.codebook.model import Codebook, ShapeError
from vsdcoder.codebook.yamlsrc import (
    Problem,
    SourceMap,
    YamlSourceError,
    format_path,
    load_yaml,
)
from vsdcoder.errors import UsageError

_MODELS: tuple[type[BaseModel], ...] = (
    m.Codebook, m.Dimension, m.Code, m.CodeExamples, m.NoneOption, m.OtherOption, m.When,
    m.Relevance, m.RelevanceRule, m.SegmentRules, m.Evidence, m.Example, m.CodeSet,
    m.ScaleLevel, m.LevelWording,
)

#: What each model is called in messages, and how it is written.
_SHAPES: dict[type[BaseModel], tuple[str, str]] = {
    m.Codebook: ("the codebook", "a mapping with at least 'name' and 'dimensions'"),
    m.Dimension: ("a dimension", "a mapping such as '{name: topic, type: single, codes: [...]}'"),
    m.Code: ("a code", "a mapping such as '{name: work, definition: ...}', one '- name: ...' "
                       "item per code"),
    m.CodeExamples: ("a code's examples", "'examples: {positive: [...], negative: [...]}'"),
    m.NoneOption: ("a 'none' option", "'none: true', or a mapping such as "
                                      "'{name: none, definition: ...}'"),
    m.OtherOption: ("an 'other' option", "'other: true', or a mapping such as "
                                         "'{name: other, definition: ...}'"),
    m.When: ("a 'when' condition", "'when: {dimension: NAME, codes: [CODE, ...]}'"),
    m.Relevance: ("the relevance gate", "'relevance: {include: [...], exclude: [...]}'"),
    m.RelevanceRule: ("a relevance criterion", "a text, or a mapping such as "
                                               "'{name: ..., description: ..., examples: [...]}'"),
    m.SegmentRules: ("the segment rules", "'segment: {quote_min_words: N, max_records: N, "
                                          "rules: [...]}'"),
    m.Evidence: ("the evidence settings", "'evidence: {quote: true, quote_min_words: N, "
                                          "rationale: false, per_dimension: false}'"),
    m.ScaleLevel: ("a level of a scale", "a name, or a mapping such as '{name: weak, label: "
                                         "Weak, definition: ...}'"),
    m.LevelWording: ("a dimension's wording of a level", "a definition as text, or a mapping "
                                                         "such as '{definition: ..., label: "
                                                         "...}'"),
    m.Example: ("an example", "a mapping such as '{text: ..., output: {DIMENSION: CODE}}'"),
    m.CodeSet: ("a set", "a mapping such as '{name: ..., codes: [dimension.code, ...]}'"),
}


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for cls in _MODELS:
        keys |= set(cls.model_fields)
    return keys


class CodebookError(UsageError):
    """A codebook has errors; ``problems`` lists all of them (warnings included)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        n = sum(p.severity == "error" for p in problems)
        super().__init__("\n".join(str(p) for p in problems)
                         + f"\n{n} error{'s' if n != 1 else ''} in codebook")


@dataclass
class LoadedCodebook:
    """A valid codebook together with where it came from and its lint warnings."""

    codebook: Codebook
    source: str
    directory: Path | None = None
    warnings: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# where a pydantic error is: the declared type at a location of the codebook


def _strip_optional(t: Any) -> Any:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return t


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _type_at(loc: tuple[Any, ...]) -> Any:
    """The declared type at ``loc`` of a codebook (None when it cannot be told)."""
    t: Any = Codebook
    for part in loc:
        t = _strip_optional(t)
        if typing.get_origin(t) is typing.Annotated:
            t = typing.get_args(t)[0]
        if isinstance(part, int):
            if typing.get_origin(t) is not list:
                return None
            t = typing.get_args(t)[0]
        elif typing.get_origin(t) is dict:
            t = typing.get_args(t)[1]
        elif _is_model(t) and part in t.model_fields:
            t = t.model_fields[part].annotation
        else:
            return None
    t = _strip_optional(t)
    return typing.get_args(t)[0] if typing.get_origin(t) is typing.Annotated else t


def _item_loc(loc: tuple[Any, ...], key: Any) -> tuple[Any, ...]:
    """Where an item of a :class:`ShapeError` is: its key (or key path) under ``loc``."""
    if key is None:
        return loc
    return (*loc, *key) if isinstance(key, tuple) else (*loc, key)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (the value is empty)"
    if isinstance(value, str):
        return f"the text {value!r}"[:80]
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"[:80]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _message(e: dict[str, Any], known: set[str]) -> str:
    """A message for one pydantic error that says what is wrong and what to do."""
    loc = tuple(e["loc"])
    kind = e["type"]
    value = e.get("input")
    ctx = e.get("ctx") or {}
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        owner = _type_at(loc[:-1])
        if any(ch.isspace() for ch in key.strip()):
            return (f"'{key}' is read as a key, but it looks like part of a text: a ',' inside "
                    "'{...}' or '[...]' ends a value early; put the whole text in quotes")
        here = sorted(owner.model_fields) if _is_model(owner) else sorted(known)
        close = difflib.get_close_matches(key, here, n=1, cutoff=0.7)
        if close:
            return f"unknown key '{key}'; did you mean '{close[0]}'?"
        what = _SHAPES.get(owner, ("this mapping", ""))[0] if _is_model(owner) else "this mapping"
        if key in known:
            return (f"'{key}' is not a key of {what}; check the indentation, or use one of: "
                    + ", ".join(here))
        return f"unknown key '{key}'; {what} takes: " + ", ".join(here)
    if kind == "missing":
        return f"'{key}' is required here; add it"
    if kind == "model_type" or (kind == "model_attributes_type"):
        target = _type_at(loc)
        if _is_model(target) and target in _SHAPES:
            what, shape = _SHAPES[target]
            return f"expected {what}, written as {shape}; got {_describe(value)}"
        return f"should be a mapping of 'key: value' lines; got {_describe(value)}"
    if kind == "string_type":
        if value is None:
            return "has no value; write one after the colon, or remove the key"
        if isinstance(value, (list, dict)):
            return f"should be one text value, got {_describe(value)}"
        return (f"should be text, got {_describe(value)}; put it in quotes so that YAML keeps "
                "it as text")
    if kind == "list_type":
        return ("should be a list: write '[a, b]' or one '- item' line per item; "
                f"got {_describe(value)}")
    if kind == "dict_type":
        return f"should be a mapping of 'key: value' lines; got {_describe(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"should be true or false, got {_describe(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"should be a whole number, got {_describe(value)}"
    if kind == "greater_than_equal":
        return (f"must be at least {ctx.get('ge')}, got {value!r}; use a larger whole number, "
                "or remove the key to use the default")
    if kind == "too_short":
        if key == "dimensions":
            return ("a codebook needs at least one dimension; add one under 'dimensions:' "
                    "(e.g. '- name: topic')")
        n = ctx.get("min_length", 1)
        return f"needs at least {_plural(n, 'item')}; add {'it' if n == 1 else 'them'}"
    if kind == "too_long":
        return (f"takes at most {_plural(ctx.get('max_length', 0), 'item')}, got "
                f"{ctx.get('actual_length')}; remove some")
    if kind == "string_too_short":
        return "must not be empty; write a value"
    if kind == "string_too_long":
        return (f"is too long ({len(str(value))} characters, at most {ctx.get('max_length')}); "
                "shorten it and put the longer wording in 'label' or 'definition'")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        msg = f"must be {expected}, got {_describe(value)}"
        allowed = [x.strip(" '") for x in expected.replace(" or ", ",").split(",")]
        close = difflib.get_close_matches(str(value), [a for a in allowed if a], n=1)
        return msg + (f"; did you mean '{close[0]}'?" if close else "")
    return str(e["msg"]).removeprefix("Value error, ")


def _pydantic_problems(exc: ValidationError, smap: SourceMap) -> list[Problem]:
    known = _known_keys()
    out = []
    for e in exc.errors():
        loc = tuple(e["loc"])
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, ShapeError):
            for key, msg in error.items:
                out.append(smap.problem(_item_loc(loc, key), msg, "error", "shape"))
            continue
        out.append(smap.problem(loc, _message(e, known), "error", e["type"]))
    return out


def _prune(data: Any, exc: ValidationError) -> list[tuple[Any, ...]] | None:
    """Remove from ``data`` the optional keys that ``exc`` complains about.

    Returns the locations removed, or None when an error is not about an optional key (a
    missing or bad required value, a list item), so that pruning cannot make the codebook
    valid.
    """
    targets: list[tuple[Any, ...]] = []
    for e in exc.errors():
        loc = tuple(e["loc"])
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, ShapeError):
            if any(k is None for k, _ in error.items):
                return None
            targets += [_item_loc(loc, k) for k, _ in error.items]
            continue
        if e["type"] != "extra_forbidden":
            owner = _type_at(loc[:-1])
            if not (loc and _is_model(owner) and loc[-1] in owner.model_fields
                    and not owner.model_fields[loc[-1]].is_required()):
                return None
        targets.append(loc)
    for loc in targets:
        parent = data
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return None
        if not isinstance(parent, dict) or loc[-1] not in parent:
            return None
        del parent[loc[-1]]
    return targets


def _shadowed(path: str, pruned: list[tuple[Any, ...]]) -> bool:
    """Whether a problem at ``path`` may only come from the defaults of pruned keys.

    Pruning a key leaves its default, which can make its siblings look wrong (a misspelt
    ``type: mutli`` becomes ``single``, and then ``max_codes`` seems misplaced). Problems
    that only show up after pruning, next to a pruned key, are therefore dropped; at the
    top level only when the pruned key chooses between alternatives (``unit``).
    """
    for loc in pruned:
        parent = loc[:-1]
        if parent:
            if _under(path, [format_path(parent)]):
                return True
        elif typing.get_origin(_type_at(loc)) is typing.Literal:
            return True
    return False


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in roots)


def _template_problem(codebook: Codebook, smap: SourceMap, directory: Path) -> Problem | None:
    from vsdcoder.codebook.compile import template_dirs

    try:
        dirs = template_dirs([directory])
    except UsageError:  # the plugins conflict; that is reported where they are loaded
        dirs = [directory]
    for part in ("system", "user"):
        fname = f"{codebook.template}.{part}.jinja"
        if not any((d / fname).is_file() for d in dirs):
            return smap.problem(
                ("template",),
                f"template '{codebook.template}' not found: there is no {fname} next to the "
                "codebook or in a registered template folder; use a bundled template such as "
                "'deductive.v1', or put NAME.system.jinja and NAME.user.jinja next to the "
                "codebook", "error", "unknown-template")
    return None


def _sort_key(p: Problem) -> tuple[int, int]:
    return (p.line if p.line is not None else 10**9, p.col or 0)


def parse_codebook(text: str, file: str, *, strict: bool = False,
                   directory: Path | None = None) -> LoadedCodebook:
    """Parse and check codebook YAML ``text`` that came from ``file``.

    Args:
        text: The YAML source.
        file: Name used in messages (a path, or ``<string>``).
        strict: Treat lint warnings as errors.
        directory: The folder the codebook was read from; when given, the template the
            codebook names must exist there or in a registered template folder.

    Raises:
        CodebookError: with every problem found, each placed at file:line:col and field.
    """
    problems: list[Problem] = []
    try:
        data, smap = load_yaml(text, file)
    except YamlSourceError as exc:
        if exc.data is None or exc.smap is None:
            raise CodebookError(exc.problems) from None
        problems += exc.problems
        data, smap = exc.data, exc.smap
    if not isinstance(data, dict):
        raise CodebookError([*problems, smap.problem(
            (), f"a codebook is a YAML mapping with keys such as 'name' and 'dimensions', but "
                f"this file holds {_describe(data)}; write 'name: ...' and 'dimensions:' at the "
                "start of lines")])
    # problems of the YAML stage hide later problems at or under the same place
    yaml_roots = [p.path for p in problems if p.path]
    codebook: Codebook | None = None
    try:
        codebook = Codebook.model_validate(data)
    except ValidationError as exc:
        problems += [p for p in _pydantic_problems(exc, smap) if not _under(p.path, yaml_roots)]
        # leave out the optional keys that were wrong and try again, so that the
        # whole-codebook checks still run and report their problems too
        pruned_data = copy.deepcopy(data)
        pruned: list[tuple[Any, ...]] = []
        last = exc
        for _ in range(8):
            removed = _prune(pruned_data, last)
            if removed is None:
                break
            pruned += removed
            try:
                codebook = Codebook.model_validate(pruned_data)
                break
            except ValidationError as again:
                # errors that an earlier error hid (model-level checks run only once the
                # fields are valid) are real problems too, unless pruning caused them
                seen = {(p.path, p.message) for p in problems}
                problems += [p for p in _pydantic_problems(again, smap)
                             if (p.path, p.message) not in seen
                             and not _under(p.path, yaml_roots)
                             and not _shadowed(p.path, pruned)]
                last = again
    if codebook is not None:
        found = check_codebook(codebook, smap)
        if problems:
            # parts of the codebook were left out, so example checks are not trustworthy
            found = [p for p in found if p.rule != "bad-example"]
        if directory is not None:
            tp = _template_problem(codebook, smap, directory)
            if tp is not None:
                found.append(tp)
        roots = [p.path for p in problems if p.path]
        problems += [p for p in found if not _under(p.path, roots)]
    if strict:
        problems = [p if p.severity == "error" else
                    Problem(p.file, p.line, p.col, p.path,
                            p.message + (f" [{p.rule}, an error in strict mode]" if p.rule else ""),
                            "error", p.rule)
                    for p in problems]
    problems.sort(key=_sort_key)
    if codebook is None or any(p.severity == "error" for p in problems):
        raise CodebookError(problems)
    return LoadedCodebook(codebook, file, directory, problems)


def load_codebook_file(path: str | Path, *, strict: bool = False) -> LoadedCodebook:
    """Load a codebook YAML file (see :func:`parse_codebook`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"{p}: cannot read codebook: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CodebookError([Problem(
            str(p), line, col, "", f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02X} "
            "here is not UTF-8); save it as UTF-8 (in most editors: 'Save with encoding')",
        )]) from None
    return parse_codebook(text, str(p), strict=strict, directory=p.resolve().parent)


def load_codebook(name_or_path: str | Path, *, strict: bool = False) -> LoadedCodebook:
    """Load a codebook by file path or by the name a plugin registered it under.

    Args:
        name_or_path: A ``.yaml``/``.yml`` path, or a registered name such as ``sad-stressors``.
        strict: Treat lint warnings as errors.

    Raises:
        CodebookError: the codebook has errors.
        UsageError: no such file or registered codebook.
    """
    p = Path(name_or_path)
    if p.suffix.lower() in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise UsageError(f"{p}: no such codebook file")
        return load_codebook_file(p, strict=strict)
    from vsdcoder.plugins import get_registry

    reg = get_registry()
    entry = reg.codebooks.get(str(name_or_path))
    if entry is None:
        known = ", ".join(sorted(reg.codebooks)) or "(none)"
        from vsdcoder.suggest import did_you_mean

        hint = did_you_mean(str(name_or_path), reg.codebooks)
        raise UsageError(f"no codebook file or registered codebook named '{name_or_path}'{hint}; "
                         f"registered: {known} (see 'vsdcoder codebook list')")
    return load_codebook_file(entry.path, strict=strict)


__all__ = ["CodebookError", "LoadedCodebook", "format_path", "load_codebook",
           "load_codebook_file", "parse_codebook"]
