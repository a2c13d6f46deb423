"""Vendor exports → Roster rows for one client (SPEC §8, first half). Pure: reads, never writes.

``read_export(data, source)`` reads a user/contact export from Microsoft 365 or a PSA
(ConnectWise PSA, Autotask, HaloPSA) and returns one :class:`ImportedUser` per distinct
user plus the problems found on the way. CSV (any of ``,`` ``;`` tab; UTF-8 with or
without BOM, UTF-16, Windows-1252) and, when python-calamine is available, .xlsx.

Column names. Headers are matched case-insensitively ignoring everything but letters,
digits and ``#`` ("User principal name" = "userPrincipalName" = "USER_PRINCIPAL_NAME").
Each field accepts a few aliases, listed in ``_COLUMNS``:

* Microsoft 365 admin center, Users > Active users > Export users: "User principal name",
  "Display name", "First name", "Last name", "Licenses", "Block credential", "When created",
  "Usage location", "Object Id", "Proxy addresses". Licences are joined with "+"; an account
  without one shows "Unlicensed". Only partly confirmed from public sources (see the report);
  Graph/Entra names (userPrincipalName, displayName, accountEnabled, userType, createdDateTime,
  assignedLicenses) are accepted too, and an Exchange "Recipient type details" column if the
  export was joined with a mailbox report.
* ConnectWise PSA contacts: API names (firstName, lastName, company, inactiveFlag, types,
  defaultEmail) confirmed from the REST schema; grid-export headers ("First Name", "Last Name",
  "Company", "Email", "Inactive", "Type") unconfirmed, accepted as aliases.
* Autotask contacts: API names (firstName, lastName, emailAddress, isActive, companyID,
  createDate) confirmed; export headers ("First Name", "Last Name", "Email Address", "Active",
  "Account"/"Company") unconfirmed, accepted as aliases.
* HaloPSA users: API names (name, firstname, surname, emailaddress, inactive, client_name,
  site_name, login) confirmed; export headers unconfirmed, accepted as aliases.

Classification (first matching rule decides the type; status and licence are independent):

* ``#EXT#`` in the UPN, or a "User type" of Guest → Guest, not billable.
* A mailbox type column (RecipientTypeDetails: SharedMailbox / RoomMailbox / EquipmentMailbox)
  → Shared / Room. Without one (the plain admin-center export does not say), an *unlicensed*
  account whose address or name looks like a room (room, boardroom, conference, meeting) →
  Room, like a shared mailbox (info@, sales@, support@, accounts@, ...) → Shared, like a
  service account by its address (svc-, admin@, scanner, noreply, sync, backup) → Service;
  the reason says it was guessed.
* Everyone else → Employee.
* Block credential true (or accountEnabled false) → Disabled, not billable ("sign-in blocked").
* Licenses blank or "Unlicensed" → not billable ("no licence"); only free licences (names with
  "free") → not billable ("only free licences").
* PSA contacts: inactive → Disabled, not billable ("inactive in PSA"); ConnectWise contact type
  "No Longer Employed"/"Former Employee" → Disabled too.

Problems: fatal ones (file too large, unreadable, no header, a required column missing)
raise :class:`InputProblems` — nothing is half-returned. Row-level ones (no user id, bad date,
duplicate user, ragged row) come back in ``ImportResult.problems``; an *error* there means a
row was left out, so a sync must not end-date users on such an import (see ``ImportResult.ok``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perseat_addin.cells import cell_text
from perseat_addin.errors import InputProblems, Problem
from perseat_addin.imports.exportfile import (
    Dates,
    Row,
    export_records,
    is_active,
    load_export,
    match_headers,
    norm,
    row_reader,
    yes_no,
)
from perseat_addin.imports.mappings import SOURCES, Mapping

_NOT_BILLED_TYPES = {"guest", "shared", "service", "room"}


@dataclass(frozen=True)
class ImportedUser:
    """One user as the vendor reports it, mapped to Roster columns."""

    user_id: str  # UPN or e-mail, trimmed; the Roster UserID
    name: str
    email: str
    type: str  # a UserTypes name: Employee, Guest, Service, Room, Shared
    status: str  # "Active" | "Disabled"
    billable_hint: bool
    reason: str
    source: str  # "Microsoft 365", "ConnectWise PSA", ...
    source_row: int  # line (CSV) or row (xlsx) number in the file
    created: dt.date | None = None
    company: str = ""  # the company the export puts the user in (PSA exports), if any


@dataclass
class ImportResult:
    """Users read from one export and what was wrong with it."""

    rows: list[ImportedUser]
    problems: list[Problem]
    source: str = ""
    file: str = ""
    columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row was left out (no error-severity problem)."""
        return not any(p.severity == "error" for p in self.problems)
