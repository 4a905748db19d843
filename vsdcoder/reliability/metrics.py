"""Agreement coefficients and per-code scores, vectorised with numpy.

Every coefficient returns a :class:`~vsdcoder.reliability.types.MetricResult`: ``value`` is a
float, or None with a ``reason`` when the coefficient is undefined for the data (a single
category, a single unit, nothing pairable ...). A NaN never escapes.

Data layouts:

- ``data``: coders x units (a list of rows, or a 2-D numpy array); ``None`` (or a float NaN)
  marks a missing value.
- ``a``, ``b``, ``gold``, ``pred``: one value per unit (1-D).
- ``table``: units x categories counts (for :func:`fleiss_kappa`; :func:`counts_table` builds
  one from ``data``).

Values may be ints, strings or any hashable; multi-label values are sets (``set``,
``frozenset``; inside a coders x units matrix a list is read as a set too). Category order,
which matters for ordinal and weighted coefficients, is ``categories=`` when given (the
codebook order) and the sorted values otherwise.

Every coefficient is computed from per-unit additive statistics (coincidences, contingency
counts, per-unit agreement ...): :func:`prepare` returns them as a :class:`Prepared`, whose
``finalize`` maps sums of rows to values. :mod:`vsdcoder.reliability.uncertainty` (and the
evaluator) bootstrap over units with one matrix product, ``finalize(W @ per_unit)``, where W
holds how often each unit is drawn in each resample.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vsdcoder.reliability.types import MetricResult

__all__ = [
    "Prepared",
    "binarize",
    "brennan_prediger",
    "cohen_kappa",
    "confusion_matrix",
    "counts_table",
    "f1_score",
    "fleiss_kappa",
    "gwet_ac1",
    "gwet_ac2",
    "jaccard_distance",
    "krippendorff_alpha",
    "masi_distance",
    "multilabel_confusion_matrix",
    "pairs_from_table",
    "per_code_kappa",
    "per_code_scores",
    "percent_agreement",
    "prepare",
    "scott_pi",
]

#: Tolerance below which a chance-corrected denominator counts as zero.
_EPS = 1e-12


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()

LEVELS = ("nominal", "ordinal", "interval", "ratio")
SET_DISTANCES = ("masi", "jaccard")
AC2_WEIGHTS = ("identity", "linear", "quadratic", "ordinal", "radical", "ratio")


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float | np.floating) and v != v:
        return True
    return type(v).__name__ in ("NAType", "NaTType")


def _norm(v: Any) -> Any:
    """A cell value as a hashable Python value, or ``_MISSING``."""
    if isinstance(v, np.generic):
        v = v.item()
    if _is_missing(v):
        return _MISSING
    if isinstance(v, set | frozenset | list | np.ndarray):
        return frozenset(_norm(x) for x in v)
    return v


def _is_row(x: Any) -> bool:
    return isinstance(x, list | tuple | np.ndarray)


def _rows(data: Any, name: str = "data") -> list[list[Any]]:
    """A coders x units matrix as a list of equal-length rows of normalised values."""
    if hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
        data = data.to_numpy()
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"{name} must be a coders x units matrix (2-D); got {data.ndim}-D")
        data = data.tolist()
    try:
        rows = list(data)
    except TypeError:
        raise TypeError(f"{name} must be a coders x units matrix (a list of rows)") from None
    if not all(_is_row(r) for r in rows):
        raise TypeError(f"{name} must be a coders x units matrix (a list of rows, one per "
                        "coder); for two coders' 1-D codes use cohen_kappa(a, b)")
    out = [[_norm(v) for v in (r.tolist() if isinstance(r, np.ndarray) else r)] for r in rows]
    if len({len(r) for r in out}) > 1:
        raise ValueError(f"{name}: every coder's row needs one value per unit; row lengths "
                         f"differ: {[len(r) for r in out]}")
    return out


def _seq(values: Any, name: str) -> list[Any]:
    """A 1-D sequence of normalised values (one per unit)."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one value per unit); got {values.ndim}-D")
        values = values.tolist()
    if isinstance(values, str | bytes | set | frozenset | dict):
        raise TypeError(f"{name} must be a sequence of values, one per unit")
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of values, one per unit") from None
    return [_norm(v) for v in values]


def _sort_key(v: Any) -> tuple:
    if isinstance(v, frozenset):
        return (1, sorted(repr(x) for x in v))
    return (0, type(v).__name__, repr(v))


def _sorted_values(values: Any) -> list[Any]:
    values = list(values)
    if any(isinstance(v, frozenset) for v in values):
        return sorted(values, key=_sort_key)
    try:
        return sorted(values)
    except TypeError:  # mixed types: a deterministic order
        return sorted(values, key=_sort_key)


def _categories(rows: list[list[Any]], categories: Any) -> list[Any]:
    if categories is None:
        return _sorted_values({v for r in rows for v in r if v is not _MISSING})
    cats = [_norm(c) for c in categories]
    if any(c is _MISSING for c in cats):
        raise ValueError("categories must not contain missing values")
    if len(set(cats)) != len(cats):
        raise ValueError(f"categories must be distinct: {list(categories)!r}")
    return cats


def _encode(rows: list[list[Any]], categories: Any = None) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (coders x units, -1 = missing) and the category list."""
    cats = _categories(rows, categories)
    index = {c: i for i, c in enumerate(cats)}
    n_rows, n_units = len(rows), (len(rows[0]) if rows else 0)
    codes = np.full((n_rows, n_units), -1, dtype=np.intp)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is _MISSING:
                continue
            try:
                codes[i, j] = index[v]
            except KeyError:
                raise ValueError(f"value {v!r} (coder row {i}, unit {j}) is not one of the "
                                 f"categories {cats!r}") from None
    return codes, cats


def _unit_counts(codes: np.ndarray, k: int) -> np.ndarray:
    """Units x categories counts from coders x units integer codes."""
    n_units = codes.shape[1]
    counts = np.zeros((n_units, k), dtype=float)
    rows, cols = np.nonzero(codes >= 0)
    np.add.at(counts, (cols, codes[rows, cols]), 1.0)
    return counts


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _f(x: Any) -> float:
    return float(x)


# --------------------------------------------------------------------------------------------
# the prepared form every coefficient is computed from (and bootstrapped with)
# --------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A metric reduced to per-unit additive statistics.

    The coefficient on any multiset of units is ``finalize`` of the sum of those units' rows of
    ``per_unit``; this is what makes the bootstrap over units a matrix product.

    Attributes:
        per_unit: Units x statistics array.
        finalize: Maps summed statistics (``B x m``) to ``B`` values, NaN where undefined.
        build: Maps the statistics summed over all units (``m``) to the point estimate.
    """

    per_unit: np.ndarray
    finalize: Callable[[np.ndarray], np.ndarray]
    build: Callable[[np.ndarray], MetricResult]

    def result(self) -> MetricResult:
        """The point estimate on all units."""
        return self.build(self.per_unit.sum(axis=0))


