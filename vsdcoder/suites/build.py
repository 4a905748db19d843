"""Build an eval suite: ``data.csv``, ``gold.csv`` and ``layout.yaml`` in one folder.

The source file is checked against its pinned SHA-256 first, then the suite's builder
(:mod:`vsdcoder.suites.sad`, :mod:`vsdcoder.suites.convabuse`) writes the CSVs and the suite's
layout (ours, shipped with vsdcoder) is copied beside them. The same source always gives
byte-identical files. The files are written to a temporary folder and then moved into place,
so a failed build leaves the previous one intact.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vsdcoder.errors import UsageError
from vsdcoder.suites.download import sha256_file
from vsdcoder.suites.lookup import default_build_dir, find_source
from vsdcoder.suites.registry import Suite, get_suite

#: The files of a built suite.
FILES = ("data.csv", "gold.csv", "layout.yaml")


@dataclass(frozen=True)
class BuiltSuite:
    """A built eval suite: the files ``vsdcoder code`` and ``vsdcoder eval`` take.

    Attributes:
        name: The suite's name.
        codebook: The codebook to code it with.
        dir: The folder holding the files below.
        data: ``data.csv``: the units to code (``id``, ``text``, ...).
        gold: ``gold.csv``: the human codes.
        layout: ``layout.yaml``: how ``gold.csv`` holds the codes.
        source: The source folder it was built from.
        units: Number of units.
    """

    name: str
    codebook: str
    dir: Path
    data: Path
    gold: Path
    layout: Path
    source: Path
    units: int


def layout_path(name: str) -> Path:
    """The suite's ``layout.yaml`` as shipped with vsdcoder (``evals/NAME/layout.yaml``)."""
    from vsdcoder._paths import bundled_dir

    suite = get_suite(name)
    try:
        path = bundled_dir("evals") / suite.name / "layout.yaml"
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    if not path.is_file():
        raise UsageError(f"{path}: the layout of suite {suite.name} is missing; reinstall "
                         "vsdcoder")
    return path


def verify_input(suite: Suite, source: Path) -> Path:
    """The builder's input file in ``source``, checked against its pinned SHA-256.

    Raises:
        UsageError: Missing, or its checksum differs (the message says what to do).
    """
    file = suite.input_file()
    path = source / file.path
    if not path.is_file():
        raise UsageError(f"{path}: not found; is {source} the {suite.name} data set? Run "
                         f"`vsdcoder evals fetch {suite.name}`")
    got = sha256_file(path)
    if got != file.sha256:
        raise UsageError(
            f"{path}: SHA-256 {got}, expected {file.sha256} (the file of {suite.github} at "
            f"commit {suite.commit}). It is not the original file, so the suite would not "
            f"match the recorded results; fetch a fresh copy with `vsdcoder evals fetch "
            f"{suite.name}` (or pass --source DIR with the original).")
    return path


def build_suite(name: str, source: str | Path | None = None,
                out: str | Path | None = None) -> BuiltSuite:
    """Build eval suite ``name`` from its source data set.

    Args:
        name: The suite's name (``sad``, ``convabuse``; see ``vsdcoder evals list``).
        source: The data set's folder; default: looked for as :mod:`vsdcoder.suites.lookup`
            describes (``$VSDCODER_DATASETS/NAME``, ``../shared/datasets/NAME``, the fetched
            copy).
        out: The folder to write (created); default ``CACHE_DIR/evals/NAME`` (the user cache
            directory, or ``$VSDCODER_CACHE_DIR``).

    Returns:
        The built suite's paths.

    Raises:
        UsageError: Unknown suite, the data set not found (the message lists the places
            looked), or its file's checksum is not the pinned one.

    Example:
        >>> from vsdcoder.suites import build_suite
        >>> suite = build_suite("sad")                          # doctest: +SKIP
        >>> vsdcoder.code(suite.data, suite.codebook, ...)      # doctest: +SKIP
    """
    suite = get_suite(name)
    folder = find_source(suite.name, source)
    path = verify_input(suite, folder)
    layout = layout_path(suite.name)
    dest = Path(out).expanduser() if out is not None else default_build_dir(suite.name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {dest}: {exc.strerror}; pass --out DIR") from None
    module, func = suite.builder.split(":")
    builder = getattr(importlib.import_module(module), func)
    with tempfile.TemporaryDirectory(prefix=f".{suite.name}-", dir=dest) as tmp:
        units = builder(path, Path(tmp))
        shutil.copyfile(layout, Path(tmp) / "layout.yaml")
        for f in FILES:
            os.replace(Path(tmp) / f, dest / f)
    return BuiltSuite(name=suite.name, codebook=suite.codebook, dir=dest,
                      data=dest / "data.csv", gold=dest / "gold.csv",
                      layout=dest / "layout.yaml", source=folder, units=units)
