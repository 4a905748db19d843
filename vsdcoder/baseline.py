"""Supervised baseline: TF-IDF + logistic regression trained on the gold codes, cross-validated.

As in the TikTok study, an LLM's reliability is reported beside what a plain supervised
classifier learns from the same gold codes. :func:`run_baseline` trains one classifier per
codable dimension of a ``unit: document`` codebook and writes a run directory in exactly the
format of an LLM run (``manifest.json``, ``run.db``, ``codes.jsonl``, ``codes.csv``), so the
baseline sits in the leaderboard like any model.

- Features: TF-IDF of word 1-2 grams with sublinear tf, fitted on the training fold only.
  With context columns (``--context-cols``, as in ``vsdcoder code``) the context's words are
  features too, each prefixed with ``ctx_`` so that a word of the context and the same word of
  the text are different features.
- ``single`` and ``ordinal`` dimensions: one multinomial logistic regression
  (``class_weight="balanced"``). ``multi`` dimensions: one binary logistic regression per code
  (one-vs-rest), a code is given when its probability is at least 0.5. ``text`` dimensions are
  not coded (null).
- Out-of-fold predictions: the gold-coded units of a dimension are split into ``folds`` folds
  (stratified by code, shuffled with ``seed``); each unit is coded by the model trained on the
  other folds, so no unit is ever coded by a model that saw it. Units without a usable gold code
  (not in the gold file, a tie between coders, a closed gold gate) are never trained on; they
  are spread over the folds too and coded by that fold's model.
- Gated dimensions (``when:``) are trained only on units whose gold gate is open, and a
  prediction is kept only where the predicted gate is open (null, or ``[]`` for ``multi``,
  otherwise). A relevance gate is learned the same way when the gold has ``relevant`` codes.
- Several human coders: the training label is their majority code; ties are not trained on
  (but still coded).
- Rare codes: a code with fewer gold examples than ``folds`` cannot be spread over every fold.
  Its examples are still trained on under their own code (so the model can give it), and for
  building the folds they are pooled into one stratum, so the split stays stratified.
- No quotes: ``evidence`` is null and ``quote_verified`` null; ``_specify`` fields are null.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.codebook.model import SPECIFY_SUFFIX, Codebook, Dimension
from vsdcoder.coding.runner import RunSummary
from vsdcoder.data.read import DataSpec, DataWarning, Unit, UnitReader, check_data, file_hash
from vsdcoder.errors import UsageError
from vsdcoder.store.rundb import RunDB, UnitResult

#: The model string of baseline runs (manifest ``model.model``, the leaderboard's row name).
MODEL = "baseline/tfidf-logreg"
#: Manifest ``kind`` of a baseline run (LLM runs have none, or ``"llm"``).
KIND = "baseline"
#: The pseudo-dimension holding relevance codes in gold ratings.
RELEVANT = "relevant"
#: TF-IDF settings.
TFIDF = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1, "lowercase": True}
#: Logistic regression settings.
LOGREG = {"class_weight": "balanced", "max_iter": 5000, "C": 1.0, "solver": "lbfgs"}
#: Probability from which a ``multi`` code is given.
THRESHOLD = 0.5
#: Prefix of the context's words among the features (``--context-cols``).
CONTEXT_PREFIX = "ctx_"
_RARE = "\x00rare"
_EMPTY = "\x00empty"


@dataclass
class BaselineSummary(RunSummary):
    """A :class:`~vsdcoder.coding.runner.RunSummary` with the cross-validation results.

    ``cv`` maps each trained dimension to ``{"macro_f1", "accuracy", "n_train", "classes",
    ...}`` computed on the out-of-fold predictions of the gold-coded units; ``notes`` maps a
    dimension that was not coded to the reason.
    """

    cv: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# gold labels


def _load_gold(gold: Any, codebook: Codebook, layout: Any) -> Any:
    """The gold :class:`~vsdcoder.reliability.types.Ratings` (a path is read with read_gold)."""
    from vsdcoder.reliability.types import Ratings

    if isinstance(gold, Ratings):
        return gold
    p = Path(gold)
    if not p.exists():
        raise UsageError(f"{p}: no such gold file")
    from vsdcoder.reliability.gold import read_gold

    return read_gold(p, codebook, layout)


def _training_coders(ratings: Any) -> list[str]:
    """Coders whose codes are the training labels: a gold coder if any, else the humans."""
    kinds = ratings.coders
    for wanted in ("gold", "human"):
        chosen = [c for c, k in kinds.items() if k == wanted]
        if chosen:
            return chosen
    return list(kinds)


def _majority(ratings: Any, dimension: str, coders: list[str]) -> dict[str, Any]:
    """Training labels (unit -> code): the one coder's codes, else the majority (a tie: None)."""
    if len(coders) == 1:
        return dict(ratings.values.get(dimension, {}).get(coders[0], {}))
    from vsdcoder.reliability.gold import majority

    return dict(majority(ratings, dimension, coders))


