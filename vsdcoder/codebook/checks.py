"""Whole-codebook checks: errors that make a codebook unusable and lint warnings.

Errors (always): duplicate dimension or code names within a dimension, ``when`` naming
unknown or later dimensions or unknown codes, leaves marked ``codable: false``, sets naming
unknown codes, duplicate guids, per-dimension quotes of unknown or text dimensions (or whose
field is taken), ``quote: false`` where no dimension has its own quote, and few-shot examples
whose expected output breaks the codebook.

Warnings (errors with ``--strict``), each with a rule id: ``missing-definition``,
``duplicate-definition``, ``duplicate-name`` (same code name in two dimensions, unless they
are all ordinal: the levels of a scale repeat), ``duplicate-label``, ``missing-question``,
``several-specify``, ``unused-scale``.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from vsdcoder.codebook.model import QUOTE_SUFFIX, SPECIFY_SUFFIX, Code, Codebook, Dimension
from vsdcoder.codebook.yamlsrc import Path, Problem, SourceMap, format_path


def code_paths(codebook: Codebook) -> dict[tuple[str, str], Path]:
    """Map ``(dimension, code)`` to the YAML path of each written code.

    The codes of a dimension with a shared scale are at the scale's level, or at the
    dimension's own wording of it (``levels``).
    """
    out: dict[tuple[str, str], Path] = {}
    for di, dim in enumerate(codebook.dimensions):
        for code, path in dimension_codes(dim, di):
            out.setdefault((dim.name, code.name), path)
    return out


def dimension_codes(dim: Dimension, di: int) -> list[tuple[Code, Path]]:
    """Every code of dimension number ``di`` depth first, with where it is written."""
    if dim.scale is None:
        return _walk_codes(dim.codes, ("dimensions", di))
    return [(code, ("dimensions", di, "levels", code.name) if code.name in dim.levels
             else ("scales", dim.scale, li)) for li, code in enumerate(dim.codes)]


def _walk_codes(codes: list[Code], base: Path) -> list[tuple[Code, Path]]:
    """Every code under ``base`` depth first, with its YAML path."""
    out: list[tuple[Code, Path]] = []
    for ci, code in enumerate(codes):
        path = (*base, "codes", ci)
        out.append((code, path))
        out += _walk_codes(code.codes, path)
    return out


def check_codebook(codebook: Codebook, smap: SourceMap) -> list[Problem]:
    """Every error and warning of a codebook that parsed into the model."""
    probs: list[Problem] = []

    def err(path: Path, msg: str, rule: str = "") -> None:
        probs.append(smap.problem(path, msg, "error", rule))

    def warn(path: Path, msg: str, rule: str) -> None:
        probs.append(smap.problem(path, msg, "warning", rule))

    seen_dims: dict[str, int] = {}
    specify_fields = {d.name + SPECIFY_SUFFIX: d.name for d in codebook.dimensions
                      if d.specify_names()}
    guids: dict[str, Path] = {}
    for di, dim in enumerate(codebook.dimensions):
        if dim.name in seen_dims:
            err(("dimensions", di, "name"),
                f"duplicate dimension name '{dim.name}' (also dimensions[{seen_dims[dim.name]}]); "
                "rename one", "duplicate-dimension")
        seen_dims.setdefault(dim.name, di)
        if dim.name in specify_fields:
            err(("dimensions", di, "name"),
                f"'{dim.name}' is the name of the free-text field of '{specify_fields[dim.name]}' "
                "(its 'Other (term)' code); rename this dimension", "specify-clash")
        if not (dim.question or dim.description):
            warn(("dimensions", di), f"dimension '{dim.name}' has no 'question' or "
                 "'description'; add a 'question' that says what the coder should decide",
                 "missing-question")
        # code names within the dimension, options included
        where: dict[str, Path] = {}
        for code, path in dimension_codes(dim, di):
            if code.name in where and dim.scale is None:  # a scale's are checked once, above
                err((*path, "name"), f"duplicate code name '{code.name}' in dimension "
                    f"'{dim.name}' (first at {format_path(where[code.name])}); code names must "
                    "be unique within a dimension: rename or remove one", "duplicate-code")
            where.setdefault(code.name, path)
            if code.guid:
                key = code.guid.strip("{}").lower()
                if key in guids:
                    err((*path, "guid"), f"guid {code.guid} is also used at "
                        f"{format_path(guids[key])}; each code needs its own guid: change or "
                        "remove one", "duplicate-guid")
                guids.setdefault(key, (*path, "guid"))
            if not code.codes and code.codable is False:
                err((*path, "codable"), f"'{code.name}' has no sub-codes, so 'codable: false' "
                    "would make it impossible to assign; remove the flag or add codes under it",
                    "uncodable-leaf")
            if code.codes and code.specify and not code.codable:
                err((*path, "specify"), f"'{code.name}' is a category; only a codable code can "
                    "take 'specify: true': mark it 'codable: true' or move 'specify' to one of "
                    "its codes", "specify-category")
            if code.is_codable and not code.definition:
                what = (f"level '{code.name}' of scale '{dim.scale}'" if path[0] == "scales"
                        else f"code '{code.name}'")
                warn(path, f"{what} has no definition; add a 'definition' that says when it "
                     "applies (otherwise the model guesses from the name alone)",
                     "missing-definition")
        for opt_key, opt in (("none", dim.none), ("other", dim.other)):
            if opt is not None and opt.name in where:
                err(("dimensions", di, opt_key), f"the '{opt_key}' option is named "
                    f"'{opt.name}', which is already a code of '{dim.name}' (at "
                    f"{format_path(where[opt.name])}); give the option another name "
                    f"('{opt_key}: {{name: ...}}') or remove the code", "duplicate-code")
        if dim.none is not None and dim.other is not None and dim.none.name == dim.other.name:
            err(("dimensions", di, "other"), f"the 'none' and 'other' options of '{dim.name}' "
                f"are both named '{dim.none.name}'; give one of them another name",
                "duplicate-code")
        spec = dim.specify_names()
        if dim.type == "multi" and len(spec) > 1:
            warn(("dimensions", di), f"'{dim.name}' is multi-label with several 'Other (term)' "
                 f"codes {spec}, which share one '{dim.name}{SPECIFY_SUFFIX}' field; keep one "
                 "of them, or make it a single-choice dimension", "several-specify")
        if dim.type != "text" and not dim.codable_names() and dim.scale is None:
            err(("dimensions", di, "codes"), f"dimension '{dim.name}' has no codable code; "
                "mark categories 'codable: true' or add leaf codes", "no-codable")

    # when: references and order
    index = {d.name: i for i, d in enumerate(codebook.dimensions)}
    for di, dim in enumerate(codebook.dimensions):
        if dim.when is None:
            continue
        gate = dim.when.dimension
        path: Path = ("dimensions", di, "when")
        if gate not in index:
            before = [d.name for d in codebook.dimensions[:di] if d.type != "text"]
            close = difflib.get_close_matches(gate, list(index), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            err((*path, "dimension"), f"'when' names unknown dimension '{gate}'; {hint}"
                + (f"gate on one listed before '{dim.name}': " + ", ".join(before) if before
                   else f"only a dimension listed before '{dim.name}' can gate it"),
                "when-unknown")
            continue
        if index[gate] >= di:
            what = "itself" if index[gate] == di else f"'{gate}', which comes later"
            err((*path, "dimension"), f"'when' of '{dim.name}' names {what}; a gate must be a "
                f"dimension listed before '{dim.name}' (tiers are asked in order): move "
                f"'{dim.name}' below its gate, or gate on another dimension", "when-order")
            continue
        gdim = codebook.dimensions[index[gate]]
        if gdim.type == "text":
            err((*path, "dimension"), f"'when' cannot gate on text dimension '{gate}' (a free "
                "answer has no codes to compare); gate on a dimension with codes", "when-text")
            continue
        known = gdim.codable_names()
        for k, c in enumerate(dim.when.codes):
            if c not in known:
                close = difflib.get_close_matches(c, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                err((*path, "codes", k), f"'when' names '{c}', which is not a codable code of "
                    f"'{gate}'{hint}; choose from: " + ", ".join(known), "when-unknown")

    probs += _quote_problems(codebook, smap)
    probs += _scale_problems(codebook, smap)
    used_scales = {d.scale for d in codebook.dimensions if d.scale}
    for name, levels in codebook.scales.items():
        if len(levels) < 2:
            err(("scales", name), f"scale '{name}' has {len(levels)} level"
                f"{'' if len(levels) == 1 else 's'}; a scale needs at least 2, listed from low "
                "to high: add levels, or write the codes of one dimension under its 'codes'",
                "scale-levels")
        first: dict[str, int] = {}
        for li, level in enumerate(levels):
            if level.name in first:
                err(("scales", name, li, "name"), f"level '{level.name}' is listed twice in "
                    f"scale '{name}' (also scales.{name}[{first[level.name]}]); rename or "
                    "remove one", "duplicate-level")
            first.setdefault(level.name, li)
        if name not in used_scales:
            warn(("scales", name), f"scale '{name}' is not used by any dimension; use it with "
                 "'scale: " + name + "' in an ordinal dimension, or remove it", "unused-scale")

    # cross-dimension lint
    names: dict[str, list[str]] = defaultdict(list)
    defs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    paths = code_paths(codebook)
    for dim in codebook.dimensions:
        for top in dim.codes:
            for code, _, _ in top.walk():
                names[code.name].append(dim.name)
                if code.definition:
                    defs[" ".join(code.definition.lower().split())].append((dim.name, code.name))
                if code.label:
                    labels[(dim.name, code.label.lower())].append(code.name)
    ordinal = {d.name for d in codebook.dimensions if d.type == "ordinal"}
    for name, dims in names.items():
        distinct = list(dict.fromkeys(dims))
        # the levels of ordinal scales repeat across dimensions by design (none/weak/strong)
        group = {d: "" if d in ordinal else d for d in distinct}
        second = next((d for d in distinct[1:] if group[d] != group[distinct[0]]), None)
        if second is not None:
            warn((*paths[(second, name)], "name"), f"code name '{name}' is used in "
                 f"dimensions {distinct}; rename one if they mean different things, and refer "
                 "to it as 'dimension.code' in sets and exports", "duplicate-name")
    for owners in defs.values():
        pair = next(((a, b) for i, a in enumerate(owners) for b in owners[i + 1:]
                     if not _same_level(a, b, ordinal)), None)
        if pair is not None:
            (d0, c0), (d1, c1) = pair
            warn((*paths[(d1, c1)], "definition"), f"'{d1}.{c1}' has the same definition as "
                 f"'{d0}.{c0}', so a coder cannot tell them apart; say how they differ",
                 "duplicate-definition")
    for (dname, _), codes in labels.items():
        if len(codes) > 1:
            warn((*paths[(dname, codes[1])], "label"), f"codes {codes} of '{dname}' share a "
                 "label; give each its own label", "duplicate-label")

    # sets
    for si, cset in enumerate(codebook.sets):
        for k, ref in enumerate(cset.codes):
            if not _resolve_ref(codebook, ref):
                err(("sets", si, "codes", k), f"set '{cset.name}' names unknown code '{ref}'; "
                    "write 'dimension.code' or the name of an existing code", "set-unknown")

    if not any(p.severity == "error" for p in probs):
        probs += check_examples(codebook, smap)
    # a problem of a shared scale's level is found once per dimension using it: report it once
    return list(dict.fromkeys(probs))


def _same_level(a: tuple[str, str], b: tuple[str, str], ordinal: set[str]) -> bool:
    """Whether two (dimension, code) are the same level of a scale in two ordinal dimensions."""
    return a[0] != b[0] and a[1] == b[1] and a[0] in ordinal and b[0] in ordinal


def _scale_problems(codebook: Codebook, smap: SourceMap) -> list[Problem]:
    """Problems of dimensions with ``scale``.

    The scale must exist, the dimension be ordinal, and its ``levels`` reword levels the
    scale has.
    """
    probs: list[Problem] = []
    names = list(codebook.scales)
    for di, dim in enumerate(codebook.dimensions):
        if dim.scale is None:
            continue
        if dim.type != "ordinal":
            probs.append(smap.problem(
                ("dimensions", di, "scale"), f"'scale' gives the levels of an ordinal "
                f"dimension, but '{dim.name}' is '{dim.type}'; set 'type: ordinal', or write "
                "its codes under 'codes'", "error", "scale-type"))
        if dim.scale not in codebook.scales:
            close = difflib.get_close_matches(dim.scale, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            known = (f"the declared scales are: {', '.join(names)}" if names else
                     "the codebook declares none")
            probs.append(smap.problem(
                ("dimensions", di, "scale"), f"unknown scale '{dim.scale}'{hint}; {known}: "
                "name one of them, or declare it under 'scales:' with its levels from low to "
                "high", "error", "scale-unknown"))
            continue
        levels = [lv.name for lv in codebook.scales[dim.scale]]
        for name in dim.levels:
            if name not in levels:
                close = difflib.get_close_matches(name, levels, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                probs.append(smap.problem(
                    ("dimensions", di, "levels", name), f"scale '{dim.scale}' has no level "
                    f"'{name}'{hint}; reword one of its levels: {', '.join(levels)}", "error",
                    "level-unknown"))
    return probs


def _quote_problems(codebook: Codebook, smap: SourceMap) -> list[Problem]:
    """Per-dimension quotes: the dimensions named, their fields, and ``quote:`` flags."""
    probs: list[Problem] = []

    def err(path: Path, msg: str, rule: str) -> None:
        probs.append(smap.problem(path, msg, "error", rule))

    per = codebook.evidence.per_dimension
    index = {d.name: d for d in codebook.dimensions}
    if isinstance(per, list):
        with_codes = [d.name for d in codebook.dimensions if d.type != "text"]
        for k, name in enumerate(per):
            path: Path = ("evidence", "per_dimension", k)
            if name not in index:
                close = difflib.get_close_matches(name, list(index), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                err(path, f"'per_dimension' names unknown dimension '{name}'{hint}; name "
                    "dimensions with codes: " + ", ".join(with_codes), "per-dimension-unknown")
            elif index[name].type == "text":
                err(path, f"'{name}' is a text dimension: it has no codes for a quote to "
                    "support; remove it from 'per_dimension'", "per-dimension-text")
    own = codebook.quote_dimensions()
    fields = {d + QUOTE_SUFFIX: d for d in own}
    for di, dim in enumerate(codebook.dimensions):
        if dim.name in fields:
            err(("dimensions", di, "name"), f"'{dim.name}' is the name of the quote field of "
                f"'{fields[dim.name]}' (evidence.per_dimension); rename this dimension",
                "quote-clash")
    # quote: false/true on codes, levels and wordings of dimensions without their own quote
    hint = ("'quote' on a code says whether an answer with it needs a quote of its own, so it "
            "only applies to a dimension with its own quote (evidence.per_dimension)")
    for di, dim in enumerate(codebook.dimensions):
        if dim.name in own:
            continue
        if dim.scale is None:
            for code, path in _walk_codes(dim.codes, ("dimensions", di)):
                if code.quote is not None:
                    err((*path, "quote"), f"{hint}; '{dim.name}' has none: remove 'quote', or "
                        f"add '{dim.name}' to evidence.per_dimension", "quote-unused")
        for name, wording in dim.levels.items():
            if wording.quote is not None:
                err(("dimensions", di, "levels", name, "quote"), f"{hint}; '{dim.name}' has "
                    f"none: remove 'quote', or add '{dim.name}' to evidence.per_dimension",
                    "quote-unused")
    for name, levels in codebook.scales.items():
        users = [d.name for d in codebook.dimensions if d.scale == name]
        if users and not set(users) & set(own):
            for li, level in enumerate(levels):
                if level.quote is not None:
                    err(("scales", name, li, "quote"), f"{hint}; no dimension using scale "
                        f"'{name}' has one: remove 'quote', or add "
                        + " or ".join(f"'{u}'" for u in users) + " to evidence.per_dimension",
                        "quote-unused")
    return probs


def _resolve_ref(codebook: Codebook, ref: str) -> bool:
    if "." in ref:
        dname, _, cname = ref.partition(".")
        try:
            return any(c.name == cname for c in codebook.dimension(dname).all_codes())
        except KeyError:
            pass
    return any(c.name == ref for d in codebook.dimensions for c in d.all_codes())


def example_output(codebook: Codebook, output: dict[str, Any]) -> dict[str, Any]:
    """An example's expected output with omitted fields filled (null, [] or relevant=true)."""
    def fill(values: dict[str, Any], record: bool) -> dict[str, Any]:
        out = dict(values)
        if not record and codebook.relevance is not None:
            out.setdefault("relevant", True)
        if not record and codebook.evidence.quote:
            out.setdefault("quote", None)
        if codebook.evidence.rationale:
            out.setdefault("rationale", None)
        for name in codebook.quote_dimensions():
            out.setdefault(name + QUOTE_SUFFIX, None)
        for dim in codebook.dimensions:
            out.setdefault(dim.name, [] if dim.type == "multi" else None)
            if dim.specify_names():
                out.setdefault(dim.name + SPECIFY_SUFFIX, None)
        return out

    if codebook.unit == "segment":
        records = output.get("records")
        if not isinstance(records, list):
            return dict(output)
        return {**output, "records": [fill(r, True) if isinstance(r, dict) else r for r in records]}
    return fill(output, False)


