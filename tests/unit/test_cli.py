"""The `opsdeck` command: one-line errors, dev tokens that the local cloud accepts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opsdeck_cli.main import main
from tests.support import ROOT, env


def test_token_without_configuration_uses_the_local_dev_issuer(tmp_path, capsys):
    with env(JWT_HS256_SECRET=None, JWT_HS256_SECRET_ID=None, JWT_ISSUER=None, JWT_AUDIENCE=None):
        assert main(["token", "--root", str(tmp_path), "--sub", "ana", "--role", "ADMIN_READ"]) == 0
    token = capsys.readouterr().out.strip()

    from localcloud import services
    from localcloud.cloud import AUDIENCE, ISSUER
    from opsdeck.auth import verify

    with env(
        JWT_HS256_SECRET=services.jwt_secret(tmp_path),
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=AUDIENCE,
        JWT_ALGORITHMS="HS256",
    ):
        principal = verify(token)
    assert (principal.subject, principal.roles) == ("ana", frozenset({"ADMIN_READ"}))


@pytest.mark.parametrize(
    ("argv", "environment", "message"),
    [
        (["db", "upgrade"], {"DATABASE_URL": ""}, "opsdeck: error: DATABASE_URL is not set"),
        (["db", "upgrade"], {"DATABASE_URL": "mysql://x"}, "opsdeck: error: DATABASE_URL must be"),
        (
            ["db", "upgrade"],
            {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "opsdeck: error: database unavailable",
        ),
    ],
)
def test_configuration_errors_are_one_line(argv, environment, message):
    result = subprocess.run(
        [sys.executable, "-m", "opsdeck_cli", *argv],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'layers/common/python'}:{ROOT}", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
