"""The combined document (``GET /ops/openapi.json``, ``opsdeck openapi``) against the catalog and
the house rules of docs/http-api.md: same routes as the catalog, valid OpenAPI 3.1, every error
one Problem as problem+json, every body with an example, every operation with its 500."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from functions import catalog
from functions.ops import openapi
from localcloud.events import http_event
from opsdeck.openapi import combine, route_keys
from tests.support import ROOT, LambdaContext

PROBLEM = {"$ref": "#/components/schemas/Problem"}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document()


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _has_example(media: dict[str, Any], document: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return bool(schema.get("examples"))


def test_its_routes_are_the_catalogs_routes(document):
    assert route_keys(document) == set(catalog.routes())


def test_it_is_valid_openapi_3_1(document):
    from openapi_spec_validator import validate

    validate(document)
    assert document["openapi"].startswith("3.1")


def test_ops_serves_it_and_the_cli_prints_it(document):
    from functions.ops.api import handler

    response = handler(http_event("GET", "/ops/openapi.json"), LambdaContext("ops-api"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == json.loads(json.dumps(document))
    command = [sys.executable, "-m", "opsdeck_cli.main", "openapi"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(printed.stdout) == json.loads(json.dumps(document))


def test_every_error_is_the_problem_schema_as_problem_json(document):
    for label, operation in _operations(document):
        responses = operation["responses"]
        assert "500" in responses, label
        for status, response in responses.items():
            if status < "400":
                continue
            content = response["content"]
            assert content["application/problem+json"]["schema"] == PROBLEM, (label, status)
            # the only other error body: API Gateway's own, on routes behind its JWT authorizer
            others = set(content) - {"application/problem+json"}
            assert others <= {"application/json"}, (label, status)
            if others:
                gateway = {"$ref": "#/components/schemas/GatewayMessage"}
                assert content["application/json"]["schema"] == gateway
                route, _ = catalog.routes()[label]
                assert route.authorizer == "jwt" and status in ("401", "403"), (label, status)


def test_every_body_has_an_example(document):
    missing = []
    for label, operation in _operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not _has_example(media, document):
                missing.append(f"{label} request {media_type}")
        for status, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if not _has_example(media, document):
                    missing.append(f"{label} {status} {media_type}")
    assert missing == []


def test_protected_operations_declare_their_scheme_and_401(document):
    for label, operation in _operations(document):
        route, _ = catalog.routes()[label]
        if route.authorizer == "jwt":
            assert operation["security"] == [{"gatewayJwt": list(route.scopes)}], label
            assert operation["responses"]["401"]["content"]["application/json"]["example"] == {
                "message": "Unauthorized"
            }
        if operation.get("security"):
            assert "401" in operation["responses"], label


def test_the_ops_cold_start_imports_no_capability():
    """The combined document needs every capability's app: it is built on first request, never at import."""
    code = (
        "import sys, functions.ops.api, functions.backoffice.api; "
        "print(sorted(m for m in sys.modules if m.startswith('functions.') "
        "and m.endswith(('.api', '.schemas'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'layers/common/python'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    # nor do the response models documented with ``body()`` (backoffice.schemas) load at cold start
    assert out.stdout.strip() == "['functions.backoffice.api', 'functions.ops.api']"


def test_combine_shares_equal_schemas_and_renames_differing_ones():
    def doc(path: str, thing: dict[str, Any]) -> dict[str, Any]:
        ok = {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}
        return {
            "paths": {path: {"get": {"responses": ok}}},
            "components": {"schemas": {"Thing": thing, "Problem": {"type": "object"}}},
        }

    one = doc("/a/x", {"type": "object", "properties": {"a": {"type": "string"}}})
    two = doc("/b/x", {"type": "object", "properties": {"b": {"type": "integer"}}})
    combined = combine({"a-api": one, "b-api": two}, title="t")
    assert set(combined["components"]["schemas"]) == {"Thing", "Problem", "BApi_Thing"}
    refs = {p: i["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            for p, i in combined["paths"].items()}  # fmt: skip
    assert refs == {"/a/x": "#/components/schemas/Thing", "/b/x": "#/components/schemas/BApi_Thing"}
    with pytest.raises(ValueError, match="served by two documents"):
        combine({"a-api": one, "c-api": doc("/a/x", {})}, title="t")
