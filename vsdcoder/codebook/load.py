"""Read a codebook file, validate it, and report every problem with file, line and field."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from vsdcoder.codebook.checks import check_codebook
from vsdcoder.codebook.model import Codebook
from vsdcoder.codebook.yamlsrc import Problem, SourceMap, YamlSourceError, load_yaml
from vsdcoder.errors import UsageError


def _known_keys() -> set[str]:
    from vsdcoder.codebook import model as m

    keys: set[str] = set()
    for cls in (m.Codebook, m.Dimension, m.Code, m.CodeExamples, m.NoneOption, m.OtherOption,
                m.When, m.Relevance, m.RelevanceRule, m.SegmentRules, m.Evidence, m.Example,
                m.CodeSet):
        keys |= set(cls.model_fields)
    return keys


class CodebookError(UsageError):
    """A codebook has errors; ``problems`` lists all of them."""

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


def _pydantic_problems(exc: ValidationError, smap: SourceMap) -> list[Problem]:
    known = _known_keys()
    out = []
    for e in exc.errors():
        loc = tuple(e["loc"])
        kind = e["type"]
        msg = e["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
            hint = f"; did you mean '{close[0]}'?" if close else "; see docs/codebook.md for the keys"
            msg = f"unknown key '{key}'{hint}"
        elif kind == "missing":
            msg = f"'{loc[-1]}' is required here; add it"
        elif kind in ("string_type", "list_type", "dict_type", "bool_type", "int_type",
                      "int_parsing", "bool_parsing", "model_type"):
            want = {"string_type": "text", "list_type": "a list", "dict_type": "a mapping",
                    "bool_type": "true or false", "bool_parsing": "true or false",
                    "int_type": "a whole number", "int_parsing": "a whole number",
                    "model_type": "a mapping of keys"}[kind]
            msg = f"should be {want}, got {type(e.get('input')).__name__} {e.get('input')!r}"[:200]
        elif kind == "literal_error":
            msg = msg.replace("Input should be", "must be")
        elif kind == "too_short" and loc and loc[-1] == "dimensions":
            msg = "a codebook needs at least one dimension"
        out.append(smap.problem(loc, msg, "error", kind))
    return out


def parse_codebook(text: str, file: str, *, strict: bool = False) -> LoadedCodebook:
    """Parse and check codebook YAML ``text`` that came from ``file``.

    Args:
        text: The YAML source.
        file: Name used in messages (a path, or ``<string>``).
        strict: Treat lint warnings as errors.

    Raises:
        CodebookError: with every problem found, each placed at file:line:col and field.
    """
    try:
        data, smap = load_yaml(text, file)
    except YamlSourceError as exc:
        raise CodebookError(exc.problems) from None
    if not isinstance(data, dict):
        raise CodebookError([smap.problem((), "a codebook is a YAML mapping with keys such as "
                                               "'name' and 'dimensions'")])
    try:
        codebook = Codebook.model_validate(data)
    except ValidationError as exc:
        raise CodebookError(_pydantic_problems(exc, smap)) from None
    problems = check_codebook(codebook, smap)
    if strict:
        problems = [Problem(p.file, p.line, p.col, p.path, p.message, "error", p.rule)
                    for p in problems]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise CodebookError(problems)
    return LoadedCodebook(codebook, file, None, problems)


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
        raise CodebookError([Problem(str(p), line, None, "", "the file is not UTF-8 text; save "
                                     "it as UTF-8")]) from None
    loaded = parse_codebook(text, str(p), strict=strict)
    loaded.directory = p.resolve().parent
    return loaded


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
        raise UsageError(f"no codebook file or registered codebook named '{name_or_path}'; "
                         f"registered: {known} (see 'vsdcoder codebook list')")
    return load_codebook_file(entry.path, strict=strict)