def _undefined(reason: str, n_units: int | None = None, **details: Any) -> MetricResult:
    return MetricResult(value=None, reason=reason, n_units=n_units, details=details)


# --------------------------------------------------------------------------------------------
# percent agreement and the Gwet family (pairwise agreement per unit)
# --------------------------------------------------------------------------------------------

_NO_PAIRS = "no unit has values from two or more coders: nothing is pairable"


def _agreement_prepare(counts: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-unit statistics [pa_u, paired_u, pi_u (k), rated_u] (Gwet 2014, ch. 2 and 4).

    pa_u is the (weighted) share of agreeing ordered pairs of a unit's ratings, for units with
    at least two ratings; pi_u = counts / ratings, for units with at least one rating.
    """
    r = counts.sum(axis=1)
    paired = r >= 2
    rated = r >= 1
    weighted = counts if weights is None else counts @ weights.T
    pairs = np.where(paired, r * (r - 1), 1.0)
    pa_u = np.where(paired, (counts * (weighted - 1)).sum(axis=1) / pairs, 0.0)
    pi_u = np.where(rated[:, None], counts / np.where(rated, r, 1.0)[:, None], 0.0)
    return np.column_stack([pa_u, paired.astype(float), pi_u, rated.astype(float)])


def _agreement_parts(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pa, n_paired, pi (B x k), n_rated) from summed statistics."""
    sums = np.atleast_2d(sums)
    n_paired, n_rated = sums[:, 1], sums[:, -1]
    pa = _safe_div(sums[:, 0], n_paired)
    pi = _safe_div(sums[:, 2:-1], n_rated[:, None])
    return pa, n_paired, pi, n_rated


def _prepare_percent(data: Any, categories: Any = None) -> Prepared:
    rows = _rows(data)
    codes, cats = _encode(rows, categories)
    per_unit = _agreement_prepare(_unit_counts(codes, len(cats)))

    def finalize(sums: np.ndarray) -> np.ndarray:
        return _agreement_parts(sums)[0]

    def build(sums: np.ndarray) -> MetricResult:
        pa, n_paired, _pi, _ = _agreement_parts(sums)
        n = round(float(n_paired[0]))
        if n == 0:
            return _undefined(_NO_PAIRS, 0)
        return MetricResult(_f(pa[0]), n_units=n, details={"n_coders": len(rows)})

    return Prepared(per_unit, finalize, build)


def percent_agreement(data: Any, categories: Any = None) -> MetricResult:
    """Observed agreement: the share of agreeing coder pairs, averaged over units.

    For each unit rated by ``r >= 2`` coders, the share of its ``r(r-1)`` ordered pairs of
    ratings that agree, ``sum_k r_k(r_k - 1) / (r(r - 1))``; then the mean over those units
    (Fleiss 1971's P-bar; Gwet 2014 p_a). With two coders and no missing values this is the
    proportion of units coded identically. Set values agree only when equal.

    Args:
        data: Coders x units; None = missing.
        categories: Optional allowed values (a value outside them raises ValueError).

    Returns:
        The agreement in [0, 1]; ``n_units`` is the number of units with >= 2 ratings. Units
        with fewer ratings are ignored. Undefined (None) when no unit has two ratings.
    """
    return _prepare_percent(data, categories).result()


def _agreement_weights(weights: Any, q: int) -> np.ndarray:
    """A q x q agreement-weight matrix (1 on the diagonal) from a name or a matrix.

    Named weights use category positions 1..q (Gwet 2014 ch. 3; irrCAC ``Weights``).
    """
    if weights is None or (isinstance(weights, str) and weights == "identity"):
        return np.eye(q)
    if isinstance(weights, str):
        if weights not in AC2_WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; use one of {AC2_WEIGHTS} or a "
                             "q x q matrix of agreement weights")
        if q < 2:
            return np.eye(q)
        pos = np.arange(1, q + 1, dtype=float)
        d = np.abs(pos[:, None] - pos[None, :])
        if weights == "linear":
            return 1 - d / (q - 1)
        if weights == "quadratic":
            return 1 - d**2 / (q - 1) ** 2
        if weights == "radical":
            return 1 - np.sqrt(d) / math.sqrt(q - 1)
        if weights == "ordinal":
            m = (d + 1) * d / 2
            return 1 - m / m.max()
        # ratio
        m = (d / (pos[:, None] + pos[None, :])) ** 2
        return 1 - m / m.max()
    w = np.asarray(weights, dtype=float)
    if w.shape != (q, q):
        raise ValueError(f"weights must be a {q} x {q} matrix (one row/column per category); "
                         f"got shape {w.shape}")
    return w


