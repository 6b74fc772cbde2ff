"""PostgreSQL access: one lazy engine per container, transactions, bulk upsert.

* SQLAlchemy is imported on first use, not at handler import: a function whose
  invocation never touches the database (a cache hit, a health probe of the cache)
  never pays for it.
* The engine is created once per container. Behind RDS Proxy a container keeps at
  most ``DB_POOL_SIZE`` (default 1) connections; ``0`` selects ``NullPool``. Engines are kept
  per ``DATABASE_URL`` as the function's environment has it: on AWS that is one engine; the
  local cloud runs every function in one process, each connecting as its capability's own
  database role (its own ``DATABASE_URL``), so each capability gets its own engine there.
* ``SSLContext`` is built once per mode (building one per connect costs ~22 ms).
* pg8000 is tuned (``opsdeck.pgwire``): one round trip per statement, placeholders rewritten
  once per statement text.
* ``bulk_upsert`` writes a whole batch in ONE statement:
  ``INSERT … SELECT FROM unnest(:arrays) ON CONFLICT … DO UPDATE … WHERE <version guard>``
  (~30x the rows/s of ``executemany`` on pg8000, see BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic_core import to_json

from . import pgwire
from .errors import ConfigError, Unavailable
from .jsonutil import dumps
from .settings import platform, secret

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table

NoneType = type(None)

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_bound: Connection | None = None


# --------------------------------------------------------------------------- URL


def normalize_url(url: str) -> str:
    """Any PostgreSQL URL → a SQLAlchemy pg8000 URL.

    Accepts ``postgres://``, ``postgresql://``, ``postgresql+pg8000://`` and libpq-style
    socket URLs (``?host=/tmp/dir``, as printed by pgserver), which become pg8000's
    ``unix_sock`` parameter.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")
    query = dict(parse_qsl(parts.query))
    netloc = parts.netloc
    host = query.pop("host", None)
    if host and host.startswith("/"):
        port = parts.port or 5432
        query["unix_sock"] = f"{host.rstrip('/')}/.s.PGSQL.{port}"
        netloc = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
    for libpq_only in ("sslmode", "connect_timeout", "application_name"):
        query.pop(libpq_only, None)
    return urlunsplit(("postgresql+pg8000", netloc, parts.path, urlencode(query), ""))


def _url_from_secret() -> str:
    s = platform()
    data = secret(s.database_secret_id or "")
    try:
        user, password = data["username"], data["password"]
    except KeyError as missing:
        raise ConfigError(f"secret {s.database_secret_id!r} lacks the {missing} field") from None
    host = s.database_host or data.get("host")
    if not host:
        raise ConfigError("DATABASE_HOST is not set and the database secret has no host")
    port = data.get("port", 5432)
    name = s.database_name or data.get("dbname") or "postgres"
    return f"postgresql+pg8000://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{name}"


def _url_for_iam() -> str:
    s = platform()
    if not (s.database_host and s.database_user):
        raise ConfigError("DATABASE_AUTH=iam needs DATABASE_HOST and DATABASE_USER")
    user = quote(s.database_user, safe="")
    return f"postgresql+pg8000://{user}@{s.database_host}:{s.database_port}/{s.database_name or 'postgres'}"


def database_url() -> str:
    """The URL to connect with: ``DATABASE_URL`` (local, tests), else on AWS the proxy as
    ``DATABASE_USER`` with IAM tokens (``DATABASE_AUTH=iam``) or a secret's credentials."""
    # read per call, not from the cached settings: the local cloud gives each function its own
    url = os.environ.get("DATABASE_URL")
    if url:
        return normalize_url(url)
    s = platform()
    if s.database_auth == "iam":
        return _url_for_iam()
    if s.database_secret_id:
        return _url_from_secret()
    raise ConfigError("DATABASE_URL is not set (on AWS: DATABASE_HOST, DATABASE_USER and DATABASE_AUTH=iam)")


@functools.cache
def ssl_context(mode: str) -> ssl.SSLContext | None:
    """The SSLContext for ``DATABASE_SSL``, built once per container."""
    if mode == "disable":
        return None
    ctx = ssl.create_default_context()
    if mode == "require":  # encrypted, not verified (libpq's sslmode=require)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ------------------------------------------------------------------------ engine


