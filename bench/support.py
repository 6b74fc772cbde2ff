"""Shared benchmark plumbing: a throwaway migrated database, percentiles, fresh-process timing."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers/common/python"


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 while functions run: their logs and EMF metrics would mix with the
    bench's JSON lines (fd level, so loggers holding the original ``sys.stdout`` go quiet too)."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def percentiles(samples_s: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50_us": …}`` from samples in seconds."""
    ordered = sorted(samples_s)
    out = {}
    for p in points:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        out[f"p{p}_us"] = round(ordered[index] * 1e6, 1)
    return out


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh, migrated database for one benchmark run; dropped afterwards.

    Server: ``BENCH_DATABASE_URL``, else the local PostgreSQL on 127.0.0.1:5432 when it answers,
    else an embedded ``pgserver``. Yields a SQLAlchemy pg8000 URL (also exported as DATABASE_URL).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from opsdeck.db import normalize_url
    from opsdeck.migrations import upgrade

    server = None
    admin = os.environ.get("BENCH_DATABASE_URL")
    if not admin and _answers("127.0.0.1", 5432):
        admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    if not admin:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="opsdeck-bench-pg-"), cleanup_mode="delete")
        admin = server.get_uri()
    admin_url = normalize_url(admin)
    name = f"opsdeck_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    from opsdeck import db, settings

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    settings.platform.cache_clear()
    db.reset()
    try:
        yield url
    finally:
        db.reset()
        settings.platform.cache_clear()
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        from opsdeck.migrations import catalog_schemas, drop_roles

        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            drop_roles(conn, name, catalog_schemas())  # the capability roles are named after it
        engine.dispose()
        if server is not None:
            server.cleanup()


def configure(resets: Sequence[Callable[[], object]] = (), **values: str | None) -> None:
    """Set (or, with ``None``, unset) environment variables, then forget what the layer cached
    from the old ones (``tests.support.reset_runtime``) and run the capability's own ``resets``."""
    from tests.support import reset_runtime, set_env

    set_env(values)
    reset_runtime()
    for reset in resets:
        reset()


def bench_redis_url(database: int) -> str:
    """``BENCH_REDIS_URL`` with its database set to ``database``; else the in-process fake."""
    given = os.environ.get("BENCH_REDIS_URL")
    if not given:
        return "fakeredis://"
    return re.sub(r"(rediss?://[^/]+)(/\d+)?$", rf"\g<1>/{database}", given.rstrip("/"))


def lambda_like_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a fresh process laid out like Lambda: layer on the path like /opt/python,
    the code root like /var/task, no editable-install finder in the way."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{LAYER}{os.pathsep}{ROOT}",
        "PYTHONNOUSERSITE": "1",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update(extra or {})
    return env


def fresh_import_ms(module: str, env: dict[str, str], runs: int = 7) -> tuple[float, float, dict[str, bool]]:
    """Median wall time of ``import module`` in a fresh interpreter (.pyc warm); the median time
    of the import PLUS loading every module it deferred with ``opsdeck.lazy.lazy_import`` (what the
    first invocation pays on top); and which heavy libraries are loaded once everything is."""
    import json

    probe = (
        "import sys, time, json\n"
        "t = time.perf_counter()\n"
        f"import {module}\n"
        "imported = (time.perf_counter() - t) * 1000\n"
        "if 'opsdeck.lazy' in sys.modules:\n"
        "    sys.modules['opsdeck.lazy'].load_all()\n"
        "loaded = (time.perf_counter() - t) * 1000\n"
        "heavy = {m: m in sys.modules for m in ('fastapi', 'sqlalchemy', 'boto3', 'redis', 'httpx', 'jwt')}\n"
        "print(json.dumps([imported, loaded, heavy]))\n"
    )
    # -S: skip site (no .pth finders of editable installs); site-packages come through PYTHONPATH,
    # as dependencies come through /opt/python in Lambda.
    site_packages = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = dict(env, PYTHONPATH=env["PYTHONPATH"] + os.pathsep + site_packages)
    command = [sys.executable, "-S", "-c", probe]
    subprocess.run(command, env=env, capture_output=True, check=True)  # warm .pyc
    imported, loaded, heavy = [], [], {}
    for _ in range(runs):
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        first, total, heavy = json.loads(out.stdout.strip().splitlines()[-1])
        imported.append(first)
        loaded.append(total)
    return round(statistics.median(imported), 1), round(statistics.median(loaded), 1), heavy