def _prepare_gwet(data: Any, kind: str, weights: Any = None, categories: Any = None,
                  counts: np.ndarray | None = None) -> Prepared:
    cats: list[Any] | None = None
    if counts is None:
        rows = _rows(data)
        codes, cats = _encode(rows, categories)
        counts = _unit_counts(codes, len(cats))
    q = counts.shape[1]
    w = _agreement_weights(weights, q)
    t_w = float(w.sum())
    per_unit = _agreement_prepare(counts, w if weights is not None else None)

    def pe_of(pi: np.ndarray) -> np.ndarray:
        if kind == "fleiss":
            return np.einsum("bk,kl,bl->b", pi, w, pi)
        if kind == "ac1":
            return t_w * (pi * (1 - pi)).sum(axis=1) / (q * (q - 1)) if q >= 2 \
                else np.full(pi.shape[0], np.nan)
        # brennan_prediger: chance agreement of uniform assignment
        return np.full(pi.shape[0], t_w / q**2 if q >= 2 else np.nan)

    def finalize(sums: np.ndarray) -> np.ndarray:
        pa, _n_paired, pi, _ = _agreement_parts(sums)
        pe = pe_of(pi)
        value = _safe_div(pa - pe, 1 - pe)
        value[np.abs(1 - pe) <= _EPS] = np.nan
        return value

    def build(sums: np.ndarray) -> MetricResult:
        pa, n_paired, pi, n_rated = _agreement_parts(sums)
        n = round(float(n_paired[0]))
        details: dict[str, Any] = {"q": q, "n_rated_units": round(float(n_rated[0]))}
        if cats is not None:
            details["categories"] = list(cats)
        if weights is not None:
            details["weights"] = weights if isinstance(weights, str) else "matrix"
        if n == 0:
            return _undefined(_NO_PAIRS, 0, **details)
        details["pa"] = _f(pa[0])
        details["pi"] = [float(x) for x in pi[0]]
        if kind != "fleiss" and q < 2:
            return _undefined(
                f"only {q} category: {'AC1/AC2' if kind == 'ac1' else 'Brennan-Prediger'} "
                "needs q >= 2 categories; declare the codebook's categories with categories=",
                n, **details)
        pe = float(pe_of(pi)[0])
        details["pe"] = pe
        if abs(1 - pe) <= _EPS:
            return _undefined("a single category is used (chance agreement pe = 1): the "
                              "coefficient is 0/0", n, **details)
        return MetricResult(_f((pa[0] - pe) / (1 - pe)), n_units=n, details=details)

    return Prepared(per_unit, finalize, build)


def gwet_ac1(data: Any, categories: Any = None) -> MetricResult:
    """Gwet's AC1 for any number of coders, with missing values (Gwet 2008; 2014 ch. 4).

    ``AC1 = (pa - pe) / (1 - pe)`` with pa the percent agreement (see
    :func:`percent_agreement`) and chance agreement ``pe = sum_k pi_k (1 - pi_k) / (q - 1)``,
    ``pi_k`` being the mean over rated units of the share of the unit's ratings in category k.
    Unlike kappa/pi/alpha, AC1 stays stable when one category dominates (the prevalence
    paradox), which suits rare codes. Same as irrCAC ``CAC.gwet()``.

    Args:
        data: Coders x units; None = missing. Units with one rating enter pi_k only.
        categories: The codebook's categories: q = their number (q is otherwise the number of
            categories observed).

    Returns:
        AC1; ``details`` has pa, pe, pi and q. Undefined (None) when no unit has two
        ratings, or when q < 2 (a single category observed and none declared; with q >= 2
        declared, perfect agreement on one category gives 1.0).
    """
    return _prepare_gwet(data, "ac1", None, categories).result()


def gwet_ac2(data: Any, weights: Any = "quadratic", categories: Any = None) -> MetricResult:
    """Gwet's weighted AC2 for ordinal (or otherwise graded) categories (Gwet 2014 ch. 4).

    pa counts partial agreement with agreement weights ``w_kl`` (1 on the diagonal):
    ``pa_u = sum_k r_k (sum_l w_kl r_l - 1) / (r(r-1))``; chance agreement
    ``pe = T_w sum_k pi_k (1 - pi_k) / (q (q - 1))`` with ``T_w`` the sum of the weights. With
    identity weights AC2 = AC1. Same as irrCAC ``CAC(weights=...).gwet()``.

    Args:
        data: Coders x units; None = missing.
        weights: "identity", "linear", "quadratic" (default), "ordinal", "radical", "ratio"
            (from category positions 1..q, as irrCAC does for non-numeric categories) or a
            q x q matrix of agreement weights.
        categories: Category order (codebook order); sorted values otherwise. Their number is q.

    Returns:
        AC2, or None with a reason in the undefined cases of :func:`gwet_ac1`.
    """
    return _prepare_gwet(data, "ac1", weights, categories).result()


def brennan_prediger(data: Any, categories: Any = None, weights: Any = None) -> MetricResult:
    """Brennan & Prediger's (1981) free-marginal kappa (Randolph's kappa for many coders).

    ``BP = (pa - 1/q) / (1 - 1/q)``: chance agreement assumes every category equally likely
    (weighted: ``pe = T_w / q^2``). Same as irrCAC ``CAC.bp()`` and statsmodels
    ``fleiss_kappa(table, method="randolph")`` for complete data.

    Args:
        data: Coders x units; None = missing.
        categories: The codebook's categories; q = their number (else q observed).
        weights: Optional agreement weights, as in :func:`gwet_ac2`.

    Returns:
        The coefficient, or None when no unit has two ratings or q < 2.
    """
    return _prepare_gwet(data, "bp", weights, categories).result()


