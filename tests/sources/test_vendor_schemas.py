"""The stand-ins' records, and what the clients write, checked against the vendors' published schemas.

``tests/standins/schemas/`` holds the models the Autotask and HaloPSA stand-ins serve, taken from the
schemas PSA_APIS.md names (the Autotask REST swagger ``v1.json``, HaloPSA's OpenAPI ``swagger.json``): every
field a stand-in returns, and every field a client sends, must be a property of the vendor's model with a
value of its type. A field made up for a stand-in, or a misspelt one in a client, fails here.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sources.test_autotask import data as autotask_data
from sources.test_autotask import server as autotask_server  # noqa: F401 - the fixture
from sources.test_halopsa import data as halo_data
from sources.test_halopsa import server as halo_server  # noqa: F401 - the fixture
from sources.test_push_psa import autotask_data as push_autotask_data
from sources.test_push_psa import halo_data as push_halo_data
from standins.autotask import AutotaskStandIn
from standins.halopsa import HaloStandIn

SCHEMAS = Path(__file__).resolve().parents[1] / "standins" / "schemas"
TYPES: dict[str, tuple[type, ...]] = {"integer": (int,), "number": (int, float), "string": (str,),
                                      "boolean": (bool,), "array": (list,), "object": (dict,)}


def models(name: str) -> dict[str, dict[str, dict[str, str]]]:
    found: dict[str, dict[str, dict[str, str]]] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))["models"]
    return found


def problems(record: dict[str, Any], model: dict[str, dict[str, str]], name: str,
             nested: dict[str, tuple[dict[str, dict[str, str]], str]] | None = None) -> list[str]:
    """Fields of ``record`` that ``model`` lacks (names matched in any case, as the APIs' JSON is camelCase
    where the swagger is PascalCase), or whose value is not of the property's type."""
    props = {k.lower(): v for k, v in model.items()}
    out: list[str] = []
    for key, value in record.items():
        spec = props.get(key.lower())
        if spec is None:
            out.append(f"{name}.{key}: not a property of the vendor's model")
            continue
        if value is None:
            continue
        want = spec.get("type", "")
        kinds = TYPES.get(want)
        if kinds is not None and (not isinstance(value, kinds)
                                  or (want in ("integer", "number") and isinstance(value, bool))):
            out.append(f"{name}.{key}: {value!r} is not {want}")
        if spec.get("format") == "date-time" and isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                out.append(f"{name}.{key}: {value!r} is not a date-time")
        if nested and key in nested and isinstance(value, list):
            inner, inner_name = nested[key]
            for item in value:
                out += problems(item, inner, f"{name}.{key}[]→{inner_name}")
    return out


AUTOTASK_TABLES = {"companies": "Company", "contacts": "Contact", "tickets": "Ticket", "time_entries": "TimeEntry",
                   "contracts": "Contract", "services": "Service", "contract_services": "ContractService",
                   "units": "ContractServiceUnit", "adjustments": "ContractServiceAdjustment"}


@pytest.mark.parametrize("make", [autotask_data, push_autotask_data], ids=["sync", "push"])
def test_the_autotask_stand_in_serves_the_swagger_models(make: Any) -> None:
    at = models("autotask_v1.json")
    data = make()
    found = [p for table, model in AUTOTASK_TABLES.items() for r in getattr(data, table)
             for p in problems(r, at[model], model)]
    assert found == []
    assert sum(len(getattr(data, t)) for t in AUTOTASK_TABLES) > 10  # the check saw the records


def test_an_autotask_adjustment_sent_is_the_swagger_model(autotask_server: AutotaskStandIn) -> None:  # noqa: F811
    from sources.test_autotask import client

    with client(autotask_server) as c:
        c.set_units(29684183, 31, 14, dt.date(2026, 11, 17))
    sent = [s.body for s in autotask_server.log if s.method == "POST" and s.path.endswith("ContractServiceAdjustments")]
    assert sent, "no adjustment was sent"
    model = models("autotask_v1.json")["ContractServiceAdjustment"]
    assert [p for body in sent for p in problems(body, model, "ContractServiceAdjustment")] == []


HALO_TABLES = {"clients": "Area", "users": "Users", "tickets": "Faults", "actions": "Actions",
               "invoices": "InvoiceHeader"}


@pytest.mark.parametrize("make", [halo_data, push_halo_data], ids=["sync", "push"])
def test_the_halo_stand_in_serves_the_openapi_models(make: Any) -> None:
    halo = models("halopsa.json")
    data = make()
    lines = {"lines": (halo["InvoiceDetail"], "InvoiceDetail")}
    found = [p for table, model in HALO_TABLES.items() for r in getattr(data, table)
             for p in problems(r, halo[model], model, lines)]
    assert found == []
    assert sum(len(getattr(data, t)) for t in HALO_TABLES) >= 5  # the check saw the records


def test_a_halo_recurring_invoice_sent_is_the_openapi_model(halo_server: HaloStandIn) -> None:  # noqa: F811
    from sources.test_halopsa import client

    with client(halo_server) as c:
        c.set_quantity(94, 24964, 14)
    assert halo_server.posted, "no recurring invoice was sent"
    halo = models("halopsa.json")
    lines = {"lines": (halo["InvoiceDetail"], "InvoiceDetail")}
    assert [p for body in halo_server.posted for inv in (body if isinstance(body, list) else [body])
            for p in problems(inv, halo["InvoiceHeader"], "InvoiceHeader", lines)] == []


def test_the_check_catches_a_made_up_field() -> None:
    model = models("autotask_v1.json")["Contact"]
    assert problems({"emailAddress": "a@b.example", "isActive": 1}, model, "Contact") == []
    assert problems({"emailAdress": "a@b.example"}, model, "Contact") == [
        "Contact.emailAdress: not a property of the vendor's model"]
    assert problems({"isActive": "yes"}, model, "Contact") == ["Contact.isActive: 'yes' is not integer"]
