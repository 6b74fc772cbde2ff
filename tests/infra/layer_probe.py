"""Runs INSIDE a Lambda-like ``python -S`` process (see infra_cdk/layer_check.py), not under pytest.

Imports every catalog handler from the function code + layer on ``PYTHONPATH``, then exercises
the paths that could need third-party sources at run time; prints one JSON object (the last
line of stdout) that tests/infra/test_layer_smoke.py checks. Every check records an error
string instead of raising, so one failure does not hide the others.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import sys
import sysconfig
import tempfile
import traceback
from contextlib import redirect_stdout
from pathlib import Path

#: the common layer's python/, then the extras layers' (os.pathsep-separated)
LAYERS = tuple(os.environ["PROBE_LAYER"].split(os.pathsep))
RUNTIME = os.environ["PROBE_RUNTIME"]
CODE = os.environ["LAMBDA_TASK_ROOT"]
EVENTS = Path(os.environ["PROBE_EVENTS"])

results: dict[str, object] = {}
errors: dict[str, str] = {}


class Context:
    function_name = "opsdeck-smoke"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:opsdeck-smoke"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-00000000smoke"
    log_group_name = "/aws/lambda/opsdeck-smoke"
    log_stream_name = "2026/11/22/[$LATEST]smoke"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def check(name):
    def run(fn):
        out = io.StringIO()
        try:
            with redirect_stdout(out):  # Powertools logs and EMF metrics go to stdout
                results[name] = fn()
        except BaseException:
            errors[name] = traceback.format_exc()
        return fn

    return run


def event(path: str) -> dict:
    return json.loads((EVENTS / path).read_text())


@check("handlers")
def _handlers():
    from functions import catalog

    loaded = {}
    for f in catalog.FUNCTIONS:
        module = importlib.import_module(f.module)
        assert callable(getattr(module, f.attribute)), f.handler
        loaded[f.name] = f.handler
    # what the first invocation loads on top (opsdeck.lazy.lazy_import)
    for m in list(sys.modules.values()):
        if type(m).__name__ == "_LazyModule":
            m.__dict__  # noqa: B018
    return loaded


@check("ops_api_functions")
def _ops_api():
    from functions import catalog
    from functions.ops.api import handler

    response = handler(event("ops-api/functions.json"), Context())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, response
    assert len(body["functions"]) == len(catalog.FUNCTIONS)
    return response["statusCode"]


@check("openapi")
def _openapi():
    from functions.backoffice.api import handler

    response = handler(event("backoffice-api/openapi.json"), Context())
    assert response["statusCode"] == 200, response
    return len(json.loads(response["body"])["paths"])


@check("consumer_without_database")
def _consumer():
    from functions.backoffice.consumer import handler

    batch = event("backoffice-consumer/batch-with-poison.json")
    try:
        result = handler(batch, Context())
    except (ImportError, FileNotFoundError):
        raise
    except Exception as exc:  # the database is not configured: a reported failure is fine
        return {"raised": type(exc).__name__}
    failures = result["batchItemFailures"]
    assert failures, result
    return {"failed": len(failures), "records": len(batch["Records"])}


@check("jwt")
def _jwt():
    from opsdeck import auth
    from opsdeck.errors import Unauthorized

    token = auth.issue_dev_token("smoke", roles=["ops"], scopes=["ops/read"])
    principal = auth.verify(token)
    assert principal.subject == "smoke" and "ops" in principal.roles
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "mallory"}).encode()).rstrip(b"=")
    try:
        auth.verify(f"{head}.{forged.decode()}.{signature}")
    except Unauthorized as exc:
        return {"verified": principal.subject, "forged": exc.detail}
    raise AssertionError("a tampered token verified")


@check("pydantic")
def _pydantic():
    from pydantic import BaseModel, Field, TypeAdapter, ValidationError

    from functions.backoffice.changes import CHANGE

    class Item(BaseModel):
        sku: str = Field(min_length=3)
        quantity: int

    try:
        Item(sku="x", quantity="many")
    except ValidationError as exc:
        text = str(exc)
    else:
        raise AssertionError("no ValidationError")
    assert "quantity" in text and "sku" in text
    try:
        CHANGE.validate_json('{"op": "zz"}')
    except ValidationError as exc:
        count = exc.error_count()
    schema = TypeAdapter(list[Item]).json_schema()
    return {"message": text.splitlines()[0], "change_errors": count, "schema": sorted(schema)}


@check("sqlalchemy")
def _sqlalchemy():
    from sqlalchemy import create_engine, func, select, text
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.exc import DBAPIError

    from functions.backoffice.tables import payment_orders

    stmt = (
        select(payment_orders.c.order_id, func.count())
        .where(payment_orders.c.status == "SETTLED")
        .group_by(payment_orders.c.order_id)
    )
    compiled = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    assert "GROUP BY" in compiled
    engine = create_engine("postgresql+pg8000://smoke:smoke@127.0.0.1:9/smoke", pool_pre_ping=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except DBAPIError as exc:
        tb = "".join(traceback.format_exception(exc))
    else:
        raise AssertionError("connected to port 9?")
    # through the layer's bytecode, a traceback names each file and line (sourceless: under
    # /opt/python, where Lambda mounts the layer; without the source line)
    frames = [line.strip() for line in tb.splitlines() if line.strip().startswith("File ")]
    in_layer = [f for f in frames if f.startswith(('File "/opt/python/', *(f'File "{p}/' for p in LAYERS)))]
    return {
        "compiled": compiled.split()[0],
        "traceback_frames_in_layer": len(in_layer),
        "layer_frames_named_under_opt_python": all(f.startswith('File "/opt/python/') for f in in_layer),
    }


@check("alembic")
def _alembic():
    from alembic.script import ScriptDirectory
    from alembic.util import format_as_comma, template_to_file

    from opsdeck.migrations import _config

    cfg = _config("postgresql+pg8000://smoke@127.0.0.1:9/smoke")
    scripts = ScriptDirectory.from_config(cfg)
    revisions = list(scripts.walk_revisions())
    heads = scripts.get_heads()
    assert revisions and heads
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rendered.py"
        template_to_file(
            str(Path(scripts.dir) / "script.py.mako"),
            str(out),
            "utf-8",
            comma=format_as_comma,
            message="smoke",
            up_revision="abc123",
            down_revision=None,
            branch_labels=None,
            depends_on=None,
            create_date="2026-11-22",
            imports="",
            upgrades="pass",
            downgrades="pass",
        )
        compile(out.read_text(), str(out), "exec")
    from mako.exceptions import text_error_template
    from mako.template import Template

    try:
        Template("${missing + 1}").render()  # noqa: S702 - a constant template, no HTML
    except TypeError:  # Mako's UNDEFINED + 1
        rendered_error = text_error_template().render()
    assert "TypeError" in rendered_error
    return {"revisions": len(revisions), "heads": sorted(heads)}


@check("powertools")
def _powertools():
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    out = io.StringIO()
    logger = Logger(service="smoke", stream=out)
    logger.info("hello", extra={"k": 1})
    try:
        from sqlalchemy import create_engine

        create_engine("nope://")
    except Exception:
        logger.exception("failed on purpose")
    metrics = Metrics(namespace="opsdeck", service="smoke")
    metrics.add_metric(name="Smoke", unit=MetricUnit.Count, value=1)
    emf = io.StringIO()
    with redirect_stdout(emf):
        metrics.flush_metrics()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[1]["exception_name"], lines[1]
    assert json.loads(emf.getvalue().splitlines()[-1])["Smoke"] == [1.0]
    return {"log_lines": len(lines), "exception_name": lines[1]["exception_name"]}


@check("anyio_lazy")
def _anyio():
    import anyio
    from anyio._lazyimport import _build_lazy_map

    # anyio reads its __init__ source for what to import lazily (bundling.KEEP_SOURCE)
    return {"lazy_names": len(_build_lazy_map(anyio)[0]) > 0}


# ------------------------------------------------------------------ where modules came from


def origin(module) -> str:
    file = getattr(module, "__file__", None)
    if not file:
        return "builtin"
    for name, root in (("code", CODE), *(("layer", layer) for layer in LAYERS), ("runtime", RUNTIME)):
        if file.startswith(root + os.sep):
            return name
    paths = sysconfig.get_paths()
    if file.startswith((paths["stdlib"], paths["platstdlib"])):
        return "stdlib"
    return "elsewhere:" + file


modules = {}
for name, module in sorted(sys.modules.items()):
    where = origin(module)
    spec = getattr(module, "__spec__", None)
    loader = type(spec.loader).__name__ if spec is not None and spec.loader is not None else None
    modules[name] = {"origin": where, "loader": loader, "file": getattr(module, "__file__", None)}

print(json.dumps({"results": results, "errors": errors, "modules": modules}, default=str))
