r"""Consistent, reversible pseudonyms: ``Sarah`` becomes ``<PERSON_1>`` in every text of a run.

:class:`Pseudonymizer` runs one or more redactors over a text and replaces each span with a
placeholder ``<TYPE_N>`` (numbered per type, from 1). The same entity — same type, same surface
once case, Unicode form and whitespace are normalised (phone numbers by their digits, see
:func:`~vsdcoder.privacy.redactors.entity_key`) — gets the same placeholder in every text that
shares a :class:`PseudonymMap`. The map holds the original surfaces, so it stays on the machine.
A coding run keeps it in its ``run.db`` (see :class:`vsdcoder.privacy.engine.RunPseudonyms`) and
a resumed run loads it to keep the numbering; :meth:`PseudonymMap.save` writes it as JSON,
owner-only (mode 0600), for an export or outside a run.

:class:`Redacted` is one redacted text. Offsets the model gives (or a quote it copies) refer to
the redacted text; :meth:`Redacted.to_original_offsets` and :meth:`Redacted.find_quote` turn
them into offsets of the original, a range touching a placeholder widening to the whole entity.

Placeholder-looking text already in the input (``<PERSON_1>`` typed by a user, or left by an
earlier redaction) is escaped with a backslash after the ``<`` (``<\PERSON_1>``; any
backslashes already there gain one more), so a placeholder without a backslash is always
vsdcoder's own; :meth:`Redacted.restore` removes the escape again.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsdcoder.errors import UsageError
from vsdcoder.privacy.redactors import MultiRedactor, Redactor, Span, entity_key

#: A placeholder, escaped (``<\\TYPE_N>``, group 1 holds the backslashes) or not.
PLACEHOLDER_RE = re.compile(r"<(\\*)([A-Z][A-Z0-9_]*?)_([1-9][0-9]*)>")
MAP_FORMAT = "vsdcoder-pseudonym-map"
MAP_VERSION = 1


class PseudonymMap:
    """Entity -> placeholder for a whole run, with the original surface of each placeholder.

    Thread-safe. Save it with :meth:`save` (owner-only) and load it with :meth:`load` to resume
    a run with the same numbering. Never send it anywhere: it is the key to the pseudonyms.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._surface: dict[str, str] = {}
        self._type: dict[str, str] = {}
        self._key: dict[str, str] = {}
        self._count: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._surface)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._surface

    def __repr__(self) -> str:
        return f"PseudonymMap({len(self)} entities)"

    def placeholder(self, type_: str, surface: str) -> str:
        """The placeholder of this entity, numbering a new one ``<TYPE_N>`` if unseen."""
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", type_) or type_.endswith("_"):
            raise ValueError(f"entity type must be upper case letters, digits and _: {type_!r}")
        key = (type_, entity_key(type_, surface))
        with self._lock:
            ph = self._by_key.get(key)
            if ph is None:
                self._count[type_] += 1
                ph = f"<{type_}_{self._count[type_]}>"
                self._by_key[key] = ph
                self._surface[ph] = surface
                self._type[ph] = type_
                self._key[ph] = key[1]
            return ph

    def surface(self, placeholder: str) -> str | None:
        """The first original surface seen for ``placeholder`` (None if it is not ours)."""
        return self._surface.get(placeholder)

    def type_of(self, placeholder: str) -> str | None:
        """The entity type of ``placeholder`` (None if it is not ours)."""
        return self._type.get(placeholder)

    def entity(self, placeholder: str) -> tuple[str, str, str] | None:
        """``(type, normalised key, first surface)`` of ``placeholder`` (None if not ours)."""
        t = self._type.get(placeholder)
        k = self._key.get(placeholder)
        if t is None or k is None:
            return None
        return t, k, self._surface[placeholder]

    def counts(self) -> dict[str, int]:
        """Number of distinct entities by type."""
        return dict(sorted(self._count.items()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (it contains the original surfaces: keep it private)."""
        with self._lock:
            entities = [{"placeholder": ph, "type": t, "key": k, "surface": self._surface[ph]}
                        for (t, k), ph in self._by_key.items()]
            return {"format": MAP_FORMAT, "version": MAP_VERSION,
                    "counters": dict(sorted(self._count.items())), "entities": entities}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PseudonymMap:
        """The map :meth:`to_dict` wrote."""
        if not isinstance(data, dict) or data.get("format") != MAP_FORMAT:
            raise UsageError("not a vsdcoder pseudonym map")
        if data.get("version") != MAP_VERSION:
            raise UsageError(f"pseudonym map version {data.get('version')} is not supported "
                             f"(expected {MAP_VERSION})")
        m = cls()
        for e in data.get("entities", []):
            ph, type_ = e["placeholder"], e["type"]
            m._by_key[(type_, e["key"])] = ph
            m._surface.setdefault(ph, e["surface"])
            m._type[ph] = type_
            m._key.setdefault(ph, e["key"])
            match = PLACEHOLDER_RE.fullmatch(ph)
            if match:
                m._count[type_] = max(m._count[type_], int(match.group(3)))
        for type_, n in (data.get("counters") or {}).items():
            m._count[type_] = max(m._count[type_], int(n))
        return m

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the map as JSON readable and writable by the owner only (mode 0600).

        The file is written under a temporary name created with mode 0600 and renamed over
        ``path``, so it is never readable by others, not even for a moment, and a crash leaves
        the previous map intact.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # the umask may only narrow the mode; make it exact
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, ensure_ascii=False, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PseudonymMap:
        """The map saved at ``path`` (its mode is narrowed to 0600 if it was wider)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the pseudonym map: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not a pseudonym map (bad JSON: {exc})") from exc
        if os.name == "posix" and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return cls.from_dict(data)

    @classmethod
    def load_or_new(cls, path: str | os.PathLike[str]) -> PseudonymMap:
        """The map at ``path`` if it exists (resuming a run), else an empty one."""
        return cls.load(path) if Path(path).exists() else cls()


@dataclass(frozen=True)
class RedactedSpan:
    """An entity of the original text and the placeholder that replaced it.

    ``original[start:end] == text`` and ``redacted[red_start:red_end] == placeholder``.
    """

    start: int
    end: int
    type: str
    text: str
    placeholder: str
    red_start: int
    red_end: int


@dataclass(frozen=True)
class _Segment:
    """A replaced piece: an entity or an escaped placeholder-looking literal."""

    start: int
    end: int
    red_start: int
    red_end: int
    entity: bool


@dataclass
class Redacted:
    """A text with its identifying details replaced by placeholders.

    Attributes:
        original: The text as it was read (keep it on the machine).
        text: The redacted text, the only one to send out.
        spans: Each replaced entity, in order.
        counts: Number of replaced spans by type.
    """

    original: str
    text: str
    spans: list[RedactedSpan]
    counts: dict[str, int]
    _segments: list[_Segment] = field(default_factory=list, repr=False)
    _mapping: PseudonymMap | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._red_starts = [s.red_start for s in self._segments]
        self._red_ends = [s.red_end for s in self._segments]
        shift = 0
        self._shift_after: list[int] = []  # original - redacted offset after each segment
        for s in self._segments:
            shift += (s.end - s.start) - (s.red_end - s.red_start)
            self._shift_after.append(shift)

    @property
    def placeholders(self) -> dict[str, str]:
        """Placeholder -> the original surface it replaced in this text (first occurrence)."""
        out: dict[str, str] = {}
        for s in self.spans:
            out.setdefault(s.placeholder, s.text)
        return out

    def _shift_before(self, pos: int) -> int:
        """Offset shift from the segments that end at or before redacted position ``pos``."""
        i = bisect.bisect_right(self._red_ends, pos)
        return self._shift_after[i - 1] if i else 0

    def to_original_offsets(self, start: int, end: int) -> tuple[int, int]:
        """The range of the original text that redacted ``text[start:end]`` stands for.

        A range that begins or ends inside a placeholder widens to the whole original entity;
        elsewhere offsets move by the length differences of the placeholders before them.

        Raises:
            ValueError: ``start``/``end`` are not a range of the redacted text.
        """
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"({start}, {end}) is not a range of a {len(self.text)}-character "
                             "text")
        # a segment holding ``start``: red_start <= start < red_end
        i = bisect.bisect_right(self._red_starts, start) - 1
        if i >= 0 and start < self._red_ends[i]:
            o_start = self._segments[i].start
        else:
            o_start = start + self._shift_before(start)
        # a segment holding ``end``: red_start < end <= red_end
        j = bisect.bisect_left(self._red_starts, end) - 1
        if j >= 0 and end <= self._red_ends[j]:
            o_end = self._segments[j].end
        else:
            o_end = end + self._shift_before(end)
        if start == end:  # an empty range stays empty unless it sits inside a placeholder
            o_end = max(o_end, o_start)
        return o_start, o_end

    def restore(self, s: str) -> str:
        """``s`` (a quote or answer about the redacted text) with original surfaces put back.

        Placeholders of this text get their surface here; other placeholders of the run get
        the first surface the run saw for them; escaped literals lose one backslash. To locate a
        quote in the original text, use :meth:`find_quote`, which is exact.
        """
        local = self.placeholders

        def put_back(m: re.Match[str]) -> str:
            slashes = m.group(1)
            if slashes:
                return "<" + slashes[1:] + m.group(0)[1 + len(slashes):]
            ph = m.group(0)
            if ph in local:
                return local[ph]
            if self._mapping is not None:
                surface = self._mapping.surface(ph)
                if surface is not None:
                    return surface
            return ph

        return PLACEHOLDER_RE.sub(put_back, s)

    def find_quote(self, quote: str) -> tuple[int, int] | None:
        """Offsets in the *original* text of a quote copied from the redacted text, or None.

        The quote is matched in the redacted text by :func:`vsdcoder.evidence.find_quote` (same
        normalisation and word-boundary rules) and its range mapped back with
        :meth:`to_original_offsets`.
        """
        from vsdcoder.evidence import find_quote

        found = find_quote(self.text, quote)
        if found is None:
            return None
        return self.to_original_offsets(*found)


class Pseudonymizer:
    """Redact texts with consistent placeholders across a run.

    Args:
        redactors: One redactor or several (their spans are combined, overlaps resolved as in
            :func:`~vsdcoder.privacy.redactors.resolve_overlaps`, earlier redactors first), or
            registered redactor names as on the command line (``"patterns,presidio"``).
        mapping: The run's :class:`PseudonymMap`; a new one when omitted. Pass a loaded map to
            resume a run.
    """

    def __init__(self, redactors: Redactor | Sequence[Redactor] | str,
                 mapping: PseudonymMap | None = None) -> None:
        if isinstance(redactors, str):
            from vsdcoder.privacy import get_redactor

            self.redactor: Redactor = get_redactor(redactors)
        elif isinstance(redactors, Sequence):
            if not redactors:
                raise UsageError("Pseudonymizer needs at least one redactor")
            self.redactor = redactors[0] if len(redactors) == 1 else MultiRedactor(redactors)
        else:
            self.redactor = redactors
        self.mapping = mapping if mapping is not None else PseudonymMap()

    def find(self, text: str) -> list[Span]:
        """The spans that :meth:`redact` replaces."""
        return self.redactor.find(text)

    def redact(self, text: str, spans: list[Span] | None = None) -> Redacted:
        """``text`` with every identifying span replaced by its placeholder.

        ``spans``: what :meth:`find` gives for ``text``, if already found (e.g. in another
        process); only the placeholders are then assigned here.
        """
        if spans is None:
            spans = self.find(text)
        pieces: list[tuple[int, int, str, Span | None]] = [
            (s.start, s.end, self.mapping.placeholder(s.type, s.text), s) for s in spans]
        starts = [s.start for s in spans]
        for m in PLACEHOLDER_RE.finditer(text):
            i = bisect.bisect_right(starts, m.start()) - 1
            inside = (i >= 0 and spans[i].end > m.start()) or (
                i + 1 < len(spans) and spans[i + 1].start < m.end())
            if not inside:  # a literal that looks like a placeholder: escape it
                pieces.append((m.start(), m.end(), "<\\" + m.group(0)[1:], None))
        pieces.sort(key=lambda p: p[0])

        out: list[str] = []
        segments: list[_Segment] = []
        redacted_spans: list[RedactedSpan] = []
        pos = 0
        red_len = 0
        for start, end, repl, span in pieces:
            out.append(text[pos:start])
            red_len += start - pos
            segments.append(_Segment(start, end, red_len, red_len + len(repl), span is not None))
            if span is not None:
                redacted_spans.append(RedactedSpan(start, end, span.type, span.text, repl,
                                                   red_len, red_len + len(repl)))
            out.append(repl)
            red_len += len(repl)
            pos = end
        out.append(text[pos:])
        counts = dict(sorted(Counter(s.type for s in redacted_spans).items()))
        return Redacted(original=text, text="".join(out), spans=redacted_spans, counts=counts,
                        _segments=segments, _mapping=self.mapping)
