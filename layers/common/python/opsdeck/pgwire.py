"""Two fixes to how pg8000 talks to PostgreSQL, installed once by ``opsdeck.db.create_engine``.

pg8000 is pure Python (no compiled driver to ship in the layer); it spends its time on two
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

Both keep pg8000's behaviour and results; ``tests/integration/test_db.py`` holds them to it. They
are written against pg8000 1.31 (pinned ``<2``) and installed only when its functions have the
expected shape, so a pg8000 that changed them runs unmodified (slower, not wrong) and the
test that checks they are active fails.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def install() -> None:
    """Install both (idempotent)."""
    _cache_placeholder_rewrite()
    _one_round_trip_per_statement()


def installed() -> bool:
    import pg8000.core
    import pg8000.legacy

    return bool(
        getattr(pg8000.legacy.convert_paramstyle, "opsdeck", False)
        and getattr(pg8000.core.CoreConnection.execute_unnamed, "opsdeck", False)
    )


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


def _one_round_trip_per_statement() -> None:
    from pg8000 import core
    from pg8000.converters import make_params

    original = core.CoreConnection.execute_unnamed
    expected = ["self", "statement", "vals", "oids", "stream"]
    if getattr(original, "opsdeck", False) or list(inspect.signature(original).parameters) != expected:
        return

    def execute_unnamed(self: Any, statement: str, vals: Any = (), oids: Any = (), stream: Any = None) -> Any:
        if stream is not None:  # COPY: pg8000's own message exchange
            return original(self, statement, vals=vals, oids=oids, stream=stream)
        params = make_params(self.py_types, vals)
        context = core.Context(statement)
        self.send_PARSE(core.NULL_BYTE, statement, oids)
        self.send_DESCRIBE_STATEMENT(core.NULL_BYTE)
        self.send_BIND(core.NULL_BYTE, params)
        self.send_EXECUTE()
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context

    execute_unnamed.opsdeck = True  # type: ignore[attr-defined]
    core.CoreConnection.execute_unnamed = execute_unnamed
