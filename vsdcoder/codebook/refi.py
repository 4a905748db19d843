"""REFI-QDA exchange: write codebooks as ``.qdc`` and import ``.qdc``, ``.qde`` and ``.qdpx``.

Export (:func:`write_qdc`) maps every dimension to a top-level category (``isCodable="false"``)
that holds the dimension's codes, nested as in the YAML, followed by its ``other``/``none``
options. Descriptions carry the definition as plain text, then one paragraph of
``Key: value`` lines (``Label``, ``Include``, ``Exclude``, ``Example``, ``Not an example``, ...)
so that another tool shows them and vsdcoder can read them back. GUIDs are the code's own
``guid`` or a uuid5 of ``codebook/dimension/code``, so exporting twice gives the same bytes.

Import (:func:`import_qdc`) reads a codebook or a project (plain ``.qde`` or a ``.qdpx`` zip)
with :mod:`defusedxml` (no DTDs, no entities), keeps names, hierarchy, descriptions, colours,
``isCodable="false"`` categories, GUIDs and code sets, and returns codebook YAML text. A file
that vsdcoder exported is mapped back to its dimensions. See ``docs/refi.md``.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vsdcoder.codebook.model import (
    RESERVED_NAMES,
    Code,
    Codebook,
    Dimension,
    NoneOption,
    OtherOption,
)
from vsdcoder.errors import UsageError

#: The codebook namespace vsdcoder writes (with a dot: ``1.0``).
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"
#: Where the official Codebook schema lives (written as ``xsi:schemaLocation``).
CODEBOOK_XSD_URL = "http://schema.qdasoftware.org/versions/Codebook/v1.0/Codebook.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: Fixed namespace of vsdcoder's deterministic GUIDs (uuid5 of ``codebook/dimension/code``).
GUID_NAMESPACE = uuid.UUID("cacfeeef-1ed7-54ed-97a0-5ef69cca918f")

#: Largest XML document the importer reads (bytes, after unzipping).
MAX_XML_BYTES = 256 * 1024 * 1024
#: Deepest code hierarchy the importer accepts.
MAX_DEPTH = 100
#: Longest code name the codebook language accepts.
MAX_NAME = 80

_GUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
_GUID_HEX = re.compile(r"^[0-9A-F]{32}$")
_COLOR = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
# Characters XML 1.0 cannot carry; removed on export.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Keys of the structured paragraph at the end of a Description.
_CODE_KEYS = ("Label", "Option", "Specify", "Include", "Exclude", "Example", "Not an example")
_DIM_KEYS = ("Label", "Question", "Type", "Required", "Max codes", "When", "Codebook")
_KEY_LINE = re.compile(
    r"^(" + "|".join(re.escape(k) for k in sorted({*_CODE_KEYS, *_DIM_KEYS}, key=len,
                                                   reverse=True)) + r"):(?: (.*))?$"
)
_DIM_TYPES = ("single", "multi", "ordinal", "text")
_DEFAULT_DIMENSION = "codes"
_DEFAULT_QUESTION = "Which of these codes apply to the text?"


# --------------------------------------------------------------------------------------------
# shared helpers


def normalize_guid(value: str | None) -> str | None:
    """A GUID in the form vsdcoder writes: upper case, no braces; ``None`` if it is not one.

    Accepts ``{...}``-wrapped, lower-case and 32-hex-digit (hyphen-less) forms.

    Args:
        value: The GUID as found in a file or a codebook.

    Returns:
        ``XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`` or ``None`` when ``value`` is not a GUID.
    """
    if value is None:
        return None
    g = value.strip()
    if g.startswith("{") and g.endswith("}"):
        g = g[1:-1].strip()
    g = g.upper()
    if _GUID_HEX.match(g):
        g = f"{g[:8]}-{g[8:12]}-{g[12:16]}-{g[16:20]}-{g[20:]}"
    return g if _GUID.match(g) else None


def deterministic_guid(*parts: str) -> str:
    """The uuid5 GUID vsdcoder gives a node without its own, from its path parts.

    Args:
        parts: For example ``("sad-stressors", "stressor", "work")``.

    Returns:
        The GUID, upper case.
    """
    return str(uuid.uuid5(GUID_NAMESPACE, "/".join(parts))).upper()


def _format_block(fields: list[tuple[str, str]]) -> str:
    """``Key: value`` lines; further lines of a value are indented by two spaces."""
    lines = []
    for key, value in fields:
        first, *rest = value.split("\n")
        lines.append(f"{key}: {first}" if first else f"{key}:")
        lines.extend("  " + line for line in rest)
    return "\n".join(lines)


def _parse_block(par: str, keys: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """Inverse of :func:`_format_block`; ``None`` unless every line fits the format."""
    out: list[list[str]] = []
    for line in par.split("\n"):
        m = _KEY_LINE.match(line)
        if m and m.group(1) in keys:
            out.append([m.group(1), m.group(2) or ""])
        elif line.startswith("  ") and out:
            out[-1][1] += "\n" + line[2:]
        else:
            return None
    return [(k, v) for k, v in out] or None


def _split_description(text: str,
                       keys: tuple[str, ...]) -> tuple[str | None, list[tuple[str, str]]]:
    """Split a vsdcoder Description into its plain text and its structured last paragraph."""
    head, _, tail = text.rpartition("\n\n")
    fields = _parse_block(tail, keys)
    if fields is None:
        return (text.strip() or None), []
    return (head.strip() or None), fields


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _join(*parts: str | None) -> str | None:
    text = "\n\n".join(p for p in parts if p)
    return text or None


# --------------------------------------------------------------------------------------------
# export


@dataclass
class _Export:
    codebook: Codebook
    explicit: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    #: (dimension, code name) -> GUID, for set members.
    code_guids: dict[tuple[str, str], str] = field(default_factory=dict)

    def guid(self, own: str | None, *path: str) -> str:
        """The node's own GUID if it has one, else a deterministic one that is not taken."""
        g = normalize_guid(own)  # own GUIDs were checked by _collect_explicit
        if g is not None:
            self.used.add(g)
            return g
        g = deterministic_guid(self.codebook.name, *path)
        k = 2
        while g in self.used or g in self.explicit:
            g = deterministic_guid(self.codebook.name, *path, f"#{k}")
            k += 1
        self.used.add(g)
        return g


