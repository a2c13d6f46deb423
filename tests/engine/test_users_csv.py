"""users.csv: the reason for every Roster row, put into words a column at a time, and written as the same bytes
the row-by-row reasons and pandas' ``to_csv`` wrote (kept here as the reference)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perseat_addin.engine.invoicing import Run
from perseat_addin.engine.seats import reasons
from perseat_addin.model import FOREVER, SINCE_EVER, Billable, UserType, day_number, from_day_number
from perseat_addin.outputs.accounting import users_csv
from perseat_addin.tasks import invoice
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.tasks.port import validated

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"


def reference_reasons(roster: pd.DataFrame, types: dict[str, UserType], counted: np.ndarray, devices: np.ndarray,
                      active_days: np.ndarray, first_day: int, days: int, client_ok: np.ndarray) -> list[str]:
    """The reasons row by row, as users.csv had them before they were put into words column-wise."""
    tkey = roster["type_key"].astype("str")
    out: list[str] = []
    last = first_day + days - 1
    for i, (tk, status, s, e) in enumerate(zip(tkey, roster["status"].astype("str"), roster["start"],
                                               roster["end"], strict=True)):
        t = types.get(tk)
        tname = t.name if t else roster["type"].iloc[i]
        if not client_ok[i]:
            out.append("not billed: client is inactive or unknown")
        elif t is None:
            out.append(f"not billable: type {tname!r} is not in UserTypes")
        elif status == "disabled":
            out.append("not billable: sign-in disabled")
        elif e < first_day or s > last:
            when = "ended " + from_day_number(e).isoformat() if e < first_day else (
                "starts " + from_day_number(s).isoformat())
            out.append(f"not billable: {when}, outside the period")
        elif t.billable == Billable.NO:
            out.append(f"not billable: {tname}" + (f" ({t.definition})" if t.definition else ""))
        elif devices[i]:
            out.append(f"billed as a shared device: {tname}")
        elif counted[i]:
            span = ""
            if s > first_day or e < last:
                da, db = from_day_number(max(s, first_day)), from_day_number(min(e, last))
                span = f", active {da:%b} {da.day}–{db:%b} {db.day}"
            out.append(f"billable: {tname}{span}")
        elif active_days[i] < t.min_active_days:
            out.append(f"not billable: active {active_days[i]} days, {tname} needs {t.min_active_days}")
        else:
            out.append("counted once: same UserID as another row of this client")
    return out


def reference_users_csv(run: Run) -> str:
    """users.csv as pandas wrote it."""
    roster = run.book.roster
    frame = pd.DataFrame({
        "RosterRow": roster["row"], "Client": roster["client"], "UserID": roster["user"],
        "Name": roster["name"], "Type": roster["type"], "Billing": run.user_reasons().to_numpy(),
    })
    for col in ("Client", "UserID", "Name", "Type"):
        text = frame[col].astype("str")
        risky = text.str.match(r"^[=+\-@\t\r\n]")
        frame[col] = text.where(~risky, "'" + text)
    return str(frame.to_csv(index=False, lineterminator="\r\n"))


def priced_run(path: Path) -> Run:
    with FileBook(path) as wb:
        book, period = validated(wb)
        return invoice.priced(wb, book, period)[0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A generated MSP book: 4,000 users of 40 clients with hires, leavers, duplicates and every user type."""
    path = tmp_path_factory.mktemp("generated") / "msp.xlsm"
    subprocess.run([sys.executable, "-m", "benchmarks.cli", "--generate", str(path), "--users", "4000",
                    "--clients", "40"], cwd=ROOT, check=True, capture_output=True)
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.mark.parametrize("book", ["template", "generated"])
def test_users_csv_is_the_same_bytes_as_before(book: str, request: pytest.FixtureRequest) -> None:
    run = priced_run(TEMPLATE if book == "template" else request.getfixturevalue("generated"))
    text = users_csv(run)
    assert text == reference_users_csv(run)
    assert len(text.splitlines()) == len(run.book.roster) + 1
    if book == "generated":  # the book exercises more than one kind of reason
        kinds = {r.split(":")[0] for r in run.user_reasons()}
        assert {"billable", "not billable"} <= kinds


