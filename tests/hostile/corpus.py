"""A corpus of hostile and broken inputs, built by code (no binaries are committed).

Workbooks start from the committed ``workbook_template.xlsm``: its zip is read into parts
(name → bytes), parts are edited as text, and a new zip is written. Vendor exports are small CSV
files written here. Each :class:`Case` makes its files in a folder and says how ``perseat`` is run
on them and what it must answer; ``test_hostile.py`` runs them.

The sample data the cases lean on (the template's): Settings rows 2-25 (InvoicePrefix on row 7,
CreditPrefix row 8, OutputFolder row 20), Plans row 3 is Premium (Rate in column B), the Roster
sheet is ``xl/worksheets/sheet7.xml`` (the first sheet is Start here) with its table ``Roster``
(A1:K76, table6.xml), Granite Accounting's
users have e-mail addresses at graniteacct.example, the billing period is 2026-11.
"""

from __future__ import annotations

import io
import os
import random
import re
import struct
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
PERIOD = "2026-11"
GRANITE = "Granite Accounting"

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


# --------------------------------------------------------------------------- the package as parts


class Parts:
    """A workbook package as editable parts, in the order they were stored."""

    def __init__(self, parts: dict[str, bytes]):
        self.parts = parts

    @classmethod
    def template(cls) -> Parts:
        with zipfile.ZipFile(TEMPLATE) as z:
            return cls({i.filename: z.read(i) for i in z.infolist()})

    # -- raw access

    def xml(self, part: str) -> str:
        return self.parts[part].decode("utf-8")

    def put(self, part: str, data: str | bytes) -> Parts:
        self.parts[part] = data.encode("utf-8") if isinstance(data, str) else data
        return self

    def drop(self, part: str) -> Parts:
        del self.parts[part]
        return self

    def sub(self, part: str, pattern: str, repl: str, count: int = 1) -> Parts:
        """Replace ``pattern`` (a regular expression) in a part; it must be there."""
        text, n = re.subn(pattern, repl, self.xml(part), count=count)
        assert n, f"{pattern!r} not in {part}"
        return self.put(part, text)

    # -- where things are

    def sheet_part(self, sheet: str) -> str:
        wb = self.xml("xl/workbook.xml")
        rid = re.search(rf'<sheet name="{re.escape(sheet)}" sheetId="\d+"(?: state="\w+")? r:id="(rId\d+)"', wb)
        assert rid, sheet
        rels = self.xml("xl/_rels/workbook.xml.rels")
        target = re.search(rf'Id="{rid.group(1)}" Type="[^"]+" Target="([^"]+)"', rels)
        assert target, rid.group(1)
        return "xl/" + target.group(1)

    def table_part(self, table: str) -> str:
        for name in self.parts:
            if name.startswith("xl/tables/") and f' name="{table}" ' in self.xml(name):
                return name
        raise KeyError(table)

    def strings(self) -> list[str]:
        """The shared strings' text (plain <t> items, as the template writes them)."""
        sst = self.xml("xl/sharedStrings.xml")
        return [re.sub(r"<[^>]+>", "", si) for si in re.findall(r"<si>(.*?)</si>", sst, re.S)]

    def row_of(self, sheet: str, text: str, column: str = "A") -> int:
        """The Excel row of ``sheet`` whose cell in ``column`` holds the shared string ``text``."""
        index = self.strings().index(text)
        xml = self.xml(self.sheet_part(sheet))
        found = re.search(rf'<c r="{column}(\d+)"[^>]* t="s"><v>{index}</v></c>', xml)
        assert found, (sheet, text)
        return int(found.group(1))

    # -- edits

    def set_cell(self, sheet: str, ref: str, cell_xml: str) -> Parts:
        """Put ``cell_xml`` (a whole ``<c>`` element) at ``ref``, replacing the cell there if any."""
        part = self.sheet_part(sheet)
        xml = self.xml(part)
        pattern = rf'<c r="{ref}"(?:[^>]*/>|[^>]*>.*?</c>)'
        if re.search(pattern, xml):
            return self.put(part, re.sub(pattern, lambda m: cell_xml, xml, count=1))
        row = int(re.sub(r"[A-Z]+", "", ref))
        m = re.search(rf'(<row r="{row}"[^>]*>)(.*?)(</row>)', xml)
        assert m, (sheet, ref)
        return self.put(part, xml[: m.end(2)] + cell_xml + xml[m.end(2):])

    def set_text(self, sheet: str, ref: str, text: str) -> Parts:
        """Put text in a cell (an inline string, as the product writes)."""
        return self.set_cell(sheet, ref, f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">'
                                          f"{escape(text)}</t></is></c>")

    def set_setting(self, name: str, value: str) -> int:
        """Set a Settings value (a new row at the end of the table if the template has none); its Excel row."""
        if name in self.strings():
            try:
                row = self.row_of("Settings", name)
            except AssertionError:
                row = 0
            if row:
                self.set_text("Settings", f"B{row}", value)
                return row
        part = self.sheet_part("Settings")
        xml = self.xml(part)
        last = max(int(r) for r in re.findall(r'<row r="(\d+)"', xml))
        row = last + 1
        new = (f'<row r="{row}" spans="1:2"><c r="A{row}" t="inlineStr"><is><t>{escape(name)}</t></is></c>'
               f'<c r="B{row}" t="inlineStr"><is><t xml:space="preserve">{escape(value)}</t></is></c></row>')
        xml = xml.replace("</sheetData>", new + "</sheetData>")
        xml = re.sub(rf'ref="A1:([A-Z]+){last}"', rf'ref="A1:\g<1>{row}"', xml)
        self.put(part, xml)
        table = self.table_part("Settings")
        self.put(table, re.sub(rf"A1:([A-Z]+){last}\b", rf"A1:\g<1>{row}", self.xml(table)))
        return row

    def rename_string(self, old: str, new: str) -> Parts:
        """Change a shared string's text: every cell that shows it changes (a client renamed everywhere)."""
        sst = self.xml("xl/sharedStrings.xml")
        item = f"<si><t>{escape(old)}</t></si>"
        assert item in sst, old
        return self.put("xl/sharedStrings.xml",
                        sst.replace(item, f'<si><t xml:space="preserve">{escape(new)}</t></si>', 1))

    def data(self) -> bytes:
        return zip_bytes(self.parts.items())

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data())
        return path


