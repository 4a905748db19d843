"""Render an :class:`~vsdcoder.reliability.evaluate.EvalReport`: terminal, JSON and HTML.

- :func:`print_report`: rich tables per dimension and per code (n, agreement, kappa, alpha,
  AC1, F1 with confidence intervals as ``[lo, hi]``, the human baseline alongside) and a
  leaderboard when several predictions are compared.
- :func:`write_json`: the JSON report (schema in docs/reliability.md, "Reports").
- :func:`write_html`: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
  fetched): confusion-matrix heat maps, per-code charts with CI whiskers, the leaderboard.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.reliability.evaluate import (
    Baseline,
    DimensionEval,
    EvalReport,
    PredEval,
)
from vsdcoder.reliability.types import MetricResult

DASH = "—"


# -- formatting ---------------------------------------------------------------------------------


def fmt_value(v: float | None, digits: int = 2) -> str:
    """A number, or a dash when undefined."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    return f"{v:.{digits}f}"


def fmt_metric(m: MetricResult | None, digits: int = 2, ci: bool = True) -> str:
    """``0.71 [0.64, 0.78]``; a dash when undefined."""
    if m is None or m.value is None:
        return DASH
    s = fmt_value(m.value, digits)
    if ci and m.ci is not None:
        s += f" [{m.ci[0]:.{digits}f}, {m.ci[1]:.{digits}f}]"
    return s


def fmt_range(r: list[float] | None, digits: int = 2) -> str:
    """``0.55–0.71`` (a single number when both ends are equal)."""
    if not r:
        return DASH
    lo, hi = r
    if abs(hi - lo) < 10 ** -digits / 2:
        return fmt_value(lo, digits)
    return f"{lo:.{digits}f}–{hi:.{digits}f}"


def _fmt_money(v: float | None) -> str:
    return DASH if v is None else f"${v:.4f}"


def _fmt_secs(v: float | None) -> str:
    return DASH if v is None else f"{v:.1f} s"


def _fmt_rate(p: PredEval | dict[str, Any]) -> str:
    run = p.run if isinstance(p, PredEval) else p
    rate = run.get("failure_rate")
    if rate is None:
        return DASH
    return f"{rate:.1%} ({run.get('failed', 0)}/{run.get('total', 0)})"


def _dim_label(d: DimensionEval, short: bool = False) -> str:
    if d.gate:
        if short:  # table cells: the gate is spelled out in the notes under the table
            return f"{d.name} (gated)"
        return f"{d.name} (if {d.gate['dimension']} = {', '.join(d.gate['codes'])})"
    return d.name


# -- terminal -----------------------------------------------------------------------------------

#: Console widths from which the human baseline sits in the same table as the coefficients.
_WIDE_DIM = 150
_WIDE_CODE = 175
_NARROW = 120


def print_report(report: EvalReport, console: Any = None, *, compact: bool = False,
                 codes: bool = True) -> None:
    """Print the report as rich tables.

    On a wide console the human baseline columns sit beside the coefficients; on a narrow one
    they form a table of their own under them, and intervals go under their values.

    Args:
        report: What :func:`~vsdcoder.reliability.evaluate.evaluate` returned.
        console: A rich Console (default: stdout).
        compact: Only the per-dimension table(s), the leaderboard and the problems count.
        codes: Also print the per-code tables (ignored with ``compact``).
    """
    if console is None:
        from vsdcoder.cli.output import console as make

        console = make()
    s = report.settings
    cb = report.codebook
    console.print(f"Evaluation against {_against(report.gold['reference'])}; codebook "
                  f"{cb['name']} {cb['version']}; {report.gold['n_units']} gold units.",
                  markup=False, highlight=False)
    if s["bootstrap"]:
        console.print(f"{s['ci_level']:.0%} confidence intervals [lo, hi]: percentile bootstrap "
                      f"over units, {s['bootstrap']} resamples (seed {s['seed']}).",
                      markup=False, highlight=False)
    for p in report.preds:
        _print_pred(console, report, p, compact=compact, codes=codes and not compact)
    if len(report.preds) > 1:
        _print_leaderboard(console, report)
    for n in report.notes:
        console.print(f"note: {n}", markup=False, highlight=False)
    if report.problems:
        if compact:
            console.print(f"{len(report.problems)} problem(s) with the inputs (ids on one side "
                          "only, unknown codes, ...); see 'vsdcoder eval' or the JSON report.",
                          markup=False, highlight=False)
        else:
            console.print("problems:", markup=False, highlight=False)
            for pr in report.problems:
                console.print(f"  - {pr}", markup=False, highlight=False)


