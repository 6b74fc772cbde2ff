"""opsdeck.db against real PostgreSQL: bulk upsert, version guard, transactions, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from sqlalchemy import JSON, BigInteger, Column, DateTime, MetaData, Numeric, Text, text
from sqlalchemy.dialects.postgresql import JSONB

from opsdeck import db as opsdeck_db
from opsdeck.db import bulk_upsert, normalize_url, ssl_context
from opsdeck.errors import ConfigError, Unavailable
from tests.support import env

meta = MetaData(schema="pg_temp")
from sqlalchemy import Table  # noqa: E402

items = Table(
    "items",
    meta,
    Column("id", Text, primary_key=True),
    Column("amount", Numeric(18, 2)),
    Column("payload", JSONB),
    Column("doc", JSON),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)


@pytest.fixture
def conn(db):
    db.execute(
        text(
            "CREATE TEMP TABLE items (id text PRIMARY KEY, amount numeric(18,2), payload jsonb, doc json, "
            "version bigint NOT NULL, updated_at timestamptz)"
        )
    )
    return db


def rows(conn):
    return {r.id: r for r in conn.execute(text("SELECT * FROM pg_temp.items ORDER BY id"))}


T0 = datetime(2026, 1, 1, tzinfo=UTC)
SEOUL = timezone(timedelta(hours=9))


def test_insert_then_update_counts(conn):
    first = [
        {"id": f"k{i}", "amount": Decimal("1.10"), "payload": {"i": i}, "version": 1, "updated_at": T0}
        for i in range(3)
    ]
    result = bulk_upsert(conn, items, first, key=["id"])
    assert (result.inserted, result.updated, result.skipped) == (3, 0, 0)
    second = [
        {
            "id": "k0",
            "amount": Decimal("2.50"),
            "payload": {"i": 0, "x": True},
            "version": 2,
            "updated_at": T0,
        },
        {"id": "k9", "amount": None, "payload": None, "version": 1, "updated_at": None},
    ]
    result = bulk_upsert(conn, items, second, key=["id"])
    assert (result.inserted, result.updated) == (1, 1)
    stored = rows(conn)
    assert stored["k0"].amount == Decimal("2.50")
    assert stored["k0"].payload == {"i": 0, "x": True}
    assert stored["k9"].amount is None and stored["k9"].payload is None


def test_version_guard_keeps_newer_rows(conn):
    bulk_upsert(
        conn, items, [{"id": "a", "amount": Decimal("5"), "version": 5}], key=["id"], version=["version"]
    )
    stale = bulk_upsert(
        conn, items, [{"id": "a", "amount": Decimal("4"), "version": 4}], key=["id"], version=["version"]
    )
    same = bulk_upsert(
        conn, items, [{"id": "a", "amount": Decimal("9"), "version": 5}], key=["id"], version=["version"]
    )
    assert (stale.written, stale.skipped, same.written, same.skipped) == (0, 1, 0, 1)
    newer = bulk_upsert(
        conn, items, [{"id": "a", "amount": Decimal("6"), "version": 6}], key=["id"], version=["version"]
    )
    assert newer.updated == 1
    assert rows(conn)["a"].amount == Decimal("6")


def test_composite_version_guard(conn):
    def put(version, ts):
        return bulk_upsert(
            conn,
            items,
            [{"id": "a", "version": version, "updated_at": ts}],
            key=["id"],
            version=["version", "updated_at"],
        )

    put(1, T0 + timedelta(seconds=5))
    assert put(1, T0 + timedelta(seconds=4)).written == 0
    assert put(1, T0 + timedelta(seconds=6)).written == 1
    assert put(2, T0).written == 1


def test_duplicate_keys_in_one_batch_collapse_to_the_newest(conn):
    batch = [
        {"id": "a", "amount": Decimal("3"), "version": 3},
        {"id": "a", "amount": Decimal("7"), "version": 7},
        {"id": "a", "amount": Decimal("5"), "version": 5},
        {"id": "b", "amount": Decimal("1"), "version": 1},
    ]
    result = bulk_upsert(conn, items, batch, key=["id"], version=["version"])
    assert (result.inserted, result.skipped) == (2, 2)
    assert rows(conn)["a"].amount == Decimal("7")


def test_do_nothing_and_returning(conn):
    bulk_upsert(conn, items, [{"id": "a", "version": 1}], key=["id"])
    result = bulk_upsert(
        conn,
        items,
        [{"id": "a", "version": 2}, {"id": "b", "version": 2}],
        key=["id"],
        do_nothing=True,
        returning=["id"],
    )
    assert [(r.inserted, r.id) for r in result.rows] == [(True, "b")]
    assert rows(conn)["a"].version == 1


def test_json_column_and_awkward_strings(conn):
    weird = ['quote"s', "comma,brace{}", "NULL", "back\\slash", "유니코드"]
    batch = [{"id": w, "doc": {"w": w}, "version": 1} for w in weird]
    assert bulk_upsert(conn, items, batch, key=["id"]).inserted == len(weird)
    stored = rows(conn)
    assert sorted(stored) == sorted(weird)
    assert all(stored[w].doc == {"w": w} for w in weird)


def test_large_batch_is_one_statement(conn):
    statements = []
    from sqlalchemy import event

    def count(*_args):
        statements.append(1)

    event.listen(conn, "before_cursor_execute", count)
    try:
        batch = [{"id": str(i), "amount": Decimal(i), "version": 1} for i in range(5000)]
        assert bulk_upsert(conn, items, batch, key=["id"]).inserted == 5000
    finally:
        event.remove(conn, "before_cursor_execute", count)
    assert len(statements) == 1


def test_pg8000_is_tuned_and_statements_still_run_right(db):
    import pg8000.legacy

    from opsdeck import pgwire

    opsdeck_db.engine()  # creating an engine installs the tuning
    assert pgwire.installed()
    convert = pg8000.legacy.convert_paramstyle
    query = "SELECT %s::int + 1, '%%s in a '' quoted %s', 10 %% 3 -- a %s comment\n"
    assert convert("format", query, (41,)) == (
        "SELECT $1::int + 1, '%%s in a '' quoted %s', 10 % 3 -- a %s comment\n",
        (41,),
    )
    assert convert("format", query, (1,))[1] == (1,)  # the arguments are never cached
    sql = text("SELECT CAST(:n AS int) + 1, 'it''s text -- not a comment'")
    assert [tuple(db.execute(sql, {"n": n}).one()) for n in (1, 2)] == [
        (2, "it's text -- not a comment"),
        (3, "it's text -- not a comment"),
    ]


DATES = [
    "2026-12-03",
    "0001-01-01",
    "0999-06-30",
    "9999-12-31",
    "infinity",
    "-infinity",
    "0044-03-15 BC",
    "10000-01-01",
]
TIMESTAMPS = [
    "2026-12-03 18:12:00",
    "2026-12-03 18:12:00.5",
    "2026-12-03 18:12:00.123456",
    "0999-06-30 23:59:59.999999",
    "9999-12-31 23:59:59",
    "infinity",
    "-infinity",
    "0044-03-15 10:00:00 BC",
    "10000-01-01 00:00:00",
]
#: (session time zone, value): whole-hour, half-hour and negative offsets, and a local mean time
#: offset with seconds (Amsterdam before 1937: +00:19:32)
TIMESTAMPTZS = [
    ("UTC", "2026-12-03 18:12:00+00"),
    ("UTC", "2026-12-03 18:12:00.120000+00"),
    ("Asia/Kolkata", "2026-12-03 18:12:00.123456+00"),
    ("America/St_Johns", "2026-07-01 12:00:00+00"),
    ("America/Sao_Paulo", "2026-12-03 00:00:00+00"),
    ("Europe/Amsterdam", "1900-01-01 12:00:00+00"),
    ("UTC", "infinity"),
    ("UTC", "0044-03-15 10:00:00+00 BC"),
    ("UTC", "10000-01-01 00:00:00+00"),
]


#: pg8000's own parser of the other DateStyles warns about their zone abbreviations
@pytest.mark.filterwarnings("ignore::dateutil.parser.UnknownTimezoneWarning")
@pytest.mark.parametrize("style", ["ISO", "SQL, DMY", "German", "Postgres, MDY"])
def test_dates_and_times_read_as_pg8000_reads_them(db, style, monkeypatch):
    """pgwire reads ISO dates and times with ``fromisoformat``; every value, ordinary or not, in
    every ``DateStyle``, comes out exactly as pg8000's own functions give it, and with the
    default ``DateStyle`` only the values ``fromisoformat`` cannot read go to pg8000's."""
    from pg8000 import converters

    from opsdeck import pgwire

    opsdeck_db.engine()
    assert pgwire.installed()
    types = converters.PG_TYPES
    originals = {oid: types[oid].original for oid in (pgwire.DATE, pgwire.TIMESTAMP, pgwire.TIMESTAMPTZ)}
    fallbacks: list[str] = []
    for oid, original in originals.items():

        def counted(data, original=original):
            fallbacks.append(data)
            return original(data)

        monkeypatch.setattr(types[oid], "original", counted)
    db.execute(text(f"SET LOCAL DateStyle = '{style}'"))
    fast: set[str] = set()
    for oid, sql, values in (
        (pgwire.DATE, "date", [("UTC", v) for v in DATES]),
        (pgwire.TIMESTAMP, "timestamp", [("UTC", v) for v in TIMESTAMPS]),
        (pgwire.TIMESTAMPTZ, "timestamptz", TIMESTAMPTZS),
    ):
        for zone, value in values:
            db.execute(text(f"SET LOCAL TIME ZONE '{zone}'"))
            fallbacks.clear()
            read = db.execute(text(f"SELECT CAST(CAST(:v AS text) AS {sql})"), {"v": value}).scalar()
            went_to_pg8000 = bool(fallbacks)
            written = db.execute(text(f"SELECT CAST(CAST(:v AS text) AS {sql})::text"), {"v": value}).scalar()
            expected = originals[oid](written)
            assert read == expected and type(read) is type(expected), (style, written)
            if isinstance(read, datetime):
                assert read.utcoffset() == expected.utcoffset(), (style, written)
            if not went_to_pg8000:
                fast.add(written)
            elif style == "ISO":  # what fromisoformat cannot read, or reads otherwise
                assert isinstance(read, str) or "BC" in written or "+00:19:32" in written, written
    if style == "ISO":  # every ordinary value took the fast path
        assert fast >= {
            "2026-12-03",
            "0001-01-01",
            "2026-12-03 18:12:00.123456",
            "2026-12-03 23:42:00.123456+05:30",
            "2026-07-01 09:30:00-02:30",  # St John's summer time
        }
    else:
        assert not fast


