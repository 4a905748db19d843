"""Evaluate coding runs against gold codes: ``vsdcoder eval`` and ``vsdcoder.evaluate(...)``.

For every prediction (an LLM run or a baseline) and every dimension of the codebook this
computes, against the gold codes (the ``gold`` coder if the gold file has one, else the
majority of the human coders):

- n, percent agreement, Cohen's kappa (quadratic weights for ordinal dimensions),
  Krippendorff's alpha (nominal; ordinal for ordinal dimensions; MASI distance for multi-label
  dimensions), Gwet's AC1 and F1 (macro and micro over codes);
- per code (one code against the rest, or present/absent in a multi-label set): support,
  agreement, kappa, alpha, AC1, precision, recall, F1 and a permutation test of whether the
  prediction beats chance;
- a percentile bootstrap confidence interval over units for every coefficient: all coefficients
  of one prediction use the same resampled units;
- with two or more human coders, a human baseline: pairwise human-human agreement, the alpha of
  all humans, the LLM against each human, and the LLM in the place of each human in turn.

Gated dimensions (``when``, and the relevance gate) are scored only on the units where the gold
gate is open; the gate dimension is scored as a dimension of its own. A coder that closed the
gate on such a unit has the value ``(gate closed)`` there (an empty set for multi-label
dimensions), which counts as a disagreement. Segment codebooks are scored per unit: is the code
present in any record of the unit.

Every coefficient is :mod:`vsdcoder.reliability.metrics`'s, computed from its per-unit
statistics: one resampling weight matrix per prediction makes the point value and all bootstrap
replicates of a coefficient one matrix product. The permutation tests are
:func:`vsdcoder.reliability.uncertainty.permutation_test`. Render the report with
:mod:`vsdcoder.reliability.report`; the disagreement sheet is
:mod:`vsdcoder.reliability.disagreements`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from vsdcoder.errors import UsageError
from vsdcoder.reliability.types import MetricResult, Ratings

#: Version of the JSON report (see docs/reliability.md, "Reports").
FORMAT = 1
#: The value of a coder on a unit where the coder closed the gate the gold left open.
GATE_CLOSED = "(gate closed)"
#: Dimension-level coefficients, in report order.
DIMENSION_METRICS = ("agreement", "kappa", "alpha", "ac1", "f1_macro", "f1_micro")
#: Per-code coefficients, in report order.
CODE_METRICS = ("agreement", "kappa", "alpha", "ac1", "precision", "recall", "f1")


# -- report dataclasses -----------------------------------------------------------------------


@dataclass
class Baseline:
    """Human-human agreement and the LLM among the humans, for one dimension or one code.

    ``pairwise``: every pair of humans ({"a", "b", "n", "agreement", "kappa", "alpha"});
    ``llm_vs_humans``: the LLM against each human ({"human", "n", "agreement", "kappa",
    "alpha"}); ``leave_one_out``: for each human, the alpha of the other humans
    (``alpha_without``) and of the other humans plus the LLM in that human's place
    (``alpha_llm_in_place``). ``alpha_humans`` is the alpha of all humans together.
    """

    humans: list[str]
    alpha_humans: MetricResult
    pairwise: list[dict[str, Any]] = field(default_factory=list)
    llm_vs_humans: list[dict[str, Any]] = field(default_factory=list)
    leave_one_out: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def _range(values: Iterable[float | None]) -> list[float] | None:
        vs = [v for v in values if v is not None]
        return [min(vs), max(vs)] if vs else None

    @property
    def human_kappa_range(self) -> list[float] | None:
        """[min, max] of the pairwise human-human kappas."""
        return self._range(p["kappa"] for p in self.pairwise)

    @property
    def human_alpha_range(self) -> list[float] | None:
        """[min, max] of the pairwise human-human alphas."""
        return self._range(p["alpha"] for p in self.pairwise)

    @property
    def llm_kappa_range(self) -> list[float] | None:
        """[min, max] of the LLM-human kappas."""
        return self._range(p["kappa"] for p in self.llm_vs_humans)

    @property
    def llm_in_place_range(self) -> list[float] | None:
        """[min, max] of the alphas with the LLM in the place of one human."""
        return self._range(p["alpha_llm_in_place"] for p in self.leave_one_out)


@dataclass
class CodeEval:
    """Scores of one code (that code against the rest / present or absent)."""

    code: str
    n: int
    support: int
    predicted: int
    metrics: dict[str, MetricResult]
    p_value: float | None = None
    baseline: Baseline | None = None


@dataclass
class DimensionEval:
    """Scores of one dimension for one prediction."""

    name: str
    type: str
    level: str
    n: int
    n_scope: int
    metrics: dict[str, MetricResult]
    codes: list[CodeEval]
    confusion: dict[str, Any]
    gate: dict[str, Any] | None = None
    kappa_weights: str | None = None
    baseline: Baseline | None = None
    notes: list[str] = field(default_factory=list)
    # for the disagreement sheet (not in the JSON report)
    units: list[str] = field(default_factory=list, repr=False)
    gold_values: dict[str, Any] = field(default_factory=dict, repr=False)
    pred_values: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class PredEval:
    """Everything measured for one prediction (an LLM run or a baseline)."""

    name: str
    kind: str
    source: str | None
    units: dict[str, Any]
    run: dict[str, Any]
    headline: dict[str, MetricResult]
    dimensions: list[DimensionEval]
    skipped_dimensions: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    quote_overlap: dict[str, Any] | None = None
    span_overlap: dict[str, Any] | None = None
    ratings: Ratings | None = field(default=None, repr=False)

    def dimension(self, name: str) -> DimensionEval:
        """The scores of dimension ``name`` (KeyError if it was not scored)."""
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)


@dataclass
class EvalReport:
    """The result of :func:`evaluate`; ``to_json()`` gives the documented JSON report."""

    codebook: dict[str, Any]
    gold: dict[str, Any]
    settings: dict[str, Any]
    preds: list[PredEval]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    created: str = ""
    gold_ratings: Ratings | None = field(default=None, repr=False)
    codebook_obj: Any = field(default=None, repr=False)

    def pred(self, name: str | None = None) -> PredEval:
        """The prediction called ``name`` (the first one by default)."""
        if name is None:
            return self.preds[0]
        for p in self.preds:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per prediction: reliability headline, cost, time and failure rate."""
        rows = []
        for p in self.preds:
            rows.append({
                "name": p.name, "kind": p.kind, "model": p.run.get("model"),
                "n": p.units.get("evaluated"),
                "alpha_mean": _metric_dict(p.headline["alpha_mean"]),
                "kappa_mean": _metric_dict(p.headline["kappa_mean"]),
                "f1_macro_mean": _metric_dict(p.headline["f1_macro_mean"]),
                "cost_usd": p.run.get("cost_usd"), "seconds": p.run.get("seconds"),
                "failed": p.run.get("failed"), "total": p.run.get("total"),
                "failure_rate": p.run.get("failure_rate"),
            })
        rows.sort(key=lambda r: -(r["alpha_mean"]["value"] if r["alpha_mean"]["value"]
                                  is not None else -math.inf))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The JSON report as a dict (schema: docs/reliability.md, "Reports")."""
        return {
            "format": FORMAT,
            "vsdcoder": _version(),
            "created": self.created,
            "elapsed_seconds": round(self.elapsed, 3),
            "codebook": self.codebook,
            "gold": self.gold,
            "settings": self.settings,
            "preds": [_pred_dict(p) for p in self.preds],
            "leaderboard": self.leaderboard,
            "problems": self.problems,
            "notes": self.notes,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The JSON report as text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)


def _version() -> str:
    from vsdcoder import __version__

    return __version__


def _round(v: float | None, digits: int = 6) -> float | None:
    return None if v is None else round(float(v), digits)


def _metric_dict(m: MetricResult | None) -> dict[str, Any]:
    if m is None:
        return {"value": None, "ci": None, "reason": "not computed", "n": None}
    out: dict[str, Any] = {"value": _round(m.value),
                           "ci": [_round(m.ci[0]), _round(m.ci[1])] if m.ci else None,
                           "reason": m.reason, "n": m.n_units}
    if m.details.get("undefined_resamples"):
        out["undefined_resamples"] = m.details["undefined_resamples"]
    return out


def _baseline_dict(b: Baseline | None) -> dict[str, Any] | None:
    if b is None:
        return None

    def rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: (_round(v) if isinstance(v, float) else v) for k, v in r.items()}
                for r in items]

    return {"humans": b.humans, "alpha_humans": _metric_dict(b.alpha_humans),
            "pairwise": rows(b.pairwise), "llm_vs_humans": rows(b.llm_vs_humans),
            "leave_one_out": rows(b.leave_one_out),
            "human_kappa_range": b.human_kappa_range, "human_alpha_range": b.human_alpha_range,
            "llm_kappa_range": b.llm_kappa_range, "llm_in_place_range": b.llm_in_place_range}


def _pred_dict(p: PredEval) -> dict[str, Any]:
    dims = []
    for d in p.dimensions:
        dims.append({
            "name": d.name, "type": d.type, "level": d.level, "kappa_weights": d.kappa_weights,
            "gate": d.gate, "n_scope": d.n_scope, "n": d.n,
            "metrics": {k: _metric_dict(d.metrics.get(k)) for k in DIMENSION_METRICS},
            "codes": [{"code": c.code, "n": c.n, "support": c.support, "predicted": c.predicted,
                       "metrics": {k: _metric_dict(c.metrics.get(k)) for k in CODE_METRICS},
                       "p_value": _round(c.p_value), "baseline": _baseline_dict(c.baseline)}
                      for c in d.codes],
            "confusion": d.confusion,
            "baseline": _baseline_dict(d.baseline),
            "notes": d.notes,
        })
    out = {"name": p.name, "kind": p.kind, "source": p.source, "units": p.units, "run": p.run,
           "headline": {k: _metric_dict(v) for k, v in p.headline.items()},
           "dimensions": dims, "skipped_dimensions": p.skipped_dimensions,
           "quote_overlap": p.quote_overlap, "problems": p.problems}
    if p.span_overlap is not None:  # only with gold spans (evaluate(gold_spans=...))
        out["span_overlap"] = p.span_overlap
    return out


# -- the numbers: per-unit statistics over shared bootstrap resamples ---------------------------
#
# Every coefficient comes from :func:`vsdcoder.reliability.metrics.prepare`: per-unit additive
# statistics and a ``finalize`` that maps their sums to the coefficient. Row 0 of the weight
# matrix W is the data itself (every unit once); rows 1..B are bootstrap resamples (how often
# each unit was drawn), the same for every coefficient of a prediction. ``finalize(W @
# per_unit)`` is then the point value and its B replicates in one matrix product.


def resample_weights(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """(1 + n_boot) x n_units: row 0 all ones, then how often each unit is drawn per resample."""
    w = np.ones((1 + n_boot, n_units))
    if n_boot and n_units:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n_units, size=(n_boot, n_units))
        idx += (np.arange(n_boot) * n_units)[:, None]
        w[1:] = np.bincount(idx.ravel(), minlength=n_boot * n_units).reshape(n_boot, n_units)
    return w


def _div(a: Any, b: Any) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(np.asarray(a, dtype=float) / b, dtype=float)
    out[~np.isfinite(out)] = np.nan
    return out


def _ci(vec: np.ndarray, level: float, n_units: int) -> tuple[tuple[float, float] | None, int]:
    """Percentile interval of the replicates vec[1:] (NaN = undefined, left out)."""
    boots = vec[1:]
    ok = boots[np.isfinite(boots)]
    undefined = int(boots.size - ok.size)
    if n_units < 2 or ok.size < 2:
        return None, undefined
    a = (1 - level) / 2
    lo, hi = np.quantile(ok, [a, 1 - a])
    return (float(lo), float(hi)), undefined


def _with_ci(point: MetricResult, vec: np.ndarray, level: float) -> MetricResult:
    """``point`` (from metrics) with the interval of its replicates; no details kept."""
    if point.value is None:
        return MetricResult(None, None, point.reason, point.n_units)
    ci, undefined = _ci(vec, level, point.n_units or 0)
    details = {"undefined_resamples": undefined} if undefined else {}
    return MetricResult(point.value, ci, None, point.n_units, details)


def _vec_metric(vec: np.ndarray, n: int, level: float, reason: str) -> MetricResult:
    """A MetricResult from a (1 + B) vector computed here (precision, recall, means)."""
    v = vec[0]
    if not np.isfinite(v):
        return MetricResult(None, None, reason, n)
    ci, undefined = _ci(vec, level, n)
    return MetricResult(float(v), ci, None, n,
                        {"undefined_resamples": undefined} if undefined else {})


class _Boot:
    """Coefficients of :mod:`~vsdcoder.reliability.metrics` with CIs from one weight matrix."""

    def __init__(self, w: np.ndarray, level: float):
        self.w = w
        self.level = level

    def __call__(self, metric, *args: Any, **kwargs: Any) -> tuple[MetricResult, np.ndarray]:
        from vsdcoder.reliability.metrics import prepare

        prep = prepare(metric, *args, **kwargs)
        point = prep.result()
        if point.value is None:
            return MetricResult(None, None, point.reason, point.n_units), \
                np.full(self.w.shape[0], np.nan)
        if prep.per_unit.shape[0] != self.w.shape[1]:
            raise ValueError(f"{getattr(metric, '__name__', metric)}: per-unit statistics for "
                             f"{prep.per_unit.shape[0]} units, weights for {self.w.shape[1]}")
        vec = np.asarray(prep.finalize(self.w @ prep.per_unit), dtype=float)
        vec[0] = point.value
        return _with_ci(point, vec, self.level), vec

    def sub(self, cols: list[int]) -> _Boot:
        """The same resamples restricted to some units (columns)."""
        return _Boot(self.w[:, cols], self.level)


# -- inputs ------------------------------------------------------------------------------------


def resolve_codebook(codebook: Any):
    """A Codebook from a Codebook, a loaded codebook, a registered name or a file path."""
    from vsdcoder.codebook.model import Codebook

    if isinstance(codebook, Codebook):
        return codebook
    if hasattr(codebook, "codebook") and isinstance(codebook.codebook, Codebook):
        return codebook.codebook
    from vsdcoder.codebook.load import load_codebook

    return load_codebook(codebook).codebook


def _load_gold(gold: Any, codebook, layout: Any) -> tuple[Ratings, str | None]:
    if isinstance(gold, Ratings):
        return gold.merge(Ratings()), None  # a copy: problems are added to it
    from vsdcoder.reliability.gold import read_gold

    p = Path(gold)
    if not p.is_file():
        raise UsageError(f"{p}: no such gold file")
    return read_gold(p, codebook, layout=layout), str(p)


def _rename(r: Ratings, old: str, new: str) -> Ratings:
    out = Ratings(units=list(r.units), coders={(new if c == old else c): k
                                               for c, k in r.coders.items()},
                  texts=dict(r.texts), problems=list(r.problems))
    out.values = {d: {(new if c == old else c): v for c, v in by.items()}
                  for d, by in r.values.items()}
    out.evidence = {(new if c == old else c): v for c, v in r.evidence.items()}
    return out


def _load_pred(pred: Any, codebook, taken: set[str]) -> tuple[Ratings, str, str | None,
                                                               dict[str, Any] | None]:
    """(ratings, coder name, source, manifest) of one prediction; names made unique."""
    manifest = None
    source = None
    if isinstance(pred, Ratings):
        r = pred
    else:
        from vsdcoder.reliability.gold import read_run

        p = Path(pred)
        if not p.is_dir():
            raise UsageError(f"{p}: no such run directory")
        if not (p / "codes.jsonl").is_file() and not (p / "manifest.json").is_file():
            raise UsageError(f"{p}: not a run directory (no codes.jsonl or manifest.json)")
        r = read_run(p, codebook)
        source = str(p)
        _texts_from_run(p, r)
        try:
            manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            manifest = None
    coders = [c for c, k in r.coders.items() if k in ("llm", "baseline")] or list(r.coders)
    if len(coders) != 1:
        raise UsageError(f"a prediction must hold exactly one coder; got {sorted(r.coders)}")
    name = coders[0]
    if name in taken:
        i = 2
        while f"{name}#{i}" in taken:
            i += 1
        r = _rename(r, name, f"{name}#{i}")
        name = f"{name}#{i}"
    taken.add(name)
    return r, name, source, manifest


def _texts_from_run(run_dir: Path, r: Ratings) -> None:
    """Unit texts from the run's run.db (when stored), for the disagreement sheet."""
    import sqlite3

    db = run_dir / "run.db"
    if not db.is_file():
        return
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for uid, text in con.execute("SELECT id, text FROM units WHERE text IS NOT NULL"):
                r.texts.setdefault(str(uid), text)
        finally:
            con.close()
    except sqlite3.Error:
        return


