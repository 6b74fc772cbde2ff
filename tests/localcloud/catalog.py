"""A test-only catalog: one function per behaviour under test, handlers in ``handlers.py``.

Names follow the real catalog's rules (capability ``ops``, names ``ops-…``) and the catalog
validates it, so the local cloud sees exactly what a capability would declare.
"""

from __future__ import annotations

from functions.catalog import Deploy, Function, Http, Manual, Queue, Route, Schedule, validate

H = "tests.localcloud.handlers"

API = Function(
    name="ops-test-api",
    capability="ops",
    handler=f"{H}.api",
    trigger=Http(
        routes=(
            Route("GET", "/ops/test/echo/{item}"),
            Route("POST", "/ops/test/echo/{item}"),
            Route("GET", "/ops/test/private", authorizer="jwt"),
            Route("GET", "/ops/test/scoped", authorizer="jwt", scopes=("orders:read",)),
            Route("GET", "/ops/test/cookies"),
            Route("GET", "/ops/test/binary"),
            Route("POST", "/ops/test/enqueue"),
        )
    ),
    sends_to=("ops-test-jobs",),
    timeout_s=5,
    environment={"TEST_FLAVOUR": "api"},
)
RAW = Function(
    name="ops-test-raw",
    capability="ops",
    handler=f"{H}.raw",
    trigger=Http(routes=(Route("ANY", "/ops/raw/{proxy+}"),)),
    timeout_s=1,
    memory_mb=1024,
)
WORKER = Function(
    name="ops-test-worker",
    capability="ops",
    handler=f"{H}.worker",
    trigger=Queue(name="ops-test-jobs", batch_size=10, visibility_timeout_s=60, max_receive_count=3),
    timeout_s=10,
    environment={"TEST_FLAVOUR": "worker"},
)
WINDOWED = Function(
    name="ops-test-windowed",
    capability="ops",
    handler=f"{H}.worker",
    trigger=Queue(name="ops-test-batches", batch_size=50, batching_window_s=5, visibility_timeout_s=60),
    timeout_s=10,
)
ORDERED = Function(
    name="ops-test-ordered",
    capability="ops",
    handler=f"{H}.worker",
    trigger=Queue(
        name="ops-test-ordered", fifo=True, batch_size=3, visibility_timeout_s=60, max_receive_count=2
    ),
    timeout_s=10,
)
TICK = Function(
    name="ops-test-tick",
    capability="ops",
    handler=f"{H}.tick",
    trigger=Schedule(expression="rate(5 minutes)", input={"job": "tick"}, name="ops-test-tick"),
)
NIGHTLY = Function(
    name="ops-test-nightly",
    capability="ops",
    handler=f"{H}.tick",
    trigger=Schedule(expression="cron(30 2 * * ? *)", input={"crash": True}),
)
TOGGLER = Function(
    name="ops-test-toggler",
    capability="ops",
    handler=f"{H}.toggler",
    trigger=Manual(),
    controls_schedules=("ops-test-tick",),
)
CALLER = Function(
    name="ops-test-caller",
    capability="ops",
    handler=f"{H}.caller",
    trigger=Manual(),
    invokes=("ops-test-worker", "ops-test-tick"),  # ops-test-tick is also the name of a schedule
)
GATED = Function(
    name="ops-test-gated",
    capability="ops",
    handler=f"{H}.gated",
    trigger=Http(routes=(Route("GET", "/ops/gated"),)),
    reserved_concurrency=1,
)
DEPLOYER = Function(name="ops-test-deployer", capability="ops", handler=f"{H}.deployer", trigger=Deploy())

CATALOG = (API, RAW, WORKER, WINDOWED, ORDERED, TICK, NIGHTLY, TOGGLER, CALLER, GATED, DEPLOYER)
validate(CATALOG)
