"""The source-only VBA project builder (``perseat_addin.vbaproject``), checked with independent readers.

oletools' olevba (the de-facto VBA extractor) and olefile read what the builder
writes, through an .xlsm that XlsxWriter packs; the layout is compared with the
source-only ``vbaProject.bin`` in xlwings' ``quickstart_standalone.xlsm``, which
runs in Excel; LibreOffice opens the workbook and lists the modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import random
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import olefile
import pytest
import xlsxwriter
from lo import open_in_libreoffice
from oletools.olevba import VBA_Parser, VBA_Project, decompress_stream

from perseat_addin.excel.vbaproject import WORKBOOK_CODENAME, build_vba_project, compress, decompress

REPO = Path(__file__).resolve().parents[2]
RED, BLACK = 0, 1  # [MS-CFB] 2.6.1 Color Flag

RIBBON = (
    "Option Explicit\r\n"
    "\r\n"
    "' Ribbon callbacks: each runs a Python macro through xlwings.\r\n"
    "Public Sub GenerateInvoices(control As IRibbonControl)\r\n"
    '    RunPython "import perseat_addin.macros as m; m.generate_invoices()"\r\n'
    "End Sub\r\n"
)
# Non-ASCII text that code page 1252 has (é, €, —, £, ü), LF line ends this time.
ACCENTS = (
    "Option Explicit\n"
    "' Café Müller: prix unitaire 10 € — £8\n"
    "Public Function Devise() As String\n"
    '    Devise = "€"\n'
    "End Function\n"
)
# ~300 lines, well over 4096 bytes: several compression chunks.
BIG = "Option Explicit\n" + "".join(
    f"Public Function Rate{i}(seats As Long) As Double\n    Rate{i} = seats * {i}.5 ' tier {i % 7}\nEnd Function\n"
    for i in range(100)
)
MODULES = [("Ribbon", RIBBON), ("Accents", ACCENTS), ("Tiers", BIG)]


def normalise(code: str) -> str:
    """Code without line-ending differences, ``Attribute`` lines and trailing blank lines."""
    lines = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(ln for ln in lines if not ln.startswith("Attribute ")).rstrip("\n")


def xlsm_bytes(vba: bytes) -> bytes:
    """An .xlsm made by XlsxWriter around ``vba``, as the template builder makes it."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.add_worksheet("Settings").write(0, 0, "Setting")
    wb.add_vba_project(io.BytesIO(vba), is_stream=True)
    wb.set_vba_name(WORKBOOK_CODENAME)
    wb.close()
    return buf.getvalue()


@pytest.fixture(scope="module")
def vba() -> bytes:
    return build_vba_project(MODULES)


@pytest.fixture(scope="module")
def ole(vba: bytes) -> Iterator[olefile.OleFileIO]:
    f = olefile.OleFileIO(io.BytesIO(vba))
    yield f
    f.close()


def streams(ole: olefile.OleFileIO) -> dict[str, int]:
    return {"/".join(p): ole.get_size("/".join(p)) for p in ole.listdir(streams=True, storages=False)}


def reference_vba() -> bytes:
    """xlwings' quickstart_standalone.xlsm → its vbaProject.bin (read for facts only)."""
    spec = importlib.util.find_spec("xlwings")  # located, not imported
    if spec is None or spec.origin is None:
        pytest.skip("xlwings is not installed: no reference vbaProject.bin to compare with")
    path = Path(spec.origin).parent / "quickstart_standalone.xlsm"
    if not path.is_file():
        pytest.skip(f"{path} is missing from this xlwings version")
    with zipfile.ZipFile(path) as z:
        return z.read("xl/vbaProject.bin")


def dir_record_ids(dir_stream: bytes) -> list[int]:
    """Record ids of a decompressed dir stream, in order (2.3.4.2)."""
    ids, pos = [], 0
    while pos < len(dir_stream):
        record_id, size = struct.unpack_from("<HI", dir_stream, pos)
        ids.append(record_id)
        pos += 12 if record_id == 0x0009 else 6 + size  # PROJECTVERSION: Reserved=4, yet 6 bytes follow
    return ids


def project_keys(project: bytes) -> list[str]:
    """Keys and section headers of a PROJECT stream up to ``[Workspace]``, in order, repeated keys once."""
    keys: list[str] = []
    for line in project.decode("cp1252").split("\r\n"):
        if "=" not in line and not line.startswith("["):
            continue
        key = line if line.startswith("[") else line.split("=", 1)[0]
        if key not in keys:
            keys.append(key)
        if key == "[Workspace]":
            break
    return keys


