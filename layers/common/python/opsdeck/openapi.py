"""The truthful OpenAPI document of every HTTP function, built once, lazily.

``opsdeck.api.create_app`` builds each capability's document with ``build`` the first time
``<base>/openapi.json`` or ``<base>/docs`` is asked (never on the request path), from FastAPI's
own document plus what FastAPI cannot know:

* **one** ``Problem`` schema (RFC 9457 + ``request_id`` + ``errors``) for every error, always as
  ``application/problem+json`` — FastAPI's ``HTTPValidationError`` 422 is replaced by it, 400
  is added where a JSON body can be malformed, 500 is on every operation;
* the errors a route declares — ``responses=problems(404, Conflict)`` on the route or router —
  and the errors its dependencies declare with ``@raises(...)`` (``opsdeck.auth``'s
  ``current_principal`` raises 401, ``require_roles(...)`` 401 and 403);
* the bearer security scheme (``bearer``) on routes that authenticate in the function, and for
  routes the catalog puts behind API Gateway's JWT authorizer (``Route(authorizer="jwt")``) the
  ``gatewayJwt`` scheme and the 401 the gateway answers itself: ``{"message":"Unauthorized"}``
  as ``application/json`` (with a ``www-authenticate`` header on AWS);
* ``combine`` merges capability documents into the one document of the whole HTTP API (what
  ``GET /ops/openapi.json`` and ``opsdeck openapi`` serve).

Only the standard library is imported here: route modules call ``problems()`` at import time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE, STATUS_SLUGS, OpsdeckError

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
GATEWAY_MESSAGE_REF = {"$ref": "#/components/schemas/GatewayMessage"}
BEARER = "bearer"
GATEWAY_JWT = "gatewayJwt"
#: the attribute ``@raises`` sets on a dependency
PROBLEMS_ATTRIBUTE = "__opsdeck_problems__"

Problem = int | type[OpsdeckError]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": (
        "An RFC 9457 problem document; every error of every opsdeck API is one, as "
        "`application/problem+json`. `type` is stable (clients may switch on it); other members "
        "may be added as extensions (e.g. `checks` on a 503 naming what is down)."
    ),
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri",
            "description": f"`{PROBLEM_BASE}<slug>`",
            "examples": [PROBLEM_BASE + "not-found"],
        },
        "title": {"type": "string", "description": "short summary of the problem type"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "the HTTP status"},
        "detail": {"type": "string", "description": "what went wrong with this request"},
        "instance": {"type": "string", "description": "the request path"},
        "request_id": {"type": "string", "description": "also in `x-request-id` and the function's logs"},
        "errors": {
            "type": "array",
            "description": "validation failures (422): where and why",
            "items": {"$ref": "#/components/schemas/ProblemError"},
        },
    },
    "additionalProperties": True,
}
PROBLEM_ERROR_SCHEMA: dict[str, Any] = {
    "title": "ProblemError",
    "type": "object",
    "required": ["loc", "msg", "type"],
    "properties": {
        "loc": {"type": "array", "items": {"type": "string"}, "description": 'e.g. `["query", "limit"]`'},
        "msg": {"type": "string"},
        "type": {"type": "string", "description": "pydantic's error type, e.g. `string_pattern_mismatch`"},
    },
}
GATEWAY_MESSAGE_SCHEMA: dict[str, Any] = {
    "title": "GatewayMessage",
    "type": "object",
    "description": "A response API Gateway writes itself (the function never ran).",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}

_DESCRIPTIONS = {
    400: "The request body is not valid JSON",
    401: "No valid bearer token",
    403: "The token lacks a required role",
    404: "Not found",
    409: "Conflict with the current state",
    422: "The request is not valid: `errors` says where",
    429: "Too many requests (see `retry-after`)",
    500: "Unexpected error (no internals; the request id names it in the logs)",
    502: "An upstream service failed",
    503: "A dependency or configuration is unavailable",
}


# ------------------------------------------------------------------ declaring


def _problem_class(status: int) -> tuple[str, str]:
    return STATUS_SLUGS.get(status, (f"http-{status}", "HTTP error"))


def problem_example(status: int, slug: str, title: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    body["detail"] = detail or title
    body["request_id"] = "c2FtcGxlLXJlcXVlc3Q="
    if status == 422:
        body["errors"] = [
            {
                "loc": ["query", "limit"],
                "msg": "Input should be less than or equal to 200",
                "type": "less_than_equal",
            }
        ]
    return body


def _resolve(error: Problem) -> tuple[int, str, str]:
    if isinstance(error, int):
        return (error, *_problem_class(error))
    if isinstance(error, type) and issubclass(error, OpsdeckError):
        return error.status, error.slug, error.title
    raise TypeError(f"problems() takes statuses or OpsdeckError classes, not {error!r}")


def problems(*errors: Problem, description: str | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the errors a route (or router) can answer.

    ``problems(404, 409)`` or ``problems(NotFound, Conflict)``; several classes of one status
    (``Unavailable``, ``NotConfigured``) become one response with one example per type.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        status, slug, title = _resolve(error)
        response = out.setdefault(
            status,
            {
                "description": description or _DESCRIPTIONS.get(status, title),
                "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF, "examples": {}}},
            },
        )
        response["content"][PROBLEM_CONTENT_TYPE]["examples"][slug] = {
            "summary": title,
            "value": problem_example(status, slug, title),
        }
    return out


LAZY_MODEL = "x-opsdeck-model"


def body(model: str, *, status: int = 200, description: str = "Successful Response") -> dict[int, Any]:
    """``responses=`` entry documenting a body by the pydantic model at ``"module:Name"``, imported
    only when the document is built. For routes that return ``JSONResponse``s themselves (so FastAPI
    would not use a ``response_model`` anyway): defining models and the FastAPI fields a
    ``response_model`` builds costs cold start (~15 ms for the backoffice's)."""
    return {status: {"description": description, LAZY_MODEL: model}}


def _resolve_lazy_models(document: dict[str, Any]) -> None:
    import importlib

    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in (
                (operation.get("responses") or {}).values() if isinstance(operation, dict) else ()
            ):
                ref = response.pop(LAZY_MODEL, None)
                if ref is None:
                    continue
                module, _, name = ref.partition(":")
                model = getattr(importlib.import_module(module), name)
                schema = model.model_json_schema(
                    ref_template="#/components/schemas/{model}", mode="serialization"
                )
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
                response["content"] = {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                }


def raises(*errors: Problem) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a FastAPI dependency with the errors it raises: every route using it documents them."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        setattr(dependency, PROBLEMS_ATTRIBUTE, (*getattr(dependency, PROBLEMS_ATTRIBUTE, ()), *errors))
        return dependency

    return mark


# ------------------------------------------------------------------- building


def gateway_routes() -> Mapping[str, Any]:
    """Catalog routes by key (``"GET /x"``), or nothing where there is no catalog."""
    try:
        from functions import catalog
    except ImportError:  # the layer without the function code (tests of the layer alone)
        return {}
    return {key: route for key, (route, _) in catalog.routes().items()}


def _api_routes(routes: Iterable[Any]) -> Iterable[Any]:
    """Every API route with its effective path and dependencies (included routers resolved)."""
    from fastapi import routing

    iter_contexts = getattr(routing, "iter_route_contexts", None)
    if iter_contexts is None:  # FastAPI < 0.160 flattens included routers itself
        yield from (r for r in routes if isinstance(r, routing.APIRoute))
        return
    for context in iter_contexts(list(routes)):
        if isinstance(context.original_route, routing.APIRoute):
            yield context


def _dependency_problems(dependant: Any, seen: set[int] | None = None) -> list[Problem]:
    seen = set() if seen is None else seen
    found: list[Problem] = []
    for sub in getattr(dependant, "dependencies", ()) or ():
        call = getattr(sub, "call", None)
        if call is not None and id(call) not in seen:
            seen.add(id(call))
            found.extend(getattr(call, PROBLEMS_ATTRIBUTE, ()))
        found.extend(_dependency_problems(sub, seen))
    return found


def _merge_problem_response(responses: dict[str, Any], status: int | str, entry: dict[str, Any]) -> None:
    key = str(status)
    existing = responses.get(key)
    if existing is None:
        responses[key] = copy.deepcopy(entry)
        return
    content = existing.setdefault("content", {})
    media = content.get(PROBLEM_CONTENT_TYPE)
    new_media = entry["content"][PROBLEM_CONTENT_TYPE]
    if media is None:
        content[PROBLEM_CONTENT_TYPE] = copy.deepcopy(new_media)
        return
    media.setdefault("schema", PROBLEM_REF)
    examples = media.setdefault("examples", {})
    for name, example in new_media.get("examples", {}).items():
        examples.setdefault(name, example)


def _problem_content(status: int) -> dict[str, Any]:
    return problems(status)[status]


def _validation_response() -> dict[str, Any]:
    entry = problems(422)[422]
    return entry


def _gateway_401() -> dict[str, Any]:
    return {
        "description": (
            "API Gateway's JWT authorizer refused the token (missing, malformed, expired, wrong "
            "issuer or audience); the function never ran"
        ),
        "headers": {
            "www-authenticate": {
                "description": 'on AWS: `Bearer scope="" error="invalid_token" error_description="…"`',
                "schema": {"type": "string"},
            }
        },
        "content": {
            "application/json": {"schema": GATEWAY_MESSAGE_REF, "example": {"message": "Unauthorized"}}
        },
    }


def _gateway_403() -> dict[str, Any]:
    return {
        "description": "The token has none of the route's scopes (API Gateway's answer)",
        "content": {"application/json": {"schema": GATEWAY_MESSAGE_REF, "example": {"message": "Forbidden"}}},
    }


REQUEST_ID_HEADER = {
    "description": "the request id: the caller's `x-request-id` when sane, else API Gateway's",
    "required": True,
    "schema": {"type": "string"},
}
WWW_AUTHENTICATE_HEADER = {
    "description": 'the bearer challenge (RFC 6750): `Bearer` or `Bearer error="invalid_token"`',
    "required": True,
    "schema": {"type": "string"},
}


def _function_headers(status: str, response: dict[str, Any]) -> None:
    """Headers the factory puts on every function response (not on API Gateway's own)."""
    if "application/json" in response.get("content", {}) and "GatewayMessage" in json.dumps(
        response["content"]["application/json"].get("schema", {})
    ):
        return  # also API Gateway's answer: it carries neither
    headers = response.setdefault("headers", {})
    headers.setdefault("x-request-id", REQUEST_ID_HEADER)
    if status == "401":
        headers.setdefault("www-authenticate", WWW_AUTHENTICATE_HEADER)


_HTML_EXAMPLE = "<!doctype html><html><head><title>opsdeck - Swagger UI</title>…</head><body>…</body></html>"
_DOCUMENT_EXAMPLE = {"openapi": "3.1.0", "info": {"title": "opsdeck", "version": "1.0.0"}, "paths": {}}
DOCS_ASSET_NAMES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
_TEXT = {"type": "string"}


def docs_paths(base: str) -> dict[str, Any]:
    """The document of the factory's own routes: ``<base>/openapi.json``, ``/docs``, ``/docs/{asset}``."""
    slug = base.strip("/").replace("-", "_").replace("/", "_")

    def ok(content: dict[str, Any], description: str) -> dict[str, Any]:
        return {"200": {"description": description, "content": content}}

    return {
        f"{base}/openapi.json": {
            "get": {
                "tags": ["docs"],
                "summary": "This API's OpenAPI document",
                "operationId": f"openapi_document_{slug}",
                "responses": ok(
                    {"application/json": {"schema": {"type": "object"}, "example": _DOCUMENT_EXAMPLE}},
                    "The document",
                ),
            }
        },
        f"{base}/docs": {
            "get": {
                "tags": ["docs"],
                "summary": "Swagger UI over this API's document (works offline)",
                "operationId": f"swagger_ui_{slug}",
                "responses": ok(
                    {"text/html": {"schema": {"type": "string"}, "example": _HTML_EXAMPLE}}, "The page"
                ),
            }
        },
        f"{base}/docs/{{asset}}": {
            "get": {
                "tags": ["docs"],
                "summary": "Swagger UI's files, served from the deployment",
                "operationId": f"docs_asset_{slug}",
                "parameters": [
                    {
                        "name": "asset",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(DOCS_ASSET_NAMES)},
                    }
                ],
                "responses": {
                    **ok(
                        {
                            "application/javascript": {
                                "schema": {"type": "string"},
                                "example": "/*! Swagger UI */",
                            },
                            "text/css": {"schema": {"type": "string"}, "example": ".swagger-ui{}"},
                            "image/png": {
                                "schema": {"type": "string", "format": "binary"},
                                "example": "(PNG)",
                            },
                        },
                        "The file (cached for a day)",
                    ),
                    **{str(k): v for k, v in problems(404, description="No such file").items()},
                },
            }
        },
    }