def _as_set(v: Any) -> frozenset[str]:
    if v is None:
        return frozenset()
    if isinstance(v, (set, frozenset, list, tuple)):
        return frozenset(str(x) for x in v)
    return frozenset({str(v)})


def _as_bool(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "relevant"):
        return True
    if s in ("false", "0", "no", "irrelevant", "not relevant"):
        return False
    return None


# ---------------------------------------------------------------------------------------------
# folds and models


def _assign_folds(labelled: list[str], strata: list[str], others: list[str], k: int,
                  seed: int) -> dict[str, int]:
    """Unit id -> fold: stratified for labelled units (rare strata pooled), even for others."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    fold: dict[str, int] = {}
    counts = Counter(strata)
    pooled = [s if counts[s] >= k else _RARE for s in strata]
    idx = np.arange(len(labelled))
    if len(set(pooled)) > 1:
        splitter: Any = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # a pooled stratum smaller than k: still fine
            warnings.simplefilter("ignore", UserWarning)
            splits = list(splitter.split(idx, pooled))
    else:
        splits = list(KFold(n_splits=k, shuffle=True, random_state=seed).split(idx))
    for f, (_, test) in enumerate(splits):
        for i in test:
            fold[labelled[i]] = f
    order = np.random.RandomState(seed).permutation(len(others))
    for j, i in enumerate(order):
        fold[others[i]] = j % k
    return fold


def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(**TFIDF)


def _logreg(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(random_state=seed, **LOGREG)


def _one_thread():
    """Single-threaded BLAS while fitting.

    These problems are small, and BLAS threads fighting over a few busy cores made one fit 50
    times slower (1.8 s instead of 0.04 s on SAD). The solver's BLAS is loaded first, so the
    limit reaches it.
    """
    import sklearn.linear_model  # noqa: F401 (loads scipy.optimize and its BLAS)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


class _Constant:
    """A 'model' for a training fold with one class only: always that class."""

    def __init__(self, value: Any):
        self.value = value


def _fit_single(texts: list[str], y: list[str], seed: int) -> Any:
    if len(set(y)) == 1:
        return _Constant(y[0])
    from sklearn.pipeline import Pipeline

    model = Pipeline([("tfidf", _vectorizer()), ("logreg", _logreg(seed))])
    model.fit(texts, y)
    return model


def _predict_single(model: Any, texts: list[str]) -> list[str]:
    if isinstance(model, _Constant):
        return [model.value] * len(texts)
    return [str(v) for v in model.predict(texts)]


def _fit_multi(texts: list[str], y: list[frozenset[str]], codes: list[str], seed: int) -> Any:
    vec = _vectorizer()
    x = vec.fit_transform(texts)
    per_code: dict[str, Any] = {}
    for c in codes:
        target = [int(c in s) for s in y]
        if not any(target):
            continue  # never given in training: never predicted
        per_code[c] = _Constant(1.0) if all(target) else _logreg(seed).fit(x, target)
    return vec, per_code


def _predict_multi(model: Any, texts: list[str]) -> list[dict[str, float]]:
    vec, per_code = model
    x = vec.transform(texts)
    probs: list[dict[str, float]] = [{} for _ in texts]
    for c, m in per_code.items():
        if isinstance(m, _Constant):
            p = [m.value] * len(texts)
        else:
            p = m.predict_proba(x)[:, list(m.classes_).index(1)]
        for i, v in enumerate(p):
            probs[i][c] = float(v)
    return probs


def _pick_multi(dim: Dimension, probs: dict[str, float], allow_empty: bool) -> list[str]:
    """Codes of a multi dimension from per-code probabilities, obeying the codebook's rules."""
    chosen = sorted((c for c, p in probs.items() if p >= THRESHOLD), key=lambda c: -probs[c])
    none = dim.none_name
    if none and none in chosen and len(chosen) > 1:
        chosen.remove(none)
    if dim.max_codes:
        chosen = chosen[:dim.max_codes]
    if not chosen and not allow_empty and probs:
        chosen = [max(probs, key=lambda c: probs[c])]
    order = dim.codable_names()
    return sorted(chosen, key=order.index)