def test_one_round_trip_per_statement_keeps_errors_and_transactions_intact(db):
    from sqlalchemy.exc import DBAPIError, ProgrammingError

    db.execute(text("CREATE TEMP TABLE rt (id int PRIMARY KEY, note text)"))
    with pytest.raises(ProgrammingError, match="syntax error"), db.begin_nested():  # fails at Parse
        db.execute(text("SELEC 1 WHERE :x"), {"x": 1})
    with pytest.raises(DBAPIError, match="duplicate key"), db.begin_nested():  # fails at Execute
        db.execute(text("INSERT INTO rt VALUES (:id, :note)"), {"id": 1, "note": "a"})
        db.execute(text("INSERT INTO rt VALUES (:id, :note)"), {"id": 1, "note": "b"})
    with pytest.raises(DBAPIError, match="invalid input syntax"), db.begin_nested():  # fails at Bind
        db.execute(text("SELECT CAST(:n AS int)"), {"n": "many"})
    rows = db.execute(text("INSERT INTO rt VALUES (:id, :note) RETURNING id, note"), {"id": 2, "note": None})
    assert [tuple(r) for r in rows] == [(2, None)]
    assert db.execute(text("SELECT count(*) FROM rt")).scalar() == 1  # the savepoints rolled back
    assert db.execute(text("UPDATE rt SET note = 'x' WHERE id > :n"), {"n": 0}).rowcount == 1


