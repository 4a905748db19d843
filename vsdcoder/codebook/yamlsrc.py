"""Safe YAML reading that remembers where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two duplicate keys.
Here the document is composed into nodes with the safe loader (no Python tags), then built
into plain data while recording the 1-based line and column of each value under its path,
e.g. ``("dimensions", 2, "codes", 5, "definition") -> (41, 19)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Problem:
    """One error or warning found in a source file."""

    file: str
    line: int | None
    col: int | None
    path: str
    message: str
    severity: str = "error"
    rule: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        head = f"{where}: {self.path}: " if self.path else f"{where}: "
        if self.severity == "error":
            return f"{head}{self.message}"
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{head}{self.severity}: {self.message}{rule}"


@dataclass
class SourceMap:
    """Positions of the values of one YAML document, keyed by path."""

    file: str
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> tuple[int | None, int | None]:
        """Line and column of ``path``, or of its nearest ancestor that exists in the file."""
        p = tuple(path)
        while True:
            if p in self.marks:
                return self.marks[p]
            if not p:
                return (None, None)
            p = p[:-1]

    def problem(self, path: Path, message: str, severity: str = "error", rule: str = "") -> Problem:
        """A :class:`Problem` placed at ``path``."""
        line, col = self.locate(path)
        return Problem(self.file, line, col, format_path(path), message, severity, rule)


def format_path(path: Path) -> str:
    """Render ``("dimensions", 2, "codes")`` as ``dimensions[2].codes``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class YamlSourceError(Exception):
    """The file is not valid YAML (or not a mapping); carries its problems.

    ``data`` and ``smap`` are set when the problems did not stop the document from being built
    (duplicate keys, refused tags, non-text keys): the caller may go on checking ``data``, where
    the offending entries are left out, and report everything at once.
    """

    def __init__(self, problems: list[Problem], data: Any = None,
                 smap: SourceMap | None = None):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
        self.data = data
        self.smap = smap


_STANDARD_TAGS = {
    "map": "tag:yaml.org,2002:map",
    "seq": "tag:yaml.org,2002:seq",
}


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,") else tag


