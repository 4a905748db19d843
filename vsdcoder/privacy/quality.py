"""How well a redactor finds identifiers: recall and precision per type on a labelled set.

A labelled set is JSON Lines, one text per line (see ``evals/privacy/README.md``)::

    {"id": "priv-0001", "text": "...", "labels": [{"type": "PERSON", "start": 3, "end": 8,
     "text": "Sarah", "identifying": true, "case": "common_word_name"}],
     "decoys": [{"kind": "dose", "start": 20, "end": 24, "text": "20mg"}]}

Labels with ``"identifying": false`` (chatbot names, national organisations, countries,
subreddits, crisis lines) are *neutral*: they are neither found nor missed, and a prediction on
one is neither right nor wrong; how many of them get masked is reported apart, as a cost to the
coding (a study of chatbots cannot code "<ORGANIZATION_1> helped me"). Decoys are numbers and
words that look like identifiers and are not (doses, years, times, "Hope this helps"); any
prediction touching one is a false positive and is counted per kind.

Matching rule, on the characters of a span that are not whitespace, with ``min_overlap``
(default 0.5):

- **found** (typed recall): predicted spans of a compatible type together cover at least
  ``min_overlap`` of the gold span. Types are compatible when equal, and LOCATION, ADDRESS and
  POSTCODE are compatible with each other (an address found as a place is still found).
- **exact**: a predicted span of a compatible type has exactly the gold span's offsets.
- **masked** (type-agnostic recall, what matters for privacy): predicted spans of any type cover
  at least ``min_overlap`` of it; **fully masked**: they cover all of it.
- a prediction is **correct** (typed precision) when gold spans of a compatible type cover at
  least ``min_overlap`` of it; it **hits an identifier** (masking precision) when identifying
  gold spans of any type do; otherwise, unless neutral spans cover ``min_overlap`` of it (then
  it is left out of precision), it is a false positive.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.privacy.redactors import Redactor, Span

#: Types that count as the same when matching (an address found as LOCATION is found).
COMPATIBLE_GROUPS: tuple[frozenset[str], ...] = (frozenset({"LOCATION", "ADDRESS", "POSTCODE"}),)


def compatible(pred_type: str, gold_type: str) -> bool:
    """Whether a prediction of ``pred_type`` counts for a gold span of ``gold_type``."""
    if pred_type == gold_type:
        return True
    return any(pred_type in g and gold_type in g for g in COMPATIBLE_GROUPS)


def load_dataset(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines labelled set, checked (each label's text matches its span).

    Raises:
        UsageError: the file cannot be read, or a line or label is malformed.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the labelled set: {exc}") from exc
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{n}: not JSON: {exc}") from exc
        _check_record(rec, f"{path}:{n}")
        records.append(rec)
    if not records:
        raise UsageError(f"{path}: no records")
    return records


def _check_record(rec: Any, where: str) -> None:
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise UsageError(f"{where}: a record needs a 'text' string")
    text = rec["text"]
    for key in ("labels", "decoys"):
        for lab in rec.get(key, []):
            try:
                start, end = int(lab["start"]), int(lab["end"])
            except (KeyError, TypeError, ValueError) as exc:
                raise UsageError(f"{where}: a {key[:-1]} needs integer 'start' and 'end'") from exc
            if not 0 <= start < end <= len(text):
                raise UsageError(f"{where}: {key[:-1]} ({start}, {end}) is outside the text")
            if "text" in lab and text[start:end] != lab["text"]:
                raise UsageError(f"{where}: {key[:-1]} text {lab['text']!r} does not match "
                                 f"the span {text[start:end]!r}")
            if key == "labels" and not isinstance(lab.get("type"), str):
                raise UsageError(f"{where}: a label needs a 'type'")


@dataclass
class TypeScore:
    """Counts for one entity type (gold side: support..fully_masked; predicted side: the rest)."""

    type: str
    support: int = 0
    found: int = 0
    exact: int = 0
    masked: int = 0
    fully_masked: int = 0
    predicted: int = 0
    correct: int = 0
    hits_identifier: int = 0
    neutral: int = 0

    @staticmethod
    def _ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    @property
    def recall(self) -> float | None:
        """Found / support (typed, overlap rule)."""
        return self._ratio(self.found, self.support)

    @property
    def exact_recall(self) -> float | None:
        """Exactly matched / support."""
        return self._ratio(self.exact, self.support)

    @property
    def masked_recall(self) -> float | None:
        """Masked by a span of any type / support."""
        return self._ratio(self.masked, self.support)

    @property
    def precision(self) -> float | None:
        """Correct / scored predictions (predictions on neutral spans are not scored)."""
        return self._ratio(self.correct, self.predicted - self.neutral)

    @property
    def f1(self) -> float | None:
        """Harmonic mean of recall and precision (None unless both are defined)."""
        r, p = self.recall, self.precision
        if r is None or p is None:
            return None
        return 2 * r * p / (r + p) if r + p else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Counts and rates."""
        d = asdict(self)
        d.update(recall=self.recall, exact_recall=self.exact_recall,
                 masked_recall=self.masked_recall, precision=self.precision, f1=self.f1)
        return d