_PRIMARY_SMTP = re.compile(r"SMTP:([^\s+;,]+)")
_LICENCE_SEP = re.compile(r"[+;|]")


# field → header aliases (first is the vendor's own name, used in messages)
_M365: dict[str, tuple[str, ...]] = {
    "user_id": ("User principal name", "userPrincipalName", "UPN", "Sign-in name", "Username"),
    "name": ("Display name", "displayName", "Name"),
    "first": ("First name", "givenName"),
    "last": ("Last name", "surname"),
    "email": ("Mail", "Email", "Email address", "Primary SMTP address", "PrimarySmtpAddress"),
    "proxy": ("Proxy addresses", "proxyAddresses"),
    "licenses": ("Licenses", "Licences", "Assigned licenses", "assignedLicenses", "Is licensed", "isLicensed"),
    "blocked": ("Block credential", "Sign-in blocked", "BlockCredential", "Sign in status"),
    "enabled": ("Account enabled", "accountEnabled"),
    "created": ("When created", "createdDateTime", "Created", "WhenCreated"),
    "user_type": ("User type", "userType"),
    "mailbox": ("Recipient type details", "RecipientTypeDetails", "Recipient type", "Mailbox type"),
}
_CONNECTWISE: dict[str, tuple[str, ...]] = {
    "email": ("Email", "Default Email", "defaultEmail", "Email Address", "E-mail", "communicationItems"),
    "name": ("Name", "Contact Name", "Full Name"),
    "first": ("First Name", "firstName"),
    "last": ("Last Name", "lastName"),
    "inactive": ("Inactive", "Inactive Flag", "inactiveFlag"),
    "active": ("Active",),
    "status": ("Status",),
    "contact_type": ("Type", "Contact Type", "types"),
    "company": ("Company", "Company Name", "company"),
    "created": ("Date Entered", "dateEntered", "Created"),
}
_AUTOTASK: dict[str, tuple[str, ...]] = {
    "email": ("Email Address", "emailAddress", "Email", "E-mail"),
    "name": ("Name", "Contact Name", "Full Name", "Contact"),
    "first": ("First Name", "firstName"),
    "last": ("Last Name", "lastName"),
    "active": ("Active", "isActive", "Is Active"),
    "inactive": ("Inactive",),
    "status": ("Status",),
    "company": ("Account", "Account Name", "Company", "Company Name", "Organization", "companyID"),
    "created": ("Create Date", "createDate", "Created", "Date Created"),
}
_HALOPSA: dict[str, tuple[str, ...]] = {
    "email": ("Email Address", "emailaddress", "Email", "E-mail", "login"),
    "name": ("Name", "User", "User Name", "Full Name"),
    "first": ("First Name", "firstname"),
    "last": ("Surname", "Last Name", "surname"),
    "inactive": ("Inactive", "inactive", "Is Inactive"),
    "active": ("Active",),
    "status": ("Status",),
    "company": ("Client", "Client Name", "client_name", "Customer", "Customer Name"),
    "site": ("Site", "Site Name", "site_name"),
    "created": ("Date Created", "datecreated", "Created"),
}
_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "m365": _M365,
    "connectwise": _CONNECTWISE,
    "autotask": _AUTOTASK,
    "halopsa": _HALOPSA,
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "m365": ("user_id", "licenses"),
    "connectwise": ("email",),
    "autotask": ("email",),
    "halopsa": ("email",),
}


_SHARED_WORDS = re.compile(
    r"^(info|sales|support|helpdesk|help|office|reception|accounts|accounting|billing|finance|"
    r"invoices?|hr|jobs|careers|contact|enquiries|inquiries|hello|marketing|orders|team|shared|mailbox)"
    r"([._-].*)?$")
_ROOM_WORDS = re.compile(r"\b(room|boardroom|conference|meeting|huddle|projector|equipment|resource)\b|room\b")
_SERVICE_WORDS = re.compile(r"^(svc|srv|service|admin|administrator)([._\d-]|$)|(^|[._-])(scan|scanner|scan2\w*|"
                            r"no-?reply|do-?not-?reply|sync|backup|mfp|printer|copier|ldap|smtp)([._\d-]|$)")