def _t(text: Any) -> Any:
    """User text as a rich Text (never read as markup)."""
    from rich.text import Text

    return Text("" if text is None else str(text))


def _against(reference: str) -> str:
    """``the gold coder 'x'``: the reference with one article ("the one human coder" has one)."""
    return reference if reference.startswith("the ") else f"the {reference}"


#: Cells a column takes beside its text: one space each side and a border.
_EDGE = 3


def _min_width(texts: Any) -> int:
    """The narrowest a column of ``texts`` can be without breaking a word: its longest word."""
    return max((len(w) for t in texts for w in str(t).split()), default=1)


def _split_name(name: str, width: int) -> str:
    """``name`` on lines of at most ``width``, broken only after '_', '-', '/' or a space.

    A snake_case name is then never cut mid-word ("privacy_and_data_" / "protection"), as a
    plain fold would ("privacy_and_data_protectio" / "n").
    """
    if len(name) <= width:
        return name
    import re

    lines: list[str] = []
    line = ""
    for piece in re.findall(r"[^_\-/ ]+[_\-/ ]*|[_\-/ ]+", name):
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    lines.append(line.rstrip())
    return "\n".join(lines)


def _and(words: list[str]) -> str:
    """``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _fitted_table(console: Any, title: str, headers: list[str], rows: list[list[Any]],
                  drop: tuple[str, ...] = ()) -> list[str]:
    """Print a table whose first column holds names, fitted to the console's width.

    The names are kept whole; when the longest does not fit beside the other columns at
    their narrowest, the columns named in ``drop`` go, first to go first, and then names are
    broken after '_', '-' or '/' (see :func:`_split_name`), never mid-word. Other cells wrap at
    their spaces. Returns the headers of the columns left out.
    """
    from rich.table import Table

    width = getattr(console, "width", 80) or 80
    names = [str(r[0]) for r in rows]
    longest = max([len(n) for n in names] + [len(headers[0])])
    narrow = {h: _min_width([h, *(str(r[i]) for r in rows)])
              for i, h in enumerate(headers) if i}
    shown = list(narrow)

    def room() -> int:
        return width - 2 - _EDGE - sum(narrow[h] + _EDGE for h in shown)  # 1 cell spare

    dropped = []
    for h in drop:
        if room() >= longest:
            break
        if h in shown:
            shown.remove(h)
            dropped.append(h)
    name_w = max(8, min(longest, room()))
    t = Table(title=_t(title), title_justify="left")
    # a fixed width: rich would otherwise narrow the widest column first, i.e. the names
    t.add_column(headers[0], overflow="fold", width=name_w)
    keep = [i for i, h in enumerate(headers) if i and h in shown]
    for i in keep:  # never narrower than its longest word: no header or value cut short
        t.add_column(headers[i], justify="right", min_width=narrow[headers[i]])
    for r in rows:
        t.add_row(_t(_split_name(str(r[0]), name_w)), *(r[i] for i in keep))
    console.print(t)
    return dropped


def _cell(m: MetricResult | None, wide: bool, ci: bool = True) -> str:
    s = fmt_metric(m, ci=False)
    if ci and m is not None and m.value is not None and m.ci is not None:
        s += (" " if wide else "\n") + f"[{m.ci[0]:.2f}, {m.ci[1]:.2f}]"
    return s


def _print_pred(console: Any, report: EvalReport, p: PredEval, *, compact: bool,
                codes: bool) -> None:

    run = p.run
    extra = []
    if run.get("model"):
        extra.append(f"model {run['model']}")
    if run.get("cost_usd") is not None:
        extra.append(f"cost {_fmt_money(run['cost_usd'])}")
    if run.get("seconds") is not None:
        extra.append(f"time {_fmt_secs(run['seconds'])}")
    if run.get("failure_rate") is not None:
        extra.append(f"failed {_fmt_rate(p)}")
    console.print()
    console.print(f"{p.name} ({p.kind}): {p.units['evaluated']} units evaluated"
                  + (f"; {'; '.join(extra)}" if extra else ""), markup=False, highlight=False)
    width = getattr(console, "width", 80) or 80
    has_base = any(d.baseline for d in p.dimensions)
    wide = width >= _WIDE_DIM
    headers = ["dimension", "n", "agreement", "kappa", "alpha", "AC1", "F1 macro"]
    base_cols = ["α humans", "κ human pairs", "κ LLM–human", "α LLM in place"]
    if has_base and wide:
        headers += base_cols
    rows = []
    for d in p.dimensions:
        row = [_dim_label(d, short=True), str(d.n)] + [
            _cell(d.metrics.get(k), wide) for k in ("agreement", "kappa", "alpha", "ac1",
                                                     "f1_macro")]
        if has_base and wide:
            row += _base_cells(d.baseline, kappa=d.type != "multi", wide=True)
        rows.append(row)
    # long dimension names on a narrow terminal: agreement and alpha (in the JSON and HTML
    # reports) make room for them
    left_out = _fitted_table(console, f"{p.name} against the gold, per dimension", headers,
                             rows, drop=("agreement", "alpha", "AC1"))
    if left_out:
        console.print(f"  (per dimension, {_and(left_out)} are in the --json and --html "
                      "reports; widen the terminal to see them here)", markup=False,
                      highlight=False)
    if has_base and not wide:
        _fitted_table(console, f"{p.name}: human baseline, per dimension",
                      ["dimension", *base_cols],
                      [[d.name, *_base_cells(d.baseline, kappa=d.type != "multi")]
                       for d in p.dimensions])
    for line in _dim_notes(p):
        console.print(f"  {line}", markup=False, highlight=False)
    if not codes:
        return
    wide = width >= _WIDE_CODE
    # below 120 columns the per-code agreement and alpha (in the JSON and HTML reports) are left
    # out so that the rest stays readable; long code names may need precision and recall gone too
    narrow = width < _NARROW
    shown = [k for k in ("agreement", "kappa", "alpha", "ac1")
             if not narrow or k in ("kappa", "ac1")]
    names = {"agreement": "agreement", "kappa": "kappa", "alpha": "alpha", "ac1": "AC1"}
    left_out = [names[k] for k in ("agreement", "alpha") if k not in shown]
    for d in p.dimensions:
        if not d.codes:
            continue
        headers = ["code", "gold", "pred", *(names[k] for k in shown), "precision", "recall",
                   "F1", "p"]
        code_base = any(c.baseline for c in d.codes)
        if code_base and wide:
            headers += base_cols[:3]
        rows = []
        for c in d.codes:
            m = c.metrics
            row = [c.code, str(c.support), str(c.predicted),
                   *(_cell(m.get(k), wide) for k in shown),
                   _cell(m.get("precision"), wide, ci=False),
                   _cell(m.get("recall"), wide, ci=False), _cell(m.get("f1"), wide),
                   _fmt_p(c.p_value)]
            if code_base and wide:
                row += _base_cells(c.baseline, kappa=True, wide=True)[:3]
            rows.append(row)
        gone = _fitted_table(console, f"{p.name}: {_dim_label(d)}, per code (present vs absent)",
                             headers, rows, drop=("precision", "recall", "AC1"))
        left_out += [h for h in gone if h not in left_out]
        if code_base and not wide:
            _fitted_table(console, f"{p.name}: {d.name}, human baseline per code",
                          ["code", *base_cols[:3]],
                          [[c.code, *_base_cells(c.baseline, kappa=True)[:3]] for c in d.codes])
    if left_out and any(d.codes for d in p.dimensions):
        console.print(f"  (per code, {_and(left_out)} are in the --json and --html reports; "
                      "widen the terminal to see them here)", markup=False, highlight=False)


def _dim_notes(p: PredEval) -> list[str]:
    out = []
    for d in p.dimensions:
        if d.kappa_weights:
            out.append(f"{d.name}: ordinal alpha and {d.kappa_weights}-weighted kappa")
        if d.type == "multi":
            out.append(f"{d.name}: multi-label; alpha with MASI distance, agreement = the same "
                       "set of codes, kappa and AC1 per code")
        if d.gate:
            out.append(f"{d.name}: scored on the {d.gate['n_open']} units where the gold has "
                       f"{d.gate['dimension']} = {', '.join(d.gate['codes'])}")
        out += [f"{d.name}: {n}" for n in d.notes]
    out += [f"{sk['name']}: not scored ({sk['reason']})" for sk in p.skipped_dimensions]
    if p.quote_overlap:
        q = p.quote_overlap
        out.append(f"quote overlap with gold spans (characters, {q['units_with_gold_spans']} "
                   f"units): precision {fmt_value(q['precision'])}, recall "
                   f"{fmt_value(q['recall'])}, F1 {fmt_value(q['f1'])}")
    return out


def _fmt_p(p: float | None) -> str:
    if p is None:
        return DASH
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def _base_cells(b: Baseline | None, kappa: bool, wide: bool = False) -> list[str]:
    if b is None:
        return [DASH] * 4
    return [_cell(b.alpha_humans, wide), fmt_range(b.human_kappa_range) if kappa else
            fmt_range(b.human_alpha_range) + " (α)",
            fmt_range(b.llm_kappa_range) if kappa else
            fmt_range(Baseline._range(r["alpha"] for r in b.llm_vs_humans)) + " (α)",
            fmt_range(b.llm_in_place_range)]


def _print_leaderboard(console: Any, report: EvalReport) -> None:
    from rich.table import Table

    width = getattr(console, "width", 80) or 80
    wide = width >= 150
    t = Table(title="Leaderboard (means over the dimensions)", title_justify="left")
    keep = {"coder": min(_min_width([r["name"] for r in report.leaderboard] + ["coder"]),
                         max(12, width // 4)),
            "model": min(_min_width([r["model"] or DASH for r in report.leaderboard]
                                    + ["model"]), max(12, width // 4))}
    for col in ("#", "coder", "model", "n", "alpha", "kappa", "F1 macro", "cost", "time",
                "failed"):
        t.add_column(col, justify="left" if col in keep else "right",
                     overflow="fold" if col in keep else "ellipsis", min_width=keep.get(col))
    for i, r in enumerate(report.leaderboard, 1):
        t.add_row(str(i), _t(r["name"]), _t(r["model"] or DASH), str(r["n"]),
                  _cell(_m(r["alpha_mean"]), wide), _cell(_m(r["kappa_mean"]), wide),
                  _cell(_m(r["f1_macro_mean"]), wide), _fmt_money(r["cost_usd"]),
                  _fmt_secs(r["seconds"]), _fmt_rate(r))
    console.print()
    console.print(t)


# -- JSON ---------------------------------------------------------------------------------------


def write_json(report: EvalReport, path: str | Path) -> Path:
    """Write the JSON report (``{"format": 1, ...}``; see docs/reliability.md, "Reports")."""
    path = Path(path)
    try:
        path.write_text(report.to_json() + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the JSON report ({exc.strerror})") from None
    return path


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem;margin-top:1.8rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;vertical-align:top}
th{background:#f4f6f8}td.l,th.l{text-align:left}
.meta{color:#555;font-size:.9rem}.note{color:#8a5a00}.problems li{color:#8a1f11}
.ci{color:#777;font-size:.8rem}.charts{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
svg text{font-family:system-ui,sans-serif}figure{margin:0}figcaption{font-size:.8rem;color:#555}
"""

