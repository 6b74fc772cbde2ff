"""The local AWS endpoint: a moto server that knows the catalog.

One moto server per process, on a local port (``AWS_ENDPOINT_URL`` of every function;
users can point the AWS CLI and boto3 at it). moto keeps the state of everything it can
(EventBridge rules, Secrets Manager, queue definitions, tags, …). Three things are
routed differently:

* **SQS messages on catalog queues** go to the local cloud's engine (``localcloud.sqs``):
  the SQS Flask views are served by ``EngineSQSResponse``, a subclass of moto's own response
  class — moto parses the request (JSON or query protocol) and serializes the result and
  the errors, the engine supplies the semantics (visibility, redrive, FIFO, counts,
  ``StartMessageMoveTask``). Other queues stay moto's. The message-level actions of the JSON
  protocol (boto3's) take a fast path in the request handler instead (see "SQS fast path"):
  same functions, same answers, a fraction of the cost per call.
* **Lambda ``Invoke``** of a catalog function runs it in-process (RequestResponse, Event
  with Lambda's async retries, DryRun; ``LogType=Tail`` returns the logs).
* **EventBridge rule changes** (``PutRule``/``EnableRule``/``DisableRule``/``DeleteRule``)
  notify the scheduler, which reads each rule's state and expression from moto when it
  decides whether to fire — a rule disabled through the API stops firing.

``ACTIVE`` is the running local cloud (one per process). Without one, every call is
plain moto.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import unquote

from localcloud import sqs
from localcloud.events import ACCOUNT_ID, REGION

LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
RULE_WRITES = {"PutRule", "EnableRule", "DisableRule", "DeleteRule"}


class Bridge(Protocol):
    engine: sqs.SqsEngine

    def lambda_invoke(
        self, name: str, payload: bytes, invocation_type: str, log_type: str
    ) -> tuple[int, dict[str, str], bytes]: ...

    def rules_changed(self) -> None: ...


ACTIVE: Bridge | None = None


def function_name_from(identifier: str) -> str:
    """``ops-api``, ``ops-api:$LATEST``, ``…:function:ops-api[:qualifier]`` → ``ops-api``."""
    name = unquote(identifier)
    if "function:" in name:
        name = name.split("function:", 1)[1]
    return name.split(":", 1)[0]


# ------------------------------------------------------------------ SQS views
# What a message-level SQS action does on a catalog queue, shared by moto's view
# (``EngineSQSResponse``: any protocol, every error) and the JSON fast path below.

BATCH_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _send(engine: sqs.SqsEngine, name: str, params: dict[str, Any], sender_id: str) -> sqs.SendResult:
    system = params.get("MessageSystemAttributes") or {}
    trace = (system.get("AWSTraceHeader") or {}).get("StringValue")
    return engine.send(
        name,
        params.get("MessageBody"),
        message_attributes=params.get("MessageAttributes") or {},
        delay_s=params.get("DelaySeconds"),
        group_id=params.get("MessageGroupId"),
        dedup_id=params.get("MessageDeduplicationId"),
        trace_header=trace,
        sender_id=sender_id,
    )


def _sent(result: sqs.SendResult) -> dict[str, Any]:
    out = {"MessageId": result.message_id, "MD5OfMessageBody": result.md5_of_body}
    if result.md5_of_message_attributes:
        out["MD5OfMessageAttributes"] = result.md5_of_message_attributes
    if result.sequence_number:
        out["SequenceNumber"] = result.sequence_number
    return out


def _batch_failure(entry: dict[str, Any], exc: sqs.SQSError) -> dict[str, Any]:
    return {"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message}


def _send_batch(
    engine: sqs.SqsEngine, name: str, entries: list[dict[str, Any]], sender_id: str
) -> dict[str, Any]:
    """Entries already checked (ids, count, total size); each entry succeeds or fails on its own."""
    successful, failed = [], []
    for entry in entries:
        try:
            result = _send(engine, name, entry, sender_id)
        except sqs.SQSError as exc:
            failed.append(_batch_failure(entry, exc))
            continue
        successful.append({"Id": entry["Id"], **_sent(result)})
    return {"Successful": successful, "Failed": failed}


def _receive(
    engine: sqs.SqsEngine,
    name: str,
    count: int,
    timeout: int | None,
    wait: float,
    wanted: set[str],
    attribute_names: list[str],
) -> dict[str, Any]:
    with engine.lock:
        messages = engine.receive(name, count, visibility_timeout=timeout, wait_s=wait)
        out = [_received(m, wanted, attribute_names) for m in messages]
    return {"Messages": out} if out else {}


def _received(message: sqs.Message, wanted: set[str], attribute_names: list[str]) -> dict[str, Any]:
    from localcloud.events import md5_of_message_attributes

    item: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    system = message.system_attributes()
    if "All" not in wanted:
        system = {k: v for k, v in system.items() if k in wanted}
    if system:
        item["Attributes"] = system
    chosen = {
        k: v
        for k, v in message.message_attributes.items()
        if "All" in attribute_names
        or ".*" in attribute_names
        or k in attribute_names
        or any(p.endswith(".*") and k.startswith(p[:-1]) for p in attribute_names)
    }
    if chosen:
        item["MessageAttributes"] = chosen
        item["MD5OfMessageAttributes"] = md5_of_message_attributes(chosen)
    return item


def _delete_batch(engine: sqs.SqsEngine, name: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    successful, failed = [], []
    for entry in entries:
        try:
            engine.delete(name, entry["ReceiptHandle"])
            successful.append({"Id": entry["Id"]})
        except sqs.SQSError as exc:
            failed.append(_batch_failure(entry, exc))
    return {"Successful": successful, "Failed": failed}


def _change_visibility_batch(
    engine: sqs.SqsEngine, name: str, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    successful, failed = [], []
    for entry in entries:
        try:
            engine.change_visibility(name, entry["ReceiptHandle"], int(entry.get("VisibilityTimeout") or 0))
            successful.append({"Id": entry["Id"]})
        except sqs.SQSError as exc:
            failed.append(_batch_failure(entry, exc))
    return {"Successful": successful, "Failed": failed}


# ------------------------------------------------------------ SQS fast path
# SQS's JSON protocol (what boto3 and the AWS CLI v2 speak), message-level actions on catalog
# queues: answered in the request handler, without werkzeug's environ, Flask, moto's routing
# (which stats moto's package directory on every request), request parser and serializer,
# and on a kept-alive connection (werkzeug closes every connection). A request is taken only
# if moto's view above would accept it: anything else — another action or queue, the query
# protocol, an unsigned, chunked, compressed or malformed request, or a request-level error
# (an error the view raises) — is handed to moto's view unchanged, which answers as before.
# The semantics are the shared functions above; tests/localcloud/test_sqs_fast_path.py checks
# that both paths answer the same.

#: off: every SQS request goes through moto's view (the tests compare the two paths)
FAST_PATH = True
FAST_ACTIONS = frozenset(
    {
        "SendMessage",
        "SendMessageBatch",
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    }
)
_SEND_KEYS = {
    "MessageBody": str,
    "DelaySeconds": int,
    "MessageAttributes": dict,
    "MessageSystemAttributes": dict,
    "MessageGroupId": str,
    "MessageDeduplicationId": str,
}
_RECEIVE_KEYS = {
    "MaxNumberOfMessages": int,
    "WaitTimeSeconds": int,
    "VisibilityTimeout": int,
    "AttributeNames": list,
    "MessageSystemAttributeNames": list,
    "MessageAttributeNames": list,
    "ReceiveRequestAttemptId": str,
}
_ACCESS_KEY = re.compile(r"AWS.*(?P<access_key>(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]))[:/]")  # moto's


class _Decline(Exception):
    """Not for the fast path: moto's view answers this request."""


