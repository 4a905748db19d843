"""Uncertainty of agreement coefficients: bootstrap intervals over units, permutation tests.

- :func:`bootstrap_ci` resamples units (columns of a coders x units matrix) with replacement
  and returns the coefficient with a percentile (or BCa) confidence interval.
- :func:`permutation_test` asks, per code, whether a coder (an LLM) agrees with gold more than
  chance would: kappa on the code's presence, against kappas with the predictions shuffled
  over units.

Both are seeded and deterministic: the same seed gives the same interval and p-value.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from statistics import NormalDist
from typing import Any

import numpy as np

from vsdcoder.reliability import metrics as _m
from vsdcoder.reliability.types import MetricResult

__all__ = ["bootstrap_ci", "permutation_test"]

#: Resamples evaluated per block (bounds memory: block x units weights).
_BLOCK = 256


def _resolve(metric: Any, kwargs: dict[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The function behind a metric given as a function, a registered name or a plugin wrapper."""
    if isinstance(metric, str):
        from vsdcoder.plugins import get_registry

        metrics = get_registry().metrics
        if metric not in metrics:
            raise ValueError(f"unknown metric {metric!r}; registered: {sorted(metrics)}")
        metric = metrics[metric].obj
    if isinstance(metric, functools.partial) and not metric.args:
        return _resolve(metric.func, {**metric.keywords, **kwargs})
    target = getattr(metric, "__vsdcoder_metric__", None)
    if target is not None:  # a built-in plugin's thin wrapper: call the real function
        name, fixed = target
        return getattr(_m, name), {**fixed, **kwargs}
    return metric, kwargs


def _index_blocks(rng: np.random.Generator, n: int, n_units: int) -> Iterator[np.ndarray]:
    for start in range(0, n, _BLOCK):
        yield rng.integers(0, n_units, size=(min(_BLOCK, n - start), n_units))


def _weights(idx: np.ndarray, n_units: int) -> np.ndarray:
    """How often each unit is drawn in each resample (resamples x units)."""
    b = idx.shape[0]
    flat = (np.arange(b)[:, None] * n_units + idx).ravel()
    return np.bincount(flat, minlength=b * n_units).reshape(b, n_units).astype(float)


def _is_matrix(a: Any) -> bool:
    if isinstance(a, np.ndarray):
        return a.ndim == 2
    try:
        return len(a) > 0 and all(isinstance(r, list | tuple | np.ndarray) for r in a)
    except TypeError:
        return False


def _n_along(a: Any, axis: int) -> int:
    if _is_matrix(a):
        rows = list(a)
        return len(rows) if axis == 0 else len(rows[0])
    return len(a)


def _take(a: Any, idx: np.ndarray, axis: int) -> Any:
    """Units ``idx`` of an array: columns of a matrix (rows with ``units_axis=0``), or items."""
    if isinstance(a, np.ndarray):
        return np.take(a, idx, axis=axis if a.ndim == 2 else 0)
    if _is_matrix(a):
        rows = list(a)
        if axis == 0:
            return [rows[i] for i in idx]
        return [[row[i] for i in idx] for row in rows]
    seq = list(a)
    return [seq[i] for i in idx]


def _value(res: Any) -> float:
    v = res.value if isinstance(res, MetricResult) else res
    return np.nan if v is None else float(v)