def test_a_pooled_connection_is_pinged_only_after_idling_and_replaced_if_gone(database_url):
    engine = opsdeck_db.create_engine(database_url, pool_size=1)
    pid = text("SELECT pg_backend_pid()")
    try:
        with engine.connect() as conn:
            first = conn.execute(pid).scalar()
        with engine.connect() as conn:  # used a moment ago: no ping, the same server session
            assert conn.execute(pid).scalar() == first
            record = conn.connection._connection_record
        other = opsdeck_db.create_engine(database_url)  # another session kills ours
        with other.connect() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": first}).scalar()
        other.dispose()
        record.info["idle_since"] -= opsdeck_db.PING_AFTER_IDLE_S + 1  # as if the container slept
        with engine.connect() as conn:  # the ping finds it gone: a new connection, no error
            assert conn.execute(pid).scalar() != first
    finally:
        engine.dispose()


def test_the_connect_timeout_does_not_cut_off_long_statements(database_url, monkeypatch):
    monkeypatch.setattr(opsdeck_db, "CONNECT_TIMEOUT_S", 1)
    engine = opsdeck_db.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 7 FROM pg_sleep(1.5)")).scalar() == 7
    finally:
        engine.dispose()


def test_unknown_columns_are_refused(conn):
    with pytest.raises(ValueError, match="no column"):
        bulk_upsert(conn, items, [{"id": "a", "colour": "red"}], key=["id"])


