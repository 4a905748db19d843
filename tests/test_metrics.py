"""Agreement coefficients, per-code scores, bootstrap and permutation tests.

- every entry of shared/reliability/vectors.json, to its published precision;
- randomised comparisons with krippendorff, scikit-learn and statsmodels;
- undefined cases (None with a reason, never NaN), bootstrap, permutation test, plugin registry.
"""

import ast
import functools
import json
import math
import re
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
from conftest import need_shared, shared_missing, shared_root

from vsdcoder.reliability import (
    MetricResult,
    binarize,
    bootstrap_ci,
    brennan_prediger,
    cohen_kappa,
    confusion_matrix,
    counts_table,
    f1_score,
    fleiss_kappa,
    gwet_ac1,
    gwet_ac2,
    jaccard_distance,
    krippendorff_alpha,
    masi_distance,
    multilabel_confusion_matrix,
    pairs_from_table,
    per_code_kappa,
    per_code_scores,
    percent_agreement,
    permutation_test,
    scott_pi,
)

#: The published worked examples live in the team's shared material, not in the repository.
VECTORS_AT = ("reliability", "vectors.json")
VECTORS = ([] if shared_missing(*VECTORS_AT) else json.loads(
    shared_root().joinpath(*VECTORS_AT).read_text(encoding="utf-8"))["vectors"])


# --------------------------------------------------------------------------------------------
# published vectors
# --------------------------------------------------------------------------------------------


#: (vector id, key) whose published value is printed with fewer decimals than the entry's
#: expected_decimals (the sources print 0.70, 0.50, 0.32 and 0.492); their exact fractions are
#: in the same entries and are checked to 1e-9.
ROUNDED_IN_SOURCE = {("feinstein_cicchetti_1990_A", "kappa"), ("feinstein_cicchetti_1990_A", "pe"),
                     ("feinstein_cicchetti_1990_B", "kappa"), ("cohen1960_p45", "kappa")}


class Check:
    """Compares values with an entry's expected/exact/full_precision numbers, noting each key."""

    def __init__(self, entry):
        self.entry = entry
        self.decimals = entry.get("expected_decimals")
        self.done = set()

    def _close(self, actual, expected, tol, what):
        assert actual is not None, f"{self.entry['id']}: {what} is undefined, expected {expected}"
        assert abs(actual - expected) <= tol, (
            f"{self.entry['id']}: {what} = {actual!r}, expected {expected!r} (tolerance {tol})")

    def expected(self, key, actual, index=None):
        exp = self.entry["expected"][key]
        if index is not None:
            exp = exp[index]
        self.done.add(("expected", key))
        if isinstance(exp, str):
            self.undefined(actual, f"expected[{key}]")
            return
        d = self.decimals if self.decimals is not None else _decimals_of(exp)
        tol = 0.5 * 10.0**-d + 1e-12
        if (self.entry["id"], key) in ROUNDED_IN_SOURCE and actual is not None \
                and abs(actual - exp) > tol:
            assert self._has_full(key)
            d = _decimals_of(exp)  # check to the digits printed in the source
            tol = 0.5 * 10.0**-d + 1e-12
        self._close(actual, exp, tol, f"expected[{key}] ({d} decimals)")

    def _has_full(self, key):
        return key in (self.entry.get("exact") or {}) or key in (
            self.entry.get("full_precision") or {})

    def exact(self, key, actual, index=None):
        exp = self.entry["exact"][key]
        if index is not None:
            exp = exp[index]
        self.done.add(("exact", key))
        if not re.fullmatch(r"-?\d+(/\d+)?", exp):
            self.undefined(actual, f"exact[{key}]")
            return
        value = float(Fraction(exp))
        self._close(actual, value, 1e-9 * max(1, abs(value)), f"exact[{key}] = {exp}")

    def full(self, key, actual, index=None):
        exp = self.entry["full_precision"][key]
        if index is not None:
            exp = exp[index]
        self.done.add(("full_precision", key))
        self._close(actual, exp, 1e-9 * max(1, abs(exp)), f"full_precision[{key}]")

    def undefined(self, actual, what):
        res = actual
        value = res.value if isinstance(res, MetricResult) else res
        assert value is None, f"{self.entry['id']}: {what} should be undefined, got {value!r}"
        if isinstance(res, MetricResult):
            assert res.reason, f"{self.entry['id']}: {what} is undefined without a reason"

    def all_checked(self):
        wanted = {(part, k) for part in ("expected", "exact", "full_precision")
                  for k in self.entry.get(part) or {}}
        missing = wanted - self.done
        assert not missing, f"{self.entry['id']}: values not checked: {sorted(missing)}"


def _decimals_of(x):
    s = repr(float(x))
    return len(s.split(".")[1]) if "." in s and "e" not in s else 12


def _v(res):
    return res.value if isinstance(res, MetricResult) else res


def _as_sets(data):
    return [[frozenset(v) if v is not None else None for v in row] for row in data]


def check_krippendorff(e, c):
    level = e["metric"].removeprefix("krippendorff_alpha_")
    res = krippendorff_alpha(e["data"], level=level)
    c.expected("alpha", res.value)
    for key in e.get("exact", {}):
        actual = res.value if key == "alpha" else res.details[key]
        c.exact(key, actual)
    for key in e.get("full_precision", {}):
        c.full(key, res.value if key == "alpha" else res.details[key])


def check_fleiss(e, c):
    res = fleiss_kappa(e["data"])
    names = {"kappa": res.value, "P_bar": res.details.get("pa"), "P_e": res.details.get("pe")}
    for key in e["expected"]:
        if key == "p_j":
            for j, p in enumerate(res.details["pi"]):
                c.expected("p_j", p, j)
        else:
            c.expected(key, names[key])
    for key in e.get("exact", {}):
        c.exact(key, names[key])
    for key in e.get("full_precision", {}):
        if key == "p_j":
            for j, p in enumerate(res.details["pi"]):
                c.full("p_j", p, j)
        else:
            c.full(key, names[key])


