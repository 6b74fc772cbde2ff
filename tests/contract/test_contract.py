"""Every operation of the whole HTTP API against its document: schemathesis, every check.

Operations come from the combined document, which comes from the catalog's ``Http`` functions,
so a new capability's API is covered without touching this file. Its data and roles come from
its hook (docs/http-api.md); what schemathesis does not run is in ``tests/contract/config.py``.

One adaptation, not a relaxation: an opaque cursor (``x-opaque`` in the document) is a string
only the API issues, so a *positive* case cannot be generated for it; positive cases carry a
cursor the same operation really issued (or none yet), negative ones keep the generated garbage,
which must be refused (422, documented).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest
import schemathesis

from functions import catalog
from functions.ops import openapi
from tests.contract.config import schemathesis_config

# Loaded at collection (the document is built in-process, as /ops/openapi.json builds it): the
# lazy ``schemathesis.pytest.from_fixture`` of 4.32 does not run on pytest 9 (``node._nodeid``).
# Where the cloud listens and the token are known only later: ``case.call`` gets them.
schema = schemathesis.openapi.from_dict(openapi.document(), config=schemathesis_config())

#: operation label → the last ``next_cursor`` it answered
ISSUED_CURSORS: dict[str, str] = {}
#: operation label → the statuses it answered
STATUSES: dict[str, Counter[int]] = defaultdict(Counter)


def _opaque_query_parameters(case: Any) -> list[str]:
    names = []
    for parameter in case.operation.definition.raw.get("parameters", []):
        if parameter.get("in") != "query":
            continue
        branches = [parameter.get("schema", {}), *parameter.get("schema", {}).get("anyOf", [])]
        if any(isinstance(b, dict) and b.get("x-opaque") for b in branches):
            names.append(parameter["name"])
    return names


def _issued_cursor_instead_of_a_generated_one(case: Any) -> None:
    if case.meta is None or not case.meta.generation.mode.is_positive or not case.query:
        return
    for name in _opaque_query_parameters(case):
        if name in case.query:
            issued = ISSUED_CURSORS.get(case.operation.label)
            if issued is None:
                del case.query[name]
            else:
                case.query[name] = issued


def _remember_issued_cursor(case: Any, response: Any) -> None:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("next_cursor"), str):
        ISSUED_CURSORS[case.operation.label] = body["next_cursor"]


@pytest.fixture(scope="module")
def target(contract_cloud: Any, contract_token: str) -> dict[str, Any]:
    return {"base_url": contract_cloud.base_url, "headers": {"Authorization": f"Bearer {contract_token}"}}


def _target_for(case: Any, target: dict[str, Any]) -> dict[str, Any]:
    """The target's token, except for a negative case generated *without* the Authorization
    header: that case tests a missing credential, and the token would put it back (the API
    would then rightly answer 200 to a request schemathesis expects to be refused)."""
    negative = case.meta is not None and not case.meta.generation.mode.is_positive
    if negative and not any(k.lower() == "authorization" for k in (case.headers or {})):
        headers = {k: v for k, v in target["headers"].items() if k.lower() != "authorization"}
        return {**target, "headers": headers}
    return target


@schema.parametrize()
def test_every_operation_does_what_its_document_says(case, target):
    _issued_cursor_instead_of_a_generated_one(case)
    target = _target_for(case, target)
    response = case.call(**target)
    STATUSES[case.operation.label][response.status_code] += 1
    _remember_issued_cursor(case, response)
    case.validate_response(response, headers=target["headers"], transport_kwargs=target)


def test_seeded_data_lets_every_operation_succeed(contract_cloud):
    """Runs after the operations: each one of a capability with a ``contract`` hook answered 2xx at
    least once (its document's examples name the seeded data), so the 200 paths were checked too."""
    from tests.contract.conftest import capability_hooks

    seeded = {cap for cap, hook in capability_hooks().items() if callable(getattr(hook, "contract", None))}
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    assert set(STATUSES) == set(operations), "run the whole module: the operations have not all run"
    owners = {r.key: f.capability for r, f in catalog.routes().values()}
    never = {
        label: dict(STATUSES[label])
        for label in operations
        if owners[label] in seeded | {"ops"} and not any(200 <= s < 300 for s in STATUSES[label])
    }
    assert never == {}, f"operations that never succeeded (seed data their examples name): {never}"