def _collect_explicit(codebook: Codebook) -> set[str]:
    seen: dict[str, str] = {}

    def take(own: str | None, what: str) -> None:
        if own is None:
            return
        g = normalize_guid(own)
        if g is None:
            raise UsageError(f"{what}: guid '{own}' is not a GUID (8-4-4-4-12 hex digits, e.g. "
                             "'1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294'); fix it or remove it to "
                             "get a generated one")
        if g in seen:
            raise UsageError(f"{what}: guid {g} is also the guid of {seen[g]}; every code and "
                             "set needs its own GUID, so remove one of them")
        seen[g] = what

    for dim in codebook.dimensions:
        for top in dim.codes:
            for code, _, _ in top.walk():
                take(code.guid, f"code '{dim.name}.{code.name}'")
    for cset in codebook.sets:
        take(cset.guid, f"set '{cset.name}'")
    return set(seen)


def _code_description(code: Code, option: str | None = None) -> str | None:
    fields: list[tuple[str, str]] = []
    if code.label:
        fields.append(("Label", code.label))
    if option:
        fields.append(("Option", option))
    elif code.specify:
        fields.append(("Specify", "yes"))
    fields += [("Include", x) for x in code.include]
    fields += [("Exclude", x) for x in code.exclude]
    fields += [("Example", x) for x in code.examples.positive]
    fields += [("Not an example", x) for x in code.examples.negative]
    return _join(code.definition, _format_block(fields) if fields else None)


def _dimension_description(codebook: Codebook, dim: Dimension) -> str:
    fields: list[tuple[str, str]] = []
    if dim.label:
        fields.append(("Label", dim.label))
    if dim.question:
        fields.append(("Question", dim.question))
    fields.append(("Type", dim.type))
    if not dim.required:
        fields.append(("Required", "no"))
    if dim.max_codes is not None:
        fields.append(("Max codes", str(dim.max_codes)))
    if dim.when is not None:
        fields.append(("When", f"{dim.when.dimension} = {'; '.join(dim.when.codes)}"))
    fields.append(("Codebook", f"{codebook.name} {codebook.version}"))
    return _join(dim.description, _format_block(fields)) or ""


def _q(tag: str) -> str:
    return f"{{{NS_CODEBOOK}}}{tag}"


def _add_code(parent: ET.Element, code: Code, dim: Dimension, ex: _Export,
              option: str | None = None) -> None:
    guid = ex.guid(code.guid, dim.name, code.name)
    ex.code_guids.setdefault((dim.name, code.name), guid)
    el = ET.SubElement(parent, _q("Code"), {
        "guid": guid,
        "name": _xml_text(code.name),
        "isCodable": "true" if code.is_codable else "false",
    })
    if code.color:
        el.set("color", code.color)
    desc = _code_description(code, option)
    if desc:
        ET.SubElement(el, _q("Description")).text = _xml_text(desc)
    for child in code.codes:
        _add_code(el, child, dim, ex)


def _resolve_set_member(codebook: Codebook, ref: str) -> list[tuple[str, str]]:
    """``(dimension, code)`` pairs a set reference names (as the codebook checks read it)."""
    if "." in ref:
        dname, _, cname = ref.partition(".")
        for dim in codebook.dimensions:
            if dim.name == dname and any(c.name == cname for c in dim.all_codes()):
                return [(dname, cname)]
    return [(d.name, c.name) for d in codebook.dimensions for c in d.all_codes() if c.name == ref]


