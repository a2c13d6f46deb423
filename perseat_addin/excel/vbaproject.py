"""A source-only VBA project (``xl/vbaProject.bin``) built in pure Python from VBA module sources.

The output follows [MS-OVBA] (Office VBA File Format Structure) inside an
[MS-CFB] version 3 compound file (512-byte sectors):

    Root Entry
    ├── VBA/                 storage (MS-OVBA 2.3.4)
    │   ├── _VBA_PROJECT     7 bytes, Version 0xFFFF: no performance cache (2.3.4.1)
    │   ├── dir              compressed project information, references, modules (2.3.4.2)
    │   └── <module>         one stream per module: compressed source at offset 0 (2.3.4.3)
    ├── PROJECT              project properties as text (2.3.1)
    └── PROJECTwm            module name map, MBCS ↔ UTF-16 (2.3.3)

It is *source-only*: no ``__SRP_`` streams, no p-code, so every VBA version
compiles the sources when the workbook is opened (MS-OVBA 1.6). The layout and
the values not fixed by the specification mirror the ``vbaProject.bin`` inside
xlwings' ``quickstart_standalone.xlsm``, a source-only project that runs in
Excel. The output is deterministic: the same input gives the same bytes (no
timestamps, a project GUID derived from the project name, fixed obfuscation seed).

Use with XlsxWriter::

    wb.add_vba_project(io.BytesIO(build_vba_project(modules)), is_stream=True)
    wb.set_vba_name(WORKBOOK_CODENAME)
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["CODE_PAGE", "WORKBOOK_CODENAME", "build_vba_project", "compress", "decompress"]

#: Code name of the workbook's document module; pass it to XlsxWriter's ``Workbook.set_vba_name``.
WORKBOOK_CODENAME: Final = "ThisWorkbook"
#: Windows code page of the module sources and of every MBCS string in the project (PROJECTCODEPAGE).
CODE_PAGE: Final = 1252
_CODEC: Final = "cp1252"
_LCID_EN_US: Final = 0x0409  # PROJECTLCID / PROJECTLCIDINVOKE: MUST be 0x409 (2.3.4.2.1.3-4)

# VB_Base of a document module: "0" + the host's type library class id (Excel Workbook / Worksheet).
_WORKBOOK_BASE: Final = "0{00020819-0000-0000-C000-000000000046}"
_WORKSHEET_BASE: Final = "0{00020820-0000-0000-C000-000000000046}"

# Automation type libraries every Excel-made project references (REFERENCEREGISTERED, 2.3.4.2.2.5;
# LibidReference syntax 2.1.1.8). Office is needed for IRibbonControl in ribbon callbacks. VBA and
# Excel themselves are built in and never listed. The paths are hints: VBA resolves the GUID+version.
_REFERENCES: Final = (
    ("stdole", "*\\G{00020430-0000-0000-C000-000000000046}#2.0#0#C:\\Windows\\System32\\stdole2.tlb#OLE Automation"),
    (
        "Office",
        "*\\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0#"
        "C:\\Program Files\\Common Files\\Microsoft Shared\\OFFICE16\\MSO.DLL#Microsoft Office 16.0 Object Library",
    ),
)

# A VBA identifier usable as a module and CFB stream name: ASCII letter first, at most 31 characters
# (the VBA limit for module names, and CFB's 31 UTF-16 units per entry name).
_IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}")
_MAX_LINE_BYTES: Final = 1023  # VBA rejects longer physical lines ("Line too long")

# Fixed values where MS-OVBA allows any: reproducible output (Excel writes random or per-save values).
_PROJECT_GUID_NAMESPACE: Final = uuid.UUID("6f1d4f4e-8a1b-5c2e-9d3f-2a7b0c4e5d61")
_ENCRYPTION_SEED: Final = 0x3C  # 2.4.3.2: Seed; (0x3C & 6) / 2 = 2 ignored bytes
_VERSION_MAJOR: Final = 0x68FBFAC5  # PROJECTVERSION (2.3.4.2.1.11): any value; the reference's
_VERSION_MINOR: Final = 0x0004
_SYSKIND_WIN64: Final = 0x00000003  # PROJECTSYSKIND (2.3.4.2.1.1), as in the reference


_Storage = dict[str, "bytes | _Storage"]  # a CFB storage: entry name -> stream data or storage


@dataclass(frozen=True)
class _Module:
    name: str
    document: bool  # document module (MODULETYPE 0x0022) or standard module (0x0021)
    source: bytes = field(repr=False)  # full module text, attributes included, cp1252, CRLF


def build_vba_project(
    modules: Sequence[tuple[str, str]],
    project_name: str = "PerseatBilling",
    document_modules: Sequence[str] = (WORKBOOK_CODENAME,),
    *,
    project_references: Sequence[tuple[str, str]] = (),
    document_code: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of a source-only ``vbaProject.bin`` holding ``modules``.

    ``modules`` are (name, source) pairs of standard modules, the source being a
    .bas file's text without its ``Attribute VB_Name`` line (LF or CRLF). The
    builder adds the attribute lines and stores CRLF in code page 1252.
    ``document_modules`` are created empty: the first is the workbook's module
    (``ThisWorkbook``: pass it to XlsxWriter ``set_vba_name``), any further ones
    are worksheet modules (XlsxWriter's ``Sheet1``, ``Sheet2``... code names).
    ``project_references`` are (project name, file) pairs of other VBA projects
    this one calls, e.g. ``("xlwings", "xlwings.xlam")`` for RunPython and
    XLPy.CallUDF; Excel binds them to the loaded add-in of that name.
    ``document_code`` gives code for document modules by name (e.g. ThisWorkbook's
    ``Workbook_Open``), stored after their attribute lines.
    Raises ValueError for a bad name or a character code page 1252 lacks.
    """
    _check_identifier(project_name, "VBA project name")
    if not document_modules:
        raise ValueError("a VBA project for Excel needs the workbook's document module (ThisWorkbook)")
    seen: set[str] = set()
    for name in [*document_modules, *(name for name, _ in modules)]:
        _check_identifier(name, "VBA module name")
        key = name.upper()  # VBA names and CFB stream names are case-insensitive
        if key == "DIR":
            raise ValueError("VBA module name 'dir' is reserved: it is the project's dir stream")
        if key in seen:
            raise ValueError(f"VBA module name {name!r} is used twice (names are case-insensitive)")
        seen.add(key)
    project: list[_Module] = []
    for i, name in enumerate(document_modules):
        base = _WORKBOOK_BASE if i == 0 else _WORKSHEET_BASE
        code = (document_code or {}).get(name, "")
        body = _standard_source(name, code).split(b"\r\n", 1)[1] if code.strip() else b""
        project.append(_Module(name, True, _document_source(name, base) + body))
    for name, source in modules:
        project.append(_Module(name, False, _standard_source(name, source)))

    vba: _Storage = {
        "_VBA_PROJECT": _vba_project_stream(),
        "dir": _compressed(_dir_stream(project_name, project, project_references), "dir"),
    }
    for m in project:
        vba[m.name] = _compressed(m.source, f"VBA module {m.name!r}")  # MODULEOFFSET 0: only the compressed source
    root: _Storage = {
        "VBA": vba,
        "PROJECT": _project_stream(project_name, project),
        "PROJECTwm": _projectwm_stream(project),
    }
    return _write_cfb(root)