# --------------------------------------------------------------------------
# olevba reads every module back out of an XlsxWriter .xlsm


def test_olevba_extracts_each_module_exactly(vba: bytes) -> None:
    parser = VBA_Parser("perseat.xlsm", data=xlsm_bytes(vba))
    try:
        assert parser.detect_vba_macros()
        found = {name: (path, code) for _, path, name, code in parser.extract_macros()}
    finally:
        parser.close()
    assert set(found) == {"ThisWorkbook.cls", "Ribbon.bas", "Accents.bas", "Tiers.bas"}
    for name, source in MODULES:
        path, code = found[f"{name}.bas"]
        assert path == f"VBA/{name}"
        assert normalise(code) == normalise(source)
        assert code.startswith(f'Attribute VB_Name = "{name}"\r\n')
    assert len(BIG.splitlines()) > 300 and len(BIG.encode()) > 2 * 4096  # three compression chunks
    assert "Café Müller: prix unitaire 10 € — £8" in found["Accents.bas"][1]
    workbook = found["ThisWorkbook.cls"][1].split("\r\n")
    assert workbook[:8] == [
        'Attribute VB_Name = "ThisWorkbook"',
        'Attribute VB_Base = "0{00020819-0000-0000-C000-000000000046}"',
        "Attribute VB_GlobalNameSpace = False",
        "Attribute VB_Creatable = False",
        "Attribute VB_PredeclaredId = True",
        "Attribute VB_Exposed = True",
        "Attribute VB_TemplateDerived = False",
        "Attribute VB_Customizable = True",
    ]


def test_xlsm_is_macro_enabled_with_the_workbook_code_name(vba: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(xlsm_bytes(vba))) as z:
        assert z.read("xl/vbaProject.bin") == vba
        types = z.read("[Content_Types].xml").decode()
        workbook = z.read("xl/workbook.xml").decode()
    assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types
    assert f'codeName="{WORKBOOK_CODENAME}"' in workbook


def test_dir_stream_parses_strictly(ole: olefile.OleFileIO) -> None:
    """olevba's dir parser with relaxed=False raises on any value MS-OVBA fixes that we got wrong."""
    project = VBA_Project(ole, "", "PROJECT", "VBA/dir", relaxed=False)
    project.parse_project_stream()
    modules = list(project.parse_modules())
    assert project.codepage == 1252 and project.projectname == "PerseatBilling"
    assert [m.name for m in project.modules] == ["ThisWorkbook", "Ribbon", "Accents", "Tiers"]
    assert [m.type for m in project.modules] == [0x0022, 0x0021, 0x0021, 0x0021]  # document, then procedural
    assert all(m.textoffset == 0 and m.streamname == m.name for m in project.modules)
    assert [filename for _, filename, _ in modules] == ["ThisWorkbook.cls", "Ribbon.bas", "Accents.bas", "Tiers.bas"]


# --------------------------------------------------------------------------
# Streams, as in the reference


def test_streams_are_those_of_a_source_only_project(ole: olefile.OleFileIO) -> None:
    sizes = streams(ole)
    assert set(sizes) == {"PROJECT", "PROJECTwm", "VBA/dir", "VBA/_VBA_PROJECT",
                          "VBA/ThisWorkbook", "VBA/Ribbon", "VBA/Accents", "VBA/Tiers"}  # fmt: skip
    assert not any("__SRP_" in name for name in sizes)
    vba_project = ole.openstream("VBA/_VBA_PROJECT").read()
    assert len(vba_project) == 7  # no PerformanceCache
    assert struct.unpack("<HHB", vba_project[:5]) == (0x61CC, 0xFFFF, 0x00)  # Reserved1, Version, Reserved2


def test_module_streams_hold_only_the_compressed_source(ole: olefile.OleFileIO) -> None:
    for name, source in MODULES:
        raw = ole.openstream(f"VBA/{name}").read()
        expected = f'Attribute VB_Name = "{name}"\n{source.replace(chr(13), "")}'.replace("\n", "\r\n")
        assert decompress_stream(bytearray(raw)) == expected.encode("cp1252")  # MODULEOFFSET 0, CRLF, cp1252


