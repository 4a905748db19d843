"""Output away from a wide terminal (issue 11, item 5).

``codebook show`` into a file writes whole lines; tables keep names whole; the progress line
keeps its counts at 80 columns; the ETA follows the recent units, not the start of the run.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

import vsdcoder
from vsdcoder.cli.output import CodingProgress, EtaEstimator, fmt_duration, progress_line
from vsdcoder.testing.fake_openai import FakeOpenAI, Reply, completion, unit_text


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VSDCODER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VSDCODER_LOAD_PLUGINS", "")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def main(capsys, *argv: str) -> tuple[int, str, str]:
    from vsdcoder.cli.main import main as cli_main

    rc = cli_main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


# -- codebook show into a file ------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_codebook_show_redirected_writes_every_line_whole(capsys, monkeypatch, columns):
    from vsdcoder.codebook.compile import compile_codebook
    from vsdcoder.codebook.load import load_codebook

    monkeypatch.setenv("COLUMNS", columns)
    rc, out, err = main(capsys, "codebook", "show", "vsd-mental-health")
    assert rc == 0, err
    compiled = compile_codebook(load_codebook("vsd-mental-health").codebook)
    lines = set(out.splitlines())
    for m in compiled.messages():
        for line in m["content"].splitlines():
            assert line in lines, line  # whole, not cut at a box edge nor wrapped
    assert max(len(x) for x in out.splitlines()) > int(columns) or columns == "200"
    assert "│" not in out and "┌" not in out  # no box
    assert "===== system message =====" in out and "===== response schema =====" in out
    schema = out.split("===== response schema =====\n", 1)[1]
    assert json.loads(schema) == compiled.schema


def test_codebook_show_plain_flag_and_the_box_on_a_terminal(capsys, monkeypatch):
    rc, plain, _ = main(capsys, "codebook", "show", "sad-stressors", "--plain")
    assert rc == 0 and "│" not in plain
    # on a terminal: the boxes, as before
    from vsdcoder.cli import output

    real = output.console

    def terminal(stderr: bool = False):
        con = real(stderr)
        con._force_terminal = True
        return con

    monkeypatch.setattr(output, "console", terminal)
    rc, boxed, _ = main(capsys, "codebook", "show", "sad-stressors")
    assert rc == 0 and "│" in boxed and "system message" in boxed


# -- tables keep names whole --------------------------------------------------------------------

LONG = """
vsdcoder: 1
name: long-names
dimensions:
  - name: perceived_emotional_benefits
    type: single
    codes: [{name: reassurance_and_validation}, {name: practical_coping_strategies}]
  - name: privacy_and_data_protection_concerns
    type: single
    codes: [{name: worried_about_data_sharing}, {name: not_mentioned_at_all}]
