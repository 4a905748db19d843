"""Privacy: find identifying details in text and replace them with consistent pseudonyms.

The pieces, each usable on its own:

- :mod:`vsdcoder.privacy.redactors`: :class:`Span`, the :class:`Redactor` protocol, the
  dependency-free :class:`PatternRedactor` and the optional :class:`PresidioRedactor`
  (``pip install 'vsdcoder[ner]'``).
- :mod:`vsdcoder.privacy.pseudonyms`: :class:`Pseudonymizer` turns a text into a
  :class:`Redacted` one (``<PERSON_1>`` placeholders, offsets back to the original) with a
  :class:`PseudonymMap` that keeps numbering consistent across a run and is saved owner-only.
- :mod:`vsdcoder.privacy.quality`: recall and precision of a redactor on a labelled set.
- :mod:`vsdcoder.privacy.engine`: the glue with ``vsdcoder code`` (``--redact``,
  ``--redacted-output``, ``--local-only``, the ``[privacy]`` section of a project file).

Redactors are plugins (hook ``register_redactors``); :func:`get_redactor` builds one or several
by the names used on the command line (``--redact patterns,presidio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vsdcoder.privacy.pseudonyms import Pseudonymizer, PseudonymMap, Redacted, RedactedSpan
from vsdcoder.privacy.redactors import (
    MultiRedactor,
    PatternRedactor,
    PresidioRedactor,
    Redactor,
    Span,
    resolve_overlaps,
)

__all__ = [
    "MultiRedactor",
    "PatternRedactor",
    "PresidioRedactor",
    "PseudonymMap",
    "Pseudonymizer",
    "Redacted",
    "RedactedSpan",
    "Redactor",
    "Span",
    "get_redactor",
    "parse_redact_spec",
    "resolve_overlaps",
]


def parse_redact_spec(spec: str | Sequence[str]) -> list[str]:
    """Redactor names from ``"patterns,presidio"`` (or a list), in order, without repeats."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [p.strip() for p in parts if p and p.strip()]
    return list(dict.fromkeys(names))


def get_redactor(spec: str | Sequence[str], **options: Any) -> Redactor:
    """The redactor(s) registered under the names in ``spec``, combined into one.

    Args:
        spec: ``"patterns"``, ``"patterns,presidio"`` or a list of names.
        **options: Passed to every factory (for example ``types=[...]``); leave empty unless
            all the named redactors accept them.

    Raises:
        UsageError: a name no plugin registered, an empty spec, or a missing optional
            dependency (the message says what to install).
    """
    from vsdcoder.errors import UsageError
    from vsdcoder.plugins import get_registry

    names = parse_redact_spec(spec)
    if not names:
        raise UsageError("no redactor named; use for example --redact patterns")
    available = get_registry().redactors
    redactors = []
    for name in names:
        if name not in available:
            known = ", ".join(sorted(available)) or "none"
            raise UsageError(f"unknown redactor '{name}' (available: {known})")
        redactors.append(available[name].obj(**options))
    return redactors[0] if len(redactors) == 1 else MultiRedactor(redactors)