def finish(
    document: dict[str, Any],
    routes: Iterable[Any],
    gateway: Mapping[str, Any] | None = None,
    *,
    docs: str | None = None,
) -> dict[str, Any]:
    """Make FastAPI's ``document`` of ``routes`` truthful (see the module docstring); in place.
    ``docs``: the base path whose docs routes (``docs_paths``) the factory added."""
    gateway = gateway_routes() if gateway is None else gateway
    # FastAPI shares the dicts of ``responses=`` between operations: own them before editing
    document["paths"] = copy.deepcopy(document.get("paths", {}))
    if docs is not None:
        document["paths"].update(docs_paths(docs))
    _resolve_lazy_models(document)
    by_operation: dict[tuple[str, str], Any] = {}
    for route in _api_routes(routes):
        for method in getattr(route, "methods", None) or ():
            by_operation[route.path_format, method.lower()] = route
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    schemas["ProblemError"] = copy.deepcopy(PROBLEM_ERROR_SCHEMA)
    schemes = components.setdefault("securitySchemes", {})
    uses_gateway = False
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            route = by_operation.get((path, method))
            if "422" in responses:
                responses["422"] = _validation_response()
            if "requestBody" in operation:
                _merge_problem_response(responses, 400, _problem_content(400))
            if route is not None:
                for error in _dependency_problems(getattr(route, "dependant", None)):
                    status = _resolve(error)[0]
                    _merge_problem_response(responses, status, problems(error)[status])
            _merge_problem_response(responses, 500, _problem_content(500))
            for status, response in responses.items():
                # every error the function answers is problem+json, whatever a route declared
                if status[:1] in "45" and PROBLEM_CONTENT_TYPE not in response.get("content", {}):
                    content = response.setdefault("content", {})
                    content.pop("application/json", None)
                    _merge_problem_response(responses, status, _problem_content(int(status)))
            catalog_route = gateway.get(f"{method.upper()} {path}")
            if catalog_route is not None and getattr(catalog_route, "authorizer", None) == "jwt":
                uses_gateway = True
                operation["security"] = [{GATEWAY_JWT: list(getattr(catalog_route, "scopes", ()) or ())}]
                gateway_401 = _gateway_401()
                existing = responses.get("401")
                if existing is not None:
                    gateway_401["content"].update(existing.get("content", {}))
                    gateway_401["description"] += "; or the function's own answer (problem+json)"
                responses["401"] = gateway_401
                if getattr(catalog_route, "scopes", ()):
                    forbidden = _gateway_403()
                    if "403" in responses:
                        forbidden["content"].update(responses["403"].get("content", {}))
                    responses["403"] = forbidden
            for status, response in responses.items():
                _function_headers(status, response)
                media = response.get("content", {}).get(PROBLEM_CONTENT_TYPE, {})
                for example in media.get("examples", {}).values():
                    example["value"].setdefault("instance", path)
            operation["responses"] = dict(sorted(responses.items()))
    if uses_gateway:
        schemas["GatewayMessage"] = copy.deepcopy(GATEWAY_MESSAGE_SCHEMA)
        schemes[GATEWAY_JWT] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A JWT from the opsdeck issuer, verified by API Gateway's JWT authorizer before the "
                "function runs (issuer, audience, expiry, signature); its claims reach the function."
            ),
        }
    if not schemes:
        components.pop("securitySchemes")
    return document


