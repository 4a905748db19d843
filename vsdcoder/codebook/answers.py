"""Codebook-aware checks of a model's answer.

These checks run inside the dynamically built response model (see
:mod:`vsdcoder.codebook.response_model`), so their messages are what instructor sends back
to the model on a re-ask. Each message names the dimension, what was wrong and what to do.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from vsdcoder.codebook.model import QUOTE_SUFFIX, SPECIFY_SUFFIX, Codebook, Dimension
from vsdcoder.evidence import count_words, find_quote


class FieldMessage(str):
    """A message (a plain ``str``) that also knows which answer field it is about."""

    field: str | None = None

    def __new__(cls, text: str, field: str | None = None) -> FieldMessage:
        """A message about answer field ``field``."""
        obj = super().__new__(cls, text)
        obj.field = field
        return obj


class AnswerRulesError(ValueError):
    """Several codebook rules an answer breaks; ``errors`` holds one message per rule."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__(join_errors(self.errors))


def join_errors(errors: list[str]) -> str:
    """One message from several: ``(1) ... | (2) ...`` (a single message stays as it is)."""
    if len(errors) == 1:
        return errors[0]
    return " | ".join(f"({i}) {e}" for i, e in enumerate(errors, 1))


def _choices(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def code_error(dim: Dimension, value: Any) -> str | None:
    """Why ``value`` is not a codable code of ``dim`` (None when it is)."""
    names = dim.codable_names()
    if isinstance(value, str) and value in names:
        return None
    if not isinstance(value, str):
        return (f"'{dim.name}' takes a code name as text, got {value!r}; choose one of: "
                f"{_choices(names)}")
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


def _required_message(dim: Dimension, where: str = "") -> str:
    if dim.type == "text":
        return f"{where}'{dim.name}' is required: write a short answer"
    opt = f" (or '{dim.none_name}' if none applies)" if dim.none_name else ""
    names = [n for n in dim.codable_names() if n != dim.none_name]
    return (f"{where}'{dim.name}' is required: choose "
            f"{'at least one' if dim.type == 'multi' else 'one'} of: "
            f"{_choices(names)}{opt}")


def check_dimension_value(dim: Dimension, value: Any, nullable: bool = True) -> Any:
    """Before-validator body: reject unknown codes and wrong shapes with codebook wording.

    Args:
        dim: The dimension the value answers.
        value: The value as the model gave it.
        nullable: Whether null is a valid answer (gated, optional, or behind a relevance
            gate); when it is not, null gets a "required" message instead of a type error.

    Returns:
        The value, with a multi-code answer always a list (null becomes ``[]``) and a
        one-element list unwrapped for single-choice dimensions.
    """
    if dim.type == "multi":
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"'{dim.name}' takes a list of codes, got {value!r}; write "
                             f"[] or a list such as [{_choices(dim.codable_names()[:2])}]")
        problems = [e for v in value if (e := code_error(dim, v))]
        if problems:
            raise ValueError("; ".join(problems))
        return value
    if isinstance(value, list) and not value:
        value = None
    if value is None or (dim.type == "text" and isinstance(value, str) and not value.strip()):
        if not nullable:
            raise ValueError(_required_message(dim))
        return None
    if dim.type == "text":
        if not isinstance(value, str):
            raise ValueError(f"'{dim.name}' takes a short free-text answer, got {value!r}; "
                             "write it as a string")
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
        shown = json.dumps(values.get(gate), ensure_ascii=False)
        if not parent_open:
            shown += " (and not answered itself)"
        why = (f"'{dim.name}' is only answered when '{gate}' is one of "
               f"{_choices(dim.when.codes)}; '{gate}' is {shown}, so set '{dim.name}' to null"
               + (" (or [])" if dim.type == "multi" else ""))
        state[dim.name] = (is_open, why)
    return state


