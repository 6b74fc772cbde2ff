"""Four fixes to how pg8000 talks to PostgreSQL, installed once by ``opsdeck.db.create_engine``.

pg8000 is pure Python (no compiled driver to ship in the layer); it spends its time on three
things a statement does not need:

* **Placeholders rewritten on every execution.** ``cursor.execute`` turns SQLAlchemy's ``%s``
  into ``$n`` by scanning the statement character by character in Python: ~1 ms for the
  backoffice pairing statement (3 KB). For the positional styles the result depends on the
  statement text alone (the arguments pass through unchanged), and an application's set of
  statements is small and fixed, so the rewrite is memoised.
* **Three round trips per statement.** ``execute_unnamed`` sends Parse + Sync and waits, then
  Describe + Sync and waits, then Bind + Execute + Sync and waits. The extended-query protocol
  lets a client send Parse, Describe, Bind, Execute and one Sync together and read the replies
  once — what libpq and psycopg do. If any step fails the server skips to the Sync and answers
  ErrorResponse + ReadyForQuery, which pg8000's reply loop already turns into the same
  exception. The parameters are encoded before anything is sent, so an unencodable value still
  fails before the statement reaches the server. ``COPY`` (a ``stream``) keeps pg8000's own path.
  No ``Flush`` between the messages (pg8000 sends one after each): the server then answers
  with one packet at the ``Sync``, so the client wakes once per statement, not three times.
* **A round trip for BEGIN.** pg8000 opens every transaction with its own ``begin
  transaction`` query and waits for it before sending the first statement. The ``BEGIN`` is
  instead held back and sent in front of that statement, in the same ``Sync`` (what psycopg's
  pipeline mode does): one round trip fewer per transaction. Inside one ``Sync`` the messages
  run in order and an error skips the rest, so a ``BEGIN`` that failed runs no statement; a
  ``BEGIN`` executed there opens a transaction block that outlives the ``Sync``. A held-back
  ``BEGIN`` is sent on its own before a statement without parameters (a simple query, which
  may hold several statements) or a ``COPY``, and is dropped when the connection is already
  in a transaction or has switched to autocommit.
* **Dates and times read with ``strptime``.** Each ``date`` value of a result costs ~5 µs and
  each ``timestamp`` / ``timestamptz`` ~8 µs: a list of 50 rows with two timestamps spends
  ~0.8 ms on them. What PostgreSQL writes with its default ``DateStyle`` (ISO) is what
  ``date.fromisoformat`` / ``datetime.fromisoformat`` read, in C, in ~0.15 µs. Only ordinary
  values take that path: four-digit years, no ``BC``, an offset of whole minutes. Everything
  else goes to pg8000's own function, as before: ``infinity``, years past 9999, another
  ``DateStyle``, the seconds of a local mean time offset.

All of them keep pg8000's behaviour and results; ``tests/integration/test_db.py`` holds them to it. They
are written against pg8000 1.31 (pinned ``<2``) and installed only when its functions have the
expected shape, so a pg8000 that changed them runs unmodified (slower, not wrong) and the
test that checks they are active fails.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def install() -> None:
    """Install all of them (idempotent)."""
    _cache_placeholder_rewrite()
    _one_round_trip_per_statement()
    _iso_dates_and_times()


def installed() -> bool:
    import pg8000.converters
    import pg8000.core
    import pg8000.legacy

    types = pg8000.converters.PG_TYPES
    return bool(
        getattr(pg8000.legacy.convert_paramstyle, "opsdeck", False)
        and getattr(pg8000.core.CoreConnection.execute_unnamed, "opsdeck", False)
        and getattr(pg8000.core.CoreConnection.execute_simple, "opsdeck", False)
        and all(getattr(types.get(oid), "opsdeck", False) for oid in (DATE, TIMESTAMP, TIMESTAMPTZ))
    )


#: the type OIDs of ``date``, ``timestamp`` and ``timestamptz``
DATE, TIMESTAMP, TIMESTAMPTZ = 1082, 1114, 1184


def _iso_dates_and_times() -> None:
    """``date``, ``timestamp`` and ``timestamptz`` results read by ``fromisoformat`` when they
    are in the shape PostgreSQL's ISO ``DateStyle`` gives ordinary values; else by pg8000."""
    from datetime import date, datetime

    from pg8000 import converters

    types = converters.PG_TYPES
    if any(getattr(types.get(oid), "opsdeck", False) for oid in (DATE, TIMESTAMP, TIMESTAMPTZ)):
        return
    if not all(callable(types.get(oid)) for oid in (DATE, TIMESTAMP, TIMESTAMPTZ)):
        return
    read_date, read_datetime = date.fromisoformat, datetime.fromisoformat

    def iso_date_in(data: str) -> Any:
        # "2026-12-03"; not "infinity", "0044-03-15 BC", "10000-01-01", another DateStyle
        if len(data) == 10 and data[4] == "-" and data[7] == "-":
            try:
                return read_date(data)
            except ValueError:
                pass
        return iso_date_in.original(data)  # type: ignore[attr-defined]

    def iso_timestamp_in(data: str) -> Any:
        # "2026-12-03 18:12:00[.123456]"
        if 19 <= len(data) <= 26 and data[4] == "-" and data[10] == " " and data[-1].isdigit():
            try:
                return read_datetime(data)
            except ValueError:
                pass
        return iso_timestamp_in.original(data)  # type: ignore[attr-defined]

    def iso_timestamptz_in(data: str) -> Any:
        # "2026-12-03 18:12:00[.123456]+00" or "...-03:30": an offset of hours or hours and
        # minutes (a local mean time offset with seconds, "+00:19:32", goes to pg8000)
        n = len(data)
        if (
            22 <= n <= 35
            and data[4] == "-"
            and data[10] == " "
            and (data[-3] in "+-" or (data[-6] in "+-" and data[-3] == ":"))
        ):
            try:
                return read_datetime(data)
            except ValueError:
                pass
        return iso_timestamptz_in.original(data)  # type: ignore[attr-defined]

    for oid, fast in ((DATE, iso_date_in), (TIMESTAMP, iso_timestamp_in), (TIMESTAMPTZ, iso_timestamptz_in)):
        fast.opsdeck = True  # type: ignore[attr-defined]
        fast.original = types[oid]  # type: ignore[attr-defined]  # pg8000's: every other value
        types[oid] = fast


