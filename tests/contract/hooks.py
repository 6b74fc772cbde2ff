"""schemathesis hooks of the contract test: two adaptations to strings no schema can describe,
nothing relaxed.

An opaque value (``x-opaque: true`` in the document) is a string only the API issues: no schema
can say which strings those are, so a *positive* case cannot be generated for it. Before each
call, a positive case's generated value is replaced by one the API really issued earlier in the
run; negative cases keep their garbage, which the API must refuse (documented):

* an opaque cursor (query, ``opsdeck.params.Cursor``): the ``next_cursor`` the same operation
  answered last, or none while there is none (422 for any other);
* an opaque property of a JSON request body (snacks' ``refresh`` token): the value of the
  property of that name that a response of the same capability (base path) carried last — a
  sign-in's ``refresh`` — left as generated while there is none (401 for any other). Each call
  that spends one (a refresh token is single-use) answers the next one, which replaces it.

A JMESPath filter (``format: jmespath``, the ops API's replay) must compile: positive cases draw
from a generator of valid expressions (``_jmespath_expressions``), registered for that format.

The pytest contract test imports this module; to run schemathesis by hand with it:
``SCHEMATHESIS_HOOKS=tests.contract.hooks schemathesis run …`` (docs/http-api.md).
"""

from __future__ import annotations

from typing import Any

import schemathesis

#: operation label → the last ``next_cursor`` it answered
ISSUED_CURSORS: dict[str, str] = {}
#: (capability base path, property name) → the last value a response carried
ISSUED_VALUES: dict[tuple[str, str], str] = {}


def _base(operation: Any) -> str:
    return "/" + operation.path.strip("/").split("/", 1)[0]


def _resolve(operation: Any, schema: Any) -> Any:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        node: Any = operation.schema.raw_schema
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
    return schema


def opaque_body_properties(operation: Any) -> list[str]:
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    schema = _resolve(operation, content.get("application/json", {}).get("schema", {}))
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    return [
        name
        for name, prop in properties.items()
        if isinstance(prop, dict) and _resolve(operation, prop).get("x-opaque")
    ]


def opaque_query_parameters(operation: Any) -> list[str]:
    names = []
    for parameter in operation.definition.raw.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "query" and any(
            isinstance(branch, dict) and branch.get("x-opaque")
            for branch in [schema, *schema.get("anyOf", [])]
        ):
            names.append(parameter["name"])
    return names


def _jmespath_expressions() -> Any:
    """Valid JMESPath filters (``format: jmespath`` in the document): comparisons of a body field
    with a literal, combined with ``&&`` / ``||`` / ``!``. Which strings compile is a grammar no
    JSON Schema states, so positive cases draw from it; negative cases keep their garbage."""
    from hypothesis import strategies as st

    field = st.from_regex(r"\A[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8}){0,2}\Z")
    literal = st.one_of(
        st.integers(-1000, 1000).map(lambda n: f"`{n}`"),
        st.from_regex(r"\A[a-z0-9 ]{0,10}\Z").map(lambda t: f"'{t}'"),
        st.sampled_from(["`true`", "`false`", "`null`"]),
    )
    comparison = st.builds(
        lambda f, op, v: f"{f} {op} {v}", field, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), literal
    )
    return st.recursive(
        st.one_of(field, comparison),
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["&&", "||"]), inner),
            inner.map(lambda e: f"!({e})"),
        ),
        max_leaves=4,
    )


schemathesis.openapi.format("jmespath", _jmespath_expressions())


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if isinstance(case.body, dict):
        for name in opaque_body_properties(case.operation):
            issued = ISSUED_VALUES.get((_base(case.operation), name))
            if name in case.body and issued is not None:
                case.body[name] = issued
    if not case.query:
        return
    for name in opaque_query_parameters(case.operation):
        if name in case.query:
            issued = ISSUED_CURSORS.get(case.operation.label)
            if issued is None:
                del case.query[name]
            else:
                case.query[name] = issued


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if response.status_code != 200 or "json" not in (response.headers.get("content-type") or [""])[0]:
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("next_cursor"), str):
        ISSUED_CURSORS[case.operation.label] = body["next_cursor"]
    if isinstance(body, dict):
        for name, value in body.items():
            if isinstance(value, str) and name != "next_cursor":
                ISSUED_VALUES[(_base(case.operation), name)] = value