# ---------------------------------------------------------------------------------------------
# Module sources (MS-OVBA 2.3.4.3; attribute lines per [MS-VBAL] 4.2)


def _document_source(name: str, base: str) -> bytes:
    """The minimal text of a document module, as Excel writes it for ThisWorkbook and Sheet modules."""
    lines = [
        f'Attribute VB_Name = "{name}"',
        f'Attribute VB_Base = "{base}"',
        "Attribute VB_GlobalNameSpace = False",
        "Attribute VB_Creatable = False",
        "Attribute VB_PredeclaredId = True",
        "Attribute VB_Exposed = True",
        "Attribute VB_TemplateDerived = False",
        "Attribute VB_Customizable = True",
    ]
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def _standard_source(name: str, source: str) -> bytes:
    """``Attribute VB_Name`` + the source with CRLF line ends, encoded in code page 1252."""
    text = source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final line break is added back below
    if lines and lines[0].startswith("Attribute VB_Name"):
        m = re.fullmatch(r'Attribute VB_Name\s*=\s*"([^"]*)"\s*', lines[0])
        if m is None or m.group(1).upper() != name.upper():
            raise ValueError(f"VBA module {name!r}: its source starts with a different {lines[0]!r}")
        lines.pop(0)  # the builder writes this attribute itself
    out = [f'Attribute VB_Name = "{name}"'.encode("ascii")]
    for number, line in enumerate(lines, start=1):
        try:
            encoded = line.encode(_CODEC)
        except UnicodeEncodeError as exc:
            bad = line[exc.start]
            raise ValueError(
                f"VBA module {name!r}, line {number}: character {bad!r} (U+{ord(bad):04X}) "
                f"cannot be stored in code page {CODE_PAGE}"
            ) from None
        if len(encoded) > _MAX_LINE_BYTES:
            raise ValueError(
                f"VBA module {name!r}, line {number}: {len(encoded)} characters, VBA allows {_MAX_LINE_BYTES}; "
                "split it with ' _' line continuations"
            )
        out.append(encoded)
    return b"\r\n".join(out) + b"\r\n"