# ------------------------------------------------------------------ combining


def _refs(node: Any, rename: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                out[key] = "#/components/schemas/" + rename.get(name, name)
            else:
                out[key] = _refs(value, rename)
        return out
    if isinstance(node, list):
        return [_refs(v, rename) for v in node]
    return node


def combine(
    documents: Mapping[str, dict[str, Any]], *, title: str, version: str = "1.0.0", description: str = ""
) -> dict[str, Any]:
    """One document from several (``{capability: document}``): paths side by side, schemas shared
    when equal, else renamed ``<Capability>_<Name>``; security schemes must agree."""
    combined: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "tags": [],
    }
    schemas = combined["components"]["schemas"]
    schemes = combined["components"]["securitySchemes"]
    tags: dict[str, dict[str, Any]] = {}
    for capability, document in documents.items():
        own = document.get("components", {}).get("schemas", {})
        prefix = "".join(part.title() for part in capability.replace("-", "_").split("_"))
        rename: dict[str, str] = {}
        for name, schema in own.items():
            if name in schemas and json.dumps(schemas[name], sort_keys=True) != json.dumps(
                _refs(schema, {}), sort_keys=True
            ):
                rename[name] = f"{prefix}_{name}"
        for name, schema in own.items():
            schemas[rename.get(name, name)] = _refs(schema, rename)
        for name, scheme in document.get("components", {}).get("securitySchemes", {}).items():
            if name in schemes and schemes[name] != scheme:
                raise ValueError(f"{capability}: security scheme {name!r} differs from another capability's")
            schemes[name] = scheme
        for path, item in document.get("paths", {}).items():
            if path in combined["paths"]:
                raise ValueError(f"{capability}: path {path} is served by two documents")
            combined["paths"][path] = _refs(item, rename)
        for tag in document.get("tags", []) or []:
            tags.setdefault(tag["name"], tag)
    combined["tags"] = list(tags.values())
    if not combined["tags"]:
        combined.pop("tags")
    if not schemes:
        combined["components"].pop("securitySchemes")
    return combined


def route_keys(document: Mapping[str, Any]) -> set[str]:
    """``{"GET /x", …}``: every operation of a document, as catalog route keys."""
    return {
        f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    }
