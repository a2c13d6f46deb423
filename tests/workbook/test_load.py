"""Inputs that used to be silently wrong: rates typed as whole numbers, headers that almost name a money
column, free plans and far-off dates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from perseat_addin.errors import InputProblems
from perseat_addin.model import Book

ROSTER = [{"Client": "Acme", "UserID": "a@x"}]


def problems_of(book: Callable[..., Book], **tables: Any) -> list[str]:
    with pytest.raises(InputProblems) as exc:
        book(**{"roster": ROSTER, **tables})
    return [f"{p.sheet}|{p.row}|{p.column}|{p.message}|{p.fix}" for p in exc.value.problems]


@pytest.mark.parametrize("column", ["DiscountPct", "TaxRate"])
def test_a_rate_typed_as_one_is_a_problem(book: Callable[..., Book], column: str) -> None:
    [text] = problems_of(book, clients=[{"Client": "Acme", "Plan": "Std", column: 1}])
    assert text.startswith(f"Clients|2|{column} (")
    assert "1 would mean 100%" in text and "type 1% for 1 percent" in text


@pytest.mark.parametrize(("typed", "ppm"), [("1%", 10_000), ("8.25%", 82_500), ("100%", 1_000_000), (0.0825, 82_500)])
def test_percent_text_is_accepted(book: Callable[..., Book], typed: Any, ppm: int) -> None:
    b = book(clients=[{"Client": "Acme", "Plan": "Std", "TaxRate": typed}], roster=ROSTER)
    assert b.clients[0].tax_ppm == ppm


def test_default_tax_rate_typed_as_a_whole_number_is_a_problem(book: Callable[..., Book]) -> None:
    [text] = problems_of(book, settings={"DefaultTaxRate": 8})
    assert "DefaultTaxRate: 8 would mean 800%" in text and "type 8% for 8 percent" in text
    assert book(settings={"DefaultTaxRate": "8%"}, roster=ROSTER).settings.default_tax_ppm == 80_000


@pytest.mark.parametrize(("table", "header", "column"), [
    ("Roster", "Last Day", "End"), ("Roster", "User Status", "Status"), ("Roster", "Hire Date", "Start"),
    ("AddOns", "Billing cycle", "Frequency"), ("Clients", "VAT", "TaxRate"), ("Clients", "Disc.", "DiscountPct"),
])
def test_a_header_that_resembles_a_missing_money_column_is_a_problem(book: Callable[..., Book], table: str,
                                                                    header: str, column: str) -> None:
    import conftest

    heads = conftest.HEADERS[table]
    renamed = tuple(header if h == column else h for h in heads)
    if renamed == heads:
        renamed = (*heads, header)
    old = conftest.HEADERS[table]
    conftest.HEADERS[table] = renamed
    try:
        row = {"Client": "Acme", "Plan": "Std"} if table == "Clients" else \
            {"Client": "Acme", "Description": "Backup", "UnitPrice": 5} if table == "AddOns" else \
            {"Client": "Acme", "UserID": "a@x"}
        texts = problems_of(book, **{table.lower(): [row]})
    finally:
        conftest.HEADERS[table] = old
    [text] = [t for t in texts if f"no {column} column" in t]
    assert f"the {table} table has no {column} column, but has '{header}'" in text
    assert f"rename that header to {column}" in text


def test_a_plan_at_rate_zero_is_a_warning(book: Callable[..., Book]) -> None:
    b = book(plans=[{"Plan": "Std", "Rate": 0}], roster=ROSTER)
    assert [w.message for w in b.warnings] == ["plan 'Std' has Rate 0: its users are billed nothing"]


def test_dates_far_from_the_period_are_one_warning_per_column(book: Callable[..., Book]) -> None:
    roster = [{"Client": "Acme", "UserID": f"u{k}@x", "End": "2099-12-31"} for k in range(5)]
    b = book(roster=[*roster, {"Client": "Acme", "UserID": "a@x", "Start": "2062-01-05"}])
    texts = sorted(f"{w.column}|{w.message}" for w in b.warnings)
    assert texts == [
        "End (H)|5 date(s) more than 5 years from 2026-11 (row 2: 2099-12-31, row 3: 2099-12-31, row 4: 2099-12-31 "
        "and 2 more)",
        "Start (G)|1 date(s) more than 5 years from 2026-11 (row 7: 2062-01-05)"]


def _overlaps_one_group_at_a_time(roster: Any) -> list[tuple[int, str]]:
    """The rule stated plainly: each UserID of a client on several rows, its rows in Start order, warned when
    a row starts on or before the latest End of the rows before it."""
    out = []
    for _, g in roster[roster["dupkey"] >= 0].groupby("dupkey", sort=False):
        g = g.sort_values("start", kind="stable")
        starts, ends = g["start"].tolist(), g["end"].tolist()
        if any(starts[i] <= max(ends[:i]) for i in range(1, len(g))):
            rows = ", ".join(str(int(r)) for r in g["row"])
            out.append((int(g["row"].iloc[1]), f"UserID {g['user'].iloc[0]!r} appears in rows {rows}"))
    return out


def test_overlapping_rows_of_one_user_are_warned_group_by_group() -> None:
    import random

    import pandas as pd

    from perseat_addin.workbook import load as loader
    from perseat_addin.workbook.schema import Table

    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(1, 60)
        users = [f"u{rng.randint(0, 8)}@x" for _ in range(n)]
        roster = loader.prepare_roster(pd.DataFrame({
            "row": list(range(2, n + 2)), "client": [rng.choice(["A", "b", "a "]) for _ in range(n)],
            "user": [u.upper() if rng.random() < .2 else u for u in users],
            "name": [""] * n, "type": ["Employee"] * n, "plan": [""] * n,
            "start": [rng.randint(0, 20) for _ in range(n)], "end": [rng.randint(0, 25) for _ in range(n)],
            "status": ["Active"] * n}))
        t = Table("Roster", "Roster", pd.DataFrame(), {"UserID": "B"}, {"UserID"})
        found: list[Any] = []
        loader._overlaps(t, roster, found)
        assert [(p.row, p.message.split(" with ")[0]) for p in found] == _overlaps_one_group_at_a_time(roster)
        assert all(p.severity == "warning" for p in found)


@pytest.mark.parametrize("column", ["Tiering", "Taxable"])
def test_a_short_choice_column_converts_as_the_whole_column_way(column: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choice and Yes/No columns of a few cells are checked in plain Python: the same values and problems."""
    import random

    import numpy as np
    import pandas as pd

    from perseat_addin.workbook import schema
    from perseat_addin.workbook.schema import SCHEMA, Table

    col = next(c for c in SCHEMA["Plans"] if c.name == column)
    words = ["flat", "Volume ", " GRADUATED", "", None, "yes", "No", "y", "X", "0", 1.0, 0.0, True, "maybe",
             "n", "true", "FALSE", "graduate", "  ", "Flat"]
    rng = random.Random(3)
    for _ in range(40):
        values = [rng.choice(words) for _ in range(rng.randint(0, 30))]
        rows = np.arange(2, len(values) + 2)
        got: list[Any] = []
        for few in (schema._FEW, 0):
            monkeypatch.setattr(schema, "_FEW", few)
            problems: list[Any] = []
            t = Table("Plans", "Plans", pd.DataFrame(), {column: "C"}, {column})
            out = schema._convert_column(col, list(values), rows, t, problems)
            got.append((out.tolist(), str(out.dtype), [(p.row, p.message) for p in problems]))
        assert got[0][0] == got[1][0] or (np.isnan(got[0][0]).tolist() == np.isnan(got[1][0]).tolist()
                                          and np.nan_to_num(got[0][0]).tolist() == np.nan_to_num(got[1][0]).tolist())
        assert got[0][1:] == got[1][1:]