def _guess_mailbox(upn: str, name: str) -> tuple[str, str] | None:
    """Unlicensed account → (type, reason) when its address or name says what it is."""
    local = upn.split("@", 1)[0].lower()
    text = f"{local} {name.lower()}"
    if _ROOM_WORDS.search(text):
        return "Room", f"room or equipment mailbox (guessed from {upn!r})"
    if _SERVICE_WORDS.search(local):
        return "Service", f"service account (guessed from {upn!r})"
    if _SHARED_WORDS.match(local):
        return "Shared", f"shared mailbox (guessed from {upn!r})"
    return None


_MAILBOX_TYPES = {
    "sharedmailbox": ("Shared", "shared mailbox"),
    "shared": ("Shared", "shared mailbox"),
    "roommailbox": ("Room", "room mailbox"),
    "room": ("Room", "room mailbox"),
    "equipmentmailbox": ("Room", "equipment mailbox"),
    "equipment": ("Room", "equipment mailbox"),
    "schedulingmailbox": ("Room", "scheduling mailbox"),
}
_FORMER = re.compile(r"no longer employed|former|terminated|left company|inactive", re.I)


def _map_headers(headers: list[str], source: str | Mapping, shown: str,
                 line: int) -> tuple[dict[str, int], dict[str, str]]:
    """Field → column index and field → header as written; InputProblems if a required field is missing."""
    required: tuple[str, ...]
    if isinstance(source, Mapping):
        wanted, required, label = source.aliases(), ("user_id",), source.name
    else:
        wanted, required, label = _COLUMNS[source], _REQUIRED[source], SOURCES[source]
    index, names = match_headers(headers, wanted)
    missing = [f for f in required if f not in index]
    if isinstance(source, Mapping):
        missing += [f for f in wanted if f not in index and f not in missing]
    if missing:
        found = ", ".join(f'"{h.strip()}"' for h in headers if h.strip()) or "none"
        also = {f: f" (also accepted: {', '.join(repr(a) for a in wanted[f][1:])})" if wanted[f][1:] else ""
                for f in missing}
        fix = ("fix the Column in the workbook's Mappings table, or export again with that column"
               if isinstance(source, Mapping) else "export again with the {col!r} column, or rename the column "
               "holding it")
        raise InputProblems([Problem(
            shown, line, wanted[f][0],
            f'no "{wanted[f][0]}" column in this {label} export (columns found: {found})',
            fix.format(col=wanted[f][0]) + also[f]) for f in missing])
    return index, names


def detect_source(data: bytes | str | Path, mappings: Sequence[Mapping] = (), *,
                  name: str | None = None) -> str | Mapping:
    """Which importer reads this export: a saved mapping whose columns are all there, else the built-in
    source whose columns match best (Microsoft 365 needs its UPN and Licenses columns)."""
    content, shown = load_export(data, name)
    first = next(export_records(content, shown, []), None)
    headers = [cell_text(h) for h in first[1]] if first else []
    present = {norm(h) for h in headers if h.strip()}
    for m in mappings:
        if all(norm(h) in present for h in m.columns.values()):
            return m
    scores: dict[str, int] = {}
    for key, fields in _COLUMNS.items():
        matched = {f for f, aliases in fields.items() if any(norm(a) in present for a in aliases)}
        if all(f in matched for f in _REQUIRED[key]):
            scores[key] = len(matched)
    if not scores:
        found = ", ".join(f'"{h.strip()}"' for h in headers if h.strip()) or "none"
        raise InputProblems([Problem(
            shown, first[0] if first else None, None,
            f"cannot tell which system this export comes from (columns found: {found})",
            "export users from the Microsoft 365 admin center (Users ▸ Active users ▸ Export users) or contacts "
            "from ConnectWise PSA, Autotask or HaloPSA; for any other file add its columns to the Mappings table")])
    return max(scores, key=lambda k: scores[k])  # ties: the first in SOURCES


