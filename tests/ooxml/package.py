"""An OPC package (zip) read for checking: parts, content types, relationships, parsed XML."""

from __future__ import annotations

import copy
import io
import posixpath
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from . import mce, xsd

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
PR_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPES = "[Content_Types].xml"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


@dataclass(frozen=True)
class Rel:
    id: str
    type: str
    target: str  # as written
    external: bool
    part: str | None  # the target part name (no leading slash) for an internal relationship


def rels_part(part: str) -> str:
    """The relationships part of ``part`` ("" is the package itself)."""
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def source_of(rels: str) -> str | None:
    """The part a ``.rels`` part belongs to ("" for the package), or None if it is not a relationships part."""
    folder, name = posixpath.split(rels)
    if posixpath.basename(folder) != "_rels" or not name.endswith(".rels"):
        return None
    return posixpath.join(posixpath.dirname(folder), name[: -len(".rels")])


class Package:
    """The parts of one package, read once; ``problem(part, message)`` collects what is wrong."""

    def __init__(self, data: bytes, name: str, problem: Callable[[str, str], None]):
        self.name = name
        self.problem = problem
        self.zip = zipfile.ZipFile(io.BytesIO(data))
        self.parts: list[str] = []
        seen: set[str] = set()
        for info in self.zip.infolist():
            if info.is_dir():
                continue
            if info.filename.lower() in seen:
                problem(info.filename, "the package holds this part name twice (part names ignore case)")
            seen.add(info.filename.lower())
            self.parts.append(info.filename)
        self._lower = {p.lower(): p for p in self.parts}
        self._raw: dict[str, etree._Element | None] = {}
        self._processed: dict[str, etree._Element | None] = {}
        self._rels: dict[str, list[Rel]] = {}
        self.defaults: dict[str, str] = {}
        self.overrides: dict[str, str] = {}
        self._read_content_types()

    # -- parts ---------------------------------------------------------------

    def find(self, part: str) -> str | None:
        """The part's name as stored (part names are compared ignoring case), or None."""
        return self._lower.get(part.lower())

    def read(self, part: str) -> bytes:
        try:
            return self.zip.read(part)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            self.problem(part, f"cannot be read from the zip: {exc}")
            return b""

    def content_type(self, part: str) -> str | None:
        override = self.overrides.get("/" + part.lower())
        if override is not None:
            return override
        base = posixpath.basename(part)
        ext = base.rsplit(".", 1)[1].lower() if "." in base else ""
        return self.defaults.get(ext) if ext else None

    def is_xml(self, part: str) -> bool:
        ct = self.content_type(part) or ""
        if part == CONTENT_TYPES or part.endswith(".rels"):
            return True
        return (ct.endswith("+xml") or ct.endswith("/xml")) and "vmlDrawing" not in ct

    def xml(self, part: str) -> etree._Element | None:
        """The part's XML as written, or None (and a problem) if it is not well-formed."""
        if part not in self._raw:
            root: etree._Element | None = None
            try:
                root = etree.fromstring(self.read(part), _PARSER)
            except etree.XMLSyntaxError as exc:
                self.problem(part, f"not well-formed XML: {exc}")
            if root is not None:
                info = root.getroottree().docinfo
                if info.doctype:
                    self.problem(part, "declares a DOCTYPE (OOXML parts must not use DTDs)")
                if (info.encoding or "UTF-8").upper() not in ("UTF-8", "UTF-16"):
                    self.problem(part, f"encoded as {info.encoding} (OOXML parts are UTF-8 or UTF-16)")
            self._raw[part] = root
        return self._raw[part]

    def processed(self, part: str) -> etree._Element | None:
        """The part's XML after Markup Compatibility processing (what the schemas describe)."""
        if part not in self._processed:
            raw = self.xml(part)
            self._processed[part] = None if raw is None else mce.preprocess(
                copy.deepcopy(raw), xsd.UNDERSTOOD, lambda m: self.problem(part, m))
        return self._processed[part]

    # -- content types -------------------------------------------------------

    def _read_content_types(self) -> None:
        if self.find(CONTENT_TYPES) is None:
            self.problem(CONTENT_TYPES, "missing: no part has a content type")
            return
        root = self.xml(CONTENT_TYPES)
        if root is None:
            return
        for d in root.iter(f"{{{CT_NS}}}Default"):
            ext = (d.get("Extension") or "").lower()
            if ext in self.defaults:
                self.problem(CONTENT_TYPES, f"two Default entries for the extension {ext!r}")
            self.defaults[ext] = d.get("ContentType") or ""
        for o in root.iter(f"{{{CT_NS}}}Override"):
            name = (o.get("PartName") or "").lower()
            if name in self.overrides:
                self.problem(CONTENT_TYPES, f"two Override entries for {name}")
            self.overrides[name] = o.get("ContentType") or ""

    # -- relationships -------------------------------------------------------

    def rels(self, part: str) -> list[Rel]:
        """Relationships from ``part`` ("" for the package's own)."""
        if part not in self._rels:
            out: list[Rel] = []
            name = self.find(rels_part(part))
            root = self.xml(name) if name else None
            if root is not None and name is not None:
                folder = posixpath.dirname(part)
                for r in root.iter(f"{{{PR_NS}}}Relationship"):
                    target = r.get("Target") or ""
                    external = r.get("TargetMode") == "External"
                    target_part = None
                    path = unquote(target.partition("#")[0])
                    if not external and path:  # "#Sheet1!A1" is a place inside the source part
                        joined = path.lstrip("/") if path.startswith("/") else posixpath.join(folder, path)
                        target_part = posixpath.normpath(joined).lstrip("/")
                        if target_part.startswith("..") or target_part == ".":
                            self.problem(name, f"relationship {r.get('Id')} points outside the package: {target}")
                            target_part = None
                    out.append(Rel(r.get("Id") or "", r.get("Type") or "", target, external, target_part))
            self._rels[part] = out
        return self._rels[part]

    def rel(self, part: str, rel_id: str) -> Rel | None:
        return next((r for r in self.rels(part) if r.id == rel_id), None)

    def targets(self, part: str, rel_type: str) -> list[str]:
        """Existing parts ``part`` relates to with relationships of type ``rel_type``."""
        out = []
        for r in self.rels(part):
            if r.type == rel_type and r.part is not None:
                found = self.find(r.part)
                if found is not None:
                    out.append(found)
        return out


def read_source(src: str | Path | bytes) -> tuple[bytes, str]:
    """Bytes and a display name of a package given by path or as bytes."""
    if isinstance(src, bytes | bytearray):
        return bytes(src), "package"
    path = Path(src)
    return path.read_bytes(), path.name
