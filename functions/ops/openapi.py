"""The OpenAPI document of the whole HTTP API: every catalog ``Http`` function's document, combined.

``GET /ops/openapi.json`` serves it, ``opsdeck openapi`` prints it, the contract test fuzzes it.

Why it is built on request, not at cold start: it needs every capability's app, i.e. importing
every capability's API module (FastAPI routes, pydantic models, domain code). Doing that at
import time would put every capability's import cost on every ``ops-api`` cold start — including
the ``/ops/health`` probes that must stay cheap — for a document that is asked for rarely (docs
pages, client generators). So the first ``/ops/openapi.json`` or ``/ops/docs`` request of a
container imports the capability modules and builds the document; it is kept for the container's
life (``functools.cache``). A snapshot written at build time would cost nothing at run time, but it
would be one more generated file that every capability's change must regenerate (and that
parallel branches would conflict on); the document is exact only if it comes from the code
that serves the requests.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from functions import catalog
from opsdeck.openapi import combine

TITLE = "opsdeck"
DESCRIPTION = (
    "Every opsdeck HTTP API, as API Gateway serves them (one HTTP API, one base path per "
    "capability). Errors are `application/problem+json` (`Problem`); routes behind API Gateway's "
    'JWT authorizer (`gatewayJwt`) can also answer the gateway\'s own 401 `{"message":"Unauthorized"}`.'
)


def http_functions() -> list[catalog.Function]:
    return [f for f in catalog.FUNCTIONS if isinstance(f.trigger, catalog.Http)]


def function_document(function: catalog.Function) -> dict[str, Any]:
    """One function's own document (its app's routes), as its ``<base>/openapi.json`` serves it;
    for ``ops-api``, which serves the combined document there, its own routes only."""
    app = importlib.import_module(function.module).app
    return app.openapi()


@functools.cache
def document() -> dict[str, Any]:
    """The combined document (built once per container)."""
    documents = {f.name: function_document(f) for f in http_functions()}
    return combine(documents, title=TITLE, description=DESCRIPTION)
