"""Monitoring: alarms for API, database and cache, an encrypted alarm topic, dashboards per capability."""

from __future__ import annotations

from tests.infra.conftest import Synth


def _alarms(synth: Synth) -> dict[str, dict]:
    prefix = synth.config.stack_name + "-"
    return {
        a["Properties"]["AlarmName"].removeprefix(prefix): a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_platform_alarms(synth: Synth):
    alarms = _alarms(synth)
    assert alarms["api-5xx"]["MetricName"] == "5xx"
    assert alarms["api-latency-p95"]["MetricName"] == "Latency"
    assert alarms["api-latency-p95"]["ExtendedStatistic"] == "p95"
    assert alarms["api-latency-p95"]["Threshold"] == synth.config.api_latency_p95_ms
    assert alarms["database-cpu"]["MetricName"] == "CPUUtilization"
    assert alarms["database-connections"]["MetricName"] == "DatabaseConnections"
    assert alarms["cache-cpu"]["MetricName"] == "EngineCPUUtilization"
    assert alarms["cache-memory"]["MetricName"] == "DatabaseMemoryUsagePercentage"


def test_queue_age_alarms(synth: Synth):
    from functions.catalog import Queue

    alarms = _alarms(synth)
    for f in synth.functions:
        if isinstance(f.trigger, Queue):
            alarm = alarms[f"{f.trigger.name}-age"]
            assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
            assert alarm["Threshold"] == synth.config.queue_age_alarm_seconds


def test_every_alarm_notifies_the_encrypted_topic(synth: Synth):
    (topic_id, topic), *_ = synth.of_type("AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    (key,) = synth.of_type("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert "cloudwatch.amazonaws.com" in str(key["Properties"]["KeyPolicy"])
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]
        stalled = alarm["Properties"]["AlarmName"].endswith("-stalled")  # no data is the symptom
        assert alarm["Properties"]["TreatMissingData"] == ("breaching" if stalled else "notBreaching")


def test_alarm_emails_from_context(synthetic: Synth, real: Synth):
    (subscription,) = synthetic.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"
    assert real.of_type("AWS::SNS::Subscription") == {}


def test_one_dashboard_per_capability_plus_platform(synth: Synth):
    names = {d["Properties"]["DashboardName"] for d in synth.of_type("AWS::CloudWatch::Dashboard").values()}
    capabilities = {f.capability for f in synth.functions}
    assert names == {f"{synth.config.stack_name}-{c}" for c in capabilities | {"platform"}}
    for dashboard in synth.of_type("AWS::CloudWatch::Dashboard").values():
        body = str(dashboard["Properties"]["DashboardBody"])
        capability = dashboard["Properties"]["DashboardName"].removeprefix(synth.config.stack_name + "-")
        for f in synth.functions:
            if f.capability == capability:
                assert f"{f.name}: invocations" in body


def test_catalog_metric_alarms_and_stalled_schedules(real: Synth):
    """platform_sync: failure rate per task type (metric math on its EMF metrics), stalled dispatchers."""
    alarms = _alarms(real)
    for task_type in ("sync", "valid"):
        rate = alarms[f"platform-sync-worker-{task_type}-failure-rate"]
        assert rate["ComparisonOperator"] == "GreaterThanThreshold" and rate["Threshold"] == 20
        assert rate["EvaluationPeriods"] == 3
        expression = next(m for m in rate["Metrics"] if "Expression" in m)
        assert expression["Expression"] == "100 * m / (m + o0)" and expression["ReturnData"] is True
        stats = {m["Id"]: m["MetricStat"]["Metric"] for m in rate["Metrics"] if "MetricStat" in m}
        assert {k: v["MetricName"] for k, v in stats.items()} == {"m": "JobsFailed", "o0": "JobsSucceeded"}
        assert stats["m"]["Namespace"] == "opsdeck"
        assert {d["Name"]: d["Value"] for d in stats["m"]["Dimensions"]} == {
            "service": "platform_sync",
            "task_type": task_type,
        }
        stalled = alarms[f"platform-sync-{task_type}-schedule-stalled"]
        assert (stalled["MetricName"], stalled["Period"], stalled["Threshold"]) == ("Invocations", 300, 1)
        assert stalled["ComparisonOperator"] == "LessThanThreshold"
        assert stalled["TreatMissingData"] == "breaching"