@dataclass
class QualityReport:
    """What :func:`evaluate_redactor` measured."""

    redactor: str
    texts: int
    min_overlap: float
    per_type: dict[str, TypeScore]
    overall: TypeScore
    any_identifier: dict[str, Any]
    neutral: dict[str, dict[str, int]]
    decoys: dict[str, dict[str, int]]
    by_case: dict[str, dict[str, int]]
    misses: list[dict[str, Any]] = field(default_factory=list)
    partial: list[dict[str, Any]] = field(default_factory=list)
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every count and rate, and the examples."""
        return {
            "redactor": self.redactor, "texts": self.texts, "min_overlap": self.min_overlap,
            "seconds": round(self.seconds, 3),
            "overall": self.overall.to_dict(),
            "per_type": {t: s.to_dict() for t, s in self.per_type.items()},
            "any_identifier": self.any_identifier, "neutral": self.neutral,
            "decoys": self.decoys, "by_case": self.by_case,
            "misses": self.misses, "partial": self.partial,
            "false_positives": self.false_positives,
        }

    def to_markdown(self) -> str:
        """The per-type table and the privacy summary as Markdown."""
        def pct(x: float | None) -> str:
            return "–" if x is None else f"{100 * x:.1f}"

        rows = ["| type | support | recall | exact | masked | predicted | precision | F1 |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for t, s in [*self.per_type.items(), ("**all (micro)**", self.overall)]:
            rows.append(f"| {t} | {s.support} | {pct(s.recall)} | {pct(s.exact_recall)} | "
                        f"{pct(s.masked_recall)} | {s.predicted - s.neutral} | "
                        f"{pct(s.precision)} | {pct(s.f1)} |")
        a = self.any_identifier
        n_sup = sum(v["support"] for v in self.neutral.values())
        n_mask = sum(v["masked"] for v in self.neutral.values())
        d_sup = sum(v["support"] for v in self.decoys.values())
        d_mask = sum(v["masked"] for v in self.decoys.values())
        rows += ["",
                 f"Any identifier masked: {a['masked']}/{a['support']} "
                 f"({pct(a['masked_recall'])}%), fully masked {a['fully_masked']} "
                 f"({pct(a['fully_masked_recall'])}%); texts with every identifier masked: "
                 f"{a['texts_clean']}/{a['texts_with_identifiers']}. Masking precision "
                 f"{pct(a['masking_precision'])}%.",
                 f"Neutral spans masked (cost to coding): {n_mask}/{n_sup}; "
                 f"decoys masked (false alarms): {d_mask}/{d_sup}."]
        return "\n".join(rows)


def _chars(text: str, start: int, end: int) -> list[int]:
    idx = [i for i in range(start, end) if not text[i].isspace()]
    return idx or list(range(start, end))


def _coverage(chars: list[int], covered: set[int]) -> float:
    return sum(1 for i in chars if i in covered) / len(chars) if chars else 0.0


def _covered(spans: Iterable[Any]) -> set[int]:
    out: set[int] = set()
    for s in spans:
        out.update(range(s.start if hasattr(s, "start") else s["start"],
                         s.end if hasattr(s, "end") else s["end"]))
    return out


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    a, b = max(0, start - width), min(len(text), end + width)
    return (("…" if a else "") + text[a:start] + "[[" + text[start:end] + "]]" + text[end:b]
            + ("…" if b < len(text) else "")).replace("\n", " ")


def evaluate_redactor(redactor: Redactor, dataset: str | Path | Iterable[dict[str, Any]], *,
                      min_overlap: float = 0.5, max_examples: int = 200) -> QualityReport:
    """Run ``redactor`` over a labelled set and score it (see the module docs for the rules).

    Args:
        redactor: Anything with ``name`` and ``find(text)``.
        dataset: A JSON Lines path or the records themselves.
        min_overlap: Share of a span's non-space characters that must be covered.
        max_examples: How many misses, partial masks and false positives to keep as examples.
    """
    if not 0 < min_overlap <= 1:
        raise UsageError("min_overlap must be in (0, 1]")
    records = load_dataset(dataset) if isinstance(dataset, str | Path) else list(dataset)
    for i, rec in enumerate(records):
        _check_record(rec, f"record {rec.get('id', i) if isinstance(rec, dict) else i}")
    per_type: dict[str, TypeScore] = {}
    neutral: dict[str, Counter[str]] = defaultdict(Counter)
    decoys: dict[str, Counter[str]] = defaultdict(Counter)
    by_case: dict[str, Counter[str]] = defaultdict(Counter)
    any_id = Counter()
    misses: list[dict[str, Any]] = []
    partial: list[dict[str, Any]] = []
    fps: list[dict[str, Any]] = []

    def score(t: str) -> TypeScore:
        return per_type.setdefault(t, TypeScore(t))

    t0 = time.perf_counter()
    for i, rec in enumerate(records):
        text = rec["text"]
        rid = rec.get("id", str(i))
        preds: list[Span] = redactor.find(text)
        all_cov = _covered(preds)
        labels = rec.get("labels", [])
        gold = [lab for lab in labels if lab.get("identifying", True)]
        neutral_labels = [lab for lab in labels if not lab.get("identifying", True)]
        clean = True
        for g in gold:
            chars = _chars(text, g["start"], g["end"])
            s = score(g["type"])
            s.support += 1
            typed_cov = _coverage(chars, _covered(p for p in preds
                                                  if compatible(p.type, g["type"])))
            any_cov = _coverage(chars, all_cov)
            found = typed_cov >= min_overlap
            exact = any(compatible(p.type, g["type"]) and (p.start, p.end) == (g["start"],
                                                                                g["end"])
                        for p in preds)
            masked = any_cov >= min_overlap
            full = any_cov >= 1.0
            s.found += found
            s.exact += exact
            s.masked += masked
            s.fully_masked += full
            clean &= full
            if g.get("case"):
                c = by_case[g["case"]]
                c["support"] += 1
                c["found"] += found
                c["masked"] += masked
            example = {"id": rid, "type": g["type"], "text": g["text"] if "text" in g else
                       text[g["start"]:g["end"]], "case": g.get("case"),
                       "context": _context(text, g["start"], g["end"])}
            if not masked and len(misses) < max_examples:
                misses.append(example)
            elif masked and not full and len(partial) < max_examples:
                partial.append(example)
        if gold:
            any_id["texts_with_identifiers"] += 1
            any_id["texts_clean"] += clean
        for n in neutral_labels:
            c = neutral[n["type"]]
            c["support"] += 1
            c["masked"] += _coverage(_chars(text, n["start"], n["end"]), all_cov) >= min_overlap
        for d in rec.get("decoys", []):
            c = decoys[d["kind"]]
            c["support"] += 1
            c["masked"] += any(i in all_cov for i in range(d["start"], d["end"]))
        gold_cov_by_type: dict[str, set[int]] = {}
        id_cov = _covered(gold)
        neutral_cov = _covered(neutral_labels)
        for p in preds:
            s = score(p.type)
            s.predicted += 1
            chars = _chars(text, p.start, p.end)
            if p.type not in gold_cov_by_type:
                gold_cov_by_type[p.type] = _covered(g for g in gold
                                                    if compatible(p.type, g["type"]))
            if _coverage(chars, gold_cov_by_type[p.type]) >= min_overlap:
                s.correct += 1
                s.hits_identifier += 1
            elif _coverage(chars, id_cov) >= min_overlap:
                s.hits_identifier += 1
            elif _coverage(chars, neutral_cov) >= min_overlap:
                s.neutral += 1
            elif len(fps) < max_examples:
                fps.append({"id": rid, "type": p.type, "text": p.text,
                            "context": _context(text, p.start, p.end)})
    seconds = time.perf_counter() - t0

    gold_types = sorted(t for t, s in per_type.items() if s.support)
    other_types = sorted(t for t, s in per_type.items() if not s.support)
    per_type = {t: per_type[t] for t in gold_types + other_types}
    overall = TypeScore("all")
    for s in per_type.values():
        for f in ("support", "found", "exact", "masked", "fully_masked", "predicted", "correct",
                  "hits_identifier", "neutral"):
            setattr(overall, f, getattr(overall, f) + getattr(s, f))
    scored = overall.predicted - overall.neutral
    any_identifier = {
        "support": overall.support, "masked": overall.masked,
        "fully_masked": overall.fully_masked,
        "masked_recall": overall.masked_recall,
        "fully_masked_recall": TypeScore._ratio(overall.fully_masked, overall.support),
        "masking_precision": TypeScore._ratio(overall.hits_identifier, scored),
        "texts_with_identifiers": any_id["texts_with_identifiers"],
        "texts_clean": any_id["texts_clean"],
    }
    return QualityReport(
        redactor=getattr(redactor, "name", type(redactor).__name__), texts=len(records),
        min_overlap=min_overlap, per_type=per_type, overall=overall,
        any_identifier=any_identifier,
        neutral={k: dict(v) for k, v in sorted(neutral.items())},
        decoys={k: dict(v) for k, v in sorted(decoys.items())},
        by_case={k: dict(v) for k, v in sorted(by_case.items())},
        misses=misses, partial=partial, false_positives=fps, seconds=seconds)