_BLUE = (31, 119, 180)
_SERIES = {"kappa": "#1f77b4", "F1": "#d62728", "alpha": "#2ca02c", "AC1": "#9467bd",
           "α humans": "#7f7f7f"}


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _cell_metric(m: MetricResult | None) -> str:
    if m is None or m.value is None:
        title = f' title="{_e(m.reason)}"' if m is not None and m.reason else ""
        return f"<td{title}>{DASH}</td>"
    ci = f'<br><span class="ci">[{m.ci[0]:.2f}, {m.ci[1]:.2f}]</span>' if m.ci else ""
    return f"<td>{m.value:.3f}{ci}</td>"


def _heat(t: float) -> str:
    r = round(255 + (_BLUE[0] - 255) * t)
    g = round(255 + (_BLUE[1] - 255) * t)
    b = round(255 + (_BLUE[2] - 255) * t)
    return f"rgb({r},{g},{b})"


def heatmap_svg(labels: list[str], matrix: list[list[int]], title: str = "",
                row_title: str = "gold", col_title: str = "prediction") -> str:
    """A confusion matrix as an SVG heat map; colour = share of the gold row, text = count."""
    k = len(labels)
    if not k:
        return ""
    cell = 34 if k <= 10 else 24
    lab_w = min(170, 8 + 7 * max(len(x) for x in labels))
    top = round(lab_w * 0.87) + 24  # labels rotated by 60 degrees
    left = lab_w + 26
    w = left + k * cell + round(lab_w * 0.5) + 10
    h = top + k * cell + 10
    out = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
           f'aria-label="{_e(title)}">']
    out.append(f'<text x="{left + k * cell / 2}" y="12" text-anchor="middle" '
               f'font-size="11" fill="#555">{_e(col_title)} →</text>')
    out.append(f'<text x="10" y="{top + k * cell / 2}" font-size="11" fill="#555" '
               f'transform="rotate(-90 10 {top + k * cell / 2})" text-anchor="middle">'
               f'{_e(row_title)} →</text>')
    for j, lab in enumerate(labels):
        x = left + j * cell + cell / 2
        out.append(f'<text x="{x}" y="{top - 6}" font-size="10" '
                   f'transform="rotate(-60 {x} {top - 6})">{_e(_short(lab))}</text>')
    for i, row in enumerate(matrix):
        total = sum(row)
        y = top + i * cell
        out.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" font-size="10" '
                   f'text-anchor="end">{_e(_short(labels[i]))}</text>')
        for j, v in enumerate(row):
            share = v / total if total else 0.0
            x = left + j * cell
            stroke = ' stroke="#222" stroke-width="1.2"' if i == j else ' stroke="#eee"'
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" '
                       f'fill="{_heat(share)}"{stroke}><title>gold {_e(labels[i])}, '
                       f'prediction {_e(labels[j])}: {v} ({share:.0%} of the row)</title></rect>')
            if v:
                color = "#fff" if share > 0.55 else "#222"
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" font-size="10" '
                           f'text-anchor="middle" fill="{color}">{v}</text>')
    out.append("</svg>")
    return "".join(out)