def _run_info(manifest: dict[str, Any] | None) -> dict[str, Any]:
    if not manifest:
        return {"model": None, "cost_usd": None, "seconds": None, "counts": None,
                "failed": None, "total": None, "failure_rate": None}
    counts = manifest.get("counts") or {}
    total = sum(v for v in counts.values() if isinstance(v, int))
    failed = int(counts.get("failed", 0) or 0)
    secs = [s.get("seconds") for s in manifest.get("sessions", []) if s.get("seconds") is not None]
    return {"model": (manifest.get("model") or {}).get("model"),
            "cost_usd": manifest.get("cost_usd"),
            "seconds": round(sum(secs), 3) if secs else None,
            "counts": counts, "failed": failed, "total": total,
            "failure_rate": (failed / total) if total else None}


# -- dimensions, gates and values ---------------------------------------------------------------


@dataclass
class _Spec:
    name: str
    type: str  # single | ordinal | multi | relevance
    labels: list[Any]
    gate: tuple[str, frozenset] | None = None
    gate_codes: list[Any] = field(default_factory=list)


def _is_open(value: Any, codes: frozenset) -> bool:
    if value is None or value == GATE_CLOSED:
        return False
    if isinstance(value, (frozenset, set, list, tuple)):
        return bool(set(value) & codes)
    return value in codes