def check_examples(codebook: Codebook, smap: SourceMap) -> list[Problem]:
    """Validate every few-shot example against the compiled response model.

    An example's output is checked like a model's answer, with the example's text as the
    source, so its codes must exist and fit the dimension types, gates must be respected and
    its quotes must be verbatim and long enough.
    """
    from vsdcoder.codebook.answers import AnswerRulesError
    from vsdcoder.codebook.response_model import build_response_model

    model = build_response_model(codebook)
    fields = list(model.model_fields)
    probs = []

    def bad(loc: Path, msg: str) -> None:
        probs.append(smap.problem(loc, f"the expected output breaks the codebook: {msg}",
                                  "error", "bad-example"))

    for i, ex in enumerate(codebook.examples):
        base: Path = ("examples", i, "output")
        if codebook.unit == "segment" and not isinstance(ex.output.get("records"), list):
            bad(base, "a 'unit: segment' example's output is a list of records, written "
                "'output: {records: [{quote: ..., DIMENSION: CODE}, ...]}'; an empty list "
                "('records: []') means the text has none")
            continue
        filled = example_output(codebook, ex.output)
        try:
            model.model_validate(filled, context={"text": ex.text})
        except ValidationError as exc:
            for e in exc.errors():
                loc = (*base, *e["loc"])
                error = (e.get("ctx") or {}).get("error")
                if isinstance(error, AnswerRulesError):
                    for msg in error.errors:
                        field = getattr(msg, "field", None)
                        bad((*loc, field) if field else loc, msg)
                    continue
                msg = e["msg"].removeprefix("Value error, ")
                if e["type"] == "extra_forbidden":
                    close = difflib.get_close_matches(str(e["loc"][-1]), fields, n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    msg = (f"'{e['loc'][-1]}' is not a field of this codebook's answers; "
                           f"{hint}the fields are: " + ", ".join(fields))
                elif e["type"] == "missing":
                    msg = f"'{e['loc'][-1]}' is missing; add it to the expected output"
                bad(loc, msg)
    return probs


def render_example_output(codebook: Codebook, output: dict[str, Any]) -> str:
    """The JSON an example shows the model, fields in the response model's order."""
    from vsdcoder.codebook.response_model import build_response_model

    model = build_response_model(codebook)
    filled = example_output(codebook, output)
    obj = model.model_validate(filled)
    return json.dumps(obj.model_dump(mode="json"), ensure_ascii=False, indent=2)
