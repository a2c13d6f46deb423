"""ConnectWise PSA API objects → Roster rows and Usage rows, by the file importers' own rules.

Pure: the JSON objects :mod:`perseat_addin.sources.connectwise` fetched in, the same
:class:`~perseat_addin.imports.roster.ImportResult` / :class:`~perseat_addin.imports.usage.UsageImport`
out that a ConnectWise export of the same records gives. Each object becomes one row under the API's
field names, which are the importers' own column names, and goes through
:func:`~perseat_addin.imports.roster.read_records` / :func:`~perseat_addin.imports.usage.read_usage_records`:

* a contact (``/company/contacts``): its default ``communicationItems`` e-mail is the UserID and Email
  (the API has no top-level e-mail); ``firstName`` + ``lastName`` the Name; ``inactiveFlag`` true →
  Disabled ("inactive in PSA"); a contact type such as "No Longer Employed" → Disabled; ``company.name``
  the company; ``_info.dateEntered`` (or ``dateEntered``) the created date;
* a time entry (``/time/entries``): ``id`` the Ref, ``timeStart`` the Date, ``actualHours`` the Hours,
  ``chargeToId`` the Ticket when ``chargeToType`` is a ticket, ``billableOption`` the Billable flag
  (DoNotBill and NoCharge: Hours kept, Billable = No).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from perseat_addin.imports.roster import ImportResult, read_records
from perseat_addin.imports.usage import UsageImport, read_usage_records

CONTACT_FIELDS = ("firstName", "lastName", "Email", "inactiveFlag", "types", "company", "dateEntered")
"""The columns a contact becomes (the ConnectWise importer's API-named columns)."""

TIME_FIELDS = ("id", "company/name", "timeStart", "actualHours", "chargeToId", "chargeToType", "billableOption")
"""The columns a time entry becomes (the ``connectwise-time`` importer's API-named columns)."""


def contact_email(contact: Mapping[str, Any]) -> str:
    """A contact's e-mail: its default Email communication item, else its first one ("" when none)."""
    emails = [c for c in contact.get("communicationItems") or () if isinstance(c, Mapping) and _is_email(c)
              and str(c.get("value") or "").strip()]
    chosen = next((c for c in emails if c.get("defaultFlag") is True), emails[0] if emails else None)
    return str(chosen.get("value") or "").strip() if chosen is not None else ""


def _is_email(item: Mapping[str, Any]) -> bool:
    kind = item.get("communicationType")
    if not kind:
        t = item.get("type")
        kind = t.get("name") if isinstance(t, Mapping) else t
    return str(kind or "").strip().lower() in ("email", "e-mail")


def _name(value: Any) -> str:
    """The ``name`` of a reference object (``{"id", "name"}``), or the value itself."""
    if isinstance(value, Mapping):
        return str(value.get("name") or value.get("identifier") or "")
    return "" if value is None else str(value)


def contact_cells(contact: Mapping[str, Any]) -> list[Any]:
    """One contact as a row under :data:`CONTACT_FIELDS`."""
    info = contact.get("_info")
    entered = contact.get("dateEntered") or (info.get("dateEntered") if isinstance(info, Mapping) else None)
    types = ", ".join(_name(t) for t in contact.get("types") or () if _name(t))
    inactive = contact.get("inactiveFlag")
    return [contact.get("firstName") or "", contact.get("lastName") or "", contact_email(contact),
            "" if inactive is None else ("True" if inactive is True else "False" if inactive is False else inactive),
            types, _name(contact.get("company")), entered or ""]


def read_contacts(contacts: Iterable[Mapping[str, Any]], *, company: str) -> ImportResult:
    """ConnectWise contacts of one company (``company``: its id, for messages) → an :class:`ImportResult` with
    the ConnectWise importer's rules (source "ConnectWise PSA")."""
    rows = ((n, contact_cells(c)) for n, c in enumerate(contacts, start=1))
    return read_records(CONTACT_FIELDS, rows, "connectwise", shown=f"ConnectWise PSA, company {company}")


def time_cells(entry: Mapping[str, Any], client: str) -> list[Any]:
    """One time entry as a row under :data:`TIME_FIELDS` (its company named as the workbook names the client)."""
    return [entry.get("id"), client, entry.get("timeStart") or "", entry.get("actualHours"),
            entry.get("chargeToId"), entry.get("chargeToType") or "", entry.get("billableOption") or ""]


def read_time_entries(entries: Iterable[Mapping[str, Any]], *, client: str, company: str,
                      known_tickets: Iterable[str] = ()) -> UsageImport:
    """ConnectWise time entries of one company (fetched by its id, so every entry is ``client``'s) → Usage rows
    by the ``connectwise-time`` importer's rules (source "ConnectWise PSA time entries", Ref = entry id)."""
    rows = ((n, time_cells(e, client)) for n, e in enumerate(entries, start=1))
    return read_usage_records(TIME_FIELDS, rows, "connectwise-time", [client], known_tickets=known_tickets,
                              shown=f"ConnectWise PSA time entries, company {company}")


__all__ = ["CONTACT_FIELDS", "TIME_FIELDS", "contact_cells", "contact_email", "read_contacts", "read_time_entries",
           "time_cells"]