def _cache_placeholder_rewrite() -> None:
    import pg8000.legacy

    convert = pg8000.legacy.convert_paramstyle
    if getattr(convert, "opsdeck", False) or list(inspect.signature(convert).parameters) != [
        "style",
        "query",
        "args",
    ]:
        return

    @functools.lru_cache(maxsize=512)
    def rewritten(style: str, query: str) -> str:
        return convert(style, query, ())[0]

    def convert_paramstyle(style: str, query: str, args: Any) -> tuple[str, Any]:
        if style in ("format", "qmark", "numeric"):  # the arguments are returned as given
            return rewritten(style, query), args
        return convert(style, query, args)

    convert_paramstyle.opsdeck = True  # type: ignore[attr-defined]
    pg8000.legacy.convert_paramstyle = convert_paramstyle


#: the exact text pg8000's cursor sends to open a transaction
BEGIN = "begin transaction"
_HELD = "_opsdeck_begin_held"


def _one_round_trip_per_statement() -> None:
    from pg8000 import core
    from pg8000.converters import make_params

    original = core.CoreConnection.execute_unnamed
    original_simple = core.CoreConnection.execute_simple
    expected = ["self", "statement", "vals", "oids", "stream"]
    if (
        getattr(original, "opsdeck", False)
        or list(inspect.signature(original).parameters) != expected
        or list(inspect.signature(original_simple).parameters) != ["self", "statement"]
        or not all(
            hasattr(core, n) for n in ("EXECUTE_MSG", "SYNC_MSG", "PARSE", "BIND", "DESCRIBE", "H_pack")
        )
    ):
        return
    begin_parse = core.NULL_BYTE + BEGIN.encode() + core.NULL_BYTE + core.H_pack(0)
    begin_bind = core.NULL_BYTE + core.NULL_BYTE + core.H_pack(0) + core.H_pack(0) + core.H_pack(0)

    def take_held_begin(self: Any) -> bool:
        """Whether a held-back BEGIN is still due (and forget it either way)."""
        if not self.__dict__.pop(_HELD, False):
            return False
        return not self._in_transaction and not getattr(self, "autocommit", False)

    def execute_simple(self: Any, statement: str) -> Any:
        if statement == BEGIN and not self._in_transaction:
            self.__dict__[_HELD] = True  # sent with the next statement
            return core.Context(statement)
        if take_held_begin(self):
            original_simple(self, BEGIN)
        return original_simple(self, statement)

    def execute_unnamed(self: Any, statement: str, vals: Any = (), oids: Any = (), stream: Any = None) -> Any:
        if stream is not None:  # COPY: pg8000's own message exchange
            if take_held_begin(self):
                original_simple(self, BEGIN)
            return original(self, statement, vals=vals, oids=oids, stream=stream)
        # every message is built (and every value encoded) before anything is written
        params = make_params(self.py_types, vals)
        parse = bytearray(core.NULL_BYTE)
        parse.extend(statement.encode(self._client_encoding) + core.NULL_BYTE)
        parse.extend(core.H_pack(len(oids)))
        for oid in oids:
            parse.extend(core.i_pack(0 if oid == -1 else oid))
        bind = bytearray(core.NULL_BYTE + core.NULL_BYTE + core.H_pack(0) + core.H_pack(len(params)))
        for value in params:
            if value is None:
                bind.extend(core.i_pack(-1))
            else:
                encoded = value.encode(self._client_encoding)
                bind.extend(core.i_pack(len(encoded)))
                bind.extend(encoded)
        bind.extend(core.H_pack(0))
        context = core.Context(statement)
        if take_held_begin(self):
            self._send_message(core.PARSE, begin_parse)
            self._send_message(core.BIND, begin_bind)
            core._write(self._sock, core.EXECUTE_MSG)
        self._send_message(core.PARSE, parse)
        self._send_message(core.DESCRIBE, core.STATEMENT + core.NULL_BYTE)
        self._send_message(core.BIND, bind)
        core._write(self._sock, core.EXECUTE_MSG)
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context

    execute_unnamed.opsdeck = True  # type: ignore[attr-defined]
    execute_simple.opsdeck = True  # type: ignore[attr-defined]
    core.CoreConnection.execute_unnamed = execute_unnamed
    core.CoreConnection.execute_simple = execute_simple
