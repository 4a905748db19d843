"""Whole-codebook checks: errors that make a codebook unusable and lint warnings.

Errors (always): duplicate dimension or code names within a dimension, ``when`` naming
unknown or later dimensions or unknown codes, leaves marked ``codable: false``, sets naming
unknown codes, and few-shot examples whose expected output breaks the codebook.

Warnings (errors with ``--strict``), each with a rule id: ``missing-definition``,
``duplicate-definition``, ``duplicate-name`` (same code name in two dimensions),
``duplicate-label``, ``missing-question``, ``several-specify``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from vsdcoder.codebook.model import SPECIFY_SUFFIX, Codebook
from vsdcoder.codebook.yamlsrc import Path, Problem, SourceMap


def code_paths(codebook: Codebook) -> dict[tuple[str, str], Path]:
    """Map ``(dimension, code)`` to the YAML path of each written code."""
    out: dict[tuple[str, str], Path] = {}
    for di, dim in enumerate(codebook.dimensions):
        def walk(codes: list, base: Path) -> None:
            for ci, code in enumerate(codes):
                path = base + ("codes", ci)
                out.setdefault((dim.name, code.name), path)
                walk(code.codes, path)
        walk(dim.codes, ("dimensions", di))
    return out


def check_codebook(codebook: Codebook, smap: SourceMap) -> list[Problem]:
    """Every error and warning of a codebook that parsed into the model."""
    probs: list[Problem] = []
    err = lambda path, msg, rule="": probs.append(smap.problem(path, msg, "error", rule))  # noqa: E731
    warn = lambda path, msg, rule: probs.append(smap.problem(path, msg, "warning", rule))  # noqa: E731

    seen_dims: dict[str, int] = {}
    for di, dim in enumerate(codebook.dimensions):
        if dim.name in seen_dims:
            err(("dimensions", di, "name"),
                f"duplicate dimension name '{dim.name}' (also dimensions[{seen_dims[dim.name]}]); "
                "rename one", "duplicate-dimension")
        seen_dims.setdefault(dim.name, di)
        if not (dim.question or dim.description):
            warn(("dimensions", di), f"dimension '{dim.name}' has no 'question' or 'description'; "
                 "say what the coder should decide", "missing-question")
        # code names within the dimension, options included
        where: dict[str, Path] = {}
        def walk(codes: list, base: Path, _di: int = di) -> None:
            for ci, code in enumerate(codes):
                path = base + ("codes", ci)
                if code.name in where:
                    err(path + ("name",), f"duplicate code name '{code.name}' in dimension "
                        f"'{codebook.dimensions[_di].name}' (first at {_fmt(where[code.name])}); "
                        "code names must be unique within a dimension", "duplicate-code")
                where.setdefault(code.name, path)
                if not code.codes and code.codable is False:
                    err(path + ("codable",), f"'{code.name}' has no sub-codes, so "
                        "'codable: false' would make it impossible to assign; remove the flag "
                        "or add codes under it", "uncodable-leaf")
                if code.codes and code.specify and not code.codable:
                    err(path + ("specify",), f"'{code.name}' is a category; only a codable code "
                        "can take 'specify: true'", "specify-category")
                if code.is_codable and not code.definition and not code.codes:
                    warn(path, f"code '{code.name}' has no definition; the model will guess "
                         "from its name alone", "missing-definition")
                walk(code.codes, path)
        walk(dim.codes, ("dimensions", di))
        for opt_key, opt in (("none", dim.none), ("other", dim.other)):
            if opt is not None and opt.name in where:
                err(("dimensions", di, opt_key, "name"), f"the '{opt_key}' option is named "
                    f"'{opt.name}', which is already a code of '{dim.name}'; give the option "
                    f"another name ('{opt_key}: {{name: ...}}') or remove the code",
                    "duplicate-code")
        spec = dim.specify_names()
        if dim.type == "multi" and len(spec) > 1:
            warn(("dimensions", di), f"'{dim.name}' is multi-label with several 'Other (term)' "
                 f"codes {spec}; they share one '{dim.name}{SPECIFY_SUFFIX}' field",
                 "several-specify")
        if dim.type != "text" and not dim.codable_names():
            err(("dimensions", di, "codes"), f"dimension '{dim.name}' has no codable code; "
                "mark categories 'codable: true' or add leaf codes", "no-codable")

    # when: references and order
    index = {d.name: i for i, d in enumerate(codebook.dimensions)}
    for di, dim in enumerate(codebook.dimensions):
        if dim.when is None:
            continue
        gate = dim.when.dimension
        path = ("dimensions", di, "when")
        if gate not in index:
            err(path + ("dimension",), f"'when' names unknown dimension '{gate}'; known: "
                + ", ".join(index), "when-unknown")
            continue
        if index[gate] >= di:
            err(path + ("dimension",), f"'when' must name a dimension listed before "
                f"'{dim.name}' (tiers are asked in order); move '{gate}' above it", "when-order")
            continue
        gdim = codebook.dimensions[index[gate]]
        if gdim.type == "text":
            err(path + ("dimension",), f"'when' cannot gate on text dimension '{gate}'; gate "
                "on a dimension with codes", "when-text")
            continue
        known = set(gdim.codable_names())
        for k, c in enumerate(dim.when.codes):
            if c not in known:
                err(path + ("codes", k), f"'when' names '{c}', which is not a codable code of "
                    f"'{gate}'; choose from: " + ", ".join(sorted(known)), "when-unknown")

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
    for name, dims in names.items():
        distinct = sorted(set(dims))
        if len(distinct) > 1:
            warn(paths[(distinct[1], name)] + ("name",), f"code name '{name}' is used in "
                 f"dimensions {distinct}; refer to it as 'dimension.code' in sets and exports",
                 "duplicate-name")
    for _, owners in defs.items():
        if len(owners) > 1:
            (d0, c0), (d1, c1) = owners[0], owners[1]
            warn(paths[(d1, c1)] + ("definition",), f"'{d1}.{c1}' has the same definition as "
                 f"'{d0}.{c0}'; a coder cannot tell them apart", "duplicate-definition")
    for (dname, _), codes in labels.items():
        if len(codes) > 1:
            warn(paths[(dname, codes[1])] + ("label",), f"codes {codes} of '{dname}' share a "
                 "label", "duplicate-label")

    # sets
    for si, cset in enumerate(codebook.sets):
        for k, ref in enumerate(cset.codes):
            if not _resolve_ref(codebook, ref):
                err(("sets", si, "codes", k), f"set '{cset.name}' names unknown code '{ref}'; "
                    "write 'dimension.code' or a code name", "set-unknown")

    if not any(p.severity == "error" for p in probs):
        probs += check_examples(codebook, smap)
    return probs


def _fmt(path: Path) -> str:
    from vsdcoder.codebook.yamlsrc import format_path

    return format_path(path)


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
    """Validate every few-shot example against the compiled response model."""
    from vsdcoder.codebook.response_model import build_response_model

    model = build_response_model(codebook)
    probs = []
    for i, ex in enumerate(codebook.examples):
        filled = example_output(codebook, ex.output)
        try:
            model.model_validate(filled, context={"text": ex.text})
        except ValidationError as exc:
            for e in exc.errors():
                loc = ("examples", i, "output") + tuple(x for x in e["loc"])
                msg = e["msg"].removeprefix("Value error, ")
                if e["type"] == "extra_forbidden":
                    msg = f"'{e['loc'][-1]}' is not a field of this codebook's answers; remove it"
                probs.append(smap.problem(loc, f"the expected output breaks the codebook: {msg}",
                                          "error", "bad-example"))
    return probs


def render_example_output(codebook: Codebook, output: dict[str, Any]) -> str:
    """The JSON an example shows the model, fields in the response model's order."""
    from vsdcoder.codebook.response_model import build_response_model

    model = build_response_model(codebook)
    filled = example_output(codebook, output)
    obj = model.model_validate(filled)
    return json.dumps(obj.model_dump(mode="json"), ensure_ascii=False, indent=2)
