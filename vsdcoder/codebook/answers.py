"""Codebook-aware checks of a model's answer.

These checks run inside the dynamically built response model (see
:mod:`vsdcoder.codebook.response_model`), so their messages are what instructor sends back
to the model on a re-ask. Each message names the dimension, what was wrong and what to do.
"""

from __future__ import annotations

import difflib
from typing import Any

from vsdcoder.evidence import count_words, find_quote
from vsdcoder.codebook.model import SPECIFY_SUFFIX, Codebook, Dimension


def _choices(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def code_error(dim: Dimension, value: Any) -> str | None:
    """Why ``value`` is not a codable code of ``dim`` (None when it is)."""
    names = dim.codable_names()
    if isinstance(value, str) and value in names:
        return None
    if not isinstance(value, str):
        return f"'{dim.name}' takes a code name as text, got {value!r}; choose one of: {_choices(names)}"
    for code in dim.all_codes():
        if code.name == value and not code.is_codable:
            leaves = [c.name for c, _, _ in code.walk() if c is not code and c.is_codable]
            return (f"'{value}' is a category of '{dim.name}', not a code; "
                    f"choose one of its codes: {_choices(leaves)}")
    lowered = {n.lower(): n for n in names}
    hint = ""
    if value.lower() in lowered:
        hint = f" (did you mean '{lowered[value.lower()]}'? names are case-sensitive)"
    else:
        close = difflib.get_close_matches(value, names, n=1)
        if close:
            hint = f" (did you mean '{close[0]}'?)"
    return f"unknown code '{value}' for '{dim.name}'{hint}; choose one of: {_choices(names)}"


def check_dimension_value(dim: Dimension, value: Any) -> Any:
    """Before-validator body: reject unknown codes and wrong shapes with codebook wording."""
    if value is None or dim.type == "text":
        return value
    if dim.type == "multi":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"'{dim.name}' takes a list of codes, got {value!r}")
        problems = [e for v in value if (e := code_error(dim, v))]
        if problems:
            raise ValueError("; ".join(problems))
        return value
    if isinstance(value, list):
        if len(value) == 1:
            value = value[0]
        else:
            raise ValueError(
                f"'{dim.name}' is single-choice and takes exactly one code, got {len(value)}: "
                f"{value!r}; choose the one that fits best"
            )
    problem = code_error(dim, value)
    if problem:
        raise ValueError(problem)
    return value


def _given(dim: Dimension, value: Any) -> bool:
    if value is None:
        return False
    if dim.type == "multi":
        return len(value) > 0
    if dim.type == "text":
        return bool(str(value).strip())
    return True


def _as_set(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, list):
        return set(value)
    return {value}


def gate_state(codebook: Codebook, values: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    """For each gated dimension: is its gate open, and a sentence saying why not."""
    state: dict[str, tuple[bool, str]] = {}
    for dim in codebook.dimensions:
        if dim.when is None:
            continue
        gate = dim.when.dimension
        parent_open = state.get(gate, (True, ""))[0]
        got = _as_set(values.get(gate))
        is_open = parent_open and bool(got & set(dim.when.codes))
        shown = values.get(gate)
        why = (f"'{dim.name}' is only answered when '{gate}' is one of {_choices(dim.when.codes)}; "
               f"'{gate}' is {shown!r}, so '{dim.name}' must be null")
        state[dim.name] = (is_open, why)
    return state


def check_codes(codebook: Codebook, values: dict[str, Any], where: str = "") -> list[str]:
    """Cross-field checks of one set of codes (a document answer or one record)."""
    errors: list[str] = []
    gates = gate_state(codebook, values)
    for dim in codebook.dimensions:
        value = values.get(dim.name)
        given = _given(dim, value)
        is_open, why = gates.get(dim.name, (True, ""))
        specify_field = dim.name + SPECIFY_SUFFIX
        if not is_open:
            if given:
                errors.append(where + why)
            continue
        if dim.required and not given:
            if dim.type == "text":
                errors.append(f"{where}'{dim.name}' is required: write a short answer")
            else:
                opt = f" (or '{dim.none_name}' if none applies)" if dim.none_name else ""
                errors.append(
                    f"{where}'{dim.name}' is required: choose "
                    f"{'at least one' if dim.type == 'multi' else 'one'} of: "
                    f"{_choices(dim.codable_names())}{opt}"
                )
        if dim.type == "multi" and isinstance(value, list):
            seen: set[str] = set()
            for v in value:
                if v in seen:
                    errors.append(f"{where}'{dim.name}' lists '{v}' twice; list each code once")
                seen.add(v)
            if dim.none_name and dim.none_name in value and len(set(value)) > 1:
                errors.append(
                    f"{where}'{dim.name}': '{dim.none_name}' means no code applies and cannot be "
                    "combined with other codes; drop it or drop the others"
                )
            if dim.max_codes and len(set(value)) > dim.max_codes:
                errors.append(
                    f"{where}'{dim.name}' takes at most {dim.max_codes} codes, got {len(set(value))}; "
                    "keep the ones that fit best"
                )
        spec_names = dim.specify_names()
        if spec_names:
            chosen = _as_set(value) & set(spec_names)
            spec = values.get(specify_field)
            if chosen and not (isinstance(spec, str) and spec.strip()):
                errors.append(
                    f"{where}'{dim.name}' is '{sorted(chosen)[0]}': name it in '{specify_field}' "
                    "with a short term"
                )
            if not chosen and spec not in (None, ""):
                errors.append(
                    f"{where}'{specify_field}' is only filled when '{dim.name}' is one of "
                    f"{_choices(spec_names)}; set it to null"
                )
    return errors


def check_quote(codebook: Codebook, quote: Any, text: str | None, where: str = "") -> list[str]:
    """Minimum length and, when the source text is known, verbatim presence of a quote."""
    if quote is None or not str(quote).strip():
        return [f"{where}'quote' is required: copy a passage from the text word for word"]
    errors = []
    minimum = codebook.quote_min_words
    n = count_words(quote)
    if n < minimum:
        errors.append(
            f"{where}the quote has {n} word{'s' if n != 1 else ''}; it must be at least {minimum} "
            "words copied verbatim from the text"
        )
    if text is not None and find_quote(text, quote) is None:
        errors.append(
            f"{where}the quote is not verbatim: {quote!r} does not occur in the text; copy it "
            "exactly, without changing, joining or shortening words"
        )
    return errors
