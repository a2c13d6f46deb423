"""``perseat push`` into Autotask and HaloPSA, on a copy of the template, against the stand-ins.

Issue 13's push acceptance for the two PSAs: the billed seats of a recorded period are written (Autotask: one
ContractServiceAdjustment of the difference, effective the first day of the next period; Halo: the
recurring-invoice line's quantity, the whole invoice sent back), each read back and logged in the ChangeLog
with old and new quantity and the record id; a second push writes nothing; each client fails on its own with
its reason; no secret in any file, output or log.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standins import autotask as at
from standins import halopsa as halo

from perseat_addin.cli import main
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
AT_USER, AT_SECRET, AT_CODE = "perseat-api@harborview-it.example", "At$ecret-Value_9912", "TRACKING-ID-4F2A9C7E1B"
HALO_ID, HALO_SECRET = "0f3a9c1e-perseat", "Halo-Secret_Value-5531"
AT_IDS = {"Granite Accounting": ("250", "7"), "Acme Dental Group": ("251", "8"), "Birch & Lowe LLP": ("252", "9"),
          "Cobalt Logistics": ("253", "10")}
HALO_IDS = {"Granite Accounting": ("12", "94"), "Acme Dental Group": ("13", ""), "Birch & Lowe LLP": ("14", "96"),
            "Cobalt Logistics": ("15", "97")}


def workbook(folder: Path, psa: str, ids: dict[str, tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> Path:
    """A copy of the template with Settings PSA ``psa``, Clients PSACompanyID/PSAAgreementID from ``ids`` and the
    Volume Pro plan's PSAProduct VOL-PRO, its November 2026 invoices recorded."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copyfile(TEMPLATE, folder / "billing.xlsm"))
    with FileBook(path, "test") as book:
        clients, settings, plans = book.rows("Clients"), book.rows("Settings"), book.rows("Plans")
        assert clients is not None and settings is not None and plans is not None
        col = len(clients.headers)
        cells = tuple(c for i, row in enumerate(clients.rows) if row[0] in ids
                      for c in ((i, col, ids[row[0]][0]), (i, col + 1, ids[row[0]][1])))
        pcells = tuple((i, len(plans.headers), "VOL-PRO") for i, row in enumerate(plans.rows) if row[0] == "Volume Pro")
        book.write([TableEdit("Clients", cells, add_columns=("PSACompanyID", "PSAAgreementID")),
                    TableEdit("Settings", (), (), (settings.make({"Setting": "PSA", "Value": psa}),)),
                    TableEdit("Plans", pcells, add_columns=("PSAProduct",))])
    code = main(["invoice", str(path), "--finalize", "--early", "--out", str(folder / "out")])
    assert code == 0
    capsys.readouterr()
    return path


def table(path: Path, name: str) -> list[dict[str, Any]]:
    t = WorkbookFile(path).table(name)
    assert t is not None
    return [dict(zip(t.headers, r, strict=True)) for r in t.rows]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def scan(secrets: list[str], folder: Path, *texts: str) -> None:
    """No secret in ``texts`` nor in any file under ``folder`` (a workbook's parts inflated)."""
    blobs = list(texts)
    for f in folder.rglob("*"):
        if f.is_file():
            blobs.append(f.read_bytes().decode("latin-1"))
            if zipfile.is_zipfile(f):
                with zipfile.ZipFile(f) as z:
                    blobs += [z.read(n).decode("latin-1") for n in z.namelist()]
    for blob in blobs:
        for s in secrets:
            assert s not in blob


# Autotask ---------------------------------------------------------------------------------------------------

def _units(cs: int, contract: int, service: int, units: int, row: int) -> list[dict[str, Any]]:
    """November and December 2026 units rows of a contract service."""
    return [{"id": row, "contractID": contract, "contractServiceID": cs, "serviceID": service,
             "startDate": "2026-11-01T00:00:00Z", "endDate": "2026-11-30T23:59:59Z", "units": units},
            {"id": row + 1, "contractID": contract, "contractServiceID": cs, "serviceID": service,
             "startDate": "2026-12-01T00:00:00Z", "endDate": "2026-12-31T23:59:59Z", "units": units}]