def test_transaction_rolls_back_on_error(db):
    db.execute(text("CREATE TEMP TABLE t (x int)"))
    with pytest.raises(RuntimeError), opsdeck_db.transaction() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("boom")
    with opsdeck_db.transaction() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    assert db.execute(text("SELECT array_agg(x) FROM t")).scalar() == [2]


def test_unreachable_database_is_one_clear_error(database_url):
    with env(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"), pytest.raises(Unavailable) as info:
        opsdeck_db.ping()
    assert "127.0.0.1" in info.value.detail and "\n" not in info.value.detail


def test_missing_configuration_names_the_variable():
    with env(DATABASE_URL=None, DATABASE_SECRET_ID=None), pytest.raises(ConfigError, match="DATABASE_URL"):
        opsdeck_db.database_url()


def test_database_url_from_rds_secret(aws):
    import json

    from opsdeck.aws import client

    client("secretsmanager").create_secret(
        Name="opsdeck/db",
        SecretString=json.dumps(
            {
                "username": "app",
                "password": "p@ss/word",
                "host": "db.internal",
                "port": 5432,
                "dbname": "opsdeck",
            }
        ),
    )
    with env(DATABASE_URL=None, DATABASE_SECRET_ID="opsdeck/db", DATABASE_HOST="proxy.internal"):
        url = opsdeck_db.database_url()
    assert url == "postgresql+pg8000://app:p%40ss%2Fword@proxy.internal:5432/opsdeck"


def test_bad_secret_is_one_clear_error(aws):
    with env(DATABASE_URL=None, DATABASE_SECRET_ID="does-not-exist"), pytest.raises(ConfigError) as info:
        opsdeck_db.database_url()
    assert "does-not-exist" in info.value.detail and "ResourceNotFoundException" in info.value.detail


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5433/d", "postgresql+pg8000://u:p@h:5433/d"),
        ("postgresql://u@h/d?sslmode=require", "postgresql+pg8000://u@h/d"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg",
            "postgresql+pg8000://postgres:@/postgres?unix_sock=%2Ftmp%2Fpg%2F.s.PGSQL.5432",
        ),
        ("postgresql+pg8000://u@h/d", "postgresql+pg8000://u@h/d"),
    ],
)
def test_normalize_url(given, expected):
    assert normalize_url(given) == expected


def test_ssl_context_is_built_once():
    assert ssl_context("disable") is None
    assert ssl_context("verify-full") is ssl_context("verify-full")
    assert ssl_context("require").check_hostname is False


