"""The codebook language (v1) as pydantic models.

A codebook is researcher-authored YAML. Every model here forbids unknown keys so that a typo
(``defintion:``) is an error with a line number instead of a silently ignored field. Checks
that need the whole codebook (unique names, ``when`` references, examples) live in
:mod:`vsdcoder.codebook.checks`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

#: Field names the compiler uses in response models; dimensions may not take them.
RESERVED_NAMES = frozenset({"relevant", "records", "quote", "rationale", "id", "text"})
#: Suffix of the free-text field that goes with "Other (term)" codes.
SPECIFY_SUFFIX = "_specify"
#: Suffix of a dimension's own quote field (``evidence.per_dimension``).
QUOTE_SUFFIX = "_quote"

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE_NAME = re.compile(r"^[^\s].*[^\s]$|^[^\s]$")
_COLOR = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_HEX = r"[0-9A-Fa-f]"
_GUID = re.compile(
    rf"^(\{{)?{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?(1)\}})$"
)
#: Attribute names of pydantic models; a dimension with such a name would break its answer model.
_MODEL_ATTRIBUTES = frozenset(
    n for n in (*dir(BaseModel), *dir(type(BaseModel))) if not n.startswith("_")
)


def _check_code_name(v: str) -> str:
    if not _CODE_NAME.match(v) or "\n" in v or ";" in v:
        raise ValueError(
            "a code name must be one line, without ';' (it separates codes in CSV output); "
            "rename it, e.g. 'work or school', and put the long wording in 'label'"
        )
    return v


def _check_color(v: str | None) -> str | None:
    if v is not None and not _COLOR.match(v):
        raise ValueError("a colour is written '#RRGGBB' or '#RGB', e.g. '#1f77b4'")
    return v


def _check_guid(v: str | None) -> str | None:
    if v is not None and not _GUID.match(v):
        raise ValueError("a guid is a UUID such as '7b2a3c1e-4f5d-4e6a-9b8c-0d1e2f3a4b5c' "
                         "(REFI-QDA needs this form); fix it or remove it to get one generated")
    return v


class ShapeError(ValueError):
    """Problems found by a model validator, each tied to one key of the model.

    The loader reports each item at the position of its key (``dimensions[0].max_codes``)
    rather than at the start of the model. A key may also be a path below the model, as a
    tuple (``("dimensions", 2, "scale")``).
    """

    def __init__(self, items: list[tuple[str | int | tuple[str | int, ...] | None, str]]):
        self.items = items
        super().__init__("; ".join(msg for _, msg in items))


def _did_you_mean(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Strict(BaseModel):
    """Base for codebook models: unknown keys are errors, strings are stripped.

    Keys added to the language after its first release are left out of ``model_dump`` while
    they have their default value (``_NEW_KEYS``), so that the ``codebook_hash`` of a codebook
    that does not use them stays what it was.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)

    #: key -> its default; left out of dumps while it has that value.
    _NEW_KEYS: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler,
              info: SerializationInfo) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict):
            for key, default in self._NEW_KEYS.items():
                if key in data and data[key] == default:
                    del data[key]
        return data  # type: ignore[no-any-return]


class CodeExamples(Strict):
    """Short texts that show where a code applies (positive) and where it does not (negative)."""

    positive: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)


class Code(Strict):
    """One code of a dimension, possibly a category holding sub-codes.

    Leaves are codable. A category (a code with ``codes``) is codable only when marked
    ``codable: true``.
    """

    name: str = Field(min_length=1, max_length=80)
    label: str | None = None
    definition: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    examples: CodeExamples = Field(default_factory=CodeExamples)
    codable: bool | None = None
    specify: bool = False
    color: str | None = None
    guid: str | None = None
    quote: bool | None = None
    codes: list[Code] = Field(default_factory=list)

    _NEW_KEYS: ClassVar[dict[str, Any]] = {"quote": None}

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        return _check_code_name(v)

    @field_validator("color")
    @classmethod
    def _color_shape(cls, v: str | None) -> str | None:
        return _check_color(v)

    @field_validator("guid")
    @classmethod
    def _guid_shape(cls, v: str | None) -> str | None:
        return _check_guid(v)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @property
    def is_codable(self) -> bool:
        """Whether the code can be assigned (leaves always; categories only when marked)."""
        if self.codes:
            return bool(self.codable)
        return self.codable is not False

    def walk(self, depth: int = 0, parent: str | None = None):
        """Yield ``(code, depth, parent_name)`` for this code and every code under it."""
        yield self, depth, parent
        for child in self.codes:
            yield from child.walk(depth + 1, self.name)


