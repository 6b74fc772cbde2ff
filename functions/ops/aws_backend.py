"""The ops API's AWS backend: this stack's SQS queues, EventBridge rules, Lambda functions,
CloudWatch metrics (``GetMetricData``) and Logs Insights, through the container's boto3 clients.

Physical names are ``$OPSDECK_RESOURCE_PREFIX`` (``<stack>-``, set by CDK on functions that
``operate_stack``) + the catalog name, the convention of ``infra_cdk/names.py``; the IAM policy
CDK gives ``ops-api`` names exactly those resources (``infra_cdk/functions.py``).

What AWS cannot give, said instead of faked:

* SQS has no peek: peeking a **DLQ** receives with ``VisibilityTimeout=0`` (the messages stay,
  their receive count goes up, nothing is redriven: a DLQ has no redrive policy); a source queue
  is refused (a receive there counts towards ``maxReceiveCount`` and could dead-letter it);
* the oldest message's age is SQS's ``ApproximateAgeOfOldestMessage`` metric (1-minute data);
* the invocation journal is the local cloud's: on AWS one invocation's log lines come from
  Logs Insights (by request id), there is no list of invocations and no re-invoke (the event is
  not stored anywhere).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from functions import catalog
from functions.ops.backend import NotAvailable, capability_state, failure_reason, queue_entries, queue_entry
from functions.ops.backend import schedule_entry as _schedule_entry
from opsdeck import aws
from opsdeck.errors import InvalidInput, NotFound, UpstreamError

#: how long a Logs Insights query may take before we give up (the API's budget is 29 s)
QUERY_WAIT_S = 8.0
#: a move task still running after this long is reported as running (API Gateway's 29 s)
MOVE_TASK_WAIT_S = 15.0


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if t else None


def _metric_id(prefix: str, i: int) -> str:
    return f"{prefix}{i}"


class AwsBackend:
    mode = "aws"

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = os.environ.get("OPSDECK_RESOURCE_PREFIX", "") if prefix is None else prefix
        self._urls: dict[str, str] = {}

    # ---------------------------------------------------------------- helpers
    def _client_call(self, service: str, operation: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(aws.client(service), operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise UpstreamError(
                f"{service} refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise UpstreamError(f"{service} is unreachable: {exc}") from None

    def _url(self, physical: str) -> str:
        if physical not in self._urls:
            self._urls[physical] = self._client_call(
                "sqs", "get_queue_url", QueueName=self.prefix + physical
            )["QueueUrl"]
        return self._urls[physical]

    def _metrics(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
        """GetMetricData (paged, 500 queries a call) → id → (timestamps, values), oldest first."""
        out: dict[str, Any] = {}
        for i in range(0, len(queries), 500):
            params: dict[str, Any] = {
                "MetricDataQueries": queries[i : i + 500],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            while True:
                page = self._client_call("cloudwatch", "get_metric_data", **params)
                for result in page.get("MetricDataResults", []):
                    ts, vs = out.setdefault(result["Id"], ([], []))
                    ts.extend(result.get("Timestamps", []))
                    vs.extend(result.get("Values", []))
                if not page.get("NextToken"):
                    break
                params["NextToken"] = page["NextToken"]
        for key, (ts, vs) in list(out.items()):
            pairs = sorted(zip(ts, vs, strict=False), key=lambda p: p[0])
            out[key] = ([p[0] for p in pairs], [p[1] for p in pairs])
        return out

    @staticmethod
    def _query(qid: str, namespace: str, metric: str, dimension: str, value: str, stat: str, period: int):
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": metric,
                    "Dimensions": [{"Name": dimension, "Value": value}],
                },
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    def _insights(self, log_groups: list[str], query: str, start: datetime, end: datetime) -> list[dict]:
        started = self._client_call(
            "logs",
            "start_query",
            logGroupNames=log_groups,
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()) + 1,  # include this second
            queryString=query,
            limit=200,
        )
        deadline = time.monotonic() + QUERY_WAIT_S
        while True:
            result = self._client_call("logs", "get_query_results", queryId=started["queryId"])
            if result.get("status") not in ("Scheduled", "Running") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        return [{f["field"]: f.get("value") for f in row} for row in result.get("results", [])]

    # ------------------------------------------------------------- functions
    def function_stats(self, window_s: int) -> dict[str, dict[str, Any]]:
        end = datetime.now(UTC)
        start = end - timedelta(seconds=window_s)
        queries = []
        for i, f in enumerate(catalog.FUNCTIONS):
            name = self.prefix + f.name
            for key, metric, stat in (
                ("i", "Invocations", "Sum"),
                ("e", "Errors", "Sum"),
                ("d", "Duration", "p95"),
            ):
                queries.append(
                    self._query(
                        _metric_id(key, i), "AWS/Lambda", metric, "FunctionName", name, stat, window_s
                    )
                )
        data = self._metrics(queries, start, end)

        def total(qid: str) -> float:
            return sum(data.get(qid, ([], []))[1])

        out = {}
        for i, f in enumerate(catalog.FUNCTIONS):
            durations = data.get(f"d{i}", ([], []))[1]
            out[f.name] = {
                "invocations": int(total(f"i{i}")),
                "errors": int(total(f"e{i}")),
                "p95_ms": round(max(durations), 3) if durations else None,
            }
        return out

    # ---------------------------------------------------------------- queues
    def queues(self) -> list[dict[str, Any]]:
        entries = queue_entries()
        end = datetime.now(UTC)
        ages = self._metrics(
            [
                self._query(
                    _metric_id("a", i),
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    "QueueName",
                    self.prefix + e["queue"],
                    "Maximum",
                    60,
                )
                for i, e in enumerate(entries)
            ],
            end - timedelta(minutes=5),
            end,
        )
        out = []
        for i, entry in enumerate(entries):
            attrs = self._client_call(
                "sqs",
                "get_queue_attributes",
                QueueUrl=self._url(entry["queue"]),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            age = ages.get(f"a{i}", ([], []))[1]
            out.append(
                {
                    **entry,
                    "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                    "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                    "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
                    "oldest_age_s": age[-1] if age else None,
                }
            )
        return out

    def peek(self, queue: str, limit: int) -> list[dict[str, Any]]:
        entry = queue_entry(queue)
        if not entry["dlq"]:
            raise InvalidInput(
                f"{entry['name']} is a source queue: SQS has no peek, and a receive there counts "
                "towards maxReceiveCount (peek its DLQ instead)"
            )
        response = self._client_call(
            "sqs",
            "receive_message",
            QueueUrl=self._url(entry["queue"]),
            MaxNumberOfMessages=max(1, min(10, limit)),
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        reasons: list[str] = []
        if messages:
            ids = ", ".join(f'"{m["MessageId"]}"' for m in messages)
            end = datetime.now(UTC)
            rows = self._insights(
                [f"/aws/lambda/{self.prefix}{entry['consumer']}"],
                f'fields @message | filter message = "record failed" and message_id in [{ids}] | limit 200',
                end - timedelta(days=14),
                end,
            )
            reasons = [str(r.get("@message", "")) for r in rows]
        return [
            {
                "message_id": m["MessageId"],
                "body": m.get("Body", ""),
                "attributes": m.get("Attributes", {}),
                "message_attributes": m.get("MessageAttributes", {}),
                "receive_count": int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                "state": "visible",
                "failure": failure_reason(reasons, m["MessageId"]),
            }
            for m in messages
        ]

    def replay(self, dlq: str, **options: Any) -> dict[str, Any]:
        from opsdeck.replay import replay

        entry = queue_entry(dlq)
        if not entry["dlq"]:
            # no replay of that queue exists: 404 (the document's queue is any queue name)
            raise NotFound(f"{entry['name']!r} is not a dead-letter queue (its DLQ is {entry['name']}-dlq)")
        to = options.pop("to", None)
        return replay(
            aws.client("sqs"),
            self._url(entry["queue"]),
            to=self._url(queue_entry(to)["queue"]) if to else None,
            wait_s=MOVE_TASK_WAIT_S,
            **options,
        )

    # ------------------------------------------------------------- schedules
    def _describe(self, name: str) -> dict[str, Any]:
        from opsdeck.schedules import ScheduleExpressionError, next_fire

        schedule, function = _schedule_entry(name)
        rule = self._client_call("events", "describe_rule", Name=self.prefix + name)
        expression = rule.get("ScheduleExpression") or schedule.expression
        end = datetime.now(UTC)
        data = self._metrics(
            [self._query("f", "AWS/Events", "Invocations", "RuleName", rule["Name"], "Sum", 60)],
            end - timedelta(days=1),
            end,
        )
        ts, vs = data.get("f", ([], []))
        fired = [t for t, v in zip(ts, vs, strict=False) if v > 0]
        last = max(fired) if fired else None
        nxt = None
        if rule.get("State") == "ENABLED":
            try:
                # a rate counts from the rule's creation, which AWS does not tell: from the last fire
                nxt = (
                    next_fire(expression, end, anchor=last)
                    if (last or expression.startswith("cron"))
                    else None
                )
            except ScheduleExpressionError:
                nxt = None
        return {
            "name": name,
            "rule": rule["Name"],
            "arn": rule.get("Arn"),
            "expression": expression,
            "state": rule.get("State", "UNKNOWN"),
            "function": function.name,
            "capability": function.capability,
            "last_fire": _iso(last),
            "next_fire": _iso(nxt),
            "capability_state": capability_state(function, name),
        }

    def schedules(self) -> list[dict[str, Any]]:
        return [self._describe(name) for name in catalog.schedules()]

    def fire(self, schedule: str) -> dict[str, Any]:
        import json

        entry, function = _schedule_entry(schedule)
        rule = self._client_call("events", "describe_rule", Name=self.prefix + schedule)
        arn = rule["Arn"]
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": arn.split(":")[4],
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": arn.split(":")[3],
            "resources": [arn],
            "detail": dict(entry.input),
        }
        self._client_call(
            "lambda",
            "invoke",
            FunctionName=self.prefix + function.name,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        return {"schedule": schedule, "function": function.name, "event_id": event["id"]}

    def set_enabled(self, schedule: str, enabled: bool) -> dict[str, Any]:
        _schedule_entry(schedule)
        self._client_call("events", "enable_rule" if enabled else "disable_rule", Name=self.prefix + schedule)
        return self._describe(schedule)

    # ----------------------------------------------------------- invocations
    def invocations(self, **_: Any) -> list[dict[str, Any]]:
        raise NotAvailable(
            "the invocation journal is the local cloud's; on AWS open one invocation by request id "
            "(GET /ops/invocations/{request_id}?function=NAME reads its lines from Logs Insights)"
        )

    def invocation(self, request_id: str, function: str | None) -> dict[str, Any]:
        if not function:
            raise InvalidInput("on AWS, name the function: ?function=NAME (its log group is searched)")
        if function not in catalog.by_name():
            raise InvalidInput(f"unknown function {function!r}")
        end = datetime.now(UTC)
        rows = self._insights(
            [f"/aws/lambda/{self.prefix}{function}"],
            f'fields @timestamp, @message | filter @requestId = "{request_id}" '
            "| sort @timestamp asc | limit 200",
            end - timedelta(days=7),
            end,
        )
        return {
            "request_id": request_id,
            "function": function,
            "event": None,
            "result": None,
            "logs": [str(r.get("@message", "")) for r in rows],
            "kept": False,
        }

    def reinvoke(self, request_id: str) -> dict[str, Any]:
        raise NotAvailable("re-invoke needs the invocation's event, which only the local cloud keeps")

    # ---------------------------------------------------------------- charts
    def series(self, minutes: int) -> dict[str, Any]:
        end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(minutes=minutes)
        functions = list(catalog.FUNCTIONS)
        entries = queue_entries()
        queries = []
        for i, f in enumerate(functions):
            name = self.prefix + f.name
            queries.append(self._query(f"i{i}", "AWS/Lambda", "Invocations", "FunctionName", name, "Sum", 60))
            queries.append(self._query(f"e{i}", "AWS/Lambda", "Errors", "FunctionName", name, "Sum", 60))
        for i, e in enumerate(entries):
            queries.append(
                self._query(
                    f"q{i}",
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    self.prefix + e["queue"],
                    "Maximum",
                    60,
                )
            )
        data = self._metrics(queries, start, end)

        def per_minute(qid: str) -> list[int]:
            values = [0] * minutes
            for t, v in zip(*data.get(qid, ([], [])), strict=False):
                index = int((t - start).total_seconds() // 60)
                if 0 <= index < minutes:
                    values[index] += int(v)
            return values

        invocations = {f.name: per_minute(f"i{i}") for i, f in enumerate(functions)}
        errors = {f.name: per_minute(f"e{i}") for i, f in enumerate(functions)}
        depth = {
            e["name"]: [[_iso(t), int(v), None] for t, v in zip(*data.get(f"q{i}", ([], [])), strict=False)]
            for i, e in enumerate(entries)
        }
        return {
            "start": _iso(start),
            "end": _iso(end),
            "step_s": 60,
            "minutes": [_iso(start + timedelta(minutes=i)) for i in range(minutes)],
            "invocations": {n: v for n, v in invocations.items() if any(v)},
            "errors": {n: v for n, v in errors.items() if any(v)},
            "queue_depth": {q: v for q, v in depth.items() if v},
        }