def check_cohen(e, c):
    weights = {"cohen_kappa": None, "cohen_kappa_linear": "linear",
               "cohen_kappa_quadratic": "quadratic"}[e["metric"]]
    data = e["data"]
    if isinstance(data, dict):
        a, b = data["y1"], data["y2"]
    else:
        assert "contingency table" in e["data_format"], e["data_format"]
        a, b = pairs_from_table(data)
    res = cohen_kappa(a, b, weights=weights)
    others = {"kappa": res.value, "po": res.details["po"], "pe": res.details["pe"],
              "scott_pi": scott_pi(a, b).value, "gwet_ac1": gwet_ac1([a, b]).value,
              "brennan_prediger": brennan_prediger([a, b]).value}
    for key in e["expected"]:
        c.expected(key, others[key])
    for key in e.get("exact", {}):
        c.exact(key, others[key])
    for key in e.get("full_precision", {}):
        c.full(key, others[key])
    if isinstance(data, list):  # the table is what the coefficients see
        assert confusion_matrix(a, b).tolist() == data


_DIST = {"masi": masi_distance, "jaccard": jaccard_distance}


def check_set_distances(e, c):
    pairs = [(frozenset(x), frozenset(y)) for x, y in e["data"]]
    for key in e["expected"]:
        m = re.fullmatch(r"(masi|jaccard)\((\{.*?\}),(\{.*?\})\)", key)
        assert m, f"cannot read the sets of {key!r}"
        x, y = ast.literal_eval(m.group(2)), ast.literal_eval(m.group(3))
        assert (x, y) in pairs
        c.expected(key, _DIST[m.group(1)](x, y))
    for key in e["exact"]:
        name, i = key.rsplit("_", 1)
        c.exact(key, _DIST[name](*pairs[int(i) - 1]))


def _old_nltk_masi(x, y):
    """NLTK before PR #3695: M rounded to 0.67 / 0.33."""
    x, y = frozenset(x), frozenset(y)
    inter, union = len(x & y), len(x | y)
    if len(x) == len(y) == inter:
        m = 1
    elif inter == min(len(x), len(y)):
        m = 0.67
    elif inter > 0:
        m = 0.33
    else:
        m = 0
    return 1 - inter / union * m


def check_multilabel_alpha(e, c):
    data = _as_sets(e["data"])
    got = {"masi": krippendorff_alpha(data, distance="masi").value,
           "jaccard": krippendorff_alpha(data, distance="jaccard").value,
           "exact_set_nominal": krippendorff_alpha(data).value}
    for key in e["expected"]:
        c.expected(key, got[key.removeprefix("alpha_")])
    names = {"masi": "masi", "jaccard": "jaccard", "binary(exact-set-match)": "exact_set_nominal"}
    for key in e["exact"]:
        c.exact(key, got[names[key]])
    for key in e["full_precision"]:
        assert key == "alpha_masi_with_old_nltk_0.67_0.33", key
        c.full(key, krippendorff_alpha(data, distance=_old_nltk_masi).value)


def check_single_item_masi(e, c):
    res = krippendorff_alpha(_as_sets(e["data"]), distance="masi")
    c.expected("alpha", res.value)
    c.exact("alpha", res.value)


def _edge_metrics(data, key):
    """Results named by an edge vector's key, for coders x units ``data``."""
    two = len(data) == 2
    table = counts_table(data)
    base = re.sub(r"_irrCAC$|_nominal$| \(.*\)$", "", key)
    fns = {
        "kripp_alpha": lambda: [krippendorff_alpha(data)],
        "percent_agreement": lambda: [percent_agreement(data)],
        "cohen_kappa": lambda: [cohen_kappa(*data)] if two else pytest.fail(f"{key}: not 2 coders"),
        "scott_pi": lambda: [scott_pi(*data)] if two else pytest.fail(f"{key}: not 2 coders"),
        "fleiss_kappa": lambda: [fleiss_kappa(table)],
        "gwet_ac1": lambda: [gwet_ac1(data)],
        "brennan_prediger": lambda: [brennan_prediger(data)],
        "gwet_family": lambda: [gwet_ac1(data), brennan_prediger(data), fleiss_kappa(table)],
    }
    if base == "all":
        out = [f()[0] for k, f in fns.items() if k != "gwet_family" and (two or k not in (
            "cohen_kappa", "scott_pi"))]
        return [*out, gwet_ac2(data), per_code_kappa(data, data[0][0])]
    assert base in fns, f"no metric for edge key {key!r}"
    return fns[base]()


def check_edge(e, c):
    data = e["data"]
    for part in ("expected", "exact"):
        for key, exp in e.get(part, {}).items():
            for res in _edge_metrics(data, key):
                if isinstance(exp, str) and "declared" in exp:
                    _check_declared(e, key, exp, res, data)
                    c.done.add((part, key))
                else:
                    getattr(c, part)(key, res if isinstance(exp, str) and not re.fullmatch(
                        r"-?\d+(/\d+)?", exp) else res.value)
    assert not e.get("full_precision"), "edge full_precision values are not handled"


def _check_declared(e, key, exp, res, data):
    """'undefined if q = 1 inferred ...; = 1.0 if q >= 2 categories are declared'."""
    fn = gwet_ac1 if key.startswith("gwet") else brennan_prediger
    if "undefined if q = 1 inferred" in exp:
        assert res.value is None and res.reason, f"{e['id']}: {key} inferred q = 1"
    else:  # "1.0 if q >= 2 declared": with q = 1 inferred it is undefined too (documented)
        assert res.value is None and "categories=" in res.reason
    declared = fn(data, categories=[1, 2])
    assert declared.value == pytest.approx(1.0), f"{e['id']}: {key} with q = 2 declared"
    assert declared.details["q"] == 2


def check_fleiss_counts(e, c):
    assert "COUNT table" in e["data_format"]
    res = fleiss_kappa(e["data"])
    c.expected("kappa", res.value)
    c.exact("kappa", res.value)


def _prf_rows(report, label):
    pc = report["per_code"][label]
    return [pc["precision"], pc["recall"], pc["f1"], pc["support"]]