def _overlaps_by_groups(t: Any, roster: Any) -> list[Any]:
    """The overlap warnings found one pandas group at a time (rows with the same Start in table order)."""
    import numpy as np

    from perseat_addin.errors import Problem

    out = []
    for _, g in roster[roster["dupkey"] >= 0].groupby("dupkey", sort=False):
        g = g.sort_values("start", kind="stable")
        if (g["start"].to_numpy()[1:] <= np.maximum.accumulate(g["end"].to_numpy())[:-1]).any():
            rows = ", ".join(str(int(x)) for x in g["row"])
            out.append(Problem(*t.where(int(g["row"].iloc[1]), "UserID"),
                               f"UserID {g['user'].iloc[0]!r} appears in rows {rows} with overlapping dates; "
                               "billed once", "delete the extra row, or give it an End date", "warning"))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_overlap_warnings_as_found_group_by_group(seed: int) -> None:
    import numpy as np
    import pandas as pd

    from perseat_addin.workbook.load import _overlaps, prepare_roster
    from perseat_addin.workbook.schema import Table

    rng = np.random.default_rng(seed)
    n = 400
    users = rng.integers(0, 10, n)  # groups of ~20 rows (past numpy's insertion sort), many tied Starts
    start = rng.integers(0, 5, n) * 10
    roster = prepare_roster(pd.DataFrame({
        "row": np.arange(2, n + 2), "client": pd.Series(rng.choice(["Acme", "acme ", "Bolt"], n), dtype="str"),
        "user": pd.Series([f"U{u}" for u in users], dtype="str"), "name": pd.Series([""] * n, dtype="str"),
        "type": pd.Series(["Employee"] * n, dtype="str"), "plan": pd.Series([""] * n, dtype="str"),
        "start": start, "end": start + rng.integers(0, 15, n), "status": pd.Series([""] * n, dtype="str")}))
    t = Table("Roster", "Roster", pd.DataFrame(), {"UserID": "B"}, {"UserID"})
    found: list[Any] = []
    _overlaps(t, roster, found)
    assert found and found == _overlaps_by_groups(t, roster)