def _check_table(table: Any) -> np.ndarray:
    msg = ("fleiss_kappa takes a units x categories table of COUNTS (how many coders chose each "
           "category for each unit), not raw ratings; build one with counts_table(data)")
    try:
        t = np.asarray(table, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(msg) from None
    if t.ndim != 2:
        raise ValueError(f"{msg}; got a {t.ndim}-D array")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or not np.allclose(t, np.round(t)):
        raise ValueError(f"{msg}; counts must be non-negative whole numbers")
    return t


def counts_table(data: Any, categories: Any = None) -> np.ndarray:
    """Units x categories counts from coders x units ratings (input of :func:`fleiss_kappa`).

    Args:
        data: Coders x units; None = missing.
        categories: Column order; sorted values otherwise.

    Returns:
        An integer array, one row per unit and one column per category.
    """
    codes, cats = _encode(_rows(data), categories)
    return _unit_counts(codes, len(cats)).astype(int)


def _prepare_fleiss(table: Any) -> Prepared:
    return _prepare_gwet(None, "fleiss", None, None, counts=_check_table(table))


def fleiss_kappa(table: Any) -> MetricResult:
    """Fleiss' (1971) kappa from a units x categories table of counts.

    ``kappa = (P_bar - P_e) / (1 - P_e)``: P_bar is the mean over units of the share of
    agreeing rater pairs, ``P_e = sum_j p_j^2`` with p_j the mean share of a unit's ratings in
    category j. Rows may have different totals (units rated by different numbers of coders,
    Gwet's 2014 generalisation, as irrCAC ``CAC.fleiss()``); rows with fewer than two ratings
    enter p_j only. With equal row totals this is statsmodels' ``fleiss_kappa``. With two
    raters it equals Scott's pi.

    Args:
        table: Units x categories counts (see :func:`counts_table`). Raw ratings are refused
            when they are not whole non-negative numbers; a small raw matrix of codes can look
            like counts, so build the table with :func:`counts_table`.

    Returns:
        Kappa; ``details`` has pa (P_bar), pe (P_e) and pi (p_j). Undefined (None) when no unit
        has two ratings or a single category is used (P_e = 1).
    """
    return _prepare_fleiss(table).result()


# --------------------------------------------------------------------------------------------
# two coders: Cohen's kappa, Scott's pi
# --------------------------------------------------------------------------------------------


def _prepare_pair(a: Any, b: Any, categories: Any, weights: str | None = None
                  ) -> tuple[np.ndarray, list[Any], int, np.ndarray]:
    """Per unit: [disagreement weight, agree, both coded, one-hot a (k), one-hot b (k)].

    Zero rows for units not coded by both (pairwise deletion); also returns the categories and
    the k x k disagreement weights.
    """
    va, vb = _seq(a, "a"), _seq(b, "b")
    if len(va) != len(vb):
        raise ValueError(f"a and b need one value per unit each; lengths {len(va)} != {len(vb)}")
    codes, cats = _encode([va, vb], categories)
    k = len(cats)
    dw = _disagreement_weights(weights, k)
    both = np.nonzero((codes >= 0).all(axis=0))[0]
    ca, cb = codes[0, both], codes[1, both]
    per_unit = np.zeros((codes.shape[1], 3 + 2 * k))
    per_unit[both, 0] = dw[ca, cb]
    per_unit[both, 1] = (ca == cb).astype(float)
    per_unit[both, 2] = 1.0
    per_unit[both, 3 + ca] = 1.0
    per_unit[both, 3 + k + cb] = 1.0
    return per_unit, cats, k, dw


def _pair_parts(sums: np.ndarray, k: int):
    """(n, observed disagreement, po, marginal shares of a and of b) from summed statistics."""
    s = np.atleast_2d(sums)
    n = s[:, 2]
    return (n, _safe_div(s[:, 0], n), _safe_div(s[:, 1], n),
            _safe_div(s[:, 3:3 + k], n[:, None]), _safe_div(s[:, 3 + k:], n[:, None]))


def _disagreement_weights(weights: str | None, k: int) -> np.ndarray:
    pos = np.arange(k, dtype=float)
    d = np.abs(pos[:, None] - pos[None, :])
    if weights is None:
        return (d > 0).astype(float)
    if weights == "linear":
        return d
    if weights == "quadratic":
        return d**2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic'; got {weights!r}")


_NO_UNITS = "no unit was coded by both coders"


def _prepare_cohen(a: Any, b: Any, weights: str | None = None,
                   categories: Any = None) -> Prepared:
    per_unit, cats, k, dw = _prepare_pair(a, b, categories, weights)

    def parts(sums: np.ndarray):
        n, do, po, pa, pb = _pair_parts(sums, k)
        de = np.einsum("bk,kl,bl->b", pa, dw, pb)
        return n, do, de, po, (pa * pb).sum(axis=1)

    def finalize(sums: np.ndarray) -> np.ndarray:
        _n, do, de, _po, _pe = parts(sums)
        value = 1 - _safe_div(do, de)
        value[~(de > _EPS)] = np.nan
        return value

    def build(sums: np.ndarray) -> MetricResult:
        n, do, de, po, pe = parts(sums)
        nn = round(float(n[0]))
        details: dict[str, Any] = {"weights": weights, "categories": list(cats)}
        if nn == 0:
            return _undefined(_NO_UNITS, 0, **details)
        details["po"] = float(po[0])
        details["pe"] = float(pe[0])
        if weights is not None:
            details["observed_disagreement"] = float(do[0])
            details["expected_disagreement"] = float(de[0])
        if not de[0] > _EPS:
            return _undefined("both coders use a single, same category (chance agreement "
                              "pe = 1): kappa is 0/0", nn, **details)
        return MetricResult(_f(1 - do[0] / de[0]), n_units=nn, details=details)

    return Prepared(per_unit, finalize, build)


def cohen_kappa(a: Any, b: Any, weights: str | None = None,
                categories: Any = None) -> MetricResult:
    """Cohen's (1960) kappa for two coders; weighted kappa (Cohen 1968) with ``weights``.

    ``kappa = (po - pe) / (1 - pe)`` with pe from the product of each coder's own marginals;
    weighted: ``1 - sum(w O) / sum(w E)`` with disagreement weights ``|i - j|`` (linear) or
    ``(i - j)^2`` (quadratic) over category positions. Same as scikit-learn
    ``cohen_kappa_score`` and statsmodels ``cohens_kappa``.

    Args:
        a: One coder's values, one per unit (None = missing).
        b: The other coder's values.
        weights: None, "linear" or "quadratic".
        categories: Category order (codebook order) for weighted kappa; sorted values otherwise.

    Returns:
        Kappa over the units both coders coded (pairwise deletion); ``details`` has po, pe.
        Undefined (None) when no unit has both values, or both coders use one same category
        (pe = 1).
    """
    return _prepare_cohen(a, b, weights, categories).result()


def _prepare_scott(a: Any, b: Any, categories: Any = None) -> Prepared:
    per_unit, _cats, k, _dw = _prepare_pair(a, b, categories)

    def parts(sums: np.ndarray):
        n, _do, po, pa, pb = _pair_parts(sums, k)
        pe = (((pa + pb) / 2) ** 2).sum(axis=1)
        return n, po, pe

    def finalize(sums: np.ndarray) -> np.ndarray:
        _n, po, pe = parts(sums)
        value = _safe_div(po - pe, 1 - pe)
        value[~(1 - pe > _EPS)] = np.nan
        return value

    def build(sums: np.ndarray) -> MetricResult:
        n, po, pe = parts(sums)
        nn = round(float(n[0]))
        if nn == 0:
            return _undefined(_NO_UNITS, 0)
        details = {"po": float(po[0]), "pe": float(pe[0])}
        if not 1 - pe[0] > _EPS:
            return _undefined("a single category is used (chance agreement pe = 1): pi is 0/0",
                              nn, **details)
        return MetricResult(_f((po[0] - pe[0]) / (1 - pe[0])), n_units=nn, details=details)

    return Prepared(per_unit, finalize, build)


def scott_pi(a: Any, b: Any, categories: Any = None) -> MetricResult:
    """Scott's (1955) pi for two coders.

    ``pi = (po - pe) / (1 - pe)`` with ``pe = sum_k p_k^2``, p_k the pooled share of both
    coders' values in category k (one distribution for both coders, unlike Cohen's kappa).

    Args:
        a: One coder's values, one per unit (None = missing).
        b: The other coder's values.
        categories: Optional allowed values.

    Returns:
        Pi over the units both coders coded (pairwise deletion); undefined (None) when no
        unit has both values or a single category is used.
    """
    return _prepare_scott(a, b, categories).result()


def pairs_from_table(table: Any, categories: Any = None) -> tuple[list[Any], list[Any]]:
    """Two coders' value lists reproducing a contingency table (rows: coder a, cols: coder b).

    Args:
        table: k x k counts.
        categories: Labels of the rows/columns; 0..k-1 otherwise.

    Returns:
        ``(a, b)``, one entry per counted unit.
    """
    t = np.asarray(table)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError("table must be a square k x k contingency table")
    labels = list(categories) if categories is not None else list(range(t.shape[0]))
    a: list[Any] = []
    b: list[Any] = []
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            c = int(t[i, j])
            a += [labels[i]] * c
            b += [labels[j]] * c
    return a, b


# --------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------


def masi_distance(x: Any, y: Any) -> float:
    """MASI distance between two label sets (Passonneau 2006): ``1 - J * M``.

    J is the Jaccard index; M = 1 for identical sets, 2/3 when one is a subset of the other,
    1/3 when they overlap otherwise, 0 when disjoint. Two empty sets are identical (0).
    """
    x, y = frozenset(x), frozenset(y)
    if x == y:
        return 0.0
    inter = len(x & y)
    if inter == 0:
        return 1.0
    m = 2 / 3 if inter == min(len(x), len(y)) else 1 / 3
    return 1 - inter / len(x | y) * m


def jaccard_distance(x: Any, y: Any) -> float:
    """Jaccard distance ``1 - |x & y| / |x | y|`` between two label sets (0 for two empty sets)."""
    x, y = frozenset(x), frozenset(y)
    union = len(x | y)
    return 0.0 if union == 0 else 1 - len(x & y) / union


def _as_set(v: Any) -> Any:
    if v is _MISSING or isinstance(v, frozenset):
        return v
    return frozenset([v])


def _ordinal_delta(nc: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal distance per resample: (sum_{g=c..k} n_g - (n_c + n_k)/2)^2."""
    k = nc.shape[1]
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    cum = np.cumsum(nc, axis=1)
    between = cum[:, hi] - cum[:, lo] + nc[:, lo]
    return (between - (nc[:, :, None] + nc[:, None, :]) / 2) ** 2


def _numeric(cats: list[Any], level: str) -> np.ndarray:
    bad = [c for c in cats if not isinstance(c, numbers.Real) or isinstance(c, bool)]
    if bad:
        raise TypeError(f"{level} alpha needs numeric values; got {bad[:3]!r}. For ordered "
                        "code names use level='ordinal' with categories= in codebook order")
    return np.asarray(cats, dtype=float)


def _prepare_alpha(data: Any, level: str = "nominal", distance: Any = None,
                   categories: Any = None) -> Prepared:
    rows = _rows(data)
    if distance is not None:
        if isinstance(distance, str):
            if distance not in SET_DISTANCES:
                raise ValueError(f"distance must be one of {SET_DISTANCES} or a function; "
                                 f"got {distance!r}")
            rows = [[_as_set(v) for v in r] for r in rows]
            fn = masi_distance if distance == "masi" else jaccard_distance
            categories = None
        else:
            fn = distance
        label = distance if isinstance(distance, str) else getattr(distance, "__name__", "custom")
    elif level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
    else:
        label = level
    codes, cats = _encode(rows, categories)
    k = len(cats)
    counts = _unit_counts(codes, k)
    m = counts.sum(axis=1)
    pairable = m >= 2
    inv = np.where(pairable, 1 / np.where(pairable, m - 1, 1), 0.0)
    delta: np.ndarray | None
    if distance is not None:
        delta = np.array([[float(fn(x, y)) for y in cats] for x in cats]).reshape(k, k)
    elif level == "nominal":
        delta = 1.0 - np.eye(k)
    elif level == "ordinal":
        delta = None
    else:
        v = _numeric(cats, level)
        if level == "interval":
            delta = (v[:, None] - v[None, :]) ** 2
        else:
            s = v[:, None] + v[None, :]
            delta = _safe_div(v[:, None] - v[None, :], s) ** 2
            delta[s == 0] = 0.0

    if delta is None:
        # ordinal: the distance depends on the marginals, so keep each unit's coincidences
        coinc = counts[:, :, None] * counts[:, None, :]
        idx = np.arange(k)
        coinc[:, idx, idx] -= counts
        per_unit = (coinc * inv[:, None, None]).reshape(len(m), k * k)
    else:
        # per unit: its share of sum o_ck d_ck, then its pairable values per category
        do_u = inv * (np.einsum("uc,cd,ud->u", counts, delta, counts)
                      - counts @ np.diagonal(delta))
        per_unit = np.column_stack([do_u, counts * pairable[:, None]])

    def parts(sums: np.ndarray):
        s = np.atleast_2d(sums)
        if delta is None:
            o = s.reshape(s.shape[0], k, k)
            nc = o.sum(axis=2)
            d = _ordinal_delta(nc)
            do_num = (o * d).sum(axis=(1, 2))
            de_num = np.einsum("bc,bcd,bd->b", nc, d, nc)
        else:
            do_num, nc = s[:, 0], s[:, 1:]
            de_num = np.einsum("bc,cd,bd->b", nc, delta, nc)
        return nc.sum(axis=1), do_num, de_num

    def finalize(sums: np.ndarray) -> np.ndarray:
        n, do_num, de_num = parts(sums)
        value = 1 - (n - 1) * _safe_div(do_num, de_num)
        value[~(de_num > 0)] = np.nan
        return value

    def build(sums: np.ndarray) -> MetricResult:
        n, do_num, de_num = parts(sums)
        n_units = int(pairable.sum())
        details: dict[str, Any] = {"level": label, "n_coders": len(rows),
                                   "n_pairable_values": round(float(n[0]))}
        if n[0] == 0:
            return _undefined(_NO_PAIRS, 0, **details)
        details["Do"] = float(do_num[0] / n[0])
        details["De"] = float(de_num[0] / (n[0] * (n[0] - 1)))
        if not de_num[0] > 0:
            return _undefined("all pairable values are the same (expected disagreement De = 0):"
                              " alpha is 0/0", n_units, **details)
        return MetricResult(_f(1 - (n[0] - 1) * do_num[0] / de_num[0]), n_units=n_units,
                            details=details)

    return Prepared(per_unit, finalize, build)


def krippendorff_alpha(data: Any, level: str = "nominal", distance: Any = None,
                       categories: Any = None) -> MetricResult:
    """Krippendorff's alpha for any number of coders, with missing values.

    ``alpha = 1 - Do / De`` from the coincidence matrix ``o_ck`` of pairable values (each unit
    with ``m_u >= 2`` values contributes ``n_uc n_uk / (m_u - 1)``, minus self-pairs):
    ``Do = sum o_ck d_ck / n`` and ``De = sum n_c n_k d_ck / (n (n - 1))`` (Krippendorff 2011,
    "Computing Krippendorff's alpha-reliability"). Distances d: nominal (0/1), ordinal
    (``(sum_{g=c..k} n_g - (n_c + n_k)/2)^2``, ranks from ``categories``), interval
    (``(c - k)^2``), ratio (``((c - k)/(c + k))^2``); for multi-label units given as sets,
    ``distance="masi"`` (Passonneau 2006) or ``"jaccard"`` gives partial credit, and any
    function ``d(x, y)`` is accepted. Same as the ``krippendorff`` package (levels) and NLTK's
    ``AnnotationTask.alpha`` (set distances).

    Args:
        data: Coders x units; None = missing. Set distances read each value as a set (a
            single code becomes a one-element set).
        level: "nominal", "ordinal", "interval" or "ratio" (ignored when ``distance`` is given).
            Interval and ratio need numbers.
        distance: "masi", "jaccard" or a function of two values.
        categories: Category order for ordinal alpha (codebook order); sorted values otherwise.

    Returns:
        Alpha over the pairable values (units with one value are ignored); ``details`` has Do,
        De and n_pairable_values. Undefined (None) when nothing is pairable, or all pairable
        values are equal (De = 0).
    """
    return _prepare_alpha(data, level, distance, categories).result()


# --------------------------------------------------------------------------------------------
# per-code agreement
# --------------------------------------------------------------------------------------------


def _present(v: Any, code: Any) -> Any:
    if v is _MISSING:
        return None
    if isinstance(v, frozenset):
        return int(code in v)
    return int(v == code)


def binarize(data: Any, code: Any) -> list[Any]:
    """Presence (1) or absence (0) of ``code`` in each value; None stays None.

    A set value contains the code or not (multi-label); a single value equals it or not.

    Args:
        data: Coders x units (a list of rows or a 2-D array) or one value per unit (1-D; give
            multi-label values as sets, since a list of lists reads as a matrix).
        code: The code to test for.

    Returns:
        Lists of 1/0/None with the shape of ``data``.
    """
    code = _norm(code)
    two_d = (isinstance(data, np.ndarray) and data.ndim == 2) or (
        not isinstance(data, np.ndarray) and not hasattr(data, "to_numpy")
        and len(data) > 0 and all(_is_row(r) for r in data))
    if two_d:
        return [[_present(v, code) for v in r] for r in _rows(data)]
    return [_present(v, code) for v in _seq(data, "data")]


def _prepare_per_code_kappa(data: Any, code: Any, method: str = "fleiss") -> Prepared:
    b = binarize(_rows(data), code)
    if method == "fleiss":
        codes, _ = _encode(_rows(b), [0, 1])
        prep = _prepare_gwet(None, "fleiss", counts=_unit_counts(codes, 2))
    elif method == "cohen":
        if len(b) != 2:
            raise ValueError(f"method='cohen' needs exactly two coders; got {len(b)}")
        prep = _prepare_cohen(b[0], b[1], None, [0, 1])
    else:
        raise ValueError(f"method must be 'fleiss' or 'cohen'; got {method!r}")
    inner = prep.build

    def build(sums: np.ndarray) -> MetricResult:
        res = inner(sums)
        details = {**res.details, "code": code, "method": method}
        if res.value is None and res.n_units:
            return MetricResult(None, reason=f"code {code!r} is used in every rating or in none:"
                                " kappa on its presence is 0/0", n_units=res.n_units,
                                details=details)
        return MetricResult(res.value, res.ci, res.reason, res.n_units, details)

    return Prepared(prep.per_unit, prep.finalize, build)


def per_code_kappa(data: Any, code: Any, method: str = "fleiss") -> MetricResult:
    """Agreement on one code: kappa on its presence/absence (one code vs the rest).

    ``method="fleiss"`` (default): the category-specific kappa of Fleiss (1971),
    ``kappa_j = (P_j - p_j) / (1 - p_j)`` in the form computed by :func:`fleiss_kappa` on the
    two-column table (code, not code), any number of coders; for two coders it is Scott's pi
    on the binarised code (Agresti 1992 p. 202; dkpro-statistics category agreement).
    ``method="cohen"``: Cohen's kappa on the binarised code for exactly two coders (e.g. gold
    vs LLM). Multi-label values (sets) are binarised by membership.

    Missing values: "fleiss" as :func:`fleiss_kappa` (a unit rated once enters the code's
    prevalence only, so with two coders and missing values it differs slightly from Scott's pi
    with pairwise deletion); "cohen" uses pairwise deletion.

    Args:
        data: Coders x units; None = missing.
        code: The code.
        method: "fleiss" or "cohen".

    Returns:
        The kappa; undefined (None) when the code is used in every rating or in none (a single
        category) or nothing is pairable.
    """
    return _prepare_per_code_kappa(data, code, method).result()


# --------------------------------------------------------------------------------------------
# gold vs predictions: precision, recall, F1, confusion matrices
# --------------------------------------------------------------------------------------------


def _gold_pred(gold: Any, pred: Any, missing: str) -> tuple[list[Any], list[Any], int, int]:
    g, p = _seq(gold, "gold"), _seq(pred, "pred")
    if len(g) != len(p):
        raise ValueError(f"gold and pred need one value per unit each; lengths {len(g)} != "
                         f"{len(p)}")
    if missing not in ("drop", "miss"):
        raise ValueError(f"missing must be 'drop' or 'miss'; got {missing!r}")
    n_gold_missing = sum(v is _MISSING for v in g)
    n_pred_missing = sum(x is not _MISSING and y is _MISSING for x, y in zip(g, p, strict=True))
    keep = [(x, y) for x, y in zip(g, p, strict=True) if x is not _MISSING
            and (y is not _MISSING or missing == "miss")]
    return [x for x, _ in keep], [y for _, y in keep], n_gold_missing, n_pred_missing


def _labels_of(values: list[Any]) -> set[Any]:
    out: set[Any] = set()
    for v in values:
        if v is _MISSING:
            continue
        if isinstance(v, frozenset):
            out |= v
        else:
            out.add(v)
    return out


def _indicators(values: list[Any], labels: list[Any]) -> np.ndarray:
    index = {c: i for i, c in enumerate(labels)}
    ind = np.zeros((len(values), len(labels)), dtype=bool)
    for u, v in enumerate(values):
        if v is _MISSING:
            continue
        for c in (v if isinstance(v, frozenset) else (v,)):
            j = index.get(c)
            if j is not None:
                ind[u, j] = True
    return ind


def _tp_fp_fn(g: list[Any], p: list[Any], labels: list[Any]) -> np.ndarray:
    """Per unit: [tp (L), fp (L), fn (L)] as floats."""
    gi, pi = _indicators(g, labels), _indicators(p, labels)
    return np.hstack([gi & pi, ~gi & pi, gi & ~pi]).astype(float)


def _resolve_labels(g: list[Any], p: list[Any], labels: Any) -> list[Any]:
    if labels is None:
        return _sorted_values(_labels_of(g) | _labels_of(p))
    return [_norm(c) for c in labels]


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, zero_division: float):
    """Precision, recall, F1 along the last axis, ``zero_division`` where 0/0 (sklearn)."""
    def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.full(np.broadcast(a, b).shape, float(zero_division))
        np.divide(a, b, out=out, where=b > 0)
        return out

    return div(tp, tp + fp), div(tp, tp + fn), div(2 * tp, 2 * tp + fp + fn)


def _averages(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, zero_division: float
              ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Macro, micro and weighted precision/recall/F1 (last axis = labels)."""
    prec, rec, f1 = _prf(tp, fp, fn, zero_division)
    support = tp + fn
    tot = support.sum(axis=-1)

    def weighted(x: np.ndarray) -> np.ndarray:
        out = np.full(tot.shape, float(zero_division))
        np.divide((x * support).sum(axis=-1), tot, out=out, where=tot > 0)
        return out

    n_labels = tp.shape[-1]
    macro = tuple(x.mean(axis=-1) if n_labels else np.full(tot.shape, float(zero_division))
                  for x in (prec, rec, f1))
    micro = _prf(tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1), zero_division)
    return {"macro": macro, "micro": micro,  # type: ignore[dict-item]
            "weighted": (weighted(prec), weighted(rec), weighted(f1))}