def _syntax_message(exc: yaml.MarkedYAMLError) -> tuple[yaml.Mark | None, str]:
    """Where a YAML syntax error is and what the author should do about it."""
    problem = str(exc.problem or exc)
    context = str(exc.context or "")
    mark = exc.problem_mark or exc.context_mark
    ctx_mark = exc.context_mark
    ctx_line = f"line {ctx_mark.line + 1}" if ctx_mark is not None else "above"
    if "quoted scalar" in context and "end of stream" in problem and ctx_mark is not None:
        return ctx_mark, ("a quoted value opened here is never closed; add the closing quote "
                          "(\" or ') on the same value")
    if "'\\t'" in problem or "\t" in problem:
        return mark, ("a tab character is not allowed for indentation in YAML; indent with "
                      "spaces only")
    if problem.startswith("mapping values are not allowed"):
        return mark, ("a 'key: value' is not allowed here; align this line's indentation with "
                      "its sibling keys, or put the value in quotes if it contains ': '")
    if "cannot start any token" in problem:
        ch = re.search(r"found character (\S+)", problem)
        what = ch.group(1) if ch else "this character"
        return mark, (f"a plain value cannot start with {what}; put the value in quotes")
    if "flow sequence" in context:
        return mark, (f"the '[' list opened at {ctx_line} is not closed ({problem}); add the "
                      "missing ',' or ']'")
    if "flow mapping" in context:
        return mark, (f"the '{{' mapping opened at {ctx_line} is not closed ({problem}); add the "
                      "missing ',' or '}'")
    if problem.startswith(("expected <block end>", "did not find expected key",
                           "did not find expected '-'")):
        return mark, (f"the indentation here does not match the block that starts at {ctx_line} "
                      f"({problem}); indent sibling keys and list items by the same number of "
                      "spaces")
    if "undefined alias" in problem:
        return mark, (f"{problem}; define the anchor ('&name') before using the alias "
                      "('*name'), or write the value out")
    msg = f"not valid YAML: {problem}"
    if context:
        msg += f" ({context}{' at ' + ctx_line if ctx_mark is not None else ''})"
    return mark, msg + "; check indentation and quoting there"


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse ``text`` safely and return ``(data, source_map)``.

    Only plain YAML is accepted: mappings, lists, and scalars with standard tags. Python tags
    (``!!python/object``) and any other custom tag are refused, never constructed.

    Raises:
        YamlSourceError: on a syntax error, duplicate keys, a refused tag or a non-text key;
            every duplicate key and refused tag is reported, not just the first.
    """
    smap = SourceMap(file)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise YamlSourceError([_reader_problem(exc, text, file)]) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark, msg = _syntax_message(exc)
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            raise YamlSourceError([Problem(file, line, col, "", msg)]) from None
        except yaml.reader.ReaderError as exc:
            raise YamlSourceError([_reader_problem(exc, text, file)]) from None
        except yaml.YAMLError as exc:
            raise YamlSourceError(
                [Problem(file, None, None, "", f"not valid YAML: {exc}; fix the file")]) from None
        if node is None:
            raise YamlSourceError([Problem(
                file, 1, 1, "", "the file is empty; a codebook is a YAML mapping with at least "
                "'name' and 'dimensions' (see docs/codebook.md)")])
        problems: list[Problem] = []
        try:
            data = _build(loader, node, (), smap, problems)
        except _TooLarge:
            raise YamlSourceError([Problem(
                file, 1, 1, "", f"the file expands to more than {MAX_VALUES} values (aliases "
                "that refer to aliases?); write the values out instead of nesting aliases")]
            ) from None
    finally:
        loader.dispose()
    if problems:
        raise YamlSourceError(problems, data, smap)
    return data, smap


def _reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    pos = exc.position if isinstance(exc.position, int) else 0
    before = text[:pos]
    line = before.count("\n") + 1
    col = pos - (before.rfind("\n") + 1) + 1
    return Problem(file, line, col, "", f"the file contains the control character "
                   f"U+{exc.character:04X}, which YAML does not allow; delete it (it is often a "
                   "leftover of copying from a PDF or a word processor)")


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _refuse_tag(node: yaml.Node, path: Path, smap: SourceMap, problems: list[Problem]) -> None:
    line, col = _mark(node)
    problems.append(Problem(
        smap.file, line, col, format_path(path),
        f"the tag '{_short_tag(node.tag)}' is not allowed: codebooks are read as plain, safe YAML "
        "and tags that create program objects are refused; remove the tag and write plain text, "
        "lists and mappings"))


#: Most values a codebook may expand to; aliases of aliases ("billion laughs") stop here.
MAX_VALUES = 200_000


class _TooLarge(Exception):
    pass


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, smap: SourceMap,
           problems: list[Problem], key_node: yaml.Node | None = None,
           count: list[int] | None = None) -> Any:
    count = count if count is not None else [0]
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise _TooLarge
    # a block mapping or list is placed at its key ("codes:"), anything else where it starts
    block = isinstance(node, yaml.CollectionNode) and not node.flow_style
    smap.marks[path] = _mark(key_node if key_node is not None and block else node)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _STANDARD_TAGS["map"]:
            _refuse_tag(node, path, smap, problems)
            return _REFUSED
        try:
            loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            line, col = _mark(node)
            problems.append(Problem(smap.file, line, col, format_path(path),
                                    f"cannot merge keys here ({exc.problem}); '<<' takes a "
                                    "mapping or a list of mappings"))
            return _REFUSED
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for knode, value_node in node.value:
            key = _key(loader, knode, path, smap, problems)
            if key is None:
                continue
            key_path = (*path, key)
            if key in first_line:
                line, col = _mark(knode)
                problems.append(Problem(
                    smap.file, line, col, format_path(key_path),
                    f"duplicate key '{key}' (first at line {first_line[key]}); YAML would "
                    "silently keep only the last one: remove or rename one"))
                continue
            first_line[key] = _mark(knode)[0]
            value = _build(loader, value_node, key_path, smap, problems, knode, count)
            if value is not _REFUSED:
                out[key] = value
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _STANDARD_TAGS["seq"]:
            _refuse_tag(node, path, smap, problems)
            return _REFUSED
        items = [_build(loader, item, (*path, i), smap, problems, None, count)
                 for i, item in enumerate(node.value)]
        # a refused item stays as None so that later items keep their index (and position)
        return [None if x is _REFUSED else x for x in items]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        _refuse_tag(node, path, smap, problems)
        return _REFUSED


def _key(loader: yaml.SafeLoader, node: yaml.Node, path: Path, smap: SourceMap,
         problems: list[Problem]) -> str | None:
    """The text of a mapping key, or None (with a problem) when it is not plain text."""
    line, col = _mark(node)
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:str":
            return str(node.value)
        if node.tag.startswith("tag:yaml.org,2002:"):
            raw = str(node.value)
            try:
                value = loader.construct_object(node, deep=True)
                seen = f"{type(value).__name__} {value!r}"
            except yaml.YAMLError:
                seen = "something other than text"
            problems.append(Problem(
                smap.file, line, col, format_path((*path, raw)),
                f"the key '{raw}' is read by YAML as {seen}, not as text; put it in quotes: "
                f"'\"{raw}\":'"))
            return raw
    problems.append(Problem(
        smap.file, line, col, format_path(path),
        "a key must be plain text (not a list, a mapping or a tagged value); rewrite it as "
        "'name: value'"))
    return None


class _Refused:
    """Stands for a value that was refused (left out of the built data)."""

    def __repr__(self) -> str:
        return "<refused>"


_REFUSED: Any = _Refused()