def _truthy(v: Any) -> Any:
    """A relevance value as "true"/"false" (as :mod:`~vsdcoder.reliability.gold` writes it)."""
    if v is True or (isinstance(v, str) and v.strip().lower() in ("true", "yes", "1")):
        return "true"
    if v is False or (isinstance(v, str) and v.strip().lower() in ("false", "no", "0")):
        return "false"
    return v


def _specs(cb, ratings: Ratings) -> tuple[list[_Spec], list[dict[str, str]]]:
    specs: list[_Spec] = []
    skipped: list[dict[str, str]] = []
    has_relevant = "relevant" in ratings.values
    if has_relevant:
        specs.append(_Spec("relevant", "relevance", ["true", "false"]))
    for d in cb.dimensions:
        if d.type == "text":
            skipped.append({"name": d.name, "reason": "text dimension (free text is not scored)"})
            continue
        if d.name not in ratings.values:
            skipped.append({"name": d.name, "reason": "not in the gold codes"})
            continue
        typ = "multi" if (d.type == "multi" or cb.unit == "segment") else d.type
        spec = _Spec(d.name, typ, d.codable_names())
        if d.when is not None:
            spec.gate = (d.when.dimension, frozenset(d.when.codes))
            spec.gate_codes = list(d.when.codes)
        elif has_relevant and cb.unit == "document":
            spec.gate = ("relevant", frozenset(["true"]))
            spec.gate_codes = ["true"]
        specs.append(spec)
    names = {s.name for s in specs}
    for s in specs:  # a gate on a dimension that is not scored is ignored
        if s.gate and s.gate[0] not in names:
            s.gate = None
    return specs, skipped


