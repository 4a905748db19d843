"""Safe YAML reading that remembers where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two duplicate keys.
Here the document is composed into nodes with the safe loader (no Python tags), then built
into plain data while recording the 1-based line and column of each value under its path,
e.g. ``("dimensions", 2, "codes", 5, "definition") -> (41, 19)``.
"""

from __future__ import annotations

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
        tag = "" if self.severity == "error" else f"{self.severity}: "
        return f"{head}{tag}{self.message}"


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
    """The file is not valid YAML (or not a mapping); carries its problems."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse ``text`` safely and return ``(data, source_map)``.

    Raises:
        YamlSourceError: on a syntax error, duplicate keys or a non-string key; every
            duplicate key is reported, not just the first.
    """
    smap = SourceMap(file)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            msg = f"not valid YAML: {exc.problem or exc}"
            if exc.context:
                msg += f" ({exc.context})"
            raise YamlSourceError(
                [Problem(file, line, col, "", msg + "; check indentation and quoting there")]
            ) from None
        except yaml.YAMLError as exc:  # e.g. a reader error on a control character
            raise YamlSourceError([Problem(file, None, None, "", f"not valid YAML: {exc}")]) from None
        if node is None:
            raise YamlSourceError([Problem(file, 1, 1, "", "the file is empty; a codebook is a YAML mapping")])
        problems: list[Problem] = []
        data = _build(loader, node, (), smap, problems)
    finally:
        loader.dispose()
    if problems:
        raise YamlSourceError(problems)
    return data, smap


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, smap: SourceMap,
           problems: list[Problem]) -> Any:
    smap.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                problems.append(Problem(
                    file=smap.file, line=key_node.start_mark.line + 1,
                    col=key_node.start_mark.column + 1, path=format_path(path),
                    message=f"key {key!r} is not text; quote it (e.g. '{key}:' -> '\"{key}\":')",
                ))
                key = str(key)
            if key in out:
                problems.append(Problem(
                    file=smap.file, line=key_node.start_mark.line + 1,
                    col=key_node.start_mark.column + 1, path=format_path(path + (key,)),
                    message=f"duplicate key '{key}' (first at line {smap.marks[path + (key,)][0]}); "
                            "YAML would silently keep only the last one: remove or rename one",
                ))
                continue
            out[key] = _build(loader, value_node, path + (key,), smap, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), smap, problems) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