def check_prf(e, c):
    d = e["data"]
    rep = per_code_scores(d["y_true"], d["y_pred"], labels=d.get("labels"))
    labels = rep["labels"]
    avg = {"macro": "macro", "micro": "micro", "weighted": "weighted", "macro_avg": "macro",
           "micro_avg": "micro", "weighted_avg": "weighted"}
    for key, exp in e["expected"].items():
        if key.startswith("per_class("):
            names = key[len("per_class("):-1].split(",")
            assert names == [str(x) for x in labels]
            for field_, values in exp.items():
                for i, lab in enumerate(labels):
                    c.done.add(("expected", key))
                    actual = rep["per_code"][lab][field_]
                    c._close(actual, values[i], 0.5 * 10.0**-c.decimals + 1e-12,
                             f"{key}.{field_}[{lab}]")
        elif key.startswith("class"):
            lab = int(key[len("class"):])
            for i, x in enumerate(_prf_rows(rep, lab)):
                c.expected(key, x, i)
        elif key == "accuracy":
            c.expected(key, rep["accuracy"])
        else:
            a = rep[avg[key]]
            for i, x in enumerate([a["precision"], a["recall"], a["f1"]]):
                c.expected(key, x, i)
    for key in e.get("exact", {}):
        if key.startswith("class"):
            cls, what = key.split("_")
            c.exact(key, rep["per_code"][int(cls[len("class"):])][what])
        elif key == "micro":
            for what in ("precision", "recall", "f1"):
                c.exact(key, rep["micro"][what])
        else:
            which, what = key.split("_")
            c.exact(key, rep[which][what])
    assert not e.get("full_precision")


def check_agresti(e, c):
    assert "contingency table" in e["data_format"]
    a, b = pairs_from_table(e["data"], categories=[1, 2, 3, 4])
    for j in range(4):
        res = per_code_kappa([a, b], j + 1)
        c.expected("kappa_k", res.value, j)
        c.exact("kappa_k", res.value, j)
        c.full("kappa_k", res.value, j)
        # for two coders the category-specific kappa is one-vs-rest Scott's pi
        assert res.value == pytest.approx(scott_pi(*binarize([a, b], j + 1)).value)
        c.full("one_vs_rest_cohen", per_code_kappa([a, b], j + 1, method="cohen").value, j)
    c.expected("overall_cohen_kappa", cohen_kappa(a, b).value)


def _checker(e):
    by_id = {"nltk_masi_distance_examples": check_set_distances,
             "stackexchange_407453_multilabel_alpha": check_multilabel_alpha,
             "nltk_issue2991_single_item_masi": check_single_item_masi,
             "edge_statsmodels_issue7657_format": check_fleiss_counts,
             "agresti1992_category_specific_kappa": check_agresti}
    if e["id"] in by_id:
        return by_id[e["id"]]
    group, metric = e["group"], e["metric"]
    if group == "krippendorff" and metric.startswith("krippendorff_alpha_"):
        return check_krippendorff
    if group == "fleiss" and metric == "fleiss_kappa":
        return check_fleiss
    if group == "cohen" and metric.startswith("cohen_kappa"):
        return check_cohen
    if group == "edge" and metric == "several":
        return check_edge
    if group == "prf" and ("precision" in metric.lower() or "P/R/F1" in metric):
        return check_prf
    return None


@pytest.mark.parametrize("entry", VECTORS or [None], ids=[e["id"] for e in VECTORS] or ["vectors"])
def test_vector(entry):
    if entry is None:  # no shared material: skip, naming it (fails under CI)
        need_shared(*VECTORS_AT)
    checker = _checker(entry)
    if checker is None:
        pytest.fail(f"vector {entry['id']!r} (group {entry['group']!r}, metric "
                    f"{entry['metric']!r}, data {entry['data_format']!r}) has no checker: add "
                    "one to tests/test_metrics.py")
    c = Check(entry)
    checker(entry, c)
    c.all_checked()


def test_every_vector_has_a_checker():
    need_shared(*VECTORS_AT)
    assert len(VECTORS) >= 33
    assert len({e["id"] for e in VECTORS}) == len(VECTORS)
    assert all(_checker(e) is not None for e in VECTORS)


# --------------------------------------------------------------------------------------------
# randomised comparisons with other packages
# --------------------------------------------------------------------------------------------

SHAPES = [(2, 30, 2, 0.0), (2, 60, 4, 0.15), (3, 50, 3, 0.2), (4, 120, 5, 0.1), (6, 40, 6, 0.3),
          (3, 300, 7, 0.05)]


def _random_data(seed, coders, units, k, missing, agree=0.6):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, k + 1, units)
    data = np.where(rng.random((coders, units)) < agree, truth, rng.integers(1, k + 1,
                                                                            (coders, units)))
    data = data.astype(object)
    data[rng.random((coders, units)) < missing] = None
    return data


def _nan(data):
    return np.array([[np.nan if v is None else float(v) for v in row] for row in data])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_vs_krippendorff(shape, level):
    import krippendorff  # in the test extra
    for seed in range(3):
        data = _random_data(seed, *shape)
        ours = krippendorff_alpha(data, level=level)
        theirs = krippendorff.alpha(reliability_data=_nan(data), level_of_measurement=level)
        assert ours.value == pytest.approx(theirs, abs=1e-10), (shape, level, seed)
        # lists with None and strings (nominal) give the same value
        if level == "nominal":
            strings = [[None if v is None else f"c{v}" for v in row] for row in data.tolist()]
            assert krippendorff_alpha(strings).value == pytest.approx(theirs, abs=1e-10)


def test_alpha_ordinal_uses_codebook_order():
    import krippendorff  # in the test extra
    data = _random_data(7, 3, 80, 4, 0.1)
    names = {1: "never", 2: "sometimes", 3: "often", 4: "always"}
    named = [[None if v is None else names[v] for v in row] for row in data]
    order = ["never", "sometimes", "often", "always"]
    theirs = krippendorff.alpha(reliability_data=_nan(data), level_of_measurement="ordinal")
    assert krippendorff_alpha(named, level="ordinal", categories=order).value == \
        pytest.approx(theirs, abs=1e-10)
    # alphabetical order is a different (wrong) ordinal scale
    assert krippendorff_alpha(named, level="ordinal").value != pytest.approx(theirs, abs=1e-6)


