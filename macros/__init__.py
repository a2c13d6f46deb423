"""Ribbon actions (xlwings RunPython entry points): thin wrappers over :mod:`perseat_addin.tasks`.

Each button of the "Per-Seat Billing" tab calls a VBA callback that runs, e.g.::

    RunPython "import perseat_addin.macros as m; m.generate_invoices()"

on ``xw.Book.caller()``. :data:`ACTIONS` lists the buttons; the ribbon XML and
the VBA callback module are generated from it. A new action is one function
here (a one-liner over :func:`_perform`) plus one :class:`Action` entry.

Every macro takes an optional ``book``: None means the workbook that pressed
the button (``xw.Book.caller()``); anything implementing
:class:`perseat_addin.tasks.livebook.LiveBook` (a test stand-in), or an ``xw.Book``
opened from Python, is used as given. Importing this package does not import
xlwings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perseat_addin.tasks import check, credit, invoice, livebook, sync_source
from perseat_addin.tasks import import_roster as roster_task
from perseat_addin.tasks import report as report_task
from perseat_addin.tasks import schedule as schedule_task
from perseat_addin.tasks import send as send_task
from perseat_addin.tasks.livebook import LiveBook, Outcome


@dataclass(frozen=True)
class Action:
    """One ribbon button and the Python macro behind it."""

    id: str  # ribbon control id (unique within the tab)
    label: str  # button text
    macro: str  # function name in perseat_addin.macros, called with no arguments
    vba_sub: str  # VBA callback: Public Sub <vba_sub>(control As IRibbonControl)
    image_mso: str  # built-in Office icon (imageMso)
    screentip: str  # bold first line of the tooltip
    supertip: str  # the tooltip's explanation (also the Help box's text)
    file_prompt: str = ""  # when set, the button first asks for a file (title of Excel's Open dialog)

    @property
    def run_python(self) -> str:
        """The statement the VBA callback hands to ``RunPython`` (``PATH`` stands for the chosen file)."""
        arg = "PATH" if self.file_prompt else ""
        return f"import perseat_addin.macros as m; m.{self.macro}({arg})"


ACTIONS: tuple[Action, ...] = (
    Action("perseatGenerateInvoices", "Generate invoices", "generate_invoices", "PerseatGenerateInvoices",
           "FileSaveAsPdfOrXps", "Generate this month's invoices",
           "Prices every active client for BillingPeriod and records the invoices as Draft in the Invoices "
           "and InvoiceLines tables (replacing this month's earlier drafts, never Final invoices). Adds one "
           "printable sheet per invoice and writes the PDFs and the QuickBooks, Xero and users files to "
           "OutputFolder."),
    Action("perseatFinalizePeriod", "Finalize period", "finalize_period", "PerseatFinalizePeriod",
           "FileMarkAsFinal", "Finalize this month's invoices",
           "Marks BillingPeriod's draft invoices Final, moves NextInvoiceNumber and BillingPeriod on to the "
           "next month and saves the workbook. Refuses if the drafts no longer match the workbook, and asks first "
           "if the month has not ended. Recorded invoices are never changed again: a late roster change is "
           "billed as a correction on the next invoice, a mistake is corrected with a credit note."),
    Action("perseatCreditNote", "Credit note", "credit_note", "PerseatCreditNote", "ReviewRejectChange",
           "Credit a recorded invoice",
           "For the invoice whose row you selected in the Invoices table: asks whether to credit all of it, "
           "chosen lines or an amount, and why; shows the credit note, and on Yes records it at once (its own "
           "number from CreditPrefix and NextInvoiceNumber, Kind Credit, Corrects the invoice), draws its sheet "
           "titled Credit note, writes its PDF and the QuickBooks and Xero credit files to OutputFolder, and "
           "saves the workbook. Never more than what is left of the invoice."),
    Action("perseatSendInvoices", "Send invoices", "send_invoices", "PerseatSendInvoices", "FileSendAsAttachment",
           "E-mail each recorded invoice with its PDF",
           "For the latest finalized period: one e-mail per recorded invoice or credit note to the client's "
           "BillingEmail, from MSPName and MSPEmail, with EmailSubject and EmailBody filled in and the PDF "
           "attached. On Windows each is left in Outlook's Drafts folder for you to check and send; elsewhere "
           "as an .eml file in OutputFolder (open it in your mail program, then Send). Each is logged in "
           "ChangeLog; an invoice already drafted in Outlook or e-mailed is drafted again only after a Yes. "
           "The Invoices rows are not changed: mark them Sent yourself."),
    Action("perseatCheckWorkbook", "Check workbook", "check_workbook", "PerseatCheckWorkbook",
           "AcceptInvitation", "Check the workbook for problems",
           "Checks every table (Settings, Plans, Tiers, UserTypes, Clients, Roster, Devices, AddOns, Usage, "
           "Invoices) and lists every problem at once with its sheet, row, column and how to fix it. "
           "Changes nothing."),
    Action("perseatImportRoster", "Import roster", "import_roster", "PerseatImportRoster",
           "ImportTextFile", "Sync a user export into a client's Roster",
           "Asks for a Microsoft 365 user export, a ConnectWise PSA, Autotask or HaloPSA contact export, or any "
           "file with a column mapping in the Mappings table. Finds the client (the export's company, its users' "
           "e-mail domains, or the client row you selected), shows every change and the drift (licensed in the "
           "export, billable in the Roster, seats on the last invoice), and on Yes adds new users (from the day "
           "their account was created when that is after the last recorded invoice, else from today), "
           "ends missing ones yesterday and updates changed names, types and statuses. Never deletes a row; "
           "every change goes to ChangeLog. A PSA time-entry or ticket export (or a file with a saved Usage "
           "mapping) adds its new rows to the Usage table instead, after a preview.",
           file_prompt="Import roster: choose the user or contact export"),
    Action("perseatSyncSources", "Sync sources", "sync_sources", "PerseatSyncSources", "RefreshAll",
           "Sync users and time from Microsoft 365 or the PSA",
           "Asks which live source to read (Microsoft 365 for clients with a TenantID; the PSA named in Settings "
           "PSA for clients with a PSACompanyID), reads every such client's users (and, from a PSA, the month's "
           "time entries) with the credentials set up on this computer, and shows every change and the drift per "
           "client, as 'perseat sync' does. On Yes adds new users, ends missing ones and updates changed ones in the "
           "Roster, adds the new time to Usage, and logs every change in ChangeLog. A client that cannot be read "
           "changes nothing and says why; the others are still synced."),
    Action("perseatUsageReport", "Usage & pricing report", "usage_report", "PerseatUsageReport",
           "ChartInsert", "Who uses support most, and what to charge",
           "Adds (or refreshes) the Report sheet for BillingPeriod: per client, users, tickets and hours per user, "
           "revenue, cost to serve, margin and effective hourly rate, for the month and the last three months; "
           "clients far above the portfolio median; the per-user price that earns TargetMargin, the cheapest plan "
           "that covers the usage, volume-tier cliffs and small clients that need a minimum fee, each with its "
           "reason; and native charts. Changes no other sheet."),
    Action("perseatPriceSheet", "Price sheet & contract schedule", "price_sheet", "PerseatPriceSheet",
           "FileNew", "Schedule A: billable users and prices",
           "For the client whose row you selected in the Clients table (or, when none is selected and you answer "
           "Yes, for the price list and every active client): draws Schedule A — Billable users and prices on the "
           "Schedule A sheet, in contract words from UserTypes, the plan and its tiers, minimums, included hours, "
           "proration, add-ons, discount and tax, with worked examples priced exactly as the invoices are — and "
           "exports each as a PDF to OutputFolder/contracts. Changes no other sheet."),
    Action("perseatHelp", "Help", "show_help", "PerseatHelp", "Help", "What the Per-Seat Billing buttons do",
           "Shows what each button does and where the documentation is."),
)

DOCS = ("Documentation: the perseat-addin README (setup, the workbook's tables, the pricing rules). "
        "In a terminal, 'perseat --help' lists the commands; 'perseat check WORKBOOK' and 'perseat invoice "
        "WORKBOOK' do what Check workbook and Generate invoices do, without Excel.")

_LABELS = {a.macro: a.label for a in ACTIONS}


def _live(book: Any) -> LiveBook:
    """The workbook to act on: the caller's (RunPython), a LiveBook as given, or an xw.Book wrapped."""
    from .adapter import XlwingsBook, caller

    if book is None:
        return caller()
    if isinstance(book, LiveBook):
        return book
    return XlwingsBook(book)