def _short(s: str, n: int = 24) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def points_svg(rows: list[tuple[str, list[tuple[str, MetricResult | None]]]],
               bands: dict[str, tuple[float, float]] | None = None, title: str = "") -> str:
    """Per row (a code or a dimension) a point per series with its CI as a whisker.

    ``bands``: row label -> (lo, hi) drawn as a grey band (e.g. the human-human range).
    """
    if not rows:
        return ""
    vals = [v for _, ser in rows for _, m in ser if m is not None and m.value is not None
            for v in ([m.value] + (list(m.ci) if m.ci else []))]
    vals += [v for b in (bands or {}).values() for v in b]
    lo = min([0.0, *vals])
    lo = math.floor(lo * 5) / 5 if lo < 0 else 0.0
    hi = 1.0
    series = list(dict.fromkeys(name for _, ser in rows for name, _ in ser))
    lab_w = min(190, 10 + 7 * max(len(r[0]) for r in rows))
    plot_w = 360
    row_h = 10 + 9 * len(series)
    top = 28
    w = lab_w + plot_w + 30
    h = top + row_h * len(rows) + 34

    def x(v: float) -> float:
        return lab_w + (v - lo) / (hi - lo) * plot_w

    out = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
           f'aria-label="{_e(title)}">']
    # legend
    lx = lab_w
    for name in series:
        color = _SERIES.get(name, "#333")
        out.append(f'<circle cx="{lx + 5}" cy="10" r="4" fill="{color}"/>'
                   f'<text x="{lx + 12}" y="14" font-size="11">{_e(name)}</text>')
        lx += 18 + 7 * len(name)
    if bands:
        out.append(f'<rect x="{lx + 2}" y="5" width="14" height="10" fill="#ddd"/>'
                   f'<text x="{lx + 20}" y="14" font-size="11">human pairs (κ range)</text>')
    # grid
    t = lo
    while t <= hi + 1e-9:
        grid = "#999" if abs(t) < 1e-9 else "#eee"
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" '
                   f'y2="{top + row_h * len(rows)}" stroke="{grid}"/>'
                   f'<text x="{x(t):.1f}" y="{top + row_h * len(rows) + 14}" font-size="10" '
                   f'text-anchor="middle">{t:.1f}</text>')
        t = round(t + 0.2, 10)
    for i, (label, ser) in enumerate(rows):
        y0 = top + i * row_h
        out.append(f'<text x="{lab_w - 8}" y="{y0 + row_h / 2 + 4}" font-size="11" '
                   f'text-anchor="end">{_e(_short(label, 28))}</text>')
        if bands and label in bands:
            b0, b1 = bands[label]
            out.append(f'<rect x="{x(b0):.1f}" y="{y0 + 2}" width="{max(2.0, x(b1) - x(b0)):.1f}"'
                       f' height="{row_h - 4}" fill="#ddd"><title>human-human kappa '
                       f'{b0:.2f}–{b1:.2f}</title></rect>')
        for j, name in enumerate(series):
            m = dict(ser).get(name)
            if m is None or m.value is None:
                continue
            yy = y0 + 9 + j * 9
            color = _SERIES.get(name, "#333")
            tip = f"{name} {m.value:.3f}" + (f" [{m.ci[0]:.3f}, {m.ci[1]:.3f}]" if m.ci else "")
            if m.ci:
                out.append(f'<line x1="{x(m.ci[0]):.1f}" y1="{yy}" x2="{x(m.ci[1]):.1f}" '
                           f'y2="{yy}" stroke="{color}" stroke-width="1.5"/>')
                for c in m.ci:
                    out.append(f'<line x1="{x(c):.1f}" y1="{yy - 3}" x2="{x(c):.1f}" '
                               f'y2="{yy + 3}" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<circle cx="{x(m.value):.1f}" cy="{yy}" r="3.5" fill="{color}">'
                       f'<title>{_e(label)}: {_e(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    """An HTML table; cells in ``rows`` are already HTML (``<td>...</td>``) or plain text."""
    out = ["<table><tr>"]
    out += [f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>")
        for i, c in enumerate(r):
            if c.startswith("<td"):
                out.append(c)
            else:
                out.append(f'<td class="{"l" if i < left else ""}">{_e(c)}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _html_pred(report: EvalReport, p: PredEval) -> str:
    out = [f'<h2 id="{_e(p.name)}">{_e(p.name)} <span class="meta">({_e(p.kind)})</span></h2>']
    run = p.run
    facts = [f"{p.units['evaluated']} units evaluated"]
    if run.get("model"):
        facts.append(f"model {run['model']}")
    if run.get("cost_usd") is not None:
        facts.append(f"cost {_fmt_money(run['cost_usd'])}")
    if run.get("seconds") is not None:
        facts.append(f"time {_fmt_secs(run['seconds'])}")
    if run.get("failure_rate") is not None:
        facts.append(f"failed {_fmt_rate(p)}")
    out.append(f'<p class="meta">{_e("; ".join(facts))}</p>')
    head = ["dimension", "n", "agreement", "kappa", "alpha", "AC1", "F1 macro", "F1 micro",
            "α humans", "κ human pairs", "κ LLM–human", "α LLM in place"]
    rows = []
    for d in p.dimensions:
        b = d.baseline
        rows.append([_dim_label(d), str(d.n),
                     *(_cell_metric(d.metrics.get(k)) for k in
                       ("agreement", "kappa", "alpha", "ac1", "f1_macro", "f1_micro")),
                     _cell_metric(b.alpha_humans) if b else DASH,
                     fmt_range(b.human_kappa_range if d.type != "multi" else
                               b.human_alpha_range) if b else DASH,
                     fmt_range(b.llm_kappa_range if d.type != "multi" else
                               Baseline._range(r["alpha"] for r in b.llm_vs_humans)) if b
                     else DASH,
                     fmt_range(b.llm_in_place_range) if b else DASH])
    out.append(_table(head, rows))
    dim_rows = [(d.name, [("kappa", d.metrics.get("kappa")), ("alpha", d.metrics.get("alpha")),
                          ("F1", d.metrics.get("f1_macro"))]
                 + ([("α humans", d.baseline.alpha_humans)] if d.baseline else []))
                for d in p.dimensions]
    out.append("<figure>" + points_svg(dim_rows, title=f"{p.name} per dimension")
               + "<figcaption>Per dimension: kappa, alpha and macro F1 with their "
               f"{report.settings['ci_level']:.0%} CIs; grey: alpha of the human coders."
               "</figcaption></figure>")
    notes = []
    for d in p.dimensions:
        if d.kappa_weights:
            notes.append(f"{d.name}: ordinal alpha and {d.kappa_weights}-weighted kappa")
        if d.type == "multi":
            notes.append(f"{d.name}: multi-label; alpha with MASI distance, agreement = same "
                         "set of codes; kappa and AC1 per code")
        notes += [f"{d.name}: {n}" for n in d.notes]
    notes += [f"{s['name']}: not scored ({s['reason']})" for s in p.skipped_dimensions]
    if p.quote_overlap:
        q = p.quote_overlap
        notes.append(f"quote overlap with gold spans ({q['units_with_gold_spans']} units): "
                     f"precision {fmt_value(q['precision'])}, recall {fmt_value(q['recall'])},"
                     f" F1 {fmt_value(q['f1'])}")
    if notes:
        out.append("<ul>" + "".join(f'<li class="note">{_e(n)}</li>' for n in notes) + "</ul>")
    if p.problems:
        out.append('<ul class="problems">' + "".join(f"<li>{_e(x)}</li>" for x in p.problems)
                   + "</ul>")
    if p.span_overlap is not None:
        out.append(_html_spans(p))
    for d in p.dimensions:
        out.append(f"<h3>{_e(_dim_label(d))}</h3>")
        out.append(f'<p class="meta">n = {d.n} of {d.n_scope} units in scope</p>')
        charts = []
        conf = d.confusion
        if conf and conf.get("labels"):
            what = ("units with the gold code (row) and the predicted code (column)"
                    if conf["kind"] == "co-occurrence" else "gold (rows) by prediction (columns)")
            charts.append("<figure>" + heatmap_svg(conf["labels"], conf["matrix"],
                                                   title=f"confusion {d.name}")
                          + f"<figcaption>{_e(what)}; colour = share of the gold row"
                          "</figcaption></figure>")
        if d.codes:
            code_rows = [(c.code, [("kappa", c.metrics.get("kappa")),
                                   ("F1", c.metrics.get("f1"))]) for c in d.codes]
            bands = {c.code: tuple(c.baseline.human_kappa_range) for c in d.codes
                     if c.baseline and c.baseline.human_kappa_range}
            charts.append("<figure>" + points_svg(code_rows, bands or None,
                                                  title=f"per code {d.name}")
                          + "<figcaption>Per code: kappa and F1 with CIs"
                          + ("; grey band: range of human-human kappa" if bands else "")
                          + "</figcaption></figure>")
        out.append('<div class="charts">' + "".join(charts) + "</div>")
        if d.codes:
            head = ["code", "gold", "pred", "agreement", "kappa", "alpha", "AC1", "precision",
                    "recall", "F1", "p (perm.)", "α humans", "κ human pairs", "κ LLM–human"]
            rows = []
            for c in d.codes:
                b = c.baseline
                rows.append([c.code, str(c.support), str(c.predicted),
                             *(_cell_metric(c.metrics.get(k)) for k in
                               ("agreement", "kappa", "alpha", "ac1", "precision", "recall",
                                "f1")),
                             _fmt_p(c.p_value),
                             _cell_metric(b.alpha_humans) if b else DASH,
                             fmt_range(b.human_kappa_range) if b else DASH,
                             fmt_range(b.llm_kappa_range) if b else DASH])
            out.append(_table(head, rows))
        if d.baseline and d.baseline.leave_one_out:
            b = d.baseline
            rows = [[r["replaced"], fmt_value(r["alpha_without"], 3),
                     fmt_value(r["alpha_llm_in_place"], 3)] for r in b.leave_one_out]
            out.append("<p class=\"meta\">Human baseline: alpha of all humans "
                       f"{_e(fmt_metric(b.alpha_humans, 3))}; the LLM in the place of each "
                       "human:</p>")
            out.append(_table(["human replaced", "α other humans", "α with the LLM instead"],
                              rows))
    return "".join(out)


def span_summary(ov: dict[str, Any]) -> str:
    """One line on a prediction's span overlap.

    The quotes scored and unverified, or why span overlap does not apply.
    """
    if not ov.get("applicable", True):
        return f"not applicable: {ov.get('reason')}"
    unverified, skipped = ov.get("unverified", 0), ov.get("skipped", ov.get("unverified", 0))
    quotes = ov.get("quotes")
    head = f"{quotes - skipped} quote(s) scored; " if quotes is not None else ""
    return (f"{head}{unverified} unverified quote(s), {skipped} of them not found in the text "
            "and skipped")


def _html_spans(p: PredEval) -> str:
    """The span overlap of one prediction: a table per dimension, or why it does not apply."""
    ov = p.span_overlap or {}
    out = [f'<h3 id="{_e(p.name)}-spans">Span overlap with the gold spans</h3>',
           f'<p class="meta">{_e(span_summary(ov))}</p>']
    head = ["code", "gold", "pred", "matched", "precision", "recall", "F1", "mean IoU"]
    for dim, sc in (ov.get("dimensions") or {}).items():
        rows = [[code, str(c["gold"]), str(c["predicted"]), str(c["matched"]),
                 *(fmt_value(c[k], 3) for k in ("precision", "recall", "f1", "mean_iou"))]
                for code, c in [*sc["codes"].items(), ("(micro)", sc["micro"])]]
        out.append(f'<p class="meta">{_e(dim)}: matched at IoU &ge; {_e(sc["min_overlap"])}, '
                   f'{sc["n_units"]} units</p>')
        out.append(_table(head, rows))
    return "".join(out)


def _html_leaderboard(report: EvalReport) -> str:
    rows = []
    for i, r in enumerate(report.leaderboard, 1):
        rows.append([str(i), r["name"], r["model"] or DASH, str(r["n"]),
                     _cell_metric(_m(r["alpha_mean"])), _cell_metric(_m(r["kappa_mean"])),
                     _cell_metric(_m(r["f1_macro_mean"])), _fmt_money(r["cost_usd"]),
                     _fmt_secs(r["seconds"]), _fmt_rate(r)])
    out = ["<h2>Leaderboard</h2>",
           '<p class="meta">Means over the scored dimensions, with bootstrap CIs; cost, time '
           "and failures from each run's manifest.json.</p>",
           _table(["#", "coder", "model", "n", "alpha", "kappa", "F1 macro", "cost", "time",
                   "failed"], rows, left=3)]
    if len(report.preds) > 1:
        chart = [(r["name"], [("alpha", _m(r["alpha_mean"])), ("kappa", _m(r["kappa_mean"])),
                              ("F1", _m(r["f1_macro_mean"]))]) for r in report.leaderboard]
        out.append("<figure>" + points_svg(chart, title="leaderboard") + "</figure>")
    return "".join(out)


def _m(d: dict[str, Any]) -> MetricResult:
    return MetricResult(d["value"], tuple(d["ci"]) if d["ci"] else None, d.get("reason"),
                        d.get("n"))


def render_html(report: EvalReport) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, nothing fetched)."""
    cb = report.codebook
    s = report.settings
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>vsdcoder evaluation: {_e(cb['name'])}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Evaluation: codebook {_e(cb['name'])} {_e(cb['version'])}</h1>",
             f'<p class="meta">Against {_e(_against(report.gold["reference"]))}; '
             f"{report.gold['n_units']} gold units"
             + (f" from {_e(report.gold['source'])}" if report.gold.get("source") else "")
             + f". {s['ci_level']:.0%} confidence intervals: percentile bootstrap over units, "
             f"{s['bootstrap']} resamples, seed {s['seed']}; permutation tests with "
             f"{s['permutations']} shuffles. Created {_e(report.created)}.</p>"]
    if report.notes:
        parts.append("<ul>" + "".join(f'<li class="note">{_e(n)}</li>' for n in report.notes)
                     + "</ul>")
    parts.append(_html_leaderboard(report))
    for p in report.preds:
        parts.append(_html_pred(report, p))
    if report.problems:
        parts.append("<h2>Problems with the inputs</h2><ul class=\"problems\">"
                     + "".join(f"<li>{_e(x)}</li>" for x in report.problems) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_html(report: EvalReport, path: str | Path) -> Path:
    """Write the self-contained HTML report."""
    path = Path(path)
    try:
        path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the HTML report ({exc.strerror})") from None
    return path


__all__ = ["heatmap_svg", "points_svg", "print_report", "render_html", "write_html",
           "write_json"]