def bootstrap_ci(metric: Any, *arrays: Any, n: int = 1000, seed: int = 0, level: float = 0.95,
                 interval: str = "percentile", units_axis: int = -1, fast: bool = True,
                 metric_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> MetricResult:
    """A coefficient with a bootstrap confidence interval over units.

    Units are resampled with replacement (``n`` resamples of as many units as the data has,
    drawn with ``numpy.random.default_rng(seed)``) and the coefficient is recomputed on each;
    every array is resampled with the same units. The interval is the percentile interval
    (the ``(1-level)/2`` and ``(1+level)/2`` quantiles of the resampled values, linear
    interpolation; Efron & Tibshirani 1993 ch. 13) or, with ``interval="bca"``, the
    bias-corrected and accelerated interval (ch. 14; acceleration from the jackknife over
    units). Resamples where the coefficient is undefined (say, a resample with one category)
    are left out and counted in ``details["bootstrap"]["n_undefined"]``.

    Built-in coefficients are recomputed from their per-unit statistics (one matrix product
    per block of resamples), with the categories fixed to those of the full data (or the
    declared ``categories=``): q for AC1/BP and weights' spacing stay those of the data. Any
    other function returning a :class:`MetricResult` (or a float) is called on each
    resampled data set.

    ``level`` here is the confidence level: give Krippendorff's level of measurement with
    ``metric_kwargs={"level": "ordinal"}``, ``functools.partial(krippendorff_alpha,
    level="ordinal")`` or the registered name ``"krippendorff_alpha_ordinal"``.

    Args:
        metric: A coefficient (e.g. ``krippendorff_alpha``), a ``functools.partial`` of one, a
            built-in plugin's wrapper, or the name of a registered metric.
        *arrays: The metric's data arguments (e.g. ``data``, or ``a, b``), resampled together.
        n: Number of resamples.
        seed: Seed of the generator.
        level: Confidence level.
        interval: "percentile" or "bca".
        units_axis: For other functions: the axis of a matrix that indexes units (-1: columns,
            as in coders x units; 0 for a units x categories table). 1-D arrays are indexed
            directly.
        fast: Use the per-unit statistics of a built-in coefficient (False calls the metric on
            every resample; slower, same numbers when ``categories`` are declared).
        metric_kwargs: Keyword arguments for the metric whose names clash with the ones above.
        **kwargs: Passed to the metric (non-data arguments must be keywords).

    Returns:
        The metric's result with ``ci = (low, high)`` and ``details["bootstrap"]`` (interval,
        level, n, seed, n_undefined, se). ``ci`` stays None, with ``details["bootstrap"]
        ["reason"]``, when the point estimate is undefined, there are fewer than two units, or
        fewer than two resamples are defined.
    """
    if interval not in ("percentile", "bca"):
        raise ValueError(f"interval must be 'percentile' or 'bca'; got {interval!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level}")
    if n < 1:
        raise ValueError(f"n must be a positive number of resamples; got {n}")
    fn, kwargs = _resolve(metric, {**kwargs, **(metric_kwargs or {})})
    prep = _m.prepare(fn, *arrays, **kwargs) if fast else None

    stat: Callable[[np.ndarray], np.ndarray]
    if prep is not None:
        point = prep.result()
        per_unit = prep.per_unit
        n_units = per_unit.shape[0]

        def stat(idx: np.ndarray) -> np.ndarray:
            return prep.finalize(_weights(idx, n_units) @ per_unit)

        def jackknife() -> np.ndarray:
            return prep.finalize(per_unit.sum(axis=0)[None, :] - per_unit)
    else:
        point = fn(*arrays, **kwargs)
        if not isinstance(point, MetricResult):
            point = MetricResult(value=None if point is None else float(point))
        axis = 0 if units_axis == 0 else 1
        sizes = {_n_along(a, axis) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"the arrays have different numbers of units: {sorted(sizes)}")
        n_units = sizes.pop()

        def stat(idx: np.ndarray) -> np.ndarray:
            return np.array([_value(fn(*[_take(a, row, axis) for a in arrays], **kwargs))
                             for row in idx])

        def jackknife() -> np.ndarray:
            every = np.arange(n_units)
            return stat(np.array([np.delete(every, i) for i in range(n_units)]))

    info: dict[str, Any] = {"interval": interval, "level": level, "n": n, "seed": seed}
    if point.value is None:
        info["reason"] = "the coefficient is undefined on the full data"
        return _with(point, None, info)
    if n_units < 2:
        info["reason"] = f"{n_units} unit: nothing to resample"
        return _with(point, None, info)

    rng = np.random.default_rng(seed)
    values = np.concatenate([stat(idx) for idx in _index_blocks(rng, n, n_units)])
    ok = values[np.isfinite(values)]
    info["n_undefined"] = int(values.size - ok.size)
    if ok.size < 2:
        info["reason"] = f"only {ok.size} of {n} resamples have a defined value"
        return _with(point, None, info)
    info["se"] = float(ok.std(ddof=1))
    alpha = (1 - level) / 2
    probs = np.array([alpha, 1 - alpha])
    if interval == "bca":
        probs, note = _bca_probs(ok, float(point.value), jackknife(), probs)
        if note:
            info["note"] = note
    lo, hi = np.quantile(ok, probs)
    return _with(point, (float(lo), float(hi)), info)


def _with(point: MetricResult, ci: tuple[float, float] | None,
          info: dict[str, Any]) -> MetricResult:
    return dataclasses.replace(point, ci=ci, details={**point.details, "bootstrap": info})


def _bca_probs(boot: np.ndarray, theta: float, jack: np.ndarray,
               probs: np.ndarray) -> tuple[np.ndarray, str | None]:
    """BCa-adjusted quantile levels (Efron 1987), or the percentile ones when degenerate."""
    nd = NormalDist()
    below = (np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / boot.size
    if not 0 < below < 1:
        return probs, "BCa bias correction is infinite: percentile interval used"
    z0 = nd.inv_cdf(float(below))
    jack = jack[np.isfinite(jack)]
    d = jack.mean() - jack if jack.size else np.zeros(0)
    den = 6 * float(np.sum(d**2)) ** 1.5
    a = float(np.sum(d**3)) / den if den > 0 else 0.0
    out = []
    for p in probs:
        z = nd.inv_cdf(float(p))
        out.append(nd.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    return np.array(out), None


def permutation_test(gold: Any, pred: Any, code: Any, n: int = 1000,
                     seed: int = 0) -> MetricResult:
    """Does ``pred`` agree with ``gold`` on ``code`` more than chance? A permutation test.

    The statistic is Cohen's kappa on the code's presence (one code vs the rest, sets by
    membership; :func:`~vsdcoder.reliability.metrics.binarize`) over the units where both
    values are present. The null distribution shuffles ``pred`` over those units (``n``
    permutations, ``numpy.random.default_rng(seed)``), which keeps both coders' prevalence of
    the code and breaks only the link between them. One-sided p-value
    ``(1 + #{null kappa >= observed}) / (n + 1)`` (Phipson & Smyth 2010), so never 0.

    Args:
        gold: Reference values, one per unit (None = missing).
        pred: The coder's values (e.g. an LLM run's).
        code: The code tested.
        n: Number of permutations.
        seed: Seed of the generator.

    Returns:
        ``value`` = the observed kappa; ``details``: ``p_value``, ``n_permutations``, ``null``
        (mean, sd, q025, q50, q975, q99, max of the null kappas), ``code``. Undefined (value
        and p_value None, with a reason) when no unit has both values or the code is used in
        every value or in none.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of permutations; got {n}")
    g = _m.binarize(_m._seq(gold, "gold"), code)
    p = _m.binarize(_m._seq(pred, "pred"), code)
    if len(g) != len(p):
        raise ValueError(f"gold and pred need one value per unit each; lengths {len(g)} != "
                         f"{len(p)}")
    observed = _m.cohen_kappa(g, p, categories=[0, 1])
    details: dict[str, Any] = {"code": code, "n_permutations": n, "p_value": None,
                               **{k: observed.details[k] for k in ("po", "pe")
                                  if k in observed.details}}
    if observed.value is None:
        reason = observed.reason
        if observed.n_units:
            reason = f"code {code!r} is used in every value or in none: kappa is 0/0"
        return MetricResult(None, reason=reason, n_units=observed.n_units, details=details)
    keep = [i for i in range(len(g)) if g[i] is not None and p[i] is not None]
    gb = np.array([g[i] for i in keep], dtype=bool)
    pb = np.array([p[i] for i in keep], dtype=bool)
    n_units = gb.size
    pg, pp = gb.mean(), pb.mean()
    pe = pg * pp + (1 - pg) * (1 - pp)
    rng = np.random.default_rng(seed)
    null = []
    for start in range(0, n, _BLOCK):
        b = min(_BLOCK, n - start)
        perm = rng.permuted(np.broadcast_to(pb, (b, n_units)), axis=1)
        po = (perm == gb).mean(axis=1)
        null.append((po - pe) / (1 - pe))
    null_k = np.concatenate(null)
    obs = float(observed.value)
    p_value = (1 + int(np.sum(null_k >= obs - 1e-12))) / (n + 1)
    q = np.quantile(null_k, [0.025, 0.5, 0.975, 0.99])
    details.update(p_value=float(p_value), null={
        "mean": float(null_k.mean()), "sd": float(null_k.std(ddof=1)) if n > 1 else 0.0,
        "q025": float(q[0]), "q50": float(q[1]), "q975": float(q[2]), "q99": float(q[3]),
        "max": float(null_k.max())})
    return MetricResult(obs, reason=None, n_units=observed.n_units, details=details)
