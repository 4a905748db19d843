"""Compile a codebook into what a model is asked: messages, a response model and its schema.

Messages come from versioned Jinja templates (``prompts/NAME.vN.system.jinja`` and
``NAME.vN.user.jinja``) rendered in a sandbox. The system message holds everything that is the
same for every unit (instructions, codebook, output format, examples), so it is byte-identical
across units and providers' prompt caching applies; the user message holds the unit's text.
Compilation is deterministic: the same codebook gives byte-identical messages and schema.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vsdcoder.codebook.answers import quote_optional
from vsdcoder.codebook.checks import render_example_output
from vsdcoder.codebook.model import QUOTE_SUFFIX, SPECIFY_SUFFIX, Codebook, Dimension
from vsdcoder.codebook.response_model import build_response_model
from vsdcoder.errors import UsageError

#: What stands in for the unit's text in ``vsdcoder codebook show --json``.
TEXT_PLACEHOLDER = "{text}"


def sha256_json(obj: Any) -> str:
    """``sha256:`` + hex digest of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


def template_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Where templates are looked up: ``extra`` first, then every registered template folder."""
    from vsdcoder.plugins import get_registry

    return list(extra or []) + list(get_registry().template_dirs)


def read_template(name: str, part: str, search: list[Path]) -> tuple[str, Path]:
    """Source and path of template ``name`` (e.g. ``deductive.v1``), part 'system' or 'user'."""
    fname = f"{name}.{part}.jinja"
    for d in search:
        p = d / fname
        if p.is_file():
            return p.read_text(encoding="utf-8"), p
    raise UsageError(
        f"template '{name}' not found (looked for {fname} in: "
        + ", ".join(str(d) for d in search) + "); use a bundled template such as 'deductive.v1' "
        "or put the file next to the codebook"
    )


def template_env():
    """The sandboxed Jinja environment every prompt template is rendered in."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False,
                               autoescape=False)
    # lipsum() makes random text: a template must render the same every time
    env.globals.pop("lipsum", None)
    return env


def _code_view(code, depth: int) -> dict[str, Any]:
    return {
        "name": code.name, "label": code.label, "definition": code.definition,
        "include": code.include, "exclude": code.exclude,
        "positive": code.examples.positive, "negative": code.examples.negative,
        "codable": code.is_codable, "category": bool(code.codes), "specify": code.specify,
        "depth": depth,
    }


def _dimension_view(codebook: Codebook, dim: Dimension) -> dict[str, Any]:
    codes = [_code_view(c, d) for top in dim.codes for c, d, _ in top.walk()]
    options = [_code_view(c, 0) for c in dim.option_codes()]
    own_quote = dim.name in codebook.quote_dimensions()
    return {
        "name": dim.name, "label": dim.label, "question": dim.question,
        "description": dim.description, "type": dim.type, "required": dim.required,
        "codes": codes, "options": options, "codable": dim.codable_names(),
        "none": dim.none_name,
        "specify_field": dim.name + SPECIFY_SUFFIX if dim.specify_names() else None,
        "specify_codes": dim.specify_names(),
        "when": {"dimension": dim.when.dimension, "codes": dim.when.codes} if dim.when else None,
        "max_codes": dim.max_codes,
        "scale": dim.scale,
        "quote_field": dim.name + QUOTE_SUFFIX if own_quote else None,
        "quote_optional": quote_optional(dim) if own_quote else [],
    }


def template_context(codebook: Codebook) -> dict[str, Any]:
    """Variables the system template sees (documented in docs/codebook.md)."""
    cb = codebook
    return {
        "codebook": {"name": cb.name, "version": cb.version, "title": cb.title,
                     "description": cb.description},
        "instructions": cb.instructions,
        "unit": cb.unit,
        "segment": cb.segment.model_dump() if cb.segment else None,
        "evidence": {"quote": cb.evidence.quote, "quote_min_words": cb.evidence.quote_min_words,
                     "rationale": cb.evidence.rationale,
                     "per_dimension": cb.quote_dimensions()},
        "relevance": cb.relevance.model_dump() if cb.relevance else None,
        "dimensions": [_dimension_view(cb, d) for d in cb.dimensions],
        "examples": [
            {"text": ex.text, "context": ex.context, "note": ex.note,
             "output": render_example_output(cb, ex.output)}
            for ex in cb.examples
        ],
        "quote_min_words": cb.quote_min_words,
    }


