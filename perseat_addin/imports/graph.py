"""Microsoft Graph ``/users`` objects → Roster rows for one client, by the admin-center export's rules.

Pure: the JSON objects the Graph client fetched in, an :class:`~perseat_addin.imports.roster.ImportResult`
out, exactly as :func:`~perseat_addin.imports.roster.read_export` gives for the Microsoft 365 admin
center's user export of the same users. Both go through
:func:`~perseat_addin.imports.roster.classify_m365` and :func:`~perseat_addin.imports.roster.m365_email`:

* ``userPrincipalName`` is the UserID; ``displayName`` the Name; ``mail`` the Email (else the UPN,
  never a guest's);
* ``userType`` Guest or ``#EXT#`` in the UPN → Guest; ``accountEnabled`` false → Disabled
  ("sign-in blocked"); no ``assignedLicenses`` → not billable, and an unlicensed account whose
  address or name looks like a room, a shared mailbox or a service account gets that Type (guessed,
  as for the export: ``/users`` does not say which accounts are mailboxes);
* a licence is named by its SKU part number from ``/subscribedSkus`` (the export shows product names);
  the free SKUs in :data:`FREE_SKUS` (and any part number with FREE in it) count as free licences, so
  "only free licences" is not billable here either. Without SKU names a licence is named by its skuId.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from perseat_addin.errors import Problem
from perseat_addin.imports.mappings import SOURCES
from perseat_addin.imports.roster import ImportedUser, ImportResult, classify_m365, m365_email

USER_FIELDS = ("id", "displayName", "userPrincipalName", "mail", "accountEnabled", "userType", "assignedLicenses",
               "createdDateTime", "signInActivity")
"""The user properties a sync asks for (``$select``); Graph's default set leaves most of them out."""

FREE_SKUS = frozenset({"POWER_BI_STANDARD"})
"""SKU part numbers of free licences whose part number does not say FREE (Power BI's free licence is
"Microsoft Fabric (Free)" / "Power BI (free)" in the admin center)."""


def licence_name(sku_id: str, skus: Mapping[str, str]) -> str:
    """A licence as the rules read it: its SKU part number (marked free when it is), else its skuId."""
    part = skus.get(sku_id.lower(), "")
    if not part:
        return sku_id
    return f"{part} (free)" if part.upper() in FREE_SKUS else part


def created_date(text: Any) -> dt.date | None:
    """The day of a Graph ``createdDateTime`` (ISO 8601, UTC); None when absent or unreadable."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")).date()
    except ValueError:
        return None


def read_graph_users(users: Iterable[Mapping[str, Any]], skus: Mapping[str, str], *, tenant: str,
                     notes: Sequence[str] = ()) -> ImportResult:
    """Graph user objects of one tenant → :class:`ImportResult` (source "Microsoft 365", like the export).

    ``skus`` maps skuId (any case) → skuPartNumber. ``notes`` are things the fetch wants said (sign-in
    dates left out, licence names unavailable): they come back as warnings."""
    shown = f"Microsoft Graph, tenant {tenant}"
    label = SOURCES["m365"]
    skus = {k.lower(): v for k, v in skus.items()}
    problems = [Problem(shown, None, None, n, severity="warning") for n in notes]
    out: list[ImportedUser] = []
    seen: dict[str, int] = {}
    for n, u in enumerate(users, start=1):
        upn = str(u.get("userPrincipalName") or "").strip()
        if not upn:
            problems.append(Problem(shown, n, "userPrincipalName",
                                    f"user {u.get('id') or n} has no userPrincipalName; it was left out",
                                    "check the account in the Microsoft 365 admin center"))
            continue
        low = upn.lower()
        if low in seen:
            problems.append(Problem(shown, n, "userPrincipalName", f"{upn} came twice; kept the first",
                                    severity="warning"))
            continue
        name = str(u.get("displayName") or "").strip()
        user_type = str(u.get("userType") or "")
        licences = [licence_name(str(lic.get("skuId") or ""), skus)
                    for lic in u.get("assignedLicenses") or () if isinstance(lic, Mapping) and lic.get("skuId")]
        blocked = u.get("accountEnabled") is False
        typ, status, billable, reason = classify_m365(upn, name, licences, blocked, user_type)
        email = m365_email(upn, str(u.get("mail") or "").strip(), user_type)
        seen[low] = len(out)
        out.append(ImportedUser(upn, name, email, typ, status, billable, reason, label, n,
                                created_date(u.get("createdDateTime"))))
    return ImportResult(out, problems, label, shown, list(USER_FIELDS))


__all__ = ["FREE_SKUS", "USER_FIELDS", "created_date", "licence_name", "read_graph_users"]