def engine() -> Engine:
    """The container's engine (for this function's ``DATABASE_URL``), created on first use."""
    key = os.environ.get("DATABASE_URL", "")
    found = _engines.get(key)
    if found is None:
        with _lock:
            found = _engines.get(key)
            if found is None:
                found = _engines[key] = _create_engine()
    return found


def _create_engine() -> Engine:
    return create_engine(database_url(), pool_size=platform().db_pool_size)


def create_engine(url: str, *, pool_size: int = 0) -> Engine:
    """An engine with opsdeck's connect timeout, TLS and pool rules (``pool_size=0``: NullPool)."""
    from sqlalchemy import create_engine as sa_create_engine
    from sqlalchemy import event
    from sqlalchemy.pool import NullPool

    s = platform()
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S, "application_name": "opsdeck"}
    ctx = ssl_context(s.database_ssl)
    if ctx is not None:
        connect_args["ssl_context"] = ctx
    kwargs: dict[str, Any] = {"connect_args": connect_args, "json_serializer": dumps}
    if pool_size == 0:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=600)
    pgwire.install()
    engine = sa_create_engine(normalize_url(url), **kwargs)
    if s.database_auth == "iam" and not os.environ.get("DATABASE_URL"):
        event.listen(engine, "do_connect", _iam_password)
    event.listen(engine, "connect", _tune_socket)
    if pool_size:
        event.listen(engine, "checkin", _idle_since)
        event.listen(engine, "checkout", _ping_after_idle)
    return engine