def _check_identifier(name: str, what: str) -> None:
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(
            f"{what} {name!r} is not usable: it must start with an ASCII letter and hold only "
            "ASCII letters, digits and '_', at most 31 characters"
        )


# ---------------------------------------------------------------------------------------------
# Streams of the VBA project


def _compressed(data: bytes, what: str) -> bytes:
    """``compress(data)``, checked by decompressing it again."""
    packed = compress(data)
    if decompress(packed) != data:
        # Only possible when a short last chunk does not compress: a RawChunk is always 4096 bytes,
        # so the decompressed text would end in NUL padding (2.4.1.3.10).
        raise ValueError(
            f"{what} cannot be stored: its last {len(data) % _CHUNK} bytes do not compress "
            "(MS-OVBA would pad them with NUL bytes); add or change a few lines"
        )
    return packed


def _vba_project_stream() -> bytes:
    """_VBA_PROJECT (2.3.4.1): Reserved1 0x61CC, Version 0xFFFF ("ignore any cache"), Reserved2 0x00,
    Reserved3 (undefined, ignored) 0x0001 as in the spec's example 3.1.1 and the reference; no cache."""
    return struct.pack("<HHBH", 0x61CC, 0xFFFF, 0x00, 0x0001)


def _rec(record_id: int, payload: bytes) -> bytes:
    """A dir stream record: Id (2 bytes), Size (4 bytes), then Size bytes."""
    return struct.pack("<HI", record_id, len(payload)) + payload


def _rec_pair(record_id: int, mbcs: str, reserved_id: int) -> bytes:
    """A record holding a string twice: MBCS, then (under the reserved id) UTF-16LE."""
    return _rec(record_id, mbcs.encode(_CODEC)) + _rec(reserved_id, mbcs.encode("utf-16-le"))