# ---------------------------------------------------------------------------------------------
# one dimension


@dataclass
class _Task:
    """One thing to learn: a dimension (or the relevance gate) and its gold labels."""

    name: str
    kind: str  # single | multi
    labels: dict[str, Any]  # unit id -> str code or frozenset of codes (training units only)
    dim: Dimension | None = None


def _document(u: Unit) -> str:
    """What the classifier reads: the text, then the context's words marked ``ctx_``."""
    if not u.context:
        return u.text
    words = re.findall(r"(?u)\b\w\w+\b", u.context.lower())
    return u.text + "\n" + " ".join(CONTEXT_PREFIX + w for w in words)


def _cross_validate(task: _Task, units: list[Unit], folds: int, seed: int
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Out-of-fold predictions for every unit, and the CV metrics on the labelled ones."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    ids = [u.id for u in units]
    text = {u.id: _document(u) for u in units}
    labelled = [i for i in ids if i in task.labels]
    others = [i for i in ids if i not in task.labels]
    k = min(folds, len(labelled))
    if task.kind == "multi":
        strata = [";".join(sorted(task.labels[i])) or _EMPTY for i in labelled]
    else:
        strata = [task.labels[i] for i in labelled]
    fold = _assign_folds(labelled, strata, others, k, seed)
    pred: dict[str, Any] = {}
    codes = task.dim.codable_names() if task.dim is not None else []
    for f in range(k):
        train = [i for i in labelled if fold[i] != f]
        test = [i for i in ids if fold[i] == f]
        if not test:
            continue
        x_train = [text[i] for i in train]
        x_test = [text[i] for i in test]
        y_train = [task.labels[i] for i in train]
        if task.kind == "multi":
            out: list[Any] = _predict_multi(_fit_multi(x_train, y_train, codes, seed), x_test)
        else:
            out = _predict_single(_fit_single(x_train, y_train, seed), x_test)
        pred.update(zip(test, out, strict=True))

    cv: dict[str, Any] = {"n_train": len(labelled), "folds": k}
    if task.kind == "multi":
        assert task.dim is not None
        # the codes as written to codes.jsonl (a required dimension is never left empty)
        picked = {i: _pick_multi(task.dim, pred[i], allow_empty=not task.dim.required)
                  for i in labelled}
        mlb = MultiLabelBinarizer(classes=codes)
        y_true = mlb.fit_transform([sorted(task.labels[i]) for i in labelled])
        y_pred = mlb.transform([picked[i] for i in labelled])
        used = [j for j in range(len(codes)) if y_true[:, j].any() or y_pred[:, j].any()]
        cv["macro_f1"] = round(float(f1_score(y_true[:, used], y_pred[:, used],
                                              average="macro", zero_division=0)), 4) \
            if used else None
        cv["exact_match"] = round(float(accuracy_score(y_true, y_pred)), 4)
        cv["classes"] = dict(sorted(Counter(c for i in labelled
                                            for c in task.labels[i]).items()))
    else:
        y_true = [task.labels[i] for i in labelled]
        y_hat = [pred[i] for i in labelled]
        cv["macro_f1"] = round(float(f1_score(y_true, y_hat, average="macro",
                                              zero_division=0)), 4)
        cv["accuracy"] = round(float(accuracy_score(y_true, y_hat)), 4)
        cv["classes"] = dict(sorted(Counter(y_true).items()))
    rare = sorted(c for c, n in cv["classes"].items() if n < k)
    if rare:
        cv["rare_classes"] = rare
    return pred, cv


# ---------------------------------------------------------------------------------------------
# the run


def _load(codebook: Any) -> tuple[Codebook, str]:
    from vsdcoder.codebook.load import LoadedCodebook, load_codebook

    if isinstance(codebook, Codebook):
        return codebook, "(in memory)"
    loaded = codebook if isinstance(codebook, LoadedCodebook) else load_codebook(codebook)
    return loaded.codebook, loaded.source


def _prepare_dir(run_dir: Path) -> None:
    """Create ``run_dir``; an earlier baseline run there is replaced, anything else refused."""
    from vsdcoder.store import manifest as mf

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{run_dir}: cannot create the run directory ({exc.strerror}); "
                         "choose another --out") from None
    prior = mf.read(run_dir)
    if prior is None:
        if (run_dir / "run.db").exists():
            raise UsageError(f"{run_dir} holds a run.db but no manifest; use another --out")
        return
    if prior.get("kind") != KIND:
        raise UsageError(f"{run_dir} holds a run of {prior.get('model', {}).get('model')}, not "
                         "a baseline; use another --out")
    for name in ("run.db", "run.db-wal", "run.db-shm", "codes.jsonl", "codes.csv"):
        (run_dir / name).unlink(missing_ok=True)