def qdc_bytes(codebook: Codebook) -> bytes:
    """The REFI-QDA codebook XML of ``codebook``: UTF-8, pretty-printed, deterministic.

    Args:
        codebook: A valid codebook.

    Returns:
        The bytes of a ``.qdc`` file.

    Raises:
        UsageError: a ``guid`` is malformed or used twice, or a set names an unknown code.
    """
    from vsdcoder import __version__

    ex = _Export(codebook, explicit=_collect_explicit(codebook))
    root = ET.Element(_q("CodeBook"), {
        f"{{{XSI}}}schemaLocation": f"{NS_CODEBOOK} {CODEBOOK_XSD_URL}",
        "origin": f"vsdcoder {__version__}",
    })
    codes_el = ET.SubElement(root, _q("Codes"))
    for dim in codebook.dimensions:
        dim_el = ET.SubElement(codes_el, _q("Code"), {
            "guid": ex.guid(None, dim.name),
            "name": dim.name,
            "isCodable": "false",
        })
        ET.SubElement(dim_el, _q("Description")).text = _xml_text(
            _dimension_description(codebook, dim))
        for code in dim.codes:
            _add_code(dim_el, code, dim, ex)
        for opt_key, opt in (("other", dim.other), ("none", dim.none)):
            if opt is not None:
                as_code = Code(name=opt.name, label=opt.label, definition=opt.definition)
                _add_code(dim_el, as_code, dim, ex, option=opt_key)
    if codebook.sets:
        sets_el = ET.SubElement(root, _q("Sets"))
        names: dict[str, int] = {}
        for cset in codebook.sets:
            n = names[cset.name] = names.get(cset.name, 0) + 1
            path = ("#sets", cset.name) if n == 1 else ("#sets", cset.name, f"#{n}")
            set_el = ET.SubElement(sets_el, _q("Set"), {
                "guid": ex.guid(cset.guid, *path),
                "name": _xml_text(cset.name),
            })
            if cset.description:
                ET.SubElement(set_el, _q("Description")).text = _xml_text(cset.description)
            members: list[str] = []
            for ref in cset.codes:
                found = _resolve_set_member(codebook, ref)
                if not found:
                    raise UsageError(f"set '{cset.name}' names unknown code '{ref}'; write "
                                     "'dimension.code' or a code name")
                for key in found:
                    g = ex.code_guids[key]
                    if g not in members:
                        members.append(g)
            for g in members:
                ET.SubElement(set_el, _q("MemberCode"), {"guid": g})
    ET.indent(root, space="  ")
    # The codebook namespace is the default one (no 'ns0:' prefixes); ``default_namespace=``
    # cannot be used because REFI attributes are unqualified.
    ET.register_namespace("", NS_CODEBOOK)
    ET.register_namespace("xsi", XSI)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def write_qdc(codebook: Codebook, path: str | Path) -> Path:
    """Write ``codebook`` as a REFI-QDA codebook (``.qdc``) file.

    Each dimension becomes a top-level category (``isCodable="false"``) holding its codes and
    its ``other``/``none`` options; see :func:`qdc_bytes` and ``docs/refi.md``.

    Args:
        codebook: A valid codebook.
        path: The file to write (replaced if it exists).

    Returns:
        The path written.

    Raises:
        UsageError: the codebook cannot be exported (bad or duplicate ``guid``, unknown set
            member) or the file cannot be written.
    """
    data = qdc_bytes(codebook)
    p = Path(path)
    try:
        p.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{p}: cannot write the codebook: {exc.strerror or exc}; check that "
                         "the folder exists and is writable") from None
    return p


# --------------------------------------------------------------------------------------------
# import: reading the XML safely