def _norm(spec: _Spec, v: Any) -> Any:
    if v is None:
        return None
    if spec.type == "relevance":
        return _truthy(v)
    if spec.type == "multi":
        if isinstance(v, str):
            return frozenset(x.strip() for x in v.split(";") if x.strip())
        return frozenset(v)
    return v


def _effective(specs: list[_Spec], ratings: Ratings, coder: str,
               units: list[str]) -> dict[str, dict[str, Any]]:
    """Dimension -> unit -> value of one coder, GATE_CLOSED where the coder closed the gate."""
    out: dict[str, dict[str, Any]] = {}
    for s in specs:
        src = ratings.values.get(s.name, {}).get(coder, {})
        vals: dict[str, Any] = {}
        parent = out.get(s.gate[0]) if s.gate else None
        for u in units:
            v = _norm(s, src.get(u))
            if v is None and s.gate and parent is not None:
                pv = parent.get(u)
                if pv is not None and not _is_open(pv, s.gate[1]):
                    v = frozenset() if s.type == "multi" else GATE_CLOSED
            if v is not None:
                vals[u] = v
        out[s.name] = vals
    return out


def _reference(specs: list[_Spec], gold_r: Ratings, units: list[str]
               ) -> tuple[dict[str, dict[str, Any]], str, list[str], str | None]:
    """Gold values per dimension: the gold coder's, else the humans' majority."""
    humans = [c for c, k in gold_r.coders.items() if k == "human"]
    golds = [c for c, k in gold_r.coders.items() if k == "gold"]
    if golds:
        return _effective(specs, gold_r, golds[0], units), f"gold coder '{golds[0]}'", humans, \
            golds[0]
    if len(humans) == 1:
        return _effective(specs, gold_r, humans[0], units), f"the one human coder '{humans[0]}'", \
            humans, humans[0]
    if not humans:
        raise UsageError("the gold has no human or gold coder to compare with; check the gold "
                         "file's columns (and --layout)")
    from vsdcoder.reliability.gold import majority

    tmp = Ratings(units=list(units), coders={"__majority__": "gold"})
    for s in specs:
        maj = majority(gold_r, s.name, humans)
        tmp.values[s.name] = {"__majority__": {u: v for u, v in maj.items() if v is not None}}
        ties = [u for u, why in maj.reasons.items() if why.startswith("tie")]
        if ties:
            gold_r.problems.append(f"majority of {s.name}: {len(ties)} tie(s) between the human "
                                   f"coders leave unit(s) without gold: {_ids(ties)}")
    ref = _effective(specs, tmp, "__majority__", units)
    return ref, f"majority of {len(humans)} human coders ({', '.join(humans)})", humans, None


def _scope(spec: _Spec, by_name: dict[str, _Spec], ref: dict[str, dict[str, Any]],
           u: str) -> bool:
    """Whether the gold gates of ``spec`` are all open on unit ``u``."""
    s = spec
    while s.gate:
        pv = ref.get(s.gate[0], {}).get(u)
        if not _is_open(pv, s.gate[1]):
            return False
        s = by_name[s.gate[0]]
    return True


# -- scoring one dimension ----------------------------------------------------------------------


def _labels(spec: _Spec, columns: Iterable[dict[str, Any]]) -> list[Any]:
    """The codebook's codes, then other values seen (sorted), then GATE_CLOSED if seen."""
    out: list[Any] = list(spec.labels)
    known = set(out)
    extra: set[Any] = set()
    for col in columns:
        for v in col.values():
            if spec.type == "multi":
                extra.update(x for x in v if x not in known)
            elif v not in known:
                extra.add(v)
    closed = GATE_CLOSED in extra
    extra.discard(GATE_CLOSED)
    out += sorted(extra, key=str)
    return [*out, GATE_CLOSED] if closed else out