def read_export(data: bytes | str | Path, source: str | Mapping, *, name: str | None = None) -> ImportResult:
    """Read a vendor export into Roster rows for one client.

    ``data`` is the file's bytes, its text, or a ``Path`` (a ``str`` without a newline ending in
    .csv/.txt/.tsv/.xlsx/.xlsm is taken as a path). ``source`` is one of ``SOURCES``, or a
    :class:`Mapping` saved in the workbook for any other export. ``name`` names the file in
    problems (default: the file name, or "import").
    """
    key: str | Mapping = source
    if not isinstance(source, Mapping):
        key = source.strip().lower()
        if key not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    label = key.name if isinstance(key, Mapping) else SOURCES[key]
    content, shown = load_export(data, name)
    problems: list[Problem] = []
    records = export_records(content, shown, problems)
    first = next(records, None)
    if first is None:
        raise InputProblems([Problem(shown, None, None, "the export is empty",
                                     f"export the users from {label} again")])
    header_line, header_cells = first
    headers = [cell_text(h) for h in header_cells]
    index, names = _map_headers(headers, key, shown, header_line)
    rows = _convert(records, key, index, names, len(headers), shown, problems)
    return ImportResult(rows, problems, label, shown, headers)


def read_records(headers: Sequence[str], records: Iterable[tuple[int, Sequence[Any]]], source: str, *,
                 shown: str, problems: Sequence[Problem] = ()) -> ImportResult:
    """Records a live source fetched (its API's field names as ``headers``, one cell list per user, numbered) →
    Roster rows, by exactly the rules :func:`read_export` applies to an export of ``source`` with those columns."""
    key = source.strip().lower()
    if key not in _COLUMNS:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(_COLUMNS)}")
    found = list(problems)
    heads = [str(h) for h in headers]
    index, names = _map_headers(heads, key, shown, 0)
    rows = _convert(((n, list(cells)) for n, cells in records), key, index, names, len(heads), shown, found)
    return ImportResult(rows, found, SOURCES[key], shown, heads)


def _convert(records: Iterator[tuple[int, list[Any]]], key: str | Mapping, index: dict[str, int],
             names: dict[str, str], width: int, shown: str, problems: list[Problem]) -> list[ImportedUser]:
    label = key.name if isinstance(key, Mapping) else SOURCES[key]
    is_m365 = key == "m365"
    mapped = isinstance(key, Mapping)
    id_field = "user_id" if is_m365 or mapped else "email"
    id_col = names[id_field]
    dates = Dates()
    out: list[ImportedUser] = []
    seen: dict[str, int] = {}  # lower-case user id → index in out
    dupes: dict[str, list[int]] = {}
    ragged: list[int] = []
    companies: dict[str, int] = {}
    row = row_reader(index)
    m365_memo: dict[tuple[str, ...], _Known] = {}
    for line, cells in records:
        if len(cells) > width and any(cell_text(c) for c in cells[width:]):
            ragged.append(line)
        r = row(cells)
        uid = r.get(id_field)
        if not uid:
            problems.append(Problem(shown, line, id_col, f"no {id_col} on this line; the line was left out",
                                    f"fill in {id_col} or delete the line"))
            continue
        low = uid.lower()
        if low in seen:
            dupes.setdefault(low, [out[seen[low]].source_row]).append(line)
            continue
        company = r.get("company")
        if company:
            companies[company] = companies.get(company, 0) + 1
        created: dt.date | None = None
        if "created" in index:
            got = dates.parse(r.raw("created"))
            if got == "ambiguous":
                dates.ambiguous.append((len(out), names["created"], r.get("created")))
            elif isinstance(got, str):
                problems.append(Problem(shown, line, names["created"], f"{got}; created date left blank",
                                        "type the date as YYYY-MM-DD", "warning"))
            else:
                created = got
        if is_m365:
            user = _m365_user(r, uid, line, created, label, names, shown, problems, m365_memo)
        elif mapped:
            user = _mapped_user(r, uid, line, created, label, names, shown, problems)
        else:
            user = _psa_user(r, uid, line, created, label, names, shown, problems)
        seen[low] = len(out)
        out.append(user)
    for i, col, text in dates.ambiguous:
        d = dates.resolve(text)
        u = out[i]
        if d is None:
            problems.append(Problem(shown, u.source_row, col, f"{text!r} could be day/month or month/day; "
                                    "created date left blank", "type the date as YYYY-MM-DD", "warning"))
        else:
            out[i] = dataclasses.replace(u, created=d)
    for low, lines in dupes.items():
        first_user = out[seen[low]]
        problems.append(Problem(
            shown, lines[0], id_col,
            f"{first_user.user_id} appears {len(lines)} times (lines {', '.join(map(str, lines))}); "
            f"kept line {lines[0]}", "remove the duplicate lines from the export", "warning"))
    if ragged:
        shown_lines = ", ".join(map(str, ragged[:10])) + (" ..." if len(ragged) > 10 else "")
        problems.append(Problem(shown, ragged[0], None,
                                f"{len(ragged)} line(s) have more fields than the header ({shown_lines}); "
                                "extra fields ignored", "check for an unquoted separator in a value", "warning"))
    if len(companies) > 1:
        top = sorted(companies, key=lambda c: -companies[c])
        problems.append(Problem(shown, None, names.get("company"),
                                f"the export holds {len(companies)} companies ({', '.join(top[:5])}"
                                f"{', ...' if len(top) > 5 else ''}); a roster import is for one client",
                                "filter the export to one client", "warning"))
    return out


