"""Privacy in a coding run: settings, project file, local-only policy, pseudonyms per unit.

The glue between :class:`~vsdcoder.privacy.pseudonyms.Pseudonymizer` and the coding engine.

- :func:`resolve_settings` merges the arguments of :func:`vsdcoder.code` (or the command line)
  with the ``[privacy]`` section of a project file (``vsdcoder.toml`` or ``vsdcoder.yaml`` in
  the current directory); explicit arguments win.
- :func:`check_local_only` refuses, before anything is read or sent, a model whose endpoint is
  neither the embedded model nor a loopback address.
- :class:`RunPseudonyms` redacts each unit (text and context) with the run's
  :class:`~vsdcoder.privacy.pseudonyms.PseudonymMap`, keeps that map in
  ``RUN_DIR/pseudonyms.json`` (mode 0600) and saves it before any text carrying a new
  placeholder is sent, so a crash never leaves a placeholder whose key is lost.
- :func:`apply_redaction` turns a unit's result, whose quotes the model copied from the
  redacted text, into the stored one: quotes and offsets of the original text, or (with
  ``redacted_output``) redacted text everywhere.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.privacy.pseudonyms import MAP_FORMAT, MAP_VERSION, PseudonymMap, Redacted

#: The key to the pseudonyms, in the run directory (owner-only).
MAP_FILE = "pseudonyms.json"
#: With ``redacted_output`` the key is not kept; only the per-type numbering is (no surfaces).
COUNTERS_FILE = "pseudonym-counters.json"
#: Project files looked for in the current directory, in this order.
PROJECT_FILES = ("vsdcoder.toml", "vsdcoder.yaml", "vsdcoder.yml")
#: Keys allowed in the project file's ``[privacy]`` section.
PROJECT_KEYS = ("redact", "local_only", "redacted_output")
#: Values of ``--redact`` that mean "no redaction" (to override a project setting).
OFF = ("none", "off", "no", "false")


@dataclass(frozen=True)
class PrivacySettings:
    """The privacy settings of a run, and where they came from."""

    redact: tuple[str, ...] = ()
    local_only: bool = False
    redacted_output: bool = False
    project_file: str | None = None

    def public(self) -> dict[str, Any]:
        """For the manifest."""
        return {"redact": list(self.redact), "local_only": self.local_only,
                "redacted_output": self.redacted_output, "project_file": self.project_file}


# --- the project file ------------------------------------------------------------------------

def find_project_file(directory: str | os.PathLike[str] | None = None) -> Path | None:
    """``vsdcoder.toml`` or ``vsdcoder.yaml`` in ``directory`` (default: the current one)."""
    d = Path(directory) if directory is not None else Path.cwd()
    found = [d / name for name in PROJECT_FILES if (d / name).is_file()]
    if len(found) > 1:
        raise UsageError(f"{found[0]} and {found[1]} both exist; keep one project file")
    return found[0] if found else None


def read_project_privacy(path: Path) -> dict[str, Any]:
    """The ``privacy`` section of a project file, checked.

    Raises:
        UsageError: unreadable file, bad syntax, unknown keys or wrongly typed values.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the project file: {exc}") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(raw.decode("utf-8")) or {}
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with a 'privacy' section")
    section = data.get("privacy")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: 'privacy' must be a section (a mapping of settings)")
    unknown = sorted(set(section) - set(PROJECT_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown privacy setting(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(PROJECT_KEYS)}")
    out: dict[str, Any] = {}
    if "redact" in section:
        v = section["redact"]
        if v is False or v is None:
            v = "none"
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            v = ",".join(v)
        if not isinstance(v, str):
            raise UsageError(f"{path}: privacy.redact must be a string such as "
                             "\"patterns,presidio\" (or \"none\")")
        out["redact"] = v
    for key in ("local_only", "redacted_output"):
        if key in section:
            if not isinstance(section[key], bool):
                raise UsageError(f"{path}: privacy.{key} must be true or false")
            out[key] = section[key]
    return out


def _names(spec: str | Sequence[str] | bool | None) -> tuple[str, ...]:
    from vsdcoder.privacy import parse_redact_spec

    if spec is None or spec is False:
        return ()
    names = parse_redact_spec(spec)  # type: ignore[arg-type]
    if len(names) == 1 and names[0].lower() in OFF:
        return ()
    if any(n.lower() in OFF for n in names):
        raise UsageError(f"--redact '{','.join(names)}': 'none' cannot be combined with "
                         "redactor names")
    return tuple(names)


def resolve_settings(redact: str | Sequence[str] | bool | None = None,
                     local_only: bool | None = None, redacted_output: bool | None = None,
                     directory: str | os.PathLike[str] | None = None,
                     use_project: bool = True) -> PrivacySettings:
    """Privacy settings: explicit arguments, else the project file, else off.

    ``redact=None`` (and ``local_only=None``, ``redacted_output=None``) means "not given": the
    project file decides. ``redact="none"`` turns redaction off whatever the project says.

    Raises:
        UsageError: a bad project file, or ``redacted_output`` without any redactor.
    """
    project: dict[str, Any] = {}
    path = find_project_file(directory) if use_project else None
    if path is not None:
        project = read_project_privacy(path)
    r = redact if redact is not None else project.get("redact")
    lo = local_only if local_only is not None else project.get("local_only", False)
    ro = redacted_output if redacted_output is not None else project.get("redacted_output", False)
    names = _names(r)
    if ro and not names:
        raise UsageError("--redacted-output keeps only redacted text, so it needs redactors: "
                         "add --redact patterns (or patterns,presidio)")
    used = path is not None and bool(project)
    return PrivacySettings(names, bool(lo), bool(ro), str(path) if used else None)


# --- local-only --------------------------------------------------------------------------------

def check_local_only(model: str, api_base: str | None, source: str | None = None) -> None:
    """Refuse a model whose requests would leave this machine.

    Allowed: the embedded model (``local/...``) and servers on a loopback address
    (``localhost``, ``127.0.0.0/8``, ``::1``). Called before any data is read or sent.

    Raises:
        UsageError: the endpoint is elsewhere; the message names it and says how to proceed.
    """
    from vsdcoder.coding.providers import EMBEDDED_MODEL, endpoint

    ep = endpoint(model, api_base)
    if ep.is_local:
        return
    where = f"set in {source}" if source else "--local-only"
    off = (f"remove local_only from {source} or pass --no-local-only" if source
           else "drop --local-only")
    raise UsageError(
        f"local-only ({where}): refusing model '{model}' because {ep.why}. Nothing was sent.\n"
        f"To proceed, use the embedded model (--model {EMBEDDED_MODEL}), a server on this "
        "machine (--model openai/<name> --api-base http://127.0.0.1:<port>/v1, or an Ollama "
        f"model on localhost), or {off} if the text may leave this machine.")


# --- pseudonyms in a run -----------------------------------------------------------------------

def _counts(*redacted: Redacted | None) -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in redacted:
        if r is not None:
            total.update(r.counts)
    return dict(sorted(total.items()))


@dataclass
class RedactedUnit:
    """A unit's text and context as they are sent, with the maps back to the originals."""

    text: Redacted
    context: Redacted | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def send_text(self) -> str:
        """The redacted text."""
        return self.text.text

    @property
    def send_context(self) -> str | None:
        """The redacted context (None without context)."""
        return self.context.text if self.context is not None else None


class RunPseudonyms:
    """The redactors and pseudonym map of one run.

    Args:
        names: Registered redactor names (``("patterns", "presidio")``).
        run_dir: The run directory; None for a dry run without one (nothing is written).
        keep_key: Keep the key (``pseudonyms.json``, mode 0600). False with
            ``redacted_output``: only the per-type numbering is kept
            (``pseudonym-counters.json``), so a resumed run never reuses a placeholder for
            another entity, though it cannot know an entity seen before.
        write: Write the files (False for a dry run).
    """

    def __init__(self, names: Sequence[str], run_dir: Path | None, keep_key: bool = True,
                 write: bool = True):
        from vsdcoder.privacy import get_redactor
        from vsdcoder.privacy.pseudonyms import Pseudonymizer

        self.names = tuple(names)
        self.keep_key = keep_key
        self.write = write and run_dir is not None
        self.map_path = run_dir / MAP_FILE if run_dir is not None else None
        self.counters_path = run_dir / COUNTERS_FILE if run_dir is not None else None
        mapping = self._load()
        self.pseudonymizer = Pseudonymizer(get_redactor(list(self.names)), mapping)
        self._saved = self._state()

    @property
    def mapping(self) -> PseudonymMap:
        """The run's map (holds original surfaces: never send it)."""
        return self.pseudonymizer.mapping

    def _load(self) -> PseudonymMap:
        if self.keep_key and self.map_path is not None and self.map_path.exists():
            return PseudonymMap.load(self.map_path)
        if not self.keep_key and self.counters_path is not None and self.counters_path.exists():
            try:
                data = json.loads(self.counters_path.read_text(encoding="utf-8"))
                counters = {str(k): int(v) for k, v in data["counters"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UsageError(f"{self.counters_path}: unreadable ({exc}); use a new --out"
                                 ) from None
            return PseudonymMap.from_dict({"format": MAP_FORMAT, "version": MAP_VERSION,
                                           "counters": counters, "entities": []})
        return PseudonymMap()

    def _state(self) -> tuple[int, tuple[tuple[str, int], ...]]:
        counts = self.mapping.counts()
        return len(self.mapping), tuple(counts.items())

    def redact_unit(self, text: str, context: str | None) -> RedactedUnit:
        """Redact a unit's text and context, then save the map if it grew (before sending)."""
        rt = self.pseudonymizer.redact(text)
        rc = self.pseudonymizer.redact(context) if context else None
        self.save()
        return RedactedUnit(rt, rc, _counts(rt, rc))

    def save(self) -> None:
        """Write the key (or the counters) if anything changed since the last save."""
        state = self._state()
        if not self.write or state == self._saved:
            return
        if self.keep_key:
            assert self.map_path is not None
            self.mapping.save(self.map_path)
        else:
            from vsdcoder.store.exports import atomic_write

            assert self.counters_path is not None
            body = {"format": "vsdcoder-pseudonym-counters", "counters": self.mapping.counts(),
                    "note": "numbering only; --redacted-output keeps no key"}
            atomic_write(self.counters_path,
                         lambda f: f.write(json.dumps(body, indent=1) + "\n"))
        self._saved = state


def _map_evidence(ev: Mapping[str, Any], red: Redacted) -> dict[str, Any]:
    """Evidence about the redacted text -> evidence about the original text."""
    out = dict(ev)
    quote = ev.get("quote")
    if not quote:
        return out
    if ev.get("start") is not None and ev.get("end") is not None:
        a, b = red.to_original_offsets(int(ev["start"]), int(ev["end"]))
        out.update(quote=red.original[a:b], start=a, end=b)
    else:  # not found in the text: show it with the surfaces put back
        out["quote"] = red.restore(quote)
    return out


def to_original(result: Any, red: Redacted) -> Any:
    """A stored result with quotes and offsets of the original text instead of the redacted one.

    Found quotes become the original passage they stand for (a range touching a placeholder
    widens to the whole entity); quotes not found get the original surfaces put back.
    Rationales and other free text the model wrote keep their placeholders.
    """
    if not isinstance(result, dict):
        return result
    out = dict(result)
    if isinstance(out.get("evidence"), dict):
        out["evidence"] = _map_evidence(out["evidence"], red)
    if isinstance(out.get("records"), list):
        out["records"] = [_map_evidence(r, red) if isinstance(r, dict) else r
                          for r in out["records"]]
    return out


def apply_redaction(res: Any, red: RedactedUnit, redacted_output: bool) -> None:
    """Record the redaction on a unit's result (and its calls) and map its evidence.

    With ``redacted_output`` the unit keeps the redacted text and context and its quotes and
    offsets stay those of the redacted text; otherwise the quotes and offsets are mapped to the
    original text (see :func:`to_original`).
    """
    res.redactions = dict(red.counts)
    for c in res.calls:
        c.redactions = dict(red.counts)
    if redacted_output:
        res.text = red.send_text
        res.context = red.send_context
    elif res.result is not None:
        res.result = to_original(res.result, red.text)


def sum_counts(rows: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    """Counts by type summed over units."""
    total: Counter[str] = Counter()
    for r in rows:
        if r:
            total.update(r)
    return dict(sorted(total.items()))