def _typed(params: dict[str, Any], keys: dict[str, type], extra: tuple[str, ...] = ()) -> None:
    for key, value in params.items():
        kind = keys.get(key)
        if kind is None:
            if key in extra:
                continue
            raise _Decline
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _Decline


def _strings(values: Any) -> list[str]:
    if values is None:
        return []
    if not all(isinstance(v, str) for v in values):
        raise _Decline
    return values


def _attributes(params: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as moto's request parser leaves them (``BinaryValue`` decoded)."""
    system = params.get("MessageSystemAttributes")
    if system is not None and not all(isinstance(v, dict) for v in system.values()):
        raise _Decline
    attributes = params.get("MessageAttributes")
    if not attributes:
        return params
    decoded = {}
    for key, attr in attributes.items():
        if not isinstance(attr, dict) or not all(
            isinstance(attr.get(k, ""), str) for k in ("DataType", "StringValue", "BinaryValue")
        ):
            raise _Decline
        if set(attr) - {"DataType", "StringValue", "BinaryValue"}:
            raise _Decline
        if "BinaryValue" in attr:
            try:
                attr = {**attr, "BinaryValue": base64.b64decode(attr["BinaryValue"])}
            except (binascii.Error, ValueError):
                raise _Decline from None
        decoded[key] = attr
    return {**params, "MessageAttributes": decoded}


def _entries(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries the view's ``_check_entries`` accepts (1 to 10, valid distinct ids), or decline."""
    entries = params.get("Entries")
    if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
        raise _Decline
    if not all(isinstance(e, dict) and isinstance(e.get("Id"), str) for e in entries):
        raise _Decline
    ids = [e["Id"] for e in entries]
    if len(set(ids)) != len(ids) or not all(BATCH_ENTRY_ID.match(i) for i in ids):
        raise _Decline
    return entries


def _fast_result(
    engine: sqs.SqsEngine, action: str, name: str, params: dict[str, Any], sender_id: str
) -> dict[str, Any]:
    """The result moto's view would serialize; raises ``_Decline`` where the view would raise."""
    try:
        if action == "SendMessage":
            _typed(params, _SEND_KEYS, ("QueueUrl",))
            return _sent(_send(engine, name, _attributes(params), sender_id))
        if action == "SendMessageBatch":
            entries = _entries(params)
            for entry in entries:
                _typed(entry, _SEND_KEYS, ("Id",))
            entries = [_attributes(e) for e in entries]
            total = sum(len(str(e.get("MessageBody", "")).encode()) for e in entries)
            if total > engine.queue(name).max_message_bytes:
                raise _Decline
            return _send_batch(engine, name, entries, sender_id)
        if action == "ReceiveMessage":
            _typed(params, _RECEIVE_KEYS, ("QueueUrl",))
            count = params.get("MaxNumberOfMessages") or 1
            wait = params.get("WaitTimeSeconds")
            wait = engine.queue(name).receive_wait_s if wait is None else wait
            if not 1 <= count <= 10 or not 0 <= wait <= 20:
                raise _Decline
            wanted = set(_strings(params.get("AttributeNames"))) | set(
                _strings(params.get("MessageSystemAttributeNames"))
            )
            names = _strings(params.get("MessageAttributeNames"))
            timeout = params.get("VisibilityTimeout")
            return _receive(engine, name, count, timeout, wait, wanted, names)
        if action == "DeleteMessage":
            _typed(params, {"ReceiptHandle": str}, ("QueueUrl",))
            if "ReceiptHandle" not in params:
                raise _Decline
            engine.delete(name, params.get("ReceiptHandle"))
            return {}
        if action == "DeleteMessageBatch":
            entries = _entries(params)
            if not all(isinstance(e.get("ReceiptHandle"), str) for e in entries):
                raise _Decline
            return _delete_batch(engine, name, entries)
        if action == "ChangeMessageVisibility":
            _typed(params, {"ReceiptHandle": str, "VisibilityTimeout": int}, ("QueueUrl",))
            if "VisibilityTimeout" not in params or "ReceiptHandle" not in params:
                raise _Decline
            engine.change_visibility(name, params.get("ReceiptHandle"), params["VisibilityTimeout"])
            return {}
        if action == "ChangeMessageVisibilityBatch":
            entries = _entries(params)
            if not all(
                isinstance(e.get("ReceiptHandle"), str) and isinstance(e.get("VisibilityTimeout", 0), int)
                for e in entries
            ):
                raise _Decline
            return _change_visibility_batch(engine, name, entries)
    except sqs.SQSError:
        # the engine refused before changing anything: the view raises the same error, as an error
        raise _Decline from None
    raise _Decline


def _json_default(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def fast_sqs(action: str, body: bytes, authorization: str, user_agent: str = "") -> bytes | None:
    """The JSON body of the answer to SQS ``action`` on a catalog queue, or None (moto's view answers)."""
    bridge = ACTIVE
    if bridge is None or not FAST_PATH or action not in FAST_ACTIONS:
        return None
    try:
        params = json.loads(body)
    except ValueError:
        return None
    if not isinstance(params, dict) or not isinstance(params.get("QueueUrl"), str):
        return None
    url = params["QueueUrl"]
    name = url.split("/")[-1] if url.startswith(("http://", "https://")) else url
    engine = bridge.engine
    if not name or name not in engine:
        return None
    match = _ACCESS_KEY.search(authorization)
    sender_id = match.group(1) if match else "AKIAEXAMPLE"
    try:
        result = _fast_result(engine, action, name, params, sender_id)
    except _Decline:
        return None
    _mark_visited(sender_id, authorization, user_agent)
    return json.dumps(result, default=_json_default).encode()


_UA_REGION = re.compile(r"region/(?P<region>[a-z]{2}-[a-z]+-\d{1})")  # moto's


def _mark_visited(access_key: str, authorization: str, user_agent: str) -> None:
    """What moto's request setup records for IAM (an access key's last use), as the view does."""
    from moto.iam.models import get_account_id_from, mark_account_as_visited

    match = _UA_REGION.search(user_agent)
    scope = authorization.split(",")[0].split("/")
    if match:
        region = match.group(1)
    elif "AWS4" in authorization and len(scope) > 2:
        region = scope[2]
    else:
        region = "us-east-1"
    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(access_key)
    mark_account_as_visited(account_id=account, access_key=access_key, service="sqs", region=region)


def _engine_response_class() -> type:
    """``EngineSQSResponse`` (built lazily: importing moto's SQS responses costs ~100 ms)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sqs.exceptions import (
        BatchEntryIdsNotDistinct,
        EmptyBatchRequest,
        InvalidBatchEntryId,
        SQSException,
        TooManyEntriesInBatchRequest,
    )
    from moto.sqs.responses import SQSResponse

    class EngineSQSResponse(SQSResponse):
        """moto's SQS API, with catalog queues answered by the local cloud's engine."""

        def _engine_queue(self, name: str | None = None) -> tuple[sqs.SqsEngine | None, str]:
            name = name or self._get_queue_name()
            bridge = ACTIVE
            if bridge is not None and name in bridge.engine:
                return bridge.engine, name
            return None, name

        @staticmethod
        def _call(fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except sqs.SQSError as exc:
                raise SQSException(exc.code, exc.message) from None

        @staticmethod
        def _check_entries(entries: list[dict[str, Any]], action: str) -> None:
            if not entries:
                raise EmptyBatchRequest(action=action)
            if len(entries) > 10:
                raise TooManyEntriesInBatchRequest(len(entries))
            seen: set[str] = set()
            for entry in entries:
                entry_id = str(entry.get("Id", ""))
                if not BATCH_ENTRY_ID.match(entry_id):
                    raise InvalidBatchEntryId()
                if entry_id in seen:
                    raise BatchEntryIdsNotDistinct(entry_id)
                seen.add(entry_id)

        def _send(self, engine: sqs.SqsEngine, name: str, params: dict[str, Any]) -> sqs.SendResult:
            return _send(engine, name, params, self.get_access_key())

        def send_message(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().send_message()
            params = {
                k: self._get_param(k)
                for k in (
                    "MessageBody",
                    "MessageAttributes",
                    "MessageSystemAttributes",
                    "DelaySeconds",
                    "MessageGroupId",
                    "MessageDeduplicationId",
                )
            }
            result = self._call(lambda: self._send(engine, name, params))
            return ActionResult(_sent(result))

        def send_message_batch(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().send_message_batch()
            entries = self._get_param("Entries", [])
            self._check_entries(entries, "Send")
            total = sum(len(str(e.get("MessageBody", "")).encode()) for e in entries)
            queue = self._call(lambda: engine.queue(name))
            if total > queue.max_message_bytes:
                raise SQSException(
                    "BatchRequestTooLong",
                    f"Batch requests cannot be longer than {queue.max_message_bytes} bytes. "
                    f"You have sent {total} bytes.",
                )
            return ActionResult(_send_batch(engine, name, entries, self.get_access_key()))

        def receive_message(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().receive_message()
            count = self._get_param("MaxNumberOfMessages") or 1
            if not 1 <= count <= 10:
                raise SQSException(
                    "InvalidParameterValue",
                    f"Value {count} for parameter MaxNumberOfMessages is invalid. "
                    "Reason: Must be between 1 and 10, if provided.",
                )
            queue = self._call(lambda: engine.queue(name))
            wait = self._get_param("WaitTimeSeconds")
            wait = queue.receive_wait_s if wait is None else wait
            if not 0 <= wait <= 20:
                raise SQSException(
                    "InvalidParameterValue",
                    f"Value {wait} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20.",
                )
            wanted = set(self._get_param("AttributeNames") or []) | set(
                self._get_param("MessageSystemAttributeNames") or []
            )
            attribute_names = self._get_param("MessageAttributeNames") or []
            timeout = self._get_param("VisibilityTimeout")
            return ActionResult(
                self._call(lambda: _receive(engine, name, count, timeout, wait, wanted, attribute_names))
            )

        def delete_message(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().delete_message()
            handle = self._get_param("ReceiptHandle")
            self._call(lambda: engine.delete(name, handle))
            return EmptyResult()

        def delete_message_batch(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().delete_message_batch()
            entries = self._get_param("Entries", [])
            self._check_entries(entries, "Delete")
            return ActionResult(_delete_batch(engine, name, entries))

        def change_message_visibility(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().change_message_visibility()
            handle, timeout = self._get_param("ReceiptHandle"), self._get_param("VisibilityTimeout")
            self._call(lambda: engine.change_visibility(name, handle, int(timeout)))
            return EmptyResult()

        def change_message_visibility_batch(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().change_message_visibility_batch()
            entries = self._get_param("Entries", [])
            self._check_entries(entries, "ChangeMessageVisibility")
            return ActionResult(_change_visibility_batch(engine, name, entries))

        def purge_queue(self) -> Any:
            engine, name = self._engine_queue()
            if engine is None:
                return super().purge_queue()
            self._call(lambda: engine.purge(name))
            return EmptyResult()

        def get_queue_attributes(self) -> Any:
            result = super().get_queue_attributes()
            engine, name = self._engine_queue()
            attributes = getattr(result, "result", None)
            if engine is not None and isinstance(attributes, dict) and "Attributes" in attributes:
                visible, inflight, delayed = engine.depth(name)
                counts = {
                    "ApproximateNumberOfMessages": visible,
                    "ApproximateNumberOfMessagesNotVisible": inflight,
                    "ApproximateNumberOfMessagesDelayed": delayed,
                }
                for key, value in counts.items():
                    if key in attributes["Attributes"]:
                        attributes["Attributes"][key] = str(value)
                names = self._get_param("AttributeNames") or []
                allow = engine.queue(name).redrive_allow_policy
                if allow and ("All" in names or "RedriveAllowPolicy" in names):
                    attributes["Attributes"]["RedriveAllowPolicy"] = allow
            return result

        def set_queue_attributes(self) -> Any:
            result = super().set_queue_attributes()
            engine, name = self._engine_queue()
            if engine is not None:
                self._call(lambda: engine.queue(name).configure(self._get_param("Attributes", {})))
            return result

        def delete_queue(self) -> Any:
            engine, name = self._engine_queue()
            if engine is not None:
                raise SQSException(
                    "InvalidParameterValue",
                    f"Queue {name} belongs to the opsdeck catalog; the local cloud manages its lifecycle.",
                )
            return super().delete_queue()

        def _arn_queue(self, arn: str | None) -> tuple[sqs.SqsEngine, str]:
            engine, name = self._engine_queue(str(arn or "").rsplit(":", 1)[-1])
            if engine is None:
                raise SQSException(
                    "UnsupportedOperation",
                    "The local cloud emulates message move tasks for catalog queues only.",
                )
            return engine, name

        def start_message_move_task(self) -> Any:
            engine, source = self._arn_queue(self._get_param("SourceArn"))
            destination_arn = self._get_param("DestinationArn")
            destination = str(destination_arn).rsplit(":", 1)[-1] if destination_arn else None
            rate = self._get_param("MaxNumberOfMessagesPerSecond")
            task = self._call(lambda: engine.start_move_task(source, destination, rate))
            return ActionResult({"TaskHandle": task.handle})

        def list_message_move_tasks(self) -> Any:
            engine, source = self._arn_queue(self._get_param("SourceArn"))
            limit = self._get_param("MaxResults") or 1
            tasks = self._call(lambda: engine.move_tasks(source))[:limit]
            return ActionResult({"Results": [t.describe() for t in tasks]})

        def cancel_message_move_task(self) -> Any:
            raise SQSException(
                "ResourceNotFoundException", "The task is not running (local move tasks complete at once)."
            )

    return EngineSQSResponse


# ---------------------------------------------------------------- the server


class _Dispatcher:
    """moto's domain dispatcher with the catalog-aware routes in front."""

    def __init__(self) -> None:
        from moto.core.utils import convert_to_flask_response
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        engine_response = _engine_response_class()

        def create_app(service: str) -> Any:
            app = create_backend_app(service)
            if service == "sqs":
                view = convert_to_flask_response(engine_response.dispatch)
                for endpoint in list(app.view_functions):
                    app.view_functions[endpoint] = view
            return app

        self.moto = DomainDispatcherApplication(create_app)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        bridge = ACTIVE
        path = environ.get("PATH_INFO", "")
        if bridge is not None and environ.get("REQUEST_METHOD") == "POST":
            m = LAMBDA_INVOKE.match(path)
            if m:
                return self._invoke(bridge, m.group("name"), environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if bridge is not None and target.startswith("AWSEvents.") and target.split(".", 1)[1] in RULE_WRITES:
            result = self.moto(environ, start_response)
            bridge.rules_changed()
            return result
        return self.moto(environ, start_response)

    @staticmethod
    def _invoke(bridge: Bridge, name: str, environ: dict[str, Any], start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        status, headers, body = bridge.lambda_invoke(
            function_name_from(name),
            payload,
            environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse"),
            environ.get("HTTP_X_AMZ_LOG_TYPE", "None"),
        )
        reason = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found"}
        start_response(
            f"{status} {reason.get(status, 'Error')}",
            [*headers.items(), ("Content-Length", str(len(body)))],
        )
        return [body]


#: requests with one of these headers always go to moto's view (it decodes, dechunks, reads them)
_VIEW_HEADERS = ("Transfer-Encoding", "Content-Encoding", "Expect", "x-moto-account-id")


def _handler_class(connections: set[socket.socket]) -> type:
    """moto's request handler, with the SQS fast path in front and kept-alive connections for it."""
    from moto.moto_api import recorder
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class AwsRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.add(self.connection)

        def finish(self) -> None:
            connections.discard(self.connection)
            super().finish()
            spare = self.__dict__.pop("_socket_rfile", None)
            if spare is not None:
                spare.close()

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run_wsgi(self) -> None:
            headers = self.headers
            target = headers.get("X-Amz-Target") or ""
            if (
                self.command == "POST"
                and target.startswith("AmazonSQS.")
                and ACTIVE is not None
                and FAST_PATH
                and self.path == "/"
                and (headers.get("Content-Length") or "").isdigit()
                and (headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256 ")
                and not any(h in headers for h in _VIEW_HEADERS)
                and not recorder._user_enabled
            ):
                body = self.rfile.read(int(headers["Content-Length"]))
                answer = fast_sqs(
                    target.split(".", 1)[1], body, headers["Authorization"], headers.get("User-Agent") or ""
                )
                if answer is not None:
                    self._answer(answer)
                    return
                # moto's view answers (and werkzeug closes the connection after it): give it the body
                self._socket_rfile, self.rfile = self.rfile, io.BytesIO(body)
            super().run_wsgi()

        def _answer(self, body: bytes) -> None:
            """200 with the headers moto's view sends, in one write (no Nagle wait on a second one)."""
            head = (
                "HTTP/1.1 200 OK\r\n"
                f"Server: {self.version_string()}, amazon.com\r\n"
                f"Date: {self.date_time_string()}\r\n"
                "Content-Type: application/x-amz-json-1.0\r\n"
                f"x-amzn-RequestId: {uuid.uuid4().hex}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Access-Control-Allow-Origin: *\r\n\r\n"
            )
            self.wfile.write(head.encode("latin-1") + body)

    return AwsRequestHandler


class AwsEndpoint:
    """The process's moto server (werkzeug, threaded) on ``host:port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from werkzeug.serving import make_server

        self._connections: set[socket.socket] = set()
        handler = _handler_class(self._connections)
        try:
            self._server = make_server(host, port, _Dispatcher(), threaded=True, request_handler=handler)
        except OSError as exc:
            from localcloud.errors import LocalCloudError

            raise LocalCloudError(
                f"cannot listen on {host}:{port} for the AWS endpoint: {exc.strerror}"
            ) from None
        self.host, self.port = host, self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="localcloud-aws", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource (what moto's ``/moto-api/reset`` does, without the round trip)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._connections):  # kept-alive connections wait for a next request
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)


_endpoint: AwsEndpoint | None = None
_endpoint_lock = threading.Lock()


def endpoint(port: int = 0, host: str = "127.0.0.1") -> AwsEndpoint:
    """The process's AWS endpoint, started on first use (a different fixed port restarts it)."""
    global _endpoint
    with _endpoint_lock:
        if _endpoint is not None and port and _endpoint.port != port:
            _endpoint.stop()
            _endpoint = None
        if _endpoint is None:
            _endpoint = AwsEndpoint(host, port)
        return _endpoint


# ----------------------------------------------------------------- provisioning
# The catalog's resources are created in moto's backends directly: the same state
# CreateQueue/PutRule/CreateSecret would leave, without three botocore clients and their
# round trips on the boot path (~0.3 s of ``opsdeck local up``). Everything moto-internal
# stays in this module; the tests exercise the results through the public APIs.


def create_queue(name: str, attributes: dict[str, str]) -> None:
    from moto.sqs.models import sqs_backends

    sqs_backends[ACCOUNT_ID][REGION].create_queue(name, None, **attributes)


def create_rule(
    name: str, expression: str, *, enabled: bool, description: str, target_arn: str, target_id: str
) -> None:
    from moto.events.models import events_backends

    backend = events_backends[ACCOUNT_ID][REGION]
    backend.put_rule(
        name,
        description=description,
        scheduled_expression=expression,
        state="ENABLED" if enabled else "DISABLED",
    )
    backend.put_targets(name, None, [{"Id": target_id, "Arn": target_arn}])


def create_secret(name: str, value: str) -> str:
    """Returns the secret's ARN."""
    from moto.secretsmanager.models import secretsmanager_backends

    created = secretsmanager_backends[ACCOUNT_ID][REGION].create_secret(
        name=name,
        secret_string=value,
        secret_binary=None,
        description="opsdeck local cloud",
        tags=None,
        kms_key_id=None,
        client_request_token=None,
        replica_regions=[],
        force_overwrite=False,
    )
    return json.loads(created)["ARN"]


# ------------------------------------------------------------------------ S3


def create_bucket(name: str, cors_origins: tuple[str, ...] = ()) -> None:
    """A private bucket (moto's S3 keeps objects in memory); CORS as the catalog declares it."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT_ID]["global"]
    backend.create_bucket(name, REGION)
    if cors_origins:
        backend.put_bucket_cors(
            name,
            [{"AllowedMethod": ["GET", "POST"], "AllowedOrigin": list(cors_origins), "AllowedHeader": ["*"]}],
        )


# ----------------------------------------------------------------- EventBridge


def rule_state(rule_name: str) -> tuple[str, str | None] | None:
    """``(State, ScheduleExpression)`` of an EventBridge rule as moto holds it; None if deleted."""
    from moto.events.models import events_backends

    try:
        rule = events_backends[ACCOUNT_ID][REGION].describe_rule(rule_name, None)
    except Exception:
        return None
    return rule.state, rule.scheduled_expression


def lambda_response(
    status: int, body: Any, *, error_type: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A Lambda API response: JSON body, ``x-amzn-ErrorType`` on API errors."""
    out = {"Content-Type": "application/json", **(headers or {})}
    if error_type:
        out["x-amzn-ErrorType"] = error_type
    data = b"" if body is None else json.dumps(body, default=str).encode()
    return status, out, data