"""


def test_eval_tables_keep_dimension_and_code_names_whole_at_80_columns(tmp_path):
    from rich.console import Console

    from vsdcoder.reliability.evaluate import evaluate
    from vsdcoder.reliability.report import print_report
    from vsdcoder.reliability.types import Ratings

    cb = tmp_path / "long.yaml"
    cb.write_text(LONG, encoding="utf-8")
    units = [f"u{i}" for i in range(8)]
    a = ["reassurance_and_validation", "practical_coping_strategies"] * 4
    b = ["worried_about_data_sharing", "not_mentioned_at_all"] * 4
    vals = {"perceived_emotional_benefits": a, "privacy_and_data_protection_concerns": b}

    def ratings(coder: str, kind: str, flip: int) -> Ratings:
        r = Ratings(units=units, coders={coder: kind})
        for dim, codes in vals.items():
            codes = list(codes)
            codes[flip], codes[flip + 1] = codes[flip + 1], codes[flip]
            r.values[dim] = {coder: dict(zip(units, codes, strict=True))}
        return r

    rep = evaluate(ratings("gold", "gold", 0), [ratings("llm", "llm", 2)], cb, bootstrap=50,
                   permutations=0)
    for width in (80, 100, 120, 160):
        con = Console(record=True, width=width)
        print_report(rep, con)
        text = con.export_text()
        for name in (*vals, *a[:2], *b[:2]):
            assert name in text, (width, name)  # on one line, never broken mid-word
        assert "…" not in text  # no header or value cut short
        assert max(len(x) for x in text.splitlines()) <= width  # nothing cut at the edge
    # narrower still: names break after an underscore, never inside a word
    con = Console(record=True, width=60)
    print_report(rep, con)
    text = con.export_text()
    assert "privacy_and_data_" in text and "protection_concerns" in text
    assert "…" not in text and "widen the terminal" in text


def test_codebook_list_keeps_names_whole_at_60_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    rc, out, _ = main(capsys, "codebook", "list")
    assert rc == 0
    for name in ("vsd-mental-health", "tiktok-llm-mh", "sad-stressors", "convabuse"):
        assert name in out


# -- the progress line ----------------------------------------------------------------------------


def test_progress_line_keeps_counts_eta_and_failures_at_any_width():
    kw = dict(rate=0.25, elapsed=62, eta=1142, tokens=12345, cost=0.0123, failed=2)
    wide = progress_line(123, 1000, width=160, **kw).plain
    assert "━" in wide and "coding" in wide and "12,345 tok" in wide and "0:01:02" in wide
    for width in (80, 60, 40, 20):
        line = progress_line(123, 1000, width=width, **kw).plain
        assert len(line) < width or width == 20, (width, line)  # essentials stay, even if wider
        assert "123/1,000" in line and "ETA 0:19:02" in line and "2 failed" in line
    at80 = progress_line(123, 1000, width=80, **kw).plain
    assert "━" not in at80  # the bar goes first
    assert "0.25 u/s" in at80 and "$0.0123" in at80
    assert fmt_duration(None) == "-:--:--" and fmt_duration(3725) == "1:02:05"


def test_coding_progress_draws_its_counts_on_an_80_column_terminal():
    from rich.console import Console

    buf = io.StringIO()
    con = Console(file=buf, width=80, force_terminal=True, color_system=None)

    class Res:
        tokens_in, tokens_out, cost, quote_verified, cached = 100, 20, 0.001, True, False

        def __init__(self, status: str):
            self.status = status

    p = CodingProgress(12, True, console=con)
    for i in range(7):
        p.advance(Res("failed" if i == 3 else "coded"))
    p.close()
    text = buf.getvalue()
    assert "7/12" in text and "1 failed" in text and "ETA" in text
    off = CodingProgress(12, False)
    off.advance(Res("coded"))
    off.close()
    assert off.done == 1 and off.tokens == 120


# -- the ETA --------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_eta_follows_the_recent_units_not_the_start():
    """A fast start (e.g. the first answers were quick) must not promise an early end.

    The new user's run: the ETA said 4:47 when about 19 minutes remained.
    """
    clock = Clock()
    eta = EtaEstimator(window=20, clock=clock)
    total = 200
    for _ in range(40):  # 40 quick units: 0.5 s each
        clock.t += 0.5
        eta.update()
    for _ in range(40):  # then the real pace: 10 s per unit
        clock.t += 10
        eta.update()
    left = total - 80
    truth = left * 10
    naive = left / (80 / clock.t)  # the average since the start of the run
    assert naive < 0.7 * truth
    assert eta.remaining(left) == pytest.approx(truth, rel=0.1)
    # a stall makes the estimate grow instead of standing still
    before = eta.remaining(left)
    clock.t += 300
    assert eta.remaining(left) > before
    assert eta.remaining(0) == 0.0


def test_eta_leaves_cache_hits_out_and_is_unknown_at_first():
    clock = Clock()
    eta = EtaEstimator(window=10, clock=clock)
    assert eta.remaining(5) is None and eta.rate() is None
    for _ in range(50):  # answered from the cache: no time
        eta.update(cached=True)
    assert eta.rate() is None
    for _ in range(10):
        clock.t += 4
        eta.update()
    assert eta.remaining(10) == pytest.approx(40, rel=0.15)


def test_the_runner_can_draw_coding_progress(tmp_path, monkeypatch):
    """A real run draws its progress with CodingProgress (counts kept at 80 columns)."""
    from vsdcoder.cli import output

    made = []

    class Recording(CodingProgress):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(output, "CodingProgress", Recording)
    data = tmp_path / "d.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "text"), *[(str(i), f"my boss {i}") for i in range(5)]])

    def answer(req: dict[str, Any], srv: Any) -> Reply:
        return Reply(completion(req, {"quote": " ".join(unit_text(req).split()[:2]),
                                      "stressor": "work"}))

    with FakeOpenAI(answer) as srv:
        summary = vsdcoder.code(data, "sad-stressors", model="openai/fake", api_base=srv.url,
                                api_key="sk-test-output", out=tmp_path / "run", progress=True,
                                http_retries=1)
    assert summary.counts == {"coded": 5}
    assert len(made) == 1 and made[0].done == 5 and made[0].total == 5
