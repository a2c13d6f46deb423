"""Writing billed seat counts back into a PSA (SPEC §8 "Push-back"): what every PSA writer offers.

``perseat push`` (:mod:`perseat_addin.tasks.push`) works out, per client and plan, the seats a recorded
period billed and hands each as a :class:`PushTarget` to the :class:`PsaWriter` of the PSA in Settings:

* :meth:`PsaWriter.current` finds the client's record for that plan (ConnectWise: the agreement
  addition; Autotask: the contract service and its units; HaloPSA: the recurring-invoice line) and its
  quantity now, or raises :class:`~perseat_addin.sources.http.SourceError` saying why it cannot;
* :meth:`PsaWriter.set` writes the new quantity (an absolute quantity in ConnectWise and Halo, a unit
  change with an effective date in Autotask: the writer knows which), reads the record back and
  returns what it now says.

The push compares first: a record already at the billed quantity is not written, so a second push of
the same period changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PushTarget:
    """One quantity to push: a client's billed seats for one plan in one recorded period."""

    client: str
    company: str  # Clients.PSACompanyID
    agreement: str  # Clients.PSAAgreementID (an agreement, contract or recurring invoice)
    plan: str
    product: str  # what names the plan in the PSA: Plans.PSAProduct, else the plan's name
    seats: int
    period: str  # YYYY-MM
    effective: dt.date  # the first day after the period (for writers that date a change)


@dataclass(frozen=True)
class PsaRecord:
    """The PSA record that holds a target's quantity, as read now."""

    id: str  # the PSA's record id, as the ChangeLog names it: "agreement 1 addition 101"
    quantity: float
    what: str = ""  # in words, for the preview: "addition 101 (MS-USER) of agreement 1"
    ref: Any = field(default=None, compare=False)  # what the writer needs to write it (ids, dates)


class PsaWriter(Protocol):
    """A PSA that billed seat counts can be written to."""

    label: str  # "ConnectWise PSA": the ChangeLog Source of a push

    def current(self, target: PushTarget) -> PsaRecord:
        """The record holding ``target``'s quantity and that quantity now; SourceError in words when there is
        none (no such agreement, no item for the plan, two that match)."""
        ...

    def set(self, record: PsaRecord, quantity: int) -> PsaRecord:
        """Write ``quantity`` to ``record``, read it back and return it as read; SourceError when the write
        fails or the read-back differs."""
        ...


def product_key(text: str) -> str:
    """A product or plan name for matching: lower case, letters and digits only ("MS-User" = "ms user")."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


__all__ = ["PsaRecord", "PsaWriter", "PushTarget", "product_key"]