def _dir_stream(project_name: str, modules: Sequence[_Module],
                project_references: Sequence[tuple[str, str]] = ()) -> bytes:
    """The uncompressed dir stream (2.3.4.2): information, references, modules, terminator."""
    u16 = struct.Struct("<H").pack
    u32 = struct.Struct("<I").pack
    out = bytearray()
    # 2.3.4.2.1 PROJECTINFORMATION (the optional PROJECTCOMPATVERSION 0x004A is left out, as in the reference)
    out += _rec(0x0001, u32(_SYSKIND_WIN64))  # PROJECTSYSKIND
    out += _rec(0x0002, u32(_LCID_EN_US))  # PROJECTLCID
    out += _rec(0x0014, u32(_LCID_EN_US))  # PROJECTLCIDINVOKE
    out += _rec(0x0003, u16(CODE_PAGE))  # PROJECTCODEPAGE
    out += _rec(0x0004, project_name.encode(_CODEC))  # PROJECTNAME
    out += _rec_pair(0x0005, "", 0x0040)  # PROJECTDOCSTRING
    out += _rec(0x0006, b"") + _rec(0x003D, b"")  # PROJECTHELPFILEPATH: HelpFile1, HelpFile2 (both MBCS)
    out += _rec(0x0007, u32(0))  # PROJECTHELPCONTEXT
    out += _rec(0x0008, u32(0))  # PROJECTLIBFLAGS
    # PROJECTVERSION: its Reserved field is 4 (the size of VersionMajor) yet 6 bytes follow
    out += struct.pack("<HIIH", 0x0009, 4, _VERSION_MAJOR, _VERSION_MINOR)
    out += _rec_pair(0x000C, "", 0x003C)  # PROJECTCONSTANTS
    # 2.3.4.2.2 PROJECTREFERENCES: REFERENCENAME + REFERENCEREGISTERED per type library
    for name, libid in _REFERENCES:
        out += _rec_pair(0x0016, name, 0x003E)
        raw = libid.encode(_CODEC)
        out += _rec(0x000D, u32(len(raw)) + raw + u32(0) + u16(0))
    # REFERENCENAME + REFERENCEPROJECT (2.3.4.2.2.6; ProjectReference syntax 2.1.1.12: "*\C" + path)
    for name, path in project_references:
        _check_identifier(name, "referenced VBA project name")
        out += _rec_pair(0x0016, name, 0x003E)
        absolute = ("*\\C" + path).encode(_CODEC)
        relative = ("*\\C" + path.replace("/", "\\").rsplit("\\", 1)[-1]).encode(_CODEC)
        out += _rec(0x000E, u32(len(absolute)) + absolute + u32(len(relative)) + relative + u32(0) + u16(0))
    # 2.3.4.2.3 PROJECTMODULES: count, PROJECTCOOKIE (0xFFFF on write), one MODULE record each
    out += _rec(0x000F, u16(len(modules)))
    out += _rec(0x0013, u16(0xFFFF))
    for m in modules:
        out += _rec(0x0019, m.name.encode(_CODEC))  # MODULENAME
        out += _rec(0x0047, m.name.encode("utf-16-le"))  # MODULENAMEUNICODE
        out += _rec_pair(0x001A, m.name, 0x0032)  # MODULESTREAMNAME: stream named like the module
        out += _rec_pair(0x001C, "", 0x0048)  # MODULEDOCSTRING
        out += _rec(0x0031, u32(0))  # MODULEOFFSET: source at offset 0, no performance cache
        out += _rec(0x001E, u32(0))  # MODULEHELPCONTEXT
        out += _rec(0x002C, u16(0xFFFF))  # MODULECOOKIE: 0xFFFF on write
        out += _rec(0x0022 if m.document else 0x0021, b"")  # MODULETYPE: document/class or procedural
        out += _rec(0x002B, b"")  # Terminator, Reserved 0
    out += _rec(0x0010, b"")  # dir stream Terminator, Reserved 0
    return bytes(out)


def _project_id(project_name: str) -> str:
    """ProjectId (2.3.1.2): a GUID in braces, here derived from the project name (stable across builds)."""
    return "{" + str(uuid.uuid5(_PROJECT_GUID_NAMESPACE, project_name)).upper() + "}"