def zip_bytes(members: Iterable[tuple[str, bytes]], level: int = 6) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def template_bytes() -> bytes:
    return TEMPLATE.read_bytes()


def lie_about_size(data: bytes, member: str, factor: float = 0.5) -> bytes:
    """The zip with ``member``'s uncompressed size in the central directory (and local header) made smaller
    than it really is."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(member)
    lie = max(1, int(info.file_size * factor))
    # local header: signature, ..., crc (14), compressed size (18), uncompressed size (22)
    assert out[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
    struct.pack_into("<I", out, info.header_offset + 22, lie)
    # central directory entry: find it by name
    name = member.encode()
    at = out.find(b"PK\x01\x02")
    while at != -1:
        n = struct.unpack_from("<H", out, at + 28)[0]
        if bytes(out[at + 46:at + 46 + n]) == name:
            struct.pack_into("<I", out, at + 24, lie)  # uncompressed size
            return bytes(out)
        at = out.find(b"PK\x01\x02", at + 4)
    raise KeyError(member)


def with_big_member(parts: Parts, member: str, prefix: bytes, filler: bytes, size: int, suffix: bytes) -> bytes:
    """The package with ``member`` = prefix + ``size`` bytes of filler + suffix, deflated (honest sizes)."""
    body = prefix + filler * (size // len(filler)) + suffix
    members = [(n, body if n == member else d) for n, d in parts.parts.items()]
    if member not in parts.parts:
        members.append((member, body))
    return zip_bytes(members, level=9)


# --------------------------------------------------------------------------- hostile XML


BILLION_LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + "]>")
EXTERNAL_ENTITY = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def with_doctype(xml: str, doctype: str, use: str | None) -> str:
    """``xml`` with ``doctype`` after its declaration, and the entity used in the first text node if ``use``."""
    decl_end = xml.index("?>") + 2 if xml.startswith("<?xml") else 0
    xml = xml[:decl_end] + doctype + xml[decl_end:]
    if use:
        xml = re.sub(r"(<t(?: [^>]*)?>)", rf"\1{use}", xml, count=1)
    return xml


# --------------------------------------------------------------------------- exports

M365_HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"
GRANITE_USERS = [("Helen Park", "helen.park"), ("Marcus Lee", "marcus.lee"), ("Sofia Rossi", "sofia.rossi"),
                 ("Tariq Aziz", "tariq.aziz"), ("Uma Das", "uma.das"), ("Wes Hall", "wes.hall")]
ACCENTED = [("José Núñez", "jose.nunez"), ("Zoë Brontë", "zoe.bronte"), ("Renée Ødegård", "renee.odegard")]


def m365_lines(users: Iterable[tuple[str, str]], domain: str = "graniteacct.example") -> list[str]:
    return [M365_HEADER] + [f"False,{name},,,Microsoft 365 Business Standard,{uid}@{domain},2025-01-06"
                            for name, uid in users]


def m365_text(users: Iterable[tuple[str, str]] = GRANITE_USERS, domain: str = "graniteacct.example") -> str:
    return "\r\n".join(m365_lines(users, domain)) + "\r\n"


CW_TIME = ("id,company/name,member/identifier,chargeToType,chargeToId,timeStart,timeEnd,actualHours,billableOption\r\n"
           "9101,Acme Dental Group,jsmith,ServiceTicket,7001,2026-11-02T14:00:00Z,,1.5,Billable\r\n")


def xlsx_export(rows: list[list[str]]) -> bytes:
    """A one-sheet .xlsx with inline strings (what a PSA's 'export to Excel' writes, minimally)."""
    def cell(r: int, c: int, v: str) -> str:
        return f'<c r="{chr(65 + c)}{r}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'

    sheet = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{_MAIN}"><sheetData>'
             + "".join(f'<row r="{i}">' + "".join(cell(i, j, v) for j, v in enumerate(row)) + "</row>"
                       for i, row in enumerate(rows, start=1))
             + "</sheetData></worksheet>")
    return zip_bytes([
        ("[Content_Types].xml",
         b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
         b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
         b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
         b'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
         b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
         b'officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        ("_rels/.rels",
         b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
         b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        ("xl/workbook.xml",
         f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="http://schemas.openxmlformats.'
         'org/officeDocument/2006/relationships"><sheets><sheet name="Users" sheetId="1" r:id="rId1"/></sheets>'
         "</workbook>".encode()),
        ("xl/_rels/workbook.xml.rels",
         b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
         b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         b'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        ("xl/worksheets/sheet1.xml", sheet.encode()),
    ])


# --------------------------------------------------------------------------- cases


@dataclass
class Run:
    """What a case made: the command line, and the files it is about."""

    argv: list[str]
    workbook: Path | None = None  # must stay byte-identical
    out: Path | None = None  # the output folder (must stay as it was, unless the case may succeed)
    names: tuple[str, ...] = ()  # stderr must name these (file names)


@dataclass
class Case:
    """One hostile or broken input and what ``perseat`` must answer."""

    id: str
    make: Callable[[Path], Run]
    codes: tuple[int, ...] = (1,)
    words: tuple[str, ...] = ()  # stderr must contain these (case-insensitive)
    not_words: tuple[str, ...] = ()  # and must not contain these
    isolate: bool = False  # run out of process (could abort or hang the interpreter)
    memory: int = 4 * 1024**3  # RLIMIT_AS for isolated runs
    fsize: int | None = None  # RLIMIT_FSIZE for isolated runs (a full disk)
    timeout: float = 120
    neutralise: bool = False  # an injection case: may succeed; outputs must be neutralised
    check: Callable[[Path, Run, str, str], None] | None = None  # extra checks (tmp, run, stdout, stderr)
    tags: tuple[str, ...] = field(default_factory=tuple)  # injection: the payloads, a client name first


def book_dir(tmp: Path) -> Path:
    d = tmp / "book"
    d.mkdir(parents=True, exist_ok=True)
    return d


def invoice(wb: Path, tmp: Path, *extra: str, names: tuple[str, ...] | None = None) -> Run:
    out = tmp / "out"
    return Run(["invoice", str(wb), "--out", str(out), *extra], wb, out,
               names if names is not None else (wb.name,))


def wb_case(id: str, edit: Callable[[Parts], object], *words: str, name: str = "billing.xlsm",
            **kw: object) -> Case:
    """A workbook made from the template by ``edit``, run through ``perseat invoice``."""
    def make(tmp: Path) -> Run:
        parts = Parts.template()
        edit(parts)
        return invoice(parts.save(book_dir(tmp) / name), tmp)

    return Case(id, make, words=words, **kw)  # type: ignore[arg-type]


def bytes_case(id: str, data: Callable[[], bytes], *words: str, name: str = "billing.xlsm", **kw: object) -> Case:
    """A workbook file with the given bytes, run through ``perseat invoice``."""
    def make(tmp: Path) -> Run:
        wb = book_dir(tmp) / name
        wb.write_bytes(data())
        return invoice(wb, tmp)

    return Case(id, make, words=words, **kw)  # type: ignore[arg-type]


def cell_case(id: str, sheet: str, ref: str, cell: str, *words: str, **kw: object) -> Case:
    return wb_case(id, lambda p: p.set_cell(sheet, ref, cell), *words, **kw)


def doctype_case(part: str, flavour: str) -> Case:
    doctype, use = (BILLION_LAUGHS, "&lol9;") if flavour == "laughs" else (EXTERNAL_ENTITY, "&xxe;")

    def edit(p: Parts) -> None:
        p.put(part, with_doctype(p.xml(part), doctype, use if part.endswith("sharedStrings.xml") else None))

    short = part.rsplit("/", 1)[-1]
    return wb_case(f"dtd-{flavour}-{short}", edit, "DOCTYPE", part)


def setting_case(id: str, setting: str, value: str, *words: str) -> Case:
    def make(tmp: Path) -> Run:
        parts = Parts.template()
        row = parts.set_setting(setting, value)
        run = invoice(parts.save(book_dir(tmp) / "billing.xlsm"), tmp)
        run.names = (*run.names, "Settings", f"row {row}", setting)
        return run

    return Case(id, make, words=words)


def roster_row_case(id: str, new_r: str, *words: str) -> Case:
    """Roster row 5's ``r`` attribute replaced (its cells keep theirs)."""
    return wb_case(id, lambda p: p.sub(p.sheet_part("Roster"), r'<row r="5" ', f'<row r="{new_r}" '),
                   "Roster", *words)


# -- helpers for the files cases make

def template_copy(tmp: Path, name: str = "billing.xlsm") -> Path:
    wb = book_dir(tmp) / name
    wb.write_bytes(template_bytes())
    return wb


def export_file(tmp: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    d = tmp / "exports"
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def import_run(tmp: Path, export: Path, source: str = "m365", *extra: str, client: str | None = GRANITE) -> Run:
    wb = template_copy(tmp)
    argv = ["import", source, str(export), "--workbook", str(wb), *(["--client", client] if client else []),
            "--effective", "2026-12-01", *extra]
    return Run(argv, wb, None, (export.name,))


def export_case(id: str, name: str, data: Callable[[], bytes | str], *words: str, source: str = "m365",
                extra: tuple[str, ...] = (), encoding: str = "utf-8", **kw: object) -> Case:
    def make(tmp: Path) -> Run:
        return import_run(tmp, export_file(tmp, name, data(), encoding), source, *extra)

    return Case(id, make, words=words, **kw)  # type: ignore[arg-type]


def garbage(n: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    return bytes(rnd.getrandbits(8) for _ in range(n))


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# --------------------------------------------------------------------------- the corpus

ROSTER = "Roster"


def _roster_xml(p: Parts, old: str, new: str) -> None:
    p.sub(p.sheet_part(ROSTER), re.escape(old), new)


def _append_to_roster(xml: str) -> Callable[[Parts], object]:
    return lambda p: p.sub(p.sheet_part(ROSTER), "</sheetData>", xml + "</sheetData>")


def _roster_table(old: str, new: str) -> Callable[[Parts], object]:
    return lambda p: p.sub(p.table_part(ROSTER), re.escape(old), new)


def _sst_bomb() -> bytes:
    p = Parts.template()
    sst = p.parts["xl/sharedStrings.xml"]
    at = sst.index(b"<si>")
    return with_big_member(p, "xl/sharedStrings.xml", sst[:at], b" ", 64 * 1024**2, sst[at:])


def _extra_bomb() -> bytes:
    return with_big_member(Parts.template(), "xl/media/image1.bin", b"", b"\0", 64 * 1024**2, b"")


def _encrypted() -> bytes:
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(template_bytes())).encrypt("secret", out)
    return out.getvalue()


def _special_path(kind: str) -> Callable[[Path], Run]:
    """The workbook argument is a folder, a device, a pipe, a symbolic link loop or nothing at all."""
    def make(tmp: Path) -> Run:
        d = book_dir(tmp)
        if kind == "folder":
            wb = d / "billing.xlsm"
            wb.mkdir()
        elif kind == "zero":
            wb = Path("/dev/zero")
        elif kind == "fifo":
            wb = fifo(d / "billing.xlsm")
        elif kind == "loop":
            wb = d / "billing.xlsm"
            (d / "other.xlsm").symlink_to(wb)
            wb.symlink_to(d / "other.xlsm")
        else:
            wb = d / "no-such-workbook.xlsm"
        run = invoice(wb, tmp)
        run.workbook = None  # not a file to compare
        return run

    return make


def _encrypted_run(command: str) -> Callable[[Path], Run]:
    def make(tmp: Path) -> Run:
        wb = book_dir(tmp) / "locked.xlsm"
        wb.write_bytes(_encrypted())
        if command == "report":
            return Run(["report", str(wb), "--out", str(tmp / "out")], wb, tmp / "out", (wb.name,))
        export = export_file(tmp, "users.csv", m365_text())
        return Run(["import", "m365", str(export), "--workbook", str(wb), "--client", GRANITE], wb, None, (wb.name,))

    return make


def _cli(*extra: str, command: str = "invoice") -> Callable[[Path], Run]:
    def make(tmp: Path) -> Run:
        wb = template_copy(tmp)
        if command == "import":
            export = export_file(tmp, "users.csv", m365_text())
            return Run(["import", "m365", str(export), "--workbook", str(wb), "--client", GRANITE, *extra], wb)
        return Run([command, str(wb), "--out", str(tmp / "out"), *extra], wb, tmp / "out")

    return make


def _out(kind: str) -> Callable[[Path], Run]:
    """``--out`` that cannot be the output folder."""
    def make(tmp: Path) -> Run:
        if kind == "workbook-folder":
            wb = template_copy(tmp, "invoices.xlsx")
            return Run(["invoice", str(wb), "--out", str(wb.parent)], wb, wb.parent, (wb.name,))
        wb = template_copy(tmp)
        if kind == "file":
            out = tmp / "out.txt"
            out.write_text("not a folder\n")
            names: tuple[str, ...] = ("out.txt",)
        elif kind == "under-file":
            (tmp / "afile").write_text("a file\n")
            out = tmp / "afile" / "out"
            names = ("afile",)
        else:  # a folder in the way of xero.csv
            out = tmp / "out"
            (out / "xero.csv").mkdir(parents=True)
            names = ("xero.csv",)
        return Run(["invoice", str(wb), "--out", str(out)], wb, out, names)

    return make


def _output_folder(kind: str) -> Callable[[Path], Run]:
    """Settings OutputFolder names a file, or OutputFolder/PERIOD is a file (no --out)."""
    def make(tmp: Path) -> Run:
        parts = Parts.template()
        d = book_dir(tmp)
        if kind == "file":
            parts.set_setting("OutputFolder", "notes.txt")
            (d / "notes.txt").write_text("notes\n")
            names: tuple[str, ...] = ("notes.txt",)
        else:
            parts.set_setting("OutputFolder", "invoices")
            (d / "invoices").mkdir()
            (d / "invoices" / PERIOD).write_text("a file where the period's folder goes\n")
            names = (PERIOD,)
        wb = parts.save(d / "billing.xlsm")
        return Run(["invoice", str(wb)], wb, None, names)

    return make


def _disk_full(tmp: Path) -> Run:
    wb = template_copy(tmp)
    return Run(["invoice", str(wb), "--out", str(tmp / "out")], wb, tmp / "out", ())


def _injected(edit: Callable[[Parts], object]) -> Callable[[Path], Run]:
    def make(tmp: Path) -> Run:
        parts = Parts.template()
        edit(parts)
        wb = parts.save(book_dir(tmp) / "billing.xlsm")
        return Run(["invoice", str(wb), "--out", str(tmp / "out")], wb, tmp / "out", ())

    return make


def _many_fields(p: Parts) -> None:
    p.rename_string("Harborview IT Services LLC", '=HYPERLINK("http://evil.example","pay here")')
    p.rename_string("Maria Alvarez", "-2+3+cmd|' /C calc'!A0")
    p.rename_string("PO-7731", "\t=1+2")
    p.rename_string("Helpdesk, patching, monitoring and backup per user", "\r=3+4")
    p.rename_string("Granite Accounting", "@SUM(1)+EVIL")


def _export_path(kind: str) -> Callable[[Path], Run]:
    def make(tmp: Path) -> Run:
        d = tmp / "exports"
        d.mkdir(parents=True, exist_ok=True)
        if kind == "folder":
            export = d / "users.csv"
            export.mkdir()
        elif kind == "zero":
            export = Path("/dev/zero")
        elif kind == "fifo":
            export = fifo(d / "users.csv")
        else:
            export = d / "no-such-export.csv"
        run = import_run(tmp, export)
        run.names = (export.name,)
        return run

    return make


def _sparse_export(tmp: Path) -> Run:
    export = export_file(tmp, "users.csv", m365_lines(GRANITE_USERS[:1])[0] + '\r\n"')
    with export.open("r+b") as f:
        f.truncate(500 * 1024**2)  # a 500 MB field of NULs, stored sparse
    return import_run(tmp, export)


def _unknown_source(tmp: Path) -> Run:
    run = import_run(tmp, export_file(tmp, "users.csv", m365_text()), "payroll-x")
    run.names = ("payroll-x",)
    return run


def _header_only(tmp: Path) -> Run:
    return import_run(tmp, export_file(tmp, "failed.csv", M365_HEADER + "\r\n"), "m365", "--apply")


def _foreign_domains(tmp: Path) -> Run:
    return import_run(tmp, export_file(tmp, "users.csv", m365_text(domain="elsewhere.example")), "m365", "--apply")


def _xlsx_far_cell() -> bytes:
    data = xlsx_export([M365_HEADER.split(","), ["False", "Helen Park", "", "", "E3", "helen.park@graniteacct.example",
                                                 "2025-01-06"]])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    parts["xl/worksheets/sheet1.xml"] = sheet.replace(
        "</sheetData>", '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    ).encode()
    return zip_bytes(parts.items())


def _xlsx_dtd() -> bytes:
    data = xlsx_export([M365_HEADER.split(",")])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["xl/worksheets/sheet1.xml"] = with_doctype(parts["xl/worksheets/sheet1.xml"].decode(), BILLION_LAUGHS,
                                                     None).encode()
    return zip_bytes(parts.items())


def _cp1252_line() -> bytes:
    lines = m365_lines([*ACCENTED[:2], ("Amélie Roy", "amelie.roy"), *GRANITE_USERS[:2]])
    raw = [ln.encode("utf-8") for ln in lines]
    raw[3] = lines[3].encode("cp1252")  # Amélie's line typed in another program
    return b"\r\n".join(raw) + b"\r\n"


def _quote_bomb() -> str:
    lines = m365_lines(GRANITE_USERS)
    lines.insert(2, 'False,"Marcus Lee,,,Microsoft 365 Business Standard,marcus.lee@graniteacct.example,'
                    + "x" * 200_000)
    return "\r\n".join(lines) + "\r\n"


def _swallowing_quote() -> str:
    lines = m365_lines(GRANITE_USERS)
    lines[2] = lines[2].replace("Marcus Lee", '"Marcus Lee')  # the quote is never closed: later users vanish
    return "\r\n".join(lines) + "\r\n"


def _long_field() -> str:
    lines = m365_lines(GRANITE_USERS)
    lines[2] = lines[2].replace("Marcus Lee", "M" * 40_000)
    return "\r\n".join(lines) + "\r\n"


def _long_unused_field() -> str:
    lines = m365_lines(GRANITE_USERS)
    lines[0] += ",Notes"
    lines[1:] = [ln + "," + ("n" * 40_000 if i == 1 else "") for i, ln in enumerate(lines[1:])]
    return "\r\n".join(lines) + "\r\n"


def _duplicated_header() -> str:
    lines = m365_lines(GRANITE_USERS)
    lines[0] += ",User principal name"
    lines[1:] = [ln + ",someone.else@graniteacct.example" for ln in lines[1:]]
    return "\r\n".join(lines) + "\r\n"


def _with_nul() -> str:
    lines = m365_lines(GRANITE_USERS)
    lines[3] = lines[3].replace("Sofia", "So\0fia")
    return "\r\n".join(lines) + "\r\n"


def _cw_quote_bomb() -> str:
    return CW_TIME + '9102,"Delta Pediatrics,adoe,ServiceTicket,7002,2026-11-03T09:00:00Z,,0.5,Billable\r\n' \
        + "y" * 200_000 + "\r\n"



UTF16_NAMES = [*ACCENTED, *GRANITE_USERS[:2]]

CASES: list[Case] = [
    # --- the workbook package
    bytes_case("not-a-zip", lambda: b"Client,UserID\r\nAcme,ann@acme.example\r\n", "not an .xlsx"),
    bytes_case("empty-file", lambda: b"", "empty"),
    bytes_case("truncated-zip", lambda: template_bytes()[: len(template_bytes()) // 2], "cut short"),
    bytes_case("zip-size-lie", lambda: lie_about_size(template_bytes(), "xl/worksheets/sheet7.xml"), "damaged"),
    bytes_case("zip-size-lie-shared-strings", lambda: lie_about_size(template_bytes(), "xl/sharedStrings.xml", 0.1),
               "damaged"),
    bytes_case("zip-bomb-shared-strings", _sst_bomb, "zip bomb"),
    bytes_case("zip-bomb-extra-member", _extra_bomb, "zip bomb"),
    wb_case("no-workbook-xml", lambda p: p.drop("xl/workbook.xml"), "xl/workbook.xml"),
    wb_case("no-workbook-rels", lambda p: p.drop("xl/_rels/workbook.xml.rels"), "damaged"),
    wb_case("no-shared-strings", lambda p: p.drop("xl/sharedStrings.xml"), "shared string"),
    cell_case("shared-string-out-of-range", "Plans", "B3", '<c r="B3" t="s"><v>99999</v></c>', "Plans", "row 3",
              "Rate", "shared string"),
    wb_case("damaged-sheet-xml", lambda p: p.put(p.sheet_part(ROSTER), p.xml(p.sheet_part(ROSTER))[:5000]),
            "Roster", "damaged"),
    *[doctype_case(part, flavour)
      for part in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/worksheets/sheet7.xml",
                   "xl/sharedStrings.xml", "xl/tables/table6.xml", "xl/styles.xml")
      for flavour in ("laughs", "external")],
    wb_case("table-range-reversed", _roster_table('ref="A1:K76"', 'ref="K76:A1"'), "Roster", "K76:A1"),
    wb_case("table-range-beyond-xfd", _roster_table('ref="A1:K76"', 'ref="A1:XFE1048577"'), "Roster",
            "XFE1048577"),
    wb_case("value-at-xfd1048576", _append_to_roster('<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'),
            "Roster", "XFD1048576", isolate=True),
    wb_case("value-at-xfd1048576-prefixed", _append_to_roster(
        '<x:row xmlns:x="urn:any" r="1048576"><x:c r="XFD1048576"><x:v>1</x:v></x:c></x:row>'),
        "Roster", "XFD1048576", isolate=True),
    wb_case("value-at-xfd1048576-single-quotes", _append_to_roster(
        "<row r='1048576'><c r='XFD1048576'><v>1</v></c></row>"), "Roster", "XFD1048576", isolate=True),
    wb_case("values-placed-one-after-another", _append_to_roster(
        '<row r="1000000">' + "<c><v>1</v></c>" * 16_384 + "</row>"), "Roster", "grid", isolate=True),
    wb_case("dimension-lies", lambda p: _roster_xml(p, '<dimension ref="A1:K76"/>',
                                                    '<dimension ref="A1:XFD1048576"/>'),
            "Roster", "A1:XFD1048576", isolate=True),
    wb_case("totals-row-no-data-rows", _roster_table('ref="A1:K76" totalsRowShown="0"',
                                                     'ref="A1:K2" totalsRowCount="1"'), "Roster"),
    wb_case("two-tables-one-name", _roster_table('name="Roster" displayName="Roster"',
                                                 'name="ChangeLog" displayName="ChangeLog"'),
            "ChangeLog", "two tables"),
    wb_case("two-sheets-one-name", lambda p: p.sub("xl/workbook.xml", '<sheet name="Devices"', '<sheet name="Roster"'),
            "two sheets", "Roster"),
    wb_case("heading-differs-from-table-column", lambda p: p.set_text(ROSTER, "C1", "FullName"),
            "Roster", "row 1", "FullName", "Name"),
    roster_row_case("row-number-0", "0", "'0'"),
    roster_row_case("row-number-negative", "-5", "'-5'"),
    roster_row_case("row-number-text", "abc", "'abc'"),
    wb_case("cell-ref-a0", lambda p: _roster_xml(p, '<c r="A5" ', '<c r="A0" '), "Roster", "A0"),
    cell_case("garbage-number", "Plans", "B3", '<c r="B3" s="1"><v>1.2.3e</v></c>', "Plans", "row 3", "Rate",
              "1.2.3e"),
    cell_case("unknown-error-value", "Plans", "B3", '<c r="B3" t="e"><v>#BOGUS!</v></c>', "Plans", "row 3",
              "Rate", "#BOGUS!"),
    cell_case("error-cell-written-oddly", "Plans", "B3", '<c r="B3"\n t="e"><v>#N/A</v></c>', "Plans", "row 3",
              "Rate", "#N/A"),
    cell_case("spill-error-value", "Plans", "B3", '<c r="B3" t="e"><v>#SPILL!</v></c>', "Plans", "row 3", "Rate",
              "#SPILL!"),
    Case("password-protected-report", _encrypted_run("report"), words=("password-protected",)),
    Case("password-protected-import", _encrypted_run("import"), words=("password-protected",)),
    Case("workbook-is-a-folder", _special_path("folder"), codes=(1, 2), words=("billing.xlsm", "folder")),
    Case("workbook-is-dev-zero", _special_path("zero"), codes=(1, 2), words=("/dev/zero",), isolate=True,
         timeout=30),
    Case("workbook-is-a-fifo", _special_path("fifo"), codes=(1, 2), words=("billing.xlsm",), isolate=True,
         timeout=30),
    Case("workbook-is-a-symlink-loop", _special_path("loop"), codes=(1, 2), words=("billing.xlsm",)),
    Case("workbook-does-not-exist", _special_path("missing"), codes=(2,), words=("no-such-workbook.xlsm",)),
    # --- settings
    *[setting_case(f"{name.lower()}-{label}", name, value)
      for name in ("InvoicePrefix", "CreditPrefix")
      for label, value in (("quote", "'"), ("slash", "A/B-"), ("parent-dirs", "../../x-"), ("absolute", "/tmp/x-"))],
    Case("output-folder-is-a-file", _output_folder("file")),
    Case("output-folder-period-is-a-file", _output_folder("period-file")),
    setting_case("csv-date-format-formula", "CsvDateFormat", '=HYPERLINK("http://x","y")'),
    setting_case("csv-date-format-nonsense", "CsvDateFormat", "QQ/ZZ/YYYY"),
    setting_case("csv-date-format-strftime", "CsvDateFormat", "%Y-%m-%d"),
    # --- formula injection: may succeed, every output neutralised
    Case("client-named-formula", _injected(lambda p: p.rename_string("Acme Dental Group", "=1+1")),
         codes=(0,), neutralise=True, tags=("=1+1",)),
    Case("client-named-dde", _injected(lambda p: p.rename_string("Acme Dental Group", "+cmd|' /C calc'!A0")),
         codes=(0,), neutralise=True, tags=("+cmd|' /C calc'!A0",)),
    Case("client-named-at-function", _injected(lambda p: p.rename_string("Acme Dental Group", "@SUM(1)")),
         codes=(0,), neutralise=True, tags=("@SUM(1)",)),
    Case("many-fields-injected", _injected(_many_fields), codes=(0,), neutralise=True,
         tags=("@SUM(1)+EVIL", '=HYPERLINK("http://evil.example","pay here")', "-2+3+cmd|' /C calc'!A0")),
    # --- command line
    Case("effective-year-1", _cli("--effective", "0001-01-01", command="import"), codes=(2,),
         words=("--effective", "0001-01-01")),
    Case("effective-year-9999", _cli("--effective", "9999-12-31", command="import"), codes=(2,),
         words=("--effective", "9999-12-31")),
    Case("period-9999-12", _cli("--period", "9999-12"), codes=(1, 2), words=("9999-12",)),
    Case("period-0000-01", _cli("--period", "0000-01"), codes=(2,), words=("0000-01",)),
    Case("period-2026-13", _cli("--period", "2026-13"), codes=(2,), words=("2026-13",)),
    Case("report-period-0000-01", _cli("--period", "0000-01", command="report"), codes=(2,), words=("0000-01",)),
    Case("unknown-import-source", _unknown_source, codes=(2,)),
    Case("out-is-a-file", _out("file")),
    Case("out-under-a-file", _out("under-file")),
    Case("out-is-the-workbook-folder", _out("workbook-folder")),
    Case("out-holds-a-folder-named-xero-csv", _out("xero-folder")),
    Case("disk-full", _disk_full, words=("file size",), not_words=("open in Excel",), isolate=True,
         fsize=4096),
    # --- vendor exports
    export_case("csv-quote-never-closed-huge", "users.csv", _quote_bomb, "quote"),
    export_case("csv-quote-never-closed-swallows-users", "users.csv", _swallowing_quote, "quote"),
    Case("csv-500-mb", _sparse_export, words=("limit",)),
    export_case("csv-nul-bytes", "users.csv", _with_nul, "NUL"),
    export_case("csv-utf16-with-bom", "users.csv", lambda: m365_text(UTF16_NAMES), encoding="utf-16",
                codes=(0,), tags=("decoded",)),
    export_case("csv-utf16-without-bom", "users.csv", lambda: m365_text(UTF16_NAMES), encoding="utf-16-le",
                codes=(0,), tags=("decoded",)),
    export_case("csv-one-windows-1252-line", "users.csv", _cp1252_line, "row 4", codes=(0,), tags=("decoded",)),
    Case("csv-header-only-apply", _header_only),
    export_case("csv-duplicated-header", "users.csv", _duplicated_header, "two columns", "User principal name"),
    export_case("csv-field-over-32767", "users.csv", _long_field, "32,767", "Display name"),
    export_case("csv-field-over-32767-in-a-column-not-imported", "users.csv", _long_unused_field, codes=(0,)),
    export_case("csv-binary-garbage", "users.csv", lambda: garbage(20_000)),
    export_case("xlsx-export-truncated", "users.xlsx", lambda: xlsx_export([M365_HEADER.split(",")])[:300],
                "damaged"),
    export_case("xlsx-export-dtd", "users.xlsx", _xlsx_dtd, "DTD"),
    export_case("xlsx-export-value-at-xfd1048576", "users.xlsx", _xlsx_far_cell, "far out", isolate=True),
    Case("csv-domains-match-no-roster-user", _foreign_domains),
    Case("export-is-a-folder", _export_path("folder"), words=("folder",)),
    Case("export-is-dev-zero", _export_path("zero"), isolate=True, timeout=30),
    Case("export-is-a-fifo", _export_path("fifo"), isolate=True, timeout=30),
    Case("export-does-not-exist", _export_path("missing"), codes=(2,)),
    export_case("usage-csv-quote-never-closed", "time.csv", _cw_quote_bomb, "quote", source="connectwise-time"),
]