def test_project_stream_lists_every_module(ole: olefile.OleFileIO) -> None:
    text = ole.openstream("PROJECT").read().decode("cp1252")
    lines = text.split("\r\n")
    assert re.fullmatch(r'ID="\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}"', lines[0])
    assert lines[1:5] == ["Document=ThisWorkbook/&H00000000", "Module=Ribbon", "Module=Accents", "Module=Tiers"]
    for line in ('Name="PerseatBilling"', 'HelpContextID="0"', 'VersionCompatible32="393222000"',
                 "[Host Extender Info]", "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000",
                 "[Workspace]", "ThisWorkbook=0, 0, 0, 0, C", "Tiers=0, 0, 0, 0, C"):  # fmt: skip
        assert line in lines
    assert "\n" not in text.replace("\r\n", "")  # CRLF only


def decrypt(hex_text: str) -> tuple[int, bytes]:
    """MS-OVBA 2.4.3.3 Decryption, written from the spec: (ProjKey, Data)."""
    enc = bytes.fromhex(hex_text)
    seed, version_enc, proj_key_enc = enc[:3]
    assert seed ^ version_enc == 2  # Version
    proj_key = seed ^ proj_key_enc
    unencrypted1, encrypted1, encrypted2 = proj_key, proj_key_enc, version_enc
    plain = bytearray()
    for byte_enc in enc[3:]:
        byte = byte_enc ^ ((encrypted2 + unencrypted1) & 0xFF)
        plain.append(byte)
        encrypted2, encrypted1, unencrypted1 = encrypted1, byte_enc, byte
    ignored = (seed & 6) // 2
    (length,) = struct.unpack_from("<I", plain, ignored)
    data = bytes(plain[ignored + 4 :])
    assert len(data) == length
    return proj_key, data


def test_protection_fields_say_unprotected_no_password_visible(ole: olefile.OleFileIO) -> None:
    text = ole.openstream("PROJECT").read().decode("cp1252")
    fields = dict(re.findall(r'^(ID|CMG|DPB|GC)="([^"]*)"\r$', text, flags=re.M))
    proj_key = sum(fields["ID"].encode()) & 0xFF
    assert decrypt(fields["CMG"]) == (proj_key, bytes(4))  # ProjectProtectionState: none
    assert decrypt(fields["DPB"]) == (proj_key, b"\x00")  # ProjectPassword: none
    assert decrypt(fields["GC"]) == (proj_key, b"\xff")  # ProjectVisibilityState: visible


def test_projectwm_maps_every_module_name(ole: olefile.OleFileIO) -> None:
    data = ole.openstream("PROJECTwm").read()
    expected = b"".join(n.encode() + b"\0" + n.encode("utf-16-le") + b"\0\0"
                        for n in ("ThisWorkbook", "Ribbon", "Accents", "Tiers")) + b"\0\0"  # fmt: skip
    assert data == expected


def test_layout_mirrors_the_xlwings_reference(ole: olefile.OleFileIO) -> None:
    """Same kind of streams, same PROJECT keys in the same order, same dir records in the same order."""
    ref = olefile.OleFileIO(io.BytesIO(reference_vba()))
    try:
        ref_streams = streams(ref)
        ref_project = ref.openstream("PROJECT").read()
        ref_dir = decompress_stream(bytearray(ref.openstream("VBA/dir").read()))
    finally:
        ref.close()
    ours = streams(ole)
    fixed = {"PROJECT", "PROJECTwm", "VBA/dir", "VBA/_VBA_PROJECT", "VBA/ThisWorkbook"}
    assert fixed <= set(ref_streams) and fixed <= set(ours)
    assert ref_streams["VBA/_VBA_PROJECT"] == ours["VBA/_VBA_PROJECT"] == 7
    assert not any("__SRP_" in name for name in ref_streams)

    # PROJECT: the reference also has a class module (Class=); otherwise the keys match in order.
    ref_keys = [k for k in project_keys(ref_project) if k != "Class"]
    assert project_keys(ole.openstream("PROJECT").read()) == ref_keys

    # dir: PROJECTINFORMATION and MODULE records identical in order; references differ by design
    # (the reference has MSForms as a REFERENCECONTROL and Office; we have stdole and Office).
    our_ids = dir_record_ids(decompress_stream(bytearray(ole.openstream("VBA/dir").read())))
    ref_ids = dir_record_ids(ref_dir)
    information = our_ids[: our_ids.index(0x0016)]
    assert information == ref_ids[: ref_ids.index(0x0016)]
    assert information == [0x01, 0x02, 0x14, 0x03, 0x04, 0x05, 0x40, 0x06, 0x3D, 0x07, 0x08, 0x09, 0x0C, 0x3C]

    def module_records(ids: list[int]) -> list[int]:
        start = ids.index(0x0019)
        return ids[start : ids.index(0x002B, start) + 1]

    assert module_records(our_ids) == module_records(ref_ids)
    assert our_ids[-1] == ref_ids[-1] == 0x0010


