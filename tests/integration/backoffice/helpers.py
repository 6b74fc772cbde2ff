"""Backoffice test helpers: feed change streams to the consumer, call the admin API with tokens.

Everything goes through the Lambda entry points: ``consumer.handler`` with SQS events from
``localcloud.events``, ``api.handler`` with API Gateway v2 events (the samples in ``events/``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from typing import Any

from localcloud.events import sqs_event, sqs_record
from tests.support import LambdaContext, load_event

JWT = {
    "JWT_ISSUER": "opsdeck-local",
    "JWT_AUDIENCE": "opsdeck",
    "JWT_ALGORITHMS": "HS256",
    "JWT_HS256_SECRET": "backoffice-test-secret-backoffice-test-secret",
}
QUEUE = "backoffice-changes"


def token(*roles: str, subject: str = "alice", **claims: Any) -> str:
    from opsdeck.auth import issue_dev_token

    return issue_dev_token(subject, roles, extra_claims=claims or None)


def records(bodies: Sequence[Any], *, start: int = 0, sent_ms: int = 1_767_225_900_000) -> list[dict]:
    """SQS records for ``bodies``; message ``m<i>`` was sent at ``sent_ms + i`` (ingestion order)."""
    return [
        sqs_record(
            body if isinstance(body, str) else json.dumps(body),
            queue_name=QUEUE,
            message_id=f"m{start + i}",
            sent_ms=sent_ms + start + i,
        )
        for i, body in enumerate(bodies)
    ]


def consume(recs: Iterable[dict]) -> list[str]:
    """Run the consumer on one batch; the failed message ids."""
    from functions.backoffice import consumer

    result = consumer.handler(sqs_event(recs), LambdaContext("backoffice-consumer", 60))
    return sorted(f["itemIdentifier"] for f in result["batchItemFailures"])


class Response:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.status = raw["statusCode"]
        self.headers = raw.get("headers", {})
        self.text = raw.get("body", "")

    def json(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"<{self.status} {self.text[:300]}>"


def call(
    sample: str | dict, *, bearer: str | None = None, path_params: dict | None = None, **replace
) -> Response:
    """Invoke ``backoffice-api`` with a sample event (optionally re-targeted) and a bearer token."""
    from functions.backoffice import api

    event = copy.deepcopy(load_event(f"backoffice-api/{sample}") if isinstance(sample, str) else sample)
    if path_params:
        route = event["routeKey"].split(" ", 1)[1]
        path = route
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", value)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = dict(path_params)
    for key, value in replace.items():
        event[key] = value
    if bearer is not None:
        event["headers"]["authorization"] = f"Bearer {bearer}"
    return Response(api.handler(event, LambdaContext("backoffice-api")))


def with_query(sample: str, query: dict[str, str]) -> dict:
    from urllib.parse import urlencode

    event = load_event(f"backoffice-api/{sample}")
    event["rawQueryString"] = urlencode(query)
    event["queryStringParameters"] = dict(query)
    return event


def audit_rows(conn, **where: Any) -> list[dict]:
    from sqlalchemy import text

    clauses = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    rows = conn.execute(text(f"SELECT * FROM bo.admin_audit WHERE {clauses} ORDER BY id"), where).mappings()
    return [dict(r) for r in rows]
