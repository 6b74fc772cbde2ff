"""The contract test's world: the whole catalog in a local cloud, seeded, and a token with every role.

* ``contract_cloud`` — ``LocalCloud`` on this session's migrated database, an in-process Redis,
  the virtual clock and the HTTP endpoint (``http=True``, port 0): requests go through the real
  API Gateway emulation (routing, the JWT authorizer) to the real handlers. Before the test, each
  capability's hook ``functions/<capability>/demo.py: contract(cloud)`` seeds its data (see
  docs/http-api.md); tables are emptied afterwards.
* ``contract_token`` — a token of the local issuer with every role the capabilities name in
  ``CONTRACT_ROLES``.
* ``contract_tokens`` — ``token(operation label)``: the capability's own token where its hook
  ``contract_auth(cloud)`` gives one (a capability that is its own token issuer, like snacks,
  signs in for real), else ``contract_token``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions import catalog
from tests.conftest import truncate_all

SUBJECT = "contract-test"


def capability_hooks() -> dict[str, Any]:
    """``{capability: its demo module}`` for every capability with an HTTP function."""
    hooks = {}
    served = {f.capability for f in catalog.FUNCTIONS if isinstance(f.trigger, catalog.Http)}
    for capability in sorted(served):
        name = f"functions.{capability}.demo"
        if importlib.util.find_spec(name) is not None:
            hooks[capability] = importlib.import_module(name)
    return hooks


def contract_roles() -> list[str]:
    hooks = capability_hooks().values()
    return sorted({role for module in hooks for role in getattr(module, "CONTRACT_ROLES", ())})


@pytest.fixture(scope="module")
def contract_cloud(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from localcloud import LocalCloud

    with LocalCloud(
        root=tmp_path_factory.mktemp("contract") / ".opsdeck",
        database_url=database_url,
        redis_url="fakeredis://",
        virtual_clock=True,
        http=True,
        deploy=False,
    ) as cloud:
        for module in capability_hooks().values():
            seed = getattr(module, "contract", None)
            if callable(seed):
                seed(cloud)
        yield cloud
    truncate_all()


@pytest.fixture(scope="module")
def contract_token(contract_cloud: Any) -> str:
    from opsdeck.auth import issue_dev_token

    return issue_dev_token(SUBJECT, contract_roles(), ttl_s=3600)


@pytest.fixture(scope="module")
def contract_tokens(contract_cloud: Any, contract_token: str) -> Callable[[str], str]:
    """``token("METHOD /path")``: who answers for an operation is the catalog's route owner."""
    own = {
        capability: module.contract_auth(contract_cloud)
        for capability, module in capability_hooks().items()
        if callable(getattr(module, "contract_auth", None))
    }
    owners = {route.key: function.capability for route, function in catalog.routes().values()}

    def token(label: str) -> str:
        hook = own.get(owners.get(label, ""))
        if hook is None:
            return contract_token
        method, _, path = label.partition(" ")
        return hook(method, path)

    return token