def _perform(macro: str, action: Any, book: Any) -> Outcome:
    return livebook.perform(_live(book), f"{livebook.PREFIX}: {_LABELS[macro]}", action)


def generate_invoices(book: Any = None) -> Outcome:
    """Generate invoices: draft the month's invoices, invoice sheets, PDFs and accounting CSVs."""
    return _perform("generate_invoices", invoice.generate_invoices, book)


def finalize_period(book: Any = None) -> Outcome:
    """Finalize period: mark the month's drafts Final, advance the period, save."""
    return _perform("finalize_period", invoice.finalize_period, book)


def credit_note(book: Any = None) -> Outcome:
    """Credit note: credit the selected recorded invoice (all, lines or an amount) with a reason."""
    return _perform("credit_note", credit.credit_note_button, book)


def send_invoices(book: Any = None, outlook: send_task.Outlook | None = None) -> Outcome:
    """Send invoices: an e-mail draft per recorded invoice with its PDF (Outlook on Windows; .eml elsewhere)."""
    def act(live: LiveBook) -> Outcome:
        mail = outlook
        if mail is None and not isinstance(book, LiveBook):  # Excel itself: Outlook when this computer has it
            from .adapter import outlook as find_outlook

            mail = find_outlook()
        return send_task.send_invoices(live, mail)

    return _perform("send_invoices", act, book)


def check_workbook(book: Any = None) -> Outcome:
    """Check workbook: list every problem in one message box."""
    return _perform("check_workbook", check.check_workbook, book)


def import_roster(path: str | None = None, book: Any = None) -> Outcome:
    """Import roster: sync the export at ``path`` into its client's Roster after a Yes to the preview."""
    return _perform("import_roster", lambda live: roster_task.import_roster(live, path), book)


def sync_sources(book: Any = None) -> Outcome:
    """Sync sources: users (and a PSA's time) from the chosen live source, previewed, written on Yes."""
    return _perform("sync_sources", sync_source.sync_sources, book)


def usage_report(book: Any = None) -> Outcome:
    """Usage & pricing report: the Report sheet with its charts."""
    return _perform("usage_report", report_task.usage_report, book)


def price_sheet(book: Any = None) -> Outcome:
    """Price sheet & contract schedule: Schedule A for the selected client, or the price list and every client."""
    return _perform("price_sheet", schedule_task.price_sheet, book)


def show_help(book: Any = None) -> Outcome:
    """Help: what each button does and where the documentation is."""
    where = f"The Python package is installed in {Path(livebook.__file__).parents[1]}."
    text = livebook.help_text([(a.label, a.supertip) for a in ACTIONS], f"{DOCS}\n{where}")
    return _perform("show_help", lambda live: Outcome(text), book)


__all__ = ["ACTIONS", "Action", "check_workbook", "credit_note", "finalize_period", "generate_invoices",
           "import_roster", "price_sheet", "send_invoices", "show_help", "sync_sources", "usage_report"]