def _project_stream(project_name: str, modules: Sequence[_Module]) -> bytes:
    """PROJECT (2.3.1): ID, Document=/Module= items, Name, ..., CMG/DPB/GC, host extenders, workspace."""
    project_id = _project_id(project_name)
    # 2.3.1.15-17, obfuscated by Data Encryption (2.4.3): not protected, no password, visible
    protection, password, visibility = (_encrypt(project_id, data) for data in (bytes(4), b"\x00", b"\xff"))
    lines = [f'ID="{project_id}"']
    for m in modules:  # ProjectModule (2.3.1.3): &H00000000 is the document's DocTlibVer
        lines.append(f"Document={m.name}/&H00000000" if m.document else f"Module={m.name}")
    lines += [
        f'Name="{project_name}"',  # ProjectName (2.3.1.6)
        'HelpContextID="0"',  # ProjectHelpId (2.3.1.7)
        'VersionCompatible32="393222000"',  # ProjectVersionCompat32 (2.3.1.14)
        f'CMG="{protection}"',  # ProjectProtectionState
        f'DPB="{password}"',  # ProjectPassword
        f'GC="{visibility}"',  # ProjectVisibilityState
        "",
        "[Host Extender Info]",  # HostExtenders (2.3.1.18): the VBE extender every Office host lists
        "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000",
        "",
        "[Workspace]",  # ProjectWorkspace (2.3.1.20): editor windows, all closed
        *(f"{m.name}=0, 0, 0, 0, C" for m in modules),
        "",
    ]
    return "".join(line + "\r\n" for line in lines).encode(_CODEC)


def _projectwm_stream(modules: Sequence[_Module]) -> bytes:
    """PROJECTwm (2.3.3): per module its MBCS name + NUL and UTF-16 name + NUL, then a 0x0000 terminator."""
    out = bytearray()
    for m in modules:
        out += m.name.encode(_CODEC) + b"\x00" + m.name.encode("utf-16-le") + b"\x00\x00"
    return bytes(out + b"\x00\x00")