def test_array_literal_encoding_round_trips_every_supported_type(db):
    import uuid
    from datetime import date

    from sqlalchemy import Boolean, Date, Float, Uuid

    db.execute(
        text(
            "CREATE TEMP TABLE kinds (k text PRIMARY KEY, b boolean, f float8, d date, u uuid, "
            "n numeric(30,10), version bigint NOT NULL)"
        )
    )
    kinds = Table(
        "kinds",
        MetaData(schema="pg_temp"),
        Column("k", Text, primary_key=True),
        Column("b", Boolean),
        Column("f", Float),
        Column("d", Date),
        Column("u", Uuid),
        Column("n", Numeric(30, 10)),
        Column("version", BigInteger),
    )
    ident = uuid.uuid4()
    values = [
        {
            "k": "",
            "b": True,
            "f": 1.5,
            "d": date(2026, 2, 28),
            "u": ident,
            "n": Decimal("-0.0000000001"),
            "version": 1,
        },
        {
            "k": '\\"{x}\\',
            "b": False,
            "f": float("inf"),
            "d": None,
            "u": None,
            "n": Decimal("12345678901234567890.5"),
            "version": 1,
        },
        {"k": " lead and trail ", "b": None, "f": -0.0, "d": None, "u": None, "n": None, "version": 1},
    ]
    assert bulk_upsert(db, kinds, values, key=["k"]).inserted == 3
    stored = {r.k: r for r in db.execute(text("SELECT * FROM pg_temp.kinds"))}
    assert stored[""].b is True and stored[""].u == ident and stored[""].d == date(2026, 2, 28)
    assert stored[""].n == Decimal("-0.0000000001")
    assert stored['\\"{x}\\'].f == float("inf") and stored['\\"{x}\\'].b is False
    assert stored['\\"{x}\\'].n == Decimal("12345678901234567890.5")
    assert stored[" lead and trail "].b is None


@pytest.mark.parametrize(
    "values",
    [
        ["plain", "", "null", "NULL", " spaced ", "comma,brace{}", "유니코드", None],  # fast path
        ["line\nbreak", "tab\t", "bell\x07", 'quote"s', "back\\slash", None],  # exact per-value path
        [1, -(2**63) + 1, None, 0],
        [T0, datetime(2026, 1, 1, 9, tzinfo=SEOUL), None, T0 + timedelta(microseconds=7)],
        [Decimal("1.50"), Decimal("-2E+3"), None, Decimal("12345678901234567890.123456789")],
        [UUID("12345678-1234-5678-1234-567812345678"), None],
        [date(2026, 2, 28), None, date(1999, 12, 31)],
    ],
)
def test_array_literals_round_trip_through_postgresql(db, values):
    sql_types = {str: "text", int: "bigint", datetime: "timestamptz", Decimal: "numeric", UUID: "uuid"}
    kind = {**sql_types, date: "date"}[type(values[0])]
    literal = opsdeck_db.array_literal(values)
    assert db.execute(text(f"SELECT CAST(:a AS {kind}[])"), {"a": literal}).scalar() == values


def test_unsupported_values_are_refused_clearly(db):
    db.execute(
        text(
            "CREATE TEMP TABLE items (id text PRIMARY KEY, amount numeric(18,2), payload jsonb, doc json, "
            "version bigint NOT NULL, updated_at timestamptz)"
        )
    )
    with pytest.raises(TypeError, match="bytes value for column 'id'"):
        bulk_upsert(db, items, [{"id": b"raw", "version": 1}], key=["id"])


def test_tcp_connections_disable_nagle(database_url):
    import socket

    from opsdeck import db as opsdeck_db

    engine = opsdeck_db.create_engine(database_url)
    try:
        with engine.connect() as conn:
            sock = conn.connection.dbapi_connection._usock
            if sock.family == socket.AF_UNIX:
                pytest.skip("embedded server on a Unix socket: no Nagle to disable")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        engine.dispose()