def _read_xml_bytes(path: Path) -> tuple[bytes, str]:
    """The XML bytes of a .qdc/.qde file or of the project.qde inside a .qdpx zip."""
    if not path.exists():
        raise UsageError(f"{path}: no such file; give a REFI-QDA codebook (.qdc) or project "
                         "(.qde or .qdpx)")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a REFI-QDA .qdc, .qde or .qdpx file")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if is_zip:
        return _read_qdpx(path), "REFI-QDA project archive"
    if path.suffix.lower() == ".qdpx":
        raise UsageError(f"{path}: not a readable .qdpx (zip) archive; export the project "
                         "again, or unzip it and import its project.qde")
    try:
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise UsageError(f"{path}: {size} bytes is more than the {MAX_XML_BYTES} this "
                             "importer reads; export only the codebook (.qdc)")
        return path.read_bytes(), ""
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_qdpx(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            qde = [i for i in infos if i.filename.lower().endswith(".qde")]
            # project.qde at the top level first, then any .qde, shallowest first
            qde.sort(key=lambda i: (i.filename.lower() != "project.qde",
                                    i.filename.count("/"), i.filename))
            if not qde:
                raise UsageError(f"{path}: the archive has no project.qde; is it a REFI-QDA "
                                 "project (.qdpx)? Export the project again")
            info = qde[0]
            if info.file_size > MAX_XML_BYTES:
                raise UsageError(f"{path}: {info.filename} unpacks to {info.file_size} bytes, "
                                 f"more than the {MAX_XML_BYTES} this importer reads; export "
                                 "only the codebook (.qdc)")
            with zf.open(info) as fh:
                data = fh.read(MAX_XML_BYTES + 1)
            if len(data) > MAX_XML_BYTES:
                raise UsageError(f"{path}: {info.filename} unpacks to more than "
                                 f"{MAX_XML_BYTES} bytes; export only the codebook (.qdc)")
            return data
    except UsageError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            EOFError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable .qdpx (zip) archive ({exc}); export the "
                         "project again, or unzip it and import its project.qde") from None
    except Exception as exc:  # zlib.error and friends from a damaged archive
        raise UsageError(f"{path}: damaged .qdpx archive ({type(exc).__name__}: {exc}); "
                         "export the project again") from None


def _parse_xml(data: bytes, where: str) -> ET.Element:
    import defusedxml
    import defusedxml.ElementTree as SafeET

    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DTDForbidden:
        raise UsageError(f"{where}: the file declares a DTD (<!DOCTYPE ...>), which REFI-QDA "
                         "files never need; refused because DTDs allow entity-expansion "
                         "(billion laughs) and external-entity attacks. Remove the DOCTYPE "
                         "or export the file again from the QDA program") from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise UsageError(f"{where}: the file declares XML entities, which REFI-QDA files never "
                         "need; refused to prevent entity-expansion and external-entity "
                         "attacks. Export the file again from the QDA program") from None
    except defusedxml.DefusedXmlException as exc:
        raise UsageError(f"{where}: refused unsafe XML ({exc}); export the file again") from None
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        at = f" at line {line}, column {col + 1}" if line is not None and col is not None else ""
        raise UsageError(f"{where}: not well-formed XML{at} ({exc}); give a REFI-QDA codebook "
                         "(.qdc) or project (.qde/.qdpx) exported by a QDA program") from None


def _split_tag(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):  # comments, processing instructions
        return "", ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _kids(el: ET.Element, local: str) -> list[ET.Element]:
    return [c for c in el if _split_tag(c.tag)[1] == local]


def _kid(el: ET.Element, local: str) -> ET.Element | None:
    found = _kids(el, local)
    return found[0] if found else None


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


# --------------------------------------------------------------------------------------------
# import: from XML to codebook data


@dataclass
class _Node:
    name: str
    guid: str | None
    codable: bool | None  # False only for isCodable="false"
    color: str | None
    description: str | None
    children: list[_Node]


@dataclass
class _RawSet:
    name: str
    guid: str | None
    description: str | None
    codes: list[str]
    others: int  # MemberSource/MemberNote count


