"""Eval suites built from public human-coded data sets (SAD, ConvAbuse).

The data sets are not part of vsdcoder. :func:`fetch_suite` downloads a data set's original
files from its public source (pinned commit and SHA-256s); :func:`build_suite` turns them into
``data.csv``, ``gold.csv`` and ``layout.yaml`` for ``vsdcoder code`` and ``vsdcoder eval``:

    >>> import vsdcoder
    >>> from vsdcoder.suites import build_suite
    >>> suite = build_suite("sad")                                  # doctest: +SKIP
    >>> run = vsdcoder.code(suite.data, suite.codebook, out="runs/sad")   # doctest: +SKIP
    >>> report = vsdcoder.evaluate(suite.gold, ["runs/sad"], suite.codebook,
    ...                            layout=suite.layout)             # doctest: +SKIP

Modules: :mod:`~vsdcoder.suites.registry` (the suites, sources, checksums),
:mod:`~vsdcoder.suites.lookup` (where a data set is found), :mod:`~vsdcoder.suites.download`
(fetching), :mod:`~vsdcoder.suites.build` (building), and one builder per suite
(:mod:`~vsdcoder.suites.sad`, :mod:`~vsdcoder.suites.convabuse`). The command line is
``vsdcoder evals list|fetch|build``.
"""

from __future__ import annotations

from vsdcoder.suites.build import BuiltSuite, build_suite
from vsdcoder.suites.download import fetch_suite
from vsdcoder.suites.lookup import candidates, data_home, find_source, locate
from vsdcoder.suites.registry import SUITES, SourceFile, Suite, get_suite

__all__ = ["SUITES", "BuiltSuite", "SourceFile", "Suite", "build_suite", "candidates",
           "data_home", "fetch_suite", "find_source", "get_suite", "locate"]