def check_codes(codebook: Codebook, values: dict[str, Any], where: str = "") -> list[str]:
    """Cross-field checks of one set of codes (a document answer or one record)."""
    errors: list[str] = []
    gates = gate_state(codebook, values)

    def add(message: str, field: str) -> None:
        errors.append(FieldMessage(message, field))

    for dim in codebook.dimensions:
        value = values.get(dim.name)
        given = _given(dim, value)
        is_open, why = gates.get(dim.name, (True, ""))
        specify_field = dim.name + SPECIFY_SUFFIX
        if not is_open:
            if given:
                add(where + why, dim.name)
            spec = values.get(specify_field)
            if dim.specify_names() and isinstance(spec, str) and spec.strip():
                add(f"{where}'{specify_field}' must be null too, because '{dim.name}' is not "
                    "answered", specify_field)
            continue
        if dim.required and not given:
            add(_required_message(dim, where), dim.name)
        if dim.type == "multi" and isinstance(value, list):
            seen: set[str] = set()
            for v in value:
                if v in seen:
                    add(f"{where}'{dim.name}' lists '{v}' twice; list each code once", dim.name)
                seen.add(v)
            if dim.none_name and dim.none_name in value and len(set(value)) > 1:
                add(f"{where}'{dim.name}': '{dim.none_name}' means no code applies and cannot "
                    "be combined with other codes; drop it or drop the others", dim.name)
            if dim.max_codes and len(set(value)) > dim.max_codes:
                add(f"{where}'{dim.name}' takes at most {dim.max_codes} codes, got "
                    f"{len(set(value))}; keep the ones that fit best", dim.name)
        spec_names = dim.specify_names()
        if spec_names:
            chosen = _as_set(value) & set(spec_names)
            spec = values.get(specify_field)
            if chosen and not (isinstance(spec, str) and spec.strip()):
                add(f"{where}'{dim.name}' is '{sorted(chosen)[0]}': name it in "
                    f"'{specify_field}' with a short term", specify_field)
            if not chosen and spec not in (None, ""):
                add(f"{where}'{specify_field}' is only filled when '{dim.name}' is one of "
                    f"{_choices(spec_names)}; set it to null", specify_field)
    return errors


def check_quote(codebook: Codebook, quote: Any, text: str | None, where: str = "") -> list[str]:
    """Minimum length and, when the source text is known, verbatim presence of a quote."""
    if quote is None or not str(quote).strip():
        return [FieldMessage(f"{where}'quote' is required: copy a passage from the text word "
                             "for word", "quote")]
    errors: list[str] = []
    minimum = codebook.quote_min_words
    n = count_words(quote)
    if n < minimum:
        errors.append(FieldMessage(
            f"{where}the quote has {n} word{'s' if n != 1 else ''}; it must be at least "
            f"{minimum} words copied verbatim from the text: quote a longer passage", "quote"))
    if text is not None and find_quote(text, quote) is None:
        errors.append(FieldMessage(
            f"{where}the quote is not verbatim: {quote!r} does not occur in the text; copy it "
            "exactly, without changing, joining or shortening words", "quote"))
    return errors


def quote_optional(dim: Dimension) -> list[str]:
    """Codes of ``dim`` whose answer needs no quote of its own: ``none``, and ``quote: false``."""
    return [c.name for c in dim.all_codes() if c.is_codable and (
        c.quote is False or (c.name == dim.none_name and c.quote is not True))]


def check_dimension_quotes(codebook: Codebook, values: dict[str, Any],
                           text: str | None) -> list[str]:
    """Problems of the per-dimension quotes (``<dimension>_quote``) of one answer.

    A quote must be there when the answer needs one, null when the dimension is not answered,
    long enough, and verbatim when ``text`` is given.
    """
    errors: list[str] = []
    gates = gate_state(codebook, values)
    for name in codebook.quote_dimensions():
        dim = codebook.dimension(name)
        field = name + QUOTE_SUFFIX
        quote = values.get(field)
        given = isinstance(quote, str) and bool(quote.strip())
        value = values.get(name)
        if not gates.get(name, (True, ""))[0] or not _given(dim, value):
            if given:
                errors.append(FieldMessage(f"'{field}' must be null, because '{name}' is not "
                                           "answered", field))
            continue
        if not given:
            needs = sorted(_as_set(value) - set(quote_optional(dim)))
            if needs:
                shown = needs[0] if len(needs) == 1 else needs
                errors.append(FieldMessage(
                    f"'{field}' is required: '{name}' is {json.dumps(shown)}, so copy the words "
                    "of the text that show it, word for word", field))
            continue
        minimum = codebook.evidence.quote_min_words
        n = count_words(quote)
        if n < minimum:
            errors.append(FieldMessage(
                f"'{field}' has {n} word{'s' if n != 1 else ''}; it must be at least {minimum} "
                "words copied verbatim from the text: quote a longer passage", field))
        if text is not None and find_quote(text, quote) is None:
            errors.append(FieldMessage(
                f"'{field}' is not verbatim: {quote!r} does not occur in the text; copy it "
                "exactly, without changing, joining or shortening words", field))
    return errors
