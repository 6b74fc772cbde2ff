"""Lambda events exactly as AWS builds them, for the local cloud, ``opsdeck events new`` and tests.

* ``http_event``: API Gateway HTTP API, payload format 2.0 — lower-cased headers joined by
  commas, ``cookies`` split out of the cookie header, ``queryStringParameters`` with repeated
  keys joined by commas, ``pathParameters`` from the matched route, binary bodies base64,
  and ``requestContext.authorizer.jwt`` when the route has a JWT authorizer (claims are
  strings: array claims arrive flattened as ``"[a b]"``).
* ``schedule_event``: the EventBridge "Scheduled Event"; the catalog's ``Schedule.input``
  rides in ``detail`` (infra_cdk delivers it the same way, with an input transformer).
* ``sqs_record`` / ``sqs_event``: SQS event source mapping records with their attributes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
API_ID = "opsdeck0local"

TEXT_TYPES = ("text/", "application/json", "application/problem+json", "application/xml", "+json", "+xml")


def _now() -> datetime:
    return datetime.now(UTC)


def apigw_time(when: datetime) -> str:
    """``12/Mar/2020:19:03:58 +0000`` (requestContext.time)."""
    return when.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def apigw_request_id() -> str:
    """API Gateway request ids look like ``JKJaXmPLvHcESHA=``."""
    return base64.b64encode(secrets.token_bytes(10)).decode()


# ------------------------------------------------------------------ route match

_SEGMENT = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(\+?)\}")


def match_route(route_keys: Iterable[str], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """API Gateway HTTP API route selection: the most specific route wins.

    Exact paths beat ``{param}`` segments, which beat greedy ``{proxy+}``; a method
    match beats ``ANY``; ``$default`` catches the rest.
    """
    best: tuple[tuple, str, dict[str, str]] | None = None
    segments = [s for s in path.split("/") if s != ""] if path != "/" else []
    for key in route_keys:
        if key == "$default":
            candidate = ((-1, -1, -1), key, {})
        else:
            r_method, r_path = key.split(" ", 1)
            if r_method not in (method, "ANY"):
                continue
            params = _match_path(r_path, segments)
            if params is None:
                continue
            parts = [p for p in r_path.split("/") if p]
            exact = sum(1 for p in parts if not p.startswith("{"))
            greedy = any(p.endswith("+}") for p in parts)
            candidate = ((0 if greedy else 1, exact, 1 if r_method == method else 0), key, params)
        if best is None or candidate[0] > best[0]:
            best = candidate
    return None if best is None else (best[1], best[2])


def _match_path(route_path: str, segments: list[str]) -> dict[str, str] | None:
    parts = [p for p in route_path.split("/") if p]
    params: dict[str, str] = {}
    for i, part in enumerate(parts):
        m = _SEGMENT.fullmatch(part)
        if m and m.group(2):  # greedy {proxy+}: one or more segments
            if i >= len(segments):
                return None
            params[m.group(1)] = "/".join(segments[i:])
            return params
        if i >= len(segments):
            return None
        if m:
            params[m.group(1)] = segments[i]
        elif part != segments[i]:
            return None
    return params if len(parts) == len(segments) else None


# ------------------------------------------------------------------------ HTTP


def flatten_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway's JWT authorizer passes them to Lambda: every value a string."""
    out: dict[str, str] = {}
    for k, v in claims.items():
        if isinstance(v, list | tuple):
            out[k] = "[" + " ".join(str(x) for x in v) + "]"
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, dict):
            out[k] = json.dumps(v, separators=(",", ":"))
        else:
            out[k] = str(v)
    return out