def _iam_password(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """Each new connection authenticates with an IAM token (cached within its lifetime)."""
    from . import dbauth

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    if not region:
        raise ConfigError("DATABASE_AUTH=iam needs AWS_REGION")
    cparams["password"] = dbauth.token(cparams["host"], cparams.get("port", 5432), cparams["user"], region)


#: a pooled connection idle for longer is pinged before use
PING_AFTER_IDLE_S = 5.0


def _idle_since(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_after_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a pooled connection before use only if it sat idle (``pool_pre_ping`` pings always).

    A Lambda container is frozen between invocations and the proxy or the server may close its
    connection meanwhile; but one used a moment ago is alive, and a ping is a round trip on
    every request. A failed ping makes the pool replace the connection (and retry checkout).
    """
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    from sqlalchemy.exc import DisconnectionError

    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError(f"pooled connection is gone: {first_line(exc)}") from exc


#: how long connecting (TCP, TLS, authentication) may take
CONNECT_TIMEOUT_S = 10


def _tune_socket(dbapi_connection: Any, _record: Any) -> None:
    """Once connected: no timeout on statements, and Nagle's algorithm off.

    * pg8000's ``timeout`` is the socket's: kept, it would also cut off any statement running
      longer (a migration, a big backfill chunk) and lose the connection. It bounds connecting
      only; a statement runs as long as the function's own timeout allows.
    * pg8000 does not set TCP_NODELAY: a statement larger than its write buffer is sent in
      two segments and the second waits for the server's delayed ACK — ~40 ms per bulk
      statement (measured: a 300-row upsert took 44 ms, 1.6 ms of it in the server).
    """
    sock = getattr(dbapi_connection, "_usock", None)
    if sock is None:
        return
    sock.settimeout(None)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def reset() -> None:
    """Dispose the engines (tests, or after the configuration changed) and forget IAM tokens."""
    import sys

    dbauth = sys.modules.get("opsdeck.dbauth")
    if dbauth is not None:
        dbauth.reset()
    with _lock:
        for found in _engines.values():
            found.dispose()
        _engines.clear()


@contextlib.contextmanager
def bind(conn: Connection) -> Iterator[Connection]:
    """Route every ``transaction()`` to savepoints on ``conn`` (tests roll ``conn`` back)."""
    global _bound
    previous, _bound = _bound, conn
    try:
        yield conn
    finally:
        _bound = previous


@contextlib.contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside a transaction: committed on success, rolled back on error."""
    if _bound is not None:
        with _bound.begin_nested():
            yield _bound
        return
    from sqlalchemy.exc import DBAPIError

    try:
        conn = engine().connect()
    except DBAPIError as exc:  # refused, unknown database, bad password, TLS: all "unavailable"
        raise Unavailable(f"database unavailable: {first_line(exc)}") from exc
    with conn:
        try:
            with conn.begin():
                yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable(f"database connection lost: {first_line(exc)}") from exc
            raise


class Driver:
    """The pg8000 connection of a ``driver_transaction``: fixed statements, ``%s`` placeholders."""

    __slots__ = ("_cursor",)

    def __init__(self, dbapi_connection: Any) -> None:
        self._cursor = dbapi_connection.cursor()

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run ``statement`` (pg8000's ``format`` style: ``%s``; ``%%`` for a literal ``%``) and
        return its rows as tuples (none for a statement without rows)."""
        self._cursor.execute(statement, tuple(params))
        return [tuple(r) for r in self._cursor.fetchall()] if self._cursor.description else []

    def one(self, statement: str, params: Sequence[Any] = ()) -> tuple:
        rows = self.rows(statement, params)
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}")
        return rows[0]


@contextlib.contextmanager
def driver_transaction() -> Iterator[Driver]:
    """``transaction()`` without SQLAlchemy's execution layer, for a measured hot path.

    The connection comes from the same pool (same engine, TLS, ping-after-idle) and is committed
    on success, rolled back on error; statements go straight to pg8000 (still through
    ``opsdeck.pgwire``: one round trip each, ``BEGIN`` sent with the first). That is ~0.4 ms of
    CPU a transaction less than ``transaction()`` + ``Connection.execute`` on the reference VM
    (the snacks reaction toggle, BENCHMARKS.md). Errors are pg8000's own (``pg8000.dbapi``), not
    SQLAlchemy's; a lost connection is ``Unavailable`` and leaves the pool. Under ``bind`` (tests)
    it runs in a savepoint of the bound connection, as ``transaction()`` does.
    """
    if _bound is not None:
        with _bound.begin_nested():
            yield Driver(_bound.connection.dbapi_connection)
        return
    from pg8000.exceptions import InterfaceError
    from sqlalchemy.exc import DBAPIError

    try:
        fairy = engine().raw_connection()
    except DBAPIError as exc:  # as transaction(): refused, unknown database, bad password, TLS
        raise Unavailable(f"database unavailable: {first_line(exc)}") from exc
    try:
        dbapi_connection = fairy.dbapi_connection
        try:
            yield Driver(dbapi_connection)
            dbapi_connection.commit()
        except (InterfaceError, OSError) as exc:  # the connection is gone: never back to the pool
            fairy.invalidate(exc)
            raise Unavailable(f"database connection lost: {first_line(exc)}") from exc
        except BaseException:
            try:
                dbapi_connection.rollback()
            except Exception as exc:
                fairy.invalidate(exc)
            raise
    finally:
        fairy.close()


def first_line(exc: BaseException) -> str:
    """The driver's own message of a database error, on one line."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    if isinstance(orig.args[0] if orig.args else None, dict):  # pg8000 server errors carry a dict
        info = orig.args[0]
        text = f"{info.get('C', '')} {info.get('M', text)}".strip()
    return text[:300]


def ping() -> float:
    """``SELECT 1``; returns the round trip in milliseconds or raises ``Unavailable``."""
    from sqlalchemy import text

    started = time.perf_counter()
    with transaction() as conn:
        conn.execute(text("SELECT 1"))
    return (time.perf_counter() - started) * 1000


# ------------------------------------------------------------------- bulk upsert


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int
    updated: int
    #: rows not written: the version guard kept the stored row, ``DO NOTHING`` found one,
    #: or a newer row with the same key was in the same batch
    skipped: int
    #: with ``returning``: one row per written row, ``inserted`` (bool) then those columns
    rows: list[Any]

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def bulk_upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    columns: Sequence[str] | None = None,
    update: Sequence[str] | None = None,
    version: Sequence[str] | None = None,
    do_nothing: bool = False,
    returning: Sequence[str] = (),
) -> UpsertResult:
    """Insert or update ``rows`` into ``table`` in one statement.

    ``key`` is the conflict target (a unique index). ``columns`` defaults to the keys of
    the first row. ``update`` (default: every non-key column) is overwritten on conflict,
    but only where the stored row is older than the incoming one when ``version`` names
    ordering columns: ``WHERE (stored.v1, stored.v2) < (EXCLUDED.v1, EXCLUDED.v2)``.
    Version columns must be NOT NULL. Rows repeating a key inside the batch are
    collapsed first (the highest version wins, else the last one), as PostgreSQL
    refuses to touch a row twice in one statement.
    """
    if not rows:
        return UpsertResult(0, 0, 0, [])
    cols = tuple(columns or rows[0].keys())
    key_t, ver_t = tuple(key), tuple(version or ())
    upd_t = tuple(update) if update is not None else tuple(c for c in cols if c not in key_t)
    unique = _collapse(rows, key_t, ver_t)
    stmt = _upsert_statement(table, cols, key_t, upd_t, ver_t, do_nothing, tuple(returning))
    params = {f"p{i}": _column_values(table, c, unique) for i, c in enumerate(cols)}
    if not returning:  # counts only: aggregated in the server, one row back instead of one per row
        inserted, written = conn.execute(stmt, params).one()
        return UpsertResult(inserted, written - inserted, len(rows) - written, [])
    result = conn.execute(stmt, params).all()
    inserted = sum(1 for r in result if r[0])
    return UpsertResult(inserted, len(result) - inserted, len(rows) - len(result), result)


def _collapse(
    rows: Sequence[Mapping[str, Any]], key: tuple[str, ...], version: tuple[str, ...]
) -> Sequence[Mapping[str, Any]]:
    if len(key) == 1:
        (k,) = key
        keys: list[Any] = [row[k] for row in rows]
    else:
        keys = [tuple(row[c] for c in key) for row in rows]
    if len(set(keys)) == len(rows):  # the common case: nothing to collapse
        return rows
    latest: dict[Any, Mapping[str, Any]] = {}
    for k, row in zip(keys, rows, strict=True):
        seen = latest.get(k)
        if seen is None or not version or tuple(row[c] for c in version) >= tuple(seen[c] for c in version):
            latest[k] = row
    return list(latest.values())


def _column_values(table: Table, column: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """One column of the batch as a PostgreSQL array literal, cast to ``type[]`` in SQL.

    Building the literal here (one encoder per column, picked once from its type) is ~1.5x
    faster end to end than letting pg8000 escape each string character by character in
    Python; see ``_literal`` for the fast path.
    """
    encode, fast_kinds = _encoder(table, column)
    values = [row.get(column) for row in rows]
    try:
        return _literal(values, encode, fast_kinds)
    except TypeError as exc:
        raise TypeError(f"bulk_upsert: {exc} for column {column!r}") from None


def array_literal(values: Iterable[Any]) -> str:
    """``values`` as a PostgreSQL array literal, for ``CAST(:param AS type[])`` (fast for big lists)."""
    return _literal(list(values), _encode_any, _ANY_FAST)


def _literal(values: list[Any], encode: Callable[[Any], str], fast_kinds: frozenset[type]) -> str:
    """The array literal of ``values``.

    Fast path: when every value is of a kind whose JSON text is also its array element text
    (strings, integers, timestamps, …), pydantic-core's JSON encoder (Rust) writes the whole
    list at once — ``["a",1,null]`` becomes ``{"a",1,null}`` (unquoted ``null`` is NULL). It is
    taken only when the JSON holds no backslash: JSON's escapes (``\\n``, ``\\u0001``) are
    not PostgreSQL's, so a value that needed one goes through the exact per-value encoder.
    A timestamp costs ~0.6 µs this way against ~1.4 µs for ``isoformat``.
    """
    kinds = set(map(type, values))
    kinds.discard(NoneType)
    if kinds <= fast_kinds:
        text = to_json(values, inf_nan_mode="strings").decode()
        if "\\" not in text:
            return "{" + text[1:-1] + "}"
    return "{" + ",".join(["NULL" if v is None else encode(v) for v in values]) + "}"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_any(value: Any) -> str:
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return '"' + str(value) + '"'
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return '"' + value.isoformat() + '"'
    if isinstance(value, dict | list):
        return _quoted(dumps(value))
    raise TypeError(f"{type(value).__name__} value")


# One function per column type: the expected Python type takes the fast path, anything else
# the general one (which refuses what it cannot encode).
def _encode_str(v: Any) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' if type(v) is str else _encode_any(v)


def _encode_int(v: Any) -> str:
    return str(v) if type(v) is int else _encode_any(v)


def _encode_decimal(v: Any) -> str:
    return str(v) if type(v) is Decimal else _encode_any(v)


def _encode_float(v: Any) -> str:
    return repr(v) if type(v) is float else _encode_any(v)


def _encode_bool(v: Any) -> str:
    return ("t" if v else "f") if type(v) is bool else _encode_any(v)


def _encode_datetime(v: Any) -> str:
    return '"' + v.isoformat() + '"' if type(v) is datetime.datetime else _encode_any(v)


def _encode_json(v: Any) -> str:
    return _quoted(dumps(v))


_ANY_FAST = frozenset({str, int, Decimal, uuid.UUID, datetime.datetime, datetime.date})


@functools.cache
def _encoder(table: Table, column: str) -> tuple[Callable[[Any], str], frozenset[type]]:
    """A column's value → array element encoder, and the value kinds ``_literal``'s fast path
    may take for it; chosen once from the column's SQLAlchemy type."""
    from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, Numeric, String

    col_type = table.c[column].type
    for sa_type, encode, fast in (
        (JSON, _encode_json, ()),  # a dict's JSON braces would read as a nested array
        (String, _encode_str, (str,)),
        (Boolean, _encode_bool, (bool,)),
        (Integer, _encode_int, (int,)),
        (Float, _encode_float, (float, int)),
        (Numeric, _encode_decimal, (Decimal, int)),
        (DateTime, _encode_datetime, (datetime.datetime,)),
    ):
        if isinstance(col_type, sa_type):
            return encode, frozenset(fast)
    return _encode_any, _ANY_FAST


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    table: Table,
    cols: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[str, ...],
    version: tuple[str, ...],
    do_nothing: bool,
    returning: tuple[str, ...],
):
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    unknown = [c for c in (*cols, *key, *update, *version, *returning) if c not in table.c]
    if unknown:
        raise ValueError(f"{table.fullname} has no column(s) {unknown}")
    arrays = []
    for i, c in enumerate(cols):
        col_type = table.c[c].type
        if isinstance(col_type, postgresql.ARRAY):
            raise ValueError(f"bulk_upsert cannot unnest array column {table.fullname}.{c}")
        arrays.append(f"CAST(:p{i} AS {col_type.compile(dialect=dialect)}[])")
    q = dialect.identifier_preparer.quote
    name = table.name if table.schema is None else f"{q(table.schema)}.{q(table.name)}"
    sql = [
        f"INSERT INTO {name} AS stored ({', '.join(q(c) for c in cols)})",
        f"SELECT * FROM unnest({', '.join(arrays)})",
        f"ON CONFLICT ({', '.join(q(c) for c in key)})",
    ]
    if do_nothing or not update:
        sql.append("DO NOTHING")
    else:
        sql.append("DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in update))
        if version:
            stored = ", ".join(f"stored.{q(c)}" for c in version)
            incoming = ", ".join(f"EXCLUDED.{q(c)}" for c in version)
            sql.append(f"WHERE ROW({stored}) < ROW({incoming})")
    sql.append("RETURNING (xmax = 0) AS inserted" + "".join(f", stored.{q(c)}" for c in returning))
    if not returning:
        body = "\n".join(sql)
        counts = "SELECT count(*) FILTER (WHERE inserted), count(*) FROM written"
        return text(f"WITH written AS ({body})\n{counts}")
    return text("\n".join(sql))