def autotask_data(acme_services: tuple[int, ...] = (31,)) -> at.Data:
    """Contracts 7–10 of companies 250–253; services Standard, Backup, Premium and VOL-PRO."""
    d = at.Data(companies=[{"id": c, "companyName": n, "isActive": True} for n, (c_, _) in AT_IDS.items()
                           for c in [int(c_)]])
    d.contracts = [{"id": int(a), "companyID": int(c), "contractName": f"{n} managed services", "status": 1}
                   for n, (c, a) in AT_IDS.items()]
    d.services = [{"id": 31, "name": "Standard", "isActive": True}, {"id": 32, "name": "Backup", "isActive": True},
                  {"id": 33, "name": "Premium", "isActive": True},
                  {"id": 34, "name": "Volume Pro seats", "isActive": True}]
    layout = [(501, 7, 31, 6), (502, 7, 32, 9), *((511 + i, 8, s, 10) for i, s in enumerate(acme_services)),
              (521, 9, 33, 4), (531, 10, 34, 20), (532, 10, 33, 0)]
    for cs, contract, service, units in layout:
        d.contract_services.append({"id": cs, "contractID": contract, "serviceID": service, "unitPrice": 10.0,
                                    "invoiceDescription": "VOL-PRO" if service == 34 else ""})
        d.units += _units(cs, contract, service, units, 900_000 + cs * 10)
    return d


@pytest.fixture
def autotask(monkeypatch: pytest.MonkeyPatch) -> Iterator[at.AutotaskStandIn]:
    with at.AutotaskStandIn(AT_USER, AT_SECRET, AT_CODE, autotask_data()) as s:
        for k, v in s.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        yield s


def units_on(s: at.AutotaskStandIn, cs: int, day: str) -> int:
    return next(u["units"] for u in s.data.units if u["contractServiceID"] == cs and u["startDate"][:10] <= day
                <= u["endDate"][:10])