def _pairwise_alpha(data, dist):
    """Alpha straight from its definition, pair by pair (independent of the coincidence code)."""
    units = [[v for v in col if v is not None] for col in zip(*data, strict=True)]
    units = [u for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    do = sum(dist(u[i], u[j]) / (len(u) - 1) for u in units for i in range(len(u))
             for j in range(len(u)) if i != j) / n
    de = sum(dist(values[i], values[j]) for i in range(n) for j in range(n) if i != j) / (
        n * (n - 1))
    return 1 - do / de


@pytest.mark.parametrize("distance", ["masi", "jaccard"])
def test_set_alpha_vs_definition(distance):
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "d"]
    data = []
    for _c in range(3):
        row = []
        for _u in range(25):
            if rng.random() < 0.15:
                row.append(None)
            else:
                row.append(frozenset(x for x in labels if rng.random() < 0.4) or frozenset("a"))
        data.append(row)
    expected = _pairwise_alpha(data, _DIST[distance])
    assert krippendorff_alpha(data, distance=distance).value == pytest.approx(expected, abs=1e-12)
    # lists are read as sets inside a matrix
    as_lists = [[None if v is None else sorted(v) for v in row] for row in data]
    assert krippendorff_alpha(as_lists, distance=distance).value == pytest.approx(expected)


def test_set_distances_definitions():
    assert masi_distance({1, 2}, {1, 2}) == 0
    assert masi_distance(set(), set()) == 0
    assert masi_distance({1}, set()) == 1
    assert masi_distance({1, 2}, {3}) == 1
    assert masi_distance({1, 2}, {2, 3}) == pytest.approx(1 - (1 / 3) * (1 / 3))
    assert jaccard_distance(set(), set()) == 0
    assert jaccard_distance({1, 2}, {2, 3}) == pytest.approx(2 / 3)
    # scalar values become one-element sets for set distances
    assert krippendorff_alpha([["a", "b", "a"], [{"a"}, {"b"}, {"a"}]],
                              distance="masi").value == pytest.approx(1.0)


def _pair(data):
    a, b = data[0], data[1]
    keep = [i for i in range(len(a)) if a[i] is not None and b[i] is not None]
    return [a[i] for i in keep], [b[i] for i in keep]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_vs_sklearn_and_statsmodels(shape, weights):
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import cohens_kappa

    k = shape[2]
    for seed in range(3):
        data = _random_data(seed, *shape)
        a, b = _pair(data)
        labels = list(range(1, k + 1))
        ours = cohen_kappa(data[0], data[1], weights=weights, categories=labels)
        assert ours.n_units == len(a)
        expected = cohen_kappa_score(a, b, weights=weights, labels=labels)
        assert ours.value == pytest.approx(expected, abs=1e-10)
        table = confusion_matrix(a, b, labels=labels)
        sm = cohens_kappa(table, wt=weights or None, return_results=False)
        assert ours.value == pytest.approx(sm, abs=1e-10)
        # categories inferred: sorted values (same as sklearn without labels on complete pairs)
        if shape[3] == 0:
            assert cohen_kappa(a, b, weights=weights).value == pytest.approx(
                cohen_kappa_score(a, b, weights=weights), abs=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_fleiss_scott_randolph_vs_statsmodels(shape):
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    coders, units, k, _missing = shape
    cats = list(range(1, k + 1))
    for seed in range(3):
        data = _random_data(seed, coders, units, k, 0.0)
        table = counts_table(data, categories=cats)
        agg, agg_cats = aggregate_raters(np.array(data.T, dtype=int), n_cat=None)
        assert table[:, [c - 1 for c in agg_cats]].tolist() == agg.tolist()
        assert fleiss_kappa(table).value == pytest.approx(sm_fleiss(table), abs=1e-10)
        assert brennan_prediger(data, categories=cats).value == pytest.approx(
            sm_fleiss(table, method="randolph"), abs=1e-10)
        # Fleiss from raw data (Gwet's generalisation) = Scott's pi for two coders
        pair_table = counts_table(data[:2], categories=cats)
        assert scott_pi(data[0], data[1]).value == pytest.approx(sm_fleiss(pair_table),
                                                                 abs=1e-10)


def _gwet_reference(data, cats, weights=None, kind="ac1"):
    """Gwet (2014) AC1/AC2/BP/Fleiss straight from the formulas, unit by unit (as irrCAC)."""
    q = len(cats)
    w = np.eye(q) if weights is None else weights
    units = [[v for v in col if v is not None] for col in zip(*data, strict=True)]
    rated = [u for u in units if u]
    paired = [u for u in rated if len(u) >= 2]
    pa = 0.0
    for u in paired:
        r = len(u)
        counts = [u.count(c) for c in cats]
        pa += sum(counts[k] * (sum(w[k][l_] * counts[l_] for l_ in range(q)) - 1)
                  for k in range(q)) / (r * (r - 1))
    pa /= len(paired)
    pi = [sum(u.count(c) / len(u) for u in rated) / len(rated) for c in cats]
    if kind == "ac1":
        pe = w.sum() * sum(p * (1 - p) for p in pi) / (q * (q - 1))
    elif kind == "bp":
        pe = w.sum() / q**2
    else:
        pe = sum(w[k][l_] * pi[k] * pi[l_] for k in range(q) for l_ in range(q))
    return (pa - pe) / (1 - pe)


def _named_weights(name, q):
    i = np.arange(q)[:, None]
    j = np.arange(q)[None, :]
    d = np.abs(i - j)
    return {"linear": 1 - d / (q - 1), "quadratic": 1 - d**2 / (q - 1) ** 2}[name]


@pytest.mark.parametrize("shape", SHAPES)
def test_gwet_family_vs_reference(shape):
    k = shape[2]
    cats = list(range(1, k + 1))
    for seed in range(2):
        data = _random_data(seed, *shape).tolist()
        assert gwet_ac1(data, categories=cats).value == pytest.approx(
            _gwet_reference(data, cats), abs=1e-10)
        assert brennan_prediger(data, categories=cats).value == pytest.approx(
            _gwet_reference(data, cats, kind="bp"), abs=1e-10)
        assert fleiss_kappa(counts_table(data, cats)).value == pytest.approx(
            _gwet_reference(data, cats, kind="fleiss"), abs=1e-10)
        for name in ("linear", "quadratic"):
            assert gwet_ac2(data, weights=name, categories=cats).value == pytest.approx(
                _gwet_reference(data, cats, _named_weights(name, k)), abs=1e-10)
        assert gwet_ac2(data, weights="identity", categories=cats).value == pytest.approx(
            gwet_ac1(data, categories=cats).value)
        # q observed when categories are not declared
        seen = sorted({v for row in data for v in row if v is not None})
        assert gwet_ac1(data).value == pytest.approx(_gwet_reference(data, seen), abs=1e-10)
        # percent agreement = Gwet's pa
        res = gwet_ac1(data, categories=cats)
        assert percent_agreement(data).value == pytest.approx(res.details["pa"])


def test_gwet_weight_options():
    need_shared(*VECTORS_AT)
    e = next(v for v in VECTORS if v["id"] == "kripp2011_4x12_nominal")
    ac1 = gwet_ac1(e["data"])
    assert ac1.details["q"] == 5
    pa = percent_agreement(e["data"]).value
    assert ac1.details["pa"] == pytest.approx(pa)
    w = gwet_ac2(e["data"], weights=np.eye(5))
    assert w.value == pytest.approx(ac1.value)
    with pytest.raises(ValueError, match="5 x 5"):
        gwet_ac2(e["data"], weights=np.eye(4))
    with pytest.raises(ValueError, match="unknown weights"):
        gwet_ac2(e["data"], weights="cubic")
    for name in ("ordinal", "radical", "ratio"):
        assert -1 <= gwet_ac2(e["data"], weights=name).value <= 1


def _sk_labels(gold, pred):
    return sorted(set(gold) | set(pred))


@pytest.mark.parametrize("seed", range(6))
def test_per_code_scores_vs_sklearn(seed):
    from sklearn.metrics import confusion_matrix as sk_cm
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(seed)
    k = 3 + seed
    gold = rng.integers(0, k, 40 + 10 * seed).tolist()
    pred = [g if rng.random() < 0.5 else int(rng.integers(0, k + 1)) for g in gold]
    for labels in (None, list(range(k + 2)), [1, 0]):  # absent labels; a subset, reordered
        ours = per_code_scores(gold, pred, labels=labels)
        labs = labels if labels is not None else _sk_labels(gold, pred)
        assert ours["labels"] == labs
        p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labs, average=None,
                                                     zero_division=0)
        for i, lab in enumerate(labs):
            pc = ours["per_code"][lab]
            assert [pc["precision"], pc["recall"], pc["f1"], pc["support"]] == pytest.approx(
                [p[i], r[i], f[i], s[i]])
        for avg in ("macro", "micro", "weighted"):
            p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=labs, average=avg,
                                                         zero_division=0)
            assert [ours[avg]["precision"], ours[avg]["recall"], ours[avg]["f1"]] == \
                pytest.approx([p, r, f]), avg
            fr = f1_score(gold, pred, labels=labs, average=avg)
            assert fr.value == pytest.approx(f)
        assert confusion_matrix(gold, pred, labels=labs).tolist() == sk_cm(
            gold, pred, labels=labs).tolist()
    assert ours["accuracy"] == pytest.approx(np.mean(np.array(gold) == np.array(pred)))