def _versions() -> dict[str, Any]:
    from importlib import metadata

    from vsdcoder.store import manifest as mf

    out = mf.versions()
    for p in ("scikit-learn", "numpy", "scipy"):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def run_baseline(
    data: str | Path | DataSpec,
    codebook: Any,
    gold: Any,
    *,
    out: str | Path,
    layout: Any = None,
    id_col: str = "id",
    text_col: str = "text",
    context_cols: Sequence[str] = (),
    meta_cols: Sequence[str] = (),
    dedupe_ids: str = "error",
    folds: int = 5,
    seed: int = 0,
    dimensions: Sequence[str] | None = None,
    argv: Sequence[str] | None = None,
) -> BaselineSummary:
    """Train the TF-IDF + logistic regression baseline on gold and write a run directory.

    Args:
        data: The data file (CSV, TSV, JSONL, Parquet, Excel) or a :class:`DataSpec`.
        codebook: A codebook path or registered name (or a loaded :class:`Codebook`); it must
            code documents (``unit: document``).
        gold: The gold codes: a file read with
            :func:`vsdcoder.reliability.gold.read_gold` (``layout`` as there), or a
            :class:`~vsdcoder.reliability.types.Ratings`.
        out: The run directory to write (an earlier baseline run there is replaced).
        layout: The gold file's layout, passed to ``read_gold``.
        id_col: Column of the data with unique ids (matching the gold ids).
        text_col: Column of the data with the text.
        context_cols: Columns shown as context (as in :func:`vsdcoder.code`): their words are
            features of their own (prefixed ``ctx_``), and the context is stored with the units.
        meta_cols: Columns carried into the output.
        dedupe_ids: A repeated id: ``"error"`` (refuse the file, listing every repeat) or
            ``"first"`` (use the first row of each id).
        folds: Number of cross-validation folds (at least 2).
        seed: Seed of the fold split and the classifiers.
        dimensions: Only these dimensions (default: every codable one).
        argv: The command line, recorded in the manifest.

    Returns:
        A :class:`BaselineSummary` (run directory, counts, per-dimension CV results).

    Raises:
        UsageError: a segment codebook, unreadable data or gold, no gold codes to learn from.
    """
    started = time.time()
    cb, source = _load(codebook)
    if cb.unit != "document":
        raise UsageError(f"the baseline codes documents; codebook '{cb.name}' has "
                         "'unit: segment' (records with quotes), which a text classifier "
                         "cannot produce")
    if folds < 2:
        raise UsageError("--folds must be at least 2")
    names = [d.name for d in cb.dimensions]
    if dimensions:
        from vsdcoder.suggest import close_matches

        unknown = [d for d in dimensions if d not in names]
        if unknown:
            close = {u: c[0] for u in unknown if (c := close_matches(u, names))}
            hint = ""
            if close:
                hint = " (did you mean " + ", ".join(
                    f"'{c}'" + (f" for '{u}'" if len(unknown) > 1 else "")
                    for u, c in close.items()) + "?)"
            raise UsageError(f"no dimension {', '.join(map(repr, unknown))} in codebook "
                             f"'{cb.name}'; it has: {', '.join(names)}{hint}")
        for d in dimensions:
            when = cb.dimension(d).when
            if when is not None and when.dimension not in dimensions:
                raise UsageError(f"dimension '{d}' is only coded when '{when.dimension}' is "
                                 f"one of {', '.join(when.codes)}; include '{when.dimension}' "
                                 "in the dimensions too")
    wanted = list(dimensions) if dimensions else names
    spec = data if isinstance(data, DataSpec) else DataSpec(
        Path(data), id_col, text_col, tuple(context_cols), tuple(meta_cols),
        dedupe_ids=dedupe_ids)
    if not spec.path.exists():
        raise UsageError(f"{spec.path}: no such data file")
    # the whole file is checked (columns, every repeated id, units to code) before the gold is
    # read and before the run directory is made
    for message in check_data(spec).warnings(spec):
        warnings.warn(message, DataWarning, stacklevel=2)
    ratings = _load_gold(gold, cb, layout)
    reader = UnitReader(spec)
    units = list(reader)

    coders = _training_coders(ratings)
    known = {u.id for u in units}
    notes: dict[str, str] = {}
    cv: dict[str, dict[str, Any]] = {}
    preds: dict[str, dict[str, Any]] = {}

    def labels_of(name: str) -> dict[str, Any]:
        return {u: v for u, v in _majority(ratings, name, coders).items()
                if v is not None and u in known}

    # the relevance gate, when the codebook has one and the gold codes it
    gold_relevant: dict[str, bool | None] = {}
    if cb.relevance is not None:
        gold_relevant = {u: _as_bool(v) for u, v in labels_of(RELEVANT).items()}
        rel = {u: "true" if v else "false" for u, v in gold_relevant.items() if v is not None}
        if len(rel) >= 2:
            with _one_thread():
                preds[RELEVANT], cv[RELEVANT] = _cross_validate(
                    _Task(RELEVANT, "single", rel), units, folds, seed)
        else:
            notes[RELEVANT] = "the gold has no relevance codes; relevance is left null"

    gold_values: dict[str, dict[str, Any]] = {}
    for dim in cb.dimensions:
        if dim.name not in wanted:
            continue
        if dim.type == "text":
            notes[dim.name] = "text dimension: not coded by the baseline"
            continue
        raw = labels_of(dim.name)
        if dim.type == "multi":
            gold_values[dim.name] = {u: _as_set(v) for u, v in raw.items()}
        else:
            gold_values[dim.name] = {u: str(v) for u, v in raw.items()}
        train = {u: v for u, v in gold_values[dim.name].items()
                 if gold_relevant.get(u) is not False and _gold_gate_open(cb, dim, u, gold_values)}
        if len(train) < 2:
            notes[dim.name] = (f"{len(train)} gold-coded unit(s) to learn from (need at least 2); "
                               "not coded")
            continue
        task = _Task(dim.name, "multi" if dim.type == "multi" else "single", train, dim)
        with _one_thread():
            preds[dim.name], cv[dim.name] = _cross_validate(task, units, folds, seed)
    if not any(n in preds for n in wanted):
        raise UsageError(
            f"the gold codes none of the dimensions {', '.join(wanted)} of codebook '{cb.name}' "
            f"for the units of {spec.path}; check the gold file, its --layout and that its ids "
            f"match the data's '{spec.id_col}' column")

    run_dir = Path(out)
    _prepare_dir(run_dir)
    db = RunDB(run_dir / "run.db")
    try:
        session = db.start_session(list(argv or []))
        manifest = _manifest(cb, source, spec, gold, layout, ratings, coders, known, folds,
                             seed, cv, notes, argv)
        from vsdcoder.store import manifest as mf
        from vsdcoder.store.exports import write_exports

        mf.write(run_dir, manifest)
        for skip in reader.skips:
            db.save(UnitResult(id=skip.id, row=skip.row, status="skipped", error=skip.reason,
                               meta=skip.meta), session)
        for u in units:
            result = _result(cb, u.id, preds)
            db.save(UnitResult(id=u.id, row=u.row, status="coded", result=result, attempts=0,
                               quote_verified=None, text=u.text, context=u.context,
                               meta=u.meta), session)
        db.end_session(session, "finished")
        write_exports(db, run_dir, cb, list(spec.meta_cols))
        manifest = mf.finish(manifest, db, "finished", started)
        mf.write(run_dir, manifest)
        return BaselineSummary(run_dir, "finished", db.counts(), db.totals(), len(units),
                               time.time() - started, cv=cv, notes=notes)
    finally:
        db.close()