def test_hostile_text_is_neutralised_and_quoted_as_the_csv_module_does() -> None:
    run = priced_run(TEMPLATE)
    roster = run.book.roster.copy()
    evil = ["=HYPERLINK(\"x\")", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "+1", "-2", "@sum", "\tTab", "",
            "plain", "ünïcode, “quoted”", " lead", "'quoted'"]
    k = len(roster)
    for j, col in enumerate(("client", "user", "name", "type")):
        values = [evil[(i + j) % len(evil)] for i in range(k)]
        values[j] = None  # an empty cell
        roster[col] = pd.Series(values, dtype="str", index=roster.index)
    why = pd.Series([evil[i % len(evil)] + " reason, with a comma" if i % 3 else "billable: Employee"
                     for i in range(k)], dtype="str")
    hostile = Run(replace(run.book, roster=roster), run.period, run.invoices, run.skipped, lambda: why)
    assert users_csv(hostile) == reference_users_csv(hostile)
    assert users_csv(hostile, chunk=7) == reference_users_csv(hostile)  # in several chunks


def test_reasons_match_row_by_row_reasons_on_every_case() -> None:
    """A synthetic roster hitting every reason in every order of precedence, with unknown and empty types."""
    rng = np.random.default_rng(12)
    n = 5000
    types = {"employee": UserType("Employee", Billable.YES, 0, "A person."),
             "intern": UserType("Intern", Billable.YES, 5, ""),
             "service": UserType("Service", Billable.NO, 0, "A service account."),
             "guest": UserType("Guest", Billable.NO, 0, ""),
             "shared": UserType("Shared", Billable.DEVICE, 0, "")}
    raw = np.array(["Employee", "Intern", "Service", "Guest", "Shared", "Robot", "Odd, 'type'", None], dtype=object)
    chosen = raw[rng.integers(0, len(raw), n)]
    type_col = pd.Series(chosen, dtype="str")
    first = day_number(pd.Timestamp("2026-11-01").date())
    days = 30
    start = np.where(rng.random(n) < 0.5, SINCE_EVER, first + rng.integers(-60, 40, n))
    end = np.where(rng.random(n) < 0.5, FOREVER, first + rng.integers(-40, 60, n))
    end = np.maximum(end, start)
    roster = pd.DataFrame({
        "type": type_col,
        "type_key": type_col.str.strip().str.lower().astype("category"),
        "status": pd.Series(np.where(rng.random(n) < 0.1, "disabled", "active"), dtype="category"),
        "start": start.astype(np.int64), "end": end.astype(np.int64),
    })
    counted = rng.random(n) < 0.6
    devices = rng.random(n) < 0.05
    active_days = rng.integers(0, days + 1, n).astype(np.int64)
    client_ok = rng.random(n) < 0.95
    got = reasons(roster, types, counted, devices, active_days, first, days, client_ok)
    want = reference_reasons(roster, types, counted, devices, active_days, first, days, client_ok)
    assert got.tolist() == want
    kinds = {w.split(":")[0] + (":" + w.split(":")[1].split()[0] if ":" in w else "") for w in want}
    assert len(kinds) >= 6, kinds  # the synthetic roster reaches the many cases
    spans = [w for w in want if ", active " in w]
    assert spans and any("not in UserTypes" in w and "nan" in w for w in want)


def test_reasons_of_an_empty_roster() -> None:
    roster = pd.DataFrame({"type": pd.Series([], dtype="str"), "type_key": pd.Series([], dtype="category"),
                           "status": pd.Series([], dtype="category"), "start": np.array([], dtype=np.int64),
                           "end": np.array([], dtype=np.int64)})
    empty_b = np.array([], dtype=bool)
    got = reasons(roster, {}, empty_b, empty_b, np.array([], dtype=np.int64), 20000, 30, empty_b)
    assert got.tolist() == []