class _Importer:
    def __init__(self, where: str):
        self.where = where
        self.notes: list[str] = []
        self.seen_guids: set[str] = set()

    # --- XML -> nodes -----------------------------------------------------------------------

    def node(self, el: ET.Element, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise UsageError(f"{self.where}: codes are nested more than {MAX_DEPTH} levels "
                             "deep; is this a REFI-QDA file?")
        raw_name = el.get("name")
        name = (raw_name or "").strip()
        raw_guid = el.get("guid")
        guid = normalize_guid(raw_guid)
        label = name or "(unnamed)"
        if raw_guid is not None and guid is None:
            self.notes.append(f"code '{label}': guid '{raw_guid}' is not a GUID; dropped (a new "
                              "one is made on export)")
        elif guid is None:
            self.notes.append(f"code '{label}' has no guid; a new one is made on export")
        if guid is not None and guid in self.seen_guids:
            self.notes.append(f"code '{label}': guid {guid} is used by an earlier code too; "
                              "dropped here (a new one is made on export)")
            guid = None
        if guid is not None:
            self.seen_guids.add(guid)
        flag = (el.get("isCodable") or "").strip().lower()
        codable = False if flag in ("false", "0") else True if flag in ("true", "1") else None
        color = self.color(el.get("color"), label)
        children = [self.node(c, depth + 1) for c in _kids(el, "Code")]
        desc = _text(_kid(el, "Description"))
        return _Node(raw_name or "", guid, codable, color, desc, children)

    def color(self, raw: str | None, label: str) -> str | None:
        if raw is None or not raw.strip():
            return None
        c = raw.strip()
        if _COLOR.match(c):
            return c
        if _COLOR.match("#" + c):
            self.notes.append(f"code '{label}': colour '{raw}' lacks '#'; written '#{c}'")
            return "#" + c
        self.notes.append(f"code '{label}': colour '{raw}' is not '#RRGGBB' or '#RGB'; dropped")
        return None

    def sets(self, sets_el: ET.Element | None) -> list[_RawSet]:
        out: list[_RawSet] = []
        if sets_el is None:
            return out
        for s in _kids(sets_el, "Set"):
            members = []
            for m in _kids(s, "MemberCode"):
                g = normalize_guid(m.get("guid") or m.get("targetGUID"))
                if g is None:
                    self.notes.append(f"set '{s.get('name', '')}': a member has no valid GUID; "
                                      "skipped")
                else:
                    members.append(g)
            others = len(_kids(s, "MemberSource")) + len(_kids(s, "MemberNote"))
            out.append(_RawSet((s.get("name") or "").strip() or "(unnamed set)",
                               normalize_guid(s.get("guid")), _text(_kid(s, "Description")),
                               members, others))
        return out


def _clean_name(raw: str) -> tuple[str, list[str]]:
    """A code name the model accepts, and why it differs from ``raw`` (if it does)."""
    name = " ".join(raw.replace("\r", "\n").split("\n")).strip()
    why = []
    if "\n" in raw.strip() or "\r" in raw.strip():
        why.append("was on several lines")
    if ";" in name:
        name = name.replace(";", ",")
        why.append("';' separates codes in CSV output, so ';' became ','")
    if not name:
        name = "unnamed code"
        why.append("had no name")
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME].rstrip()
        why.append(f"was longer than {MAX_NAME} characters")
    return name, why


class _Namer:
    """Valid, unique code names within one dimension, with every change reported.

    The first code with a name keeps it; a later duplicate gets the first free ``' (k)'``
    suffix that no code of the dimension uses (``reserved``), so names already unique in the
    source never change.
    """

    def __init__(self, dimension: str, notes: list[str], nodes: list[_Node],
                 taken: set[str] | None = None):
        self.dimension = dimension
        self.notes = notes
        self.taken: set[str] = set(taken or ())
        self.reserved: set[str] = set(self.taken)

        def walk(ns: list[_Node]) -> None:
            for n in ns:
                self.reserved.add(_clean_name(n.name)[0])
                walk(n.children)

        walk(nodes)

    def __call__(self, raw: str) -> str:
        name, why = _clean_name(raw)
        if why:
            self.notes.append(f"code '{' '.join(raw.split())}' in '{self.dimension}' renamed "
                              f"'{name}': " + "; ".join(why))
        if name in self.taken:
            k = 2
            while True:
                suffix = f" ({k})"
                cand = name[: MAX_NAME - len(suffix)].rstrip() + suffix
                if cand not in self.taken and cand not in self.reserved:
                    break
                k += 1
            self.notes.append(f"duplicate code name '{name}' in '{self.dimension}': the later "
                              f"one is now '{cand}'")
            name = cand
        self.taken.add(name)
        return name


def _valid_dimension_name(name: str) -> bool:
    """Whether the codebook model accepts ``name`` for a dimension (reserved words too)."""
    from pydantic import ValidationError

    if not _IDENT.match(name) or name in RESERVED_NAMES:
        return False
    try:
        Dimension(name=name, type="text")
    except ValidationError:
        return False
    return True


def _slug_identifier(raw: str) -> str:
    text = unicodedata.normalize("NFKD", raw)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not text:
        text = "dimension"
    if not text[0].isalpha():
        text = "d_" + text
    if not _valid_dimension_name(text):
        text += "_codes"
    return text if _valid_dimension_name(text) else "dimension"


def _unique(name: str, taken: set[str]) -> str:
    cand, k = name, 2
    while cand in taken:
        cand = f"{name}_{k}"
        k += 1
    taken.add(cand)
    return cand


def _slug_codebook_name(stem: str) -> str:
    text = unicodedata.normalize("NFKD", stem)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z0-9_.-]+", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip("-_.")
    return text or "imported-codebook"


@dataclass
class _Built:
    dimensions: list[dict[str, Any]]
    #: GUID -> (dimension, code) for set members; dimension GUIDs map to (dimension, None).
    guids: dict[str, tuple[str, str | None]]
    codebook_name: str | None = None
    version: str | None = None