def test_references_are_stdole_and_office(ole: olefile.OleFileIO) -> None:
    text = decompress_stream(bytearray(ole.openstream("VBA/dir").read())).decode("cp1252")
    assert "*\\G{00020430-0000-0000-C000-000000000046}#2.0#0#" in text  # stdole (OLE Automation)
    assert "*\\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0#" in text  # Office: IRibbonControl


# --------------------------------------------------------------------------
# The compound file itself


def test_directory_is_a_red_black_tree_without_times_or_clsids(ole: olefile.OleFileIO) -> None:
    entries = [e for e in ole.direntries if e is not None]
    assert ole.sector_size == 512 and ole.mini_sector_size == 64 and ole.minisectorcutoff == 4096
    assert all(e.createTime == 0 and e.modifyTime == 0 and e.clsid == "" for e in entries)

    def key(sid: int) -> tuple[int, str]:
        name = ole.direntries[sid].name
        return len(name), name.upper()

    def black_height(sid: int, parent_red: bool, low: tuple[int, str] | None, high: tuple[int, str] | None) -> int:
        if sid == olefile.NOSTREAM:
            return 1
        e = ole.direntries[sid]
        red = e.color == RED
        assert not (red and parent_red), f"red entry {e.name} under a red parent"
        assert (low is None or key(sid) > low) and (high is None or key(sid) < high), f"{e.name} out of order"
        left = black_height(e.sid_left, red, low, key(sid))
        right = black_height(e.sid_right, red, key(sid), high)
        assert left == right, f"unequal black heights under {e.name}"
        return left + (0 if red else 1)

    for e in entries:
        if e.sid_child != olefile.NOSTREAM:
            assert ole.direntries[e.sid_child].color == BLACK
            black_height(e.sid_child, False, None, None)