def _gold_gate_open(cb: Codebook, dim: Dimension, unit: str,
                    gold_values: dict[str, dict[str, Any]]) -> bool:
    """Whether the gold codes open ``dim``'s gate for ``unit`` (unknown parent: closed)."""
    if dim.when is None:
        return True
    parent = cb.dimension(dim.when.dimension)
    if not _gold_gate_open(cb, parent, unit, gold_values):
        return False
    got = gold_values.get(parent.name, {}).get(unit)
    return bool(_as_set(got) & set(dim.when.codes))


def _result(cb: Codebook, unit: str, preds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The stored result of one unit, shaped like an LLM run's (see LLMCoder.result_from_answer)."""
    result: dict[str, Any] = {}
    relevant: bool | None = None
    if cb.relevance is not None:
        if RELEVANT in preds:
            relevant = preds[RELEVANT][unit] == "true"
        result["relevant"] = relevant
    codes: dict[str, Any] = {}
    for dim in cb.dimensions:
        value: Any = [] if dim.type == "multi" else None
        is_open = relevant is not False and (
            dim.when is None or bool(_as_set(codes.get(dim.when.dimension))
                                     & set(dim.when.codes)))
        if is_open and dim.name in preds:
            p = preds[dim.name][unit]
            if dim.type == "multi":
                value = _pick_multi(dim, p, allow_empty=not dim.required)
            else:
                value = p
        codes[dim.name] = value
        if dim.specify_names():
            codes[dim.name + SPECIFY_SUFFIX] = None
    result["codes"] = codes
    if cb.evidence.quote:
        result["evidence"] = None
    if cb.evidence.rationale:
        result["rationale"] = None
    return result


def _manifest(cb: Codebook, source: str, spec: DataSpec, gold: Any, layout: Any, ratings: Any,
              coders: list[str], known: set[str], folds: int, seed: int, cv: dict[str, Any],
              notes: dict[str, str], argv: Sequence[str] | None) -> dict[str, Any]:
    from vsdcoder.codebook.compile import sha256_json
    from vsdcoder.store import manifest as mf

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data_hash = file_hash(spec.path)
    gold_path = None if not isinstance(gold, (str, os.PathLike)) else Path(gold)
    label = (coders[0] if len(coders) == 1
             else f"majority of {len(coders)} coders ({', '.join(coders)}); ties not trained on")
    sk = _versions()
    return {
        "format": mf.FORMAT,
        "kind": KIND,
        "status": "running",
        "created": now,
        "updated": now,
        "codebook": {"name": cb.name, "version": cb.version,
                     "hash": sha256_json(cb.model_dump(mode="json")), "source": source,
                     "template": cb.template},
        # a baseline sends no prompt; the keys are kept so every run directory reads alike
        "prompt": {"hash": None, "messages_hash": None, "schema_hash": None},
        "data": {"path": str(spec.path), "hash": data_hash, "id_col": spec.id_col,
                 "text_col": spec.text_col, "context_cols": list(spec.context_cols),
                 "meta_cols": list(spec.meta_cols), "dedupe": spec.dedupe, "limit": None,
                 "sample": None, "sample_seed": None},
        "gold": {"path": str(gold_path) if gold_path else None,
                 "hash": file_hash(gold_path) if gold_path and gold_path.is_file() else None,
                 "layout": layout if isinstance(layout, (str, type(None))) else str(layout),
                 "coders": coders, "label": label, "units": len(ratings.units),
                 "units_in_data": sum(u in known for u in ratings.units),
                 "problems": ratings.problems[:20]},
        "model": {"model": MODEL, "kind": KIND, "api_base": None, "mode": None,
                  "temperature": None, "seed": seed, "max_tokens": None,
                  "params": {"folds": folds, "seed": seed,
                             "features": {"tfidf": {**TFIDF, "ngram_range": list(
                                 TFIDF["ngram_range"])}},
                             "classifier": {"logistic_regression": dict(LOGREG),
                                            "multi_threshold": THRESHOLD},
                             "sklearn": sk.get("scikit-learn"),
                             "cv": cv, "not_coded": notes}},
        "run": {"store_text": True},
        "versions": sk,
        "sessions": [{"started": now, "ended": None, "status": "running",
                      "data_hash": data_hash, "argv": list(argv or [])}],
    }