def _code_data(node: _Node, namer: _Namer, dim: str, guids: dict[str, tuple[str, str | None]],
               notes: list[str], structured: bool) -> dict[str, Any]:
    name = namer(node.name)
    d: dict[str, Any] = {"name": name}
    definition = node.description
    fields: list[tuple[str, str]] = []
    if structured and node.description:
        definition, fields = _split_description(node.description, _CODE_KEYS)
    include, exclude, pos, neg = [], [], [], []
    for key, value in fields:
        if key == "Label":
            d["label"] = value
        elif key == "Include":
            include.append(value)
        elif key == "Exclude":
            exclude.append(value)
        elif key == "Example":
            pos.append(value)
        elif key == "Not an example":
            neg.append(value)
    if definition:
        d["definition"] = definition
    if include:
        d["include"] = include
    if exclude:
        d["exclude"] = exclude
    if pos or neg:
        d["examples"] = {k: v for k, v in (("positive", pos), ("negative", neg)) if v}
    if node.children:
        d["codable"] = node.codable is not False
    elif node.codable is False:
        notes.append(f"'{dim}.{name}' is marked isCodable=\"false\" but has no sub-codes; "
                     "imported as a codable code (an empty category cannot be coded)")
    if any(k == "Specify" and v.strip().lower() in ("yes", "true") for k, v in fields):
        d["specify"] = True
    if node.color:
        d["color"] = node.color
    if node.guid:
        d["guid"] = node.guid
        guids.setdefault(node.guid, (dim, name))
    if node.children:
        d["codes"] = [_code_data(c, namer, dim, guids, notes, structured) for c in node.children]
    return d


def _build_plain(nodes: list[_Node], notes: list[str], top_level_as_dimensions: bool,
                 source_name: str) -> _Built:
    guids: dict[str, tuple[str, str | None]] = {}
    if not top_level_as_dimensions:
        namer = _Namer(_DEFAULT_DIMENSION, notes, nodes)
        dim = {"name": _DEFAULT_DIMENSION, "question": _DEFAULT_QUESTION,
               "description": f"Codes imported from {source_name}.", "type": "multi",
               "codes": [_code_data(n, namer, _DEFAULT_DIMENSION, guids, notes, False)
                         for n in nodes]}
        return _Built([dim], guids)
    taken: set[str] = set()
    dims: list[dict[str, Any]] = []
    loose: list[_Node] = []
    for node in nodes:
        if not node.children:
            loose.append(node)
            continue
        dname = _unique(_slug_identifier(node.name), taken)
        label = node.name.strip()
        notes.append(f"top-level code '{label}' is now dimension '{dname}' (type multi); a "
                     "dimension keeps no GUID or colour, so export gives it new ones")
        if node.codable is not False:
            notes.append(f"top-level code '{label}' was codable in the source; as a dimension "
                         "it cannot be assigned itself, only its codes")
        if node.guid:
            guids[node.guid] = (dname, None)
        namer = _Namer(dname, notes, node.children)
        dim: dict[str, Any] = {"name": dname, "label": label}
        if node.description:
            dim["description"] = node.description
        dim["type"] = "multi"
        dim["codes"] = [_code_data(c, namer, dname, guids, notes, False) for c in node.children]
        dims.append(dim)
    if loose:
        dname = _unique(_DEFAULT_DIMENSION, taken)
        notes.append(f"top-level codes without sub-codes ({len(loose)}) are gathered in "
                     f"dimension '{dname}'")
        namer = _Namer(dname, notes, loose)
        dims.append({"name": dname, "question": _DEFAULT_QUESTION, "type": "multi",
                     "codes": [_code_data(n, namer, dname, guids, notes, False)
                               for n in loose]})
    return _Built(dims, guids)