def per_code_scores(gold: Any, pred: Any, labels: Any = None, *, zero_division: float = 0.0,
                    missing: str = "drop") -> dict[str, Any]:
    """Per-code precision, recall, F1 and support of ``pred`` against ``gold`` (one-vs-rest).

    Semantics of scikit-learn's ``precision_recall_fscore_support``: for each code, precision
    ``tp / (tp + fp)``, recall ``tp / (tp + fn)``, F1 ``2 tp / (2 tp + fp + fn)``, support
    ``tp + fn``; macro = unweighted mean over ``labels`` (codes absent from the data included,
    with their zero scores), micro = from the summed counts over ``labels``, weighted = mean
    weighted by support. A ratio 0/0 (a code never predicted, or never in gold) is
    ``zero_division`` (0.0, scikit-learn's default). Multi-label values (sets) are scored code
    by code by membership, as scikit-learn does with indicator matrices; a single value is a
    one-code set. Values not in ``labels`` count for nothing.

    Args:
        gold: Reference values, one per unit (None = missing: the unit is skipped).
        pred: Predicted values, one per unit.
        labels: Codes to score, in order; default: sorted codes seen in gold or pred.
        zero_division: 0.0 or 1.0, the value of a 0/0 ratio.
        missing: What a missing prediction (with gold present) means: "drop" (default) skips
            the unit; "miss" counts it as predicting no code (a false negative).

    Returns:
        A dict: ``labels``; ``per_code`` {code: {precision, recall, f1, support, tp, fp, fn}};
        ``macro``, ``micro``, ``weighted`` {precision, recall, f1}; ``accuracy`` (exact match,
        None when no unit is scored); ``n_units`` scored; ``n_missing_gold``;
        ``n_missing_pred``; ``multilabel``.
    """
    if zero_division not in (0, 1):
        raise ValueError("zero_division must be 0.0 or 1.0")
    g, p, n_mg, n_mp = _gold_pred(gold, pred, missing)
    labs = _resolve_labels(g, p, labels)
    stats = _tp_fp_fn(g, p, labs).sum(axis=0) if g else np.zeros(3 * len(labs))
    n_l = len(labs)
    tp, fp, fn = stats[:n_l], stats[n_l:2 * n_l], stats[2 * n_l:]
    prec, rec, f1 = _prf(tp, fp, fn, zero_division)
    avgs = _averages(tp, fp, fn, zero_division)
    per_code = {c: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                    "support": int(tp[i] + fn[i]), "tp": int(tp[i]), "fp": int(fp[i]),
                    "fn": int(fn[i])} for i, c in enumerate(labs)}
    out: dict[str, Any] = {"labels": labs, "per_code": per_code}
    for name, (pr, rc, ff) in avgs.items():
        out[name] = {"precision": float(pr), "recall": float(rc), "f1": float(ff)}
    out["accuracy"] = (sum(x == y for x, y in zip(g, p, strict=True)) / len(g)) if g else None
    out.update(n_units=len(g), n_missing_gold=n_mg, n_missing_pred=n_mp,
               multilabel=any(isinstance(v, frozenset) for v in g + p))
    return out


