"""The codebook language (v1) as pydantic models.

A codebook is researcher-authored YAML. Every model here forbids unknown keys so that a typo
(``defintion:``) is an error with a line number instead of a silently ignored field. Checks
that need the whole codebook (unique names, ``when`` references, examples) live in
:mod:`vsdcoder.codebook.checks`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Field names the compiler uses in response models; dimensions may not take them.
RESERVED_NAMES = frozenset({"relevant", "records", "quote", "rationale", "id", "text"})
#: Suffix of the free-text field that goes with "Other (term)" codes.
SPECIFY_SUFFIX = "_specify"

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


def _check_guid(v: str | None) -> str | None:
    if v is not None and not _GUID.match(v):
        raise ValueError("a guid is a UUID such as '7b2a3c1e-4f5d-4e6a-9b8c-0d1e2f3a4b5c' "
                         "(REFI-QDA needs this form); fix it or remove it to get one generated")
    return v


class ShapeError(ValueError):
    """Problems found by a model validator, each tied to one key of the model.

    The loader reports each item at the position of its key (``dimensions[0].max_codes``)
    rather than at the start of the model.
    """

    def __init__(self, items: list[tuple[str | None, str]]):
        self.items = items
        super().__init__("; ".join(msg for _, msg in items))


class Strict(BaseModel):
    """Base for codebook models: unknown keys are errors, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


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
    codes: list[Code] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        if not _CODE_NAME.match(v) or "\n" in v or ";" in v:
            raise ValueError(
                "a code name must be one line, without ';' (it separates codes in CSV output); "
                "rename it, e.g. 'work or school', and put the long wording in 'label'"
            )
        return v

    @field_validator("color")
    @classmethod
    def _color_shape(cls, v: str | None) -> str | None:
        if v is not None and not _COLOR.match(v):
            raise ValueError("a colour is written '#RRGGBB' or '#RGB', e.g. '#1f77b4'")
        return v

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
    codes: list[Code] = Field(default_factory=list)

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
        elif not self.codes:
            problems.append(("codes", f"a '{self.type}' dimension needs a list of 'codes'; add "
                                      "them, or use 'type: text' for a free-text answer"))
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
    """What a ``unit: document`` answer carries as evidence."""

    quote: bool = True
    quote_min_words: int = Field(default=1, ge=1)
    rationale: bool = False


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
    dimensions: list[Dimension] = Field(min_length=1)
    examples: list[Example] = Field(default_factory=list)
    sets: list[CodeSet] = Field(default_factory=list)

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
        if self.unit == "segment" and self.segment is None:
            self.segment = SegmentRules()
        if self.unit == "document" and self.segment is not None:
            raise ShapeError([("segment", "'segment' rules only apply with 'unit: segment'; set "
                                          "'unit: segment' or remove 'segment'")])
        return self

    def dimension(self, name: str) -> Dimension:
        """The dimension called ``name`` (KeyError if there is none)."""
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def quote_min_words(self) -> int:
        """Minimum words of a verbatim quote for this codebook's unit."""
        if self.unit == "segment":
            assert self.segment is not None
            return self.segment.quote_min_words
        return self.evidence.quote_min_words