def test_large_module_streams_outside_the_mini_stream() -> None:
    """A module whose compressed source is over 4096 bytes lives in regular 512-byte sectors."""
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(600)]
    source = "".join(f'Const K{i} As String = "{d}"\n' for i, d in enumerate(digests))
    vba = build_vba_project([("Keys", source), ("Ribbon", RIBBON)])
    with olefile.OleFileIO(io.BytesIO(vba)) as ole:
        assert ole.get_size("VBA/Keys") >= 4096
        assert ole.openstream("VBA/Keys").read() == compress(f'Attribute VB_Name = "Keys"\n{source}'
                                                             .replace("\n", "\r\n").encode())  # fmt: skip
    parser = VBA_Parser("big.xlsm", data=xlsm_bytes(vba))
    try:
        codes = {name: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()
    assert normalise(codes["Keys.bas"]) == normalise(source)


def test_two_builds_are_byte_identical() -> None:
    assert build_vba_project(MODULES) == build_vba_project(MODULES)
    lf = [(name, source.replace("\r\n", "\n")) for name, source in MODULES]
    crlf = [(name, source.replace("\r\n", "\n").replace("\n", "\r\n")) for name, source in MODULES]
    assert build_vba_project(lf) == build_vba_project(crlf)  # line ends do not matter
    assert build_vba_project(MODULES, project_name="Other") != build_vba_project(MODULES)


def test_sheet_document_modules_and_a_leading_vb_name_line() -> None:
    vba = build_vba_project([("Ribbon", 'Attribute VB_Name = "Ribbon"\n' + RIBBON)],
                            document_modules=("ThisWorkbook", "Sheet1"))  # fmt: skip
    with olefile.OleFileIO(io.BytesIO(vba)) as ole:
        sheet = decompress_stream(bytearray(ole.openstream("VBA/Sheet1").read())).decode()
        ribbon = decompress_stream(bytearray(ole.openstream("VBA/Ribbon").read())).decode()
        assert "Document=Sheet1/&H00000000" in ole.openstream("PROJECT").read().decode()
    assert 'Attribute VB_Base = "0{00020820-0000-0000-C000-000000000046}"' in sheet  # a worksheet
    assert ribbon.count("Attribute VB_Name") == 1


# --------------------------------------------------------------------------
# Compression (MS-OVBA 2.4.1)


def test_compression_reproduces_the_specification_examples() -> None:
    # 3.2.1 No Compression Example and 3.2.2 Normal Compression Example
    plain = b"abcdefghijklmnopqrstuv."
    assert compress(plain) == bytes.fromhex("01 19 B0 00 61 62 63 64 65 66 67 68 00 69 6A 6B 6C 6D 6E 6F 70 "
                                            "00 71 72 73 74 75 76 2E")  # fmt: skip
    normal = b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
    assert compress(normal) == bytes.fromhex(
        "01 2F B0 00 23 61 61 61 62 63 64 65 82 66 00 70 61 67 68 69 6A 01 38 08 61 6B 6C 00 20 6D 6E 6F 70 06 71 "
        "02 70 04 00 72 73 74 75 76 10 77 78 79 7A 00 2C"
    )


@pytest.mark.parametrize("size", [1, 3, 4095, 4096, 4097, 3 * 4096 + 17])
def test_compression_round_trips_through_olevba(size: int) -> None:
    text = (BIG.encode() * 3)[:size]
    noise = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(size // 32 + 1))[:size]
    for data in (text, noise, b"a" * size):  # compressible, incompressible (raw chunks), one long run
        packed = compress(data)
        expected = data
        if data is noise and size % 4096 > 3640:
            # an incompressible short last chunk becomes a RawChunk, which always holds 4096 bytes (2.4.1.3.10)
            expected = data.ljust(-(-size // 4096) * 4096, b"\0")
        assert decompress_stream(bytearray(packed)) == expected
        assert decompress(packed) == expected


def test_a_module_whose_end_does_not_compress_is_refused() -> None:
    """Rather than a source ending in NUL padding (see above), a clear error; real VBA code never gets here."""
    rnd = random.Random(7)
    chars = [chr(c) for c in range(0x21, 0x7F)] + list("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿ€£¥©®µ")
    source = "".join("' " + "".join(rnd.choice(chars) for _ in range(95)) + "\n" for _ in range(40))
    with pytest.raises(ValueError, match=r"VBA module 'Noise' cannot be stored: its last \d+ bytes do not compress"):
        build_vba_project([("Noise", source)])


# --------------------------------------------------------------------------
# Clear errors


@pytest.mark.parametrize(
    ("modules", "kwargs", "message"),
    [
        ([("Arrows", "' go → there\n")], {}, r"'Arrows', line 1: character '→' \(U\+2192\)"),
        ([("Emoji", "Sub A()\n    ' 🙂\nEnd Sub\n")], {}, r"'Emoji', line 2: character '🙂'"),
        ([("Bad Name", "")], {}, r"VBA module name 'Bad Name' is not usable"),
        ([("Émile", "")], {}, r"VBA module name 'Émile' is not usable"),
        ([("M" * 32, "")], {}, r"is not usable"),
        ([("Dir", "")], {}, r"'dir' is reserved"),
        ([("Ribbon", ""), ("RIBBON", "")], {}, r"'RIBBON' is used twice"),
        ([("ThisWorkbook", "")], {}, r"'ThisWorkbook' is used twice"),
        ([("Ribbon", 'Attribute VB_Name = "Other"\n')], {}, r"different 'Attribute VB_Name"),
        ([("Long", "' " + "x" * 1100 + "\n")], {}, r"'Long', line 1: 1102 characters"),
        ([], {"document_modules": ()}, r"needs the workbook's document module"),
        ([], {"project_name": "Per Seat"}, r"VBA project name 'Per Seat'"),
    ],
)
def test_bad_input_raises_a_clear_value_error(
    modules: list[tuple[str, str]], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_vba_project(modules, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# The product's own VBA sources, when present


def test_the_shipped_bas_modules_build_and_read_back() -> None:
    files = sorted((REPO / "macros" / "vba").glob("*.bas"))
    if not files:
        pytest.skip("macros/vba holds no .bas modules yet")
    modules = [(f.stem, f.read_text(encoding="utf-8")) for f in files]
    parser = VBA_Parser("template.xlsm", data=xlsm_bytes(build_vba_project(modules)))
    try:
        codes = {name: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()
    for name, source in modules:
        assert normalise(codes[f"{name}.bas"]) == normalise(source)


# --------------------------------------------------------------------------
# LibreOffice opens the workbook and lists the VBA modules

def test_libreoffice_lists_the_vba_modules(vba: bytes, tmp_path: Path) -> None:
    book = tmp_path / "perseat.xlsm"
    book.write_bytes(xlsm_bytes(vba))
    libraries = open_in_libreoffice(book, tmp_path)["libraries"]
    modules = {name: code for library in libraries.values() for name, code in library.items()}
    assert set(modules) == {"ThisWorkbook", "Ribbon", "Accents", "Tiers"}
    assert "VBADocumentModule" in modules["ThisWorkbook"]  # loaded as Excel's document module
    for name, source in MODULES:
        assert "Option VBASupport 1" in modules[name]
        assert normalise(source) in normalise(modules[name])