def _prepare_f1(gold: Any, pred: Any, code: Any = None, labels: Any = None,
                average: str = "macro", missing: str = "drop") -> Prepared:
    if average not in ("macro", "micro", "weighted"):
        raise ValueError(f"average must be 'macro', 'micro' or 'weighted'; got {average!r}")
    g, p, _, _ = _gold_pred(gold, pred, missing)
    labs = [_norm(code)] if code is not None else _resolve_labels(g, p, labels)
    n_l = len(labs)
    # one row per unit (zeros where skipped), so the bootstrap resamples all units
    ga, pa = _seq(gold, "gold"), _seq(pred, "pred")
    scored = [x is not _MISSING and (y is not _MISSING or missing == "miss")
              for x, y in zip(ga, pa, strict=True)]
    per_unit = np.zeros((len(ga), 3 * n_l))
    if g:
        per_unit[np.nonzero(scored)[0]] = _tp_fp_fn(g, p, labs)

    def split(sums: np.ndarray):
        s = np.atleast_2d(sums)
        return s[:, :n_l], s[:, n_l:2 * n_l], s[:, 2 * n_l:]

    def finalize(sums: np.ndarray) -> np.ndarray:
        tp, fp, fn = split(sums)
        if code is not None:
            return _safe_div(2 * tp[:, 0], (2 * tp + fp + fn)[:, 0])
        value = _averages(tp, fp, fn, 0.0)[average][2]
        value[(tp + fp + fn).sum(axis=1) == 0] = np.nan
        return value

    def build(sums: np.ndarray) -> MetricResult:
        tp, fp, fn = split(sums)
        details = {"average": None if code is not None else average, "code": code,
                   "labels": labs}
        if not g:
            return _undefined("no unit has both a gold value and a prediction", 0, **details)
        if (tp + fp + fn).sum() == 0:
            return _undefined(f"{'code ' + repr(code) if code is not None else 'no code'} is "
                              "used by neither gold nor pred: F1 is 0/0", len(g), **details)
        return MetricResult(_f(finalize(sums)[0]), n_units=len(g), details=details)

    return Prepared(per_unit, finalize, build)