def test_begin_travels_with_the_first_statement_and_keeps_transactions_whole(database_url, monkeypatch):
    """pgwire holds pg8000's BEGIN back and sends it with the transaction's first statement (one
    round trip): the transaction still holds together, a failing first statement still rolls the
    whole of it back, and autocommit or a simple query are not swept into a stale BEGIN."""
    import pg8000.core
    from sqlalchemy.exc import DBAPIError

    engine = opsdeck_db.create_engine(database_url, pool_size=1)
    flushes = []
    real_flush = pg8000.core._flush
    monkeypatch.setattr(pg8000.core, "_flush", lambda sock: (flushes.append(1), real_flush(sock))[1])
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS public.pgwire_begin (id int PRIMARY KEY)"))
            conn.execute(text("TRUNCATE public.pgwire_begin"))
            conn.commit()
            flushes.clear()
            conn.execute(text("INSERT INTO public.pgwire_begin VALUES (:i)"), {"i": 1})
            assert len(flushes) == 1  # BEGIN + the statement, one round trip
            assert conn.execute(text("SELECT now() = statement_timestamp()")).scalar() is False  # one txn
            conn.rollback()
        with engine.connect() as conn:  # rolled back: the insert ran inside the transaction
            assert conn.execute(text("SELECT count(*) FROM public.pgwire_begin")).scalar() == 0
            conn.rollback()
            with pytest.raises(DBAPIError, match="duplicate key"):
                conn.execute(
                    text("INSERT INTO public.pgwire_begin VALUES (:i), (:i)"), {"i": 2}
                )  # fails as the first statement of its transaction
            conn.rollback()
            with pytest.raises(UnicodeEncodeError):  # unencodable: nothing sent, BEGIN still held
                conn.execute(text("SELECT CAST(:v AS text)"), {"v": "lone \ud800 surrogate"})
            conn.rollback()
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.execute(text("VACUUM public.pgwire_begin"))  # would fail inside a transaction
            auto.execute(text("INSERT INTO public.pgwire_begin VALUES (:i)"), {"i": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # a simple query opens its transaction (BEGIN on its own)
            conn.execute(text("INSERT INTO public.pgwire_begin VALUES (:i)"), {"i": 4})
            conn.rollback()
            ids = conn.execute(text("SELECT array_agg(id ORDER BY id) FROM public.pgwire_begin")).scalar()
            assert ids == [3]  # autocommitted 3 stays, 4 rolled back with its transaction
            conn.rollback()
    finally:
        with engine.connect() as conn:
            conn.execute(text("DROP TABLE IF EXISTS public.pgwire_begin"))
            conn.commit()
        engine.dispose()


def test_driver_transaction_commits_rolls_back_and_runs_in_a_savepoint_under_bind(db):
    db.execute(text("CREATE TEMP TABLE dt (x int)"))
    with opsdeck_db.driver_transaction() as driver:
        assert driver.rows("INSERT INTO dt VALUES (%s), (%s)", (1, 2)) == []
        assert driver.one("SELECT count(*), %s::text FROM dt", ("a%",)) == (2, "a%")
    with pytest.raises(RuntimeError), opsdeck_db.driver_transaction() as driver:
        driver.rows("INSERT INTO dt VALUES (%s)", (3,))
        raise RuntimeError("boom")
    with pytest.raises(LookupError), opsdeck_db.driver_transaction() as driver:
        driver.one("SELECT x FROM dt")
    assert db.execute(text("SELECT array_agg(x ORDER BY x) FROM dt")).scalar() == [1, 2]


def test_driver_transaction_commits_through_the_pool_and_a_lost_connection_leaves_it(database_url):
    opsdeck_db.reset()
    try:
        with env(DATABASE_URL=database_url, DB_POOL_SIZE="1"):
            from opsdeck import settings

            settings.platform.cache_clear()
            with opsdeck_db.transaction() as conn:
                conn.execute(text("CREATE TABLE IF NOT EXISTS public.driver_tx (x int)"))
                conn.execute(text("TRUNCATE public.driver_tx"))
            with opsdeck_db.driver_transaction() as driver:
                driver.rows("INSERT INTO public.driver_tx VALUES (%s)", (1,))
                first = driver.one("SELECT pg_backend_pid()")[0]
            with pytest.raises(Exception, match="division by zero"), opsdeck_db.driver_transaction() as d:
                d.rows("INSERT INTO public.driver_tx VALUES (%s)", (2,))
                d.rows("SELECT 1 / 0")
            with opsdeck_db.driver_transaction() as driver:  # the pool's connection, rolled back clean
                assert driver.one("SELECT pg_backend_pid()")[0] == first
                assert driver.rows("SELECT x FROM public.driver_tx") == [(1,)]
            killer = opsdeck_db.create_engine(database_url)
            with killer.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": first})
            killer.dispose()
            with pytest.raises(Unavailable, match="connection lost"), opsdeck_db.driver_transaction() as d:
                d.rows("SELECT 1")
            with opsdeck_db.driver_transaction() as driver:  # a new connection
                assert driver.one("SELECT pg_backend_pid()")[0] != first
            with opsdeck_db.transaction() as conn:
                conn.execute(text("DROP TABLE public.driver_tx"))
    finally:
        opsdeck_db.reset()