def _encrypt(project_id: str, data: bytes) -> str:
    """Data Encryption (2.4.3.2) of ``data`` as the hex text PROJECT stores, with the fixed seed."""
    seed = _ENCRYPTION_SEED
    version = 2
    proj_key = sum(project_id.encode(_CODEC)) & 0xFF  # checksum of ProjectId.ProjectCLSID
    version_enc = seed ^ version
    proj_key_enc = seed ^ proj_key
    out = bytearray([seed, version_enc, proj_key_enc])
    unencrypted1, encrypted1, encrypted2 = proj_key, proj_key_enc, version_enc
    ignored = bytes((seed & 6) // 2)  # IgnoredEnc: arbitrary bytes, here zeros
    for byte in ignored + struct.pack("<I", len(data)) + data:  # IgnoredEnc, DataLengthEnc, DataEnc
        byte_enc = byte ^ ((encrypted2 + unencrypted1) & 0xFF)
        out.append(byte_enc)
        encrypted2, encrypted1, unencrypted1 = encrypted1, byte_enc, byte
    return out.hex().upper()


# ---------------------------------------------------------------------------------------------
# MS-OVBA 2.4.1 compression: a CompressedContainer of chunks, each at most 4096 decompressed bytes

_CHUNK: Final = 4096


def compress(data: bytes) -> bytes:
    """CompressedContainer (2.4.1.1.1) of ``data``, as the algorithm of 2.4.1.3.6 produces it."""
    out = bytearray(b"\x01")  # SignatureByte
    for start in range(0, len(data), _CHUNK):
        out += _compress_chunk(data, start, min(start + _CHUNK, len(data)))
    return bytes(out)


def _compress_chunk(data: bytes, start: int, end: int) -> bytes:
    """One CompressedChunk (2.4.1.3.7): tokens if they fit in 4096 bytes, else a RawChunk."""
    body = bytearray()
    chains: dict[bytes, list[int]] = {}  # 3-byte prefix -> earlier positions in this chunk
    pos = start
    while pos < end:
        flag_index = len(body)  # TokenSequence (2.4.1.3.8): FlagByte then up to 8 tokens
        body.append(0)
        flags = 0
        for bit in range(8):
            if pos >= end:
                break
            offset, length = _match(data, start, pos, end, chains)
            if length:
                flags |= 1 << bit
                bit_count = _bit_count(pos - start)
                body += struct.pack("<H", ((offset - 1) << (16 - bit_count)) | (length - 3))  # CopyToken
                step = length
            else:
                body.append(data[pos])  # LiteralToken
                step = 1
            for p in range(pos, pos + step):  # every position is a later candidate (2.4.1.3.19.4)
                if p + 3 <= end:
                    chains.setdefault(data[p : p + 3], []).append(p)
            pos += step
        body[flag_index] = flags
    if len(body) <= _CHUNK:
        # CompressedChunkHeader (2.4.1.1.5): size - 3 (12 bits), signature 0b011, flag 1
        return struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body
    # RawChunk (2.4.1.3.10): 4096 bytes copied as they are, a short last chunk padded with zeros
    return struct.pack("<H", 0x3000 | (_CHUNK + 2 - 3)) + data[start:end].ljust(_CHUNK, b"\x00")


def _bit_count(difference: int) -> int:
    """CopyToken Help (2.4.1.3.19.3): bits of the offset field, at least 4, enough for ``difference``."""
    return max((difference - 1).bit_length(), 4)


def _match(data: bytes, start: int, pos: int, end: int, chains: dict[bytes, list[int]]) -> tuple[int, int]:
    """Matching (2.4.1.3.19.4): (offset, length) of the longest earlier match, the nearest one among
    equals, capped at the CopyToken's maximum length; (0, 0) if shorter than 3 bytes.

    Every match of 3 or more bytes starts with the same 3 bytes, so only positions sharing them are
    tried, nearest first; the result is what the specification's exhaustive search gives.
    """
    if pos + 3 > end:
        return 0, 0
    candidates = chains.get(data[pos : pos + 3])
    if not candidates:
        return 0, 0
    limit = end - pos  # no match can be longer
    best_len, best_pos = 0, 0
    for cand in reversed(candidates):
        if best_len and data[cand + best_len] != data[pos + best_len]:
            continue  # cannot be longer than the best so far
        n = 3
        while n < limit and data[cand + n] == data[pos + n]:
            n += 1
        if n > best_len:
            best_len, best_pos = n, cand
            if n == limit:
                break
    maximum = (0xFFFF >> _bit_count(pos - start)) + 3
    return pos - best_pos, min(best_len, maximum)


def decompress(container: bytes) -> bytes:
    """The DecompressedBuffer of a CompressedContainer (2.4.1.3.1)."""
    if not container or container[0] != 0x01:
        raise ValueError("not an MS-OVBA compressed container (signature byte is not 0x01)")
    out = bytearray()
    pos = 1
    while pos < len(container):
        (header,) = struct.unpack_from("<H", container, pos)
        if (header >> 12) & 0x7 != 0b011:
            raise ValueError(f"bad CompressedChunkSignature at offset {pos}")
        chunk_end = min(pos + (header & 0x0FFF) + 3, len(container))
        pos += 2
        if not header & 0x8000:  # RawChunk
            out += container[pos : pos + _CHUNK]
            pos += _CHUNK
            continue
        chunk_start = len(out)
        while pos < chunk_end:
            flags = container[pos]
            pos += 1
            for bit in range(8):
                if pos >= chunk_end:
                    break
                if not flags >> bit & 1:
                    out.append(container[pos])
                    pos += 1
                    continue
                (token,) = struct.unpack_from("<H", container, pos)
                pos += 2
                bit_count = _bit_count(len(out) - chunk_start)
                length = (token & (0xFFFF >> bit_count)) + 3
                source = len(out) - ((token >> (16 - bit_count)) + 1)
                if source < chunk_start:
                    raise ValueError("copy token points before its chunk")
                for i in range(length):  # byte by byte: source and target may overlap
                    out.append(out[source + i])
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# [MS-CFB] version 3 compound file writer: 512-byte sectors, 64-byte mini sectors below 4096 bytes

_SECTOR: Final = 512
_MINI_SECTOR: Final = 64
_MINI_CUTOFF: Final = 4096  # streams shorter than this live in the mini stream (2.2)
_FREESECT: Final = 0xFFFFFFFF
_ENDOFCHAIN: Final = 0xFFFFFFFE
_FATSECT: Final = 0xFFFFFFFD
_NOSTREAM: Final = 0xFFFFFFFF
_ENTRY: Final = struct.Struct("<64sHBBIII16sIQQIQ")  # Compound File Directory Entry (2.6.1), 128 bytes
_STORAGE, _STREAM, _ROOT = 1, 2, 5  # Object Type
_RED, _BLACK = 0, 1  # Color Flag


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: list[int] = field(default_factory=list)
    left: int = _NOSTREAM
    right: int = _NOSTREAM
    child: int = _NOSTREAM
    color: int = _BLACK
    start: int = _ENDOFCHAIN


def _cfb_key(name: str) -> tuple[int, str]:
    """Sibling order (2.6.4): shorter names first, then by upper-cased UTF-16 code units."""
    return len(name), name.upper()


def _flatten(storage: _Storage, entries: list[_Entry], parent: _Entry) -> None:
    """Append the children of ``parent`` in sibling order, depth first (fixed entry numbering)."""
    for name in sorted(storage, key=_cfb_key):
        item = storage[name]
        entry = _Entry(name, _STREAM, item) if isinstance(item, bytes) else _Entry(name, _STORAGE)
        parent.children.append(len(entries))
        entries.append(entry)
        if not isinstance(item, bytes):
            _flatten(item, entries, entry)


def _link_tree(entries: list[_Entry], ids: list[int], depth: int, depths: list[int]) -> int:
    """Make a balanced binary search tree of the sorted sibling ``ids``; return its root id.

    Middle-split trees have all empty links on the last two levels, so colouring the deepest level
    red (2.6.4) satisfies the red-black rules: black root, no red-red, equal black height.
    """
    if not ids:
        return _NOSTREAM
    mid = len(ids) // 2
    node = entries[ids[mid]]
    node.left = _link_tree(entries, ids[:mid], depth + 1, depths)
    node.right = _link_tree(entries, ids[mid + 1 :], depth + 1, depths)
    depths.append(depth)
    return ids[mid]


def _colour(entries: list[_Entry], root: int, depth: int, deepest: int) -> None:
    if root == _NOSTREAM:
        return
    entries[root].color = _RED if depth == deepest and depth > 0 else _BLACK
    _colour(entries, entries[root].left, depth + 1, deepest)
    _colour(entries, entries[root].right, depth + 1, deepest)


def _write_cfb(tree: _Storage) -> bytes:
    """A compound file (MS-CFB v3) holding ``tree``; all times and CLSIDs zero, state bits zero."""
    root = _Entry("Root Entry", _ROOT)
    entries = [root]
    _flatten(tree, entries, root)
    for entry in entries:
        depths: list[int] = []
        entry.child = _link_tree(entries, entry.children, 0, depths)
        _colour(entries, entry.child, 0, max(depths, default=0))

    sectors = bytearray()  # file body after the 512-byte header
    fat: list[int] = []

    def allocate(data: bytes) -> int:
        """Put ``data`` in fresh consecutive sectors chained in the FAT; return the first sector."""
        first = len(fat)
        count = -(-len(data) // _SECTOR)
        fat.extend(range(first + 1, first + count))
        fat.append(_ENDOFCHAIN)
        sectors.extend(data.ljust(count * _SECTOR, b"\x00"))
        return first

    # Streams of 4096 bytes or more: regular sectors. Smaller ones: the mini stream (2.4) with its mini FAT.
    mini_stream = bytearray()
    mini_fat: list[int] = []
    for entry in entries:
        if entry.kind != _STREAM or not entry.data:
            continue
        if len(entry.data) >= _MINI_CUTOFF:
            entry.start = allocate(entry.data)
        else:
            entry.start = len(mini_fat)
            count = -(-len(entry.data) // _MINI_SECTOR)
            mini_fat.extend(range(entry.start + 1, entry.start + count))
            mini_fat.append(_ENDOFCHAIN)
            mini_stream += entry.data.ljust(count * _MINI_SECTOR, b"\x00")
    if mini_stream:
        root.start = allocate(bytes(mini_stream))  # the root entry's stream is the mini stream
        root.data = bytes(mini_stream)
    first_mini_fat, mini_fat_sectors = _ENDOFCHAIN, 0
    if mini_fat:
        table = _sector_table(mini_fat)
        first_mini_fat, mini_fat_sectors = allocate(table), len(table) // _SECTOR

    directory = bytearray()
    for entry in entries:
        directory += _directory_entry(entry)
    while len(directory) % _SECTOR:  # unused entries: empty, no siblings or child
        directory += _ENTRY.pack(b"", 0, 0, 0, _NOSTREAM, _NOSTREAM, _NOSTREAM, bytes(16), 0, 0, 0, 0, 0)
    first_directory = allocate(bytes(directory))

    # The FAT covers every sector, its own included (FATSECT), so its size is found by iteration.
    fat_sectors = 0
    while fat_sectors * (_SECTOR // 4) < len(fat) + fat_sectors:
        fat_sectors += 1
    if fat_sectors > 109:
        raise ValueError("VBA project too large: more than 109 FAT sectors would need DIFAT sectors")
    fat_start = len(fat)
    fat.extend([_FATSECT] * fat_sectors)
    sectors += _sector_table(fat)
    difat = list(range(fat_start, fat_start + fat_sectors)) + [_FREESECT] * (109 - fat_sectors)

    header = struct.pack(  # Compound File Header (2.2)
        "<8s16sHHHHH6sIIIIIIIII109I",
        bytes.fromhex("D0CF11E0A1B11AE1"),  # Header Signature
        bytes(16),  # Header CLSID
        0x003E,  # Minor Version
        0x0003,  # Major Version: 3, 512-byte sectors
        0xFFFE,  # Byte Order: little-endian
        9,  # Sector Shift: 2^9 = 512
        6,  # Mini Sector Shift: 2^6 = 64
        bytes(6),  # Reserved
        0,  # Number of Directory Sectors: MUST be 0 in version 3
        fat_sectors,  # Number of FAT Sectors
        first_directory,  # First Directory Sector Location
        0,  # Transaction Signature Number
        _MINI_CUTOFF,  # Mini Stream Cutoff Size
        first_mini_fat,  # First Mini FAT Sector Location
        mini_fat_sectors,  # Number of Mini FAT Sectors
        _ENDOFCHAIN,  # First DIFAT Sector Location: none
        0,  # Number of DIFAT Sectors
        *difat,  # DIFAT: the first 109 FAT sector locations
    )
    return header + bytes(sectors)


def _sector_table(values: list[int]) -> bytes:
    """A FAT or mini FAT: 32-bit entries, padded with FREESECT to whole sectors."""
    per_sector = _SECTOR // 4
    padded = values + [_FREESECT] * (-len(values) % per_sector)
    return struct.pack(f"<{len(padded)}I", *padded)


def _directory_entry(entry: _Entry) -> bytes:
    """One 128-byte directory entry (2.6.1); storages have start sector 0 and size 0."""
    name = entry.name.encode("utf-16-le") + b"\x00\x00"
    if entry.kind == _STORAGE:
        start, size = 0, 0
    else:
        start, size = (entry.start, len(entry.data)) if entry.data else (_ENDOFCHAIN, 0)
    return _ENTRY.pack(
        name, len(name), entry.kind, entry.color, entry.left, entry.right, entry.child,
        bytes(16), 0, 0, 0, start, size,
    )  # fmt: skip