_Known = tuple[tuple[bool, bool, tuple[str, ...]], tuple[str, str, bool, str] | None]
"""What one licence/state combination of Microsoft 365 accounts gives: (a bad Block credential value, blocked,
the licences), and the classification when it does not depend on the account's name."""


def _m365_user(r: Row, upn: str, line: int, created: dt.date | None, label: str, names: dict[str, str],
               shown: str, problems: list[Problem],
               memo: dict[tuple[str, ...], _Known]) -> ImportedUser:
    get = r.fields()
    name = get("name", "") or " ".join(p for p in (get("first", ""), get("last", "")) if p)
    email = m365_email(upn, get("email", ""), get("user_type", ""), get("proxy", ""))
    guest = "#ext#" in upn.lower()
    key = (get("licenses", ""), get("blocked", ""), get("enabled", ""), get("user_type", ""), get("mailbox", ""),
           "guest" if guest else "")
    known = memo.get(key)  # most accounts share a few licence/state combinations: each is worked out once
    if known is None:
        lic_text, blocked_text, enabled_text, user_type, mailbox = key[:5]
        lic_flag = (yes_no(lic_text) if names.get("licenses", "").replace(" ", "").lower() in ("islicensed",)
                    else None)
        if lic_flag is not None:
            licences: list[str] = ["licensed"] if lic_flag else []
        else:
            licences = [x.strip() for x in _LICENCE_SEP.split(lic_text)
                        if x.strip() and x.strip().lower() != "unlicensed"]
        blocked = yes_no(blocked_text) if "blocked" in names else None
        bad_blocked = "blocked" in names and blocked is None
        if blocked is None and "enabled" in names:
            enabled = yes_no(enabled_text)
            blocked = None if enabled is None else not enabled
        # the name and UPN matter only to an unlicensed member account with no known mailbox type
        alike = guest or user_type.strip().lower() == "guest" or bool(_MAILBOX_TYPES.get(norm(mailbox))) or \
            bool(licences)
        known = (bad_blocked, bool(blocked), tuple(licences)), \
            (classify_m365(upn, name, licences, bool(blocked), user_type, mailbox) if alike else None)
        memo[key] = known
    (bad_blocked, is_blocked, lic), verdict = known
    if bad_blocked:
        problems.append(Problem(shown, line, names["blocked"], f"{r.get('blocked')!r} is not True or False",
                                "expected True or False; read as not blocked", "warning"))
    if verdict is None:
        verdict = classify_m365(upn, name, list(lic), is_blocked, key[3], key[4])
    typ, status, billable, reason = verdict
    return ImportedUser(upn, name, email, typ, status, billable, reason, label, line, created)


def m365_email(upn: str, mail: str, user_type: str = "", proxies: str = "") -> str:
    """A Microsoft 365 user's e-mail: its mail address, else the primary SMTP proxy address, else its UPN
    (never a guest's UPN, which is not an address)."""
    if not mail and proxies:
        m = _PRIMARY_SMTP.search(proxies)  # upper-case SMTP: marks the primary address
        mail = m.group(1) if m and m.group(0).startswith("SMTP:") else ""
    guest = "#ext#" in upn.lower() or user_type.strip().lower() == "guest"
    return mail or ("" if guest else upn)