def http_event(
    method: str,
    path: str,
    *,
    query: str | Mapping[str, Any] | Sequence[tuple[str, str]] = "",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    body: bytes | str | Any = None,
    route_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    jwt_claims: Mapping[str, Any] | None = None,
    jwt_scopes: Sequence[str] | None = None,
    source_ip: str = "127.0.0.1",
    when: datetime | None = None,
    request_id: str | None = None,
    domain: str = "localhost",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event.

    ``body`` may be bytes, text, or any JSON-serialisable value (sent as JSON with a
    ``content-type: application/json`` header unless one is given).
    """
    when = when or _now()
    method = method.upper()
    # Headers: lower-cased, repeated ones joined by ",".
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[lname] = f"{merged[lname]},{value}" if lname in merged else value
    if body is not None and not isinstance(body, bytes | str):
        body = json.dumps(body)
        merged.setdefault("content-type", "application/json")
    merged.setdefault("host", domain)
    merged.setdefault("user-agent", "opsdeck-localcloud")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    if isinstance(body, bytes | str):
        merged.setdefault("content-length", str(len(body.encode() if isinstance(body, str) else body)))

    # Query string: raw as sent; parameters with repeated keys joined by ",".
    if isinstance(query, str):
        raw_query = query.lstrip("?")
        q_pairs = parse_qsl(raw_query, keep_blank_values=True)
    else:
        q_pairs = list(query.items()) if isinstance(query, Mapping) else list(query)
        q_pairs = [(k, str(v)) for k, v in q_pairs]
        raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in q_pairs)
    qs: dict[str, str] = {}
    for k, v in q_pairs:
        qs[k] = f"{qs[k]},{v}" if k in qs else v

    key = route_key or f"{method} {path}"
    rid = request_id or apigw_request_id()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": key,
            "stage": "$default",
            "time": apigw_time(when),
            "timeEpoch": int(when.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if qs:
        event["queryStringParameters"] = qs
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if jwt_claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": flatten_claims(jwt_claims), "scopes": list(jwt_scopes) if jwt_scopes else None}
        }
    if body is not None:
        if isinstance(body, bytes):
            if _is_text(merged.get("content-type", "")):
                try:
                    event["body"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
            else:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = body
    return event


def _is_text(content_type: str) -> bool:
    ct = content_type.split(";")[0].strip().lower()
    return bool(ct) and any(ct.startswith(t) or ct.endswith(t) for t in TEXT_TYPES)


# ------------------------------------------------------------------ schedules


def rule_arn(rule_name: str) -> str:
    return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"


def schedule_event(
    rule_name: str, *, when: datetime | None = None, detail: Mapping[str, Any] | None = None
) -> dict:
    """EventBridge's scheduled event; ``detail`` carries the catalog's ``Schedule.input``."""
    when = (when or _now()).astimezone(UTC).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn(rule_name)],
        "detail": dict(detail or {}),
    }


# ------------------------------------------------------------------------- SQS


def queue_arn(queue_name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"


def md5_of_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """SQS's MD5 of message attributes (API shape ``{"DataType", "StringValue"|"BinaryValue"}``):
    sorted by name, each as length-prefixed name and type, a transport byte (1 string,
    2 binary) and the length-prefixed value."""
    if not attributes:
        return None
    buf = bytearray()
    for name in sorted(attributes):
        attr = attributes[name]
        for part in (name.encode(), str(attr["DataType"]).encode()):
            buf += struct.pack("!I", len(part)) + part
        if "BinaryValue" in attr:
            value = attr["BinaryValue"]
            raw = value if isinstance(value, bytes) else base64.b64decode(value)
            buf += b"\x02" + struct.pack("!I", len(raw)) + raw
        else:
            raw = str(attr["StringValue"]).encode()
            buf += b"\x01" + struct.pack("!I", len(raw)) + raw
    return hashlib.md5(bytes(buf), usedforsecurity=False).hexdigest()


def _api_attribute(value: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return {"DataType": "String", "StringValue": value}


def _lambda_attribute(attr: Mapping[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event spells it."""
    out: dict[str, Any] = {}
    if "BinaryValue" in attr:
        value = attr["BinaryValue"]
        out["binaryValue"] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    else:
        out["stringValue"] = str(attr["StringValue"])
    out.update({"stringListValues": [], "binaryListValues": [], "dataType": attr["DataType"]})
    return out


def sqs_record(
    body: str | Any,
    *,
    queue_name: str,
    message_id: str | None = None,
    receive_count: int = 1,
    sent_ms: int | None = None,
    first_receive_ms: int | None = None,
    message_attributes: Mapping[str, str | Mapping[str, Any]] | None = None,
    group_id: str | None = None,
    dedup_id: str | None = None,
    sequence_number: str | None = None,
    receipt_handle: str | None = None,
    sender_id: str = "AIDAOPSDECKLOCALCLOUD",
    extra_attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One record of an SQS event (``body`` that is not a string is sent as JSON).

    ``message_attributes`` values are strings (``String`` attributes) or SQS API attributes
    (``{"DataType": "Number", "StringValue": "1"}``, ``{"DataType": "Binary", "BinaryValue": b"…"}``);
    ``extra_attributes`` adds system attributes such as ``DeadLetterQueueSourceArn``.
    """
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    now_ms = int(_now().timestamp() * 1000)
    sent = sent_ms or now_ms
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent),
        "SenderId": sender_id,
        "ApproximateFirstReceiveTimestamp": str(first_receive_ms or sent),
    }
    if queue_name.endswith(".fifo"):
        attributes["MessageGroupId"] = group_id or "default"
        attributes["MessageDeduplicationId"] = dedup_id or hashlib.sha256(text.encode()).hexdigest()
        attributes["SequenceNumber"] = sequence_number or str(now_ms * 1000)
    attributes.update(extra_attributes or {})
    api_attributes = {k: _api_attribute(v) for k, v in (message_attributes or {}).items()}
    record: dict[str, Any] = {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or base64.b64encode(secrets.token_bytes(48)).decode(),
        "body": text,
        "attributes": attributes,
        "messageAttributes": {k: _lambda_attribute(v) for k, v in api_attributes.items()},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue_name),
        "awsRegion": REGION,
    }
    if api_attributes:
        record["md5OfMessageAttributes"] = md5_of_message_attributes(api_attributes)
    return record


def sqs_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


# ------------------------------------------------------------------- validation


def event_problems(function: Any, event: Any) -> list[str]:
    """Why ``event`` is not something AWS would deliver to ``function`` (a catalog entry); [] if fine."""
    kind = function.trigger.kind
    if not isinstance(event, dict):
        return ["event must be a JSON object"]
    problems: list[str] = []
    if kind == "http":
        if event.get("version") != "2.0":
            problems.append('HTTP API events have "version": "2.0"')
        http = (event.get("requestContext") or {}).get("http") or {}
        method, path = http.get("method"), event.get("rawPath")
        if not method or not path:
            problems.append("missing requestContext.http.method or rawPath")
        else:
            keys = [r.key for r in function.trigger.routes]
            matched = match_route(keys, method, path)
            if matched is None:
                problems.append(f"{method} {path} matches no route of {function.name}")
            elif event.get("routeKey") != matched[0]:
                problems.append(f"routeKey {event.get('routeKey')!r} should be {matched[0]!r}")
        if not isinstance(event.get("headers", {}), dict) or any(
            k != k.lower() for k in event.get("headers", {})
        ):
            problems.append("headers must be an object with lower-case names")
    elif kind == "schedule":
        if event.get("detail-type") != "Scheduled Event" or event.get("source") != "aws.events":
            problems.append(
                'scheduled events have "detail-type": "Scheduled Event" and "source": "aws.events"'
            )
        if not any(":rule/" in r for r in event.get("resources", [])):
            problems.append("resources must name the rule ARN")
    elif kind == "queue":
        records = event.get("Records")
        if not isinstance(records, list) or not records:
            problems.append("SQS events have a non-empty Records list")
        else:
            for i, r in enumerate(records):
                if r.get("eventSource") != "aws:sqs" or not str(r.get("eventSourceARN", "")).endswith(
                    ":" + function.trigger.queue_name
                ):
                    problems.append(f"Records[{i}] is not from queue {function.trigger.queue_name}")
                if not isinstance(r.get("body"), str) or not r.get("messageId"):
                    problems.append(f"Records[{i}] needs messageId and a string body")
    elif kind == "deploy" and event.get("RequestType") not in ("Create", "Update", "Delete"):
        problems.append("deploy events have RequestType Create, Update or Delete")
    # manual functions take any JSON object their handler documents
    return problems
