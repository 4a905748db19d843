"""Where a suite's source data set is found, and where fetched and built suites go.

A suite's *source folder* holds the data set's files as :attr:`SourceFile.path
<vsdcoder.suites.registry.SourceFile.path>` names them (e.g. ``2_splits/ConvAbuseEMNLPtest.csv``).
It is looked for, in this order, and the first folder holding the file the builder reads wins:

1. the folder given explicitly (``--source DIR``, ``source=``): only there, nothing else is tried;
2. ``$VSDCODER_DATASETS/NAME`` (``VSDCODER_DATASETS`` holds one folder per data set);
3. ``../shared/datasets/NAME`` beside the repository checkout vsdcoder runs from (a source
   checkout or an editable install; not a wheel install);
4. ``../shared/datasets/NAME`` relative to the current directory;
5. ``DATA_DIR/datasets/NAME``, where ``vsdcoder evals fetch NAME`` puts it: ``DATA_DIR`` is
   ``$VSDCODER_DATA_DIR`` or the user data directory (platformdirs, e.g.
   ``~/.local/share/vsdcoder``).

Built suites go to ``CACHE_DIR/evals/NAME`` (``$VSDCODER_CACHE_DIR`` or the user cache directory).
"""

from __future__ import annotations

import os
from pathlib import Path

from vsdcoder.errors import UsageError
from vsdcoder.suites.registry import Suite, get_suite

#: Folder holding one source folder per data set (``$VSDCODER_DATASETS/NAME``).
DATASETS_ENV = "VSDCODER_DATASETS"
#: Replaces the user data directory (fetched data sets go to ``$VSDCODER_DATA_DIR/datasets``).
DATA_DIR_ENV = "VSDCODER_DATA_DIR"

_PKG = Path(__file__).resolve().parent.parent


def data_home() -> Path:
    """``$VSDCODER_DATA_DIR`` or the platform's user data directory for vsdcoder."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("vsdcoder", appauthor=False))


def fetch_dir(name: str) -> Path:
    """Where ``vsdcoder evals fetch NAME`` puts the data set by default."""
    return data_home() / "datasets" / get_suite(name).name


def default_build_dir(name: str) -> Path:
    """Where ``vsdcoder evals build NAME`` writes the suite by default."""
    from vsdcoder.coding.cache import default_cache_dir

    return default_cache_dir() / "evals" / get_suite(name).name


def checkout_root() -> Path | None:
    """The repository checkout vsdcoder runs from, or None (e.g. a wheel install)."""
    root = _PKG.parent
    if (root / "pyproject.toml").is_file() and (root / "evals").is_dir():
        return root
    return None


def candidates(name: str, source: str | Path | None = None) -> list[tuple[str, Path]]:
    """The places the source folder of suite ``name`` is looked for, in order.

    Args:
        name: The suite's name.
        source: A folder given explicitly; then it is the only place.

    Returns:
        ``(where, folder)`` pairs: ``where`` says why the folder is a candidate
        (``--source``, ``$VSDCODER_DATASETS``, ``checkout``, ``current directory``, ``fetched``).
    """
    suite = get_suite(name)
    if source is not None:
        return [("--source", Path(source).expanduser())]
    out: list[tuple[str, Path]] = []
    env = os.environ.get(DATASETS_ENV)
    if env:
        out.append((f"${DATASETS_ENV}", Path(env).expanduser() / suite.name))
    root = checkout_root()
    if root is not None:
        out.append(("checkout", root.parent / "shared" / "datasets" / suite.name))
    out.append(("current directory", Path.cwd().parent / "shared" / "datasets" / suite.name))
    out.append(("fetched", fetch_dir(suite.name)))
    seen: set[Path] = set()
    unique = []
    for where, path in out:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((where, path))
    return unique


def has_source(suite: Suite, folder: Path) -> bool:
    """Whether ``folder`` holds the file the suite's builder reads."""
    return (folder / suite.input).is_file()


def locate(name: str, source: str | Path | None = None) -> tuple[str, Path] | None:
    """The first candidate folder holding suite ``name``'s input, as ``(where, folder)``."""
    suite = get_suite(name)
    for where, folder in candidates(name, source):
        if has_source(suite, folder):
            return where, folder
    return None


def find_source(name: str, source: str | Path | None = None) -> Path:
    """The source folder of suite ``name`` (see the module docstring for the order).

    Args:
        name: The suite's name.
        source: A folder given explicitly (then only it is tried).

    Returns:
        The folder; ``folder / suite.input`` exists.

    Raises:
        UsageError: Unknown suite, or no candidate holds the file; the message lists every
            place looked and what to do.
    """
    suite = get_suite(name)
    found = locate(name, source)
    if found is not None:
        return found[1]
    looked = "\n".join(f"  {folder / suite.input}  ({where})"
                       for where, folder in candidates(name, source))
    raise UsageError(
        f"the {suite.name} data set was not found; looked for {suite.input} in:\n{looked}\n"
        f"Download it with `vsdcoder evals fetch {suite.name}`, or point at a copy with "
        f"--source DIR or {DATASETS_ENV}=DIR (DIR/{suite.name}/{suite.input}).")