def classify_m365(upn: str, name: str, licences: Sequence[str], blocked: bool, user_type: str = "",
                  mailbox: str = "") -> tuple[str, str, bool, str]:
    """(Type, Status, billable, reason) of one Microsoft 365 account, by the rules of the module docstring.

    The one rule for a Microsoft 365 user, whether it comes from the admin-center export or from
    Microsoft Graph: ``licences`` are the names of its licences (none: unlicensed), ``blocked`` is sign-in
    blocked (accountEnabled false), ``user_type`` the Entra user type (Member/Guest), ``mailbox`` an
    Exchange recipient type when known."""
    guest = "#ext#" in upn.lower() or user_type.strip().lower() == "guest"
    reasons: list[str] = []
    typ = "Employee"
    known_mailbox = _MAILBOX_TYPES.get(norm(mailbox))
    if guest:
        typ = "Guest"
        reasons.append("guest (#EXT# in UPN)" if "#ext#" in upn.lower() else "guest (User type Guest)")
    elif known_mailbox:
        typ, why = known_mailbox
        reasons.append(why)
    elif not licences:
        guess = _guess_mailbox(upn, name)
        if guess:
            typ, why = guess
            reasons.append(why)
    status = "Active"
    if blocked:
        status = "Disabled"
        reasons.append("sign-in blocked")
    if not licences:
        reasons.append("no licence")
    elif all("free" in x.lower() for x in licences):
        reasons.append("only free licences")
    billable = typ == "Employee" and status == "Active" and not reasons
    if billable:
        reason = f"billable: licensed ({', '.join(licences)})"
    else:
        reason = "not billable: " + "; ".join(reasons or [f"type {typ}"])
    return typ, status, billable, reason


def _psa_user(r: Row, email: str, line: int, created: dt.date | None, label: str, names: dict[str, str],
              shown: str, problems: list[Problem]) -> ImportedUser:
    name = r.get("name") or " ".join(p for p in (r.get("first"), r.get("last")) if p)
    inactive: bool | None = None
    col = value = ""
    for f, means_inactive in (("inactive", True), ("active", False), ("status", False)):
        if f in names:
            col, value = names[f], r.get(f)
            # a blank Inactive flag or Status means active; a blank Active flag says nothing
            blank: bool | None = None if f == "active" else True
            active = is_active(value, means_inactive) if value else blank
            inactive = None if active is None else not active
            break
    if col and inactive is None:
        problems.append(Problem(shown, line, col, f"{value!r} is not Yes or No",
                                "expected Yes/No or True/False; read as active", "warning"))
    reasons: list[str] = []
    status = "Active"
    if inactive:
        status = "Disabled"
        reasons.append("inactive in PSA")
    ctype = r.get("contact_type")
    if ctype and _FORMER.search(ctype) and not inactive:
        status = "Disabled"
        reasons.append(f"contact type {ctype!r}")
    if "@" not in email:
        problems.append(Problem(shown, line, names["email"], f"{email!r} does not look like an e-mail address",
                                "check the contact's e-mail", "warning"))
    billable = not reasons
    reason = "billable: active contact" if billable else "not billable: " + "; ".join(reasons)
    return ImportedUser(email, name, email, "Employee", status, billable, reason, label, line, created,
                        r.get("company"))


def _mapped_user(r: Row, uid: str, line: int, created: dt.date | None, label: str, names: dict[str, str],
                 shown: str, problems: list[Problem]) -> ImportedUser:
    """A user from an export read through a saved mapping: the columns say what they say, nothing guessed."""
    name = r.get("name") or " ".join(p for p in (r.get("first"), r.get("last")) if p)
    email = r.get("email") or (uid if "@" in uid else "")
    reasons: list[str] = []
    typ = r.get("type") or "Employee"
    if "#ext#" in uid.lower():
        typ = "Guest"
    if typ.lower() in _NOT_BILLED_TYPES:
        typ = typ.title()
        reasons.append(f"type {typ}")
    status = "Active"
    for f, means_inactive in (("status", False), ("blocked", True)):
        value = r.get(f)
        if f not in names or not value:
            continue
        active = is_active(value, means_inactive)
        if active is None:
            problems.append(Problem(shown, line, names[f], f"{value!r} is not a status this importer knows",
                                    "use Active/Inactive, Enabled/Disabled, Yes/No or True/False; read as "
                                    "active", "warning"))
        elif not active:
            status = "Disabled"
            reasons.append(f"{names[f]} {value!r}")
    if "licenses" in names:
        lic = r.get("licenses")
        flag = yes_no(lic)
        if flag is False or lic.strip().lower() == "unlicensed":
            reasons.append("no licence")
    billable = not reasons
    reason = "billable" if billable else "not billable: " + "; ".join(reasons)
    return ImportedUser(uid, name, email, typ, status, billable, reason, label, line, created, r.get("company"))