def _build_vsdcoder(nodes: list[_Node], notes: list[str]) -> _Built:
    """Map a vsdcoder export back: each top-level node is a dimension."""
    guids: dict[str, tuple[str, str | None]] = {}
    built = _Built([], guids)
    taken: set[str] = set()
    for node in nodes:
        raw = node.name.strip()
        if _valid_dimension_name(raw) and raw not in taken:
            dname = raw
            taken.add(raw)
        else:
            dname = _unique(_slug_identifier(raw), taken)
            notes.append(f"dimension '{raw}' renamed '{dname}' (dimension names are "
                         "lower_snake_case and unique)")
        if node.guid:
            guids[node.guid] = (dname, None)
        plain, fields = _split_description(node.description or "", _DIM_KEYS)
        info = dict(fields)
        dim: dict[str, Any] = {"name": dname}
        if "Label" in info:
            dim["label"] = info["Label"]
        if "Question" in info:
            dim["question"] = info["Question"]
        if plain:
            dim["description"] = plain
        dtype = info.get("Type", "").strip()
        if dtype not in _DIM_TYPES:
            notes.append(f"dimension '{dname}': type '{dtype}' unknown or missing; set to multi")
            dtype = "multi"
        dim["type"] = dtype
        if info.get("Required", "").strip().lower() in ("no", "false"):
            dim["required"] = False
        if "Codebook" in info and built.codebook_name is None:
            cname, _, version = info["Codebook"].strip().partition(" ")
            built.codebook_name, built.version = cname or None, version.strip() or None
        regular: list[_Node] = []
        options: dict[str, _Node] = {}
        for child in node.children:
            _, cfields = _split_description(child.description or "", _CODE_KEYS)
            opt = dict(cfields).get("Option", "").strip()
            if opt in ("none", "other") and opt not in options and not child.children:
                options[opt] = child
            else:
                regular.append(child)
        namer = _Namer(dname, notes, regular, taken={n.name.strip() for n in options.values()})
        for key, cls in (("none", NoneOption), ("other", OtherOption)):
            if key not in options:
                continue
            onode = options[key]
            definition, ofields = _split_description(onode.description or "", _CODE_KEYS)
            default = cls()
            opt_data: dict[str, Any] = {}
            if onode.name.strip() != default.name:
                opt_data["name"] = onode.name.strip()
            label = dict(ofields).get("Label")
            if label:
                opt_data["label"] = label
            if definition and definition != default.definition:
                opt_data["definition"] = definition
            dim[key] = opt_data or True
            if onode.guid:
                guids.setdefault(onode.guid, (dname, onode.name.strip()))
        if "When" in info:
            gate, sep, codes = info["When"].partition(" = ")
            if sep and gate.strip() and codes.strip():
                dim["when"] = {"dimension": gate.strip(),
                               "codes": [c.strip() for c in codes.split(";") if c.strip()]}
            else:
                notes.append(f"dimension '{dname}': cannot read 'When: {info['When']}'; dropped")
        if "Max codes" in info:
            try:
                dim["max_codes"] = int(info["Max codes"])
            except ValueError:
                notes.append(f"dimension '{dname}': 'Max codes: {info['Max codes']}' is not a "
                             "number; dropped")
        if dtype == "text":
            if regular or options:
                notes.append(f"dimension '{dname}' is type text but holds codes; they are "
                             "dropped")
                dim.pop("none", None)
                dim.pop("other", None)
        else:
            if not regular:
                notes.append(f"dimension '{dname}' has no codes; skipped")
                continue
            dim["codes"] = [_code_data(c, namer, dname, guids, notes, True) for c in regular]
        built.dimensions.append(dim)
    return built


def _codable_parents(nodes: list[_Node], skip_top: bool) -> int:
    def count(node: _Node, top: bool) -> int:
        own = int(bool(node.children) and node.codable is not False and not (top and skip_top))
        return own + sum(count(c, False) for c in node.children)

    return sum(count(n, True) for n in nodes)


def _set_data(raw_sets: list[_RawSet], built: _Built, notes: list[str],
              project: bool) -> list[dict[str, Any]]:
    out = []
    for s in raw_sets:
        if project and not s.codes:
            what = "holds only documents or notes" if s.others else "is empty"
            notes.append(f"set '{s.name}' {what}; skipped (vsdcoder keeps code sets only)")
            continue
        if s.others:
            notes.append(f"set '{s.name}': {s.others} document or note member(s) are not kept "
                         "(a codebook set holds codes only)")
        refs: list[str] = []
        for g in s.codes:
            target = built.guids.get(g)
            if target is None:
                notes.append(f"set '{s.name}': member {g} is not a code in the codebook; "
                             "skipped")
            elif target[1] is None:
                notes.append(f"set '{s.name}': member {g} is now dimension '{target[0]}', "
                             "which a set cannot hold; skipped")
            else:
                ref = f"{target[0]}.{target[1]}"
                if ref not in refs:
                    refs.append(ref)
        item: dict[str, Any] = {"name": s.name}
        if s.description:
            item["description"] = s.description
        if s.guid:
            item["guid"] = s.guid
        item["codes"] = refs
        out.append(item)
    return out


# --------------------------------------------------------------------------------------------
# import: YAML output


