"""Reliability of codes: agreement coefficients, confidence intervals, human baselines, reports.

The public API is imported lazily, so ``import vsdcoder.reliability`` does not import numpy:

    >>> from vsdcoder.reliability import krippendorff_alpha, bootstrap_ci
    >>> krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 4]]).value
"""

from __future__ import annotations

from typing import Any

_METRICS = "vsdcoder.reliability.metrics"
_UNCERTAINTY = "vsdcoder.reliability.uncertainty"
_TYPES = "vsdcoder.reliability.types"

_LAZY = {
    "MetricResult": _TYPES,
    "Ratings": _TYPES,
    "percent_agreement": _METRICS,
    "cohen_kappa": _METRICS,
    "scott_pi": _METRICS,
    "fleiss_kappa": _METRICS,
    "krippendorff_alpha": _METRICS,
    "gwet_ac1": _METRICS,
    "gwet_ac2": _METRICS,
    "brennan_prediger": _METRICS,
    "per_code_kappa": _METRICS,
    "per_code_scores": _METRICS,
    "f1_score": _METRICS,
    "confusion_matrix": _METRICS,
    "multilabel_confusion_matrix": _METRICS,
    "binarize": _METRICS,
    "counts_table": _METRICS,
    "pairs_from_table": _METRICS,
    "masi_distance": _METRICS,
    "jaccard_distance": _METRICS,
    "bootstrap_ci": _UNCERTAINTY,
    "permutation_test": _UNCERTAINTY,
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vsdcoder.reliability' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
