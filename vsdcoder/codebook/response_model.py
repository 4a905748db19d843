"""Build the pydantic response model a codebook asks the model to fill.

- ``single``/``ordinal`` -> ``Literal[code names]`` (ordinal keeps the codebook order),
  nullable when not required, gated or behind a relevance gate;
- ``multi`` -> ``list[Literal[...]]`` with unique items (nullable like the others; null is
  read as ``[]``);
- ``text`` -> ``str``;
- a dimension with "Other (term)" codes gets a ``<name>_specify`` text field;
- ``unit: document`` -> one object (``relevant`` first when there is a relevance gate, then
  ``quote``/``rationale`` as configured, then the dimensions, each dimension with a quote of
  its own (``evidence.per_dimension``) preceded by ``<name>_quote``);
- ``unit: segment`` -> ``{"records": [Record, ...]}``, each record with a verbatim ``quote``.

Codebook rules that a JSON schema cannot express (gates, required answers, ``none`` alone,
``max_codes``, specify text, quote length and verbatim presence) are checked by validators on
the model, so a failed answer yields codebook-aware messages for the re-ask. The source text
is passed as validation context: ``Model.model_validate(data, context={"text": text})``.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    model_validator,
)

from vsdcoder.codebook.answers import (
    AnswerRulesError,
    FieldMessage,
    check_codes,
    check_dimension_quotes,
    check_dimension_value,
    check_quote,
    quote_optional,
)
from vsdcoder.codebook.model import QUOTE_SUFFIX, SPECIFY_SUFFIX, Codebook, Dimension


class AnswerBase(BaseModel):
    """Base of generated answer models: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _class_name(name: str, suffix: str) -> str:
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    base = "".join(p[:1].upper() + p[1:] for p in parts) or "Codebook"
    if base[0].isdigit():
        base = "C" + base
    return base + suffix


def _describe(dim: Dimension) -> str:
    text = dim.question or dim.description or dim.label or dim.name
    if dim.type == "ordinal":
        text += " (ordered scale: " + " < ".join(dim.codable_names()) + ")"
    if dim.when:
        text += (f" Only answered when {dim.when.dimension} is one of "
                 f"{', '.join(dim.when.codes)}; otherwise "
                 + ("an empty list." if dim.type == "multi" else "null."))
    return text


def _may_be_empty(codebook: Codebook, dim: Dimension) -> bool:
    return (not dim.required) or dim.when is not None or (
        codebook.unit == "document" and codebook.relevance is not None
    )