class NoneOption(Strict):
    """The explicit no-code option of a dimension."""

    name: str = "none"
    label: str | None = None
    definition: str = "None of the codes applies."


class OtherOption(Strict):
    """A free-text "Other (term)" option of a dimension."""

    name: str = "other"
    label: str | None = None
    definition: str = "A code that is not in the list applies; name it in a short term."


class ScaleLevel(Strict):
    """One level of a shared ordinal scale (``scales:``), written once for every dimension.

    ``quote: false`` says that an answer at this level needs no quote of its own (with
    ``evidence.per_dimension``), e.g. the level ``none`` of an intensity scale.
    """

    name: str = Field(min_length=1, max_length=80)
    label: str | None = None
    definition: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    examples: CodeExamples = Field(default_factory=CodeExamples)
    color: str | None = None
    quote: bool | None = None

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        return _check_code_name(v)

    @field_validator("color")
    @classmethod
    def _color_shape(cls, v: str | None) -> str | None:
        return _check_color(v)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class LevelWording(Strict):
    """A dimension's own wording of a level of its scale (``levels: {weak: ...}``).

    A text is the level's definition; a mapping replaces the keys it gives (and only those
    are dumped: a key left out keeps the scale's wording).
    """

    label: str | None = None
    definition: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    examples: CodeExamples = Field(default_factory=CodeExamples)
    color: str | None = None
    quote: bool | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler,
              info: SerializationInfo) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k in self.model_fields_set}
        return data  # type: ignore[no-any-return]

    @field_validator("color")
    @classmethod
    def _color_shape(cls, v: str | None) -> str | None:
        return _check_color(v)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


def _levels_from_text(v: Any) -> Any:
    if isinstance(v, list):
        return [{"name": x} if isinstance(x, str) else x for x in v]
    return v


#: A shared scale: its levels, low to high (a level may be written as its name alone). That it
#: has two levels or more, each named once, is checked with the whole codebook.
Scale = list[ScaleLevel]