class _Dumper(yaml.SafeDumper):
    """Block style, indented lists, multi-line strings as ``|`` blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _comment(text: str) -> str:
    return " ".join(text.split())


def import_qdc(path: str | Path, name: str | None = None,
               top_level_as_dimensions: bool = False) -> str:
    """Read a REFI-QDA codebook or project and return vsdcoder codebook YAML text.

    Args:
        path: A ``.qdc`` codebook, a ``.qde`` project or a ``.qdpx`` project archive.
        name: The codebook ``name``; default: the one a vsdcoder export recorded, else a slug
            of the file name.
        top_level_as_dimensions: Make each top-level code with sub-codes a ``multi``
            dimension (top-level codes without sub-codes are gathered in one more dimension).
            By default the whole tree goes into one ``multi`` dimension named ``codes``. Files
            exported by vsdcoder are always mapped back to their dimensions.

    Returns:
        YAML text that :func:`vsdcoder.codebook.load.parse_codebook` accepts, starting with
        comments naming the source and every change the import made (renamed codes, skipped
        set members, ...).

    Raises:
        UsageError: the file is missing or unreadable, not well-formed XML, unsafe (DTD or
            entities), not a REFI-QDA codebook or project, or holds no codes; or ``name`` is
            not a valid codebook name.
    """
    from vsdcoder import __version__

    src = Path(path)
    data, container = _read_xml_bytes(src)
    where = f"{src} (project.qde)" if container else str(src)
    root = _parse_xml(data, where)
    ns, local = _split_tag(root.tag)
    if ns and not ns.lower().startswith("urn:qda-xml:"):
        raise UsageError(f"{where}: root element <{local}> is in namespace '{ns}', not a "
                         "REFI-QDA one (urn:QDA-XML:codebook:1.0 or urn:QDA-XML:project:1.0); "
                         "export a REFI-QDA codebook (.qdc) or project (.qdpx)")
    imp = _Importer(where)
    origin = (root.get("origin") or "").strip()
    if local == "CodeBook":
        kind = "REFI-QDA codebook"
        codebook_el: ET.Element | None = root
        sets_el = _kid(root, "Sets")
        project = False
    elif local == "Project":
        kind = container or "REFI-QDA project"
        codebook_el = _kid(root, "CodeBook")
        if codebook_el is None:
            raise UsageError(f"{where}: the project has no <CodeBook>; export the project "
                             "with its codes, or export the codebook (.qdc)")
        sets_el = _kid(root, "Sets")
        project = True
    else:
        raise UsageError(f"{where}: root element is <{local}>, not <CodeBook> or <Project>; "
                         "give a REFI-QDA codebook (.qdc) or project (.qde/.qdpx)")
    codes_el = _kid(codebook_el, "Codes")
    if codes_el is None:
        raise UsageError(f"{where}: <CodeBook> has no <Codes>; the file holds no codebook "
                         "to import")
    nodes = [imp.node(c, 1) for c in _kids(codes_el, "Code")]
    if not nodes:
        raise UsageError(f"{where}: <Codes> holds no <Code>; there is nothing to import")

    notes = imp.notes
    is_vsdcoder = origin.lower().startswith("vsdcoder")
    if is_vsdcoder:
        built = _build_vsdcoder(nodes, notes)
        if not built.dimensions:
            raise UsageError(f"{where}: no dimension with codes found in this vsdcoder export")
    else:
        built = _build_plain(nodes, notes, top_level_as_dimensions, src.name)
        parents = _codable_parents(nodes, top_level_as_dimensions)
        if parents:
            notes.append(f"{parents} code(s) with sub-codes are marked isCodable=\"true\" in "
                         "the source and stay codable ('codable: true'); some programs (e.g. "
                         "MAXQDA) mark every category so. Set 'codable: false' on those that "
                         "must not be assigned")
    sets = _set_data(imp.sets(sets_el), built, notes, project)

    if name is not None:
        cb_name = name.strip()
        if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", cb_name):
            raise UsageError(f"--name '{name}' is not a codebook name: use a lower-case slug "
                             f"(letters, digits, '-', '_', '.'), e.g. "
                             f"'{_slug_codebook_name(name)}'")
    else:
        cb_name = built.codebook_name or _slug_codebook_name(src.stem)
        if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", cb_name):
            cb_name = _slug_codebook_name(cb_name)

    doc: dict[str, Any] = {"vsdcoder": 1, "name": cb_name}
    if built.version:
        doc["version"] = built.version
    title = (root.get("name") or "").strip() if project else ""
    if title:
        doc["title"] = title
    doc["dimensions"] = built.dimensions
    if sets:
        doc["sets"] = sets
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)

    header = [
        f"# Imported from {kind} '{_comment(src.name)}'"
        + (f", written by '{_comment(origin)}'" if origin else ", origin not stated"),
        f"# by vsdcoder {__version__} (vsdcoder codebook import).",
    ]
    if not is_vsdcoder:
        header.append("# Check each dimension's type and question, and the definitions, "
                      "before coding.")
    problems = _validate(body, src.name)
    if problems:
        header.append("# WARNING: this codebook does not validate yet; fix these by hand:")
        header += [f"#   ! {_comment(p)}" for p in problems]
    if notes:
        header.append("# Import notes:")
        header += [f"#   - {_comment(n)}" for n in notes]
    return "\n".join(header) + "\n" + body


def _validate(text: str, file: str) -> list[str]:
    """Errors :func:`parse_codebook` finds in the generated YAML (expected: none)."""
    from vsdcoder.codebook.load import CodebookError, parse_codebook

    try:
        parse_codebook(text, file)
    except CodebookError as exc:
        return [f"{p.path}: {p.message}" if p.path else p.message
                for p in exc.problems if p.severity == "error"]
    return []
