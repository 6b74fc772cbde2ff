"""SnapStart hooks (opsdeck.snapstart): a simulated restore leaves no client shared with the
snapshot, and the before-snapshot hook warms only what is safe to share."""

from __future__ import annotations

import random
import sys
import types

import pytest

from opsdeck import snapstart
from tests.support import LambdaContext, env


@pytest.fixture
def runtime(monkeypatch):
    """The Lambda runtime's ``snapshot_restore_py``: records the hooks registered with it."""
    hooks: dict[str, list] = {"before": [], "after": []}
    module = types.ModuleType("snapshot_restore_py")
    module.register_before_snapshot = hooks["before"].append
    module.register_after_restore = hooks["after"].append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    monkeypatch.setattr(snapstart, "_installed", False)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    return hooks


def test_a_snapstart_init_registers_the_hooks_with_the_runtime(runtime):
    from opsdeck.observability import entry

    @entry("schedule")
    def handler(event, context):
        return "ok"

    assert runtime == {"before": [snapstart.warm], "after": [snapstart.renew]}
    entry("manual")(handler)  # a second handler in the same process registers nothing more
    assert len(runtime["after"]) == 1
    assert handler({}, LambdaContext()) == "ok"


def test_without_the_runtime_module_install_is_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    monkeypatch.setattr(snapstart, "_installed", False)
    assert snapstart.install() is False
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    assert snapstart.enabled() is False


def test_after_a_restore_every_client_is_new(runtime):
    from opsdeck import aws, cache, db, dbauth
    from opsdeck.http import make_client
    from opsdeck.observability import entry

    entry("http")(lambda e, c: None)
    (warm,), (renew,) = runtime["before"], runtime["after"]
    with env(
        DATABASE_URL="postgresql://app@db.invalid:5432/opsdeck",
        REDIS_URL="fakeredis://",
        AWS_REGION="eu-west-1",
    ):
        # what an initialised container holds when the snapshot is taken
        engine, redis_client, sqs = db.engine(), cache.client(), aws.client("sqs")
        http = make_client(base_url="https://upstream.invalid")
        network = http._transport.inner.inner  # RetryTransport → RenewableTransport → HTTPTransport
        jitter = http._transport._rng.getstate()
        dbauth.token("proxy.invalid", 5432, "opsdeck_marketplace_app", "eu-west-1")
        credentials = dbauth._credentials
        minted = dbauth.minted
        warm()
        state = random.getstate()

        draws = []
        for _copy in range(2):  # two containers restored from the same snapshot
            random.setstate(state)
            renew()
            draws.append(random.random())
        assert draws[0] != draws[1]  # each restored copy draws its own numbers

        assert db.engine() is not engine
        assert cache.client() is not redis_client
        assert aws.client("sqs") is not sqs
        assert http._transport.inner.inner is not network  # same client object, new connections
        assert network._pool.connections == [] and http._transport._rng.getstate() != jitter
        assert dbauth._tokens == {} and dbauth._credentials is None
        dbauth.token("proxy.invalid", 5432, "opsdeck_marketplace_app", "eu-west-1")
        assert dbauth.minted == minted + 1 and dbauth._credentials is not credentials


def test_before_the_snapshot_apps_build_their_openapi_document_and_nothing_connects(runtime):
    from opsdeck import db
    from opsdeck.api import create_app

    app = create_app(title="probe", base_path="/probe")
    assert app.openapi_schema is None
    with env(DATABASE_URL="postgresql://app@db.invalid:5432/opsdeck"):
        snapstart.warm()
        assert app.openapi_schema is not None
        assert db._engines == {}  # no engine, no connection in the snapshot


def test_capability_hooks_run_after_the_layers_own(monkeypatch):
    calls = []
    monkeypatch.setattr(snapstart, "_after", [])
    monkeypatch.setattr(snapstart, "_before", [])
    snapstart.before_snapshot(lambda: calls.append("warm"))
    snapstart.after_restore(lambda: calls.append("renew"))
    snapstart.simulate_restore()
    assert calls == ["warm", "renew"]