def _label_str(v: Any) -> str:
    return str(v)


def _pr(boot: _Boot, gb: list[Any], pb: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall replicates of present/absent lists (None = missing)."""
    tp = np.array([1.0 if (x == 1 and y == 1) else 0.0 for x, y in zip(gb, pb, strict=True)])
    fp = np.array([1.0 if (x == 0 and y == 1) else 0.0 for x, y in zip(gb, pb, strict=True)])
    fn = np.array([1.0 if (x == 1 and y == 0) else 0.0 for x, y in zip(gb, pb, strict=True)])
    t, f_p, f_n = boot.w @ tp, boot.w @ fp, boot.w @ fn
    return _div(t, t + f_p), _div(t, t + f_n)


class _Scorer:
    """Scores the dimensions of one prediction against the gold on one set of units."""

    def __init__(self, specs: list[_Spec], ref: dict[str, dict[str, Any]],
                 pred: dict[str, dict[str, Any]], humans: dict[str, dict[str, dict[str, Any]]],
                 units: list[str], w: np.ndarray, *, level: float, permutations: int, seed: int,
                 pred_name: str):
        self.specs = specs
        self.by_name = {s.name: s for s in specs}
        self.ref = ref
        self.pred = pred
        self.humans = humans
        self.units = units
        self.w = w
        self.level = level
        self.permutations = permutations
        self.seed = seed
        self.pred_name = pred_name

    def dimension(self, spec: _Spec) -> tuple[DimensionEval, dict[str, np.ndarray]]:
        """Scores of one dimension and its coefficient replicates (for the headline)."""
        ref = self.ref
        cols = [j for j, u in enumerate(self.units)
                if ref[spec.name].get(u) is not None and _scope(spec, self.by_name, ref, u)]
        units = [self.units[j] for j in cols]
        boot = _Boot(self.w[:, cols], self.level)
        gold = ref[spec.name]
        pred = self.pred.get(spec.name, {})
        hum = {h: v.get(spec.name, {}) for h, v in self.humans.items()}
        notes: list[str] = []
        if spec.type == "multi":
            res, vecs = self._multi(spec, units, boot, gold, pred, hum)
        else:
            res, vecs = self._single(spec, units, boot, gold, pred, hum, notes)
        if spec.gate:
            res.gate = {"dimension": spec.gate[0],
                        "codes": [_label_str(c) for c in spec.gate_codes], "n_open": len(units)}
        res.n_scope = len(units)
        res.notes = notes + res.notes
        res.units = units
        res.gold_values = {u: gold[u] for u in units}
        res.pred_values = {u: pred.get(u) for u in units}
        if units and res.n < len(units):
            res.notes.append(f"{len(units) - res.n} of {len(units)} units in scope have no "
                             f"code from {self.pred_name} for this dimension")
        return res, vecs

    def _codes(self, boot: _Boot, g: list[Any], p: list[Any], codes: list[Any],
               hl: dict[str, list[Any]] | None) -> list[CodeEval]:
        """Per-code scores: each code's presence against its absence."""
        from vsdcoder.reliability import metrics as m
        from vsdcoder.reliability.uncertainty import permutation_test

        out = []
        both = [i for i, (x, y) in enumerate(zip(g, p, strict=True))
                if x is not None and y is not None]
        for c in codes:
            gb, pb = m.binarize(g, c), m.binarize(p, c)
            support = sum(gb[i] for i in both)
            predicted = sum(pb[i] for i in both)
            cm: dict[str, MetricResult] = {}
            cm["agreement"], _ = boot(m.percent_agreement, [gb, pb], categories=[0, 1])
            cm["kappa"], _ = boot(m.cohen_kappa, gb, pb, categories=[0, 1])
            cm["alpha"], _ = boot(m.krippendorff_alpha, [gb, pb], categories=[0, 1])
            cm["ac1"], _ = boot(m.gwet_ac1, [gb, pb], categories=[0, 1])
            prec, rec = _pr(boot, gb, pb)
            cm["precision"] = _vec_metric(prec, len(both), self.level,
                                          "undefined: the code is never predicted")
            cm["recall"] = _vec_metric(rec, len(both), self.level,
                                       "undefined: the code is not in the gold")
            cm["f1"], _ = boot.sub(both)(m.f1_score, [g[i] for i in both],
                                         [p[i] for i in both], code=c)
            pv = None
            if self.permutations and both:
                pv = permutation_test(g, p, c, n=self.permutations,
                                      seed=self.seed).details.get("p_value")
            base = None
            if hl is not None and len(hl) >= 2:
                hb = {h: m.binarize(v, c) for h, v in hl.items()}
                kw = {"categories": [0, 1]}
                base = self._baseline(boot, hb, pb, kw, kw, None)
            out.append(CodeEval(_label_str(c), len(both), support, predicted, cm, pv, base))
        return out

    def _single(self, spec, units, boot, gold, pred, hum, notes):
        from vsdcoder.reliability import metrics as m

        ordinal = spec.type == "ordinal"
        labels = _labels(spec, [gold, pred, *hum.values()])
        g = [gold.get(u) for u in units]
        p = [pred.get(u) for u in units]
        hl = {h: [v.get(u) for u in units] for h, v in hum.items()}
        if ordinal and GATE_CLOSED in labels:
            labels.remove(GATE_CLOSED)
            closed = sum(1 for x in p if x == GATE_CLOSED)
            if closed:
                notes.append(f"{closed} unit(s) where {self.pred_name} closed the gate are left "
                             "out (no rank on the ordinal scale)")
            p = [None if x == GATE_CLOSED else x for x in p]
            hl = {h: [None if x == GATE_CLOSED else x for x in v] for h, v in hl.items()}
        level = "ordinal" if ordinal else "nominal"
        weights = "quadratic" if ordinal else None
        metrics: dict[str, MetricResult] = {}
        vecs: dict[str, np.ndarray] = {}
        for key, fn, args, kw in (
            ("agreement", m.percent_agreement, ([g, p],), {"categories": labels}),
            ("kappa", m.cohen_kappa, (g, p), {"weights": weights, "categories": labels}),
            ("alpha", m.krippendorff_alpha, ([g, p],), {"level": level, "categories": labels}),
            ("ac1", m.gwet_ac1, ([g, p],), {"categories": labels}),
        ):
            metrics[key], vecs[key] = boot(fn, *args, **kw)
        both = [i for i in range(len(units)) if g[i] is not None and p[i] is not None]
        seen = {g[i] for i in both} | {p[i] for i in both}
        present = [c for c in labels if c in seen and c != GATE_CLOSED]
        self._f1(boot, g, p, present, metrics, vecs, len(both))
        codes = self._codes(boot, g, p, present, hl)
        base = None
        if len(hl) >= 2:
            base = self._baseline(boot, hl, p, {"level": level, "categories": labels},
                                  {"weights": weights, "categories": labels},
                                  {"categories": labels})
        mat = m.confusion_matrix(g, p, labels) if both else np.zeros((len(labels),) * 2, int)
        conf = {"kind": "labels", "labels": [_label_str(x) for x in labels],
                "matrix": [[int(x) for x in row] for row in mat]}
        res = DimensionEval(
            name=spec.name, type=spec.type, level=level, n=len(both), n_scope=len(units),
            metrics=metrics, codes=codes, confusion=conf, kappa_weights=weights, baseline=base)
        return res, vecs

    def _f1(self, boot, g, p, present, metrics, vecs, n):
        from vsdcoder.reliability import metrics as m

        # f1_score skips units without both values: score it on those units only
        both = [i for i in range(len(g)) if g[i] is not None and p[i] is not None]
        sub = boot.sub(both)
        gb, pb = [g[i] for i in both], [p[i] for i in both]
        for avg in ("macro", "micro"):
            key = f"f1_{avg}"
            if present:
                metrics[key], vecs[key] = sub(m.f1_score, gb, pb, labels=present, average=avg)
            else:
                metrics[key] = MetricResult(None, None, "no unit coded by both" if not n else
                                            "no code is used by gold or prediction", n)
                vecs[key] = np.full(boot.w.shape[0], np.nan)

    def _multi(self, spec, units, boot, gold, pred, hum):
        from vsdcoder.reliability import metrics as m

        codes = [c for c in _labels(spec, [gold, pred, *hum.values()]) if c != GATE_CLOSED]
        g = [gold.get(u) for u in units]
        p = [pred.get(u) for u in units]
        hl = {h: [v.get(u) for u in units] for h, v in hum.items()}
        metrics: dict[str, MetricResult] = {}
        vecs: dict[str, np.ndarray] = {}
        metrics["agreement"], vecs["agreement"] = boot(m.percent_agreement, [g, p])
        metrics["alpha"], vecs["alpha"] = boot(m.krippendorff_alpha, [g, p], distance="masi")
        both = [i for i in range(len(units)) if g[i] is not None and p[i] is not None]
        metrics["kappa"] = MetricResult(None, None, "multi-label dimension: see the per-code "
                                        "kappas", len(both))
        metrics["ac1"] = MetricResult(None, None, "multi-label dimension: see the per-code AC1",
                                      len(both))
        vecs["kappa"] = np.full(boot.w.shape[0], np.nan)
        seen = {c for i in both for c in (g[i] | p[i])}
        present = [c for c in codes if c in seen]
        self._f1(boot, g, p, present, metrics, vecs, len(both))
        out_codes = self._codes(boot, g, p, present, hl)
        base = None
        if len(hl) >= 2:
            base = self._baseline(boot, hl, p, {"distance": "masi"}, None, {})
        res = DimensionEval(name=spec.name, type=spec.type, level="masi", n=len(both),
                            n_scope=len(units), metrics=metrics, codes=out_codes,
                            confusion=_cooccurrence(g, p, codes))
        res.baseline = base
        return res, vecs

    def _baseline(self, boot: _Boot, hl: dict[str, list[Any]], p: list[Any],
                  alpha_kw: dict[str, Any], kappa_kw: dict[str, Any] | None,
                  agree_kw: dict[str, Any] | None) -> Baseline:
        """Pairwise human agreement, all-human alpha (with CI), LLM vs humans, leave-one-out.

        ``kappa_kw`` / ``agree_kw`` None: no kappa (multi-label sets) / no percent agreement
        per pair (per code, where it is dominated by the units without the code).
        """
        from vsdcoder.reliability import metrics as m

        names = list(hl)
        llm = "\0llm"
        rows = {**hl, llm: p}
        a_all, _ = boot(m.krippendorff_alpha, [hl[h] for h in names], **alpha_kw)
        cache: dict[frozenset[str], float | None] = {frozenset(names): a_all.value}

        def alpha(coders: list[str]) -> float | None:
            key = frozenset(coders)
            if key not in cache:
                cache[key] = m.krippendorff_alpha([rows[c] for c in coders], **alpha_kw).value
            return cache[key]

        def pair(a: str, b: str) -> dict[str, Any]:
            x, y = rows[a], rows[b]
            n = sum(1 for u, v in zip(x, y, strict=True) if u is not None and v is not None)
            out: dict[str, Any] = {"n": n}
            if agree_kw is not None:
                out["agreement"] = m.percent_agreement([x, y], **agree_kw).value
            out["kappa"] = m.cohen_kappa(x, y, **kappa_kw).value if kappa_kw is not None \
                else None
            out["alpha"] = alpha([a, b])
            return out

        pw = [{"a": a, "b": b, **pair(a, b)} for a, b in combinations(names, 2)]
        lv = [{"human": h, **pair(h, llm)} for h in names]
        loo = []
        for h in names:
            others = [o for o in names if o != h]
            loo.append({"replaced": h, "alpha_without": alpha(others),
                        "alpha_llm_in_place": alpha([*others, llm])})
        return Baseline(names, a_all, pw, lv, loo)


def _cooccurrence(g: list[Any], p: list[Any], codes: list[Any]) -> dict[str, Any]:
    """Multi-label "confusion": units with gold code (row) and predicted code (column)."""
    labels = [*codes, "(none)"]
    pos = {c: i for i, c in enumerate(labels)}
    mat = np.zeros((len(labels), len(labels)), dtype=int)
    for gv, pv in zip(g, p, strict=True):
        if gv is None or pv is None:
            continue
        for a in (gv or {"(none)"}):
            for b in (pv or {"(none)"}):
                mat[pos[a], pos[b]] += 1
    return {"kind": "co-occurrence", "labels": [str(x) for x in labels],
            "matrix": mat.tolist()}


# -- quote overlap --------------------------------------------------------------------------------


def _spans(ev: dict[str, Any] | None, text: str | None) -> list[tuple[int, int, frozenset]]:
    """(start, end, codes) spans of one coder on one unit, from offsets or located quotes."""
    if not ev:
        return []
    out = []
    items = ev.get("records") if ev.get("records") else [ev]
    for rec in items:
        if not isinstance(rec, dict):
            continue
        start, end = rec.get("start"), rec.get("end")
        q = rec.get("quote")
        if (start is None or end is None) and q and text:
            from vsdcoder.evidence import find_quote

            hit = find_quote(text, q)
            if hit:
                start, end = hit
        if start is None or end is None:
            continue
        codes = set()
        for v in (rec.get("codes") or {}).values():
            if isinstance(v, (list, tuple, set, frozenset)):
                codes.update(str(x) for x in v)
            elif v is not None:
                codes.add(str(v))
        out.append((int(start), int(end), frozenset(codes)))
    return out


def quote_overlap(gold_ev: dict[str, dict[str, Any]], pred_ev: dict[str, dict[str, Any]],
                  texts: dict[str, str], units: list[str]) -> dict[str, Any] | None:
    """Character overlap of gold and predicted quote spans (micro over units), overall and per code.

    None when the gold has no spans on these units.
    """
    g_sp = {u: _spans(gold_ev.get(u), texts.get(u)) for u in units}
    if not any(g_sp.values()):
        return None
    p_sp = {u: _spans(pred_ev.get(u), texts.get(u)) for u in units}

    def chars(spans, code=None):
        s: set[int] = set()
        for a, b, cs in spans:
            if code is None or code in cs:
                s.update(range(a, b))
        return s

    def prf(code=None):
        tp = gn = pn = 0
        for u in units:
            g, p = chars(g_sp[u], code), chars(p_sp[u], code)
            tp += len(g & p)
            gn += len(g)
            pn += len(p)
        pr = tp / pn if pn else None
        rc = tp / gn if gn else None
        f1 = 2 * tp / (gn + pn) if (gn + pn) else None
        return {"precision": _round(pr), "recall": _round(rc), "f1": _round(f1),
                "gold_chars": gn, "pred_chars": pn}

    codes = sorted({c for sp in g_sp.values() for *_, cs in sp for c in cs})
    return {"units_with_gold_spans": sum(1 for v in g_sp.values() if v), **prf(),
            "codes": {c: prf(c) for c in codes}}


# -- the entry point ------------------------------------------------------------------------------


def evaluate(
    gold: Any,
    preds: Any,
    codebook: Any,
    *,
    layout: Any = None,
    bootstrap: int = 1000,
    seed: int = 0,
    permutations: int = 1000,
    level: float = 0.95,
    gold_spans: str | Path | None = None,
    min_overlap: float = 0.5,
) -> EvalReport:
    """Evaluate one or more predictions against gold codes.

    Args:
        gold: A gold file (read with :func:`vsdcoder.reliability.gold.read_gold`) or Ratings
            holding human coders and/or one coder of kind "gold".
        preds: A run directory or Ratings (one coder), or a list of them.
        codebook: A codebook name, YAML path or :class:`~vsdcoder.codebook.model.Codebook`.
        layout: How to read the gold file (see ``read_gold``).
        bootstrap: Bootstrap resamples over units for the confidence intervals (0: none).
        seed: Seed of the resamples and of the permutation tests.
        permutations: Shuffles per code for the permutation test (0: none).
        level: Confidence level of the intervals.
        gold_spans: A CSV of gold spans (see
            :func:`vsdcoder.reliability.spans.read_gold_spans`): each prediction's quotes
            (segment records; a document answer's quote and its per-dimension quotes) are then
            also scored by span overlap (``PredEval.span_overlap``, per dimension and code; "not
            applicable" for a coder without quotes).
        min_overlap: The least IoU of a span match.

    Returns:
        An :class:`EvalReport`; render it with :mod:`vsdcoder.reliability.report`.

    Raises:
        UsageError: unreadable inputs, no prediction, no coder to compare with.
    """
    t0 = time.perf_counter()
    if bootstrap < 0 or permutations < 0:
        raise UsageError("--bootstrap and --permutations must be 0 or more")
    if not 0 < level < 1:
        raise UsageError("the confidence level must be between 0 and 1, e.g. 0.95")
    cb = resolve_codebook(codebook)
    gold_r, gold_source = _load_gold(gold, cb, layout)
    if isinstance(preds, (str, Path, Ratings)):
        preds = [preds]
    preds = list(preds or [])
    if not preds:
        raise UsageError("nothing to evaluate: give at least one prediction (--pred RUN_DIR)")
    taken = set(gold_r.coders)
    loaded = [_load_pred(p, cb, taken) for p in preds]
    spans = None
    if gold_spans is not None:
        from vsdcoder.reliability.spans import read_gold_spans, span_dimensions

        spans = read_gold_spans(gold_spans)
        span_dims = span_dimensions(spans, cb)

    specs, skipped = _specs(cb, gold_r)
    all_gold_units = list(dict.fromkeys(gold_r.units))
    ref, reference, humans, gold_coder = _reference(specs, gold_r, all_gold_units)
    gold_units = [u for u in all_gold_units if any(u in ref[s.name] for s in specs)]
    human_eff = {h: _effective(specs, gold_r, h, all_gold_units) for h in humans}
    problems = list(dict.fromkeys(gold_r.problems))
    notes: list[str] = []
    if not specs:
        raise UsageError("no dimension of the codebook is in the gold codes; check the gold "
                         "file's columns (and --layout)")
    gold_ids = set(all_gold_units)

    out_preds = []
    for r, name, source, manifest in loaded:
        pred_eff = _effective(specs, r, name, list(dict.fromkeys(r.units)))
        coded = {u for s in specs for u in pred_eff[s.name]}
        run_ids = list(dict.fromkeys([*r.units, *sorted(coded - set(r.units))]))
        only_gold = [u for u in gold_units if u not in set(run_ids)]
        only_pred = [u for u in run_ids if u not in gold_ids]
        not_coded = [u for u in gold_units if u in set(run_ids) and u not in coded]
        units = [u for u in gold_units if u in coded]
        pprob = list(dict.fromkeys(r.problems))
        if only_gold:
            pprob.append(f"{len(only_gold)} unit id(s) only in the gold, not in {name}: "
                         + _ids(only_gold))
        if only_pred:
            pprob.append(f"{len(only_pred)} unit id(s) only in {name}, not in the gold: "
                         + _ids(only_pred))
        # gold units the run has but did not code, by their status in the run (read_run keeps
        # it in the evidence, and lists these units nowhere else): one line, each id once
        not_coded_by_status: dict[str, list[str]] = {}
        ev_pred = r.evidence.get(name, {})
        for u in not_coded:
            st = (ev_pred.get(u) or {}).get("status") or "without codes"
            not_coded_by_status.setdefault(st, []).append(u)
        if not_coded:
            pprob.append(f"{len(not_coded)} gold unit(s) that {name} did not code are left "
                         "out: " + ", ".join(f"{st} ({_ids(ids)})"
                                             for st, ids in not_coded_by_status.items()))
        w = resample_weights(len(units), bootstrap, seed)
        scorer = _Scorer(specs, ref, pred_eff, human_eff, units, w, level=level,
                         permutations=permutations, seed=seed, pred_name=name)
        dims, vecs = [], []
        for s in specs:
            d, v = scorer.dimension(s)
            dims.append(d)
            vecs.append(v)
        headline = {}
        for key, m in (("alpha_mean", "alpha"), ("kappa_mean", "kappa"),
                       ("f1_macro_mean", "f1_macro")):
            rows = [v[m] for v in vecs if np.isfinite(v[m][0])]
            if rows:
                stack = np.vstack(rows)
                ok = np.isfinite(stack)
                mean = _div(np.where(ok, stack, 0.0).sum(axis=0), ok.sum(axis=0))
                headline[key] = _vec_metric(mean, len(units), level, "undefined")
                headline[key].details["dimensions"] = len(rows)
            else:
                headline[key] = MetricResult(None, None, "no dimension has this coefficient",
                                             len(units))
        # quote overlap, where the gold has spans
        ev_gold = gold_r.evidence.get(gold_coder, {}) if gold_coder else {}
        ov = quote_overlap(ev_gold, r.evidence.get(name, {}), {**r.texts, **gold_r.texts},
                           units) if ev_gold else None
        if ov is None and cb.unit == "segment":
            note = ("the gold has no quote spans: segments are scored by code presence per "
                    "unit only (no quote overlap)")
            if note not in notes:
                notes.append(note)
        span_ov = None
        if spans is not None:
            from vsdcoder.reliability.spans import span_overlap

            span_ov = span_overlap(
                spans, cb, r.evidence.get(name, {}),
                {d.name: r.values.get(d.name, {}).get(name, {}) for d in cb.dimensions},
                kind=r.coders.get(name), units=units, dimensions=span_dims,
                min_overlap=min_overlap)
        out_preds.append(PredEval(
            name=name, kind=r.coders.get(name, "llm"), source=source,
            units={"evaluated": len(units), "gold": len(gold_units), "only_gold": only_gold,
                   "only_pred": only_pred, "not_coded": not_coded,
                   "not_coded_by_status": not_coded_by_status},
            run=_run_info(manifest), headline=headline, dimensions=dims,
            skipped_dimensions=skipped, problems=pprob, quote_overlap=ov,
            span_overlap=span_ov,
            ratings=gold_r.merge(r)))
        for pp in pprob:
            problems.append(f"{name}: {pp}" if not pp.startswith(name) else pp)
    if len(humans) < 2:
        notes.append("no human baseline: it needs two or more human coders in the gold")
    return EvalReport(
        codebook={"name": cb.name, "version": cb.version, "unit": cb.unit},
        gold={"source": gold_source, "coders": dict(gold_r.coders), "reference": reference,
              "humans": humans, "n_units": len(gold_units)},
        settings={"bootstrap": bootstrap, "seed": seed, "permutations": permutations,
                  "ci_level": level, "ci_method": "percentile bootstrap over units"},
        preds=out_preds, problems=problems, notes=notes, elapsed=time.perf_counter() - t0,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), gold_ratings=gold_r,
        codebook_obj=cb)


def _ids(ids: list[str], limit: int = 10) -> str:
    head = ", ".join(ids[:limit])
    return head + (f" ... (+{len(ids) - limit} more)" if len(ids) > limit else "")


__all__ = ["FORMAT", "GATE_CLOSED", "Baseline", "CodeEval", "DimensionEval", "EvalReport",
           "PredEval", "evaluate"]