def _dimension_fields(codebook: Codebook, quotes: list[str] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for dim in codebook.dimensions:
        if quotes and dim.name in quotes:
            fields[dim.name + QUOTE_SUFFIX] = (Optional[str], Field(  # noqa: UP045
                description=_dimension_quote_desc(codebook, dim)))
        nullable = _may_be_empty(codebook, dim)
        check = BeforeValidator(lambda v, _d=dim, _n=nullable: check_dimension_value(_d, v, _n))
        desc = _describe(dim)
        if dim.type == "text":
            typ: Any = str
        else:
            typ = Literal[tuple(dim.codable_names())]  # type: ignore[misc]
        if dim.type == "multi":
            # uniqueness and max_codes are checked with the other codebook rules (so that a
            # re-ask lists every problem at once); the schema states them for the model
            extra: dict[str, Any] = {"uniqueItems": True}
            if dim.max_codes:
                extra["maxItems"] = dim.max_codes
            typ = list[typ]
        if nullable:
            fields[dim.name] = (Annotated[Optional[typ], check],  # noqa: UP045
                                Field(description=desc, json_schema_extra=_array_extra(dim)))
        else:
            fields[dim.name] = (Annotated[typ, check],
                                Field(description=desc, json_schema_extra=_array_extra(dim)))
        spec = dim.specify_names()
        if spec:
            fields[dim.name + SPECIFY_SUFFIX] = (
                Optional[str],  # noqa: UP045
                Field(description=f"A short term naming the code when {dim.name} is "
                                  f"{' or '.join(spec)}; otherwise null."),
            )
    return fields


def _array_extra(dim: Dimension) -> Any:
    """Schema keywords for a multi-code dimension, placed on its array (nullable or not)."""
    if dim.type != "multi":
        return None
    # maxItems is always stated: a list cannot hold more distinct codes than exist, and a bound
    # lets grammar-constrained decoders (llama.cpp) stop a small model repeating a code forever
    extra: dict[str, Any] = {"uniqueItems": True,
                             "maxItems": dim.max_codes or len(dim.codable_names())}

    def add(schema: dict[str, Any]) -> None:
        for option in schema.get("anyOf", [schema]):
            if option.get("type") == "array":
                option.update(extra)

    return add


def build_response_model(codebook: Codebook) -> type[BaseModel]:
    """Create the answer model for ``codebook`` (see module docs for the shape)."""
    if codebook.unit == "segment":
        return _segment_model(codebook)
    return _document_model(codebook)


def _document_model(codebook: Codebook) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    gated = codebook.relevance is not None
    if gated:
        fields["relevant"] = (bool, Field(
            description="true if the text meets the inclusion criteria and none of the "
                        "exclusion criteria; if false, every code is null or empty"))
    ev = codebook.evidence
    if ev.quote:
        fields["quote"] = (Optional[str], Field(  # noqa: UP045
            description=_quote_desc(ev.quote_min_words) + " that supports the codes"
                        + ("; null only when the text is not relevant" if gated else "")))
    if ev.rationale:
        fields["rationale"] = (Optional[str], Field(  # noqa: UP045
            description="One sentence explaining the codes"))
    quotes = codebook.quote_dimensions()
    fields.update(_dimension_fields(codebook, quotes))

    def _validate(self: BaseModel, info: ValidationInfo) -> BaseModel:
        values = self.__dict__
        text = answer_context(info).get("text")
        if gated and not values["relevant"]:
            given = [d.name for d in codebook.dimensions
                     if values.get(d.name) not in (None, [], "")]
            given += [q + QUOTE_SUFFIX for q in quotes
                      if values.get(q + QUOTE_SUFFIX) not in (None, "")]
            if given:
                raise AnswerRulesError([FieldMessage(
                    "the text is marked not relevant, so it gets no codes: set "
                    + ", ".join(f"'{g}'" for g in given) + " to null (or empty), or set "
                    "'relevant' to true if it meets the inclusion criteria", "relevant")])
            return self
        errors = check_codes(codebook, values)
        if ev.quote and not _lenient(info):
            errors += check_quote(codebook, values.get("quote"), text)
        if quotes and not _lenient(info):
            errors += check_dimension_quotes(codebook, values, text)
        if errors:
            raise AnswerRulesError(errors)
        return self

    return create_model(  # type: ignore[call-overload,no-any-return]
        _class_name(codebook.name, "Answer"),
        __base__=AnswerBase,
        __doc__=codebook.title or codebook.name,
        __validators__={"codebook_rules": model_validator(mode="after")(_validate)},
        **fields,
    )


def _segment_model(codebook: Codebook) -> type[BaseModel]:
    assert codebook.segment is not None
    rules = codebook.segment
    fields: dict[str, Any] = {
        "quote": (str, Field(description=_quote_desc(rules.quote_min_words)
                             + "; it alone must justify every field of this record")),
    }
    if codebook.evidence.rationale:
        fields["rationale"] = (
            Optional[str],  # noqa: UP045
            Field(description="One sentence explaining the codes"),
        )
    fields.update(_dimension_fields(codebook))

    def _validate_record(self: BaseModel, info: ValidationInfo) -> BaseModel:
        values = self.__dict__
        text = answer_context(info).get("text")
        errors = check_codes(codebook, values)
        if not _lenient(info):
            errors += check_quote(codebook, values.get("quote"), text)
        if errors:
            raise AnswerRulesError(errors)
        return self

    record = create_model(  # type: ignore[call-overload]
        _class_name(codebook.name, "Record"),
        __base__=AnswerBase,
        __doc__=f"One {rules.record_label}: a verbatim quote and its codes.",
        __validators__={"codebook_rules": model_validator(mode="after")(_validate_record)},
        **fields,
    )
    extra = {"maxItems": rules.max_records} if rules.max_records else None

    def _validate_answer(self: BaseModel) -> BaseModel:
        n = len(self.__dict__["records"])
        if rules.max_records and n > rules.max_records:
            raise AnswerRulesError([
                f"give at most {rules.max_records} {rules.record_label}s, got {n}; keep the "
                "ones the text supports best"])
        return self

    return create_model(  # type: ignore[call-overload,no-any-return]
        _class_name(codebook.name, "Answer"),
        __base__=AnswerBase,
        __doc__=codebook.title or codebook.name,
        __validators__={"codebook_rules": model_validator(mode="after")(_validate_answer)},
        records=(list[record], Field(  # type: ignore[valid-type]
            description=f"One entry per distinct {rules.record_label}; an empty list when the "
                        "text is not relevant", json_schema_extra=extra)),
    )


def _quote_desc(n: int) -> str:
    return f"A passage of at least {n} word{'s' if n != 1 else ''} copied verbatim from the text"


def _dimension_quote_desc(codebook: Codebook, dim: Dimension) -> str:
    optional = quote_optional(dim)
    return (_quote_desc(codebook.evidence.quote_min_words) + f" that supports the answer to "
            f"{dim.name}; null when {dim.name} is null"
            + (" or " + " or ".join(optional) if optional else ""))


#: Validation context used when pydantic's own ``context`` is not given. The engine sets it
#: per unit instead of passing ``context=`` to instructor, because instructor renders every
#: message as a Jinja template (and dedents it) whenever a context is passed.
ANSWER_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("vsdcoder_answer_context",
                                                               default=None)


def answer_context(info: ValidationInfo | None) -> dict[str, Any]:
    """The validation context: pydantic's ``context=`` if given, else :data:`ANSWER_CONTEXT`."""
    if info is not None and info.context:
        return info.context
    return ANSWER_CONTEXT.get() or {}


def _lenient(info: ValidationInfo | None) -> bool:
    """Whether quote checks are skipped (validation context ``{"quotes": "lenient"}``).

    The coder uses this to keep the codes of an answer whose quote still failed after the
    re-asks; it then records the quote as not verified.
    """
    ctx = answer_context(info)
    return ctx.get("quotes") == "lenient"