def test_per_code_scores_zero_division_one():
    from sklearn.metrics import precision_recall_fscore_support

    gold, pred = [1, 1, 2, 2], [1, 1, 1, 1]
    ours = per_code_scores(gold, pred, labels=[1, 2, 3], zero_division=1.0)
    p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=[1, 2, 3], average=None,
                                                 zero_division=1.0)
    assert [ours["per_code"][c]["precision"] for c in (1, 2, 3)] == pytest.approx(p)
    assert [ours["per_code"][c]["recall"] for c in (1, 2, 3)] == pytest.approx(r)
    assert [ours["per_code"][c]["f1"] for c in (1, 2, 3)] == pytest.approx(f)
    with pytest.raises(ValueError):
        per_code_scores(gold, pred, zero_division=0.5)


@pytest.mark.parametrize("seed", range(3))
def test_multilabel_scores_vs_sklearn(seed):
    from sklearn.metrics import multilabel_confusion_matrix as sk_mcm
    from sklearn.metrics import precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c", "d"]
    gold = [frozenset(x for x in labels if rng.random() < 0.35) for _ in range(50)]
    pred = [frozenset(x for x in labels if (x in g) == (rng.random() < 0.8)) for g in gold]
    mlb = MultiLabelBinarizer(classes=labels)
    yg, yp = mlb.fit_transform(gold), mlb.transform(pred)
    ours = per_code_scores(gold, pred, labels=labels)
    assert ours["multilabel"]
    p, r, f, s = precision_recall_fscore_support(yg, yp, average=None, zero_division=0)
    for i, lab in enumerate(labels):
        pc = ours["per_code"][lab]
        assert [pc["precision"], pc["recall"], pc["f1"], pc["support"]] == pytest.approx(
            [p[i], r[i], f[i], s[i]])
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(yg, yp, average=avg, zero_division=0)
        assert [ours[avg]["precision"], ours[avg]["recall"], ours[avg]["f1"]] == \
            pytest.approx([p, r, f])
    assert ours["accuracy"] == pytest.approx(np.mean([g == q for g, q in zip(gold, pred,
                                                                              strict=True)]))
    assert multilabel_confusion_matrix(gold, pred, labels).tolist() == sk_mcm(yg, yp).tolist()
    with pytest.raises(TypeError, match="multilabel_confusion_matrix"):
        confusion_matrix(gold, pred)
    # per-code agreement on sets: binarised by membership
    for lab in labels:
        assert per_code_kappa([gold, pred], lab, method="cohen").value == pytest.approx(
            cohen_kappa(yg[:, labels.index(lab)], yp[:, labels.index(lab)]).value)


