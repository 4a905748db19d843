"""Where the bundled resources (``prompts/`` and ``plugins/``) live.

In a wheel they are installed inside the package as ``vsdcoder/_bundled/{prompts,plugins}``;
in a source checkout (editable install, tests) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """The directory of bundled resource ``name`` ('prompts' or 'plugins')."""
    for candidate in (_PKG / "_bundled" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(
        f"vsdcoder's bundled '{name}' folder is missing from {_PKG}; reinstall vsdcoder"
    )
