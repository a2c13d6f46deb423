"""The built-in importers by the name the command line and the ribbon take (a module of names only, so a
command can tell what an import will write before it loads the importers)."""

from __future__ import annotations

SOURCES: dict[str, str] = {
    "m365": "Microsoft 365",
    "connectwise": "ConnectWise PSA",
    "autotask": "Autotask",
    "halopsa": "HaloPSA",
}
"""Roster importers: users (Microsoft 365) or contacts (the PSAs)."""

USAGE_SOURCES: dict[str, str] = {
    "connectwise-time": "ConnectWise PSA time entries",
    "autotask-time": "Autotask time entries",
    "autotask-tickets": "Autotask tickets",
    "halopsa-tickets": "HaloPSA tickets",
    "halopsa-time": "HaloPSA time entries",
}
"""Usage importers: time entries and tickets."""
