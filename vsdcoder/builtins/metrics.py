"""Built-in plugin: the agreement coefficients of :mod:`vsdcoder.reliability.metrics`.

Each is registered as a thin wrapper that imports the metrics module (and numpy) on first
call, so loading plugins (``vsdcoder --help``) stays cheap. A wrapper's
``__vsdcoder_metric__`` names the function and fixed arguments behind it, which
:func:`vsdcoder.reliability.uncertainty.bootstrap_ci` uses to bootstrap it fast.
"""

from collections.abc import Callable
from typing import Any

from vsdcoder.hookspecs import hookimpl

#: Registered name -> (function in vsdcoder.reliability.metrics, fixed keyword arguments).
METRICS: dict[str, tuple[str, dict[str, Any]]] = {
    "percent_agreement": ("percent_agreement", {}),
    "cohen_kappa": ("cohen_kappa", {}),
    "cohen_kappa_linear": ("cohen_kappa", {"weights": "linear"}),
    "cohen_kappa_quadratic": ("cohen_kappa", {"weights": "quadratic"}),
    "scott_pi": ("scott_pi", {}),
    "fleiss_kappa": ("fleiss_kappa", {}),
    "krippendorff_alpha": ("krippendorff_alpha", {}),
    "krippendorff_alpha_nominal": ("krippendorff_alpha", {"level": "nominal"}),
    "krippendorff_alpha_ordinal": ("krippendorff_alpha", {"level": "ordinal"}),
    "krippendorff_alpha_interval": ("krippendorff_alpha", {"level": "interval"}),
    "krippendorff_alpha_ratio": ("krippendorff_alpha", {"level": "ratio"}),
    "krippendorff_alpha_masi": ("krippendorff_alpha", {"distance": "masi"}),
    "krippendorff_alpha_jaccard": ("krippendorff_alpha", {"distance": "jaccard"}),
    "gwet_ac1": ("gwet_ac1", {}),
    "gwet_ac2": ("gwet_ac2", {}),
    "gwet_ac2_linear": ("gwet_ac2", {"weights": "linear"}),
    "gwet_ac2_quadratic": ("gwet_ac2", {"weights": "quadratic"}),
    "gwet_ac2_ordinal": ("gwet_ac2", {"weights": "ordinal"}),
    "brennan_prediger": ("brennan_prediger", {}),
    "per_code_kappa": ("per_code_kappa", {}),
    "per_code_kappa_cohen": ("per_code_kappa", {"method": "cohen"}),
    "per_code_scores": ("per_code_scores", {}),
    "f1_score": ("f1_score", {}),
    "confusion_matrix": ("confusion_matrix", {}),
    "multilabel_confusion_matrix": ("multilabel_confusion_matrix", {}),
}


def _wrapper(name: str, target: str, fixed: dict[str, Any]) -> Callable[..., Any]:
    def metric(*args: Any, **kwargs: Any) -> Any:
        from vsdcoder.reliability import metrics

        return getattr(metrics, target)(*args, **{**fixed, **kwargs})

    args = ", ".join(f"{k}={v!r}" for k, v in fixed.items())
    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = (f"vsdcoder.reliability.metrics.{target}({args or '...'}), imported on "
                      "first call.")
    metric.__vsdcoder_metric__ = (target, dict(fixed))  # type: ignore[attr-defined]
    return metric


@hookimpl
def register_metrics(register):
    """Register every built-in coefficient (imported lazily when called)."""
    for name, (target, fixed) in METRICS.items():
        register(name, _wrapper(name, target, fixed))