@dataclass
class CompiledCodebook:
    """A codebook ready to code with: messages, response model, schema and their hashes."""

    codebook: Codebook
    template: str
    system: str
    user_template_source: str
    response_model: type[BaseModel]
    schema: dict[str, Any]
    template_paths: list[str] = field(default_factory=list)

    @cached_property
    def _user_template(self):
        return template_env().from_string(self.user_template_source)

    def user_message(self, text: str, context: str | None = None) -> str:
        """The user message for one unit."""
        return self._user_template.render(text=text, context=context or None)

    def messages(self, text: str = TEXT_PLACEHOLDER,
                 context: str | None = None) -> list[dict[str, str]]:
        """Chat messages for one unit (the placeholder text when none is given)."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user_message(text, context)},
        ]

    @cached_property
    def codebook_hash(self) -> str:
        """Hash of the codebook's content (formatting and comments of the YAML do not count)."""
        return sha256_json(self.codebook.model_dump(mode="json"))

    @cached_property
    def prompt_hash(self) -> str:
        """Hash of the compiled messages with the text placeholder."""
        return sha256_json(self.messages())

    @cached_property
    def schema_hash(self) -> str:
        """Hash of the response JSON schema."""
        return sha256_json(self.schema)

    @cached_property
    def hash(self) -> str:
        """One hash for the whole compiled prompt: messages and schema together."""
        return sha256_json({"messages": self.messages(), "schema": self.schema})

    def validate(self, data: Any, text: str | None = None) -> BaseModel:
        """Check a model's answer (a dict or JSON string) against the codebook.

        Args:
            data: The answer as parsed JSON or a JSON string.
            text: The unit's source text; when given, quotes must occur in it verbatim.

        Raises:
            pydantic.ValidationError: with codebook-aware messages (see
                :func:`vsdcoder.codebook.answer_errors`).
        """
        ctx = {"text": text}
        if isinstance(data, (str, bytes)):
            return self.response_model.model_validate_json(data, context=ctx)
        return self.response_model.model_validate(data, context=ctx)

    def to_json(self) -> dict[str, Any]:
        """``{"name", "version", "hash", "messages", "schema"}`` as ``codebook show --json``."""
        return {
            "name": self.codebook.name, "version": self.codebook.version, "hash": self.hash,
            "codebook_hash": self.codebook_hash, "prompt_hash": self.prompt_hash,
            "schema_hash": self.schema_hash, "template": self.template,
            "messages": self.messages(), "schema": self.schema,
        }


def compile_codebook(codebook: Codebook, *, search: list[Path] | None = None) -> CompiledCodebook:
    """Compile ``codebook``; templates are looked up in ``search`` then the registered folders.

    Raises:
        UsageError: the named template does not exist, or fails to render (a syntax error,
            an unknown variable, or an attribute access the sandbox refuses).
    """
    dirs = template_dirs(search)
    sys_src, sys_path = read_template(codebook.template, "system", dirs)
    user_src, user_path = read_template(codebook.template, "user", dirs)
    env = template_env()
    system = _render(env, sys_src, sys_path, template_context(codebook)).strip() + "\n"
    _render(env, user_src, user_path, {"text": TEXT_PLACEHOLDER, "context": None})
    model = build_response_model(codebook)
    schema = model.model_json_schema()
    return CompiledCodebook(codebook, codebook.template, system, user_src, model, schema,
                            [str(sys_path), str(user_path)])


def _render(env: Any, source: str, path: Path, variables: dict[str, Any]) -> str:
    """Render one template in the sandbox; any failure is a :class:`UsageError`."""
    import jinja2
    from jinja2.sandbox import SecurityError

    try:
        return str(env.from_string(source).render(**variables))
    except SecurityError as exc:
        raise UsageError(f"{path}: the template was stopped by the sandbox ({exc}); templates "
                         "may only use the variables documented in docs/codebook.md, not "
                         "Python internals") from None
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: template syntax error: {exc.message}; fix the "
                         "template") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(f"{path}: the template uses an unknown variable ({exc.message}); use "
                         "the variables documented in docs/codebook.md") from None
    except Exception as exc:  # any other error raised while rendering
        raise UsageError(f"{path}: the template failed to render: {type(exc).__name__}: {exc}; "
                         "fix the template") from None


def answer_errors(exc: Exception) -> list[str]:
    """Readable messages from a failed :meth:`CompiledCodebook.validate`, one per problem.

    Each message is prefixed with where it is (``records.0: ...``) unless it is about the
    answer as a whole, and says what to change; these are the messages a re-ask sends back.
    """
    from pydantic import ValidationError

    from vsdcoder.codebook.answers import AnswerRulesError

    if not isinstance(exc, ValidationError):
        return [str(exc)]
    out = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"])
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, AnswerRulesError):
            out += [f"{loc}: {m}" if loc else m for m in error.errors]
            continue
        kind = e["type"]
        msg = e["msg"].removeprefix("Value error, ")
        if kind == "json_invalid":
            msg = ("the answer is not valid JSON (" + msg + "); answer with one JSON object and "
                   "nothing else")
        elif kind == "extra_forbidden":
            msg = f"'{e['loc'][-1]}' is not a field of the answer; remove it"
        elif kind == "missing":
            msg = f"'{e['loc'][-1]}' is missing; every field of the schema must be present"
        elif kind in ("model_type", "model_attributes_type") and not loc:
            msg = "the answer must be one JSON object with the fields of the schema"
        elif kind in ("bool_type", "bool_parsing"):
            msg = f"'{e['loc'][-1]}' must be true or false"
        elif kind in ("string_type", "list_type", "dict_type", "model_type", "int_type"):
            msg += "; follow the response schema"
        out.append(f"{loc}: {msg}" if loc else msg)
    return out