def f1_score(gold: Any, pred: Any, code: Any = None, labels: Any = None,
             average: str = "macro", missing: str = "drop") -> MetricResult:
    """F1 of ``pred`` against ``gold`` as a :class:`MetricResult` (so it can be bootstrapped).

    One code's F1 ``2 tp / (2 tp + fp + fn)`` when ``code`` is given, else the ``average``
    ("macro", "micro", "weighted") over ``labels`` as in :func:`per_code_scores`.

    Args:
        gold: Reference values, one per unit (None = missing).
        pred: Predicted values.
        code: One code to score.
        labels: Codes averaged over (default: seen in gold or pred).
        average: "macro", "micro" or "weighted".
        missing: "drop" or "miss", as in :func:`per_code_scores`.

    Returns:
        The F1; undefined (None) when no unit is scored or the code(s) are used by neither.
    """
    return _prepare_f1(gold, pred, code, labels, average, missing).result()


def confusion_matrix(gold: Any, pred: Any, labels: Any = None) -> np.ndarray:
    """Confusion matrix: rows = gold, columns = pred, in ``labels`` order (scikit-learn layout).

    Units with a missing value are skipped; pairs with a value outside ``labels`` are not
    counted. Single-label values only (see :func:`multilabel_confusion_matrix`).

    Args:
        gold: Reference values, one per unit.
        pred: Predicted values.
        labels: Row/column order; default: sorted values seen in gold or pred.

    Returns:
        An integer array, labels x labels.
    """
    g, p, _, _ = _gold_pred(gold, pred, "drop")
    if any(isinstance(v, frozenset) for v in g + p):
        raise TypeError("confusion_matrix takes single-label values; for sets use "
                        "multilabel_confusion_matrix")
    labs = _resolve_labels(g, p, labels)
    index = {c: i for i, c in enumerate(labs)}
    out = np.zeros((len(labs), len(labs)), dtype=int)
    for x, y in zip(g, p, strict=True):
        if x in index and y in index:
            out[index[x], index[y]] += 1
    return out


