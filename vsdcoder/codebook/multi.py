"""Multi-unit requests (``--units-per-call K``): K units coded in one call, checked one by one.

The system message (instructions, codebook, examples) is the codebook's own and is sent once
per call instead of once per unit; the user message lists the K units, each rendered by the
codebook's user template under a short ``unit_id`` (its position, 1..K: the data's own ids are
never sent). The answer is ``{"answers": [{"unit_id": ..., <the single-unit answer>}, ...]}``.
Its JSON schema spells out the full single-unit schema for every item, so providers constrain
each answer as strictly as in a single-unit call, but the call-level model only checks the
shape; every item is then validated on its own against the codebook (with its own text for
quote verification) and a wrong or missing item is re-asked for that unit alone.
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from vsdcoder.errors import UsageError

#: The key that ties an item of a multi-unit answer to its unit.
UNIT_ID = "unit_id"
#: Template of the multi-unit user message.
TEMPLATE = "multi.v1"


class MultiCodebook:
    """What a multi-unit request needs from a compiled codebook.

    Args:
        compiled: The :class:`~vsdcoder.codebook.compile.CompiledCodebook`.
    """

    def __init__(self, compiled: Any):
        self.compiled = compiled
        names = {d.name for d in compiled.codebook.dimensions}
        if UNIT_ID in names or UNIT_ID in (compiled.schema.get("properties") or {}):
            raise UsageError(f"--units-per-call needs the answer field '{UNIT_ID}', but the "
                             f"codebook {compiled.codebook.name} has a dimension of that name; "
                             "rename the dimension or code one unit per call")

    @cached_property
    def template_source(self) -> str:
        """The multi-unit user template (looked up like every template)."""
        from vsdcoder.codebook.compile import read_template, template_dirs

        return read_template(TEMPLATE, "user", template_dirs())[0]

    @cached_property
    def _template(self):
        from vsdcoder.codebook.compile import template_env

        return template_env().from_string(self.template_source)

    @cached_property
    def schema(self) -> dict[str, Any]:
        """JSON schema of a multi-unit answer (every item: the full single-unit schema)."""
        single = copy.deepcopy(self.compiled.schema)
        defs = single.pop("$defs", None)
        single.pop("title", None)
        props = {UNIT_ID: {"type": "string",
                           "description": "The unit_id of the text this answer codes"}}
        props.update(single.get("properties") or {})
        single["properties"] = props
        single["required"] = [UNIT_ID, *[r for r in single.get("required", []) if r != UNIT_ID]]
        schema: dict[str, Any] = {
            "title": "Answers",
            "description": "One answer per text, in the order given",
            "type": "object",
            "properties": {"answers": {"type": "array", "items": single,
                                       "description": "One entry per text, with its unit_id"}},
            "required": ["answers"],
            "additionalProperties": False,
        }
        if defs:
            schema["$defs"] = defs
        return schema

    @cached_property
    def response_model(self) -> type[BaseModel]:
        """The call-level model: checks the shape only (items are checked per unit)."""
        schema = self.schema

        class Answers(BaseModel):
            """One answer per text, in the order given."""

            answers: list[dict[str, Any]]

            @classmethod
            def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
                """The detailed schema (every item spelled out), not the loose one."""
                return copy.deepcopy(schema)

        return Answers

    def user_message(self, units: list[tuple[str, str, str | None]]) -> str:
        """The user message for ``(unit_id, text, context)`` triples."""
        items = [{"id": uid, "message": self.compiled.user_message(text, context)}
                 for uid, text, context in units]
        return str(self._template.render(units=items)).strip() + "\n"

    def messages(self, units: list[tuple[str, str, str | None]]) -> list[dict[str, str]]:
        """Chat messages for one multi-unit request."""
        return [{"role": "system", "content": self.compiled.system},
                {"role": "user", "content": self.user_message(units)}]


def split_answers(answers: list[dict[str, Any]], ids: list[str]
                  ) -> dict[str, dict[str, Any] | str]:
    """Each unit_id's answer (without ``unit_id``), or why there is none."""
    out: dict[str, dict[str, Any] | str] = {}
    seen: dict[str, int] = {}
    for item in answers:
        uid = str(item.get(UNIT_ID, "")).strip()
        seen[uid] = seen.get(uid, 0) + 1
        if uid in ids and uid not in out:
            out[uid] = {k: v for k, v in item.items() if k != UNIT_ID}
    for uid in ids:
        if seen.get(uid, 0) > 1:
            out[uid] = (f"the answer had {seen[uid]} entries with unit_id {uid}; give exactly "
                        "one answer for this text")
        elif uid not in out:
            out[uid] = f"the answer had no entry with unit_id {uid}; code this text"
    return out
