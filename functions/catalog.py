"""THE map of opsdeck: every Lambda function and its trigger, declared once.

``infra_cdk`` turns this catalog into CloudFormation, ``localcloud`` turns it into a
running emulation, tests check that both agree with it. Adding a function is one
entry here, its module, and a sample event under ``events/<function name>/``.

Nothing here imports anything heavy: the ``ops`` API lists the catalog at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from opsdeck.naming import (
    bucket_name_env,
    function_name_env,
    queue_url_env,
    schedule_rule_env,
    secret_id_env,
    secret_prefix_env,
)

# ------------------------------------------------------------------------- types

CAPABILITIES: Mapping[str, str] = MappingProxyType(
    {
        # capability → base path of its routes on the one HTTP API
        "ops": "/ops",
        "marketplace": "/marketplace",
        "platform_sync": "/platform-sync",
        "product_monitor": "/product-monitor",
        "snacks": "/snacks",
        "backoffice": "/backoffice",
    }
)

#: capability → the PostgreSQL schemas it owns (its migrations create them, its functions use
#: them). Each capability gets two database roles from this (``opsdeck.migrations``): an
#: owner (owns these schemas; migrations run as it) and a runtime role (DML on these schemas
#: only), named by ``opsdeck.naming.database_role``. A capability absent here owns the schema
#: named like it.
SCHEMAS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ops": ("ops",),
        "marketplace": ("marketplace",),
        "platform_sync": ("platform_sync",),
        "product_monitor": ("product_monitor", "staging_raw"),
        "snacks": ("snacks",),
        "backoffice": ("bo",),
    }
)


def schemas() -> dict[str, tuple[str, ...]]:
    """Every capability with its schemas (``SCHEMAS``, else the capability's own name)."""
    return {cap: tuple(SCHEMAS.get(cap, (cap,))) for cap in CAPABILITIES}


HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
_PATH = re.compile(r"^(/[A-Za-z0-9._~\-]+|/\{[a-z_][a-z0-9_]*\+?\})+$|^/$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,46}[a-z0-9]$")


class CatalogError(ValueError):
    """The catalog contradicts itself or AWS's limits."""


@dataclass(frozen=True)
class Route:
    """One API Gateway route: ``"GET /backoffice/admin/tx/{tx_id}"``.

    ``authorizer="jwt"`` puts API Gateway's JWT authorizer in front of the route (the
    function then reads the verified claims from ``requestContext.authorizer.jwt``);
    ``None`` leaves authentication to the function itself (see ``opsdeck.auth``).
    """

    method: str
    path: str
    authorizer: Literal["jwt"] | None = None
    scopes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Http:
    """Served through the one API Gateway HTTP API (payload format 2.0) by Mangum."""

    routes: tuple[Route, ...]
    api: str = "opsdeck"

    kind = "http"


@dataclass(frozen=True)
class Schedule:
    """An EventBridge rule: ``cron(min hour dom month dow year)`` or ``rate(n unit)``, UTC.

    ``name`` is the rule's stable suffix: the rule is ``<stack>-<name>`` so that code
    (platform_sync) can enable/disable it by name.
    """

    expression: str
    input: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    enabled: bool = True
    #: alarm ``<rule>-stalled`` when the function was not invoked for this many minutes
    #: (missing data breaches). Code that disables the rule disables the alarm's actions too.
    stalled_after_minutes: int | None = None

    kind = "schedule"


@dataclass(frozen=True)
class Queue:
    """An SQS queue + DLQ + event source mapping with ``ReportBatchItemFailures``."""

    name: str
    fifo: bool = False
    batch_size: int = 10
    batching_window_s: int = 0
    visibility_timeout_s: int = 60
    max_receive_count: int = 5
    #: ESM maximum concurrency (2..1000), None = unbounded
    max_concurrency: int | None = None
    #: message retention of the source queue; the DLQ keeps messages 14 days
    retention_s: int = 4 * 24 * 3600

    kind = "queue"

    @property
    def queue_name(self) -> str:
        return self.name + (".fifo" if self.fifo else "")

    @property
    def dlq_name(self) -> str:
        return self.name + "-dlq" + (".fifo" if self.fifo else "")


@dataclass(frozen=True)
class Deploy:
    """Invoked once per deployment (a CloudFormation custom resource), before traffic."""

    kind = "deploy"


@dataclass(frozen=True)
class Manual:
    """No event source: invoked on demand (``opsdeck invoke``, ``aws lambda invoke``, another function)."""

    kind = "manual"


Trigger = Http | Schedule | Queue | Deploy | Manual


@dataclass(frozen=True)
class MetricAlarm:
    """A CloudWatch alarm on the function's own EMF metrics (namespace ``opsdeck``).

    ``metric`` alone: its ``statistic`` per ``period_s`` compared with ``threshold``. With
    ``ratio_of``: the percentage ``100 * metric / (metric + sum of ratio_of)`` (e.g. failed
    jobs among finished ones), evaluated only when there is data. Named ``<stack>-<function>-<name>``.
    """

    name: str
    metric: str
    threshold: float
    description: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    ratio_of: tuple[str, ...] = ()
    statistic: str = "Sum"
    period_s: int = 300
    evaluation_periods: int = 1
    comparison: Literal["gt", "lt"] = "gt"


ResourceKind = Literal["queue", "secret", "schedule", "function", "bucket", "secret_prefix"]


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket for objects a capability hands out (uploads, report exports).

    Always encrypted at rest (SSE-S3), TLS-only, public access blocked, incomplete multipart
    uploads aborted after a day. Functions name it in ``Function.buckets`` and find it through
    ``<NAME>_BUCKET_NAME``; the physical name is generated (S3 names are global), so code
    never spells it. Objects are reached by clients through presigned URLs (``opsdeck.storage``).
    """

    name: str
    capability: str
    description: str = ""
    #: lifecycle: objects are deleted this many days after creation (None = kept)
    expire_after_days: int | None = None
    #: origins allowed to upload/download from a browser (CORS for presigned POST/GET)
    cors_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Function:
    name: str
    capability: str
    #: ``module.attribute`` of the Lambda entry point
    handler: str
    trigger: Trigger
    description: str = ""
    memory_mb: int = 256
    timeout_s: int = 10
    database: bool = False
    cache: bool = False
    #: catalog queue names this function sends messages to
    sends_to: tuple[str, ...] = ()
    #: logical secret names (``<NAME>_SECRET_ID`` holds the secret's id at run time)
    secrets: tuple[str, ...] = ()
    #: names of catalog schedules this function may enable/disable
    controls_schedules: tuple[str, ...] = ()
    #: secrets named at run time (users register references to them): this function may read
    #: every secret named ``<stack>/<prefix>/…``; ``<PREFIX>_SECRET_PREFIX`` holds ``<stack>/<prefix>/``
    secret_prefixes: tuple[str, ...] = ()
    #: functions this function may invoke
    invokes: tuple[str, ...] = ()
    #: operates the whole stack (the ops console): reads every catalog queue, DLQ, rule, metric
    #: and log group of this stack, replays DLQs, fires and enables/disables rules — IAM names
    #: exactly those resources (infra_cdk/functions.py); ``OPSDECK_RESOURCE_PREFIX`` = ``<stack>-``
    operates_stack: bool = False
    #: catalog buckets (``BUCKETS``) whose objects this function reads and writes
    buckets: tuple[str, ...] = ()
    reserved_concurrency: int | None = None
    #: Powertools Tracer subsegments (costs ~300 ms of cold start: aws-xray-sdk);
    #: every function gets Lambda's active X-Ray tracing regardless
    tracer: bool = False
    #: non-secret configuration for this function
    environment: Mapping[str, str] = field(default_factory=dict)
    #: alarms on the function's own metrics (CDK monitoring; not emulated locally)
    alarms: tuple[MetricAlarm, ...] = ()
    #: Lambda SnapStart (an initialised snapshot restored instead of a cold init): True/False,
    #: or None for the platform rule — on for HTTP functions in the prod profile
    #: (``snap_start_enabled``). Its triggers then invoke the published version through the
    #: alias ``live``; the layer's after-restore hooks renew clients (``opsdeck.snapstart``).
    snap_start: bool | None = None
    #: function extras (pyproject.toml's ``[project.optional-dependencies]`` groups named there):
    #: each is a second layer attached to this function only (infra_cdk/bundling.py), for a
    #: dependency no other function imports; the local cloud and the tests have them all
    extras: tuple[str, ...] = ()

    def snap_start_enabled(self, profile: str) -> bool:
        """Whether this function runs with SnapStart in a stack of ``profile`` (dev/prod)."""
        if self.snap_start is not None:
            return self.snap_start
        return profile == "prod" and isinstance(self.trigger, Http)

    def wiring_environment(self) -> dict[str, tuple[ResourceKind, str]]:
        """Environment names this function reads to find its resources → (kind, logical name).

        CDK and the local cloud fill in the values (queue URLs, secret ARNs, rule and
        function names) from the resources they create. The kind is part of the key:
        a schedule may well be named like the function it fires.
        """
        env: dict[str, tuple[ResourceKind, str]] = {queue_url_env(q): ("queue", q) for q in self.sends_to}
        env.update({secret_id_env(s): ("secret", s) for s in self.secrets})
        env.update({schedule_rule_env(s): ("schedule", s) for s in self.controls_schedules})
        env.update({function_name_env(f): ("function", f) for f in self.invokes})
        env.update({secret_prefix_env(p): ("secret_prefix", p) for p in self.secret_prefixes})
        env.update({bucket_name_env(b): ("bucket", b) for b in self.buckets})
        return env

    def runtime_environment(self, stage: str) -> dict[str, str]:
        """Environment every deployment of this function gets (CDK and the local cloud alike),
        before resource wiring (``wiring_environment``) and platform connection settings."""
        return {
            "STAGE": stage,
            "OPSDECK_FUNCTION": self.name,
            "POWERTOOLS_SERVICE_NAME": self.capability,
            "POWERTOOLS_METRICS_NAMESPACE": "opsdeck",
            "POWERTOOLS_TRACE_DISABLED": "false" if self.tracer else "true",
            # no pydantic plugins are deployed: skip scanning every package's entry points (~15 ms)
            "PYDANTIC_DISABLE_PLUGINS": "__all__",
            **self.environment,
        }

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


# ----------------------------------------------------------------------- entries

FUNCTIONS: tuple[Function, ...] = (
    # ops: the platform's own functions ------------------------------------------
    Function(
        name="ops-api",
        capability="ops",
        handler="functions.ops.api.handler",
        description="Health, the function catalog and the ops console (page + API, JWT ops-viewer/ops-admin)",
        trigger=Http(
            routes=(
                Route("GET", "/ops/health"),
                Route("GET", "/ops/functions"),
                Route("GET", "/ops/docs"),
                Route("GET", "/ops/docs/{asset}"),
                Route("GET", "/ops/openapi.json"),
                # the ops console (docs/console.md): the page, then its API
                Route("GET", "/ops/console"),
                Route("GET", "/ops/console/{name}"),
                Route("GET", "/ops/whoami"),
                Route("GET", "/ops/overview"),
                Route("GET", "/ops/queues"),
                Route("GET", "/ops/queues/{queue}/messages"),
                Route("POST", "/ops/queues/{queue}/replay"),
                Route("GET", "/ops/replays/{replay_id}"),
                Route("GET", "/ops/schedules"),
                Route("POST", "/ops/schedules/{schedule}/fire"),
                Route("POST", "/ops/schedules/{schedule}/enable"),
                Route("POST", "/ops/schedules/{schedule}/disable"),
                Route("GET", "/ops/invocations"),
                Route("GET", "/ops/invocations/{request_id}"),
                Route("POST", "/ops/invocations/{request_id}/reinvoke"),
                Route("GET", "/ops/series"),
                Route("GET", "/ops/audit"),
            )
        ),
        database=True,
        cache=True,
        operates_stack=True,
        # Logs Insights queries wait up to 8 s; a 15 s move task wait: within API Gateway's 29 s
        timeout_s=29,
    ),
    Function(
        name="ops-migrate",
        capability="ops",
        handler="functions.ops.migrate.handler",
        description="Applies Alembic migrations before a deployment takes traffic",
        trigger=Deploy(),
        timeout_s=300,
        memory_mb=512,
        database=True,
        extras=("migrations",),  # Alembic (+ Mako): no other function imports them
    ),
    # marketplace (seed 000) ---------------------------------------------------------
    Function(
        name="marketplace-api",
        capability="marketplace",
        handler="functions.marketplace.api.handler",
        description="Orders, inventory, sync logs and health; POST /orders/sync runs a sync now",
        trigger=Http(
            routes=(
                Route("GET", "/marketplace/dashboard/health"),
                Route("GET", "/marketplace/orders"),
                Route("GET", "/marketplace/orders/{amazon_order_id}"),
                Route("POST", "/marketplace/orders/sync", authorizer="jwt"),
                Route("GET", "/marketplace/inventory"),
                Route("GET", "/marketplace/logs"),
                Route("GET", "/marketplace/docs"),
                Route("GET", "/marketplace/docs/{asset}"),
                Route("GET", "/marketplace/openapi.json"),
            )
        ),
        memory_mb=512,
        timeout_s=29,
        database=True,
        cache=True,
        secrets=("marketplace-spapi", "marketplace-slack"),
        invokes=("marketplace-orders-sync",),
    ),
    Function(
        name="marketplace-orders-sync",
        capability="marketplace",
        handler="functions.marketplace.orders_sync.handler",
        description="Incremental SP-API orders sync (watermark, pages, items); Slack alerts of new orders",
        trigger=Schedule(expression="rate(15 minutes)", name="marketplace-orders-schedule"),
        memory_mb=512,
        timeout_s=900,
        database=True,
        cache=True,
        secrets=("marketplace-spapi", "marketplace-slack"),
    ),
    Function(
        name="marketplace-inventory-sync",
        capability="marketplace",
        handler="functions.marketplace.inventory_sync.handler",
        description="FBA inventory summaries into marketplace.inventory",
        trigger=Schedule(expression="rate(30 minutes)", name="marketplace-inventory-schedule"),
        memory_mb=256,
        timeout_s=300,
        database=True,
        cache=True,
        secrets=("marketplace-spapi",),
    ),
    # snacks (seed 003) --------------------------------------------------------------
    Function(
        name="snacks-api",
        capability="snacks",
        handler="functions.snacks.api.handler",
        description="Accounts and ES256 tokens (own issuer, JWKS), snacks, reactions, orders, statistics",
        # authorizer=None: snacks is its own token issuer and verifies its tokens in the function
        trigger=Http(
            routes=(
                Route("POST", "/snacks/auth/signup"),
                Route("POST", "/snacks/auth/token"),
                Route("POST", "/snacks/auth/token/refresh"),
                Route("GET", "/snacks/.well-known/jwks.json"),
                Route("GET", "/snacks/users/me"),
                Route("DELETE", "/snacks/users/me"),
                Route("GET", "/snacks/users"),
                Route("POST", "/snacks/users/{user_uid}/promote"),
                Route("GET", "/snacks/snacks"),
                Route("POST", "/snacks/snacks"),
                Route("GET", "/snacks/snacks/{snack_uid}"),
                Route("POST", "/snacks/snacks/{snack_uid}/reaction"),
                Route("DELETE", "/snacks/snacks/{snack_uid}/reaction"),
                Route("POST", "/snacks/snacks/{snack_uid}/image"),
                Route("GET", "/snacks/snacks/{snack_uid}/image"),
                Route("POST", "/snacks/order"),
                Route("GET", "/snacks/orders"),
                Route("GET", "/snacks/order/{order_uid}"),
                Route("PUT", "/snacks/order/{order_uid}"),
                Route("GET", "/snacks/statistics"),
                Route("GET", "/snacks/docs"),
                Route("GET", "/snacks/docs/{asset}"),
                Route("GET", "/snacks/openapi.json"),
            )
        ),
        # Argon2id (t=2, m=19 MiB, p=1) per sign-in; 512 MB gives a third of a vCPU more than 256
        memory_mb=512,
        database=True,
        cache=True,
        secrets=("snacks-signing-keys",),
        buckets=("snacks-images",),
    ),
    Function(
        name="snacks-reactions-flush",
        capability="snacks",
        handler="functions.snacks.flush.handler",
        description="Redis reaction counts → statistics columns; reconciles them after Redis loss",
        trigger=Schedule(expression="rate(1 minute)", name="snacks-reactions-flush"),
        timeout_s=120,
        database=True,
        cache=True,
        # one flush at a time: two would race on the same counts
        reserved_concurrency=1,
    ),
    # platform_sync (seed 001) -------------------------------------------------------
    Function(
        name="platform-sync-api",
        capability="platform_sync",
        handler="functions.platform_sync.api.handler",
        description="Platforms CRUD, run now, scheduler control and config, jobs (JWT roles in the function)",
        trigger=Http(
            routes=(
                *(
                    Route(method, "/platform-sync/api/v1" + path, authorizer="jwt")
                    for method, path in (
                        ("POST", "/platforms"),
                        ("GET", "/platforms"),
                        ("GET", "/platforms/active"),
                        ("GET", "/platforms/{platform_id}"),
                        ("PUT", "/platforms/{platform_id}"),
                        ("DELETE", "/platforms/{platform_id}"),
                        ("POST", "/run/{task_type}"),
                        ("GET", "/scheduler"),
                        *(("POST", f"/scheduler/{a}") for a in ("start", "pause", "resume", "stop")),
                        *(
                            ("POST", f"/scheduler/{{task_type}}/{a}")
                            for a in ("start", "pause", "resume", "stop")
                        ),
                        ("GET", "/scheduler/config"),
                        ("POST", "/scheduler/config"),
                        ("GET", "/scheduler/config/{task_type}"),
                        ("PUT", "/scheduler/config/{task_type}"),
                        ("GET", "/jobs"),
                        ("GET", "/jobs/{job_id}"),
                    )
                ),
                Route("GET", "/platform-sync/docs"),
                Route("GET", "/platform-sync/docs/{asset}"),
                Route("GET", "/platform-sync/openapi.json"),
            )
        ),
        memory_mb=512,
        timeout_s=29,
        database=True,
        sends_to=("platform-sync-jobs",),
        controls_schedules=("platform-sync-sync-schedule", "platform-sync-valid-schedule"),
    ),
    *(
        Function(
            name=f"platform-sync-dispatch-{task_type}",
            capability="platform_sync",
            handler="functions.platform_sync.dispatcher.handler",
            description=f"Every minute: one {task_type} job per active platform (deterministic ids)",
            trigger=Schedule(
                expression="rate(1 minute)",
                input={"task_type": task_type},
                name=f"platform-sync-{task_type}-schedule",
                stalled_after_minutes=5,
            ),
            timeout_s=60,
            database=True,
            sends_to=("platform-sync-jobs",),
            # re-disables its own rule when a redeploy re-enabled it while the task type is paused
            controls_schedules=(f"platform-sync-{task_type}-schedule",),
        )
        for task_type in ("sync", "valid")
    ),
    Function(
        name="platform-sync-worker",
        capability="platform_sync",
        handler="functions.platform_sync.worker.handler",
        description="Runs sync/valid jobs against the platforms (SSRF-guarded), records attempts, retries",
        trigger=Queue(
            name="platform-sync-jobs",
            batch_size=10,
            visibility_timeout_s=360,
            max_receive_count=3,
            max_concurrency=20,
        ),
        timeout_s=60,
        memory_mb=512,
        database=True,
        # deferred jobs (task type at its concurrency limit) are sent again with a delay
        sends_to=("platform-sync-jobs",),
        secret_prefixes=("platform-sync",),
        environment={"PLATFORM_SYNC_MAX_RECEIVE_COUNT": "3"},
        alarms=tuple(
            MetricAlarm(
                name=f"{task_type}-failure-rate",
                metric="JobsFailed",
                ratio_of=("JobsSucceeded",),
                dimensions={"service": "platform_sync", "task_type": task_type},
                threshold=20,
                evaluation_periods=3,
                description=f"more than 20 % of finished {task_type} jobs failed for 15 minutes",
            )
            for task_type in ("sync", "valid")
        ),
    ),
    # backoffice (seed 004) ----------------------------------------------------------
    Function(
        name="backoffice-consumer",
        capability="backoffice",
        handler="functions.backoffice.consumer.handler",
        description="OLTP ledger/payment-order change events → read store (LWW, tombstones, pairing)",
        # Freshness first: no batching window, so a change is applied as soon as it is polled
        # (measured trade-off against batch 1,000 / window 1 s in docs/backoffice.md).
        trigger=Queue(
            name="backoffice-changes",
            batch_size=10,
            batching_window_s=0,
            visibility_timeout_s=360,
            max_receive_count=5,
            max_concurrency=20,
        ),
        timeout_s=60,
        memory_mb=1024,
        database=True,
    ),
    Function(
        name="backoffice-api",
        capability="backoffice",
        handler="functions.backoffice.api.handler",
        description="Admin lookups (tx, payment order, wallet) and the audit log; JWT + RBAC in the function",
        # authorizer=None: the function authenticates itself so that denied requests are audited too
        trigger=Http(
            routes=(
                Route("GET", "/backoffice/admin/tx/{tx_id}"),
                Route("GET", "/backoffice/admin/payment-orders/{order_id}"),
                Route("GET", "/backoffice/admin/wallets/{wallet_id}/tx"),
                Route("GET", "/backoffice/admin/audit"),
                Route("GET", "/backoffice/docs"),
                Route("GET", "/backoffice/docs/{asset}"),
                Route("GET", "/backoffice/openapi.json"),
            )
        ),
        memory_mb=512,
        database=True,
    ),
    Function(
        name="backoffice-audit-retention",
        capability="backoffice",
        handler="functions.backoffice.retention.handler",
        description="Purges admin audit rows older than AUDIT_RETENTION_DAYS (400) in bounded batches",
        trigger=Schedule(expression="cron(20 3 * * ? *)", name="backoffice-audit-retention"),
        timeout_s=300,
        memory_mb=256,
        database=True,
        environment={"AUDIT_RETENTION_DAYS": "400", "AUDIT_PURGE_BATCH": "5000"},
    ),
    Function(
        name="backoffice-backfill",
        capability="backoffice",
        handler="functions.backoffice.backfill.handler",
        description="Applies a chunk of snapshot rows through the consumer's apply path",
        trigger=Manual(),
        timeout_s=300,
        memory_mb=1024,
        database=True,
    ),
    # product_monitor (seed 002) ----------------------------------------------------
    Function(
        name="product-monitor-api",
        capability="product_monitor",
        handler="functions.product_monitor.api.handler",
        description="Cache-first product, metrics, competition and recommendation reads; tracking; runs",
        # authorizer=None: the function verifies the JWT and the viewer/operator/admin roles itself
        # (GET /v1/health answers without a token)
        trigger=Http(
            routes=(
                Route("GET", "/product-monitor/v1/products/{asin}"),
                Route("GET", "/product-monitor/v1/products/{asin}/metrics"),
                Route("GET", "/product-monitor/v1/competitions/{asin}"),
                Route("GET", "/product-monitor/v1/competitions/{asin}/report"),
                Route("GET", "/product-monitor/v1/competitions/{asin}/report/export"),
                Route("GET", "/product-monitor/v1/recommendations/{asin}"),
                Route("POST", "/product-monitor/v1/recommendations/{asin}/refresh"),
                Route("GET", "/product-monitor/v1/tracked-asins"),
                Route("POST", "/product-monitor/v1/tracked-asins"),
                Route("DELETE", "/product-monitor/v1/tracked-asins/{asin}"),
                Route("POST", "/product-monitor/v1/competitor-links"),
                Route("DELETE", "/product-monitor/v1/competitor-links/{asin}/{competitor_asin}"),
                Route("POST", "/product-monitor/v1/ingest-runs"),
                Route("GET", "/product-monitor/v1/jobs/{id}"),
                Route("GET", "/product-monitor/v1/health"),
                Route("GET", "/product-monitor/v1/metrics"),
                Route("GET", "/product-monitor/docs"),
                Route("GET", "/product-monitor/docs/{asset}"),
                Route("GET", "/product-monitor/openapi.json"),
            )
        ),
        memory_mb=512,
        timeout_s=29,
        database=True,
        cache=True,
        sends_to=("product-monitor-jobs",),
        buckets=("product-monitor-exports",),
    ),
    Function(
        name="product-monitor-graphql",
        capability="product_monitor",
        handler="functions.product_monitor.graphql_api.handler",
        description="Read-only GraphQL, persisted queries only (depth <= 6, cost <= 1000), through the cache",
        # its own function: REST cold starts do not import graphql-core
        trigger=Http(
            routes=(
                Route("GET", "/product-monitor/graphql"),
                Route("POST", "/product-monitor/graphql"),
                Route("GET", "/product-monitor/graphql/playground"),
                Route("GET", "/product-monitor/graphql/docs"),
                Route("GET", "/product-monitor/graphql/docs/{asset}"),
                Route("GET", "/product-monitor/graphql/openapi.json"),
            )
        ),
        memory_mb=512,
        timeout_s=29,
        database=True,
        cache=True,
        extras=("graphql",),  # graphql-core: in this function's bundle only
    ),
    Function(
        name="product-monitor-planner",
        capability="product_monitor",
        handler="functions.product_monitor.planner.handler",
        description="Daily run: the tracked ASINs (+ competitors) in jobs of 50-100, enqueued",
        trigger=Schedule(
            expression="cron(30 0 * * ? *)", input={"kind": "daily"}, name="product-monitor-daily"
        ),
        timeout_s=120,
        database=True,
        cache=True,
        sends_to=("product-monitor-jobs",),
    ),
    Function(
        name="product-monitor-health",
        capability="product_monitor",
        handler="functions.product_monitor.planner.handler",
        description="Health sample every 6 h: a fraction of the tracked ASINs through the same pipeline",
        trigger=Schedule(
            expression="rate(6 hours)", input={"kind": "health"}, name="product-monitor-health-sample"
        ),
        timeout_s=120,
        database=True,
        cache=True,
        sends_to=("product-monitor-jobs",),
    ),
    Function(
        name="product-monitor-worker",
        capability="product_monitor",
        handler="functions.product_monitor.worker.handler",
        description="One ingest job: Apify (paced by the shared bucket) → staging_raw → normalise → promote",
        # one job (50-100 ASINs) per invocation; concurrency capped by the upstream quota
        trigger=Queue(
            name="product-monitor-jobs",
            batch_size=1,
            visibility_timeout_s=3600,
            max_receive_count=5,
            max_concurrency=5,
        ),
        timeout_s=600,
        memory_mb=512,
        database=True,
        cache=True,
        secrets=("product-monitor-apify",),
    ),
)


#: Buckets, declared once; functions reach them through ``Function.buckets``.
BUCKETS: tuple[Bucket, ...] = (
    # snacks (seed 003): snack images, uploaded by clients through presigned POSTs
    Bucket(
        name="snacks-images",
        capability="snacks",
        description="Snack images (image/jpeg, png, webp, gif; at most 5 MiB each)",
    ),
    # product_monitor (seed 002) ----------------------------------------------------
    Bucket(
        name="product-monitor-exports",
        capability="product_monitor",
        description="Competitive report exports (CSV, JSON), handed out as presigned download URLs",
        expire_after_days=30,
    ),
)


# -------------------------------------------------------------------- validation


def by_name() -> dict[str, Function]:
    return {f.name: f for f in FUNCTIONS}


def schedules() -> dict[str, tuple[Schedule, Function]]:
    """Every schedule by its stable name, with the function it fires."""
    return {schedule_name(f): (f.trigger, f) for f in FUNCTIONS if isinstance(f.trigger, Schedule)}


def schedule_name(function: Function) -> str:
    assert isinstance(function.trigger, Schedule)
    return function.trigger.name or function.name


def routes() -> dict[str, tuple[Route, Function]]:
    return {r.key: (r, f) for f in FUNCTIONS if isinstance(f.trigger, Http) for r in f.trigger.routes}


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")


def validate(functions: tuple[Function, ...] = FUNCTIONS, buckets: tuple[Bucket, ...] = BUCKETS) -> None:
    """Raise ``CatalogError`` naming the first contradiction."""
    owners: dict[str, str] = {}
    for cap, names_ in schemas().items():
        for schema in names_:
            if not re.match(r"^[a-z][a-z0-9_]{0,30}$", schema) or schema in ("public", "pg_catalog"):
                raise CatalogError(f"capability {cap!r}: schema {schema!r} is not a valid opsdeck schema")
            if schema in owners:
                raise CatalogError(f"schema {schema!r} belongs to both {owners[schema]!r} and {cap!r}")
            owners[schema] = cap
    if set(SCHEMAS) - set(CAPABILITIES):
        raise CatalogError(f"SCHEMAS names unknown capabilities {sorted(set(SCHEMAS) - set(CAPABILITIES))}")
    declared_buckets = _validate_buckets(buckets)
    names: set[str] = set()
    route_keys: set[str] = set()
    queue_names: set[str] = set()
    schedule_names: set[str] = set()
    for f in functions:
        where = f"function {f.name!r}"
        if not _NAME.match(f.name):
            raise CatalogError(f"{where}: name must be lower-case kebab case, 3-48 characters")
        if f.name in names:
            raise CatalogError(f"{where}: declared twice")
        names.add(f.name)
        if f.capability not in CAPABILITIES:
            raise CatalogError(f"{where}: unknown capability {f.capability!r}")
        if not f.name.startswith(CAPABILITIES[f.capability].strip("/") + "-"):
            raise CatalogError(f"{where}: name must start with {CAPABILITIES[f.capability].strip('/')}-")
        if not 128 <= f.memory_mb <= 10240:
            raise CatalogError(f"{where}: memory_mb must be within 128..10240")
        if not 1 <= f.timeout_s <= 900:
            raise CatalogError(f"{where}: timeout_s must be within 1..900")
        for extra in f.extras:
            if not re.match(r"^[a-z][a-z0-9-]{0,30}$", extra) or f.extras.count(extra) > 1:
                raise CatalogError(f"{where}: extras must be distinct pyproject extra names, got {extra!r}")
        t = f.trigger
        if isinstance(t, Http):
            if f.timeout_s > 29:
                raise CatalogError(f"{where}: HTTP API integrations time out after 29 s")
            base = CAPABILITIES[f.capability]
            for r in t.routes:
                if r.method not in HTTP_METHODS or not _PATH.match(r.path):
                    raise CatalogError(f"{where}: invalid route {r.key!r}")
                if not (r.path == base or r.path.startswith(base + "/")):
                    raise CatalogError(f"{where}: route {r.key!r} is outside {base}")
                if r.key in route_keys:
                    raise CatalogError(f"{where}: route {r.key!r} declared twice")
                route_keys.add(r.key)
        elif isinstance(t, Schedule):
            if not (_RATE.match(t.expression) or _CRON.match(t.expression)):
                raise CatalogError(f"{where}: schedule {t.expression!r} is neither rate(…) nor cron(…)")
            m = _RATE.match(t.expression)
            if m and (int(m[1]) == 1) != (not m[2].endswith("s")):
                raise CatalogError(f"{where}: write rate(1 minute) / rate(5 minutes), as AWS requires")
            if t.stalled_after_minutes is not None and not 1 <= t.stalled_after_minutes <= 1440:
                raise CatalogError(f"{where}: stalled_after_minutes must be within 1..1440")
            sname = schedule_name(f)
            if sname in schedule_names:
                raise CatalogError(f"{where}: schedule name {sname!r} declared twice")
            schedule_names.add(sname)
        elif isinstance(t, Queue):
            if t.queue_name in queue_names:
                raise CatalogError(f"{where}: queue {t.name!r} declared twice")
            queue_names.add(t.queue_name)
            limit = 10 if t.fifo else 10_000
            if not 1 <= t.batch_size <= limit:
                raise CatalogError(f"{where}: batch_size must be within 1..{limit}")
            if t.batch_size > 10 and t.batching_window_s < 1:
                raise CatalogError(f"{where}: batch_size > 10 needs batching_window_s >= 1 (AWS)")
            if t.fifo and t.batching_window_s:
                raise CatalogError(f"{where}: FIFO event source mappings have no batching window")
            if not 0 <= t.batching_window_s <= 300:
                raise CatalogError(f"{where}: batching_window_s must be within 0..300")
            if t.visibility_timeout_s < 6 * f.timeout_s:
                needed = 6 * f.timeout_s
                raise CatalogError(
                    f"{where}: visibility_timeout_s {t.visibility_timeout_s} < 6 x timeout_s ({needed})"
                )
            if t.visibility_timeout_s > 43_200:
                raise CatalogError(f"{where}: visibility_timeout_s must be <= 43200")
            if not 1 <= t.max_receive_count <= 1000:
                raise CatalogError(f"{where}: max_receive_count must be within 1..1000")
            if t.max_concurrency is not None and not 2 <= t.max_concurrency <= 1000:
                raise CatalogError(f"{where}: max_concurrency must be within 2..1000")
        elif not isinstance(t, Deploy | Manual):
            raise CatalogError(f"{where}: unknown trigger {t!r}")
        if f.snap_start and isinstance(t, Deploy):
            raise CatalogError(f"{where}: a Deploy function runs once per deployment: no SnapStart")
    declared_queues = {q.name for q, _ in queues_of(functions)}
    for f in functions:
        for q in f.sends_to:
            if q not in declared_queues:
                raise CatalogError(f"function {f.name!r}: sends to undeclared queue {q!r}")
        for s in f.controls_schedules:
            if s not in schedule_names:
                raise CatalogError(f"function {f.name!r}: controls undeclared schedule {s!r}")
        for other in f.invokes:
            if other not in names:
                raise CatalogError(f"function {f.name!r}: invokes undeclared function {other!r}")
        alarm_names = [a.name for a in f.alarms]
        if len(set(alarm_names)) != len(alarm_names):
            raise CatalogError(f"function {f.name!r}: alarm names must be unique")
        for b in f.buckets:
            if b not in declared_buckets:
                raise CatalogError(f"function {f.name!r}: uses undeclared bucket {b!r}")
            if declared_buckets[b].capability != f.capability:
                raise CatalogError(
                    f"function {f.name!r}: bucket {b!r} belongs to {declared_buckets[b].capability!r}"
                )


_CORS_ORIGIN = re.compile(r"^(https?://[A-Za-z0-9.\-]+(:\d{1,5})?|\*)$")


def _validate_buckets(buckets: tuple[Bucket, ...]) -> dict[str, Bucket]:
    declared: dict[str, Bucket] = {}
    for b in buckets:
        where = f"bucket {b.name!r}"
        if not _NAME.match(b.name):
            raise CatalogError(f"{where}: name must be lower-case kebab case, 3-48 characters")
        if b.name in declared:
            raise CatalogError(f"{where}: declared twice")
        if b.capability not in CAPABILITIES:
            raise CatalogError(f"{where}: unknown capability {b.capability!r}")
        prefix = CAPABILITIES[b.capability].strip("/") + "-"
        if not b.name.startswith(prefix):
            raise CatalogError(f"{where}: name must start with {prefix}")
        if b.expire_after_days is not None and not 1 <= b.expire_after_days <= 36_500:
            raise CatalogError(f"{where}: expire_after_days must be within 1..36500")
        for origin in b.cors_origins:
            if not _CORS_ORIGIN.match(origin):
                raise CatalogError(f"{where}: CORS origin {origin!r} is not scheme://host[:port] or *")
        declared[b.name] = b
    return declared


def buckets_used(
    functions: tuple[Function, ...], buckets: tuple[Bucket, ...] = BUCKETS
) -> dict[str, tuple[Bucket, list[str]]]:
    """Bucket name → (its declaration, the functions that use it), for buckets some function uses."""
    declared = {b.name: b for b in buckets}
    users: dict[str, list[str]] = {}
    for f in functions:
        for b in f.buckets:
            users.setdefault(b, []).append(f.name)
    return {name: (declared[name], users[name]) for name in sorted(users)}


def queues_of(functions: tuple[Function, ...]) -> list[tuple[Queue, Function]]:
    return [(f.trigger, f) for f in functions if isinstance(f.trigger, Queue)]


validate()