def multilabel_confusion_matrix(gold: Any, pred: Any, labels: Any = None) -> np.ndarray:
    """Per-code 2 x 2 matrices ``[[tn, fp], [fn, tp]]`` (scikit-learn layout), labels x 2 x 2.

    Args:
        gold: Reference values (sets or single codes), one per unit; missing units skipped.
        pred: Predicted values.
        labels: Codes, in order; default: sorted codes seen.

    Returns:
        An integer array of shape (len(labels), 2, 2).
    """
    g, p, _, _ = _gold_pred(gold, pred, "drop")
    labs = _resolve_labels(g, p, labels)
    gi, pi = _indicators(g, labs), _indicators(p, labs)
    tp = (gi & pi).sum(0)
    fp = (~gi & pi).sum(0)
    fn = (gi & ~pi).sum(0)
    tn = (~gi & ~pi).sum(0)
    return np.stack([np.stack([tn, fp], -1), np.stack([fn, tp], -1)], 1).astype(int)


# --------------------------------------------------------------------------------------------
# the prepared form of each public coefficient (used by uncertainty.bootstrap_ci)
# --------------------------------------------------------------------------------------------

PREPARERS: dict[Callable[..., Any], Callable[..., Prepared]] = {
    percent_agreement: _prepare_percent,
    cohen_kappa: _prepare_cohen,
    scott_pi: _prepare_scott,
    fleiss_kappa: _prepare_fleiss,
    krippendorff_alpha: _prepare_alpha,
    gwet_ac1: lambda data, categories=None: _prepare_gwet(data, "ac1", None, categories),
    gwet_ac2: lambda data, weights="quadratic", categories=None: _prepare_gwet(
        data, "ac1", weights, categories),
    brennan_prediger: lambda data, categories=None, weights=None: _prepare_gwet(
        data, "bp", weights, categories),
    per_code_kappa: _prepare_per_code_kappa,
    f1_score: _prepare_f1,
}


def prepare(metric: Callable[..., Any], *args: Any, **kwargs: Any) -> Prepared | None:
    """The per-unit prepared form of a built-in coefficient, or None for other functions."""
    fn = PREPARERS.get(metric)
    return None if fn is None else fn(*args, **kwargs)
