"""``LocalCloud``: the whole catalog running on this machine, as AWS would run it.

``start()`` checks the catalog (``localcloud.features``: anything not emulated is an error
naming it), gets PostgreSQL and Redis (``localcloud.services``), starts the AWS endpoint
(``localcloud.awsapi``) and creates there every catalog queue and DLQ (``RedrivePolicy``,
``RedriveAllowPolicy``), EventBridge rule (+ target), secret and bucket; builds each function's
environment (contract C: runtime + wiring + platform settings + its capability's simulator
URLs unless the user set them); runs the ``Deploy`` functions (migrations) like a
deployment would; serves HTTP (``localcloud.server``) when asked or when simulators exist;
and drives the triggers:

* **virtual clock** (tests): nothing happens on its own. ``advance(s)`` moves time from
  timer to timer — visibility timeouts, delays, batching windows, schedules, async
  retries — and runs every invocation due at each instant in the calling thread, in a
  fixed order. ``run_until_idle`` advances until the queues are drained.
* **real clock** (``opsdeck local up``): one dispatcher thread waits on the queue engine's
  condition (a send wakes it at once) or the next timer, and hands invocations to a
  thread pool, at most ``max_concurrency`` batches per event source mapping.

Every invocation is journaled (``localcloud.journal``). One local cloud per process
(moto's state is process-wide).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import importlib
import importlib.util
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from localcloud import awsapi, features
from localcloud.clock import Clock, VirtualClock
from localcloud.errors import LocalCloudError
from localcloud.esm import Batch, EventSourceMapping
from localcloud.events import ACCOUNT_ID, REGION, queue_arn, rule_arn
from localcloud.journal import Journal, format_entry
from localcloud.runtime import (
    FunctionRuntime,
    Invocation,
    InvocationError,
    attach_log_capture,
    close_event_loops,
    install_environ,
)
from localcloud.scheduler import AsyncCall, AsyncQueue, ScheduledRule, Scheduler
from localcloud.sqs import SqsEngine, SQSError

DLQ_RETENTION_S = 14 * 24 * 3600
MAX_STEPS_PER_INSTANT = 10_000
ISSUER, AUDIENCE = "opsdeck-local", "opsdeck"
LOG_TAIL_BYTES = 4096
#: invocations whose event, result and log lines are kept in memory for the ops console
DETAILS_KEPT = 2000
#: queue depth samples kept for the console's chart (one per minute of the cloud's clock)
DEPTH_SAMPLES = 24 * 60
#: dummy credentials of the local endpoint (shaped like AWS's; it is also the messages' SenderId)
ACCESS_KEY_ID = "AKIAOPSDECKLOCAL0001"


class ResponseHeaders(dict):
    """Response headers by lower-case name (repeated ones joined by ", "); ``cookies`` lists
    every ``Set-Cookie`` separately."""

    cookies: list[str]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reset_layer() -> None:
    """Forget the layer's cached settings and clients (the platform environment changed).

    Only modules already imported hold anything to forget; importing the others here would
    only slow the start down (``opsdeck.auth`` pulls in FastAPI).
    """
    for name, reset in (
        ("opsdeck.settings", lambda m: m.platform.cache_clear()),
        ("aws_lambda_powertools.utilities.parameters", lambda m: m.clear_caches()),
        ("opsdeck.db", lambda m: m.reset()),
        ("opsdeck.cache", lambda m: m.reset()),
        ("opsdeck.aws", lambda m: m.reset()),
        ("opsdeck.auth", lambda m: m.reset()),
    ):
        module = sys.modules.get(name)
        if module is not None:
            reset(module)


class LocalCloud:
    """See the module docstring; the Python API is contract A (docs/localcloud.md)."""

    def __init__(
        self,
        root: str | Path = ".opsdeck",
        database_url: str | None = None,
        redis_url: str | None = None,
        virtual_clock: bool | datetime = False,
        http: bool = False,
        demo: bool = False,
        functions: Iterable[str] | None = None,
        *,
        catalog: Sequence[Any] | None = None,
        buckets: Sequence[Any] | None = None,
        deploy: bool = True,
        http_port: int = 0,
        aws_port: int = 0,
        stage: str = "local",
        console: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self._database_url = database_url
        self._redis_url = redis_url
        self.virtual = bool(virtual_clock)
        self.clock: Clock = (
            VirtualClock(virtual_clock if isinstance(virtual_clock, datetime) else None)
            if self.virtual
            else Clock()
        )
        self.http = http
        self.demo = demo
        self._selected = None if functions is None else list(functions)
        self._catalog = catalog
        self._buckets_given = None if buckets is None else tuple(buckets)
        self._buckets: tuple[Any, ...] = ()
        self.deploy = deploy
        self.http_port, self.aws_port = http_port, aws_port
        self.stage = stage
        self.console = console
        self.base_url: str | None = None
        self.aws_url: str | None = None
        self.simulator_urls: dict[str, str] = {}
        self.notes: list[str] = []
        self.started_s: float | None = None
        self._started = False
        self._saved_env: dict[str, str | None] = {}
        self._pg: Any = None
        self._http_server: Any = None
        self._dispatcher: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        self._running = 0
        self._details: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._details_lock = threading.Lock()
        #: ``(epoch s, {queue logical name: (visible, in flight)})``, one per clock minute
        self.depth_history: collections.deque[tuple[float, dict[str, tuple[int, int]]]] = collections.deque(
            maxlen=DEPTH_SAMPLES
        )
        self._sampled_minute: int | None = None

    # ----------------------------------------------------------------- catalog
    def _resolve_functions(self) -> tuple[list[Any], list[Any]]:
        from functions import catalog as catalog_module

        everything = tuple(self._catalog) if self._catalog is not None else catalog_module.FUNCTIONS
        self._buckets = self._buckets_given if self._buckets_given is not None else catalog_module.BUCKETS
        if self._catalog is not None or self._buckets_given is not None:
            try:
                catalog_module.validate(everything, self._buckets)
            except catalog_module.CatalogError as exc:
                raise LocalCloudError(f"invalid catalog: {exc}") from None
        by_name = {f.name: f for f in everything}
        if self._selected is None:
            return list(everything), list(everything)
        unknown = [n for n in self._selected if n not in by_name]
        if unknown:
            raise LocalCloudError(f"unknown function {unknown[0]!r} (known: {', '.join(sorted(by_name))})")
        return list(everything), [by_name[n] for n in self._selected]

    # ------------------------------------------------------------------- start
    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        if self._started:
            return self
        if awsapi.ACTIVE is not None:
            raise LocalCloudError("a local cloud is already running in this process (stop it first)")
        began = time.perf_counter()
        self.catalog, self.functions = self._resolve_functions()
        features.check(self.functions)
        self.notes = features.notes(self.functions)
        try:
            self._start(began)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, began: float) -> None:
        self._started = True
        self.root.mkdir(parents=True, exist_ok=True)
        from localcloud import services

        user_env = dict(os.environ)
        database_url = self._database_url or os.environ.get("DATABASE_URL")
        postgres: list[Any] = []
        starter = None
        if not database_url and any(f.database for f in self.functions):
            # the embedded server mostly waits on its own process: let moto import meanwhile
            def start_postgres() -> None:
                try:
                    postgres.append(services.EmbeddedPostgres(self.root))
                except BaseException as exc:
                    postgres.append(exc)

            starter = threading.Thread(target=start_postgres, name="localcloud-postgres", daemon=True)
            starter.start()
        redis_url = self._redis_url or os.environ.get("REDIS_URL") or "fakeredis://"
        self.engine = SqsEngine(self.clock)
        self.journal_file = self.root / "journal.jsonl"
        self._journal = Journal(self.journal_file)
        self.async_queue = AsyncQueue()

        aws = awsapi.endpoint(self.aws_port)
        aws.reset()
        self.aws_url = aws.url
        if starter is not None:
            starter.join()
            if isinstance(postgres[0], BaseException):
                raise postgres[0]
            self._pg = postgres[0]
            database_url = self._pg.url
        no_proxy = ",".join(
            sorted({*filter(None, os.environ.get("NO_PROXY", "").split(",")), "127.0.0.1", "localhost"})
        )
        self.base_env: dict[str, str | None] = {
            "STAGE": self.stage,
            "DATABASE_URL": database_url or None,
            "REDIS_URL": redis_url,
            "AWS_ENDPOINT_URL": aws.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": "opsdeck-local",
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_ACCOUNT_ID": ACCOUNT_ID,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "JWT_ALGORITHMS": "HS256",
            "JWT_HS256_SECRET": services.jwt_secret(self.root),
            "JWT_JWKS_URL": None,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
        self._apply_env()

        simulators = self._simulators()
        if self.http or simulators:
            from localcloud.server import HttpServer

            self._http_server = HttpServer(port=self.http_port)
            self.simulator_urls = {cap: f"{self._http_server.url}/_sim/{cap}" for cap in simulators}
            if self.http:
                self.base_url = self._http_server.url
        wiring = self._provision()
        sim_env = self._simulator_environment(simulators, user_env)

        self.runtimes: dict[str, FunctionRuntime] = {
            f.name: FunctionRuntime(
                f, self._function_env(f, wiring, sim_env.get(f.capability, {})), self.clock
            )
            for f in self.functions
        }
        for runtime in self.runtimes.values():
            runtime.keep_logs = True  # the console shows every invocation's lines
        from localcloud.gateway import Gateway

        self.gateway = Gateway(
            {
                r.key: (r, self.runtimes[f.name])
                for f in self.functions
                if f.trigger.kind == "http"
                for r in f.trigger.routes
            },
            clock=self.clock,
            record=self._record,
        )
        self.mappings = [
            EventSourceMapping(f.trigger, self.runtimes[f.name], self.engine)
            for f in self.functions
            if f.trigger.kind == "queue"
        ]
        now = self.clock.time()
        self.scheduler = Scheduler(
            [
                ScheduledRule(
                    schedule_name=f.trigger.name or f.name,
                    rule_name=self.rule_name(f.trigger.name or f.name),
                    runtime=self.runtimes[f.name],
                    detail=dict(f.trigger.input),
                    expression=f.trigger.expression,
                    anchor=now,
                )
                for f in self.functions
                if f.trigger.kind == "schedule"
            ],
            awsapi.rule_state,
        )
        self.scheduler.start(now)
        awsapi.ACTIVE = self
        from functions.ops import backend as ops_backend
        from localcloud.ops import LocalBackend

        ops_backend.use(LocalBackend(self))
        attach_log_capture()
        if self.deploy:
            self._run_deploy_functions()
        self._grant_logins()
        if self._http_server is not None:
            from localcloud.server import FrontDoor

            self._http_server.start(FrontDoor(self.gateway, simulators, self))
        if not self.virtual:
            self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="localcloud-fn")
            self._dispatcher = threading.Thread(target=self._loop, name="localcloud-dispatch", daemon=True)
            self._dispatcher.start()
        self.started_s = time.perf_counter() - began
        if self.demo:
            self.seed_demo()

    def _apply_env(self) -> None:
        install_environ()
        for key, value in self.base_env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_layer()

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    # --------------------------------------------------------------- resources
    @property
    def env(self) -> dict[str, str]:
        """The platform environment every function runs with (per-function variables: ``function_env``)."""
        return {k: v for k, v in self.base_env.items() if v is not None}

    def function_env(self, name: str) -> dict[str, str]:
        """The full environment function ``name`` sees during an invocation."""
        runtime = self._runtime(name)
        merged = {**self.env, **{k: v for k, v in runtime.env.items() if v is not None}}
        return merged

    def rule_name(self, schedule: str) -> str:
        return f"opsdeck-{self.stage}-{schedule}"

    def bucket_name(self, bucket: str) -> str:
        return f"opsdeck-{self.stage}-{bucket}"

    def queue_url(self, queue_name: str) -> str:
        return f"{self.aws_url}/{ACCOUNT_ID}/{queue_name}"

    def _provision(self) -> dict[tuple[str, str], str]:
        """Create every catalog queue, DLQ, rule, secret and bucket; (kind, logical name) → value."""
        wiring: dict[tuple[str, str], str] = {}
        for f in self.catalog:
            t = f.trigger
            if t.kind != "queue":
                continue
            fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if t.fifo else {}
            dlq_attrs = {
                **fifo,
                "MessageRetentionPeriod": str(DLQ_RETENTION_S),
                "RedriveAllowPolicy": json.dumps(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn(t.queue_name)]}
                ),
            }
            attrs = {
                **fifo,
                "VisibilityTimeout": str(t.visibility_timeout_s),
                "MessageRetentionPeriod": str(t.retention_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": queue_arn(t.dlq_name), "maxReceiveCount": t.max_receive_count}
                ),
            }
            for name, attributes in ((t.dlq_name, dlq_attrs), (t.queue_name, attrs)):
                awsapi.create_queue(name, attributes)
                self.engine.create_queue(name, attributes)
            wiring["queue", t.name] = self.queue_url(t.queue_name)
            wiring["queue", t.name + "-dlq"] = self.queue_url(t.dlq_name)
        for f in self.catalog:
            if f.trigger.kind != "schedule":
                continue
            name = f.trigger.name or f.name
            awsapi.create_rule(
                self.rule_name(name),
                f.trigger.expression,
                enabled=f.trigger.enabled,
                description=f"opsdeck schedule {name} → {f.name}",
                target_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{f.name}",
                target_id=f.name,
            )
            wiring["schedule", name] = self.rule_name(name)
        secrets = sorted({s for f in self.catalog for s in f.secrets})
        values = self._secret_values() if secrets else {}
        for name in secrets:
            value = values.get(name)
            if value is None:
                self.notes.append(
                    f"secret {name}: no local value (put one in {self.root / 'secrets' / name}.json)"
                )
            wiring["secret", name] = awsapi.create_secret(name, json.dumps(value or {}))
        from functions.catalog import buckets_used

        for name, (declared, _users) in buckets_used(tuple(self.catalog), self._buckets).items():
            physical = self.bucket_name(name)
            awsapi.create_bucket(physical, declared.cors_origins)
            wiring["bucket", name] = physical
        for f in self.catalog:
            wiring["function", f.name] = f.name
            for prefix in getattr(f, "secret_prefixes", ()):
                wiring["secret_prefix", prefix] = f"{prefix}/"  # local secrets carry no stack prefix
        return wiring

    def _secret_values(self) -> dict[str, Any]:
        """Secret values: ``<root>/secrets/<name>.json``, else the simulator's ``secret_values(url)``
        or the demo module's ``secret_values()``."""
        values: dict[str, Any] = {}
        for cap in sorted({f.capability for f in self.functions}):
            module = self._capability_module(cap, "simulator")
            provider = getattr(module, "secret_values", None) if module else None
            if callable(provider) and cap in self.simulator_urls:
                values.update(provider(self.simulator_urls[cap]))
            # a capability without an upstream simulator (snacks: its own signing keys)
            demo = self._capability_module(cap, "demo")
            local = getattr(demo, "secret_values", None) if demo else None
            if callable(local):
                values.update(local())
        folder = self.root / "secrets"
        if folder.is_dir():
            for path in folder.glob("*.json"):
                try:
                    values[path.stem] = json.loads(path.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise LocalCloudError(f"{path}: not valid JSON ({exc})") from None
        return values

    @staticmethod
    def _capability_module(capability: str, name: str) -> Any:
        module = f"functions.{capability}.{name}"
        try:
            if importlib.util.find_spec(module) is None:
                return None
        except ModuleNotFoundError:
            return None
        return importlib.import_module(module)

    def _simulators(self) -> dict[str, Any]:
        apps = {}
        for cap in sorted({f.capability for f in self.functions}):
            module = self._capability_module(cap, "simulator")
            if module is not None:
                apps[cap] = module.create_app()
        return apps

    def _simulator_environment(
        self, simulators: Mapping[str, Any], user_env: Mapping[str, str]
    ) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for cap in simulators:
            module = self._capability_module(cap, "simulator")
            env = dict(module.environment(self.simulator_urls[cap]))
            out[cap] = {k: v for k, v in env.items() if k not in user_env}
        return out

    def _function_env(
        self, f: Any, wiring: Mapping[tuple[str, str], str], sim_env: Mapping[str, str]
    ) -> dict[str, str]:
        env = dict(sim_env)
        env.update(f.runtime_environment(self.stage))
        admin_url = self.base_env.get("DATABASE_URL")
        if f.database and admin_url and f.trigger.kind != "deploy":
            # as on AWS: every function but the migrator connects as its capability's runtime role
            from localcloud import services

            env["DATABASE_URL"] = services.role_url(admin_url, f.capability)
        env.update({var: wiring[resource] for var, resource in f.wiring_environment().items()})
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": f.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(f.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{f.name}",
                "_HANDLER": f.handler,
            }
        )
        return env

    def _grant_logins(self) -> None:
        """Local passwords for the runtime roles the migrations created (``services.role_url``)."""
        admin_url = self.base_env.get("DATABASE_URL")
        capabilities = sorted(
            {f.capability for f in self.functions if f.database and f.trigger.kind != "deploy"}
        )
        if not admin_url or not capabilities:
            return
        from localcloud import services

        missing = services.grant_logins(admin_url, capabilities)
        if missing:
            self.notes.append(
                f"database roles of {', '.join(missing)} do not exist yet: run the migrations "
                "(opsdeck db upgrade, or start with deploy)"
            )

    def _run_deploy_functions(self) -> None:
        for f in self.functions:
            if f.trigger.kind != "deploy":
                continue
            event = {
                "RequestType": "Update",
                "RequestId": str(uuid.uuid4()),
                "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/opsdeck-{self.stage}/local",
                "LogicalResourceId": "Deploy" + "".join(p.title() for p in f.name.split("-")),
                "ResourceType": "Custom::OpsdeckDeploy",
                "ResourceProperties": {},
            }
            invocation = self.runtimes[f.name].invoke(event, trigger="deploy")
            self._record(invocation, {"event_id": event["RequestId"]})
            if invocation.failed:
                raise LocalCloudError(f"deploy function {f.name} failed: {invocation.error}")

    # ---------------------------------------------------------------- demo
    def seed_demo(self) -> list[str]:
        """Call every ``functions/<cap>/demo.py: seed(cloud)``, then fire each enabled schedule once."""
        done = []
        for cap in sorted({f.capability for f in self.functions}):
            module = self._capability_module(cap, "demo")
            seed = getattr(module, "seed", None)
            if callable(seed):
                seed(self)
                done.append(f"demo data: {cap}")
        for rule in self.scheduler.rules.values():
            state = awsapi.rule_state(rule.rule_name)
            if state is not None and state[0] == "ENABLED":
                with contextlib.suppress(InvocationError):
                    self.fire(rule.schedule_name)
                done.append(f"fired: {rule.schedule_name}")
        return done

    # ----------------------------------------------------------------- stop
    def stop(self) -> None:
        if not self._started:
            return
        self._stopping.set()
        with contextlib.suppress(AttributeError), self.engine.lock:
            self.engine.changed.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._http_server is not None:
            self._http_server.stop()
        self.__dict__.pop("_aws_clients", None)
        if awsapi.ACTIVE is self:
            awsapi.ACTIVE = None
            from functions.ops import backend as ops_backend

            ops_backend.use(None)
        if hasattr(self, "_journal"):
            self._journal.close()
        self._restore_env()
        with contextlib.suppress(Exception):
            reset_layer()
        if self._pg is not None:
            self._pg.close()
        close_event_loops()
        self._started = False

    # ----------------------------------------------------------- journaling
    def _record(self, invocation: Invocation, fields: Mapping[str, Any]) -> None:
        entry: dict[str, Any] = {
            "start": _iso(invocation.start),
            "function": invocation.function,
            "trigger": invocation.trigger,
            "event_id": None,
            "request_id": invocation.request_id,
            "duration_ms": round(invocation.duration_ms, 3),
            "outcome": invocation.outcome,
            "batch_item_failures": None,
            "error": invocation.error,
        }
        entry.update(fields)
        entry["outcome"] = invocation.outcome  # the caller may have refined it
        entry["error"] = invocation.error
        if invocation.stack:
            entry["stack"] = invocation.stack[-12:]
        self._journal.append(entry)
        with self._details_lock:
            self._details[invocation.request_id] = {
                "event": invocation.event,
                "result": invocation.result,
                "logs": list(invocation.logs or ()),
                "error": invocation.lambda_error() if invocation.failed else None,
            }
            while len(self._details) > DETAILS_KEPT:
                self._details.popitem(last=False)
        if self.console is not None:
            self.console(format_entry(entry))

    def journal(self) -> list[dict[str, Any]]:
        """Every invocation of this session, oldest first."""
        return self._journal.entries()

    def details(self, request_id: str) -> dict[str, Any] | None:
        """The event, result, error and log lines of one of the last ``DETAILS_KEPT`` invocations."""
        with self._details_lock:
            found = self._details.get(request_id)
            return dict(found) if found is not None else None

    def sample_depths(self, now: float | None = None, *, force: bool = False) -> None:
        """Record every queue's depth once per minute of the cloud's clock (the console's chart)."""
        now = self.clock.time() if now is None else now
        minute = int(now // 60)
        if minute == self._sampled_minute and not force:
            return
        self._sampled_minute = minute
        sample = {}
        for logical, name in self.queue_names().items():
            visible, inflight, _ = self.engine.depth(name)
            sample[logical] = (visible, inflight)
        if self.depth_history and int(self.depth_history[-1][0] // 60) == minute:
            self.depth_history[-1] = (now, sample)
        else:
            self.depth_history.append((now, sample))

    # -------------------------------------------------------------- triggers
    def _collect(self, now: float) -> list[tuple[str, Any]]:
        """Everything due at ``now`` (engine lock held): timers applied, batches received."""
        self.engine.tick(now)
        self.sample_depths(now)
        work: list[tuple[str, Any]] = []
        for rule, when in self.scheduler.due(now):
            event = rule.event(when)
            work.append(("async", AsyncCall(when, 0, rule.runtime, event, "schedule", event["id"])))
        work += [("async", call) for call in self.async_queue.due(now)]
        for mapping in self.mappings:
            work += [("batch", batch) for batch in mapping.ready(now)]
        return work

    def _next_deadline(self) -> float | None:
        times = [
            self.engine.next_timer(),
            self.scheduler.next_deadline(),
            self.async_queue.next_deadline(),
            *(m.deadline() for m in self.mappings),
        ]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def _execute(self, work: tuple[str, Any]) -> None:
        kind, item = work
        if kind == "batch":
            batch: Batch = item
            invocation = batch.mapping.runtime.invoke(batch.event, trigger="queue")
            fields = batch.mapping.complete(batch, invocation)
            self._record(invocation, fields)
            return
        call: AsyncCall = item
        invocation = call.runtime.invoke(call.event, trigger=call.trigger)
        fields: dict[str, Any] = {"event_id": call.event_id}
        if call.attempt > 1:
            fields["attempt"] = call.attempt
        self._record(invocation, fields)
        if invocation.failed:
            with self.engine.lock:
                self.async_queue.retry(call, self.clock.time())
                self.engine.changed.notify_all()

    def _drain(self) -> int:
        """Virtual clock: run everything due now, including what those invocations cause."""
        ran = 0
        for _ in range(MAX_STEPS_PER_INSTANT):
            with self.engine.lock:
                work = self._collect(self.clock.time())
            if not work:
                return ran
            for item in work:
                self._execute(item)
                ran += 1
        raise LocalCloudError(
            f"more than {MAX_STEPS_PER_INSTANT} invocation rounds at one instant: "
            "does a function feed its own queue?"
        )

    def _loop(self) -> None:
        """Real clock: the dispatcher thread."""
        assert self._pool is not None
        lock = self.engine.lock
        while not self._stopping.is_set():
            with lock:
                now = self.clock.time()
                work = self._collect(now)
                if not work:
                    deadline = self._next_deadline()
                    wait = 0.25 if deadline is None else min(0.25, max(0.0, deadline - now))
                    if wait > 0:
                        self.engine.changed.wait(wait)
                    continue
                self._running += len(work)
            for item in work:
                self._pool.submit(self._execute_in_pool, item)

    def _execute_in_pool(self, item: tuple[str, Any]) -> None:
        try:
            self._execute(item)
        except Exception as exc:  # a bug in the emulation must not stop the dispatcher
            import logging

            logging.getLogger("localcloud").exception("dispatch failed: %s", exc)
        finally:
            with self.engine.lock:
                self._running -= 1
                self.engine.changed.notify_all()

    def _check_virtual(self, what: str) -> None:
        if not self.virtual:
            raise LocalCloudError(f"{what} needs the virtual clock (LocalCloud(virtual_clock=True))")

    def advance(self, seconds: float) -> None:
        """Virtual clock: move time by ``seconds``, running everything that falls due, in order."""
        self._check_virtual("advance")
        if seconds < 0:
            raise ValueError("time only moves forward")
        assert isinstance(self.clock, VirtualClock)
        target = self.clock.time() + seconds
        self._drain()
        while True:
            with self.engine.lock:
                nxt = self._next_deadline()
            if nxt is None or nxt > target:
                break
            self.clock.set(max(nxt, self.clock.time()))
            self._drain()
        self.clock.set(target)
        self._drain()

    def _busy(self) -> bool:
        with self.engine.lock:
            for mapping in self.mappings:
                visible, inflight, delayed = self.engine.depth(mapping.queue_name)
                if visible or inflight or delayed or mapping.busy():
                    return True
            return bool(len(self.async_queue)) or self._running > 0

    def run_until_idle(self, max_seconds: float = 60) -> dict[str, Any]:
        """Deliver everything deliverable: until no consumed queue holds messages and no
        async retry is pending, for at most ``max_seconds`` (virtual: advancing time as needed)."""
        if not self.virtual:
            deadline = time.monotonic() + max_seconds
            while self._busy() and time.monotonic() < deadline:
                time.sleep(0.005)
            return {"idle": not self._busy()}
        assert isinstance(self.clock, VirtualClock)
        start, ran = self.clock.time(), self._drain()
        limit = start + max_seconds
        while self._busy():
            with self.engine.lock:
                nxt = self._next_deadline()
            if nxt is None or nxt > limit:
                break
            self.clock.set(max(nxt, self.clock.time()))
            ran += self._drain()
        return {"idle": not self._busy(), "invocations": ran, "advanced_s": self.clock.time() - start}

    # ------------------------------------------------------------------ queues
    def queue_names(self) -> dict[str, str]:
        """Logical name (``backoffice-changes``, ``backoffice-changes-dlq``) → SQS queue name."""
        names = {}
        for f in self.catalog:
            if f.trigger.kind == "queue":
                names[f.trigger.name] = f.trigger.queue_name
                names[f.trigger.name + "-dlq"] = f.trigger.dlq_name
        return names

    def _queue(self, queue: str) -> str:
        names = self.queue_names()
        if queue in names:
            return names[queue]
        if queue in names.values():
            return queue
        known = ", ".join(sorted(names)) or "none"
        raise LocalCloudError(f"unknown queue {queue!r} (catalog queues: {known})")

    def send(
        self,
        queue: str,
        body: Any,
        *,
        attributes: Mapping[str, Any] | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        delay_s: int | None = None,
    ) -> str:
        """Send a message (``body`` that is not a string is sent as JSON); returns its message id."""
        name = self._queue(queue)
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), default=str)
        try:
            result = self.engine.send(
                name,
                text,
                message_attributes=attributes,
                group_id=group_id,
                dedup_id=dedup_id,
                delay_s=delay_s,
            )
        except SQSError as exc:
            raise LocalCloudError(f"queue {queue}: {exc.message}") from None
        return result.message_id

    def depth(self, queue: str) -> tuple[int, int]:
        """(visible, in flight) — delayed messages count as neither, as on AWS."""
        visible, inflight, _ = self.engine.depth(self._queue(queue))
        return visible, inflight

    def peek(self, queue: str, limit: int = 10) -> list[dict[str, Any]]:
        """Messages in queue order without changing their visibility (``State``: visible/delayed/inflight)."""
        return self.engine.peek(self._queue(queue), limit)

    def replay(
        self,
        dlq: str,
        *,
        to: str | None = None,
        filter: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        rate: float | str | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        time_budget_s: float | None = None,
    ) -> dict[str, Any]:
        """Move DLQ messages back through the SQS API of the local endpoint (``localcloud.replay``);
        ``progress`` is called after each batch (``opsdeck.replay``)."""
        from localcloud.replay import replay

        return replay(
            self.aws_client("sqs"),
            self.queue_url(self._queue(dlq)),
            to=self.queue_url(self._queue(to)) if to else None,
            filter=filter,
            limit=limit,
            dry_run=dry_run,
            rate=rate,
            receive_wait_s=0 if self.virtual else 1,
            progress=progress,
            time_budget_s=time_budget_s,
        )

    def aws_client(self, service: str) -> Any:
        """A boto3 client of the local endpoint, created once per service (a client costs ~0.1 s)."""
        clients = self.__dict__.setdefault("_aws_clients", {})
        if service not in clients:
            import boto3

            clients[service] = boto3.session.Session().client(
                service,
                endpoint_url=self.aws_url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key="opsdeck-local",  # noqa: S106 - the local endpoint's dummy key
            )
        return clients[service]

    # ---------------------------------------------------------------- invoke
    def _runtime(self, name: str) -> FunctionRuntime:
        try:
            return self.runtimes[name]
        except KeyError:
            known = ", ".join(sorted(self.runtimes))
            raise LocalCloudError(f"unknown function {name!r} (known: {known})") from None

    def invoke(self, function_name: str, event: Any, *, capture_logs: bool = False) -> Any:
        """Invoke a function synchronously; returns its result, raises ``InvocationError`` if it failed."""
        invocation = self.invoke_raw(function_name, event, capture_logs=capture_logs)
        if invocation.failed:
            raise InvocationError(invocation) from invocation.exception
        return invocation.result

    def invoke_raw(
        self, function_name: str, event: Any, *, capture_logs: bool = False, request_id: str | None = None
    ) -> Invocation:
        invocation = self._runtime(function_name).invoke(
            event, trigger="invoke", capture_logs=capture_logs, request_id=request_id
        )
        self._record(invocation, {"event_id": invocation.request_id})
        return invocation

    def fire(self, schedule_name: str) -> Any:
        """Fire a schedule now (``Schedule.name``, the function name or the rule name), whatever
        the rule's state; returns the result, raises ``InvocationError`` if the function failed."""
        rule = self._rule(schedule_name)
        event = rule.event(self.clock.time())
        invocation = rule.runtime.invoke(event, trigger="schedule")
        self._record(invocation, {"event_id": event["id"], "fired": "manual"})
        if invocation.failed:
            raise InvocationError(invocation) from invocation.exception
        return invocation.result

    def fire_async(self, schedule_name: str) -> dict[str, Any]:
        """Fire a schedule now the way EventBridge does: an asynchronous invocation of its function
        with the rule's event (retried twice on failure), run by the dispatcher (virtual clock: by
        the next ``advance``). Returns the event's id; whatever the rule's state."""
        rule = self._rule(schedule_name)
        with self.engine.lock:
            event = rule.event(self.clock.time())
            self.async_queue.add(
                rule.runtime, event, trigger="schedule", due=self.clock.time(), event_id=event["id"]
            )
            self.engine.changed.notify_all()
        return {
            "schedule": rule.schedule_name,
            "function": rule.runtime.function.name,
            "event_id": event["id"],
        }

    def _rule(self, schedule_name: str) -> ScheduledRule:
        rules = self.scheduler.rules
        rule = rules.get(schedule_name) or self.scheduler.by_rule.get(schedule_name)
        if rule is None:
            rule = next((r for r in rules.values() if r.runtime.function.name == schedule_name), None)
        if rule is None:
            known = ", ".join(sorted(rules)) or "none"
            raise LocalCloudError(f"unknown schedule {schedule_name!r} (schedules: {known})")
        return rule

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | str | Any = None,
        query: str | Mapping[str, Any] | Sequence[tuple[str, str]] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> tuple[int, ResponseHeaders, bytes]:
        """An HTTP request through the local API Gateway (no socket): route, authorizer, event, handler.

        ``source_ip`` is the client address the function sees (``requestContext.http.sourceIp``)."""
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k, _ in pairs):
                pairs.append(("content-type", "application/json"))
        if not any(k.lower() == "host" for k, _ in pairs):
            pairs.append(("host", "localhost"))
        if isinstance(query, str) or query is None:
            raw_query = (query or "").lstrip("?")
        else:
            raw_query = urlencode(
                list(query.items()) if isinstance(query, Mapping) else list(query), doseq=True
            )
        response = self.gateway.handle(
            method, path, raw_query=raw_query, headers=pairs, body=data, source_ip=source_ip
        )
        out = ResponseHeaders()
        for name, value in response.headers:
            key = name.lower()
            out[key] = f"{out[key]}, {value}" if key in out else value
        out.cookies = list(response.cookies)
        return response.status, out, response.body

    # ------------------------------------------------------- AWS endpoint hooks
    def lambda_invoke(
        self, name: str, payload: bytes, invocation_type: str, log_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Lambda's ``Invoke`` API on the local endpoint (``localcloud.awsapi``)."""
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        runtime = self.runtimes.get(name)
        if runtime is None:
            return awsapi.lambda_response(
                404,
                {"Type": "User", "message": f"Function not found: {arn}"},
                error_type="ResourceNotFoundException",
            )
        try:
            event = json.loads(payload) if payload.strip() else {}
        except ValueError as exc:
            return awsapi.lambda_response(
                400,
                {"Type": "User", "message": f"Could not parse request body into json: {exc}"},
                error_type="InvalidRequestContentException",
            )
        if invocation_type == "DryRun":
            return 204, {}, b""
        if invocation_type == "Event":
            with self.engine.lock:
                self.async_queue.add(
                    runtime, event, trigger="invoke", due=self.clock.time(), event_id=str(uuid.uuid4())
                )
                self.engine.changed.notify_all()
            return 202, {}, b""
        invocation = runtime.invoke(event, trigger="invoke", capture_logs=log_type == "Tail", throttle=True)
        self._record(invocation, {"event_id": invocation.request_id})
        headers = {"X-Amz-Executed-Version": "$LATEST", "X-Amzn-RequestId": invocation.request_id}
        if log_type == "Tail" and invocation.logs is not None:
            headers["X-Amz-Log-Result"] = base64.b64encode(self._log_tail(invocation)).decode()
        if invocation.outcome == "throttled":
            return awsapi.lambda_response(
                429,
                {
                    "Type": "User",
                    "message": "Rate Exceeded.",
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                },
                error_type="TooManyRequestsException",
            )
        if invocation.failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return (
                200,
                {"Content-Type": "application/json", **headers},
                json.dumps(invocation.lambda_error()).encode(),
            )
        body = json.dumps(invocation.result, default=str).encode()
        return 200, {"Content-Type": "application/json", **headers}, body

    @staticmethod
    def _log_tail(invocation: Invocation) -> bytes:
        rid = invocation.request_id
        lines = [f"START RequestId: {rid} Version: $LATEST", *(invocation.logs or [])]
        if invocation.failed:
            lines.append(json.dumps({"errorMessage": invocation.error, "errorType": invocation.error_type}))
        lines += [
            f"END RequestId: {rid}",
            f"REPORT RequestId: {rid}\tDuration: {invocation.duration_ms:.2f} ms",
        ]
        return ("\n".join(lines) + "\n").encode()[-LOG_TAIL_BYTES:]

    def rules_changed(self) -> None:
        with self.engine.lock:
            self.scheduler.refresh(self.clock.time())
            self.engine.changed.notify_all()

    # ---------------------------------------------------------------- state
    def running_state(self) -> dict[str, Any]:
        """What ``opsdeck local up`` writes to ``<root>/local.json`` for the other commands."""
        return {
            "http": self.base_url,
            "aws": self.aws_url,
            "journal": str(self.journal_file),
            "env": self.env,
            "functions": [f.name for f in self.functions],
            "queues": self.queue_names(),
        }

    def describe(self) -> dict[str, Any]:
        """Where everything is and what it holds (``opsdeck local up``, the control API)."""
        queues = {}
        for logical, name in self.queue_names().items():
            visible, inflight, delayed = self.engine.depth(name)
            queues[logical] = {"name": name, "visible": visible, "in_flight": inflight, "delayed": delayed}
        rules = {}
        for rule in self.scheduler.rules.values():
            state = awsapi.rule_state(rule.rule_name)
            rules[rule.schedule_name] = {
                "rule": rule.rule_name,
                "arn": rule_arn(rule.rule_name),
                "expression": rule.expression,
                "state": state[0] if state else "DELETED",
                "function": rule.runtime.function.name,
                "next": _iso(rule.next_fire) if rule.next_fire else None,
            }
        return {
            "http": self.base_url,
            "aws": self.aws_url,
            "simulators": self.simulator_urls,
            "clock": _iso(self.clock.time()),
            "virtual_clock": self.virtual,
            "functions": {f.name: f.trigger.kind for f in self.functions},
            "queues": queues,
            "schedules": rules,
            "journal": str(self.journal_file),
        }
