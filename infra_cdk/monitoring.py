"""Monitoring: alarms into one SNS topic, and a CloudWatch dashboard per capability.

Alarms (``<stack>-<subject>-<what>``; alarm and OK both notify; missing data = not breaching):
* every function: ``Errors`` > 0 and ``Throttles`` > 0 over 5 minutes;
* every catalog queue: DLQ ``ApproximateNumberOfMessagesVisible`` > 0 (1 minute), source queue
  ``ApproximateAgeOfOldestMessage`` > ``queueAgeAlarmSeconds``;
* every schedule with ``stalled_after_minutes``: ``Invocations`` < 1 over that window (missing
  data = breaching), stretched to a ``scheduleExpressions`` override (``stalled_alarm_minutes``);
* the HTTP API: 5xx count ≥ ``api5xxPerFiveMinutes`` per 5 minutes, p95 latency >
  ``apiLatencyP95Ms`` for 15 minutes;
* PostgreSQL: CPU > 80 % for 15 minutes, connections > ``dbConnectionsAlarm``;
* Valkey: engine CPU > 80 % and memory > 80 % (primary node).

The topic is encrypted with a customer-managed KMS key that CloudWatch may use (alarms cannot
publish to a topic under the AWS-managed SNS key); ``alarmEmails`` subscribes addresses.
Dashboards: ``<stack>-<capability>`` (its functions and queues) and ``<stack>-platform``
(API, database, proxy, cache).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from functions.catalog import Function, MetricAlarm, Queue, Schedule, schedule_name

from .api import HttpApi
from .config import DeployConfig
from .data import Data
from .queues import Queues

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: tuple[Function, ...],
        config: DeployConfig,
        lambdas: dict[str, lambda_.Function],
        queues: Queues,
        api: HttpApi,
        data: Data,
        stalled_minutes: Mapping[str, int],
    ) -> None:
        """``stalled_minutes``: ``infra_cdk.schedules.stalled_alarm_minutes``, one entry per schedule
        with a stalled alarm."""
        super().__init__(scope, id)
        self.prefix = config.stack_name
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{config.stack_name}: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self, "Alarms", display_name=f"{config.stack_name} alarms", master_key=key, enforce_ssl=True
        )
        for address in config.alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}

        for f in functions:
            fn = lambdas[f.name]
            self._alarm(
                f"{f.name}-errors",
                fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                0,
                f"{f.name} raised errors (invocation failures or crashed batches)",
            )
            self._alarm(
                f"{f.name}-throttles",
                fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                0,
                f"{f.name} was throttled (reserved/maximum concurrency or the account limit)",
            )
        for f in functions:
            for spec in f.alarms:
                self._alarm(
                    f"{f.name}-{spec.name}",
                    self._catalog_metric(spec),
                    spec.threshold,
                    spec.description,
                    periods=spec.evaluation_periods,
                    below=spec.comparison == "lt",
                )
            if isinstance(f.trigger, Schedule) and schedule_name(f) in stalled_minutes:
                minutes = stalled_minutes[schedule_name(f)]
                # <stack>-<schedule>-stalled = <rule>-stalled: code that disables the rule (platform_sync
                # pause/stop) disables this alarm's actions too, so a paused task type is not "stalled"
                self._alarm(
                    f"{schedule_name(f)}-stalled",
                    lambdas[f.name].metric_invocations(period=Duration.minutes(minutes), statistic="Sum"),
                    1,
                    f"{f.name} was not invoked for {minutes} minutes although its schedule should run",
                    below=True,
                    missing=cw.TreatMissingData.BREACHING,
                )
        for name, dlq in queues.dlqs.items():
            self._alarm(
                f"{name}-dlq-depth",
                dlq.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic="Maximum"),
                0,
                f"messages of {name} reached its DLQ: inspect, fix, replay (opsdeck queues replay)",
            )
            self._alarm(
                f"{name}-age",
                queues.queues[name].metric_approximate_age_of_oldest_message(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                config.queue_age_alarm_seconds,
                f"{name} is falling behind: its oldest message waited > {config.queue_age_alarm_seconds} s",
            )
        self._alarm(
            "api-5xx",
            api.api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            config.api_5xx_per_five_minutes - 1,
            f"the HTTP API answered >= {config.api_5xx_per_five_minutes} 5xx in 5 minutes",
        )
        self._alarm(
            "api-latency-p95",
            api.api.metric_latency(period=FIVE_MINUTES, statistic="p95"),
            config.api_latency_p95_ms,
            f"HTTP API p95 latency above {config.api_latency_p95_ms} ms for 15 minutes",
            periods=3,
        )
        self._alarm(
            "database-cpu",
            data.database.metric_cpu_utilization(period=FIVE_MINUTES, statistic="Average"),
            80,
            "PostgreSQL CPU above 80 % for 15 minutes",
            periods=3,
        )
        self._alarm(
            "database-connections",
            data.database.metric_database_connections(period=FIVE_MINUTES, statistic="Maximum"),
            config.db_connections_alarm,
            f"PostgreSQL has more than {config.db_connections_alarm} connections",
        )
        self._alarm(
            "cache-cpu",
            self._cache_metric(data, "EngineCPUUtilization"),
            80,
            "Valkey engine CPU above 80 % for 15 minutes",
            periods=3,
        )
        self._alarm(
            "cache-memory",
            self._cache_metric(data, "DatabaseMemoryUsagePercentage"),
            80,
            "Valkey memory above 80 % (eviction ahead)",
            periods=3,
        )
        self.dashboards = self._dashboards(functions, lambdas, queues, api, data)

    # ----------------------------------------------------------------- helpers

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        *,
        periods: int = 1,
        below: bool = False,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> cw.Alarm:
        alarm = metric.create_alarm(
            self,
            name,
            alarm_name=f"{self.prefix}-{name}",
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=(
                cw.ComparisonOperator.LESS_THAN_THRESHOLD
                if below
                else cw.ComparisonOperator.GREATER_THAN_THRESHOLD
            ),
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
        return alarm

    @staticmethod
    def _catalog_metric(spec: MetricAlarm) -> cw.IMetric:
        """A catalog ``MetricAlarm``'s metric: the EMF metric, or its percentage of a total."""

        def emf(name: str) -> cw.Metric:
            return cw.Metric(
                namespace="opsdeck",
                metric_name=name,
                dimensions_map=dict(spec.dimensions),
                statistic=spec.statistic,
                period=Duration.seconds(spec.period_s),
            )

        if not spec.ratio_of:
            return emf(spec.metric)
        others = {f"o{i}": emf(name) for i, name in enumerate(spec.ratio_of)}
        return cw.MathExpression(
            expression=f"100 * m / (m + {' + '.join(others)})",
            using_metrics={"m": emf(spec.metric), **others},
            period=Duration.seconds(spec.period_s),
            label=f"{spec.metric} % of {spec.metric} + {' + '.join(spec.ratio_of)}",
        )

    @staticmethod
    def _cache_metric(data: Data, name: str) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/ElastiCache",
            metric_name=name,
            dimensions_map={"CacheClusterId": data.cache_node_id(1)},
            period=FIVE_MINUTES,
            statistic="Average",
        )

    def _dashboards(
        self,
        functions: tuple[Function, ...],
        lambdas: dict[str, lambda_.Function],
        queues: Queues,
        api: HttpApi,
        data: Data,
    ) -> dict[str, cw.Dashboard]:
        dashboards: dict[str, cw.Dashboard] = {}
        for capability in sorted({f.capability for f in functions}):
            board = cw.Dashboard(
                self, f"{capability}-dashboard", dashboard_name=f"{self.prefix}-{capability}"
            )
            for f in (f for f in functions if f.capability == capability):
                fn = lambdas[f.name]
                board.add_widgets(
                    cw.GraphWidget(
                        title=f"{f.name}: invocations, errors, throttles",
                        left=[fn.metric_invocations(), fn.metric_errors(), fn.metric_throttles()],
                        width=12,
                    ),
                    cw.GraphWidget(
                        title=f"{f.name}: duration p50 / p95 / max (ms)",
                        left=[fn.metric_duration(statistic=s) for s in ("p50", "p95", "Maximum")],
                        width=12,
                    ),
                )
                if isinstance(f.trigger, Queue):
                    trigger_queue = f.trigger.name
                    queue, dlq = queues.queues[trigger_queue], queues.dlqs[trigger_queue]
                    board.add_widgets(
                        cw.GraphWidget(
                            title=f"{trigger_queue}: visible / in flight, DLQ visible",
                            left=[
                                queue.metric_approximate_number_of_messages_visible(),
                                queue.metric_approximate_number_of_messages_not_visible(),
                                dlq.metric_approximate_number_of_messages_visible(),
                            ],
                            width=12,
                        ),
                        cw.GraphWidget(
                            title=f"{trigger_queue}: age of oldest message (s)",
                            left=[queue.metric_approximate_age_of_oldest_message(statistic="Maximum")],
                            width=12,
                        ),
                    )
            dashboards[capability] = board
        platform = cw.Dashboard(self, "platform-dashboard", dashboard_name=f"{self.prefix}-platform")
        platform.add_widgets(
            cw.GraphWidget(
                title="HTTP API: requests, 4xx, 5xx",
                left=[api.api.metric_count(), api.api.metric_client_error(), api.api.metric_server_error()],
                width=12,
            ),
            cw.GraphWidget(
                title="HTTP API latency p50 / p95 (ms)",
                left=[api.api.metric_latency(statistic=s) for s in ("p50", "p95")],
                width=12,
            ),
            cw.GraphWidget(
                title="PostgreSQL: CPU %, connections",
                left=[data.database.metric_cpu_utilization()],
                right=[data.database.metric_database_connections()],
                width=12,
            ),
            cw.GraphWidget(
                title="Valkey: engine CPU %, memory %",
                left=[self._cache_metric(data, "EngineCPUUtilization")],
                right=[self._cache_metric(data, "DatabaseMemoryUsagePercentage")],
                width=12,
            ),
        )
        dashboards["platform"] = platform
        return dashboards