class When(Strict):
    """Condition of a gated (tiered) dimension.

    The dimension is asked only when ``dimension`` (listed earlier) has one of ``codes``.
    """

    dimension: str
    codes: list[str] = Field(min_length=1)

    @field_validator("codes", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Dimension(Strict):
    """One question asked of every unit (or record), answered with codes or text."""

    name: str
    label: str | None = None
    question: str | None = None
    description: str | None = None
    type: Literal["single", "multi", "ordinal", "text"] = "single"
    required: bool = True
    none: NoneOption | None = None
    other: OtherOption | None = None
    when: When | None = None
    max_codes: int | None = Field(default=None, ge=1)
    scale: str | None = None
    levels: dict[str, LevelWording] = Field(default_factory=dict)
    codes: list[Code] = Field(default_factory=list)

    _NEW_KEYS: ClassVar[dict[str, Any]] = {"scale": None, "levels": {}}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler,
              info: SerializationInfo) -> dict[str, Any]:
        data = Strict._dump(self, handler, info)
        if self.scale is not None and isinstance(data, dict):
            # the codes come from the scale (and 'levels'); a dump reads back as written
            data.pop("codes", None)
        return data

    @field_validator("levels", mode="before")
    @classmethod
    def _text_is_definition(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: {"definition": x} if isinstance(x, str) else x for k, x in v.items()}
        return v

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(
                "a dimension name must be lower_snake_case (letters, digits, '_'), "
                "starting with a letter, e.g. 'support_type'"
            )
        if v in RESERVED_NAMES or v in _MODEL_ATTRIBUTES:
            raise ValueError(f"'{v}' is reserved (it names a field or method of the answer); "
                             f"choose another dimension name, e.g. '{v}_code'")
        return v

    @field_validator("none", "other", mode="before")
    @classmethod
    def _flag_or_option(cls, v: Any) -> Any:
        if v is True:
            return {}
        if v is False:
            return None
        return v

    @model_validator(mode="after")
    def _shape(self) -> Dimension:
        problems: list[tuple[str, str]] = []
        if self.type == "text":
            for key in ("codes", "none", "other"):
                if getattr(self, key):
                    problems.append((key, f"a 'text' dimension is answered in free text and takes "
                                          f"no '{key}'; remove '{key}', or use type 'single' or "
                                          "'multi'"))
        elif self.scale is not None:
            if self.codes:
                problems.append(("scale", f"a dimension takes its codes from 'scale' or from "
                                          f"'codes', not both; remove 'codes' to use the levels "
                                          f"of scale '{self.scale}' (reword a level for this "
                                          "dimension under 'levels'), or remove 'scale'"))
        elif not self.codes:
            problems.append(("codes", f"a '{self.type}' dimension needs a list of 'codes'; add "
                                      "them, or use 'type: text' for a free-text answer"))
        if self.levels and self.scale is None:
            problems.append(("levels", "'levels' rewords the levels of a shared scale and needs "
                                       "'scale: NAME'; add 'scale', or put the wording in the "
                                       "codes' 'definition'"))
        if self.max_codes is not None and self.type != "multi":
            problems.append(("max_codes", f"'max_codes' only applies to type 'multi', not "
                                          f"'{self.type}'; remove it or set 'type: multi'"))
        if self.type == "ordinal" and self.other:
            problems.append(("other", "an 'ordinal' dimension cannot have 'other' (a free-text "
                                      "code has no rank on the scale); remove it or use type "
                                      "'single'"))
        if self.type == "ordinal" and any(c.codes for c in self.codes):
            problems.append(("codes", "an 'ordinal' dimension's codes cannot be nested (they form "
                                      "one ordered scale); flatten them or use type 'single'"))
        if problems:
            raise ShapeError(problems)
        return self

    def all_codes(self) -> list[Code]:
        """Every code of the dimension in order, depth first, including none/other options."""
        out = [c for top in self.codes for c, _, _ in top.walk()]
        return out + self.option_codes()

    def option_codes(self) -> list[Code]:
        """The ``none`` and ``other`` options expressed as codes."""
        extra = []
        if self.other:
            extra.append(
                Code(name=self.other.name, label=self.other.label,
                     definition=self.other.definition, specify=True)
            )
        if self.none:
            extra.append(
                Code(name=self.none.name, label=self.none.label, definition=self.none.definition)
            )
        return extra

    def codable_names(self) -> list[str]:
        """Names the model may answer with, in codebook order."""
        return [c.name for c in self.all_codes() if c.is_codable]

    def specify_names(self) -> list[str]:
        """Codable codes that need a free-text term ("Other (term)")."""
        return [c.name for c in self.all_codes() if c.is_codable and c.specify]

    @property
    def none_name(self) -> str | None:
        """Name of the explicit no-code option, if any."""
        return self.none.name if self.none else None


class RelevanceRule(Strict):
    """One inclusion or exclusion criterion of the relevance gate."""

    name: str | None = None
    description: str
    examples: list[str] = Field(default_factory=list)


class Relevance(Strict):
    """The relevance gate: a unit is coded only if it meets it."""

    description: str | None = None
    include: list[RelevanceRule] = Field(default_factory=list)
    exclude: list[RelevanceRule] = Field(default_factory=list)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _strings_are_rules(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"description": x} if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> Relevance:
        if not self.include and not self.exclude:
            raise ValueError("a relevance gate needs 'include' or 'exclude' criteria; add them, "
                             "or remove 'relevance' to code every text")
        return self


class SegmentRules(Strict):
    """Rules for ``unit: segment`` codebooks (0..n records per text, each with a quote)."""

    quote_min_words: int = Field(default=1, ge=1)
    max_records: int | None = Field(default=None, ge=1)
    record_label: str = "record"
    rules: list[str] = Field(default_factory=list)


class Evidence(Strict):
    """What a ``unit: document`` answer carries as evidence.

    ``per_dimension``: ``true`` gives every dimension with codes its own quote field
    (``<dimension>_quote``), a list gives the dimensions named; independent of ``quote``, the
    one quote of the whole answer.
    """

    quote: bool = True
    quote_min_words: int = Field(default=1, ge=1)
    rationale: bool = False
    per_dimension: bool | list[str] = False

    _NEW_KEYS: ClassVar[dict[str, Any]] = {"per_dimension": False}

    @field_validator("per_dimension", mode="before")
    @classmethod
    def _flag_or_names(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, bool) or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            return v
        raise ValueError("'per_dimension' is true (a quote for every dimension with codes), "
                         "false, or a list of dimension names, e.g. [support, advice]")


class Example(Strict):
    """A codebook-level few-shot example: an input text and its expected output."""

    text: str = Field(min_length=1)
    context: str | None = None
    output: dict[str, Any]
    note: str | None = None