def test_the_invoice_and_email_settings_are_read(book: Callable[..., Book]) -> None:
    st = book(settings={"Phone": "+1 207 555 0148", "TaxID": "EIN 47-1234567", "RemitTo": "PO Box 7\nPortland",
                        "PaymentInstructions": "ACH 011200365", "LogoFile": "logo.png", "AttachUserList": "yes",
                        "EmailSubject": "Invoice {invoice}", "EmailBody": "Dear {client}, {total} due {due}.",
                        "PSA": "HaloPSA"}, roster=ROSTER).settings
    assert (st.phone, st.tax_id, st.remit_to, st.payment_instructions, st.logo_file) == (
        "+1 207 555 0148", "EIN 47-1234567", "PO Box 7\nPortland", "ACH 011200365", "logo.png")
    assert st.attach_user_list and st.psa == "halopsa" and st.email_subject == "Invoice {invoice}"
    assert not book(roster=ROSTER).settings.attach_user_list


@pytest.mark.parametrize(("setting", "value", "says"), [
    ("EmailSubject", "Invoice {number}", "{number} is not a placeholder"),
    ("EmailBody", "Dear {client.__class__}", "is not a placeholder"),
    ("EmailBody", "Total {total", "unmatched brace"),
    ("EmailSubject", "Invoice\n{invoice}", "has a line break"),
    ("LogoFile", "logo.svg", "is not a PNG or JPEG file name"),
    ("AttachUserList", "sometimes", "is not Yes or No"),
    ("PSA", "kaseya", "is not a PSA the program connects to"),
])
def test_a_wrong_invoice_or_email_setting_is_named(book: Callable[..., Book], setting: str, value: str,
                                                  says: str) -> None:
    [text] = problems_of(book, settings={setting: value})
    assert text.startswith("Settings|") and f"{setting}: " in text and says in text, text
