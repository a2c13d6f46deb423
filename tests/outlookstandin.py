"""A faithful stand-in for ``Outlook.Application`` as COM hands it to ``macros.adapter.OutlookDrafts``.

Stands in for: ``Application.CreateItem(olMailItem=0)`` (a new, unsaved MailItem; other item types are refused
here, as the adapter never asks for them); the MailItem's ``To``, ``Subject`` and ``Body`` properties
(strings; ``To`` is a semicolon-separated list); ``Attachments.Add(Source)`` — Outlook copies the file into
the item at once and raises a COM error when the path is not a file; ``MailItem.Save()`` — the item is put
in the Drafts folder (never sent). Every call is recorded in :attr:`OutlookStandIn.calls`; the saved
drafts, with the attached files' names and bytes, in :attr:`OutlookStandIn.drafts`.

Only Outlook can exercise: the COM server starting, security prompts ("a program is trying to access…"),
the signature Outlook adds, and the account the draft belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Draft:
    """A MailItem saved to Drafts."""

    to: str
    subject: str
    body: str
    attachments: list[tuple[str, bytes]]


@dataclass
class OutlookStandIn:
    """``Outlook.Application``."""

    calls: list[str] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)
    fail_after: int | None = None  # Save() raises after this many drafts (Outlook closed meanwhile)

    def CreateItem(self, item_type: int) -> MailItem:
        self.calls.append(f"CreateItem({item_type})")
        if item_type != 0:
            raise RuntimeError(f"stand-in: only olMailItem (0) is expected, not {item_type}")
        return MailItem(self)


class Attachments:
    """``MailItem.Attachments``."""

    def __init__(self, outlook: OutlookStandIn):
        self._outlook = outlook
        self.files: list[tuple[str, bytes]] = []

    def Add(self, source: Any) -> None:
        self._outlook.calls.append(f"Attachments.Add({Path(str(source)).name})")
        path = Path(str(source))
        if not isinstance(source, str) or not path.is_file():
            raise OSError(f"(-2147024894, 'Cannot find this file. Verify the path and file name are correct.', "
                          f"{source!r})")
        self.files.append((path.name, path.read_bytes()))  # Outlook copies the file now


class MailItem:
    """A new ``MailItem``."""

    def __init__(self, outlook: OutlookStandIn):
        object.__setattr__(self, "_outlook", outlook)
        object.__setattr__(self, "Attachments", Attachments(outlook))
        for name in ("To", "Subject", "Body"):
            object.__setattr__(self, name, "")

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in ("To", "Subject", "Body"):
            raise AttributeError(f"stand-in: MailItem.{key} is not used by the adapter")
        if not isinstance(value, str):
            raise TypeError(f"MailItem.{key} takes a string, not {type(value).__name__}")
        self._outlook.calls.append(f"MailItem.{key}")
        object.__setattr__(self, key, value)

    def Save(self) -> None:
        outlook = self._outlook
        outlook.calls.append("MailItem.Save()")
        if outlook.fail_after is not None and len(outlook.drafts) >= outlook.fail_after:
            raise OSError("(-2147467259, 'The operation failed.', None)")
        outlook.drafts.append(Draft(self.To, self.Subject, self.Body, list(self.Attachments.files)))