def test_per_code_scores_missing():
    gold = ["a", "b", None, "a", "b"]
    pred = ["a", None, "b", "b", "b"]
    dropped = per_code_scores(gold, pred)
    assert dropped["n_units"] == 3
    assert dropped["n_missing_gold"] == 1 and dropped["n_missing_pred"] == 1
    assert dropped["per_code"]["b"]["support"] == 1
    missed = per_code_scores(gold, pred, missing="miss")
    assert missed["n_units"] == 4
    assert missed["per_code"]["b"]["support"] == 2
    assert missed["per_code"]["b"]["fn"] == 1
    assert missed["accuracy"] == pytest.approx(2 / 4)
    with pytest.raises(ValueError):
        per_code_scores(gold, pred, missing="ignore")


# --------------------------------------------------------------------------------------------
# missing values, inputs, undefined cases
# --------------------------------------------------------------------------------------------


def test_inputs_lists_arrays_nan_strings():
    rows = [[1, 2, 3, None], [1, 2, 4, 2]]
    expected = krippendorff_alpha(rows).value
    assert krippendorff_alpha(np.array(rows, dtype=object)).value == expected
    assert krippendorff_alpha(np.array([[1, 2, 3, np.nan], [1, 2, 4, 2]])).value == \
        pytest.approx(expected)
    assert cohen_kappa(np.array([1, 2, 3, np.nan]), [1, 2, 4, 2]).n_units == 3
    with pytest.raises(TypeError, match="coders x units"):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(ValueError, match="row lengths"):
        percent_agreement([[1, 2], [1]])
    with pytest.raises(ValueError, match="not one of the categories"):
        krippendorff_alpha(rows, level="ordinal", categories=[1, 2, 3])
    with pytest.raises(TypeError, match="numeric"):
        krippendorff_alpha([["a", "b"], ["a", "a"]], level="interval")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(rows, level="nominalish")
    with pytest.raises(ValueError, match="lengths"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")


def test_missing_value_policies():
    # Cohen/Scott: pairwise deletion
    a, b = [1, 2, None, 1, 2], [1, 2, 1, None, 1]
    assert cohen_kappa(a, b).n_units == 3
    assert cohen_kappa(a, b).value == pytest.approx(cohen_kappa([1, 2, 2], [1, 2, 1]).value)
    assert scott_pi(a, b).value == pytest.approx(scott_pi([1, 2, 2], [1, 2, 1]).value)
    # alpha / percent agreement: units with one value are not pairable
    data = [[1, 2, 3, None], [1, 2, None, None], [1, 3, None, 4]]
    assert percent_agreement(data).n_units == 2
    assert percent_agreement(data).value == pytest.approx((1 + 1 / 3) / 2)
    assert krippendorff_alpha(data).n_units == 2
    assert krippendorff_alpha(data).details["n_pairable_values"] == 6


UNDEFINED = [
    ("alpha, one category", lambda: krippendorff_alpha([[1, 1, 1], [1, 1, 1]]), "De = 0"),
    ("alpha, nothing pairable", lambda: krippendorff_alpha([[1, None], [None, 2]]), "pairable"),
    ("alpha, no units", lambda: krippendorff_alpha([[], []]), "pairable"),
    ("alpha, no coders", lambda: krippendorff_alpha([]), "pairable"),
    ("alpha, all missing", lambda: krippendorff_alpha([[None, None], [None, None]]),
     "pairable"),
    ("alpha masi, one set", lambda: krippendorff_alpha([[{"a"}], [{"a"}]], distance="masi"),
     "De = 0"),
    ("ordinal alpha, one category", lambda: krippendorff_alpha([[2, 2], [2, 2]], "ordinal"),
     "De = 0"),
    ("percent agreement, nothing pairable", lambda: percent_agreement([[1, None], [None, 1]]),
     "pairable"),
    ("cohen, one category", lambda: cohen_kappa([1, 1, 1], [1, 1, 1]), "pe = 1"),
    ("cohen weighted, one category", lambda: cohen_kappa([1, 1], [1, 1], weights="linear"),
     "pe = 1"),
    ("cohen, no overlap", lambda: cohen_kappa([1, None], [None, 2]), "both coders"),
    ("cohen, empty", lambda: cohen_kappa([], []), "both coders"),
    ("scott, one category", lambda: scott_pi(["x", "x"], ["x", "x"]), "pe = 1"),
    ("fleiss, one category", lambda: fleiss_kappa([[3, 0], [3, 0]]), "pe = 1"),
    ("fleiss, one rating per unit", lambda: fleiss_kappa([[1, 0], [0, 1]]), "pairable"),
    ("fleiss, empty", lambda: fleiss_kappa(np.zeros((0, 3))), "pairable"),
    ("ac1, q = 1", lambda: gwet_ac1([[1, 1], [1, 1]]), "q >= 2"),
    ("ac2, q = 1", lambda: gwet_ac2([[1, 1], [1, 1]]), "q >= 2"),
    ("bp, q = 1", lambda: brennan_prediger([[1, 1], [1, 1]]), "q >= 2"),
    ("ac1, nothing pairable", lambda: gwet_ac1([[1, None], [None, 2]]), "pairable"),
    ("per-code kappa, absent code", lambda: per_code_kappa([[1, 2], [2, 1]], 3), "in none"),
    ("per-code kappa, code everywhere",
     lambda: per_code_kappa([[{"a"}, {"a", "b"}], [{"a"}, {"a"}]], "a"), "in every"),
    ("per-code cohen, absent code", lambda: per_code_kappa([[1, 2], [2, 1]], 3, "cohen"),
     "in none"),
    ("f1, code unused", lambda: f1_score([1, 2], [1, 2], code=3), "neither"),
    ("f1, no units", lambda: f1_score([None], [1]), "no unit"),
    ("permutation, absent code", lambda: permutation_test([1, 2, 1], [1, 1, 2], 3), "in none"),
    ("permutation, no overlap", lambda: permutation_test([1, None], [None, 1], 1), "both"),
]


@pytest.mark.parametrize(("name", "call", "why"), UNDEFINED, ids=[u[0] for u in UNDEFINED])
def test_undefined_cases(name, call, why):
    res = call()
    assert isinstance(res, MetricResult)
    assert res.value is None, name
    assert res.reason and why in res.reason, res.reason
    with pytest.raises(ValueError, match="undefined"):
        float(res)


def test_never_nan_on_small_random_data():
    rng = np.random.default_rng(11)
    fns = [percent_agreement, krippendorff_alpha, gwet_ac1, gwet_ac2, brennan_prediger,
           functools.partial(krippendorff_alpha, level="ordinal"),
           functools.partial(krippendorff_alpha, level="interval"),
           lambda d: fleiss_kappa(counts_table(d)),
           lambda d: cohen_kappa(d[0], d[1]), lambda d: scott_pi(d[0], d[1]),
           lambda d: cohen_kappa(d[0], d[1], weights="quadratic"),
           lambda d: per_code_kappa(d, 1)]
    for _ in range(200):
        coders, units = int(rng.integers(2, 4)), int(rng.integers(0, 4))
        data = rng.integers(1, 3, (coders, units)).astype(object)
        data[rng.random((coders, units)) < 0.4] = None
        for fn in fns:
            res = fn(data.tolist())
            assert (res.value is None and res.reason) or math.isfinite(res.value)


def test_fleiss_refuses_raw_ratings():
    with pytest.raises(TypeError, match="counts_table"):
        fleiss_kappa([["a", "b"], ["a", "a"]])
    with pytest.raises(ValueError, match="whole numbers"):
        fleiss_kappa([[1.5, 2], [1, 2]])
    with pytest.raises(ValueError, match="whole numbers"):
        fleiss_kappa([[1, None], [1, 2]])
    assert counts_table([["a", "b", None], ["a", "a", "b"]]).tolist() == [[2, 0], [1, 1], [0, 1]]


def test_binarize():
    assert binarize([["a", "b", None], [{"a", "c"}, {"b"}, set()]], "a") == [
        [1, 0, None], [1, 0, 0]]
    assert binarize([{"a"}, None, "b"], "b") == [0, None, 1]
    assert binarize(np.array([[1, 2], [2, 2]]), 2) == [[0, 1], [1, 1]]


def test_pairs_from_table():
    a, b = pairs_from_table([[2, 1], [0, 3]], categories=["x", "y"])
    assert list(zip(a, b, strict=True)).count(("x", "y")) == 1
    assert confusion_matrix(a, b, labels=["x", "y"]).tolist() == [[2, 1], [0, 3]]


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def _coders(seed, units, coders=3, k=4, agree=0.75, missing=0.1):
    return _random_data(seed, coders, units, k, missing, agree)


def test_bootstrap_deterministic_and_contains_estimate():
    data = _coders(1, 200)
    r1 = bootstrap_ci(krippendorff_alpha, data, n=500, seed=3)
    r2 = bootstrap_ci(krippendorff_alpha, data, n=500, seed=3)
    r3 = bootstrap_ci(krippendorff_alpha, data, n=500, seed=4)
    assert r1.ci == r2.ci
    assert r1.ci != r3.ci
    assert r1.value == krippendorff_alpha(data).value
    assert r1.ci[0] < r1.value < r1.ci[1]
    info = r1.details["bootstrap"]
    assert info["interval"] == "percentile" and info["n"] == 500 and info["seed"] == 3
    assert info["n_undefined"] == 0 and info["se"] > 0
    assert r1.details["Do"] == krippendorff_alpha(data).details["Do"]


def test_bootstrap_width_shrinks_with_units():
    small = bootstrap_ci(krippendorff_alpha, _coders(2, 40), n=400)
    large = bootstrap_ci(krippendorff_alpha, _coders(2, 640), n=400)
    assert (large.ci[1] - large.ci[0]) < (small.ci[1] - small.ci[0]) / 2


CATS = [1, 2, 3, 4]
BOOT_CASES = [
    ("percent_agreement", percent_agreement, lambda d: (d,), {}),
    ("alpha_nominal", krippendorff_alpha, lambda d: (d,), {}),
    ("alpha_ordinal", krippendorff_alpha, lambda d: (d,),
     {"metric_kwargs": {"level": "ordinal", "categories": CATS}}),
    ("alpha_interval", functools.partial(krippendorff_alpha, level="interval"), lambda d: (d,),
     {}),
    ("alpha_ratio", "krippendorff_alpha_ratio", lambda d: (d,), {}),
    ("gwet_ac1", gwet_ac1, lambda d: (d,), {"categories": CATS}),
    ("gwet_ac2", gwet_ac2, lambda d: (d,), {"categories": CATS, "weights": "linear"}),
    ("brennan_prediger", brennan_prediger, lambda d: (d,), {"categories": CATS}),
    ("fleiss", fleiss_kappa, lambda d: (counts_table(d, CATS),), {"units_axis": 0}),
    ("cohen", cohen_kappa, lambda d: (d[0], d[1]), {"categories": CATS}),
    ("cohen_quadratic", "cohen_kappa_quadratic", lambda d: (d[0], d[1]), {"categories": CATS}),
    ("scott", scott_pi, lambda d: (d[0], d[1]), {"categories": CATS}),
    ("per_code_kappa", per_code_kappa, lambda d: (d,), {"code": 2}),
    ("per_code_kappa_cohen", per_code_kappa, lambda d: (d[:2],),
     {"metric_kwargs": {"code": 2, "method": "cohen"}}),
    ("f1_macro", f1_score, lambda d: (d[0], d[1]), {"labels": CATS}),
    ("f1_code", f1_score, lambda d: (d[0], d[1]), {"code": 3}),
    ("alpha_masi", krippendorff_alpha, lambda d: (_sets(d),), {"distance": "masi"}),
]


def _sets(d):
    return [[None if v is None else frozenset({v, v % 2 + 10}) for v in row] for row in d]


@pytest.mark.parametrize(("name", "metric", "args", "kwargs"), BOOT_CASES,
                         ids=[c[0] for c in BOOT_CASES])
def test_bootstrap_fast_path_equals_recomputation(name, metric, args, kwargs):
    data = _coders(5, 60).tolist()
    fast = bootstrap_ci(metric, *args(data), n=60, seed=9, **kwargs)
    slow = bootstrap_ci(metric, *args(data), n=60, seed=9, fast=False, **kwargs)
    assert fast.value is not None and fast.ci is not None
    assert fast.value == pytest.approx(slow.value, abs=1e-12)
    assert fast.ci == pytest.approx(slow.ci, abs=1e-12)
    assert fast.details["bootstrap"]["n_undefined"] == slow.details["bootstrap"]["n_undefined"]
    bca = bootstrap_ci(metric, *args(data), n=200, seed=9, interval="bca", **kwargs)
    assert bca.ci[0] <= bca.ci[1]


def test_bootstrap_third_party_metric():
    def agreement_rate(a, b):
        return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)

    a = [1, 2, 1, 1, 2, 2, 1, 2] * 5
    b = [1, 2, 2, 1, 2, 1, 1, 2] * 5
    res = bootstrap_ci(agreement_rate, a, b, n=200)
    assert res.value == pytest.approx(0.75)
    assert res.ci[0] < 0.75 < res.ci[1]


