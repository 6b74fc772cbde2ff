"""``DATABASE_AUTH=iam`` end to end against PostgreSQL: every new connection presents a token as
its password (the local server trusts it; RDS Proxy would verify it), and the warm path mints
nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url

from opsdeck import db, dbauth
from tests.support import env


def test_iam_connections_mint_one_token_and_the_warm_path_none(database_url):
    u = make_url(database_url)
    if u.query.get("unix_sock"):
        import pytest

        pytest.skip("IAM connections need a TCP server (TEST_DATABASE_URL)")
    seen: list[str] = []
    with env(
        DATABASE_URL=None,
        DATABASE_AUTH="iam",
        DATABASE_HOST=u.host,
        DATABASE_PORT=str(u.port or 5432),
        DATABASE_NAME=u.database,
        DATABASE_USER=u.username,
        AWS_REGION="eu-west-1",
    ):
        from sqlalchemy import event

        event.listen(db.engine(), "do_connect", lambda _d, _r, _a, cparams: seen.append(cparams["password"]))
        before = dbauth.minted
        for _ in range(50):  # warm requests: the pooled connection, no token
            with db.transaction() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == u.username
        assert dbauth.minted == before + 1
        db.engine().dispose()  # the proxy dropped the idle connection: reconnect, same token
        with db.transaction() as conn:
            conn.execute(text("SELECT 1"))
        assert dbauth.minted == before + 1
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0].startswith(f"{u.host}:{u.port or 5432}/?Action=connect&DBUser={u.username}")
