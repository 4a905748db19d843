"""Shared data types of the reliability package (the contract between its modules).

- :class:`MetricResult` is what every coefficient returns.
- :class:`Ratings` holds every coder's codes (humans, gold, LLM runs, baselines) per dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A code value: a code name (str) for single/ordinal dimensions, a frozenset of code names
#: for multi-label dimensions, free text for text dimensions, or None when missing.
Value = Any


@dataclass(frozen=True)
class MetricResult:
    """The value of an agreement coefficient, with its confidence interval where computed.

    ``value`` is None when the coefficient is undefined for the data (a single category, a
    single unit, nothing pairable ...); ``reason`` then says why. Never a silent NaN.
    """

    value: float | None
    ci: tuple[float, float] | None = None
    reason: str | None = None
    n_units: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        if self.value is None:
            raise ValueError(f"undefined: {self.reason}")
        return float(self.value)


@dataclass
class Ratings:
    """Codes per dimension, coder and unit.

    Attributes:
        units: Unit ids, in order.
        coders: Coder name -> kind: "human", "gold" (majority/adjudicated), "llm", "baseline".
        values: dimension -> coder -> unit id -> value (see :data:`Value`); a unit a coder did
            not code is absent or None.
        texts: unit id -> text (when known).
        evidence: coder -> unit id -> {"quote": ..., "rationale": ..., "records": [...]}.
        problems: Human-readable reports (ids on one side only, unknown codes, ...).
    """

    units: list[str] = field(default_factory=list)
    coders: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, dict[str, Value]]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def matrix(self, dimension: str, coders: list[str] | None = None,
               units: list[str] | None = None) -> list[list[Value]]:
        """Coders x units matrix of one dimension, None where missing."""
        coders = coders if coders is not None else list(self.coders)
        units = units if units is not None else self.units
        dim = self.values.get(dimension, {})
        return [[dim.get(c, {}).get(u) for u in units] for c in coders]

    def merge(self, other: Ratings) -> Ratings:
        """A new Ratings with ``other``'s coders added (units: union, in order of appearance)."""
        clash = set(self.coders) & set(other.coders)
        if clash:
            raise ValueError(f"coder names used twice: {sorted(clash)}")
        out = Ratings(units=list(dict.fromkeys(self.units + other.units)),
                      coders={**self.coders, **other.coders},
                      texts={**other.texts, **self.texts},
                      evidence={**self.evidence, **other.evidence},
                      problems=self.problems + other.problems)
        for d in set(self.values) | set(other.values):
            out.values[d] = {**self.values.get(d, {}), **other.values.get(d, {})}
        return out