def test_bootstrap_undefined_resamples_and_points():
    # one disagreement among 12 units: resamples without it have a single category
    a = [1] * 11 + [2]
    b = [1] * 12
    res = bootstrap_ci(krippendorff_alpha, [a, b], n=300)
    assert res.details["bootstrap"]["n_undefined"] > 50
    assert res.ci is not None
    undefined = bootstrap_ci(krippendorff_alpha, [[1, 1], [1, 1]], n=50)
    assert undefined.value is None and undefined.ci is None
    assert "undefined" in undefined.details["bootstrap"]["reason"]
    one = bootstrap_ci(krippendorff_alpha, [[1], [2]], n=50)
    assert one.value == 0.0 and one.ci is None
    with pytest.raises(ValueError):
        bootstrap_ci(krippendorff_alpha, [[1, 2], [1, 2]], interval="normal")


def test_bootstrap_speed_alpha_300x3():
    data = _coders(8, 300, missing=0.1)
    for level in ("nominal", "ordinal", "interval"):
        t = time.perf_counter()
        res = bootstrap_ci(krippendorff_alpha, data, n=1000, metric_kwargs={"level": level})
        assert time.perf_counter() - t < 2.0
        assert res.ci is not None


# --------------------------------------------------------------------------------------------
# permutation test
# --------------------------------------------------------------------------------------------


