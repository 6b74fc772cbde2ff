"""Every operation of the whole HTTP API against its document: schemathesis, every check.

Operations come from the combined document, which comes from the catalog's ``Http`` functions,
so a new capability's API is covered without touching this file. Its data and roles come from
its hook (docs/http-api.md); what schemathesis does not run is in ``tests/contract/config.py``.

Two adaptations, not relaxations, in ``tests/contract/hooks.py``: positive cases carry opaque
cursors the API really issued (none can be generated), and JMESPath filters that compile.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter, defaultdict
from typing import Any

import pytest
import schemathesis

from functions import catalog
from functions.ops import openapi
from tests.contract import hooks  # noqa: F401 - registers the schemathesis hooks
from tests.contract.config import schemathesis_config

# Loaded at collection (the document is built in-process, as /ops/openapi.json builds it): the
# lazy ``schemathesis.pytest.from_fixture`` of 4.32 does not run on pytest 9 (``node._nodeid``).
# Where the cloud listens and the token are known only later: ``case.call`` gets them.
schema = schemathesis.openapi.from_dict(openapi.document(), config=schemathesis_config())

#: operation label → the statuses it answered
STATUSES: dict[str, Counter[int]] = defaultdict(Counter)


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
    target = _target_for(case, target)
    response = case.call(**target)  # hooks.before_call: the opaque-cursor adaptation
    STATUSES[case.operation.label][response.status_code] += 1
    case.validate_response(response, headers=target["headers"], transport_kwargs=target)


def test_seeded_data_lets_every_operation_succeed(contract_cloud):
    """Runs after the operations: each one of a capability with a ``contract`` hook answered 2xx at
    least once (its document's examples name the seeded data), so the 200 paths were checked too."""
    from tests.contract.conftest import capability_hooks

    seeded = {cap for cap, hook in capability_hooks().items() if callable(getattr(hook, "contract", None))}
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    if set(STATUSES) != set(operations):
        pytest.skip("only some operations ran (-k?): run the whole module")
    owners = {r.key: f.capability for r, f in catalog.routes().values()}
    never = {
        label: dict(STATUSES[label])
        for label in operations
        if owners[label] in seeded | {"ops"} and not any(200 <= s < 300 for s in STATUSES[label])
    }
    assert never == {}, f"operations that never succeeded (seed data their examples name): {never}"


#: every docs page of the catalog
DOCS_PAGES = sorted(
    r.path for r, _ in catalog.routes().values() if r.method == "GET" and r.path.endswith("/docs")
)


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)"
)
@pytest.mark.parametrize("page", DOCS_PAGES)
def test_docs_pages_render_with_the_network_cut_off(contract_cloud, page, tmp_path):
    """Swagger UI renders every operation with every request outside the loopback sent to a dead proxy."""
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path}",
            "--proxy-server=http://127.0.0.1:9",  # nothing listens there: no CDN can answer
            "--proxy-bypass-list=127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            contract_cloud.base_url + page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    _, function = catalog.routes()[f"GET {page}"]
    shown = openapi.document() if function.name == "ops-api" else openapi.function_document(function)
    assert 'class="swagger-ui' in dom
    missing = [path for path in shown["paths"] if f'data-path="{path}"' not in dom]
    assert missing == [], f"Swagger UI did not render {missing}"
