"""Every operation of the whole HTTP API against its document: schemathesis, every check.

Operations come from the combined document, which comes from the catalog's ``Http`` functions,
so a new capability's API is covered without touching this file. Its data and roles come from
its hook (docs/http-api.md); what schemathesis does not run is in ``tests/contract/config.py``.

Two adaptations, not relaxations, in ``tests/contract/hooks.py``: positive cases carry opaque
values the API really issued (cursors, refresh tokens: none can be generated), and JMESPath
filters that compile.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
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
def target(contract_cloud: Any, contract_tokens: Callable[[str], str]) -> dict[str, Any]:
    return {"base_url": contract_cloud.base_url, "token": contract_tokens}


def _call_kwargs(case: Any, target: dict[str, Any]) -> dict[str, Any]:
    """The operation's bearer token (its capability's own where it issues its own, see
    ``conftest.contract_tokens``), except for a negative case generated *without* the
    Authorization header: that case tests a missing credential, and the token would put it back
    (the API would then rightly answer 200 to a request schemathesis expects to be refused)."""
    negative = case.meta is not None and not case.meta.generation.mode.is_positive
    if negative and not any(k.lower() == "authorization" for k in (case.headers or {})):
        return {"base_url": target["base_url"], "headers": {}}
    token = target["token"](case.operation.label)
    return {"base_url": target["base_url"], "headers": {"Authorization": f"Bearer {token}"}}


@schema.parametrize()
def test_every_operation_does_what_its_document_says(case, target):
    kwargs = _call_kwargs(case, target)
    response = case.call(**kwargs)  # hooks.before_call: the opaque-cursor adaptation
    STATUSES[case.operation.label][response.status_code] += 1
    case.validate_response(response, headers=kwargs["headers"], transport_kwargs=kwargs)


def _succeeded(operation: Any, statuses: Counter[int]) -> bool:
    """A 2xx, or a 3xx the operation documents as its answer (a redirect to the image)."""
    documented = set(operation.definition.raw.get("responses", {}))
    return any(200 <= s < 300 or (300 <= s < 400 and str(s) in documented) for s in statuses)


#: what a protected operation answers a request whose token it does not accept: its 401, and what
#: it refuses before looking at the token (malformed JSON 400, parameters and body 422)
WITHOUT_A_VALID_TOKEN = {400, 401, 422}


def _protected(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security", schema.raw_schema.get("security")))


def test_every_operation_got_past_its_authentication_and_seeded_ones_succeeded(request):
    """Runs after the operations; fails, never skips, once they all ran in this session:

    * every protected operation of every capability answered something other than 401 (or the
      400/422 it gives before looking at a token) at least once: the token the test sends is one
      the capability accepts (a capability that is its
      own token issuer gives its own with ``contract_auth``, docs/http-api.md) — else its
      operations are only ever checked up to their 401;
    * every operation of a capability with a ``contract`` hook answered 2xx (or the 3xx it
      documents) at least once: the document's examples name the seeded data, so the success
      paths were checked too.
    """
    from tests.contract.conftest import capability_hooks

    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    collected = [
        item
        for item in request.session.items
        if getattr(item, "originalname", None) == test_every_operation_does_what_its_document_says.__name__
    ]
    if len(collected) < len(operations):
        pytest.skip("only some operations were selected (-k?): run the whole module")
    assert set(STATUSES) == set(operations), (
        f"operations that never answered: {set(operations) - set(STATUSES)}"
    )
    seeded = {cap for cap, hook in capability_hooks().items() if callable(getattr(hook, "contract", None))}
    owners = {r.key: f.capability for r, f in catalog.routes().values()}
    unauthenticated = {
        label: dict(STATUSES[label])
        for label, op in operations.items()
        if _protected(op) and set(STATUSES[label]) <= WITHOUT_A_VALID_TOKEN
    }
    assert unauthenticated == {}, (
        f"protected operations that never got past their authentication (whose token?): {unauthenticated}"
    )
    never = {
        label: dict(STATUSES[label])
        for label, op in operations.items()
        if owners[label] in seeded | {"ops"} and not _succeeded(op, STATUSES[label])
    }
    assert never == {}, f"operations that never succeeded (seed data their examples name): {never}"


def test_the_snacks_token_hook_keeps_its_admin_signed_in(contract_cloud, monkeypatch):
    """snacks' ``contract_auth``: the admin's token is refreshed before it expires, and a
    resignation through the hook ends a fresh member, never the admin whose token the run uses."""
    import json

    from functions.snacks import demo

    token = demo.contract_auth(contract_cloud)

    def me(access: str) -> tuple[int, Any]:
        status, _, raw = contract_cloud.request(
            "GET", "/snacks/users/me", headers={"authorization": f"Bearer {access}"}
        )
        return status, json.loads(raw)

    first = token("GET", "/snacks/users/me")
    assert token("GET", "/snacks/users/me") == first  # minutes left: kept
    monkeypatch.setattr(demo, "REFRESH_MARGIN_S", 10**9)  # as if it were about to expire
    fresh = token("GET", "/snacks/users/me")
    assert fresh != first and me(fresh)[0] == 200 and me(fresh)[1]["role"] == "admin"
    resigner = token("DELETE", "/snacks/users/me")
    assert me(resigner)[1]["email"] != me(fresh)[1]["email"]
    status, _, _ = contract_cloud.request(
        "DELETE", "/snacks/users/me", headers={"authorization": f"Bearer {resigner}"}
    )
    assert status == 204 and me(resigner)[0] == 401
    assert me(token("GET", "/snacks/users/me"))[0] == 200


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