def test_permutation_perfect_and_random_coders():
    rng = np.random.default_rng(0)
    gold = rng.choice(["a", "b", "c"], 120).tolist()
    perfect = permutation_test(gold, gold, "a", n=500, seed=1)
    assert perfect.value == pytest.approx(1.0)
    assert perfect.details["p_value"] < 0.01
    assert perfect.details["p_value"] == pytest.approx(1 / 501)
    noise = rng.choice(["a", "b", "c"], 120).tolist()
    rand = permutation_test(gold, noise, "a", n=500, seed=1)
    assert rand.details["p_value"] > 0.05
    assert abs(rand.details["null"]["mean"]) < 0.05
    assert rand.details["null"]["q025"] < 0 < rand.details["null"]["q975"]
    assert permutation_test(gold, noise, "a", n=500, seed=1).details == rand.details


def test_permutation_multilabel_and_missing():
    rng = np.random.default_rng(2)
    gold = [frozenset(x for x in "abc" if rng.random() < 0.4) for _ in range(80)]
    pred = [set(g) if rng.random() < 0.9 else {"c"} for g in gold]
    pred[3] = None
    res = permutation_test(gold, pred, "b", n=300)
    assert res.n_units == 79
    assert res.details["p_value"] < 0.01
    assert res.details["n_permutations"] == 300


# --------------------------------------------------------------------------------------------
# plugin registry and lazy imports
# --------------------------------------------------------------------------------------------

REGISTERED = ["percent_agreement", "cohen_kappa", "cohen_kappa_linear", "cohen_kappa_quadratic",
              "scott_pi", "fleiss_kappa", "krippendorff_alpha", "krippendorff_alpha_nominal",
              "krippendorff_alpha_ordinal", "krippendorff_alpha_interval",
              "krippendorff_alpha_ratio", "krippendorff_alpha_masi",
              "krippendorff_alpha_jaccard", "gwet_ac1", "gwet_ac2", "gwet_ac2_linear",
              "gwet_ac2_quadratic", "brennan_prediger", "per_code_kappa", "per_code_scores",
              "f1_score", "confusion_matrix"]


def test_metrics_registered(monkeypatch):
    from vsdcoder import plugins

    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    plugins.reset()
    reg = plugins.get_registry()
    assert set(REGISTERED) <= set(reg.metrics)
    assert all(reg.metrics[n].plugin == "vsdcoder.builtins.metrics" for n in REGISTERED)
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2], [1, 2, 3, 3, 2, 2, 4, 1, 2]]
    ordinal = reg.metrics["krippendorff_alpha_ordinal"].obj
    assert ordinal(data).value == krippendorff_alpha(data, level="ordinal").value
    assert reg.metrics["cohen_kappa_linear"].obj(*data).value == \
        cohen_kappa(*data, weights="linear").value
    assert reg.metrics["gwet_ac1"].obj(data).value == gwet_ac1(data).value


def test_imports_stay_lean(tmp_path):
    code = ("import sys, vsdcoder.reliability, vsdcoder.builtins.metrics\n"
            "from vsdcoder.plugins import get_registry\n"
            "get_registry()\n"
            "assert 'numpy' not in sys.modules, 'numpy imported'\n"
            "from vsdcoder.reliability import cohen_kappa\n"
            "assert cohen_kappa([1, 2], [1, 2]).value == 1.0\n"
            "assert 'numpy' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    import vsdcoder.reliability as rel

    assert "bootstrap_ci" in dir(rel)
    with pytest.raises(AttributeError):
        _ = rel.no_such_metric
