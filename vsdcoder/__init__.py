"""vsdcoder: LLM-based qualitative coding from a YAML codebook.

The public API is imported lazily so that ``import vsdcoder`` (and ``vsdcoder --help``) stays fast:

    >>> import vsdcoder
    >>> cb = vsdcoder.load_codebook("sad-stressors")
    >>> compiled = vsdcoder.compile_codebook(cb.codebook)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_codebook": "vsdcoder.codebook.load",
    "parse_codebook": "vsdcoder.codebook.load",
    "CodebookError": "vsdcoder.codebook.load",
    "Codebook": "vsdcoder.codebook.model",
    "compile_codebook": "vsdcoder.codebook.compile",
    "CompiledCodebook": "vsdcoder.codebook.compile",
    "answer_errors": "vsdcoder.codebook.compile",
    "find_quote": "vsdcoder.evidence",
    "UsageError": "vsdcoder.errors",
    "code": "vsdcoder.coding.api",
    "RunSummary": "vsdcoder.coding.runner",
    "evaluate": "vsdcoder.reliability.evaluate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vsdcoder' has no attribute {name!r}")
