"""Where pulled models live, whether one is pulled, and the path ``--model local/NAME`` runs.

Files go to ``$VSDCODER_MODELS_DIR`` or the user cache directory's ``models`` folder
(platformdirs, e.g. ``~/.cache/vsdcoder/models``), under their file names in the catalogue.
A download in progress is ``FILE.part`` beside it; only a file that passed the size and sha256
check is ever renamed to ``FILE``, so a file under its final name is a verified one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vsdcoder.errors import UsageError
from vsdcoder.models.catalogue import ModelEntry, find, names

MODELS_DIR_ENV = "VSDCODER_MODELS_DIR"
PART_SUFFIX = ".part"


def models_dir() -> Path:
    """``$VSDCODER_MODELS_DIR`` or ``<user cache dir>/vsdcoder/models``."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsdcoder", appauthor=False)) / "models"


def final_path(entry: ModelEntry) -> Path:
    """Where the verified file of ``entry`` is (whether or not it is there)."""
    return models_dir() / entry.file


def part_path(entry: ModelEntry) -> Path:
    """Where the download in progress of ``entry`` is kept (for resuming)."""
    return models_dir() / (entry.file + PART_SUFFIX)


@dataclass(frozen=True)
class Status:
    """What is on disk for one entry: ``pulled`` (verified file), or a partial download."""

    entry: ModelEntry
    pulled: bool
    partial_bytes: int

    @property
    def state(self) -> str:
        """'pulled', 'partial NN%' or 'no'."""
        if self.pulled:
            return "pulled"
        if self.partial_bytes:
            return f"partial {100 * self.partial_bytes / self.entry.size:.0f}%"
        return "no"


def status(entry: ModelEntry) -> Status:
    """Whether ``entry`` is pulled (the final file exists with the pinned size)."""
    final = final_path(entry)
    pulled = final.is_file() and final.stat().st_size == entry.size
    part = part_path(entry)
    partial = part.stat().st_size if part.is_file() else 0
    return Status(entry, pulled, partial)


def _not_pulled(entry: ModelEntry) -> UsageError:
    return UsageError(f"model '{entry.name}' is not pulled ({entry.title}, "
                      f"{entry.size / 1e9:.2f} GB, {entry.licence}); run "
                      f"`vsdcoder models pull {entry.name}` once (needs internet), "
                      f"then --model local/{entry.name} runs offline")


def resolve(name: str) -> Path:
    """The verified file of catalogue model ``name``.

    Raises:
        UsageError: ``name`` is not in the catalogue (the message lists the names), or the model
            is not pulled (the message says which command pulls it).
    """
    entry = find(name)
    if entry is None:
        from vsdcoder.suggest import did_you_mean

        hint = did_you_mean(name, ["smollm2", *names()])
        raise UsageError(f"unknown embedded model '{name}'{hint}; use local/smollm2 (built in), "
                         f"one of the catalogue models ({', '.join(names())}; see "
                         "'vsdcoder models list'), or local//path/to/model.gguf")
    if not status(entry).pulled:
        raise _not_pulled(entry)
    return final_path(entry)


def remove(entry: ModelEntry) -> list[Path]:
    """Delete the file of ``entry`` and any partial download; the paths removed."""
    removed = []
    for p in (final_path(entry), part_path(entry)):
        if p.is_file():
            p.unlink()
            removed.append(p)
    lock = models_dir() / (entry.file + ".lock")
    if removed and lock.is_file():
        lock.unlink()
    return removed