def test_autotask_push_adjusts_by_the_difference_from_the_next_period_and_a_second_push_writes_nothing(
        autotask: at.AutotaskStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = workbook(tmp_path, "autotask", AT_IDS, capsys)
    before = book.read_bytes()
    code, out, err = run(capsys, "push", "--workbook", book)
    assert code == 0, err
    assert "Billed seats of 2026-11 → Autotask:" in out
    lines = out.splitlines()
    assert ("  Acme Dental Group (Standard, service Standard of contract 8, units from 2026-12-01, record contract 8 "
            "service 511): quantity 10 → 12") in lines
    assert "  Cobalt Logistics (Volume Pro, service Volume Pro seats of contract 10, units from 2026-12-01, record " \
           "contract 10 service 531): quantity 20 → 26" in lines  # matched by its invoice description VOL-PRO
    assert "Dry run: 5 quantities would change. Add --apply to write them." in out
    assert book.read_bytes() == before and not autotask.calls("ContractServiceAdjustments", "POST")

    code, out, err = run(capsys, "push", "--workbook", book, "--apply")
    assert code == 0, err
    assert "Wrote 5 quantities to Autotask, each read back; 5 ChangeLog rows added" in out
    made = [s.body for s in autotask.calls("ContractServiceAdjustments", "POST")]
    assert sorted((b["contractServiceID"], b["unitChange"], b["effectiveDate"]) for b in made) == [
        (501, 1, "2026-12-01T00:00:00Z"), (511, 2, "2026-12-01T00:00:00Z"), (521, 1, "2026-12-01T00:00:00Z"),
        (531, 6, "2026-12-01T00:00:00Z"), (532, 1, "2026-12-01T00:00:00Z")]
    assert [units_on(autotask, cs, "2026-12-01") for cs in (501, 502, 511, 521, 531, 532)] == [7, 9, 12, 5, 26, 1]
    assert [units_on(autotask, cs, "2026-11-30") for cs in (501, 511, 531)] == [6, 10, 20]  # November as billed
    log = [r for r in table(book, "ChangeLog") if r["Action"] == "push"]
    assert len(log) == 5 and {r["Source"] for r in log} == {"Autotask"}
    acme = next(r for r in log if r["Client"] == "Acme Dental Group")
    adj = next(a["id"] for a in autotask.data.adjustments if a["contractServiceID"] == 511)
    assert (acme["Field"], acme["Old"], acme["New"]) == (
        f"Quantity of contract 8 service 511 adjustment {adj} (Standard, 2026-11)", 10, 12)

    written = book.read_bytes()
    code, out, _ = run(capsys, "push", "--workbook", book, "--apply")
    assert code == 0 and "Nothing to write: Autotask already holds the billed seats." in out
    assert "quantity 12 (already 12: no change)" in out
    assert len(autotask.calls("ContractServiceAdjustments", "POST")) == 5 and book.read_bytes() == written
    scan([AT_SECRET, AT_CODE], tmp_path, out)


def test_autotask_push_fails_per_client_with_its_reason(autotask: at.AutotaskStandIn, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    autotask.data = autotask_data(acme_services=(32,))  # Acme's contract has Backup only
    autotask.data.contracts[2]["companyID"] = 999  # Birch's contract is another company's
    book = workbook(tmp_path, "autotask", AT_IDS, capsys)
    code, out, err = run(capsys, "push", "--workbook", book, "--apply", "--json")
    assert code == 1
    got = json.loads(out)
    errors = {(i["client"], i["plan"]): i["error"] for i in got["items"] if i["error"]}
    assert "contract 8 has no service for plan 'Standard' (product 'Standard'; its services: Backup)" in \
        errors[("Acme Dental Group", "Standard")]
    assert "contract 9 (Birch & Lowe LLP managed services) belongs to company 999, not the client's PSACompanyID " \
           "252" in errors[("Birch & Lowe LLP", "Premium")]
    assert got["writes"] == 3
    assert {r["Client"] for r in table(book, "ChangeLog") if r["Action"] == "push"} == {"Cobalt Logistics",
                                                                                       "Granite Accounting"}
    scan([AT_SECRET, AT_CODE], tmp_path, out, err)


# HaloPSA ----------------------------------------------------------------------------------------------------

def _line(lid: int, invoice: int, item: str, qty: float) -> dict[str, Any]:
    return {"id": lid, "ihid": invoice, "_itemid": lid + 1000, "item_shortdescription": item, "qty_order": qty,
            "unit_price": 10.0, "tax_code": "5", "recurring_invoice_quantity_type": 2,
            "calculate_price_from_users": False, "quantity_users": [], "quantity_licences": [],
            "prorata_next_invoice": False, "sequenceid": lid % 10}


def halo_data() -> halo.Data:
    """Clients 12–15; Acme (13) has one active recurring invoice (95) and an inactive one (99)."""
    d = halo.Data(clients=[{"id": int(c), "name": n} for n, (c, _) in HALO_IDS.items()])
    d.invoices = [
        {"id": 94, "client_id": 12, "invoicenumber": "RI-94",
         "lines": [_line(1, 94, "Standard", 6.0), _line(2, 94, "Backup", 9.0)]},
        {"id": 95, "client_id": 13, "invoicenumber": "RI-95", "lines": [_line(11, 95, "standard", 10.0)]},
        {"id": 99, "client_id": 13, "invoicenumber": "RI-99", "disabled": True,
         "lines": [_line(91, 99, "Standard", 3.0)]},
        {"id": 96, "client_id": 14, "invoicenumber": "RI-96", "lines": [_line(21, 96, "Premium", 4.0)]},
        {"id": 97, "client_id": 15, "invoicenumber": "RI-97",
         "lines": [_line(31, 97, "VOL-PRO", 20.0), _line(32, 97, "Premium", 0.0)]}]
    return d


@pytest.fixture
def halopsa(monkeypatch: pytest.MonkeyPatch) -> Iterator[halo.HaloStandIn]:
    with halo.HaloStandIn(HALO_ID, HALO_SECRET, "harborview", halo_data()) as s:
        for k, v in s.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        yield s


def test_halo_push_sets_the_line_quantities_reads_them_back_and_a_second_push_writes_nothing(
        halopsa: halo.HaloStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = workbook(tmp_path, "halopsa", HALO_IDS, capsys)
    before = book.read_bytes()
    code, out, err = run(capsys, "push", "--workbook", book)
    assert code == 0, err
    lines = out.splitlines()
    assert "Billed seats of 2026-11 → HaloPSA:" in out
    assert ("  Acme Dental Group (Standard, line 11 (standard) of recurring invoice 95, record recurring invoice 95 "
            "line 11): quantity 10 → 12") in lines  # no PSAAgreementID: the client's only active recurring invoice
    assert "  Cobalt Logistics (Premium, line 32 (Premium) of recurring invoice 97, record recurring invoice 97 line " \
           "32): quantity 0 → 1" in lines
    assert "Dry run: 5 quantities would change. Add --apply to write them." in out
    assert book.read_bytes() == before and not halopsa.posted

    code, out, err = run(capsys, "push", "--workbook", book, "--apply")
    assert code == 0, err
    assert "Wrote 5 quantities to HaloPSA, each read back; 5 ChangeLog rows added" in out
    assert len(halopsa.posted) == 5
    assert {ln["id"]: ln["qty_order"] for i in halopsa.data.invoices for ln in i["lines"]} == {
        1: 7.0, 2: 9.0, 11: 12.0, 91: 3.0, 21: 5.0, 31: 26.0, 32: 1.0}
    assert halopsa.invoice(94)["lines"][1]["unit_price"] == 10.0  # the other lines went back as they were
    log = [r for r in table(book, "ChangeLog") if r["Action"] == "push"]
    assert len(log) == 5 and {r["Source"] for r in log} == {"HaloPSA"}
    acme = next(r for r in log if r["Client"] == "Acme Dental Group")
    assert (acme["Field"], acme["Old"], acme["New"]) == ("Quantity of recurring invoice 95 line 11 (Standard, "
                                                         "2026-11)", 10, 12)

    written = book.read_bytes()
    code, out, _ = run(capsys, "push", "--workbook", book, "--apply")
    assert code == 0 and "Nothing to write: HaloPSA already holds the billed seats." in out
    assert len(halopsa.posted) == 5 and book.read_bytes() == written
    scan([HALO_SECRET, *halopsa.issued()], tmp_path, out)


def test_halo_push_fails_per_client_with_its_reason(halopsa: halo.HaloStandIn, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    halopsa.data.invoices[2]["disabled"] = False  # Acme now has two active recurring invoices
    halopsa.data.invoices[3]["client_id"] = 13  # Birch's invoice 96 is Acme's
    book = workbook(tmp_path, "halopsa", HALO_IDS, capsys)
    code, out, err = run(capsys, "push", "--workbook", book, "--apply", "--json")
    assert code == 1
    got = json.loads(out)
    errors = {(i["client"], i["plan"]): i["error"] for i in got["items"] if i["error"]}
    assert "client 13 has 3 active recurring invoices (95, 99, 96); type the one to push to in the client's " \
           "PSAAgreementID" in errors[("Acme Dental Group", "Standard")]
    assert "recurring invoice 96 belongs to client 13, not the client's PSACompanyID 14" in \
        errors[("Birch & Lowe LLP", "Premium")]
    assert got["writes"] == 3
    assert {r["Client"] for r in table(book, "ChangeLog") if r["Action"] == "push"} == {"Cobalt Logistics",
                                                                                       "Granite Accounting"}
    scan([HALO_SECRET, *halopsa.issued()], tmp_path, out, err)