class CodeSet(Strict):
    """A named group of codes across dimensions (REFI-QDA ``Set``)."""

    name: str
    description: str | None = None
    guid: str | None = None
    codes: list[str] = Field(default_factory=list)

    @field_validator("guid")
    @classmethod
    def _guid_shape(cls, v: str | None) -> str | None:
        return _check_guid(v)


class Codebook(Strict):
    """A whole codebook: metadata, unit, relevance gate, dimensions and examples."""

    vsdcoder: int = Field(default=1, description="codebook language version")
    name: str
    version: str = "0.1.0"
    title: str | None = None
    description: str | None = None
    authors: list[str] = Field(default_factory=list)
    citation: str | None = None
    license: str | None = None
    template: str = "deductive.v1"
    instructions: str | None = None
    unit: Literal["document", "segment"] = "document"
    segment: SegmentRules | None = None
    evidence: Evidence = Field(default_factory=Evidence)
    relevance: Relevance | None = None
    scales: dict[str, Scale] = Field(default_factory=dict)
    dimensions: list[Dimension] = Field(min_length=1)
    examples: list[Example] = Field(default_factory=list)
    sets: list[CodeSet] = Field(default_factory=list)

    _NEW_KEYS: ClassVar[dict[str, Any]] = {"scales": {}}

    @field_validator("scales", mode="before")
    @classmethod
    def _level_names(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: _levels_from_text(x) for k, x in v.items()}
        return v

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(
                "a codebook name is a lower-case slug (letters, digits, '-', '_', '.'), "
                "e.g. 'sad-stressors'"
            )
        return v

    @field_validator("vsdcoder")
    @classmethod
    def _language(cls, v: int) -> int:
        if v != 1:
            raise ValueError("this vsdcoder reads codebook language 1; set 'vsdcoder: 1'")
        return v

    @field_validator("authors", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("template")
    @classmethod
    def _template_name(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]+\.v[0-9]+$", v):
            raise ValueError("a template is named 'NAME.vN', e.g. 'deductive.v1'")
        return v

    @model_validator(mode="after")
    def _unit_rules(self) -> Codebook:
        problems: list[tuple[Any, str]] = []
        if self.unit == "segment" and self.segment is None:
            self.segment = SegmentRules()
        if self.unit == "document" and self.segment is not None:
            problems.append(("segment", "'segment' rules only apply with 'unit: segment'; set "
                                        "'unit: segment' or remove 'segment'"))
        if self.unit == "segment" and self.evidence.per_dimension not in (False, []):
            problems.append((("evidence", "per_dimension"),
                             "per-dimension quotes are for 'unit: document' answers; a segment "
                             "record has its own quote already: remove 'per_dimension', or "
                             "code one record per passage"))
        self._resolve_scales()
        if problems:
            raise ShapeError(problems)
        return self

    def _resolve_scales(self) -> None:
        """Give each dimension with ``scale`` the scale's levels as its codes.

        A dimension naming an unknown scale keeps no codes, and a wording of a level the scale
        does not have is left out: both are errors of the whole-codebook checks, which report
        them with every other problem.
        """
        for dim in self.dimensions:
            if dim.scale is None or dim.codes or dim.scale not in self.scales:
                continue
            codes = []
            for lv in self.scales[dim.scale]:
                fields = lv.model_dump(exclude={"name"})
                own = dim.levels.get(lv.name)
                if own is not None:
                    fields.update({k: getattr(own, k) for k in own.model_fields_set})
                codes.append(Code(name=lv.name, **fields))
            dim.codes = codes

    def dimension(self, name: str) -> Dimension:
        """The dimension called ``name`` (KeyError if there is none)."""
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    def quote_dimensions(self) -> list[str]:
        """Dimensions with a quote of their own (``evidence.per_dimension``), in codebook order.

        Only document codebooks have them; names of unknown or text dimensions are left out
        (they are errors of the codebook checks).
        """
        per = self.evidence.per_dimension
        if self.unit != "document" or per is False:
            return []
        wanted = None if per is True else set(per)
        return [d.name for d in self.dimensions
                if d.type != "text" and (wanted is None or d.name in wanted)]

    @property
    def quote_min_words(self) -> int:
        """Minimum words of a verbatim quote for this codebook's unit."""
        if self.unit == "segment":
            assert self.segment is not None
            return self.segment.quote_min_words
        return self.evidence.quote_min_words
